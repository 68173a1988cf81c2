package twilio_test

import (
	"bytes"
	"encoding/xml"
	"testing"

	"github.com/oncallbot/oncall/integrations/twilio"
	"github.com/oncallbot/oncall/internal/golden"
)

func TestTwiMLGolden(t *testing.T) {
	tests := []struct {
		file string
		got  []byte
	}{
		{"testdata/say_and_gather.xml", twilio.SayAndGather(`Disk <full> on "db1" & db2's replica`, "https://oncall.example.com/twilio/voice/action?incident=42&d=9")},
		{"testdata/say.xml", twilio.Say("Incident 42 acknowledged. Goodbye.")},
		{"testdata/reply_message.xml", twilio.ReplyMessage("Incident 42 resolved <by you> & closed.")},
		{"testdata/reply_empty.xml", twilio.ReplyMessage("")},
	}
	for _, tt := range tests {
		golden.Check(t, tt.file, tt.got)
	}
}

// TestSayAndGatherEscapes parses the TwiML back: whatever the title holds,
// it comes out as the same text, and the action URL unchanged.
func TestSayAndGatherEscapes(t *testing.T) {
	for _, title := range []string{
		`</Say><Redirect>https://evil.example</Redirect><Say>`,
		`a & b < c > d "e" 'f'`,
		"tab\tand\nnewline",
	} {
		const action = "https://x.example/a?b=1&c=<2>"
		doc := twilio.SayAndGather(title, action)
		var r struct {
			Gather struct {
				Action    string   `xml:"action,attr"`
				NumDigits int      `xml:"numDigits,attr"`
				Says      []string `xml:"Say"`
			}
			Redirect []string
		}
		if err := xml.Unmarshal(doc, &r); err != nil {
			t.Fatalf("%q: %v\n%s", title, err, doc)
		}
		if len(r.Gather.Says) != 2 || r.Gather.Says[0] != title || r.Gather.Action != action ||
			r.Gather.NumDigits != 1 || len(r.Redirect) != 0 {
			t.Errorf("%q came back as %+v", title, r)
		}
		if !bytes.Contains(doc, []byte("Press 1 to acknowledge, 2 to resolve.")) {
			t.Errorf("no prompt in %s", doc)
		}
	}
}
