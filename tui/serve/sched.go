package serve

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/tui"
)

// Fair sharing of one model between sessions.
//
// All sessions compute on the one shared model, so the scheduler hands out a
// fixed number of compute slots (one by default: a single lens already uses
// every core through the engine's GEMM and its parallel loops, and the
// forward pass is bound by memory bandwidth, so two lenses at once finish no
// sooner in total and each takes about twice as long). Waiting sessions
// queue first come, first served, and each session holds at most one place
// in the queue (its own calls are serialised first), so the queue is a
// round robin over sessions.
//
// A long prompt must not hold the slot for seconds while others type, so a
// session's request is computed in turns of at most turnTokens new
// positions: inference.Session keeps the prefix it has computed, and GPT-2
// is causal, so the lens of ids[:e] is exactly the first e columns of the
// lens of ids. After each turn the session gives the slot to the next
// waiting session, if there is one, and queues again at the back.

// turnTokens bounds the new positions one session computes per turn
// (forward plus every lens row). It equals inference's forward chunk
// (unexported there), so a turn is one chunk of work; were they to differ,
// only the floating-point rounding of a turn-split lens would change.
const turnTokens = 32

// scheduler hands out compute slots fairly.
type scheduler struct {
	mu    sync.Mutex
	free  int       // idle slots
	queue []*waiter // sessions waiting for a slot, oldest first
}

// waiter is one queued session; ready is closed when it is granted a slot.
type waiter struct{ ready chan struct{} }

func newScheduler(slots int) *scheduler {
	return &scheduler{free: max(1, slots)}
}

// acquire waits for a slot in queue order, or until ctx ends.
func (s *scheduler) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.free > 0 && len(s.queue) == 0 {
		s.free--
		s.mu.Unlock()
		return nil
	}
	w := &waiter{ready: make(chan struct{})}
	s.queue = append(s.queue, w)
	s.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if i := slices.Index(s.queue, w); i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
		s.mu.Unlock()
		return ctx.Err()
	}
	s.mu.Unlock()
	s.release() // granted while giving up: pass it on
	return ctx.Err()
}

// release gives a slot to the oldest waiter, or frees it.
func (s *scheduler) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		w := s.queue[0]
		s.queue = s.queue[1:]
		close(w.ready)
		return
	}
	s.free++
}

// yield lets every session already waiting go first, then takes a slot
// again; with nobody waiting it keeps the slot. On error the slot is not
// held.
func (s *scheduler) yield(ctx context.Context) error {
	s.mu.Lock()
	waiting := len(s.queue) > 0
	s.mu.Unlock()
	if !waiting {
		if err := ctx.Err(); err != nil {
			s.release()
			return err
		}
		return nil
	}
	s.release()
	return s.acquire(ctx)
}

// waiting returns the number of queued sessions.
func (s *scheduler) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// fairBackend is one SSH session's view of the model: its own
// inference.Session (own prefix cache) whose lens requests take turns on
// the shared scheduler and end when the SSH session does.
type fairBackend struct {
	sess  *inference.Session
	sched *scheduler
	done  context.Context // the SSH session's context

	mu   sync.Mutex // serialises this session's requests
	last lastRequest
}

// lastRequest is what the session's prefix cache holds, as far as the
// wrapper knows: it only decides where turns start, never what is shown.
type lastRequest struct {
	ids          []int
	topK, target int
	sublayers    bool
	usable       bool
}

var _ tui.Backend = (*fairBackend)(nil)

func newFairBackend(sess *inference.Session, sched *scheduler, done context.Context) *fairBackend {
	return &fairBackend{sess: sess, sched: sched, done: done}
}

// Info describes the model.
func (b *fairBackend) Info() inference.Info { return b.sess.Info() }

// Encode tokenises text.
func (b *fairBackend) Encode(text string) []inference.Token { return b.sess.Encode(text) }

// Reencode re-tokenises an edited prompt from where it changed, so a long
// prompt does not cost a whole tokenisation per key.
func (b *fairBackend) Reencode(prevText string, prev []inference.Token, text string) []inference.Token {
	return b.sess.Reencode(prevText, prev, text)
}

// TokenBytes returns a token's raw bytes.
func (b *fairBackend) TokenBytes(id int) []byte { return b.sess.TokenBytes(id) }

// EOT returns the <|endoftext|> id, or -1.
func (b *fairBackend) EOT() int { return b.sess.EOT() }

// Lens computes req in fair turns. Columns reach onColumn once each, in
// order, as in inference.Session.Lens; the result equals a single call's,
// with Reused counted from the first turn and Elapsed including time spent
// waiting for a turn. It returns ctx.Err() when ctx ends or the SSH session
// closes.
func (b *fairBackend) Lens(ctx context.Context, req inference.Request, onColumn func(inference.Column)) (*inference.Lens, error) {
	start := time.Now()
	if err := b.sess.Model().Validate(req); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.done, cancel)()

	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.sched.acquire(ctx); err != nil {
		return nil, err
	}
	held := true
	defer func() {
		if held {
			b.sched.release()
		}
	}()

	T := len(req.IDs)
	from := b.cachedPrefix(req)
	sent, reused := 0, -1
	var l *inference.Lens
	// Turns end at multiples of turnTokens, where inference's forward
	// chunks end, so the chunks (and their floating-point results) are
	// those of a single call.
	for end := min(T, (from/turnTokens+1)*turnTokens); ; end = min(T, end+turnTokens) {
		part := req
		part.IDs = req.IDs[:end]
		var err error
		l, err = b.sess.Lens(ctx, part, func(c inference.Column) {
			if c.Pos >= sent && onColumn != nil {
				onColumn(c)
			}
		})
		if err != nil {
			b.last.usable = false
			return nil, err
		}
		sent = end
		b.remember(part)
		if reused < 0 {
			reused = l.Reused
		}
		if end == T {
			break
		}
		if err := b.sched.yield(ctx); err != nil {
			held = false
			return nil, err
		}
	}
	l.Reused = reused
	l.Elapsed = time.Since(start)
	return l, nil
}

// cachedPrefix estimates how many leading positions of req the session has
// ready, so turns count only new work.
func (b *fairBackend) cachedPrefix(req inference.Request) int {
	last := b.last
	if !last.usable || last.topK != req.TopK || last.target != req.Target || last.sublayers != req.Sublayers {
		return 0
	}
	n := 0
	for n < len(last.ids) && n < len(req.IDs) && last.ids[n] == req.IDs[n] {
		n++
	}
	return n
}

func (b *fairBackend) remember(req inference.Request) {
	b.last = lastRequest{ids: slices.Clone(req.IDs), topK: req.TopK, target: req.Target, sublayers: req.Sublayers, usable: true}
}

// Compare compares run A with run B (see inference.Session.Compare) in one
// turn of the scheduler: run B's lens and the aligned cells are computed
// together, after A's lens, whose columns Lens already served in turns. It
// returns ctx.Err() when ctx ends or the SSH session closes.
func (b *fairBackend) Compare(ctx context.Context, ra, rb inference.Request, onColumn func(inference.CompareColumn)) (*inference.Comparison, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.done, cancel)()

	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.sched.acquire(ctx); err != nil {
		return nil, err
	}
	defer b.sched.release()
	c, err := b.sess.Compare(ctx, ra, rb, onColumn)
	if err != nil {
		b.last.usable = false
	} else {
		b.remember(ra)
	}
	return c, err
}
