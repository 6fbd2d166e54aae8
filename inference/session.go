package inference

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/logitlens/logitlens/weights/tunedlens"
)

// Session computes lenses for one user's evolving prompt. GPT-2 is causal,
// so position t depends only on tokens 0..t: the session's device keeps the
// keys, values and residual streams of the last prompt, the session keeps
// its lens cells, and when the prompt changes only the positions from the
// first changed token onward are recomputed. Calls are serialised; a
// cancelled call returns promptly (the device checks the context between
// blocks) and leaves the cache consistent. Close frees the device's memory.
type Session struct {
	m   *Model
	dev Device
	mu  sync.Mutex

	ids []int // tokens whose keys, values and streams the device holds
	// sets holds the cells of the last two request options, the current
	// first (cells, valid and key below are sets[0]'s): the explorer
	// switching between the logit and a tuned lens, or asking for the
	// other lens's top-1, recomputes neither.
	sets  [2]cellSet
	key   cellKey  // the request options the cached cells were computed for
	cells [][]Cell // [stream][position] (see Row.stream)
	// valid marks, per stream and position, the cells that are current;
	// positions past a stream's slice are not. A request with Priority
	// makes cells current out of order, so this is a mark per position
	// rather than a count of leading ones.
	valid  [][]bool
	closed bool

	// pair compares this session's runs with a run B on a second session
	// of the same model (Compare), opened at its first use; pairMu
	// serialises comparisons and is never taken while mu is held.
	pairMu sync.Mutex
	pair   *Pair
}

// cellSet is the lens cells of one set of request options.
type cellSet struct {
	key   cellKey
	cells [][]Cell
	valid [][]bool
}

type cellKey struct {
	topK, target int
	next         bool
	tuned        *tunedlens.Lens
}

// NewSession starts an empty session on the model's backend. It allocates
// nothing until the first lens.
func (m *Model) NewSession() *Session { return m.sessionOn(m.backend) }

// sessionOn starts a session of m on backend b, which holds m's weights
// (the self-check runs one prompt on two backends).
func (m *Model) sessionOn(b Backend) *Session {
	S := 2*m.cfg.NLayer + 1
	s := &Session{m: m, dev: b.NewDevice()}
	for i := range s.sets {
		s.sets[i] = cellSet{key: cellKey{topK: -1, target: -1}, cells: make([][]Cell, S), valid: make([][]bool, S)}
	}
	s.key, s.cells, s.valid = s.sets[0].key, s.sets[0].cells, s.sets[0].valid
	return s
}

// use makes sets[i] the current cells, moving it first.
func (s *Session) use(i int) {
	s.sets[0].key, s.sets[0].cells, s.sets[0].valid = s.key, s.cells, s.valid
	if i != 0 {
		s.sets[0], s.sets[i] = s.sets[i], s.sets[0]
	}
	s.key, s.cells, s.valid = s.sets[0].key, s.sets[0].cells, s.sets[0].valid
}

// selectCells makes the cells of key current: the cached set when there is
// one, else the older set, emptied.
func (s *Session) selectCells(key cellKey) {
	if key == s.key {
		return
	}
	if key == s.sets[1].key {
		s.use(1)
		return
	}
	s.use(1)
	s.key = key
	for i := range s.valid {
		s.valid[i] = s.valid[i][:0]
	}
}

// Close frees what the session's device allocated (a GPU's KV cache and
// residual streams). A call in progress finishes first; later calls fail.
func (s *Session) Close() error {
	s.pairMu.Lock()
	var b *Session
	if s.pair != nil {
		b, s.pair = s.pair.b, nil
	}
	s.pairMu.Unlock()
	if b != nil {
		b.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.ids, s.cells, s.valid, s.sets = nil, nil, nil, [2]cellSet{}
	return s.dev.Close()
}

// Info implements the explorer's backend.
func (s *Session) Info() Info { return s.m.Info() }

// Encode tokenizes text with the model's tokenizer.
func (s *Session) Encode(text string) []Token { return s.m.Encode(text) }

// Reencode re-tokenizes an edited text from where it changed (see
// Model.Reencode).
func (s *Session) Reencode(prevText string, prev []Token, text string) []Token {
	return s.m.Reencode(prevText, prev, text)
}

// TokenBytes returns the raw bytes of one token.
func (s *Session) TokenBytes(id int) []byte { return s.m.TokenBytes(id) }

// EOT returns the id of <|endoftext|>, or -1.
func (s *Session) EOT() int { return s.m.EOT() }

// Model returns the session's model.
func (s *Session) Model() *Model { return s.m }

// ErrPromptTooLong is returned (wrapped) for prompts longer than n_positions.
var ErrPromptTooLong = errors.New("prompt too long")

// errSessionClosed is returned by Lens after Close.
var errSessionClosed = errors.New("inference: the session is closed")

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
	if req.Tuned != nil {
		if req.Sublayers {
			return fmt.Errorf("inference: %w", ErrSublayersTuned)
		}
		if err := req.Tuned.Config.Check(m.cfg.NEmbd, m.cfg.NLayer); err != nil {
			return fmt.Errorf("inference: tuned lens: %w", err)
		}
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
// goroutine, once: without req.Priority in order, each chunk's columns as
// soon as its forward pass and lens are done; with it, the priority
// positions first (in order, once the forward pass has reached them), then
// the others in order. On cancellation it returns ctx.Err().
func (s *Session) Lens(ctx context.Context, req Request, onColumn func(Column)) (*Lens, error) {
	start := time.Now()
	if err := s.m.Validate(req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errSessionClosed
	}

	s.selectCells(cellKey{req.TopK, req.Target, req.NextToken, req.Tuned})
	p := s.keepPrefix(req.IDs)
	rows := s.m.Rows(req.Sublayers)
	T := len(req.IDs)
	chunk := s.dev.Chunk()
	if chunk <= 0 {
		chunk = T
	}
	sent := make([]bool, T)
	emit := func(a, b int) {
		for t := a; t < b; t++ {
			if onColumn == nil || sent[t] {
				continue
			}
			sent[t] = true
			col := Column{Pos: t, Cells: make([]Cell, len(rows))}
			for r, row := range rows {
				col.Cells[r] = s.cells[row.stream()][t]
			}
			onColumn(col)
		}
	}
	// The forward pass runs in chunks ending at multiples of chunk, with
	// or without priorities, so the residual streams are the same floats.
	forwardTo := func(b int) error {
		for len(s.ids) < b {
			if err := s.forward(ctx, req.IDs, min(T, (len(s.ids)/chunk+1)*chunk)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, run := range priorityRuns(req.Priority, T) {
		if err := forwardTo(run[1]); err != nil {
			return nil, err
		}
		if err := s.fill(ctx, rows, run[0], run[1], req); err != nil {
			return nil, err
		}
		emit(run[0], run[1])
	}
	for a := 0; a < T; a += chunk {
		b := min(T, a+chunk)
		if err := forwardTo(b); err != nil {
			return nil, err
		}
		if err := s.fill(ctx, rows, a, b, req); err != nil {
			return nil, err
		}
		emit(a, b)
	}

	l := &Lens{IDs: slices.Clone(req.IDs), Rows: rows, Target: req.Target, Reused: min(p, T), Tuned: req.Tuned}
	l.Cells = make([][]Cell, len(rows))
	for r, row := range rows {
		l.Cells[r] = slices.Clone(s.cells[row.stream()][:T])
	}
	l.FinalTop1 = make([]int, T)
	for t, c := range s.cells[2*s.m.cfg.NLayer][:T] {
		l.FinalTop1[t] = -1
		if len(c.Top) > 0 {
			l.FinalTop1[t] = c.Top[0].ID
		}
	}
	l.NonFinite = firstBreakdown(rows, l.Cells)
	l.Elapsed = time.Since(start)
	return l, nil
}

// keepPrefix keeps what the device holds of the common prefix of the
// session's tokens and ids, and marks stale the cells the change reaches.
// It returns the prefix's length.
func (s *Session) keepPrefix(ids []int) int {
	p := commonPrefix(s.ids, ids)
	s.use(0) // both sets below
	for _, set := range s.sets {
		stale := p // cells from here on are stale
		if set.key.next && p > 0 && (p < len(s.ids) || p < len(ids)) {
			stale = p - 1 // position p−1 predicts a different next token now
		}
		for i, v := range set.valid {
			set.valid[i] = v[:min(len(v), stale)]
		}
	}
	s.ids = s.ids[:p]
	return p
}

// priorityRuns returns the positions of priority that lie in 0..T−1,
// sorted, as runs [a, b) of consecutive positions.
func priorityRuns(priority []int, T int) [][2]int {
	var ps []int
	for _, t := range priority {
		if t >= 0 && t < T {
			ps = append(ps, t)
		}
	}
	slices.Sort(ps)
	ps = slices.Compact(ps)
	var runs [][2]int
	for _, t := range ps {
		if n := len(runs); n > 0 && runs[n-1][1] == t {
			runs[n-1][1]++
		} else {
			runs = append(runs, [2]int{t, t + 1})
		}
	}
	return runs
}

// current reports whether stream st's cell at position t is current.
func (s *Session) current(st, t int) bool { return t < len(s.valid[st]) && s.valid[st][t] }

// mark records stream st's cells at positions a..b−1 as current or not.
func (s *Session) mark(st, a, b int, current bool) {
	if current && len(s.valid[st]) < b {
		s.valid[st] = append(s.valid[st], make([]bool, b-len(s.valid[st]))...)
	}
	for t := a; t < min(b, len(s.valid[st])); t++ {
		s.valid[st][t] = current
	}
}

// forward runs the device on ids from the first position it does not hold
// up to position b, which keepPrefix(ids) must have been called for.
func (s *Session) forward(ctx context.Context, ids []int, b int) error {
	from := len(s.ids)
	if from >= b {
		return nil
	}
	if err := s.dev.Forward(ctx, ids[from:b], from); err != nil {
		return err
	}
	s.ids = append(s.ids, ids[from:b]...)
	return nil
}

// Logits writes to out the logits of req's rows (Model.Rows(req.Sublayers),
// decoded through req.Tuned) at positions from..to−1 of req.IDs, laid out
// [row][position][id] (see Device.Logits), running the model first on what
// the session does not hold yet. The cached cells stay; req's TopK,
// Target and NextToken are not read.
func (s *Session) Logits(ctx context.Context, req Request, from, to int, out []float32) error {
	if err := s.m.Validate(req); err != nil {
		return err
	}
	if from < 0 || from > to || to > len(req.IDs) {
		return fmt.Errorf("inference: logits of positions %d..%d of %d", from, to, len(req.IDs))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errSessionClosed
	}
	s.keepPrefix(req.IDs)
	chunk := s.dev.Chunk()
	if chunk <= 0 {
		chunk = to
	}
	for len(s.ids) < to {
		// Chunks end where Lens's do, so the streams are the same floats.
		b := min(to, (len(s.ids)/chunk+1)*chunk)
		if err := s.forward(ctx, req.IDs, b); err != nil {
			return err
		}
	}
	return s.dev.Logits(ctx, LensRequest{Rows: s.m.Rows(req.Sublayers), From: from, To: to, Tuned: req.Tuned}, out)
}

// fill makes the cells of rows current at positions a..b−1, asking the
// device for the smallest range that covers the stale ones, with the final
// row always among the rows asked for.
func (s *Session) fill(ctx context.Context, rows []Row, a, b int, req Request) error {
	final := s.m.finalRow()
	var need []Row
	lo, hi := b, a
	for _, r := range rows {
		st := r.stream()
		stale := false
		for t := a; t < b; t++ {
			if !s.current(st, t) {
				stale = true
				lo, hi = min(lo, t), max(hi, t+1)
			}
		}
		if stale {
			need = append(need, r)
		}
	}
	if len(need) == 0 {
		return nil
	}
	if !slices.Contains(need, final) {
		need = append(need, final)
	}
	lr := LensRequest{Rows: need, From: lo, To: hi, TopK: req.TopK, Target: req.Target, Tuned: req.Tuned}
	if req.NextToken {
		lr.Next = make([]int, hi-lo)
		for t := lo; t < hi; t++ {
			lr.Next[t-lo] = -1
			if t+1 < len(req.IDs) {
				lr.Next[t-lo] = req.IDs[t+1]
			}
		}
	}
	out := make([][]Cell, len(need))
	for r, row := range need {
		st := row.stream()
		if len(s.cells[st]) < hi {
			s.cells[st] = append(s.cells[st], make([]Cell, hi-len(s.cells[st]))...)
		}
		out[r] = s.cells[st][lo:hi]
	}
	if err := s.dev.Lens(ctx, lr, out); err != nil {
		// A device may have filled part of the range: mark none of it current.
		for _, row := range need {
			s.mark(row.stream(), lo, hi, false)
		}
		return err
	}
	for _, row := range need {
		s.mark(row.stream(), lo, hi, true)
	}
	return nil
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
