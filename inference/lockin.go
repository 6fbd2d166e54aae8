package inference

// LockIn returns the lens row at which one position's prediction locks in:
// the lowest row from which every row's top-1 is the output row's top-1,
// up to and including the output row. column holds the position's cells,
// one per row from the embedding up, the output row last. It is the
// output row's index when only the output predicts its own top-1, and -1
// when the output row has no top-1 (its logits were not finite) or column
// is empty.
func LockIn(column []Cell) int {
	if len(column) == 0 || len(column[len(column)-1].Top) == 0 {
		return -1
	}
	final := column[len(column)-1].Top[0].ID
	r := len(column) - 1
	for r > 0 && len(column[r-1].Top) > 0 && column[r-1].Top[0].ID == final {
		r--
	}
	return r
}

// LockIns returns LockIn of every position of a lens.
func (l *Lens) LockIns() []int {
	out := make([]int, len(l.IDs))
	column := make([]Cell, len(l.Cells))
	for p := range out {
		for r := range l.Cells {
			column[r] = l.Cells[r][p]
		}
		out[p] = LockIn(column)
	}
	return out
}
