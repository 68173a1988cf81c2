package twilio

import (
	"encoding/xml"
)

// Prompts a paging call speaks.
const (
	gatherPrompt = "Press 1 to acknowledge, 2 to resolve."
	noInput      = "No key was pressed. Goodbye."
)

type twimlResponse struct {
	XMLName xml.Name `xml:"Response"`
	Verbs   []any
}

type twimlSay struct {
	XMLName xml.Name `xml:"Say"`
	Text    string   `xml:",chardata"`
}

type twimlGather struct {
	XMLName   xml.Name   `xml:"Gather"`
	NumDigits int        `xml:"numDigits,attr"`
	Action    string     `xml:"action,attr"`
	Method    string     `xml:"method,attr"`
	Timeout   int        `xml:"timeout,attr"`
	Says      []twimlSay `xml:"Say"`
}

type twimlMessage struct {
	XMLName xml.Name `xml:"Message"`
	Text    string   `xml:",chardata"`
}

// SayAndGather is the TwiML of a paging call: it reads text (the incident's
// title), asks to press 1 to acknowledge or 2 to resolve, and posts the key
// to actionURL; without a key it says goodbye and hangs up. Text and URL are
// escaped for XML.
func SayAndGather(text, actionURL string) []byte {
	return render(twimlResponse{Verbs: []any{
		twimlGather{
			NumDigits: 1,
			Action:    actionURL,
			Method:    "POST",
			Timeout:   10,
			Says:      []twimlSay{{Text: text}, {Text: gatherPrompt}},
		},
		twimlSay{Text: noInput},
	}})
}

// Say is TwiML that speaks text and hangs up: the answer to a key press.
func Say(text string) []byte {
	return render(twimlResponse{Verbs: []any{twimlSay{Text: text}}})
}

// ReplyMessage is TwiML answering an inbound SMS with text; with text empty
// it answers nothing.
func ReplyMessage(text string) []byte {
	if text == "" {
		return render(twimlResponse{})
	}
	return render(twimlResponse{Verbs: []any{twimlMessage{Text: text}}})
}

func render(r twimlResponse) []byte {
	b, err := xml.MarshalIndent(r, "", "  ")
	if err != nil {
		// Only a type encoding/xml cannot marshal fails, and these are
		// fixed structs of strings and ints.
		panic("render TwiML: " + err.Error())
	}
	return append(append([]byte(xml.Header), b...), '\n')
}
