package integrations

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

// TestAppendBatchJSON checks that appendBatchJSON encodes batches exactly
// as json.Marshal does: the parsed golden inputs, odd strings, times and
// slices, and a batch with every field of oncall.AlertBatch and
// oncall.Alert set, so that a field added there and not here fails.
func TestAppendBatchJSON(t *testing.T) {
	batches := map[string]oncall.AlertBatch{"every field": everyField(t)}
	parsers := builtinParsers()
	for _, in := range goldenInputs(t) {
		body, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		kind := strings.Split(in, string(os.PathSeparator))[1]
		b, err := parsers[kind](body, testNow)
		if err != nil {
			t.Fatal(err)
		}
		b.ID, b.Integration, b.Kind, b.ReceivedAt = newBatchID(), "x", kind, testNow
		batches[in] = b
	}
	odd := "ctl \x00\x01\x1f\x7f \b\f\n\r\t \"\\/ <b>&amp; \u2028\u2029 \xff\xfe \xe2\x80 é 😀 \ud7ff"
	tokyo := time.FixedZone("JST", 9*60*60)
	batches["odd strings"] = oncall.AlertBatch{ID: odd, Title: odd, Message: odd, Labels: map[string]string{odd: odd, "": "", "b": "<"},
		Alerts: []oncall.Alert{{Title: odd, Annotations: map[string]string{"z": odd, "a": ""}}}}
	batches["times"] = oncall.AlertBatch{ReceivedAt: time.Date(2026, 3, 1, 12, 0, 0, 123456789, tokyo),
		Alerts: []oncall.Alert{
			{StartsAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
			{EndsAt: time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("", -(23*60*60+59*60+59)))},
			{StartsAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.Local), EndsAt: time.Date(2026, 3, 1, 12, 0, 0, 500, time.UTC)},
		}}
	batches["zero value"] = oncall.AlertBatch{}
	batches["empty alerts and maps"] = oncall.AlertBatch{Alerts: []oncall.Alert{}, Labels: map[string]string{},
		Channel: "C1", Escalation: "e"}
	for name, b := range batches {
		t.Run(name, func(t *testing.T) { checkBatchJSON(t, b) })
	}

	// Times json.Marshal cannot encode are left to it.
	for _, at := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*60*60)),
	} {
		b := oncall.AlertBatch{Alerts: []oncall.Alert{{StartsAt: at}}}
		if _, ok := appendBatchJSON(nil, &b); ok {
			t.Errorf("appendBatchJSON encoded a batch starting at %s", at)
		}
		if _, err := marshalBatch(&b, 0); err == nil {
			t.Errorf("marshalBatch of a batch starting at %s: no error", at)
		}
	}
}

func FuzzAppendBatchJSON(f *testing.F) {
	f.Add("id", "title", "msg", "k", "v", int64(1772366400), int64(0), 0)
	f.Add("\xff<&>\u2028", "\x00\x1f\"\\", "", "", "\t", int64(-62135596800), int64(999999999), -3600)
	f.Fuzz(func(t *testing.T, s1, s2, s3, key, value string, sec, nsec int64, offset int) {
		at := time.Unix(sec, nsec).In(time.FixedZone("", offset))
		b := oncall.AlertBatch{ID: s1, Integration: s2, Kind: s3, ReceivedAt: at, GroupKey: key, Status: oncall.AlertStatus(value),
			Title: s1, Message: s2, Severity: oncall.Severity(s3), Link: key, ImageURL: value, Labels: map[string]string{key: value, s1: s2},
			Channel: s3, Escalation: s1,
			Alerts: []oncall.Alert{{Fingerprint: s1, Title: s2, Message: s3, Labels: map[string]string{value: key}, StartsAt: at, EndsAt: at.Add(time.Hour)}}}
		if _, err := json.Marshal(b); err != nil {
			if _, ok := appendBatchJSON(nil, &b); ok {
				t.Fatalf("appendBatchJSON encoded what json.Marshal refuses (%v): %+v", err, b)
			}
			return
		}
		checkBatchJSON(t, b)
	})
}

func checkBatchJSON(t *testing.T, b oncall.AlertBatch) {
	t.Helper()
	want, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := appendBatchJSON([]byte("prefix"), &b)
	if !ok || !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Errorf("appendBatchJSON (ok %v)\n got %s\nwant prefix%s", ok, got, want)
	}
}

// everyField returns a batch of two alerts with every field but Raw set,
// found by reflection.
func everyField(t *testing.T) oncall.AlertBatch {
	var b oncall.AlertBatch
	fill(t, reflect.ValueOf(&b).Elem())
	b.Raw = nil // encodeBatch appends it
	b.Alerts = append(b.Alerts, b.Alerts[0])
	return b
}

func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 3, 1, 12, 0, 0, 42, time.UTC)))
	case v.Type() == reflect.TypeFor[json.RawMessage]():
		v.SetBytes([]byte(`{}`))
	case v.Kind() == reflect.String:
		v.SetString("<" + v.Type().Name() + ">")
	case v.Kind() == reflect.Bool:
		v.SetBool(true)
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String && v.Type().Elem().Kind() == reflect.String:
		v.Set(reflect.ValueOf(map[string]string{"b": "2", "a": "1"}).Convert(v.Type()))
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0))
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i))
		}
	default:
		t.Fatalf("field of type %s: teach appendBatchJSON and this test to encode it", v.Type())
	}
}
