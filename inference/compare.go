package inference

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/logitlens/logitlens/weights/tunedlens"
)

// Comparing two runs. Run A is the user's lens; run B changes one thing:
// the prompt, the checkpoint (same vocabulary, same number of layers) or
// the lens (logit or tuned). Each run has its own Session, so each keeps
// its own prefix cache, and two sessions of one model share its weights.
//
// Alignment is to the right, as the reference's: with n = min(T_A, T_B)
// columns, column j pairs A's position T_A−n+j with B's position T_B−n+j,
// so the last tokens, which predict what comes next, face each other. The
// longer prompt's first |T_A−T_B| positions have no partner.
//
// Per aligned cell (row l, column j), in nats, as lens_ref.py --compare-*:
//
//	KL(P_A ‖ P_B) = Σ_v p_A(v)·(log p_A(v) − log p_B(v))
//	top1_b        = argmax_v of B's logits, the smaller id on ties
//	P_B(top1_a)   = B's probability of A's top-1
//
// KL over the whole vocabulary needs both runs' full distributions of a
// cell at once, and the runs may live on two devices of two models: they
// meet on the host (Device.Logits), a chunk of positions at a time. What
// that costs, per compared column: each run's rows decoded once more (the
// lens's GEMM, R·C·V multiply-adds per run), R·V floats per run copied to
// the host (none on the CPU device, which decodes on the host), and two
// passes over V per row: A's softmax (finalRowOf), then B's row reduced
// against it by rowStats, the lens's own statistics of a row against its
// final row, with P_A in the final row's place. A Pair keeps the cells it
// computed; a new comparison recomputes only the columns whose positions
// changed in A or in B, as long as the pairing (T_A − T_B) stays the same.

// PairCell compares run A's and run B's distributions at one aligned cell.
type PairCell struct {
	// KL is KL(P_A ‖ P_B) in nats; exactly 0 where the two cells' logits
	// are equal, NaN where either is not finite.
	KL float64
	// Top1A and Top1B are each run's top-1 id (the smaller id on ties);
	// -1 where that run's cell is not finite.
	Top1A, Top1B int
	// ProbA is P_A(top1_a), ProbB P_B(top1_a): B's probability of A's
	// top-1 (the reference's prob_b_of_top1_a), and RankB its rank under
	// B (0-based: ids with a strictly larger logit).
	ProbA, ProbB float64
	RankB        int
	// TargetA and TargetB are the pinned target's probability under each
	// run; 0 without a target.
	TargetA, TargetB float64
	// NonFinite is set where either run's cell is not finite: the other
	// fields are then NaN or -1.
	NonFinite bool
}

// Top1Differs says whether the two runs' top-1 differ at this cell.
func (c PairCell) Top1Differs() bool { return !c.NonFinite && c.Top1A != c.Top1B }

// DeltaTop1 is P_B(top1_a) − P_A(top1_a): how much of A's prediction B keeps.
func (c PairCell) DeltaTop1() float64 { return c.ProbB - c.ProbA }

// DeltaTarget is P_B(target) − P_A(target).
func (c PairCell) DeltaTarget() float64 { return c.TargetB - c.TargetA }

// Comparison is two runs' lenses and their aligned cells.
type Comparison struct {
	A, B    *Lens
	Columns int          // n = min(T_A, T_B)
	Cells   [][]PairCell // [row][column]; rows are A.Rows (= B.Rows)
	Target  int          // the pinned target of both runs; -1 for none
	Reused  int          // columns served from the Pair's earlier comparison
	Elapsed time.Duration
}

// PosA is A's position at column j.
func (c *Comparison) PosA(j int) int { return len(c.A.IDs) - c.Columns + j }

// PosB is B's position at column j.
func (c *Comparison) PosB(j int) int { return len(c.B.IDs) - c.Columns + j }

// ColumnOfA is the column of A's position t, or -1 where t has no partner.
func (c *Comparison) ColumnOfA(t int) int { return columnOf(t, len(c.A.IDs), c.Columns) }

// ColumnOfB is the column of B's position t, or -1 where t has no partner.
func (c *Comparison) ColumnOfB(t int) int { return columnOf(t, len(c.B.IDs), c.Columns) }

func columnOf(t, T, n int) int {
	if j := t - (T - n); j >= 0 && j < n {
		return j
	}
	return -1
}

// CompareColumn is one finished column of a comparison, streamed.
type CompareColumn struct {
	Column     int        // j
	PosA, PosB int        // the positions it pairs
	Cells      []PairCell // one per row
}

// ErrIncomparable is wrapped by the error for two runs that cannot be
// compared cell by cell (another vocabulary, another number of layers,
// other rows).
var ErrIncomparable = errors.New("the runs cannot be compared")

// Pair compares run A on one session with run B on another. Its calls are
// serialised. It does not own the sessions: their owner closes them.
type Pair struct {
	a, b *Session
	mu   sync.Mutex

	// The cells of the last comparison, by A's position, for reuse.
	key    pairKey
	idsA   []int
	idsB   []int
	offset int          // T_A − T_B
	cells  [][]PairCell // [row][A position]
	done   int          // A positions below which cells holds current cells

	za, zb []float32 // one chunk's logits, [R·n, V] each
}

// pairKey is what a pair cell depends on besides the two prompts.
type pairKey struct {
	sublayers      bool
	target         int
	tunedA, tunedB *tunedlens.Lens
}

// NewPair pairs two sessions, which may be of one model or of two models
// with the same vocabulary (id for id) and the same number of layers.
func NewPair(a, b *Session) (*Pair, error) {
	if err := Comparable(a.m, b.m); err != nil {
		return nil, err
	}
	return &Pair{a: a, b: b, key: pairKey{target: -2}}, nil
}

// A returns run A's session.
func (p *Pair) A() *Session { return p.a }

// B returns run B's session.
func (p *Pair) B() *Session { return p.b }

// Comparable checks that two models' lenses can be compared cell by cell:
// the same number of layers (rows pair with rows) and the same vocabulary,
// id for id (distributions over the same tokens).
func Comparable(a, b *Model) error {
	if a == b {
		return nil
	}
	na, nb := a.Info().ID, b.Info().ID
	ca, cb := a.Config(), b.Config()
	if ca.NLayer != cb.NLayer {
		return fmt.Errorf("inference: %w: %s has %d layers and %s has %d; layers are compared one for one", ErrIncomparable, na, ca.NLayer, nb, cb.NLayer)
	}
	if ca.VocabSize != cb.VocabSize || a.tok.VocabSize() != b.tok.VocabSize() {
		return fmt.Errorf("inference: %w: %s has a vocabulary of %d and %s of %d; distributions are compared over the same tokens", ErrIncomparable, na, ca.VocabSize, nb, cb.VocabSize)
	}
	for id := range a.tok.VocabSize() {
		if !slices.Equal(a.tok.TokenBytes(id), b.tok.TokenBytes(id)) {
			return fmt.Errorf("inference: %w: %s and %s have different tokenizers (token %d is %s in one, %s in the other)", ErrIncomparable, na, nb, id, a.TokenText(id), b.TokenText(id))
		}
	}
	return nil
}

// Compare compares run A, ra on this session, with run B, rb on a second
// session of the same model that this one opens at the first comparison and
// closes with itself: run B keeps its own prefix cache, so an edit of B's
// prompt recomputes only B's changed positions. See Pair.Compare.
func (s *Session) Compare(ctx context.Context, ra, rb Request, onColumn func(CompareColumn)) (*Comparison, error) {
	s.pairMu.Lock()
	defer s.pairMu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, errSessionClosed
	}
	if s.pair == nil {
		s.pair = &Pair{a: s, b: s.m.NewSession(), key: pairKey{target: -2}}
	}
	return s.pair.Compare(ctx, ra, rb, onColumn)
}

// pairRows bounds the rows of logits one chunk of a comparison holds per
// run: 64·V floats, 13 MB for GPT-2's vocabulary.
const pairRows = 64

// Compare computes run A's lens (ra on A's session) and run B's (rb on
// B's), then the pair cells of every aligned column, reusing the columns of
// the previous comparison that neither run changed. The requests must ask
// for the same rows (Sublayers) and the same target; B's tokens and lens
// may differ from A's. Each finished column goes to onColumn (if not nil)
// in order. On cancellation it returns ctx.Err().
func (p *Pair) Compare(ctx context.Context, ra, rb Request, onColumn func(CompareColumn)) (*Comparison, error) {
	start := time.Now()
	switch {
	case ra.Sublayers != rb.Sublayers:
		return nil, fmt.Errorf("inference: %w: one run has sublayer rows and the other not", ErrIncomparable)
	case ra.Target != rb.Target:
		return nil, fmt.Errorf("inference: compare: the runs pin different targets (%d, %d)", ra.Target, rb.Target)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	la, err := p.a.Lens(ctx, ra, nil)
	if err != nil {
		return nil, err
	}
	lb, err := p.b.Lens(ctx, rb, nil)
	if err != nil {
		return nil, err
	}
	TA, TB := len(ra.IDs), len(rb.IDs)
	n := min(TA, TB)
	c := &Comparison{A: la, B: lb, Columns: n, Target: ra.Target}
	R := len(la.Rows)

	// Cells stay current at A's positions below done when the pairing
	// and the request are the same and neither prompt changed before them.
	key := pairKey{sublayers: ra.Sublayers, target: ra.Target, tunedA: ra.Tuned, tunedB: rb.Tuned}
	done := 0
	if key == p.key && TA-TB == p.offset {
		done = min(p.done, commonPrefix(p.idsA, ra.IDs), commonPrefix(p.idsB, rb.IDs)+p.offset)
	}
	p.key, p.offset = key, TA-TB
	p.idsA, p.idsB = slices.Clone(ra.IDs), slices.Clone(rb.IDs)
	p.done = min(done, TA)
	if len(p.cells) != R {
		p.cells = make([][]PairCell, R)
	}
	for r := range p.cells {
		p.cells[r] = slices.Grow(p.cells[r][:min(len(p.cells[r]), TA)], TA)[:TA]
	}

	a0 := TA - n // A's first paired position
	column := func(t int) {
		if onColumn == nil {
			return
		}
		col := CompareColumn{Column: t - a0, PosA: t, PosB: t - p.offset, Cells: make([]PairCell, R)}
		for r := range R {
			col.Cells[r] = p.cells[r][t]
		}
		onColumn(col)
	}
	from := max(a0, p.done)
	for t := a0; t < from; t++ {
		column(t)
	}
	c.Reused = from - a0
	V := p.a.m.cfg.VocabSize
	step := max(1, pairRows/R)
	for a := from; a < TA; a += step {
		b := min(TA, a+step)
		k := b - a
		p.za, p.zb = grow(p.za, R*k*V), grow(p.zb, R*k*V)
		if err := p.a.Logits(ctx, ra, a, b, p.za); err != nil {
			return nil, err
		}
		if err := p.b.Logits(ctx, rb, a-p.offset, b-p.offset, p.zb); err != nil {
			return nil, err
		}
		parallel(R*k, func(i0, i1 int) {
			probs := make([]float32, V)
			for i := i0; i < i1; i++ {
				r, t := i/k, i%k
				p.cells[r][a+t] = pairCellOf(p.za[i*V:(i+1)*V], p.zb[i*V:(i+1)*V], ra.Target, probs)
			}
		})
		p.done = b
		for t := a; t < b; t++ {
			column(t)
		}
	}

	c.Cells = make([][]PairCell, R)
	for r := range R {
		c.Cells[r] = slices.Clone(p.cells[r][a0:TA])
	}
	c.Elapsed = time.Since(start)
	return c, nil
}

// pairCellOf compares A's logits za with B's zb over the same vocabulary,
// with probs [V] as scratch. B's row is reduced against P_A as a lens row
// is against its final row (rowStats): KL(P_A ‖ P_B), the rank and
// probability of A's top-1, the target's probability and B's top-1.
func pairCellOf(za, zb []float32, target int, probs []float32) PairCell {
	bad := PairCell{KL: math.NaN(), Top1A: -1, Top1B: -1, ProbA: math.NaN(), ProbB: math.NaN(), RankB: -1,
		TargetA: math.NaN(), TargetB: math.NaN(), NonFinite: true}
	fin := finalRowOf(za, probs)
	if fin.top1 < 0 {
		return bad
	}
	pc := PairCell{Top1A: fin.top1, ProbA: math.Exp(float64(za[fin.top1]) - fin.lse)}
	if target >= 0 {
		pc.TargetA = math.Exp(float64(za[target]) - fin.lse)
	}
	if slices.Equal(za, zb) { // P_B = P_A exactly: no rounding of the sums may say otherwise
		pc.Top1B, pc.ProbB, pc.TargetB = pc.Top1A, pc.ProbA, pc.TargetA
		return pc
	}
	var cb Cell
	if !rowStats(&cb, zb, &fin, query{k: 1, target: target, next: -1}) {
		return bad
	}
	pc.KL = cb.KLToFinal
	pc.Top1B = cb.Top[0].ID
	pc.ProbB, pc.RankB = cb.FinalTop1Prob, cb.FinalTop1Rank
	pc.TargetB = cb.TargetProb
	return pc
}
