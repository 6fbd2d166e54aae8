package inference

import (
	"slices"
	"testing"
)

func TestLockIn(t *testing.T) {
	top := func(ids ...int) []Cell {
		col := make([]Cell, len(ids))
		for i, id := range ids {
			if id >= 0 {
				col[i].Top = []Prediction{{ID: id, Prob: 0.5}}
			}
		}
		return col
	}
	for _, c := range []struct {
		name   string
		column []Cell
		want   int
	}{
		{"from the embedding", top(7, 7, 7, 7), 0},
		{"at layer 2", top(1, 3, 7, 7), 2},
		{"agrees early, then not, then again", top(7, 7, 3, 7, 7), 3},
		{"only the output", top(7, 7, 3, 7), 3},
		{"a row without top-1 breaks the run", top(7, -1, 7, 7), 2},
		{"output not finite", top(7, 7, -1), -1},
		{"one row", top(4), 0},
		{"no rows", nil, -1},
	} {
		if got := LockIn(c.column); got != c.want {
			t.Errorf("%s: LockIn = %d, want %d", c.name, got, c.want)
		}
	}
	l := &Lens{IDs: []int{5, 6}, Cells: [][]Cell{top(1, 9), top(2, 9), top(2, 9)}}
	if got := l.LockIns(); !slices.Equal(got, []int{1, 0}) {
		t.Errorf("LockIns = %v, want [1 0]", got)
	}
}
