package twilio_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/integrations/twilio"
)

// FuzzParseReply: whatever a person texts back, the parser never panics,
// and what it accepts is an action on a positive incident that reads back
// the same from its canonical form. Seeds: testdata/fuzz/FuzzParseReply.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"A12", "ack 12", "Acknowledge #12", "r12", "RESOLVE 12", " res\t12\n", "A0",
		"A-1", "A99999999999999999999", "ok thanks", "", "ACK", "A12 on it", "#12 a", "Ａ12"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		a, id, ok := twilio.ParseReply(body)
		if !ok {
			return
		}
		if id <= 0 || (a != oncall.ActionAcknowledge && a != oncall.ActionResolve) {
			t.Fatalf("ParseReply(%q) = %q, %d: want acknowledge or resolve of a positive incident", body, a, id)
		}
		letter := map[oncall.Action]string{oncall.ActionAcknowledge: "A", oncall.ActionResolve: "R"}[a]
		canon := fmt.Sprintf("%s%d", letter, id)
		if a2, id2, ok2 := twilio.ParseReply(canon); !ok2 || a2 != a || id2 != id {
			t.Fatalf("ParseReply(%q) = %q, %d; its canonical form %q reads %q, %d, %v", body, a, id, canon, a2, id2, ok2)
		}
		if !strings.Contains(strings.ToUpper(strings.Join(strings.Fields(body), "")), fmt.Sprint(id)) {
			t.Fatalf("ParseReply(%q) found incident %d, which the text does not name", body, id)
		}
	})
}
