package main

import (
	"fmt"
	"time"

	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/config"
	"github.com/oncallbot/oncall/schedule"
)

// scheduleDefinitions turns the config's schedules into what the schedule
// service loads.
func scheduleDefinitions(cfg *config.Config) ([]schedule.Definition, error) {
	defs := make([]schedule.Definition, 0, len(cfg.Schedules))
	for _, s := range cfg.Schedules {
		zone := s.Timezone
		if zone == "" {
			zone = cfg.Timezone
		}
		if zone == "" {
			zone = "UTC"
		}
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: time zone %q: %w", s.Name, zone, err)
		}
		def := schedule.Definition{
			Name: s.Name, Location: loc,
			ICal: s.ICal, File: s.File, OverridesICal: s.OverridesICal,
			Channel: s.Channel, Usergroup: s.Usergroup,
		}
		for _, r := range s.AllRotations() {
			rot, err := rotation(r, loc)
			if err != nil {
				return nil, fmt.Errorf("schedule %q: %w", s.Name, err)
			}
			def.Rotations = append(def.Rotations, rot)
		}
		defs = append(defs, def)
	}
	return defs, nil
}

func rotation(r config.Rotation, loc *time.Location) (schedule.Rotation, error) {
	handoff, err := time.ParseInLocation(config.HandoffLayout, r.Handoff, loc)
	if err != nil {
		return schedule.Rotation{}, fmt.Errorf("rotation handoff %q: %w", r.Handoff, err)
	}
	rot := schedule.Rotation{Users: r.Users, Shift: time.Duration(r.Shift), Handoff: handoff, Location: loc}
	if r.Window != "" {
		start, end, err := config.ParseWindow(r.Window)
		if err != nil {
			return schedule.Rotation{}, err
		}
		rot.Window = &schedule.DailyWindow{Start: start, End: end}
	}
	return rot, nil
}

// schedulePeople lists the config's users for matching calendar names.
func schedulePeople(cfg *config.Config) []schedule.Person {
	people := make([]schedule.Person, 0, len(cfg.Users))
	for _, u := range cfg.Users {
		people = append(people, schedule.Person{Email: u.Email, Slack: u.Slack, Name: u.Name})
	}
	return people
}

// botUsers lists the config's users for the bot's name matching.
func botUsers(cfg *config.Config) []bot.UserRef {
	users := make([]bot.UserRef, 0, len(cfg.Users))
	for _, u := range cfg.Users {
		users = append(users, bot.UserRef{Email: u.Email, Slack: u.Slack, Name: u.Name})
	}
	return users
}
