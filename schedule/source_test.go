package schedule

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

// srcTestNow is the clock of the source and service tests: a Wednesday,
// in the week tests/service/base.ics gives to alice.
var srcTestNow = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// icsServer serves one calendar with an ETag and records the requests.
type icsServer struct {
	mu     sync.Mutex
	body   []byte
	etag   string // "" sends none
	status int    // when set, answer this instead of the calendar
	reqs   []*http.Request
}

func (f *icsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r.Clone(r.Context()))
	if f.status != 0 {
		http.Error(w, "calendar backend exploded", f.status)
		return
	}
	if f.etag != "" {
		w.Header().Set("ETag", f.etag)
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Write(f.body)
}

func (f *icsServer) serve(body []byte, etag string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.body, f.etag, f.status = body, etag, status
}

func (f *icsServer) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// startICS serves a calendar; its URL has a secret in the path, as private
// calendar URLs do.
func startICS(t *testing.T, body []byte, etag string) (*icsServer, string) {
	t.Helper()
	f := &icsServer{body: body, etag: etag}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL + "/private-s3cr3t/basic.ics"
}

// oneShift is a calendar with a single event.
func oneShift(person string, start, end time.Time) []byte {
	const layout = "20060102T150405Z"
	lines := []string{
		"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//oncall tests//EN",
		"BEGIN:VEVENT",
		"UID:" + person + "@oncall.test",
		"DTSTAMP:20260101T000000Z",
		"DTSTART:" + start.UTC().Format(layout),
		"DTEND:" + end.UTC().Format(layout),
		"SUMMARY:" + person,
		"END:VEVENT", "END:VCALENDAR", "",
	}
	return []byte(strings.Join(lines, "\r\n"))
}

// dayOf is a calendar that puts person on call for the whole day of
// srcTestNow.
func dayOf(person string) []byte {
	day := srcTestNow.Truncate(24 * time.Hour)
	return oneShift(person, day, day.Add(24*time.Hour))
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "service", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// newTestService is a service at srcTestNow without stored overrides.
func newTestService(defs ...Definition) *Service {
	s := NewService(defs, nil, nil, discardLog())
	s.now = func() time.Time { return srcTestNow }
	return s
}

// whoIsOnCall returns the people on call at srcTestNow, as "person/source".
func whoIsOnCall(t *testing.T, s *Service, schedule string) []string {
	t.Helper()
	shifts, err := s.OnCall(t.Context(), schedule, srcTestNow)
	if err != nil {
		t.Fatalf("OnCall(%s): %v", schedule, err)
	}
	return shiftNames(shifts)
}

func shiftNames(shifts []oncall.Shift) []string {
	var out []string
	for _, s := range shifts {
		out = append(out, s.Person+"/"+s.Source)
	}
	return out
}

// TestURLSourceRefresh walks a calendar URL through the answers a feed
// gives: each step refreshes once, then asks who is on call.
func TestURLSourceRefresh(t *testing.T) {
	srv, url := startICS(t, dayOf("alice"), `"v1"`)
	s := newTestService(Definition{Name: "primary", ICal: url})

	steps := []struct {
		name            string
		body            []byte
		etag            string
		status          int
		wantIfNoneMatch string
		wantErr         string // in Load's error and Status.LastError; "" for success
		wantOnCall      string
		wantETag        string
	}{
		{name: "first load", body: dayOf("alice"), etag: `"v1"`,
			wantIfNoneMatch: "", wantOnCall: "alice/calendar", wantETag: `"v1"`},
		{name: "not modified keeps the copy", body: dayOf("alice"), etag: `"v1"`,
			wantIfNoneMatch: `"v1"`, wantOnCall: "alice/calendar", wantETag: `"v1"`},
		{name: "server error keeps the copy", status: http.StatusInternalServerError,
			wantIfNoneMatch: `"v1"`, wantErr: "500", wantOnCall: "alice/calendar", wantETag: `"v1"`},
		{name: "garbage keeps the copy", body: []byte("<html>Sign in to continue</html>"), etag: `"login"`,
			wantIfNoneMatch: `"v1"`, wantErr: "parse calendar", wantOnCall: "alice/calendar", wantETag: `"v1"`},
		{name: "changed calendar replaces the copy", body: dayOf("bob"), etag: `"v2"`,
			wantIfNoneMatch: `"v1"`, wantOnCall: "bob/calendar", wantETag: `"v2"`},
		{name: "not modified again", body: dayOf("bob"), etag: `"v2"`,
			wantIfNoneMatch: `"v2"`, wantOnCall: "bob/calendar", wantETag: `"v2"`},
	}
	var lastSuccess time.Time
	for i, step := range steps {
		srv.serve(step.body, step.etag, step.status)
		now := srcTestNow.Add(time.Duration(i) * time.Minute)
		s.now = func() time.Time { return now }

		err := s.Load(t.Context())
		if step.wantErr == "" && err != nil {
			t.Errorf("%s: Load: %v", step.name, err)
		}
		if step.wantErr != "" && (err == nil || !strings.Contains(err.Error(), step.wantErr)) {
			t.Errorf("%s: Load error %v, want one containing %q", step.name, err, step.wantErr)
		}
		reqs := srv.requests()
		if len(reqs) != i+1 {
			t.Fatalf("%s: %d requests in all, want %d", step.name, len(reqs), i+1)
		}
		req := reqs[i]
		if got := req.Header.Get("If-None-Match"); got != step.wantIfNoneMatch {
			t.Errorf("%s: If-None-Match %q, want %q", step.name, got, step.wantIfNoneMatch)
		}
		if ua := req.Header.Get("User-Agent"); !strings.HasPrefix(ua, "oncall") {
			t.Errorf("%s: User-Agent %q, want the bot's", step.name, ua)
		}

		if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{step.wantOnCall}) {
			t.Errorf("%s: on call %v, want %s", step.name, got, step.wantOnCall)
		}

		st := s.Status("primary")
		if st.LastAttempt != now {
			t.Errorf("%s: LastAttempt %v, want %v", step.name, st.LastAttempt, now)
		}
		if step.wantErr == "" {
			lastSuccess = now
		}
		if st.LastSuccess != lastSuccess {
			t.Errorf("%s: LastSuccess %v, want %v", step.name, st.LastSuccess, lastSuccess)
		}
		if !strings.Contains(st.LastError, step.wantErr) || (step.wantErr == "") != (st.LastError == "") {
			t.Errorf("%s: LastError %q, want %q", step.name, st.LastError, step.wantErr)
		}
		// People are told in Slack when the copy in use is old.
		if p := s.Problem("primary"); (step.wantErr == "") != (p == "") ||
			(p != "" && !strings.Contains(p, "the calendar cannot be refreshed (using the copy of ")) {
			t.Errorf("%s: Problem %q", step.name, p)
		}
		if st.ETag != step.wantETag || !st.Loaded || st.Events != 1 {
			t.Errorf("%s: status ETag %s, Loaded %v, Events %d; want %s, true, 1",
				step.name, st.ETag, st.Loaded, st.Events, step.wantETag)
		}
		if strings.Contains(st.URL, "s3cr3t") || !strings.HasSuffix(st.URL, "/basic.ics") {
			t.Errorf("%s: status URL %q, want it without the secret path segment", step.name, st.URL)
		}
	}
}

func TestURLSourceLastModified(t *testing.T) {
	lastModified := "Tue, 03 Mar 2026 10:00:00 GMT"
	var (
		mu    sync.Mutex
		since []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		since = append(since, r.Header.Get("If-Modified-Since"))
		mu.Unlock()
		if r.Header.Get("If-Modified-Since") == lastModified {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Last-Modified", lastModified)
		w.Write(dayOf("alice"))
	}))
	t.Cleanup(srv.Close)
	s := newTestService(Definition{Name: "primary", ICal: srv.URL + "/cal.ics"})
	for range 2 {
		if err := s.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"", lastModified}; !slices.Equal(since, want) {
		t.Errorf("If-Modified-Since sent %q, want %q", since, want)
	}
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"alice/calendar"}) {
		t.Errorf("on call %v after a 304, want alice", got)
	}
}

func TestFirstLoadFailureLeavesScheduleEmpty(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		status  int
		wantErr string
	}{
		{"server error", nil, http.StatusServiceUnavailable, "503"},
		{"not a calendar", []byte("BEGIN:VCALENDAR\r\nthis is not iCalendar"), 0, "parse calendar"},
		{"larger than the cap", bytes.Repeat([]byte("X"), srcMaxSize+1), 0, "larger than 10 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, url := startICS(t, tt.body, "")
			srv.serve(tt.body, "", tt.status)
			s := newTestService(Definition{Name: "primary", ICal: url})
			if err := s.Load(t.Context()); err == nil {
				t.Error("Load succeeded, want an error")
			}
			if got := whoIsOnCall(t, s, "primary"); len(got) != 0 {
				t.Errorf("on call %v, want nobody", got)
			}
			st := s.Status("primary")
			if !strings.Contains(st.LastError, tt.wantErr) || st.Loaded || !st.LastSuccess.IsZero() {
				t.Errorf("status %+v, want LastError containing %q, not loaded, no success", st, tt.wantErr)
			}
			if p := s.Problem("primary"); !strings.Contains(p, "the calendar cannot be refreshed (never loaded)") {
				t.Errorf("Problem %q, want it to say the calendar was never loaded", p)
			}
		})
	}
}

func TestUnreachableURLIsRedactedInErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/calendar/ical/private-s3cr3t/basic.ics"
	srv.Close() // nothing listens there any more
	s := newTestService(Definition{Name: "primary", ICal: url})
	err := s.Load(t.Context())
	if err == nil {
		t.Fatal("Load of a closed server succeeded")
	}
	st := s.Status("primary")
	for _, text := range []string{err.Error(), st.LastError, st.URL} {
		if strings.Contains(text, "s3cr3t") {
			t.Errorf("%q shows the secret of the calendar URL", text)
		}
	}
	if st.LastError == "" {
		t.Error("Status has no LastError")
	}
}

func TestFileSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oncall.ics")
	s := newTestService(Definition{Name: "primary", File: path})
	mtime := srcTestNow.Add(-time.Hour)
	// write replaces the file and sets its modification time.
	write := func(data []byte, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}

	steps := []struct {
		name       string
		write      func()
		wantErr    bool
		wantOnCall []string
	}{
		{"missing file", func() {}, true, nil},
		{"first read", func() { write(dayOf("alice"), mtime) }, false, []string{"alice/calendar"}},
		// Same size and modification time: not read again.
		{"unchanged mtime is not re-read", func() { write(dayOf("carol"), mtime) }, false, []string{"alice/calendar"}},
		{"newer file is read", func() { write(dayOf("carol"), mtime.Add(time.Minute)) }, false, []string{"carol/calendar"}},
		{"garbage keeps the copy", func() { write([]byte("garbage"), mtime.Add(2*time.Minute)) }, true, []string{"carol/calendar"}},
		{"still garbage keeps the error", func() {}, true, []string{"carol/calendar"}},
		{"deleted keeps the copy", func() { os.Remove(path) }, true, []string{"carol/calendar"}},
		{"fixed", func() { write(dayOf("dave"), mtime.Add(3*time.Minute)) }, false, []string{"dave/calendar"}},
	}
	for _, step := range steps {
		step.write()
		err := s.Load(t.Context())
		if (err != nil) != step.wantErr {
			t.Errorf("%s: Load error %v, want error %v", step.name, err, step.wantErr)
		}
		if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, step.wantOnCall) {
			t.Errorf("%s: on call %v, want %v", step.name, got, step.wantOnCall)
		}
		st := s.Status("primary")
		if (st.LastError != "") != step.wantErr || st.File != path {
			t.Errorf("%s: status LastError %q, File %q; want error %v, file %s",
				step.name, st.LastError, st.File, step.wantErr, path)
		}
	}
}

func TestOnCallDoesNotTouchSources(t *testing.T) {
	srv, url := startICS(t, dayOf("alice"), `"v1"`)
	over, overURL := startICS(t, oneShift("carol", srcTestNow.Add(-time.Hour), srcTestNow.Add(time.Hour)), "")
	s := newTestService(Definition{Name: "primary", ICal: url, OverridesICal: overURL})
	if err := s.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		at := srcTestNow.Add(time.Duration(i) * time.Minute)
		if _, err := s.OnCall(t.Context(), "primary", at); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.requests()) + len(over.requests()); n != 2 {
		t.Errorf("%d requests after one Load and 1000 OnCall, want 2", n)
	}
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"carol/overrides"}) {
		t.Errorf("on call %v, want carol from the overrides calendar", got)
	}
}

func TestSrcRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://calendar.google.com/calendar/ical/team%40group.calendar.google.com/private-abc/basic.ics",
			"https://calendar.google.com/…/basic.ics"},
		{"https://outlook.office365.com/owa/calendar/x/y/reachcalendar.ics?token=secret",
			"https://outlook.office365.com/…/reachcalendar.ics"},
		{"https://example.com/cal.ics", "https://example.com/cal.ics"},
		{"https://user:pass@example.com/", "https://example.com"},
		{"http://example.com", "http://example.com"},
		{"not a url", "(invalid URL)"},
	}
	for _, tt := range tests {
		if got := srcRedactURL(tt.in); got != tt.want {
			t.Errorf("srcRedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewCalSourceKinds(t *testing.T) {
	tests := []struct {
		ref           string
		wantURL, file string
	}{
		{"https://example.com/a.ics", "https://example.com/a.ics", ""},
		{"webcal://example.com/a.ics", "https://example.com/a.ics", ""},
		{"./oncall.ics", "", "./oncall.ics"},
		{"/etc/oncall/oncall.ics", "", "/etc/oncall/oncall.ics"},
		{`C:\oncall\oncall.ics`, "", `C:\oncall\oncall.ics`},
	}
	for _, tt := range tests {
		s := newCalSource(tt.ref, time.UTC, http.DefaultClient, discardLog())
		if s.url != tt.wantURL || s.file != tt.file {
			t.Errorf("newCalSource(%q): url %q, file %q; want %q, %q", tt.ref, s.url, s.file, tt.wantURL, tt.file)
		}
	}
}

func TestSrcCountEvents(t *testing.T) {
	data := readTestdata(t, "base.ics")
	if n := srcCountEvents(data); n != 2 {
		t.Errorf("srcCountEvents(base.ics) = %d, want 2", n)
	}
	// Lower case counts; a folded continuation line is not a new line.
	data = []byte("begin:vcalendar\nbegin:vevent\nDESCRIPTION:x\n BEGIN:VEVENT\nend:vevent\nBEGIN:VEVENT\r\n")
	if n := srcCountEvents(data); n != 2 {
		t.Errorf("srcCountEvents(mixed case, folded) = %d, want 2", n)
	}
}

// A calendar that expands to too many shifts is refused like a malformed
// one: the error is in Status and the last good copy stays in use.
func TestFileSourceRejectsTooManyShifts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oncall.ics")
	s := newTestService(Definition{Name: "primary", File: path})
	mtime := srcTestNow.Add(-time.Hour)
	for _, step := range []struct {
		data  []byte
		mtime time.Time
	}{
		{dayOf("alice"), mtime},
		{calEveryMinute(20, srcTestNow.AddDate(0, 0, -3)), mtime.Add(time.Minute)},
	} {
		if err := os.WriteFile(path, step.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, step.mtime, step.mtime); err != nil {
			t.Fatal(err)
		}
		_ = s.Load(t.Context()) // the second load fails; checked below
	}
	err := s.Load(t.Context()) // unchanged file: read and refused again
	if err == nil || !strings.Contains(err.Error(), "calendar too large: more than 200000 shifts in 97 days") {
		t.Errorf("Load error %v, want calendar too large", err)
	}
	st := s.Status("primary")
	if !strings.Contains(st.LastError, "calendar too large") || !st.Loaded || st.Events != 1 {
		t.Errorf("status %+v, want the too-large error and the previous copy's one event", st)
	}
	if got := whoIsOnCall(t, s, "primary"); !slices.Equal(got, []string{"alice/calendar"}) {
		t.Errorf("on call %v, want the previous copy's alice/calendar", got)
	}
}
