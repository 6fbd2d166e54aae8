package tui

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/theme"
	"github.com/logitlens/logitlens/weights/testmodel"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// realOptions are an explorer's options on testmodel's tiny-f32 through
// *inference.Session, which compares; the model closes with the test.
// It is opened here, before the explorer starts, so that the flows' time
// limits do not count loading (slow under the race detector).
func realOptions(t *testing.T, prompt string) Options {
	t.Helper()
	m, err := inference.OpenOn(context.Background(), testmodel.Dir(t, "tiny-f32"), "tiny-f32", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return Options{ModelID: "tiny-f32", Prompt: prompt, TopK: 5,
		Load: func(context.Context, func(inference.Progress)) (Backend, error) { return m.NewSession(), nil }}
}

// wantComparison is the comparison of a and b computed apart from the
// explorer, on two fresh sessions.
func wantComparison(t *testing.T, m *Model, a, b string) *inference.Comparison {
	t.Helper()
	return wantComparisonThrough(t, m, a, b, nil, nil)
}

// wantComparisonThrough is wantComparison with A read through the lens
// tunedA and B through tunedB (nil: the logit lens).
func wantComparisonThrough(t *testing.T, m *Model, a, b string, tunedA, tunedB *tunedlens.Lens) *inference.Comparison {
	t.Helper()
	sess, ok := m.backend.(*inference.Session)
	if o, isOther := m.backend.(otherLens); isOther {
		sess, ok = o.Session, true
	}
	if !ok {
		t.Fatalf("backend %T", m.backend)
	}
	s := sess.Model()
	enc := func(text string) []int {
		var ids []int
		for _, tok := range s.Encode(text) {
			ids = append(ids, tok.ID)
		}
		return ids
	}
	sa, sb := s.NewSession(), s.NewSession()
	defer sa.Close()
	defer sb.Close()
	p, err := inference.NewPair(sa, sb)
	if err != nil {
		t.Fatal(err)
	}
	ra := inference.Request{IDs: enc(a), TopK: 5, Target: -1, NextToken: true, Tuned: tunedA}
	rb := ra
	rb.IDs, rb.Tuned = enc(b), tunedB
	c, err := p.Compare(context.Background(), ra, rb, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCompareThroughTunedLens: with the grid on the tuned lens, compare
// mode compares A and B through it (A's cells are the tuned lens's, and so
// are B's), and through the logit lens once l switches back.
func TestCompareThroughTunedLens(t *testing.T) {
	const a, b = "The Eiffel Tower is in the city of", "Rome is in the city of"
	tuned, err := tunedlens.Load(filepath.Join("..", "weights", "tunedlens", "testdata", "lenses", "f32"), 64, 2)
	if err != nil {
		t.Fatal(err)
	}
	opts := realOptions(t, a)
	opts.Tuned = true
	opts.LoadTuned = func(context.Context, func(inference.Progress)) (*tunedlens.Lens, error) { return tuned, nil }
	m := newModel(opts)
	m.Update(teaSize(160, 40))
	m.Update(tea.ColorProfileMsg{Profile: colorprofile.ASCII})
	settle(t, m, m.Init())
	if m.data == nil || m.data.lens == nil || m.data.lens.Tuned != tuned {
		t.Fatal("the grid is not on the tuned lens")
	}
	press(t, m, "tab", "c", "ctrl+u")
	typeText(t, m, b)
	press(t, m, "esc")
	want := wantComparisonThrough(t, m, a, b, tuned, tuned)
	checkShown(t, m, want)
	if m.cmp.data.A.Tuned != tuned || m.cmp.data.B.Tuned != tuned {
		t.Errorf("compared through lenses %v and %v, want the tuned lens", m.cmp.data.A.Tuned, m.cmp.data.B.Tuned)
	}
	logit := wantComparison(t, m, a, b)
	if logit.Cells[0][0].KL == want.Cells[0][0].KL {
		t.Fatal("the test lens does not change the comparison")
	}
	press(t, m, "l")
	checkShown(t, m, logit)
}

// checkShown holds the explorer's comparison to one computed apart.
func checkShown(t *testing.T, m *Model, want *inference.Comparison) {
	t.Helper()
	got := m.cmp.data
	if got == nil {
		t.Fatalf("no comparison shown (error %q)", m.cmp.err)
	}
	if fmt.Sprint(got.A.IDs, got.B.IDs) != fmt.Sprint(want.A.IDs, want.B.IDs) || got.Columns != want.Columns {
		t.Fatalf("compared %v with %v, want %v with %v", got.A.IDs, got.B.IDs, want.A.IDs, want.B.IDs)
	}
	for r := range want.Cells {
		for j, w := range want.Cells[r] {
			if g := got.Cells[r][j]; math.Abs(g.KL-w.KL) > 1e-9 || g.Top1B != w.Top1B || g.Top1A != w.Top1A {
				t.Errorf("row %d column %d: %+v, want %+v", r, j, g, w)
			}
		}
	}
}

// TestCompareMode: c opens compare with B's prompt prefilled with A's (the
// same run: every KL 0, nothing marked), an edit of B recomputes only B's
// changed positions and marks the cells whose top-1 differs, x swaps the
// prompts, C leaves.
func TestCompareMode(t *testing.T) {
	const a = "The Eiffel Tower is in the city of"
	m := newModel(realOptions(t, a))
	m.Update(teaSize(120, 30))
	m.Update(tea.ColorProfileMsg{Profile: colorprofile.ASCII})
	settle(t, m, m.Init())
	if m.loadErr != nil {
		t.Fatal(m.loadErr)
	}
	press(t, m, "tab", "c")
	if !m.cmp.on || m.focus != focusCompare || m.cmp.prompt.Value() != a {
		t.Fatalf("c: on %v, focus %v, B %q", m.cmp.on, m.focus, m.cmp.prompt.Value())
	}
	checkShown(t, m, wantComparison(t, m, a, a))
	for r, row := range m.cmp.data.Cells {
		for j, c := range row {
			if c.KL != 0 || c.Top1Differs() || c.DeltaTop1() != 0 {
				t.Errorf("A against itself, row %d column %d: %+v", r, j, c)
			}
		}
	}
	s := screen(m)
	if !strings.Contains(s, "B › "+a) || strings.Contains(s, "≠") || !strings.Contains(s, "KL(A‖B) 0.000 nats") {
		t.Errorf("A against itself:\n%s", s)
	}

	// B's last word: one position of B recomputed, the rest from its cache.
	press(t, m, "ctrl+w")
	typeText(t, m, "at")
	const b = "The Eiffel Tower is in the city at"
	want := wantComparison(t, m, a, b)
	checkShown(t, m, want)
	if n := len(m.cmp.data.B.IDs); m.cmp.data.B.Reused != n-1 {
		t.Errorf("an edit of B's last token reused %d of B's %d positions", m.cmp.data.B.Reused, n)
	}
	differ := 0
	for _, row := range want.Cells {
		for _, c := range row {
			if c.Top1Differs() {
				differ++
			}
		}
	}
	if got := strings.Count(screen(m), "≠"); differ == 0 || got != differ {
		t.Errorf("%d cells marked ≠, %d differ:\n%s", got, differ, screen(m))
	}

	// x swaps A and B; each run recomputes from where its prompt changed.
	press(t, m, "esc", "x")
	if m.prompt.Value() != b || m.cmp.prompt.Value() != a {
		t.Fatalf("after x: A %q, B %q", m.prompt.Value(), m.cmp.prompt.Value())
	}
	checkShown(t, m, wantComparison(t, m, b, a))

	// m cycles the comparison's metrics, C leaves.
	press(t, m, "m")
	if m.cmp.metric.String() != "delta-top1" {
		t.Errorf("m in compare: metric %s", m.cmp.metric)
	}
	press(t, m, "C")
	if s := screen(m); m.cmp.on || strings.Contains(s, "B › ") || m.grid.cols != len(m.data.ids) {
		t.Errorf("after C: on %v, %d columns:\n%s", m.cmp.on, m.grid.cols, s)
	}
}

// TestCompareUnpaired: the longer prompt's extra columns show that run's
// own top-1, uncoloured and unmarked, whichever run is the longer; the
// panel there names the run that has the position and lists its top-k.
func TestCompareUnpaired(t *testing.T) {
	const short, long = "Rome is in", "The Eiffel Tower is in the city of Paris, and Rome is in"
	m := newModel(realOptions(t, short))
	m.Update(teaSize(240, 40))
	m.Update(tea.ColorProfileMsg{Profile: colorprofile.ASCII})
	settle(t, m, m.Init())
	press(t, m, "tab", "c", "ctrl+u")
	typeText(t, m, long)
	press(t, m, "esc")
	for _, tc := range []struct{ a, b, only string }{{short, long, "B"}, {long, short, "A"}} {
		if tc.only == "A" {
			press(t, m, "x")
		}
		want := wantComparison(t, m, tc.a, tc.b)
		checkShown(t, m, want)
		c := &m.cmp
		if c.width() != len(want.B.IDs)+len(want.A.IDs)-want.Columns {
			t.Fatalf("%d columns for %d and %d tokens", c.width(), len(want.A.IDs), len(want.B.IDs))
		}
		out := len(want.Cells) - 1
		var texts []string
		unpaired := 0
		for x := m.grid.left; x < m.grid.left+m.grid.visibleCols() && x < c.width(); x++ {
			pa, pb, j := c.positions(x)
			var text string
			switch {
			case j < 0 && pa >= 0:
				text = m.tokenText(want.A.Cells[out][pa].Top[0].ID)
			case j < 0:
				text = m.tokenText(want.B.Cells[out][pb].Top[0].ID)
			case want.Cells[out][j].Top1Differs():
				text = "≠" + m.tokenText(want.Cells[out][j].Top1B)
			default:
				text = m.tokenText(want.Cells[out][j].Top1A)
			}
			if j < 0 {
				unpaired++
			}
			texts = append(texts, shownText(m, text, out == m.grid.row && x == m.grid.col))
		}
		if l := line(screen(m), rowLabel(want.A.Rows[out], true)); unpaired == 0 || !containsInOrder(l, texts) {
			t.Errorf("B %q: output row %q, want the cells %q (%d unpaired)", tc.b, l, texts, unpaired)
		}
		press(t, m, "home")
		s := screen(m)
		top := want.A.Cells[out][0].Top
		if tc.only == "B" {
			top = want.B.Cells[out][0].Top
		}
		if !strings.Contains(s, "only "+tc.only+" has this position") || !strings.Contains(s, tc.only+"'s top-k") ||
			!containsInOrder(s, []string{m.tokenText(top[0].ID), m.tokenText(top[1].ID)}) {
			t.Errorf("panel at an unpaired column of %s:\n%s", tc.only, s)
		}
		press(t, m, "end")
	}
}

// otherLens is a backend whose comparisons read run B through another
// lens, as the command line's --compare-lens makes them.
type otherLens struct {
	*inference.Session
	lens *tunedlens.Lens
}

// Compare compares ra with rb read through the other lens.
func (o otherLens) Compare(ctx context.Context, ra, rb inference.Request, onColumn func(inference.CompareColumn)) (*inference.Comparison, error) {
	rb.Tuned = o.lens
	return o.Session.Compare(ctx, ra, rb, onColumn)
}

// TestCompareWithFixedRun: a run B that reads A's prompt through another
// lens (Options.CompareWith) opens compare mode at the start, names B on
// its line, follows every edit of A, and has no prompts to swap.
func TestCompareWithFixedRun(t *testing.T) {
	const a = "The Eiffel Tower is in the city of"
	tuned, err := tunedlens.Load(filepath.Join("..", "weights", "tunedlens", "testdata", "lenses", "f32"), 64, 2)
	if err != nil {
		t.Fatal(err)
	}
	opts := realOptions(t, a)
	opts.CompareWith = "the tuned lens f32"
	load := opts.Load
	opts.Load = func(ctx context.Context, progress func(inference.Progress)) (Backend, error) {
		b, err := load(ctx, progress)
		if err != nil {
			return nil, err
		}
		return otherLens{b.(*inference.Session), tuned}, nil
	}
	m := newModel(opts)
	m.Update(teaSize(160, 40))
	m.Update(tea.ColorProfileMsg{Profile: colorprofile.ASCII})
	settle(t, m, m.Init())
	if m.loadErr != nil {
		t.Fatal(m.loadErr)
	}
	if s := screen(m); !m.cmp.on || !strings.Contains(s, "B › A's prompt, through the tuned lens f32") {
		t.Fatalf("compare mode at the start: on %v\n%s", m.cmp.on, s)
	}
	checkShown(t, m, wantComparisonThrough(t, m, a, a, nil, tuned))

	typeText(t, m, " Paris") // A's edit is B's
	checkShown(t, m, wantComparisonThrough(t, m, a+" Paris", a+" Paris", nil, tuned))

	press(t, m, "tab", "x")
	if s := screen(m); m.prompt.Value() != a+" Paris" || m.cmp.prompt.Value() != "" || !strings.Contains(s, "no prompts to swap") {
		t.Errorf("x with B fixed to A's prompt: A %q, B %q\n%s", m.prompt.Value(), m.cmp.prompt.Value(), s)
	}
	press(t, m, "C")
	if m.cmp.on {
		t.Error("C did not leave compare")
	}
	press(t, m, "c")
	if !m.cmp.on || m.cmp.prompt.Value() != "" {
		t.Errorf("c again: on %v, B's line %q (B reads A's prompt)", m.cmp.on, m.cmp.prompt.Value())
	}
	checkShown(t, m, wantComparisonThrough(t, m, a+" Paris", a+" Paris", nil, tuned))
}

// refusingB is a backend whose run B cannot be compared.
type refusingB struct{ *inference.Session }

// Compare refuses, with a long reason.
func (refusingB) Compare(context.Context, inference.Request, inference.Request, func(inference.CompareColumn)) (*inference.Comparison, error) {
	return nil, errors.New("--compare-model: inference: the runs cannot be compared: tiny-f32 has 2 layers and small-shape has 4; layers are compared one for one")
}

// TestCompareErrorShown: a comparison that fails shows its whole reason in
// the grid's place, wrapped to the width, with the way out; run A's grid
// comes back with C.
func TestCompareErrorShown(t *testing.T) {
	opts := realOptions(t, "The Eiffel Tower is in")
	opts.CompareWith = "the model small-shape"
	load := opts.Load
	opts.Load = func(ctx context.Context, progress func(inference.Progress)) (Backend, error) {
		b, err := load(ctx, progress)
		if err != nil {
			return nil, err
		}
		return refusingB{b.(*inference.Session)}, nil
	}
	m := newModel(opts)
	m.Update(teaSize(80, 24))
	m.Update(tea.ColorProfileMsg{Profile: colorprofile.ASCII})
	settle(t, m, m.Init())
	s := screen(m)
	words := strings.Fields("compare: --compare-model: inference: the runs cannot be compared: tiny-f32 has 2 layers and small-shape has 4; layers are compared one for one")
	if !containsInOrder(s, words) || !strings.Contains(s, "C leaves compare") {
		t.Errorf("the comparison's error:\n%s", s)
	}
	for _, l := range strings.Split(s, "\n") {
		if w := ansi.StringWidth(l); w > 80 {
			t.Errorf("line %d cells wide: %q", w, l)
		}
	}
	press(t, m, "tab", "C")
	if s := screen(m); m.cmp.on || strings.Contains(s, "C leaves compare") || !strings.Contains(s, "␣Tower") {
		t.Errorf("after C:\n%s", s)
	}
}

// commonPrefixLen is the length of a's and b's common prefix.
func commonPrefixLen(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// reuseCounter is a session that records what each comparison recomputed:
// the flows read it while the explorer runs.
type reuseCounter struct {
	*inference.Session
	mu       sync.Mutex
	idsB     []int
	reusedB  int
	compares int
}

// Compare compares and records B's ids and how many of B's positions came
// from B's prefix cache.
func (r *reuseCounter) Compare(ctx context.Context, ra, rb inference.Request, onColumn func(inference.CompareColumn)) (*inference.Comparison, error) {
	c, err := r.Session.Compare(ctx, ra, rb, onColumn)
	if err == nil {
		r.mu.Lock()
		r.idsB, r.reusedB = slices.Clone(c.B.IDs), c.B.Reused
		r.compares++
		r.mu.Unlock()
	}
	return c, err
}

// last returns the last comparison's B ids and reuse.
func (r *reuseCounter) last() ([]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.idsB, r.reusedB
}

// TestFlowCompare drives compare mode as a user does, at 80×24 and
// 200×50: open it, type B, swap, leave.
func TestFlowCompare(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {200, 50}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			opts := realOptions(t, "The Eiffel Tower is in")
			counter := &reuseCounter{}
			load := opts.Load
			opts.Load = func(ctx context.Context, progress func(inference.Progress)) (Backend, error) {
				b, err := load(ctx, progress)
				if err == nil {
					counter.Session = b.(*inference.Session)
				}
				return counter, err
			}
			m := newModel(opts)
			x := newTerm(t, m, size[0], size[1], colorprofile.ANSI256)
			x.waitFor(t, "the first grid", func(s string) bool { return strings.Contains(s, "2 out") })
			x.keys("tab", "c")
			x.waitFor(t, "B's prompt, prefilled", func(s string) bool { return strings.Contains(s, "B › The Eiffel Tower is in") })
			x.keys("ctrl+w", "ctrl+w", "ctrl+w", "ctrl+w", "ctrl+w")
			x.tm.Type("Rome is in")
			s := x.waitFor(t, "the comparison with Rome", func(s string) bool {
				return strings.Contains(s, "B › Rome is in") && strings.Contains(s, "KL(A‖B)") && strings.Contains(s, "≠")
			})
			header := ""
			for _, l := range strings.Split(s, "\n") {
				if strings.HasPrefix(l, "B ") && !strings.HasPrefix(l, "B ›") {
					header = l
				}
			}
			if !strings.Contains(header, "ome") || !strings.Contains(header, "=") { // Rome is R·ome here
				t.Errorf("B's token row %q: B's tokens where they differ, = where they do not:\n%s", header, s)
			}
			// One more word for B: the comparison recomputes B's new
			// positions only, the rest comes from B's prefix cache.
			enc := func(text string) (ids []int) {
				for _, tok := range counter.Encode(text) {
					ids = append(ids, tok.ID)
				}
				return ids
			}
			x.waitFor(t, "B's comparison of Rome is in", func(string) bool { ids, _ := counter.last(); return slices.Equal(ids, enc("Rome is in")) })
			x.tm.Type(" the")
			x.waitFor(t, "B's comparison of Rome is in the", func(string) bool {
				ids, _ := counter.last()
				return slices.Equal(ids, enc("Rome is in the"))
			})
			if _, reused := counter.last(); reused != commonPrefixLen(enc("Rome is in"), enc("Rome is in the")) {
				t.Errorf("B's edit reused %d positions of B's cache, want %d", reused, commonPrefixLen(enc("Rome is in"), enc("Rome is in the")))
			}
			x.keys("esc", "x")
			x.waitFor(t, "the swapped prompts", func(s string) bool {
				return strings.Contains(s, "› Rome is in") && strings.Contains(s, "B › The Eiffel Tower is in")
			})
			x.keys("C")
			x.waitFor(t, "compare left", func(s string) bool { return !strings.Contains(s, "B › ") && strings.Contains(s, "2 out") })
			x.keys("ctrl+c")
			x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
		})
	}
}

// The comparison's legend: kl-ab takes the diverging palette's red half
// only, from the largest KL to white (no difference); the Δ metrics the
// whole palette, red for −1, blue for +1, white in the middle.
func TestCompareLegend(t *testing.T) {
	st := newStyles(theme.RdBu, theme.TrueColor)
	bg := regexp.MustCompile(`48;2;(\d+);(\d+);(\d+)`)
	for _, tc := range []struct {
		metric     export.Metric
		ends       [2]string
		blueAtLast bool
	}{
		{export.MetricKLAB, [2]string{"4.00", "0 nats"}, false},
		{export.MetricDeltaTop1, [2]string{"−1", "+1"}, true},
	} {
		s := st.compareLegend(export.NewScale(tc.metric, 50257, 4, false), 30)
		cells := bg.FindAllStringSubmatch(s, -1)
		plain := ansi.Strip(s)
		if len(cells) < 4 || !strings.HasPrefix(plain, tc.ends[0]+" ") || !strings.HasSuffix(plain, " "+tc.ends[1]) {
			t.Fatalf("%s: legend %q with %d colours", tc.metric, plain, len(cells))
		}
		rgb := func(c []string) (r, b int) {
			r, _ = strconv.Atoi(c[1])
			b, _ = strconv.Atoi(c[3])
			return r, b
		}
		for i, c := range cells {
			r, b := rgb(c)
			blue := b > r
			if i < len(cells)/2 && blue || i == len(cells)-1 && blue != tc.blueAtLast {
				t.Errorf("%s: cell %d of %d is rgb(%s,%s,%s)", tc.metric, i, len(cells), c[1], c[2], c[3])
			}
		}
		if r, b := rgb(cells[len(cells)-1]); tc.metric == export.MetricKLAB && (r < 230 || b < 200) {
			t.Errorf("kl-ab's legend does not end near white: rgb(%d,·,%d)", r, b)
		}
	}
}
