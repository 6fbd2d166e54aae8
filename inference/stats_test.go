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
	if got.FinalTop1Rank != want.FinalTop1Rank || got.TargetRank != want.TargetRank || len(got.Top) != len(want.Top) {
		t.Fatalf("%s: ranks/top-k length %d %d %d, reference %d %d %d", what, got.FinalTop1Rank, got.TargetRank, len(got.Top), want.FinalTop1Rank, want.TargetRank, len(want.Top))
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
	rowStats(&got, z, &fin, k, target)
	rowStatsRef(&want, z, &ref, k, target)
	checkCellsEqual(t, what, got, want)
	finNoKL, refNoKL := fin, ref
	finNoKL.probs, refNoKL.probs = nil, nil
	rowStats(&got, zf, &finNoKL, k, target)
	rowStatsRef(&want, zf, &refNoKL, k, target)
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

// Finite but huge weights can overflow the residual stream, and then every
// logit of a row is NaN. That is no reason to crash: finalRowOf must not
// run off the row looking for a logit equal to a NaN max.
func TestFinalRowOfNaN(t *testing.T) {
	for _, V := range []int{5, 40} { // scalar tail only, and the vector path
		z := make([]float32, V)
		for i := range z {
			z[i] = float32(math.NaN())
		}
		fin := finalRowOf(z, make([]float32, V))
		if fin.top1 != 0 {
			t.Errorf("V=%d: top1 = %d, want 0 (argmax's answer)", V, fin.top1)
		}
	}
}
