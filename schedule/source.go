package schedule

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of a calendar source.
const (
	// srcMaxSize is the largest calendar read, from a URL or a file.
	srcMaxSize = 10 << 20
	// srcFetchTimeout bounds one fetch of a URL, whatever the client's own
	// timeout.
	srcFetchTimeout = 30 * time.Second
	srcUserAgent    = "oncall-bot/1 (calendar refresh)"
	// A new copy is expanded once over [now-srcCheckBefore,
	// now+srcCheckAfter] and rejected if that reaches
	// calMaxShiftsPerQuery: every answer about it would be slow.
	srcCheckBefore = 7 * 24 * time.Hour
	srcCheckAfter  = 90 * 24 * time.Hour
)

// SourceStatus tells how the calendar sources of a schedule are doing. The
// top level describes the base calendar (ICal or File); Overrides the
// overrides calendar. A schedule without a calendar (rotations only) has a
// zero status.
type SourceStatus struct {
	// URL is the ICal URL with its path shortened to the last segment and
	// without query: private calendar URLs carry their secret there.
	URL  string `json:"url,omitempty"`
	File string `json:"file,omitempty"`
	// LastSuccess is when the source last answered with a calendar or
	// with "not modified"; LastAttempt when it was last asked.
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// LastError is the error of the last attempt; empty when it succeeded.
	// The last good copy, if any, stays in use.
	LastError string `json:"last_error,omitempty"`
	// ETag and LastModified come from the last 200 answer of a URL.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Events counts the VEVENTs of the copy in use (recurring events and
	// their overridden instances count one each).
	Events int `json:"events"`
	// Loaded is true once a copy is in use.
	Loaded bool `json:"loaded"`

	Overrides *SourceStatus `json:"overrides,omitempty"`
}

// calSource is one calendar: an http(s) URL or a local file. Its last good
// copy and status are an immutable snapshot swapped atomically, so readers
// never wait for a fetch.
type calSource struct {
	url, file string
	loc       *time.Location
	client    *http.Client
	log       *slog.Logger

	fetchMu sync.Mutex // one refresh at a time
	state   atomic.Pointer[calSourceState]
}

type calSourceState struct {
	cal     *Calendar // the last good copy; nil until the first success
	status  SourceStatus
	modTime time.Time // of the file when cal was read from it
	size    int64
}

// newCalSource makes the source of ref: a URL when it has an http, https or
// webcal scheme, else a file path.
func newCalSource(ref string, loc *time.Location, client *http.Client, log *slog.Logger) *calSource {
	s := &calSource{loc: loc, client: client}
	if u, err := url.Parse(ref); err == nil && u.Host != "" {
		switch strings.ToLower(u.Scheme) {
		case "webcal": // what calendar apps hand out for subscriptions
			u.Scheme = "https"
			s.url = u.String()
		case "http", "https":
			s.url = ref
		}
	}
	st := &calSourceState{}
	if s.url != "" {
		st.status.URL = srcRedactURL(s.url)
		s.log = log.With("source", st.status.URL)
	} else {
		s.file = ref
		st.status.File = ref
		s.log = log.With("source", ref)
	}
	s.state.Store(st)
	return s
}

// calendar returns the last good copy, nil if there is none.
func (s *calSource) calendar() *Calendar { return s.state.Load().cal }

func (s *calSource) status() SourceStatus { return s.state.Load().status }

// refresh fetches the source if it changed. A failure keeps the last good
// copy; it is logged, kept in the status and returned. changed reports
// that a new copy is in use.
func (s *calSource) refresh(ctx context.Context, now time.Time) (changed bool, err error) {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()

	old := s.state.Load()
	next := *old
	next.status.LastAttempt = now
	if s.url != "" {
		err = s.fetchURL(ctx, now, old, &next)
	} else {
		err = s.readFile(now, old, &next)
	}
	if err != nil && ctx.Err() != nil {
		return false, err // shutting down: not the source's failure
	}
	if err != nil {
		next.status.LastError = err.Error()
		s.log.Warn("calendar refresh failed; keeping the last good copy",
			"loaded", old.cal != nil, "err", err)
	} else {
		next.status.LastError = ""
		next.status.LastSuccess = now
	}
	s.state.Store(&next)
	return next.cal != old.cal, err
}

// fetchURL asks for the calendar unless it is unchanged since the copy in
// use (ETag, Last-Modified), and sets next from the answer.
func (s *calSource) fetchURL(ctx context.Context, now time.Time, old *calSourceState, next *calSourceState) error {
	ctx, cancel := context.WithTimeout(ctx, srcFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return fmt.Errorf("fetch calendar: %w", s.redact(err))
	}
	req.Header.Set("User-Agent", srcUserAgent)
	req.Header.Set("Accept", "text/calendar, */*;q=0.5")
	if old.cal != nil {
		if old.status.ETag != "" {
			req.Header.Set("If-None-Match", old.status.ETag)
		}
		if old.status.LastModified != "" {
			req.Header.Set("If-Modified-Since", old.status.LastModified)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch calendar: %w", s.redact(err))
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusNotModified && old.cal != nil:
		if etag := resp.Header.Get("ETag"); etag != "" {
			next.status.ETag = etag
		}
		s.log.Debug("calendar not modified")
		return nil
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("fetch calendar: HTTP status %s", resp.Status)
	}
	data, err := srcReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("fetch calendar: %w", s.redact(err))
	}
	cal, err := srcParse(data, s.loc, now)
	if err != nil {
		return fmt.Errorf("parse calendar: %w", err)
	}
	next.cal = cal
	next.status.ETag = resp.Header.Get("ETag")
	next.status.LastModified = resp.Header.Get("Last-Modified")
	next.status.Events = srcCountEvents(data)
	next.status.Loaded = true
	s.log.Info("calendar loaded", "events", next.status.Events, "bytes", len(data))
	return nil
}

// readFile reads the file unless its modification time and size are those
// of the copy in use, and sets next from it.
func (s *calSource) readFile(now time.Time, old *calSourceState, next *calSourceState) error {
	f, err := os.Open(s.file)
	if err != nil {
		return fmt.Errorf("read calendar: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read calendar: %w", err)
	}
	if old.cal != nil && info.ModTime().Equal(old.modTime) && info.Size() == old.size {
		return nil
	}
	data, err := srcReadAll(f)
	if err != nil {
		return fmt.Errorf("read calendar %s: %w", s.file, err)
	}
	cal, err := srcParse(data, s.loc, now)
	if err != nil {
		return fmt.Errorf("parse calendar %s: %w", s.file, err)
	}
	next.cal = cal
	next.modTime, next.size = info.ModTime(), info.Size()
	next.status.Events = srcCountEvents(data)
	next.status.Loaded = true
	s.log.Info("calendar loaded", "events", next.status.Events, "bytes", len(data))
	return nil
}

// srcParse parses a fetched or read calendar, and rejects one with more
// than calMaxShiftsPerQuery shifts around now: anyone who can edit a team
// calendar could otherwise make every query expand millions of shifts.
func srcParse(data []byte, loc *time.Location, now time.Time) (*Calendar, error) {
	cal, err := ParseCalendar(data, loc)
	if err != nil {
		return nil, err
	}
	if _, hit := cal.shiftsBudgeted(now.Add(-srcCheckBefore), now.Add(srcCheckAfter)); hit {
		return nil, fmt.Errorf("calendar too large: more than %d shifts in %d days",
			calMaxShiftsPerQuery, (srcCheckBefore+srcCheckAfter)/(24*time.Hour))
	}
	return cal, nil
}

// srcReadAll reads r up to srcMaxSize; more is an error.
func srcReadAll(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, srcMaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > srcMaxSize {
		return nil, fmt.Errorf("calendar larger than %d MiB", srcMaxSize>>20)
	}
	return data, nil
}

// srcCountEvents counts the lines that open a VEVENT (a folded
// continuation line starts with a space and is no such line).
func srcCountEvents(data []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, srcMaxSize)
	for sc.Scan() {
		if strings.EqualFold(strings.TrimRight(sc.Text(), " \t\r"), "BEGIN:VEVENT") {
			n++
		}
	}
	return n
}

// redact replaces the URL in a net/http error with its redacted form.
func (s *calSource) redact(err error) error {
	if uerr, ok := errors.AsType[*url.Error](err); ok {
		uerr.URL = srcRedactURL(uerr.URL)
	}
	return err
}

// srcRedactURL keeps the scheme, host and last path segment of a URL:
// enough to tell calendars apart, without the secret tokens that private
// calendar URLs carry in their path or query.
func srcRedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	short := u.Scheme + "://" + u.Host
	if dir, last := path.Split(u.Path); last != "" {
		if dir != "/" {
			short += "/…"
		}
		short += "/" + last
	}
	return short
}
