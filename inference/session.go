package inference

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/logitlens/logitlens/inference/cuda"
)

// Session computes lenses for one user's evolving prompt. GPT-2 is causal,
// so position t depends only on tokens 0..t: the session keeps the keys,
// values, residual streams and lens cells of the last prompt and, when the
// prompt changes, recomputes only from the first changed token onward.
// Calls are serialised; a cancelled call returns promptly (the engine's
// context is checked between blocks) and leaves the cache consistent.
type Session struct {
	m  *Model
	mu sync.Mutex

	ids     []int       // tokens whose keys, values and streams are cached
	kv      []kvCache   // per block
	streams [][]float32 // per stream (see Row.stream): [cap, C]
	cap     int         // positions the buffers hold

	key   cellKey  // the request options the cached cells were computed for
	cells [][]Cell // [stream][position]
	valid []int    // per stream: leading positions whose cells are current

	buf     buffers
	lensIn  []float32 // [R·n, C] ln_f inputs of a lens chunk
	logits  []float32 // [R·n, V]
	finProb []float32 // [n, V] P_final of each position in a lens chunk

	dev *cuda.State // the prompt on the GPU, with the CUDA engine (made by the first Lens); nil on the CPU
}

type kvCache struct{ k, v []float32 } // [cap, C] each

type cellKey struct{ topK, target int }

// buffers are a forward step's intermediates, one per named activation.
type buffers struct {
	x, a, q, y, proj []float32 // [T,C]
	qkv              []float32 // [T,3C]
	f                []float32 // [T,4C]
}

// Position chunks: forward and lens run chunk by chunk so columns stream out
// while a long prompt computes, and the logits of one lens GEMM stay within
// lensRows rows.
const (
	forwardChunk = 32
	lensRows     = 128
)

// NewSession starts an empty session on the model.
func (m *Model) NewSession() *Session {
	S := 2*m.cfg.NLayer + 1
	return &Session{
		m:       m,
		kv:      make([]kvCache, m.cfg.NLayer),
		streams: make([][]float32, S),
		cells:   make([][]Cell, S),
		valid:   make([]int, S),
		key:     cellKey{-1, -1},
	}
}

// Info implements the explorer's backend.
func (s *Session) Info() Info { return s.m.Info() }

// Encode tokenizes text with the model's tokenizer.
func (s *Session) Encode(text string) []Token { return s.m.Encode(text) }

// TokenBytes returns the raw bytes of one token.
func (s *Session) TokenBytes(id int) []byte { return s.m.TokenBytes(id) }

// EOT returns the id of <|endoftext|>, or -1.
func (s *Session) EOT() int { return s.m.EOT() }

// Model returns the session's model.
func (s *Session) Model() *Model { return s.m }

// ErrPromptTooLong is returned (wrapped) for prompts longer than n_positions.
var ErrPromptTooLong = errors.New("prompt too long")

// Validate checks a request against the model without computing anything.
func (m *Model) Validate(req Request) error {
	V, P := m.cfg.VocabSize, m.cfg.NPositions
	switch {
	case len(req.IDs) == 0:
		return errors.New("inference: empty prompt: type some text or prepend <|endoftext|> (--bos)")
	case len(req.IDs) > P:
		return fmt.Errorf("inference: %w: %d tokens, but this model reads at most n_positions = %d", ErrPromptTooLong, len(req.IDs), P)
	case req.TopK < 1 || req.TopK > MaxTopK:
		return fmt.Errorf("inference: top-k %d is outside 1..%d", req.TopK, MaxTopK)
	case req.Target < -1 || req.Target >= V:
		return fmt.Errorf("inference: target id %d is outside the vocabulary (0..%d)", req.Target, V-1)
	}
	for i, id := range req.IDs {
		if id < 0 || id >= V {
			return fmt.Errorf("inference: token %d has id %d, outside the vocabulary (0..%d)", i, id, V-1)
		}
	}
	return nil
}

// Lens computes the logit lens of req.IDs, reusing the cached prefix. Each
// finished position is passed to onColumn (if not nil) from the calling
// goroutine, in order. On cancellation it returns ctx.Err().
func (s *Session) Lens(ctx context.Context, req Request, onColumn func(Column)) (*Lens, error) {
	start := time.Now()
	if err := s.m.Validate(req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m.engine.(*CUDA); ok && s.dev == nil {
		dev, err := e.model.NewState(cuda.StateOptions{})
		if err != nil { // e.g. the GPU's memory is full
			return nil, fmt.Errorf("inference: %w", err)
		}
		s.dev = dev
	}

	if key := (cellKey{req.TopK, req.Target}); key != s.key {
		s.key = key
		clear(s.valid)
	}
	p := commonPrefix(s.ids, req.IDs)
	s.ids = s.ids[:p]
	for i := range s.valid {
		s.valid[i] = min(s.valid[i], p)
	}

	rows := s.m.Rows(req.Sublayers)
	final := 2 * s.m.cfg.NLayer
	T := len(req.IDs)
	chunk := forwardChunk
	if s.dev != nil {
		chunk = T // one forward and one lens GEMM for the whole prompt: the GPU wants big calls
	}
	for a := 0; a < T; a += chunk {
		b := min(T, a+chunk)
		if from := len(s.ids); from < b {
			if err := s.forward(ctx, req.IDs[from:b], from); err != nil {
				return nil, err
			}
			s.ids = append(s.ids, req.IDs[from:b]...)
		}
		var need []int
		lo := b
		for _, r := range rows {
			if st := r.stream(); s.valid[st] < b {
				need = append(need, st)
				lo = min(lo, s.valid[st])
			}
		}
		if len(need) > 0 {
			if !slices.Contains(need, final) {
				need = append(need, final)
			}
			if err := s.lensRange(ctx, lo, b, need, req); err != nil {
				return nil, err
			}
		}
		if onColumn != nil {
			for t := a; t < b; t++ {
				col := Column{Pos: t, Cells: make([]Cell, len(rows))}
				for r, row := range rows {
					col.Cells[r] = s.cells[row.stream()][t]
				}
				onColumn(col)
			}
		}
	}

	l := &Lens{IDs: slices.Clone(req.IDs), Rows: rows, Target: req.Target, Reused: min(p, T)}
	l.Cells = make([][]Cell, len(rows))
	for r, row := range rows {
		l.Cells[r] = slices.Clone(s.cells[row.stream()][:T])
	}
	l.FinalTop1 = make([]int, T)
	for t, c := range s.cells[final][:T] {
		l.FinalTop1[t] = c.Top[0].ID
	}
	l.Elapsed = time.Since(start)
	return l, nil
}

// lensRange computes the cells of the given streams (which include the
// final one) for positions lo..hi-1, in chunks whose logits fit lensRows.
func (s *Session) lensRange(ctx context.Context, lo, hi int, streams []int, req Request) error {
	if s.dev != nil {
		return s.deviceLens(lo, hi, streams, req)
	}
	n := max(1, lensRows/len(streams))
	for a := lo; a < hi; a += n {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := min(hi, a+n)
		s.lensChunk(a, b, streams, req)
		for _, st := range streams {
			s.valid[st] = max(s.valid[st], b)
		}
	}
	return nil
}

// lensChunk decodes the stored streams at positions a..b-1 through ln_f and
// the unembedding in one GEMM, then reduces each row to its cell.
func (s *Session) lensChunk(a, b int, streams []int, req Request) {
	m := s.m
	C, V := m.cfg.NEmbd, m.cfg.VocabSize
	n, R := b-a, len(streams)
	eps := float32(m.cfg.LayerNormEpsilon)
	s.lensIn = grow(s.lensIn, R*n*C)
	s.logits = grow(s.logits, R*n*V)
	s.finProb = grow(s.finProb, n*V)

	for r, st := range streams { // gather the rows: [R·n, C]
		copy(s.lensIn[r*n*C:(r+1)*n*C], s.streams[st][a*C:b*C])
	}
	x := mat(s.lensIn, R*n, C)
	m.engine.LayerNorm(x, x, m.lnFG, m.lnFB, eps)                  // ln_f, once per row
	if err := m.unembedRows(s.logits, s.lensIn, R*n); err != nil { // [R·n,C] @ [C,V] -> [R·n,V]
		panic(err) // shapes are ours: a mismatch is a programmer error
	}

	row := func(r, t int) []float32 { return s.logits[(r*n+t)*V : (r*n+t+1)*V] }
	rf := slices.Index(streams, 2*m.cfg.NLayer)
	fins := make([]finalRow, n)
	parallel(n, func(t0, t1 int) {
		for t := t0; t < t1; t++ {
			fins[t] = finalRowOf(row(rf, t), s.finProb[t*V:(t+1)*V])
		}
	})
	for _, st := range streams {
		if len(s.cells[st]) < b {
			s.cells[st] = append(s.cells[st], make([]Cell, b-len(s.cells[st]))...)
		}
	}
	parallel(R*n, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			r, t := i/n, i%n
			fin := fins[t]
			if r == rf {
				fin.probs = nil // the final row's KL to itself is 0
			}
			rowStats(&s.cells[streams[r]][a+t], row(r, t), &fin, req.TopK, req.Target)
		}
	})
}

// reserve grows the caches to hold P positions, keeping their contents.
func (s *Session) reserve(P int) {
	if P <= s.cap {
		return
	}
	C := s.m.cfg.NEmbd
	c := min(max(P, 2*s.cap, 16), s.m.cfg.NPositions)
	for i := range s.kv {
		s.kv[i].k = resize(s.kv[i].k, c*C)
		s.kv[i].v = resize(s.kv[i].v, c*C)
	}
	for i := range s.streams {
		s.streams[i] = resize(s.streams[i], c*C)
	}
	s.cap = c
}

// keep stores a [T,C] residual as positions p0.. of stream st.
func (s *Session) keep(st, p0 int, x []float32) {
	C := s.m.cfg.NEmbd
	copy(s.streams[st][p0*C:], x)
}

// scratch returns the forward intermediates sized for T positions.
func (s *Session) scratch(T int) *buffers {
	C := s.m.cfg.NEmbd
	b := &s.buf
	for _, p := range []*[]float32{&b.x, &b.a, &b.q, &b.y, &b.proj} {
		*p = grow(*p, T*C)
	}
	b.qkv = grow(b.qkv, T*3*C)
	b.f = grow(b.f, T*4*C)
	return b
}

// grow returns s with length n, reallocating (without keeping contents)
// when its capacity is short.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// resize returns s with length n, keeping its contents.
func resize(s []float32, n int) []float32 {
	if cap(s) >= n {
		return s[:n]
	}
	r := make([]float32, n)
	copy(r, s)
	return r
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
