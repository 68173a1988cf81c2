package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the work spent on one file. Aliases let a small file name
// the same nodes many times over; a config for thousands of users needs
// a tenth of this.
const maxNodes = 200_000

// decoder turns the YAML node tree into a Config, collecting every problem
// instead of stopping at the first. Scalar values are expanded from the
// environment as they are read.
type decoder struct {
	file      string
	lookupEnv func(string) (string, bool)
	errs      Errors
	reported  map[Error]bool
	// failed holds value nodes that could not be decoded, so that a
	// problem already reported is not reported again as a missing field.
	failed   map[*yaml.Node]bool
	nodes    int   // nodes visited, bounded by maxNodes
	tooLarge Error // reported alone once nodes reaches maxNodes
	// defined maps "kind\x00name" to the line defining it, and tokens
	// each integration token to its line, to report duplicates.
	defined map[string]int
	tokens  map[string]int
	pending []ref // checked by checkRefs once everything is decoded
}

// ref is a name that must be defined elsewhere in the file; refs are
// checked once the whole file is decoded.
type ref struct {
	line int
	key  string // the field holding the name, e.g. "escalation"
	to   string // refUser, refSchedule or refChain
	name string
}

const (
	refUser     = "user"
	refSchedule = "schedule"
	refChain    = "escalation chain"
)

func newDecoder(file string, lookupEnv func(string) (string, bool)) *decoder {
	return &decoder{
		file:      file,
		lookupEnv: lookupEnv,
		reported:  map[Error]bool{},
		failed:    map[*yaml.Node]bool{},
		defined:   map[string]int{},
		tokens:    map[string]int{},
	}
}

func (d *decoder) errorf(line int, format string, args ...any) {
	if line < 1 {
		line = 1
	}
	d.report(Error{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// report records e once: a node reached through several aliases reports
// its problems once.
func (d *decoder) report(e Error) {
	if d.reported[e] {
		return
	}
	d.reported[e] = true
	d.errs = append(d.errs, e)
}

// result returns the problems found, sorted by line.
func (d *decoder) result() Errors {
	es := slices.Clone(d.errs)
	sortErrors(es)
	return es
}

// decodeFile parses the single YAML document in data.
func (d *decoder) decodeFile(data []byte) *Config {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		d.report(syntaxError(d.file, data, err))
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		d.errorf(next.Line, "only one YAML document is allowed in a config file")
		return nil
	case !errors.Is(err, io.EOF):
		d.report(syntaxError(d.file, data, err))
		return nil
	}
	var root *yaml.Node
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	c := d.config(root)
	if d.nodes >= maxNodes { // the rest of the file went unread
		d.errs = Errors{d.tooLarge}
		return nil
	}
	d.checkRefs(c)
	return c
}

// resolve follows aliases and counts the node against maxNodes. It returns
// nil for a missing node, a null value, or once the budget is spent.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	d.nodes++
	if d.nodes == maxNodes {
		d.tooLarge = Error{File: d.file, Line: n.Line, Msg: "file too large (too many aliases?)"}
	}
	if d.nodes >= maxNodes {
		return nil
	}
	return n
}

// field decodes the value of one mapping key.
type field func(key string, v *yaml.Node)

// keys records what a mapping held: the value node of each known key, and
// the known keys that an unknown key looks like a misspelling of (so that
// the typo is reported once, not again as a missing field).
type keys struct {
	values map[string]*yaml.Node
	typos  map[string]bool
}

// line returns the line of key's value, or fallback if the key is absent.
func (k keys) line(key string, fallback int) int {
	if v := k.values[key]; v != nil {
		return v.Line
	}
	return fallback
}

// has reports whether key is present with a value other than null.
func (k keys) has(key string) bool {
	v := k.values[key]
	return v != nil && !(v.Kind == yaml.ScalarNode && v.Tag == "!!null")
}

// maxMergeDepth bounds merge keys within merged mappings.
const maxMergeDepth = 8

// pair is a key and its value in a mapping; merged marks a pair that came
// from a merge key (<<: *anchor).
type pair struct {
	key, value *yaml.Node
	merged     bool
}

// pairs returns the pairs of the mapping n followed by those of the
// mappings it merges, in the order in which YAML merge keys give them
// precedence: n's own keys first, then each merged mapping in turn.
func (d *decoder) pairs(n *yaml.Node, depth int) []pair {
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag != "!!merge" {
			own = append(own, pair{key: k, value: v, merged: depth > 0})
			continue
		}
		if depth == maxMergeDepth {
			d.errorf(k.Line, "<<: merge keys nested too deeply")
			continue
		}
		v = d.resolve(v)
		sources := []*yaml.Node{v}
		if v != nil && v.Kind == yaml.SequenceNode {
			sources = v.Content
		}
		for _, src := range sources {
			src = d.resolve(src)
			if src == nil || src.Kind != yaml.MappingNode {
				d.errorf(k.Line, "<<: expected an alias of a mapping, such as <<: *defaults")
				continue
			}
			for _, p := range d.pairs(src, depth+1) {
				p.merged = true
				merged = append(merged, p)
			}
		}
	}
	return append(own, merged...)
}

// mapping decodes the mapping n, whose fields are the only keys allowed.
// what names the mapping in messages ("integration").
func (d *decoder) mapping(n *yaml.Node, what string, fields map[string]field) keys {
	found := keys{values: map[string]*yaml.Node{}, typos: map[string]bool{}}
	n = d.resolve(n)
	if n == nil {
		return found
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, "%s: expected a mapping of keys to values, got %s", what, describe(n))
		d.failed[n] = true
		return found
	}
	for _, p := range d.pairs(n, 0) {
		if p.key.Kind != yaml.ScalarNode {
			d.errorf(p.key.Line, "%s: keys must be plain names", what)
			continue
		}
		key := p.key.Value
		if prev, seen := found.values[key]; seen {
			if !p.merged { // a merged key is overridden by an explicit one
				d.errorf(p.key.Line, "%s: %s is set twice (first at line %d)", what, key, prev.Line)
			}
			continue
		}
		f, ok := fields[key]
		if !ok {
			guess := closest(key, fields)
			if guess != "" {
				found.typos[guess] = true
				d.errorf(p.key.Line, "unknown field %q in %s (did you mean %q?)", key, what, guess)
			} else {
				d.errorf(p.key.Line, "unknown field %q in %s", key, what)
			}
			continue
		}
		v := p.value
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		found.values[key] = v
		f(key, v)
	}
	return found
}

// sequence calls item for each element of the sequence n.
func (d *decoder) sequence(n *yaml.Node, key string, item func(*yaml.Node)) {
	n = d.resolve(n)
	if n == nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, "%s: expected a list, got %s", key, describe(n))
		d.failed[n] = true
		return
	}
	for _, e := range n.Content {
		item(e)
	}
}

// scalar returns the value of the scalar n with ${NAME} expanded. ok is
// false for a missing or null value and after a reported problem.
func (d *decoder) scalar(n *yaml.Node, key string) (s string, ok bool) {
	n = d.resolve(n)
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, "%s: expected a single value, got %s", key, describe(n))
		d.failed[n] = true
		return "", false
	}
	s, problems := expand(n.Value, d.lookupEnv)
	for _, p := range problems {
		d.errorf(n.Line, "%s", p)
	}
	if len(problems) > 0 {
		d.failed[n] = true
		return "", false
	}
	return s, true
}

// str decodes a string field into dst.
func (d *decoder) str(dst *string) field {
	return func(key string, v *yaml.Node) {
		*dst, _ = d.scalar(v, key)
	}
}

// item returns the mapping of a list entry, or nil after reporting an
// empty entry or one that is not a mapping.
func (d *decoder) item(n *yaml.Node, what string) *yaml.Node {
	e := d.resolve(n)
	switch {
	case e == nil:
		d.errorf(n.Line, "%s: empty entry", what)
		return nil
	case e.Kind != yaml.MappingNode:
		d.errorf(e.Line, "%s: expected a mapping of keys to values, got %s", what, describe(e))
		return nil
	}
	return e
}

// list decodes each entry of a list with item.
func (d *decoder) list(item func(*yaml.Node)) field {
	return func(key string, v *yaml.Node) {
		d.sequence(v, key, item)
	}
}

// ref decodes the name of something defined elsewhere in the file.
func (d *decoder) ref(dst *string, to string) field {
	return func(key string, v *yaml.Node) {
		if s, ok := d.scalar(v, key); ok && s != "" {
			*dst = s
			d.pending = append(d.pending, ref{line: v.Line, key: key, to: to, name: s})
		}
	}
}

// refs decodes a list of names of things defined elsewhere in the file.
func (d *decoder) refs(dst *[]string, to string) field {
	return func(key string, v *yaml.Node) {
		d.sequence(v, key, func(e *yaml.Node) {
			var name string
			d.ref(&name, to)(key, e)
			if name != "" {
				*dst = append(*dst, name)
			}
		})
	}
}

// integer decodes a whole number into dst.
func (d *decoder) integer(dst *int) field {
	return func(key string, v *yaml.Node) {
		s, ok := d.scalar(v, key)
		if !ok {
			return
		}
		i, err := strconv.Atoi(s)
		if err != nil {
			d.errorf(v.Line, "%s: expected a whole number, got %q", key, s)
			d.failed[v] = true
			return
		}
		*dst = i
	}
}

// duration decodes a Go duration into dst.
func (d *decoder) duration(dst *Duration) field {
	return func(key string, v *yaml.Node) {
		s, ok := d.scalar(v, key)
		if !ok {
			return
		}
		t, err := time.ParseDuration(s)
		if err != nil {
			d.errorf(v.Line, "%s: invalid duration %q (use Go durations such as 30s, 5m, 12h)", key, s)
			d.failed[v] = true
			return
		}
		*dst = Duration(t)
	}
}

// timestamp decodes an RFC 3339 time into dst, in UTC.
func (d *decoder) timestamp(dst *time.Time) field {
	return func(key string, v *yaml.Node) {
		s, ok := d.scalar(v, key)
		if !ok {
			return
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			d.errorf(v.Line, "%s: invalid time %q (use RFC 3339, such as 2026-03-01T22:00:00+01:00)", key, s)
			d.failed[v] = true
			return
		}
		*dst = t.UTC()
	}
}

// stringMap decodes a mapping of strings to strings into dst.
func (d *decoder) stringMap(dst *map[string]string) field {
	return func(key string, v *yaml.Node) {
		n := d.resolve(v)
		if n == nil {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errorf(n.Line, "%s: expected a mapping such as {severity: critical}, got %s", key, describe(n))
			d.failed[n] = true
			return
		}
		m := map[string]string{}
		for _, p := range d.pairs(n, 0) {
			if p.key.Kind != yaml.ScalarNode {
				d.errorf(p.key.Line, "%s: keys must be plain names", key)
				continue
			}
			label := p.key.Value
			if _, seen := m[label]; seen {
				if !p.merged {
					d.errorf(p.key.Line, "%s: %s is set twice", key, label)
				}
				continue
			}
			m[label], _ = d.scalar(p.value, label)
		}
		*dst = m
	}
}

// given reports whether key has a value: set is true, or the value could
// not be decoded, or the key was misspelt (and that was reported).
func (d *decoder) given(found keys, key string, set bool) bool {
	return set || d.failed[found.values[key]] || found.typos[key]
}

// need reports "WHAT: KEY is required" at line unless key is given, and
// returns whether it is set.
func (d *decoder) need(line int, what string, found keys, key string, empty bool) bool {
	if !d.given(found, key, !empty) {
		d.errorf(line, "%s: %s is required", what, key)
	}
	return !empty
}

// define records that a kind of thing named name is defined at line, and
// reports a second definition.
func (d *decoder) define(line int, key, kind, name string) {
	id := kind + "\x00" + name
	if prev, ok := d.defined[id]; ok {
		d.errorf(line, "%s: %s %q is already defined at line %d", key, kind, name, prev)
		return
	}
	d.defined[id] = line
}

// describe names the kind of a node for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

// closest returns the known key closest to an unknown one, if it is close
// enough to be a typo, or "".
func closest(key string, fields map[string]field) string {
	best, bestDist := "", 3 // at most two edits away
	for name := range fields {
		if dist := editDistance(strings.ToLower(key), name); dist < bestDist || (dist == bestDist && name < best) {
			best, bestDist = name, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
