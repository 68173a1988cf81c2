package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a config file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e Error) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Errors lists every problem found in a config file. Parse and Load return
// it sorted by line.
type Errors []Error

// Error prints one "FILE:LINE: message" per line, sorted by line.
func (es Errors) Error() string {
	sorted := slices.Clone(es)
	sortErrors(sorted)
	lines := make([]string, len(sorted))
	for i, e := range sorted {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sortErrors orders errors by line, keeping the order of discovery within
// a line.
func sortErrors(es Errors) {
	slices.SortStableFunc(es, func(a, b Error) int { return a.Line - b.Line })
}

// yamlLine matches the errors of the YAML parser, e.g.
// "yaml: line 3: mapping values are not allowed in this context".
var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// syntaxError converts an error of the YAML parser for data to an Error.
//
// The parser reports the line where the construct around the problem
// starts, or no line at all. The problem is reported instead on the line
// after which the file, cut short, stops parsing: found by bisection from
// the parser's line, as cutting the file later rarely makes it parse again.
func syntaxError(file string, data []byte, err error) Error {
	msg, from := err.Error(), 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		msg = m[2]
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n > 0 {
			from = n
		}
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if from > len(lines) {
		return Error{File: file, Line: from, Msg: "invalid YAML: " + msg}
	}
	line := from + sort.Search(len(lines)-from+1, func(i int) bool {
		return parseAll(bytes.Join(lines[:from+i], nil)) != nil
	})
	if line > len(lines) { // never parses short of the end: keep the parser's line
		line = from
	}
	return Error{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

// parseAll parses every YAML document in data and returns the first error.
func parseAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
