package inference

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPriorityColumnsFirst: with Request.Priority the priority columns are
// passed first, every column once, and the lens equals one computed
// without priorities on a fresh session; so after an edit near the start,
// after a one-token change that makes only the previous position's next
// token stale, and after a cancellation part-way.
func TestPriorityColumnsFirst(t *testing.T) {
	m := testModel(t, "tiny-f32")
	T := min(m.Config().NPositions, 80)
	if T <= 2*forwardChunk {
		t.Fatalf("n_positions %d leaves no room for several forward chunks", m.Config().NPositions)
	}
	r := rand.New(rand.NewPCG(3, 4))
	ids := make([]int, T)
	for i := range ids {
		ids[i] = r.IntN(m.Config().VocabSize - 1)
	}
	base := Request{TopK: 5, Target: 262, Sublayers: true, NextToken: true}
	fresh := func(ids []int) *Lens {
		req := base
		req.IDs = ids
		l, err := m.NewSession().Lens(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	s := m.NewSession()
	defer s.Close()
	run := func(ctx context.Context, ids, priority []int) (*Lens, []int, error) {
		req := base
		req.IDs, req.Priority = ids, priority
		var order []int
		l, err := s.Lens(ctx, req, func(c Column) {
			order = append(order, c.Pos)
		})
		return l, order, err
	}
	check := func(name string, ids, priority []int) {
		t.Helper()
		got, order, err := run(context.Background(), ids, priority)
		if err != nil {
			t.Fatal(err)
		}
		want := fresh(ids)
		if d := maxCellDiff(t, want, got); d > 1e-6 {
			t.Errorf("%s: the lens differs from a fresh one by %g", name, d)
		}
		var first []int
		for _, p := range priority {
			if p >= 0 && p < len(ids) {
				first = append(first, p)
			}
		}
		slices.Sort(first)
		first = slices.Compact(first)
		if len(order) != len(ids) || !slices.Equal(order[:len(first)], first) {
			t.Errorf("%s: columns came in the order %v, want %v first", name, order, first)
		}
		seen := slices.Clone(order)
		slices.Sort(seen)
		if n := len(slices.Compact(seen)); n != len(ids) {
			t.Errorf("%s: %d distinct columns of %d", name, n, len(ids))
		}
	}
	last16 := func(n int) []int {
		var p []int
		for i := max(0, n-16); i < n; i++ {
			p = append(p, i)
		}
		return p
	}
	check("from scratch", ids, append(last16(T), 3, -1, T+5))

	edited := slices.Clone(ids)
	edited[0] ^= 1
	check("first token replaced", edited, last16(T))

	one := slices.Clone(edited)
	one[40] = (one[40] + 7) % (m.Config().VocabSize - 1)
	check("token 40 changed", one, []int{10, 11, 12})

	// Cancelled once the priority columns are out: the session stays
	// consistent, and the next lens is right.
	again := slices.Clone(one)
	again[1] ^= 1
	ctx, cancel := context.WithCancel(context.Background())
	req := base
	req.IDs, req.Priority = again, last16(T)
	n := 0
	_, err := s.Lens(ctx, req, func(Column) {
		if n++; n == 16 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled lens: %v", err)
	}
	check("after a cancellation", again, nil)
}
