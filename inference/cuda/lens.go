package cuda

import (
	"fmt"
	"math"
	"slices"
	"unsafe"
)

// Prediction is one token of a cell's top-k.
type Prediction struct {
	ID   int
	Prob float64
}

// Cell is the lens statistics of one (row, position), field for field
// inference.Cell: natural logarithms, rank = ids with a strictly larger
// logit, Top descending with ties to the smaller id.
type Cell struct {
	Top           []Prediction
	Entropy       float64 // H(P_row)
	KLToFinal     float64 // KL(P_final ‖ P_row); 0 on the final row
	FinalTop1Rank int
	FinalTop1Prob float64
	TargetRank    int // -1 without a target
	TargetProb    float64
	NextRank      int     // rank of the position's next token; -1 where it has none
	NextProb      float64 // its probability; 0 where it has none
}

// LensRequest asks for the cells of some streams at positions [From, To).
type LensRequest struct {
	Streams  []int // stream numbers (see State); must include the final one, 2L
	From, To int
	TopK     int // 1..50
	Target   int // token id, or -1
	// Next, when not nil, holds the token each position predicts:
	// Next[t−From] for position t, −1 where there is none (the prompt's
	// last position). Every cell then reports its rank and probability.
	Next []int
	// LogitsOnly runs ln_f and the unembedding GEMM but no statistics, and
	// returns no cells: benchmarks time the statistics against it.
	LogitsOnly bool
	// Translators, when not nil, apply a tuned lens before ln_f: stream r
	// is translated by Translators' layer Translate[r] (−1: none).
	Translators *Translators
	Translate   []int
	// Logits, when not nil, receives the logits of every row on the host,
	// [len(Streams)][To−From][V] row-major, instead of cells: comparing
	// two runs needs whole distributions, which meet on the host.
	Logits []float32
}

// Lens decodes the stored streams through ln_f and the unembedding and
// reduces each row on the device; only statistics and top-k come back. It
// returns cells [len(Streams)][To−From] (none for LogitsOnly). Rows go through one GEMM, unless
// their logits exceed the state's LensBytes: then positions are chunked.
func (s *State) Lens(req LensRequest) ([][]Cell, error) {
	cfg := s.m.cfg
	L, V := cfg.NLayer, cfg.VocabSize
	rf := slices.Index(req.Streams, 2*L)
	switch {
	case s.closed:
		return nil, errStateClosed
	case rf < 0:
		return nil, fmt.Errorf("cuda: lens streams %v lack the final stream %d", req.Streams, 2*L)
	case req.From < 0 || req.From >= req.To || req.To > s.filled:
		return nil, fmt.Errorf("cuda: lens positions %d..%d outside the %d computed", req.From, req.To, s.filled)
	case req.TopK < 1 || req.TopK > maxTopK:
		return nil, fmt.Errorf("cuda: top-k %d is outside 1..%d", req.TopK, maxTopK)
	case req.Target < -1 || req.Target >= V:
		return nil, fmt.Errorf("cuda: target id %d is outside the vocabulary (0..%d)", req.Target, V-1)
	case req.Logits != nil && len(req.Logits) != len(req.Streams)*(req.To-req.From)*V:
		return nil, fmt.Errorf("cuda: logits of %d streams × %d positions into %d floats", len(req.Streams), req.To-req.From, len(req.Logits))
	case req.Next != nil && len(req.Next) != req.To-req.From:
		return nil, fmt.Errorf("cuda: %d next tokens for %d positions", len(req.Next), req.To-req.From)
	}
	for _, id := range req.Next {
		if id < -1 || id >= V {
			return nil, fmt.Errorf("cuda: next token id %d is outside the vocabulary (0..%d)", id, V-1)
		}
	}
	for _, st := range req.Streams {
		if st < 0 || st > 2*L {
			return nil, fmt.Errorf("cuda: stream %d outside 0..%d", st, 2*L)
		}
	}
	if req.Translators != nil {
		if req.Translators.m != s.m || len(req.Translate) != len(req.Streams) {
			return nil, fmt.Errorf("cuda: translators of another model, or %d translator indices for %d streams", len(req.Translate), len(req.Streams))
		}
		for _, l := range req.Translate {
			if l < -1 || l >= len(req.Translators.w) {
				return nil, fmt.Errorf("cuda: translator %d outside 0..%d", l, len(req.Translators.w)-1)
			}
		}
	}
	R := len(req.Streams)
	var cells [][]Cell
	if !req.LogitsOnly && req.Logits == nil {
		cells = make([][]Cell, R)
		for r := range cells {
			cells[r] = make([]Cell, req.To-req.From)
		}
	}
	n := max(1, min(req.To-req.From, s.maxRows/R)) // positions per GEMM
	err := s.m.dev.do(func() error {
		if err := s.growLens(R * n); err != nil {
			return err
		}
		for a := req.From; a < req.To; a += n {
			b := min(req.To, a+n)
			if err := s.lensChunk(cells, a-req.From, a, b, rf, req); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cells, nil
}

// lensChunk runs positions a..b-1 of every requested stream as one GEMM and
// fills cells[r][off+t]; the device lock is held.
func (s *State) lensChunk(cells [][]Cell, off, a, b, rf int, req LensRequest) error {
	m, cfg := s.m, s.m.cfg
	C, V := cfg.NEmbd, cfg.VocabSize
	n, R := b-a, len(req.Streams)
	rows := R * n
	q := &queue{s: s}
	for r, st := range req.Streams { // gather the rows: [R·n, C]
		q.copy(s.lensIn.at(r*n*C), s.streams[st].at(a*C), n*C)
		if req.Translators != nil && req.Translate[r] >= 0 { // tuned lens: x += x·Wᵀ + b
			s.translate(q, s.lensIn.at(r*n*C), req.Translators, req.Translate[r], n)
		}
	}
	rg, rb := perRow(rows)
	q.launch("layernorm_forward", rg, rb, 0, PtrArg(s.lensIn.p), PtrArg(s.lensIn.p), PtrArg(m.lnFG.p), PtrArg(m.lnFB.p),
		IntArg(rows), IntArg(C), FloatArg(cfg.LayerNormEpsilon)) // ln_f, once per row
	q.gemm("gemm lens", gemmRowMajor(s.logits.p, s.lensIn.p, m.unemb.p, rows, V, C, true)) // [R·n,C] @ [C,V] -> [R·n,V]
	if req.Logits != nil {
		if q.err != nil {
			return q.err
		}
		N := req.To - req.From
		for r := range R { // chunk row r·n+t is position a+t of stream r
			dst := req.Logits[(r*N+a-req.From)*V : (r*N+b-req.From)*V]
			if err := m.dev.drv.DtoH(f32Bytes(dst), s.logits.at(r*n*V)); err != nil {
				return err
			}
		}
		return nil
	}
	if req.LogitsOnly {
		if q.err != nil {
			return q.err
		}
		return m.dev.drv.Synchronize()
	}
	if q.err != nil {
		return q.err
	}
	return s.reduce(cells, off, n, rf, req)
}

// reduce turns the logits of a chunk's rows [R·n, V] into cells[r][off+t]:
// lens_final and lens_stats on the device, then each row's sums, ranks and
// top-k brought back and assembled by cellOf. The device lock is held.
func (s *State) reduce(cells [][]Cell, off, n, rf int, req LensRequest) error {
	m := s.m
	V, k := m.cfg.VocabSize, req.TopK
	rows := len(req.Streams) * n
	q := &queue{s: s}
	var next DevicePtr // NULL: no next tokens
	if req.Next != nil {
		ids := make([]int32, n)
		for t := range ids {
			ids[t] = int32(req.Next[off+t])
		}
		if q.err == nil {
			q.err = m.dev.drv.HtoD(s.next.p, i32Bytes(ids))
		}
		next = s.next.p
	}
	rg, rb := perRow(rows)
	fg, fb := perRow(n)
	q.launch("lens_final", fg, fb, 0, PtrArg(s.logits.p), IntArg(V), IntArg(n), IntArg(rf), PtrArg(s.final.p))
	q.launch("lens_stats", rg, rb, 0, PtrArg(s.logits.p), IntArg(V), IntArg(n), IntArg(rf), PtrArg(s.final.p),
		IntArg(req.Target), PtrArg(next), IntArg(k), PtrArg(s.stats.p), PtrArg(s.topIDs.p), PtrArg(s.topVals.p))
	if q.err != nil {
		return q.err
	}
	fin := make([]finalStats, n)
	st := make([]rowStats, rows)
	ids := make([]int32, rows*k)
	vals := make([]float32, rows*k)
	drv := m.dev.drv
	for _, c := range []struct {
		dst []byte
		src DevicePtr
	}{
		{structBytes(fin), s.final.p}, {structBytes(st), s.stats.p},
		{i32Bytes(ids), s.topIDs.p}, {f32Bytes(vals), s.topVals.p},
	} {
		if err := drv.DtoH(c.dst, c.src); err != nil {
			return err
		}
	}
	for i := range rows {
		r, t := i/n, i%n
		nx := -1
		if req.Next != nil {
			nx = req.Next[off+t]
		}
		cells[r][off+t] = cellOf(st[i], fin[t], ids[i*k:(i+1)*k], vals[i*k:(i+1)*k], r == rf, req.Target, nx)
	}
	return nil
}

// cellOf turns a row's device sums into its cell, as inference's rowStats:
//
//	lse     = m + log S
//	H(P)    = log S − E/S
//	KL(F‖P) = −H(F) − FZ + log S,  −H(F) = E_F/S_F − log S_F
func cellOf(st rowStats, fin finalStats, ids []int32, vals []float32, final bool, target, next int) Cell {
	logS := math.Log(st.S)
	lse := float64(st.M) + logS
	c := Cell{
		Entropy:       logS - st.E/st.S,
		FinalTop1Rank: int(st.Rank1),
		FinalTop1Prob: math.Exp(float64(st.Z1) - lse),
		TargetRank:    -1,
		NextRank:      -1,
	}
	if !final {
		negEnt := fin.E/fin.S - math.Log(fin.S)
		c.KLToFinal = math.Max(0, negEnt-st.FZ+logS)
	}
	if target >= 0 {
		c.TargetRank = int(st.RankT)
		c.TargetProb = math.Exp(float64(st.ZT) - lse)
	}
	if next >= 0 {
		c.NextRank = int(st.RankN)
		c.NextProb = math.Exp(float64(st.ZN) - lse)
	}
	c.Top = make([]Prediction, len(ids))
	for j, id := range ids {
		c.Top[j] = Prediction{ID: int(id), Prob: math.Exp(float64(vals[j]) - lse)}
	}
	return c
}

// structBytes views a slice of plain structs as bytes.
func structBytes[T finalStats | rowStats](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}
