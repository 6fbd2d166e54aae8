package inference

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// logitsRow returns V random logits like a lens row's, with some exact ties
// (including at the maximum) when ties is set.
func logitsRow(r *rand.Rand, V int, scale float32, ties bool) []float32 {
	z := make([]float32, V)
	for i := range z {
		z[i] = (r.Float32()*2 - 1) * scale
	}
	if ties && V > 3 {
		for range 1 + V/10 {
			z[r.IntN(V)] = z[r.IntN(V)]
		}
		mx := z[0]
		for _, v := range z {
			mx = max(mx, v)
		}
		z[r.IntN(V)] = mx
	}
	return z
}

// checkCellsEqual compares a fast cell with the reference's.
func checkCellsEqual(t *testing.T, what string, got, want Cell) {
	t.Helper()
	if got.FinalTop1Rank != want.FinalTop1Rank || got.TargetRank != want.TargetRank || got.NextRank != want.NextRank || len(got.Top) != len(want.Top) {
		t.Fatalf("%s: ranks/top-k length %d %d %d %d, reference %d %d %d %d", what, got.FinalTop1Rank, got.TargetRank, got.NextRank, len(got.Top),
			want.FinalTop1Rank, want.TargetRank, want.NextRank, len(want.Top))
	}
	for j := range got.Top {
		if got.Top[j].ID != want.Top[j].ID || math.Abs(got.Top[j].Prob-want.Top[j].Prob) > 1e-6 {
			t.Fatalf("%s: top[%d] = %+v, reference %+v", what, j, got.Top[j], want.Top[j])
		}
	}
	for _, d := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"entropy", got.Entropy, want.Entropy, 2e-5},
		{"KL", got.KLToFinal, want.KLToFinal, 2e-5},
		{"final top-1 prob", got.FinalTop1Prob, want.FinalTop1Prob, 1e-6},
		{"target prob", got.TargetProb, want.TargetProb, 1e-6},
		{"next prob", got.NextProb, want.NextProb, 1e-6},
	} {
		if math.Abs(d.got-d.want) > d.tol*max(1, math.Abs(d.want)) || math.IsNaN(d.got) {
			t.Fatalf("%s: %s %g, reference %g", what, d.name, d.got, d.want)
		}
	}
}

// checkStats runs the fast and the reference statistics on one position
// (a final row and another row) and compares everything.
func checkStats(t *testing.T, r *rand.Rand, V, k int, scale float32, ties bool) {
	t.Helper()
	zf, z := logitsRow(r, V, scale, ties), logitsRow(r, V, scale, ties)
	target := -1
	if r.IntN(3) > 0 {
		target = r.IntN(V)
	}
	pf, pr := make([]float32, V), make([]float32, V)
	fin, ref := finalRowOf(zf, pf), finalRowOfRef(zf, pr)
	what := fmt.Sprintf("V=%d k=%d scale=%g ties=%v target=%d", V, k, scale, ties, target)
	if fin.top1 != ref.top1 || math.Abs(fin.negEnt-ref.negEnt) > 2e-5*max(1, math.Abs(ref.negEnt)) {
		t.Fatalf("%s: final row top-1 %d −H %g, reference %d %g", what, fin.top1, fin.negEnt, ref.top1, ref.negEnt)
	}
	for i := range pf {
		if math.Abs(float64(pf[i]-pr[i])) > 1e-6*max(float64(pr[i]), 1e-3) {
			t.Fatalf("%s: P_final[%d] = %g, reference %g", what, i, pf[i], pr[i])
		}
	}
	var got, want Cell
	q := query{k: k, target: target, next: -1}
	if r.IntN(2) == 0 {
		q.next = r.IntN(V)
	}
	rowStats(&got, z, &fin, q)
	rowStatsRef(&want, z, &ref, q)
	checkCellsEqual(t, what, got, want)
	finNoKL, refNoKL := fin, ref
	finNoKL.probs, refNoKL.probs = nil, nil
	rowStats(&got, zf, &finNoKL, q)
	rowStatsRef(&want, zf, &refNoKL, q)
	checkCellsEqual(t, what+" (final row)", got, want)
}

// Every row length up to a few vector chunks and past the vector tails,
// every k, with and without ties.
func TestRowStatsMatchesReferenceExhaustive(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for V := 1; V <= 80; V++ {
		for _, k := range []int{1, 2, 5, 10, MaxTopK} {
			checkStats(t, r, V, min(k, V), 10, V%2 == 0)
		}
	}
}

// Random lengths around statsChunk and the real vocabulary, random scales
// (large logits test exp's range).
func TestRowStatsMatchesReferenceRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, V := range []int{statsChunk - 1, statsChunk, statsChunk + 9, 3*statsChunk + 31, 50257} {
		for range 3 {
			checkStats(t, r, V, 1+r.IntN(MaxTopK), []float32{0.1, 5, 30, 200}[r.IntN(4)], r.IntN(2) == 0)
		}
	}
}

// Finite logits too far apart for exp (a huge ln_f gain makes them ~1e36)
// give a one-hot distribution: exp(z − m) underflows to 0 for all but the
// largest, and so must the vector kernels' clamped exp, or each such logit
// adds e^−87·(z − m) ≈ −1e-2 to Σ exp(d)·d and the entropy runs to
// thousands of nats.
func TestRowStatsHugeLogits(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, V := range []int{statsChunk + 9, 50257} {
		for _, scale := range []float32{1e30, 1e36} {
			checkStats(t, r, V, 5, scale, false)
		}
	}
}

// Finite but huge weights can overflow the residual stream, and then some
// or all logits of a row are ±Inf or NaN. That is no reason to crash or to
// make up numbers: on every length (vector body and scalar tail) and for a
// bad value at every position, the fast path and the reference both refuse
// the row (the vector kernels clamp exponents, so only the max pass can
// catch it), and a position whose final row is bad leaves the other rows
// without KL and final top-1.
func TestNonFiniteRows(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	for V := 1; V <= 80; V++ {
		for i := range V {
			for _, b := range bad {
				z := logitsRow(r, V, 10, false)
				z[i] = b
				what := fmt.Sprintf("V=%d z[%d]=%g", V, i, b)
				if fin := finalRowOf(z, make([]float32, V)); fin.top1 != -1 {
					t.Fatalf("%s: final row top1 %d, want -1", what, fin.top1)
				}
				if fin := finalRowOfRef(z, make([]float32, V)); fin.top1 != -1 {
					t.Fatalf("%s: reference final row top1 %d, want -1", what, fin.top1)
				}
				fin := finalRow{top1: 0, probs: make([]float32, V)}
				var c Cell
				if rowStats(&c, z, &fin, query{k: min(3, V), target: -1, next: -1}) {
					t.Fatalf("%s: rowStats accepted the row", what)
				}
				if rowStatsRef(&c, z, &fin, query{k: min(3, V), target: -1, next: -1}) {
					t.Fatalf("%s: rowStatsRef accepted the row", what)
				}
			}
		}
	}
	z := logitsRow(r, 100, 10, false)
	noFinal := finalRow{top1: -1}
	for name, f := range map[string]func(*Cell, []float32, *finalRow, query) bool{"fast": rowStats, "reference": rowStatsRef} {
		var c Cell
		if !f(&c, z, &noFinal, query{k: 5, target: 7, next: 9}) {
			t.Fatalf("%s: a finite row was refused", name)
		}
		if !math.IsNaN(c.KLToFinal) || c.FinalTop1Rank != -1 || !math.IsNaN(c.FinalTop1Prob) {
			t.Errorf("%s: without a finite final row: KL %g, final top-1 rank %d prob %g", name, c.KLToFinal, c.FinalTop1Rank, c.FinalTop1Prob)
		}
		if len(c.Top) != 5 || c.TargetRank < 0 || c.NextRank < 0 || math.IsNaN(c.Entropy) {
			t.Errorf("%s: the row's own statistics are missing: %+v", name, c)
		}
	}
}

// countAbove and maxFinite's vector kernels agree with plain loops on every
// length up to a few vectors, with ties at the threshold.
func TestCountAboveAndMaxFinite(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for V := 1; V <= 130; V++ {
		z := logitsRow(r, V, 10, true)
		th := z[r.IntN(V)]
		want := 0
		m := z[0]
		for _, v := range z {
			if v > th {
				want++
			}
			m = max(m, v)
		}
		if got := countAbove(z, th); got != want {
			t.Fatalf("V=%d: countAbove = %d, want %d", V, got, want)
		}
		if got, ok := maxFinite(z); got != m || !ok {
			t.Fatalf("V=%d: maxFinite = %g %v, want %g true", V, got, ok, m)
		}
	}
}
