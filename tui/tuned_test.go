package tui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// testTuned is a LoadTuned that returns one lens, counting its calls.
func testTuned(calls *int) func(context.Context, func(inference.Progress)) (*tunedlens.Lens, error) {
	l := tunedlens.Identity("fake/gpt2-test", 8, 3, true)
	l.Source = "test-lens"
	return func(_ context.Context, progress func(inference.Progress)) (*tunedlens.Lens, error) {
		*calls++
		progress(inference.Progress{File: "lens/x/params.pt", Done: 10, Total: 20})
		return l, nil
	}
}

// `l` loads the tuned lens on first use and switches to it; the status bar
// names the lens; the panel gives the cursor cell's top-1 under both; `l`
// again is the logit lens, with no second load.
func TestLensToggle(t *testing.T) {
	b := &fakeBackend{layers: 3}
	calls := 0
	m := loaded(t, b, Options{Prompt: "The cat sat", LoadTuned: testTuned(&calls)}, 120, 30)
	if !strings.Contains(screen(m), "logit lens") {
		t.Errorf("status bar does not name the logit lens:\n%s", screen(m))
	}
	press(t, m, "tab", "l")
	if calls != 1 || m.tl.lens == nil || !m.tl.on {
		t.Fatalf("after l: %d loads, lens %v, on %v", calls, m.tl.lens, m.tl.on)
	}
	if m.data == nil || m.data.lens == nil || m.data.lens.Tuned != m.tl.lens {
		t.Fatalf("the grid does not show the tuned lens")
	}
	s := screen(m)
	if !strings.Contains(s, "tuned lens (test-lens)") {
		t.Errorf("status bar does not name the tuned lens:\n%s", s)
	}
	// the panel: both lenses' top-1 for the cursor cell
	row, col := m.grid.row, m.grid.col
	tunedTop := m.data.lens.Cells[row][col].Top[0]
	var logitTop inference.Prediction
	for _, l := range b.lenses {
		if l.Tuned == nil && len(l.IDs) == len(m.data.lens.IDs) {
			logitTop = l.Cells[row][col].Top[0]
		}
	}
	want := "logit " + m.tokenText(logitTop.ID)
	if !strings.Contains(s, "top-1") || !strings.Contains(s, want) || !strings.Contains(s, "tuned "+m.tokenText(tunedTop.ID)) {
		t.Errorf("panel lacks both top-1s (%q, tuned %q):\n%s", want, m.tokenText(tunedTop.ID), s)
	}
	press(t, m, "l")
	if m.tl.on || calls != 1 || m.data.lens.Tuned != nil {
		t.Errorf("second l: on %v, %d loads, tuned %v", m.tl.on, calls, m.data.lens.Tuned)
	}
	if !strings.Contains(screen(m), "logit lens") {
		t.Errorf("status bar after switching back:\n%s", screen(m))
	}
}

// Sublayer rows have no translators: with the tuned lens they are hidden
// and s says why instead of toggling.
func TestTunedHidesSublayers(t *testing.T) {
	b := &fakeBackend{layers: 3}
	calls := 0
	m := loaded(t, b, Options{Prompt: "The cat", Sublayers: true, LoadTuned: testTuned(&calls)}, 120, 30)
	if len(m.data.rows) != 7 {
		t.Fatalf("%d rows with sublayers", len(m.data.rows))
	}
	press(t, m, "tab", "l")
	if len(m.data.rows) != 4 || m.data.lens.Tuned == nil {
		t.Fatalf("tuned lens: %d rows, tuned %v", len(m.data.rows), m.data.lens.Tuned)
	}
	// the panel's logit lens is the one l switches back to: with sublayers
	if last := b.lenses[len(b.lenses)-1]; last.Tuned != nil || len(last.Rows) != 7 {
		t.Errorf("the other lens: tuned %v, %d rows; want the logit lens with its sublayer rows", last.Tuned, len(last.Rows))
	}
	press(t, m, "s")
	if !m.sublayers || !strings.Contains(m.status.notice, "hidden with the tuned lens") {
		t.Errorf("s with the tuned lens: sublayers %v, notice %q", m.sublayers, m.status.notice)
	}
	press(t, m, "l")
	if len(m.data.rows) != 7 {
		t.Errorf("back to the logit lens: %d rows, want the sublayers again", len(m.data.rows))
	}
}

// Loading the lens does not block typing: the prompt and the logit lens
// follow the keys while the load is pending.
func TestTunedLoadDoesNotBlockTyping(t *testing.T) {
	b := &fakeBackend{layers: 2}
	release := make(chan struct{})
	l := tunedlens.Identity("x", 8, 2, true)
	m := loaded(t, b, Options{Prompt: "The", LoadTuned: func(ctx context.Context, _ func(inference.Progress)) (*tunedlens.Lens, error) {
		<-release
		return l, nil
	}}, 100, 24)
	press(t, m, "tab")
	_, load := m.Update(keyMsg("l")) // not run yet: the load is pending
	if !m.tl.loading || !strings.Contains(screen(m), "tuned loading") {
		t.Fatalf("loading state: %v\n%s", m.tl.loading, screen(m))
	}
	press(t, m, "tab")
	typeText(t, m, " cat")
	if got := m.prompt.Value(); got != "The cat" || m.data == nil || m.data.lens == nil || m.data.lens.Tuned != nil || len(m.data.ids) != 2 {
		t.Fatalf("typing while loading: prompt %q, lens %+v", got, m.data)
	}
	close(release)
	settle(t, m, load)
	if m.data.lens.Tuned != l {
		t.Errorf("the tuned lens is not shown once loaded")
	}
}

// A lens that cannot load says why in the status bar and leaves the logit
// lens; --lens tuned starts with the tuned lens; a snapshot records it.
func TestTunedErrorsStartAndSnapshot(t *testing.T) {
	b := &fakeBackend{layers: 2}
	m := loaded(t, b, Options{Prompt: "The cat", LoadTuned: func(context.Context, func(inference.Progress)) (*tunedlens.Lens, error) {
		return nil, errors.New("tunedlens: no published tuned lens for fake/gpt2-test")
	}}, 100, 24)
	press(t, m, "tab", "l")
	if m.tl.on || m.data.lens.Tuned != nil || !strings.Contains(m.status.err, "no published tuned lens") {
		t.Errorf("failed load: on %v, error %q", m.tl.on, m.status.err)
	}
	m = loaded(t, b, Options{Prompt: "The cat", LoadTuned: nil}, 100, 24)
	press(t, m, "tab", "l")
	if !strings.Contains(m.status.notice, "no tuned lens") {
		t.Errorf("no loader: notice %q", m.status.notice)
	}

	calls := 0
	opts := Options{Prompt: "The cat", Tuned: true, LoadTuned: testTuned(&calls), SnapshotDir: t.TempDir()}
	m = loaded(t, b, opts, 100, 24)
	if calls != 1 || m.data.lens.Tuned == nil {
		t.Fatalf("Options.Tuned: %d loads, tuned %v", calls, m.data.lens.Tuned)
	}
	press(t, m, "tab", "e")
	js, _ := filepath.Glob(filepath.Join(opts.SnapshotDir, "logitlens-*.json"))
	txt, _ := filepath.Glob(filepath.Join(opts.SnapshotDir, "logitlens-*.txt"))
	if len(js) != 1 || len(txt) != 1 {
		t.Fatalf("snapshot files %v %v", js, txt)
	}
	jb, _ := os.ReadFile(js[0])
	tb, _ := os.ReadFile(txt[0])
	if !strings.Contains(string(jb), `"lens":{"kind":"tuned","source":"test-lens"}`) || !strings.Contains(string(tb), "lens tuned lens (test-lens)") {
		t.Errorf("the snapshot does not record the lens:\n%.300s\n%.200s", jb, tb)
	}
}
