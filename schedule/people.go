package schedule

import (
	"strings"
)

// Person is someone of the config, known by email, Slack id and name.
type Person struct {
	Email string
	Slack string
	Name  string
}

// Key is how the config refers to the person: the email, else the Slack id.
func (p Person) Key() string {
	if p.Email != "" {
		return p.Email
	}
	return p.Slack
}

// Directory matches the names calendars and rotations use to people.
type Directory struct {
	people []Person
}

// NewDirectory returns a Directory of people.
func NewDirectory(people []Person) *Directory {
	return &Directory{people: people}
}

// Find returns the person a calendar names: by email (any case, with or
// without "mailto:"), by Slack id ("U0123", "<@U0123>", "@U0123"), or by
// name (any case). A name that matches nobody is reported as not found,
// never guessed.
func (d *Directory) Find(name string) (Person, bool) {
	n := strings.TrimSpace(name)
	n = strings.TrimPrefix(strings.TrimPrefix(n, "mailto:"), "MAILTO:")
	id := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(n, "<@"), "@"), ">")
	for _, p := range d.people {
		switch {
		case p.Email != "" && strings.EqualFold(p.Email, n):
			return p, true
		case p.Slack != "" && p.Slack == id:
			return p, true
		case p.Name != "" && strings.EqualFold(p.Name, n):
			return p, true
		}
	}
	return Person{}, false
}

// Matches says whether a shift's person is p.
func (d *Directory) Matches(shiftPerson string, p Person) bool {
	found, ok := d.Find(shiftPerson)
	return ok && found == p
}
