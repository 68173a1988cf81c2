package schedule

import (
	"slices"
	"sort"
	"time"

	"github.com/oncallbot/oncall"
)

// Index answers who is on call without touching sources: built once from
// merged shifts, it is immutable and safe for concurrent use.
//
// It is a centered interval tree over the shifts sorted by Start: each node
// holds the shifts that contain its center time, once in Start order and
// once in descending End order, and the shifts wholly before or after the
// center are in its subtrees. At visits one node per level and stops at
// the first shift of a node that does not match, so it costs O(log n + k)
// for k results (plus sorting the k results). Between adds the shifts
// starting inside the span, a contiguous run of the sorted shifts; Next is
// a binary search.
type Index struct {
	shifts []oncall.Shift // sorted by Start, Person (mergeCompare)
	nodes  []ixNode
	// byStart and byEnd hold every node's shifts (indices into shifts),
	// each node a run [lo, hi) of both: ascending Start in byStart,
	// descending End in byEnd.
	byStart, byEnd []int32
	root           int32 // -1 when empty
}

type ixNode struct {
	center      time.Time
	lo, hi      int32 // the node's run in byStart and byEnd
	left, right int32 // -1 when none
}

// NewIndex builds an index of shifts, which it copies; shifts with
// End <= Start are left out.
func NewIndex(shifts []oncall.Shift) *Index {
	ix := &Index{root: -1}
	ix.shifts = make([]oncall.Shift, 0, len(shifts))
	for _, s := range shifts {
		if s.Start.Before(s.End) {
			// Drop monotonic clock readings: comparisons use wall time.
			s.Start, s.End = s.Start.Round(0), s.End.Round(0)
			ix.shifts = append(ix.shifts, s)
		}
	}
	ix.shifts = mergeSort(ix.shifts)
	if len(ix.shifts) == 0 {
		return ix
	}
	all := make([]int32, len(ix.shifts))
	for i := range all {
		all[i] = int32(i)
	}
	ix.byStart = make([]int32, 0, len(all))
	ix.byEnd = make([]int32, 0, len(all))
	ix.root = ix.build(all, make([]int32, 0, len(all)))
	return ix
}

// build makes the subtree of the shifts ids (ascending, so sorted by
// Start) and returns its node. scratch is reused for the right part.
func (ix *Index) build(ids, scratch []int32) int32 {
	if len(ids) == 0 {
		return -1
	}
	// The middle shift's Start as center: the shifts wholly before it
	// (End <= center) and wholly after it (Start > center) are each at most
	// half of ids, so the tree is balanced.
	center := ix.shifts[ids[len(ids)/2]].Start
	left := ids[:0] // reuses ids: the left part is written behind the reading
	right := scratch[:0]
	lo := int32(len(ix.byStart))
	for _, id := range ids {
		s := &ix.shifts[id]
		switch {
		case !s.End.After(center):
			left = append(left, id)
		case s.Start.After(center):
			right = append(right, id)
		default:
			ix.byStart = append(ix.byStart, id)
		}
	}
	hi := int32(len(ix.byStart))
	ix.byEnd = append(ix.byEnd, ix.byStart[lo:hi]...)
	slices.SortFunc(ix.byEnd[lo:hi], func(a, b int32) int {
		return ix.shifts[b].End.Compare(ix.shifts[a].End)
	})

	n := int32(len(ix.nodes))
	ix.nodes = append(ix.nodes, ixNode{center: center, lo: lo, hi: hi})
	// right lives in scratch, which the left subtree needs: copy it to the
	// tail of ids, free now that left is shorter than ids.
	rightIDs := ids[len(ids)-len(right):]
	copy(rightIDs, right)
	l := ix.build(left, scratch)
	r := ix.build(rightIDs, scratch)
	ix.nodes[n].left, ix.nodes[n].right = l, r
	return n
}

// Len is the number of shifts in the index.
func (ix *Index) Len() int { return len(ix.shifts) }

// At returns the shifts containing t (Start <= t < End), sorted by Start,
// then Person.
func (ix *Index) At(t time.Time) []oncall.Shift {
	var buf [32]int32 // most answers fit: no allocation but the result
	ids := ix.stab(t, buf[:0])
	slices.Sort(ids)
	return ix.collect(ids, 0, 0)
}

// Between returns the shifts overlapping [from, to), sorted by Start, then
// Person.
func (ix *Index) Between(from, to time.Time) []oncall.Shift {
	if !from.Before(to) {
		return nil
	}
	lo := ix.firstStartFrom(from, false)
	hi := ix.firstStartFrom(to, false)
	// Those that start before from and are still on at from, then those
	// that start within [from, to).
	var buf, beforeBuf [32]int32
	before := beforeBuf[:0]
	for _, id := range ix.stab(from, buf[:0]) {
		if int(id) < lo {
			before = append(before, id)
		}
	}
	slices.Sort(before)
	return ix.collect(before, lo, hi)
}

// Next returns the next shifts starting after t: all those with the
// earliest Start > t, sorted by Person; nil when none.
func (ix *Index) Next(t time.Time) []oncall.Shift {
	i := ix.firstStartFrom(t, true)
	if i == len(ix.shifts) {
		return nil
	}
	j := ix.firstStartFrom(ix.shifts[i].Start, true)
	return ix.collect(nil, i, j)
}

// stab appends to ids the indices of the shifts containing t, unordered.
func (ix *Index) stab(t time.Time, ids []int32) []int32 {
	for n := ix.root; n >= 0; {
		node := &ix.nodes[n]
		if t.Before(node.center) {
			// Every shift here ends after the center, so after t: it
			// contains t when it has started.
			for _, id := range ix.byStart[node.lo:node.hi] {
				if ix.shifts[id].Start.After(t) {
					break
				}
				ids = append(ids, id)
			}
			n = node.left
			continue
		}
		// Every shift here has started by the center, so by t: it contains
		// t when it ends after t.
		for _, id := range ix.byEnd[node.lo:node.hi] {
			if !ix.shifts[id].End.After(t) {
				break
			}
			ids = append(ids, id)
		}
		n = node.right
	}
	return ids
}

// firstStartFrom is the index of the first shift with Start >= t, or with
// Start > t when after is set.
func (ix *Index) firstStartFrom(t time.Time, after bool) int {
	return sort.Search(len(ix.shifts), func(i int) bool {
		if after {
			return ix.shifts[i].Start.After(t)
		}
		return !ix.shifts[i].Start.Before(t)
	})
}

// collect copies the shifts ids and then shifts[lo:hi] into a new slice;
// nil when there are none.
func (ix *Index) collect(ids []int32, lo, hi int) []oncall.Shift {
	n := len(ids) + hi - lo
	if n == 0 {
		return nil
	}
	out := make([]oncall.Shift, 0, n)
	for _, id := range ids {
		out = append(out, ix.shifts[id])
	}
	return append(out, ix.shifts[lo:hi]...)
}
