package tui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/export"
)

// TestSelectionWithoutColour: with no colour at all (NO_COLOR, a dumb
// terminal) the cursor cell is still told apart: framed in brackets, and
// the frame moves with the cursor.
func TestSelectionWithoutColour(t *testing.T) {
	b := &fakeBackend{layers: 2}
	prompt := "The cat sat"
	m := newModel(fakeOptions(b, prompt))
	x := newTerm(t, m, 120, 30, colorprofile.NoTTY)
	x.waitFor(t, "the first lens", func(s string) bool {
		return b.lensFor(b.ids(prompt, false)) != nil && !strings.Contains(s, "computing")
	})
	l := b.lensFor(b.ids(prompt, false))
	framed := func(s string, row, pos int) bool {
		text := strings.TrimRight(fit(display.Token(b.TokenBytes(l.Cells[row][pos].Top[0].ID)), minColWidth-2), " ")
		label := "2 out"
		if row == 1 {
			label = "1"
		}
		return strings.Contains(line(s, label), "["+text)
	}
	x.keys("tab")
	s := x.waitFor(t, "the frame on the last output cell", func(s string) bool { return framed(s, 2, 2) })
	frames := 0
	for _, label := range []string{"2 out", "1", "emb"} {
		grid, _, _ := strings.Cut(line(s, label), "│")
		frames += strings.Count(grid, "[")
	}
	if frames != 1 {
		t.Errorf("%d frames in the grid, want the cursor's alone:\n%s", frames, s)
	}
	x.keys("left", "down")
	x.waitFor(t, "the frame on layer 1, position 2", func(s string) bool { return framed(s, 1, 1) && !framed(s, 2, 2) })
	x.keys("q")
	x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// TestTargetLeadingSpaceWarning: pinning "Paris" when " Paris" is one token
// says so; pinning " Paris" does not.
func TestTargetLeadingSpaceWarning(t *testing.T) {
	b := &fakeBackend{layers: 2}
	m := newModel(fakeOptions(b, "The capital of France is"))
	x := newTerm(t, m, 120, 30, colorprofile.ASCII)
	x.waitFor(t, "the first lens", func(s string) bool { return strings.Contains(s, "out") && !strings.Contains(s, "computing") })
	flat := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	x.keys("tab", "t")
	x.tm.Type("Paris")
	x.keys("enter")
	x.waitFor(t, "the warning", func(s string) bool {
		return strings.Contains(flat(s), "after a word the token is ␣Paris (with its space)")
	})
	// Several tokens without the space, one with it: said as well.
	x.keys("t", "ctrl+u")
	x.tm.Type("Tower")
	x.keys("enter")
	x.waitFor(t, "the warning after several tokens", func(s string) bool {
		return strings.Contains(flat(s), `"Tower" is 5 tokens; tracking the first, T; after a word the token is ␣Tower, one token with its space`)
	})
	x.keys("t", "ctrl+u")
	x.tm.Type(" Paris")
	x.keys("enter")
	s := x.waitFor(t, "the plain notice", func(s string) bool { return strings.Contains(flat(s), "target ␣Paris") })
	if strings.Contains(flat(s), "with its space") {
		t.Errorf("warned about a target that has its space:\n%s", s)
	}
	x.keys("q")
	x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// TestCellWidth: columns widen to use the room a short prompt leaves, up
// to maxColWidth, narrow to minColWidth for a long one, and keep a fixed
// width when one is given (--cell-width).
func TestCellWidth(t *testing.T) {
	b := &fakeBackend{layers: 2}
	for _, c := range []struct {
		prompt      string
		fixed, want int
	}{
		{"The cat", 0, maxColWidth},
		{strings.Repeat(" the cat", 30), 0, minColWidth},
		{"The cat sat", 5, 5},
		{"The cat sat", 12, 12},
	} {
		opts := fakeOptions(b, c.prompt)
		opts.CellWidth = c.fixed
		m := loaded(t, b, opts, 200, 40)
		press(t, m, "tab", "home")
		h := headerLine(m)
		// The header's first two tokens start cw cells apart.
		first := strings.Index(h, "The")
		if strings.HasPrefix(c.prompt, " ") {
			first = strings.Index(h, "␣the")
		}
		second := strings.Index(h[first+1:], "␣")
		if first < 0 || second < 0 {
			t.Fatalf("%q: header %q", c.prompt, h)
		}
		// Byte offsets: "␣" is 3 bytes for the first token's text when
		// it has one, so count cells.
		gap := len([]rune(h[first : first+1+second]))
		if m.grid.colWidth() != c.want || gap != c.want {
			t.Errorf("%q, --cell-width %d: column width %d, header gap %d, want %d\n%s", c.prompt, c.fixed, m.grid.colWidth(), gap, c.want, h)
		}
	}
}

// TestHistoryPersists: a prompt left for the grid is kept in the history
// file byte for byte (line breaks and tabs), and the next explorer on the
// same file finds it with ctrl+p; the default file is under
// XDG_STATE_HOME, or ~/.local/state when that is unset or relative.
func TestHistoryPersists(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state", "logitlens", "history")
	b := &fakeBackend{layers: 2}
	typed := "def f(x):\n\treturn x  "
	opts := fakeOptions(b, "")
	opts.HistoryFile = file
	m := loaded(t, b, opts, 100, 30)
	_, cmd := m.Update(tea.PasteMsg{Content: typed})
	settle(t, m, cmd)
	press(t, m, "tab")
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := readHistory(file)
		if len(got) == 1 && got[0] == typed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history file holds %q, want [%q]", got, typed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("history file mode: %v %v", fi, err)
	}

	// The next explorer reads the file as it starts (Init).
	m = newModel(opts)
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	settle(t, m, m.Init())
	press(t, m, "ctrl+p")
	if got := m.prompt.Value(); got != typed {
		t.Errorf("the next explorer's ctrl+p: %q, want %q", got, typed)
	}

	t.Setenv("XDG_STATE_HOME", "/xdg/state")
	if got := DefaultHistoryFile(); got != "/xdg/state/logitlens/history" {
		t.Errorf("with XDG_STATE_HOME: %q", got)
	}
	t.Setenv("XDG_STATE_HOME", "relative/state")
	t.Setenv("HOME", "/home/u")
	if got := DefaultHistoryFile(); got != "/home/u/.local/state/logitlens/history" {
		t.Errorf("with a relative XDG_STATE_HOME: %q", got)
	}
}

// TestLegendWraps: the colour legend's label is never cut, however narrow
// the panel: it wraps.
func TestLegendWraps(t *testing.T) {
	b := &fakeBackend{layers: 2}
	for _, w := range []int{100, 120, 200} {
		opts := fakeOptions(b, "The cat")
		opts.Metric = export.MetricKL
		m := loaded(t, b, opts, w, 35)
		flat := strings.Join(strings.Fields(screen(m)), " ")
		if !strings.Contains(flat, "colour "+export.MetricKL.Label()+" (m)") &&
			!strings.Contains(flat, "colour "+export.MetricKL.Label()+" │ (m)") {
			t.Errorf("%d columns: the legend's label is cut:\n%s", w, screen(m))
		}
	}
}
