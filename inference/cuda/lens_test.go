package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The lens reduction (lens_final, lens_stats and cellOf) on logits written
// straight into a state's lens buffer, against the definitions in float64:
// rows wider than a thread block, ties, a pinned target, next tokens, and
// rows that are not finite, among them a final row of NaN only.

// lensRef is one row's statistics computed from its definition.
type lensRef struct {
	finite      bool
	entropy, kl float64 // kl NaN where the final row is not finite
	top1Rank    int
	top1Prob    float64
	targetRank  int
	targetProb  float64
	nextRank    int
	nextProb    float64
	topIDs      []int
	topProbs    []float64
	finalFinite bool
	finalTop1   int
}

func allFiniteF32(z []float32) bool {
	for _, v := range z {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

// logSoftmax returns log P for the logits z, in float64.
func logSoftmax(z []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(s)
	lp := make([]float64, len(z))
	for i, v := range z {
		lp[i] = float64(v) - lse
	}
	return lp
}

func rankOf(z []float32, id int) int {
	n := 0
	for _, v := range z {
		if v > z[id] {
			n++
		}
	}
	return n
}

// reference computes a row's expected cell; final is the position's final
// row.
func reference(z, final []float32, k, target, next int) lensRef {
	r := lensRef{finite: allFiniteF32(z), finalFinite: allFiniteF32(final), targetRank: -1, nextRank: -1, finalTop1: -1}
	if !r.finite {
		return r
	}
	lp := logSoftmax(z)
	for _, l := range lp {
		r.entropy -= math.Exp(l) * l
	}
	r.kl = math.NaN()
	if r.finalFinite {
		r.finalTop1 = 0
		for i, v := range final {
			if v > final[r.finalTop1] {
				r.finalTop1 = i
			}
		}
		lf := logSoftmax(final)
		r.kl = 0
		for i := range lf {
			r.kl += math.Exp(lf[i]) * (lf[i] - lp[i])
		}
		r.top1Rank, r.top1Prob = rankOf(z, r.finalTop1), math.Exp(lp[r.finalTop1])
	}
	if target >= 0 {
		r.targetRank, r.targetProb = rankOf(z, target), math.Exp(lp[target])
	}
	if next >= 0 {
		r.nextRank, r.nextProb = rankOf(z, next), math.Exp(lp[next])
	}
	ids := make([]int, len(z))
	for i := range ids {
		ids[i] = i
	}
	slices.SortStableFunc(ids, func(a, b int) int { // descending, the smaller id first on ties
		switch {
		case z[a] > z[b]:
			return -1
		case z[a] < z[b]:
			return 1
		}
		return 0
	})
	for _, id := range ids[:k] {
		r.topIDs = append(r.topIDs, id)
		r.topProbs = append(r.topProbs, math.Exp(lp[id]))
	}
	return r
}

// newLensState returns a state on an emulated device whose lens buffers
// hold rows rows of V logits, without a model's weights.
func newLensState(t *testing.T, V, rows int) (*State, *Emulator) {
	t.Helper()
	d, e, err := NewEmulatedDevice()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	s := &State{m: &Model{dev: d, cfg: Config{NLayer: 1, NHead: 1, NEmbd: 4, VocabSize: V, NPositions: 8}}}
	if err := d.do(func() error { return s.growLens(rows) }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, e
}

func TestLensReduceAgainstDefinitions(t *testing.T) {
	const (
		V      = 1000 // four blocks' strides and a ragged tail
		n      = 4    // positions
		R      = 3    // rows; the last is the final one
		k      = 12
		target = 17
	)
	rf := R - 1
	next := []int{5, -1, 999, 0}
	rng := rand.New(rand.NewPCG(3, 4))
	logits := make([]float32, R*n*V)
	for i := range logits {
		logits[i] = float32(math.Round(rng.NormFloat64()*16)) / 4 // steps of 0.25: ties in every row
	}
	row := func(r, t int) []float32 { return logits[(r*n+t)*V : (r*n+t+1)*V] }
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for i := range row(rf, 2) { // position 2: the final row is NaN only
		row(rf, 2)[i] = nan
	}
	row(0, 1)[300] = inf  // a row with +Inf
	row(1, 1)[7] = -inf   // a row with −Inf
	row(0, 3)[999] = nan  // a row with one NaN, at the end
	row(rf, 3)[0] = 30    // a clear final top-1 at id 0
	row(1, 0)[target] = 9 // the target first in one row

	s, e := newLensState(t, V, R*n)
	if err := e.HtoD(s.logits.p, f32Bytes(logits)); err != nil {
		t.Fatal(err)
	}
	cells := make([][]Cell, R)
	for r := range cells {
		cells[r] = make([]Cell, n)
	}
	req := LensRequest{Streams: []int{0, 1, 2}, From: 0, To: n, TopK: k, Target: target, Next: next}
	if err := s.m.dev.do(func() error { return s.reduce(cells, 0, n, rf, req) }); err != nil {
		t.Fatalf("reduce: %v", err)
	}
	var maxDiff float64
	for r := range R {
		for p := range n {
			where := fmt.Sprintf("row %d pos %d", r, p)
			want := reference(row(r, p), row(rf, p), k, target, next[p])
			got := cells[r][p]
			if !want.finite {
				if !math.IsNaN(got.Entropy) && !math.IsInf(got.Entropy, 0) {
					t.Errorf("%s: not finite, but entropy %g", where, got.Entropy)
				}
				continue
			}
			if math.IsNaN(got.Entropy) {
				t.Errorf("%s: finite row reduced to NaN", where)
				continue
			}
			d := func(name string, g, w float64) {
				diff := math.Abs(g - w)
				if math.IsNaN(w) && math.IsNaN(g) {
					diff = 0
				}
				maxDiff = max(maxDiff, diff)
				if !(diff <= 1e-5) {
					t.Errorf("%s: %s = %g, want %g", where, name, g, w)
				}
			}
			d("entropy", got.Entropy, want.entropy)
			if r != rf && want.finalFinite {
				d("KL", got.KLToFinal, want.kl)
			}
			if want.finalFinite && (got.FinalTop1Rank != want.top1Rank) {
				t.Errorf("%s: final top-1 rank %d, want %d", where, got.FinalTop1Rank, want.top1Rank)
			}
			if want.finalFinite {
				d("final top-1 prob", got.FinalTop1Prob, want.top1Prob)
			}
			if got.TargetRank != want.targetRank || got.NextRank != want.nextRank {
				t.Errorf("%s: target rank %d next rank %d, want %d and %d", where, got.TargetRank, got.NextRank, want.targetRank, want.nextRank)
			}
			d("target prob", got.TargetProb, want.targetProb)
			d("next prob", got.NextProb, want.nextProb)
			if next[p] < 0 && (got.NextRank != -1 || got.NextProb != 0) {
				t.Errorf("%s: no next token, but rank %d prob %g", where, got.NextRank, got.NextProb)
			}
			for j := range k {
				if got.Top[j].ID != want.topIDs[j] {
					t.Errorf("%s: top[%d] = %d, want %d", where, j, got.Top[j].ID, want.topIDs[j])
				}
				d("top prob", got.Top[j].Prob, want.topProbs[j])
			}
		}
	}
	t.Logf("max |Δ| from the definitions: %.2g", maxDiff)

	// Without next tokens no rank is counted, and NULL reaches the kernel.
	req.Next = nil
	if err := s.m.dev.do(func() error { return s.reduce(cells, 0, n, rf, req) }); err != nil {
		t.Fatal(err)
	}
	if c := cells[0][0]; c.NextRank != -1 || c.NextProb != 0 {
		t.Errorf("no next tokens, but rank %d prob %g", c.NextRank, c.NextProb)
	}
}

// A final row of NaN only has no maximum: lens_final must still name an
// index inside the row as its top-1 (the CPU's argmax gives 0), or
// lens_stats reads far outside the logits (CUDA_ERROR_ILLEGAL_ADDRESS, and
// the context is lost).
func TestLensFinalAllNaN(t *testing.T) {
	const V, n = 300, 2
	s, e := newLensState(t, V, n)
	logits := make([]float32, n*V)
	for i := range logits[:V] {
		logits[i] = float32(math.NaN())
	}
	for i := range logits[V:] {
		logits[V+i] = float32(i % 7)
	}
	if err := e.HtoD(s.logits.p, f32Bytes(logits)); err != nil {
		t.Fatal(err)
	}
	cells := [][]Cell{make([]Cell, n)}
	req := LensRequest{Streams: []int{0}, From: 0, To: n, TopK: 5, Target: 3, Next: []int{1, 2}}
	if err := s.m.dev.do(func() error { return s.reduce(cells, 0, n, 0, req) }); err != nil {
		t.Fatalf("a NaN final row: %v", err)
	}
	fin := make([]finalStats, n)
	if err := e.DtoH(structBytes(fin), s.final.p); err != nil {
		t.Fatal(err)
	}
	if fin[0].Top1 != 0 || !math.IsNaN(fin[0].S) {
		t.Errorf("NaN row: top-1 %d, S %g; want 0 and NaN", fin[0].Top1, fin[0].S)
	}
	if fin[1].Top1 != 6 || math.IsNaN(cells[0][1].Entropy) {
		t.Errorf("finite row: top-1 %d (want 6), entropy %g", fin[1].Top1, cells[0][1].Entropy)
	}
}

// randomModel uploads a small GPT-2 of random weights.
func randomModel(t *testing.T, d *Device, cfg Config) *Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	C, V, P := cfg.NEmbd, cfg.VocabSize, cfg.NPositions
	r := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.NormFloat64() * 0.3)
		}
		return s
	}
	w := Weights{WTE: r(V * C), WPE: r(P * C), LnFG: r(C), LnFB: r(C)}
	for range cfg.NLayer {
		w.Blocks = append(w.Blocks, Block{Ln1G: r(C), Ln1B: r(C), CAttnW: r(C * 3 * C), CAttnB: r(3 * C),
			AttnProjW: r(C * C), AttnProjB: r(C), Ln2G: r(C), Ln2B: r(C),
			FcW: r(C * 4 * C), FcB: r(4 * C), MlpProjW: r(4 * C * C), MlpProjB: r(C)})
	}
	m, err := d.Upload(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

var smallConfig = Config{NLayer: 2, NHead: 2, NEmbd: 16, VocabSize: 64, NPositions: 16, LayerNormEpsilon: 1e-5}

// Closing a profiled state twice destroys its events once and frees its
// memory once; a closed state refuses work.
func TestStateCloseTwice(t *testing.T) {
	d, e, err := NewEmulatedDevice()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m := randomModel(t, d, smallConfig)
	weights := e.Allocated()
	st, err := m.NewState(StateOptions{Profile: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Forward([]int{1, 2, 3}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lens(LensRequest{Streams: []int{0, 4}, From: 0, To: 3, TopK: 3, Target: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.KernelTimes(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lens(LensRequest{Streams: []int{4}, From: 0, To: 3, TopK: 3, Target: -1}); err != nil {
		t.Fatal(err) // spans pending at Close
	}
	if e.Events() == 0 {
		t.Fatal("a profiled state created no events")
	}
	if err := st.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n := e.Events(); n != 0 {
		t.Errorf("%d events left after Close", n)
	}
	if n := e.Allocated(); n != weights {
		t.Errorf("%d bytes allocated after Close, %d before NewState", n, weights)
	}
	if err := st.Forward([]int{1}, 0); !errors.Is(err, errStateClosed) {
		t.Errorf("Forward after Close: %v", err)
	}
	if _, err := st.Lens(LensRequest{Streams: []int{4}, From: 0, To: 1, TopK: 3, Target: -1}); !errors.Is(err, errStateClosed) {
		t.Errorf("Lens after Close: %v", err)
	}
}

// Timing destroys its events whether the timed work fails or not.
func TestTimeFreesEvents(t *testing.T) {
	d, e, err := NewEmulatedDevice()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m := randomModel(t, d, smallConfig)
	st, err := m.NewState(StateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ms, err := st.Time(func() error { return st.Forward([]int{1, 2}, 0) }); err != nil || ms <= 0 {
		t.Fatalf("Time = %g, %v", ms, err)
	}
	boom := errors.New("boom")
	if _, err := st.Time(func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Time of a failing step: %v", err)
	}
	if _, err := d.Time(func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Device.Time of a failing step: %v", err)
	}
	if n := e.Events(); n != 0 {
		t.Errorf("%d events left after timing", n)
	}
}
