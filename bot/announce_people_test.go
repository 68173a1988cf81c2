package bot_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/internal/fakeslack"
)

// flakyLookup is lookupSlackID that fails, as Slack may for a while, for
// the people in failing.
type flakyLookup struct {
	mu      sync.Mutex
	failing map[string]bool
}

func (f *flakyLookup) fail(people ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = map[string]bool{}
	for _, p := range people {
		f.failing[p] = true
	}
}

func (f *flakyLookup) lookup(ctx context.Context, person string) (string, bool, error) {
	f.mu.Lock()
	failing := f.failing[person]
	f.mu.Unlock()
	if failing {
		return "", false, errors.New("users.lookupByEmail: 503 Service Unavailable")
	}
	return lookupSlackID(ctx, person)
}

// TestAnnounceWaitsOutFailedLookups: while Slack cannot say who someone on
// the schedule is, the user group is not set without them and no reminder
// goes out; both catch up once the lookup works again.
func TestAnnounceWaitsOutFailedLookups(t *testing.T) {
	t.Parallel()
	e := newAnnounceEnv(t, map[string]bot.AnnounceTarget{"primary": {Channel: oncallChannel, Usergroup: oncallGroup}})
	flaky := &flakyLookup{}
	e.lookup = flaky.lookup
	e.src.set("primary",
		onCall("alice@example.com", at(0, 9, 0), at(0, 21, 0)),
		onCall("carol@example.com", at(0, 9, 0), at(0, 21, 0)),
		onCall("bob@example.com", at(0, 21, 0), at(1, 9, 0)),
	)
	a := e.announcer()
	e.tick(a, at(0, 9, 0))
	both := []string{"U0ALICE", "U0CAROL"}
	if got := e.fake.UsergroupUsers(oncallGroup); !slices.Equal(got, both) {
		t.Fatalf("user group %v, want %v", got, both)
	}

	flaky.fail("alice@example.com")
	// 20:10: the user group is due a recheck, and bob his reminder.
	if _, err := bot.Tick(t.Context(), a, at(0, 20, 10)); err == nil {
		t.Error("the failed lookup was not reported")
	}
	if got := e.fake.UsergroupUsers(oncallGroup); !slices.Equal(got, both) {
		t.Errorf("during the failure the user group became %v, want %v", got, both)
	}
	bobDM := fakeslack.DMChannel("U0BOB")
	if got := e.texts(bobDM, ""); len(got) != 0 {
		t.Errorf("during the failure bob got %q", got)
	}

	flaky.fail()
	e.tick(a, at(0, 20, 11))
	if got := e.fake.UsergroupUsers(oncallGroup); !slices.Equal(got, both) {
		t.Errorf("after the failure the user group is %v, want %v", got, both)
	}
	want := []string{":pager: You are on call for *primary* from " + date(at(0, 21, 0)) + " to " + date(at(1, 9, 0)) + "."}
	if got := e.texts(bobDM, ""); !slices.Equal(got, want) {
		t.Errorf("after the failure bob's DMs are %q\nwant %q", got, want)
	}
}

// TestAnnounceKnowsAPersonNamedTwoWays: alice by email in the calendar,
// then by her Slack id in an override that extends her shift, is on call
// without a break: no handoff to her, no reminder of a shift she is on.
func TestAnnounceKnowsAPersonNamedTwoWays(t *testing.T) {
	t.Parallel()
	e := newAnnounceEnv(t, map[string]bot.AnnounceTarget{"primary": {Channel: oncallChannel, Usergroup: oncallGroup}})
	e.src.set("primary",
		onCall("bob@example.com", at(-1, 21, 0), at(0, 9, 0)),
		onCall("alice@example.com", at(0, 9, 0), at(0, 21, 0)),
		oncall.Shift{Person: "U0ALICE", Start: at(0, 21, 0), End: at(1, 9, 0), Source: "override"},
		onCall("bob@example.com", at(1, 9, 0), at(1, 21, 0)),
	)
	a := e.announcer()
	for _, now := range []struct{ d, h int }{{0, 8}, {0, 9}, {0, 20}, {0, 21}, {1, 8}, {1, 9}} {
		e.tick(a, at(now.d, now.h, 0))
	}

	wantPosts := []string{
		nowOnCall + ": <@U0ALICE> (until " + date(at(1, 9, 0)) + ")",
		nowOnCall + ": <@U0BOB> (until " + date(at(1, 21, 0)) + ")",
	}
	if got := e.texts(oncallChannel, nowOnCall); !slices.Equal(got, wantPosts) {
		t.Errorf("handoffs %q\nwant %q", got, wantPosts)
	}
	wantDMs := []string{":pager: You are on call for *primary* from " + date(at(0, 9, 0)) + " to " + date(at(1, 9, 0)) + "."}
	if got := e.texts(fakeslack.DMChannel("U0ALICE"), ""); !slices.Equal(got, wantDMs) {
		t.Errorf("alice's DMs %q\nwant %q", got, wantDMs)
	}
	if got, want := e.fake.UsergroupUsers(oncallGroup), []string{"U0BOB"}; !slices.Equal(got, want) {
		t.Errorf("user group %v, want %v", got, want)
	}
}
