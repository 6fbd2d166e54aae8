package inference

import (
	"fmt"
	"math"
)

// Finite weights can still overflow: one huge c_attn value sends a
// position's keys to ±Inf, attention turns them into NaN, and every later
// row of that position (and, through attention, of later positions) follows.
// A lens of such a checkpoint is still a lens: its finite cells are exact,
// its other cells say what broke, and the Lens says where the residual
// stream broke first.

// NonFinite says where a cell's computation left float32's range.
type NonFinite uint8

const (
	// Finite: every logit of the cell is finite.
	Finite NonFinite = iota
	// ResidualInf: the residual stream h_l[t] holds ±Inf and no NaN, an overflow.
	ResidualInf
	// ResidualNaN: the residual stream h_l[t] holds NaN.
	ResidualNaN
	// LogitsOverflow: the residual is finite, but ln_f or the unembedding
	// left float32's range (a huge ln_f weight, say).
	LogitsOverflow
)

// String names the kind for messages and exports.
func (n NonFinite) String() string {
	switch n {
	case Finite:
		return "finite"
	case ResidualInf:
		return "inf"
	case ResidualNaN:
		return "nan"
	case LogitsOverflow:
		return "logits overflow"
	}
	return fmt.Sprintf("NonFinite(%d)", n)
}

// residualKind classifies a non-finite cell by its residual row h [C]:
// ResidualNaN, ResidualInf, or LogitsOverflow when h is finite.
func residualKind(h []float32) NonFinite {
	inf := false
	for _, v := range h {
		switch {
		case v != v:
			return ResidualNaN
		case math.IsInf(float64(v), 0):
			inf = true
		}
	}
	if inf {
		return ResidualInf
	}
	return LogitsOverflow
}

// setNonFinite makes c the cell of a row whose logits are not all finite:
// no top-k, NaN probabilities and information, ranks −1.
func setNonFinite(c *Cell, kind NonFinite, target, next int) {
	nan := math.NaN()
	*c = Cell{Entropy: nan, KLToFinal: nan, FinalTop1Rank: -1, FinalTop1Prob: nan,
		TargetRank: -1, NextRank: -1, NonFinite: kind}
	if target >= 0 {
		c.TargetProb = nan
	}
	if next >= 0 {
		c.NextProb = nan
	}
}

// Breakdown locates a non-finite cell of a Lens.
type Breakdown struct {
	Row  Row // the lens row
	Pos  int // the position, 0-based
	Kind NonFinite
}

// String says where and what, e.g. "layer 1: activations overflow (inf)
// at position 3".
func (b Breakdown) String() string {
	where := "layer " + b.Row.Name
	switch b.Row.Kind {
	case Embed:
		where = "embedding"
	case AttnMid:
		where = fmt.Sprintf("layer %d after attention", b.Row.Layer)
	}
	switch b.Kind {
	case ResidualInf:
		return fmt.Sprintf("%s: activations overflow (inf) at position %d", where, b.Pos)
	case ResidualNaN:
		return fmt.Sprintf("%s: activations are NaN at position %d", where, b.Pos)
	}
	return fmt.Sprintf("%s: the logits overflow at position %d (the residual is finite; ln_f or the unembedding leaves float32's range)", where, b.Pos)
}

// firstBreakdown finds the first cell, by row and then position, whose
// residual is not finite; failing that, the first cell with any NonFinite.
func firstBreakdown(rows []Row, cells [][]Cell) *Breakdown {
	var logits *Breakdown
	for r, row := range cells {
		for t, c := range row {
			switch c.NonFinite {
			case Finite:
			case LogitsOverflow:
				if logits == nil {
					logits = &Breakdown{Row: rows[r], Pos: t, Kind: c.NonFinite}
				}
			default:
				return &Breakdown{Row: rows[r], Pos: t, Kind: c.NonFinite}
			}
		}
	}
	return logits
}
