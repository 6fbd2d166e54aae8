package serve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/testmodel"
)

func testLogger(w *syncBuffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// TestSchedulerRoundRobin: waiters are served in arrival order, and a
// yielding holder goes to the back of the queue.
func TestSchedulerRoundRobin(t *testing.T) {
	s := newScheduler(1)
	ctx := context.Background()
	if err := s.acquire(ctx); err != nil { // A holds the slot
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for i, name := range []string{"B", "C"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.acquire(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			s.release()
		}()
		waitQueued(t, s, i+1) // B, then C, queue in this order
	}
	if err := s.yield(ctx); err != nil { // A lets B and C go first
		t.Fatal(err)
	}
	mu.Lock()
	order = append(order, "A")
	mu.Unlock()
	s.release()
	wg.Wait()
	if want := []string{"B", "C", "A"}; !reflect.DeepEqual(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if s.free != 1 || len(s.queue) != 0 {
		t.Errorf("free %d, queue %d", s.free, len(s.queue))
	}
}

// waitQueued waits until n sessions are queued.
func waitQueued(t *testing.T, s *scheduler, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d queued, want %d", s.waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSchedulerCancel: a waiter whose context ends leaves the queue, and
// the slot is not lost.
func TestSchedulerCancel(t *testing.T) {
	s := newScheduler(1)
	if err := s.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- s.acquire(ctx) }()
	waitQueued(t, s, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("acquire: %v", err)
	}
	if s.waiting() != 0 {
		t.Error("cancelled waiter still queued")
	}
	s.release()
	if err := s.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.release()
	if s.free != 1 {
		t.Errorf("free %d", s.free)
	}
}

// TestFairBackendEqualsSession: a lens computed in turns equals one
// computed in a single call by a session with the same history, every
// column arrives once and in order, and Reused counts the cached prefix.
func TestFairBackendEqualsSession(t *testing.T) {
	m := tinyModel(t)
	var ids []int
	for _, tok := range m.Encode(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 7)) {
		ids = append(ids, tok.ID)
	}
	if len(ids) <= 2*turnTokens || len(ids) > 128 {
		t.Fatalf("prompt has %d tokens; want over 2 turns, within n_positions", len(ids))
	}
	edited := append(append([]int{}, ids[:40]...), ids[47:]...)
	b := newFairBackend(m.NewSession(), newScheduler(1), context.Background())
	ref := m.NewSession()
	for _, tc := range []struct {
		name   string
		ids    []int
		reused int
	}{
		{"cold", ids, 0},
		{"warm", ids, len(ids)},
		{"edited", edited, commonPrefix(ids, edited)},
	} {
		r := inference.Request{IDs: tc.ids, TopK: 3, Target: ids[3]}
		want, err := ref.Lens(context.Background(), r, nil)
		if err != nil {
			t.Fatal(err)
		}
		var cols []int
		got, err := b.Lens(context.Background(), r, func(c inference.Column) {
			cols = append(cols, c.Pos)
			if !reflect.DeepEqual(c.Cells, columnOf(want, c.Pos)) {
				t.Errorf("%s: column %d differs", tc.name, c.Pos)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range cols {
			if p != i {
				t.Fatalf("%s: columns %v", tc.name, cols)
			}
		}
		if len(cols) != len(tc.ids) {
			t.Errorf("%s: %d columns for %d tokens", tc.name, len(cols), len(tc.ids))
		}
		if !reflect.DeepEqual(got.Cells, want.Cells) || !reflect.DeepEqual(got.FinalTop1, want.FinalTop1) || !reflect.DeepEqual(got.Rows, want.Rows) {
			t.Errorf("%s: lens differs from a single call", tc.name)
		}
		if got.Reused != tc.reused || want.Reused != tc.reused {
			t.Errorf("%s: reused %d (single call %d), want %d", tc.name, got.Reused, want.Reused, tc.reused)
		}
	}
}

func columnOf(l *inference.Lens, pos int) []inference.Cell {
	cells := make([]inference.Cell, len(l.Rows))
	for r := range l.Rows {
		cells[r] = l.Cells[r][pos]
	}
	return cells
}

// TestFairBackendTakesTurns: while one session computes a long prompt,
// another's short request is served between its turns, not after it.
func TestFairBackendTakesTurns(t *testing.T) {
	m := tinyModel(t)
	sched := newScheduler(1)
	long := newFairBackend(m.NewSession(), sched, context.Background())
	short := newFairBackend(m.NewSession(), sched, context.Background())
	var ids []int
	for _, tok := range m.Encode(strings.Repeat("one two three four ", 30)) {
		ids = append(ids, tok.ID)
	}
	ids = ids[:3*turnTokens]

	var mu sync.Mutex
	var events []string
	shortStarted := make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := long.Lens(context.Background(), inference.Request{IDs: ids, TopK: 1, Target: -1}, func(c inference.Column) {
			if c.Pos == turnTokens-1 {
				// After the first turn, let the short request queue.
				once.Do(func() { close(shortStarted); waitQueued(t, sched, 1) })
			}
			mu.Lock()
			events = append(events, "long")
			mu.Unlock()
		})
		if err != nil {
			t.Error(err)
		}
	}()
	<-shortStarted
	if _, err := short.Lens(context.Background(), inference.Request{IDs: ids[:3], TopK: 1, Target: -1}, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	events = append(events, "short")
	n := len(events)
	mu.Unlock()
	<-done
	if n-1 >= len(ids) {
		t.Errorf("the short request finished after all %d long columns", len(ids))
	}
	if n-1 > 2*turnTokens {
		t.Errorf("the short request waited for %d long columns, want at most 2 turns", n-1)
	}
}

// TestFairBackendSessionEnd: the SSH session's end cancels a queued request.
func TestFairBackendSessionEnd(t *testing.T) {
	m := tinyModel(t)
	sched := newScheduler(1)
	if err := sched.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	sessCtx, endSession := context.WithCancel(context.Background())
	b := newFairBackend(m.NewSession(), sched, sessCtx)
	errc := make(chan error)
	go func() {
		_, err := b.Lens(context.Background(), inference.Request{IDs: []int{1, 2, 3}, TopK: 1, Target: -1}, nil)
		errc <- err
	}()
	waitQueued(t, sched, 1)
	endSession()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Lens after the session ended: %v", err)
	}
	sched.release()
	if sched.free != 1 || sched.waiting() != 0 {
		t.Errorf("free %d, waiting %d", sched.free, sched.waiting())
	}
}

// TestRateLimiter: burst, then the rate, per source address.
func TestRateLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRateLimiter(2, 3)
	r.now = func() time.Time { return now }
	a := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}
	a2 := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 2}
	b := &net.TCPAddr{IP: net.ParseIP("192.0.2.2"), Port: 1}
	for i := range 3 {
		if !r.allow(a) {
			t.Fatalf("burst connection %d refused", i)
		}
	}
	if r.allow(a2) {
		t.Error("a fourth connection from the same address (other port) allowed")
	}
	if !r.allow(b) {
		t.Error("another address refused")
	}
	now = now.Add(500 * time.Millisecond) // one token at 2/s
	if !r.allow(a) || r.allow(a) {
		t.Error("refill at the rate")
	}
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// TestFilterRemote: keys pass (ctrl+v too: the explorer, told it is
// remote, answers it with a notice), suspending is refused.
func TestFilterRemote(t *testing.T) {
	for _, k := range []tea.KeyPressMsg{{Code: 'v', Text: "v"}, {Code: 'v', Mod: tea.ModCtrl}} {
		if msg := filterRemote(nil, k); msg != k {
			t.Errorf("%v became %v", k, msg)
		}
	}
	if msg := filterRemote(nil, tea.SuspendMsg{}); msg != (tea.ResumeMsg{}) {
		t.Errorf("suspend became %v", msg)
	}
	if w, h := clampWindow(ssh.Window{Width: 1 << 20, Height: 0}); w != maxWidth || h != 1 {
		t.Errorf("clamped to %dx%d", w, h)
	}
}

// TestFairBackendCompare: a comparison over SSH takes one turn of the
// scheduler, equals the session's own, and ends with the SSH session.
func TestFairBackendCompare(t *testing.T) {
	m, err := inference.OpenDir(testmodel.Dir(t, "tiny-f32"), "tiny-f32", inference.NewCPUBackend)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sched := newScheduler(1)
	sessCtx, endSession := context.WithCancel(context.Background())
	b := newFairBackend(m.NewSession(), sched, sessCtx)
	var _ interface {
		Compare(context.Context, inference.Request, inference.Request, func(inference.CompareColumn)) (*inference.Comparison, error)
	} = b
	enc := func(s string) []int {
		var ids []int
		for _, tok := range m.Encode(s) {
			ids = append(ids, tok.ID)
		}
		return ids
	}
	ra := inference.Request{IDs: enc("The Eiffel Tower is in the city of"), TopK: 3, Target: -1}
	rb := ra
	rb.IDs = enc("Rome is the city of")
	got, err := b.Compare(context.Background(), ra, rb, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := m.NewSession()
	defer ref.Close()
	want, err := ref.Compare(context.Background(), ra, rb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Cells, want.Cells) || got.Columns != want.Columns {
		t.Error("a comparison over the fair backend differs from the session's")
	}
	if sched.free != 1 {
		t.Errorf("the comparison kept its turn: free %d", sched.free)
	}

	// Queued behind another session's turn, it ends with the SSH session.
	if err := sched.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error)
	go func() {
		_, err := b.Compare(context.Background(), ra, rb, nil)
		errc <- err
	}()
	waitQueued(t, sched, 1)
	endSession()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Compare after the session ended: %v", err)
	}
	sched.release()
}
