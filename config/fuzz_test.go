package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic or hang, and that
// every problem is reported as FILE:LINE: message. The seed corpus is in
// testdata/fuzz/FuzzParse; the test files and the example are added too.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range append(files, "../examples/oncall.yaml") {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	env := lookup(testEnv)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, env)
		if err == nil {
			if c == nil || len(c.Integrations) == 0 {
				t.Fatalf("no error, but config %+v", c)
			}
			return
		}
		if c != nil {
			t.Fatalf("config %+v returned with error %v", c, err)
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("got %#v, want Errors", err)
		}
		for _, e := range errs {
			if e.File != "fuzz.yaml" || e.Line < 1 || e.Msg == "" {
				t.Fatalf("malformed error %#v", e)
			}
		}
		if lines := strings.Split(err.Error(), "\n"); len(lines) < len(errs) {
			t.Fatalf("Error() prints %d lines for %d errors", len(lines), len(errs))
		}
	})
}
