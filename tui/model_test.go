package tui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/hub"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/logitlens/logitlens/inference"
)

// settle runs cmd and every command it leads to synchronously, feeding the
// messages back through Update, until nothing is left. Spinner ticks are
// dropped (they never end); so is a quit, which is recorded.
func settle(t *testing.T, m *Model, cmd tea.Cmd) (quit bool) {
	t.Helper()
	queue := []tea.Cmd{cmd}
	for steps := 0; len(queue) > 0; steps++ {
		if steps > 100000 {
			t.Fatal("commands do not settle")
		}
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch msg := c().(type) {
		case nil, spinner.TickMsg:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case tea.QuitMsg:
			quit = true
		default:
			_, next := m.Update(msg)
			queue = append(queue, next)
		}
	}
	return quit
}

// loaded returns an explorer of w×h cells on b with its first lens done,
// drawing without colour unless a profile is given.
func loaded(t *testing.T, b *fakeBackend, opts Options, w, h int) *Model {
	t.Helper()
	m := newModel(opts)
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	m.Update(tea.ColorProfileMsg{Profile: colorprofile.ASCII})
	_, cmd := m.Update(loadDoneMsg{backend: b})
	settle(t, m, cmd)
	return m
}

// twin is a model driven step by step, with its own backend b, to the
// state a running program's model reaches with these keys, for a test to
// read its layout without racing the program's goroutine.
func twin(t *testing.T, b *fakeBackend, opts Options, w, h int, keys ...string) *Model {
	t.Helper()
	m := loaded(t, b, opts, w, h)
	press(t, m, keys...)
	return m
}

// press sends keys (one key name per argument, or literal text) and settles.
func press(t *testing.T, m *Model, keys ...string) bool {
	t.Helper()
	quit := false
	for _, k := range keys {
		_, cmd := m.Update(keyMsg(k))
		quit = settle(t, m, cmd) || quit
	}
	return quit
}

// keyMsg builds a key press from a name such as "tab", "ctrl+c",
// "alt+left", "ctrl+home" or a single printable character.
func keyMsg(k string) tea.KeyPressMsg {
	named := map[string]rune{
		"tab": tea.KeyTab, "enter": tea.KeyEnter, "esc": tea.KeyEscape, "up": tea.KeyUp, "down": tea.KeyDown,
		"left": tea.KeyLeft, "right": tea.KeyRight, "home": tea.KeyHome, "end": tea.KeyEnd,
		"pgup": tea.KeyPgUp, "pgdown": tea.KeyPgDown, "backspace": tea.KeyBackspace, "f1": tea.KeyF1,
		"delete": tea.KeyDelete, "space": tea.KeySpace,
	}
	var mod tea.KeyMod
	for len(k) > 1 {
		switch {
		case strings.HasPrefix(k, "ctrl+"):
			mod |= tea.ModCtrl
			k = k[len("ctrl+"):]
			continue
		case strings.HasPrefix(k, "alt+"):
			mod |= tea.ModAlt
			k = k[len("alt+"):]
			continue
		case strings.HasPrefix(k, "shift+"):
			mod |= tea.ModShift
			k = k[len("shift+"):]
			continue
		}
		break
	}
	if c, ok := named[k]; ok {
		return tea.KeyPressMsg{Code: c, Mod: mod}
	}
	r := []rune(k)[0]
	if mod != 0 {
		return tea.KeyPressMsg{Code: r, Mod: mod}
	}
	return tea.KeyPressMsg{Code: r, Text: k}
}

// typeText types text into the focused editor, one key per rune.
func typeText(t *testing.T, m *Model, text string) {
	t.Helper()
	for _, r := range text {
		_, cmd := m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
		settle(t, m, cmd)
	}
}

// screen is the plain text of the current frame.
func screen(m *Model) string {
	s, _ := m.render()
	return ansi.Strip(s)
}

// headerLine is the grid's header line: the line below the prompt.
func headerLine(m *Model) string {
	return strings.Split(screen(m), "\n")[m.layout().promptH]
}

// line returns the screen line that starts (after spaces and a scroll mark)
// with label, or "".
func line(s, label string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimLeft(l, " ▴▾"), label+" ") {
			return l
		}
	}
	return ""
}

// cellTexts returns what the grid should show for a lens row at the
// visible positions, cut to the column width, read from the lens.
func cellTexts(m *Model, b *fakeBackend, l *inference.Lens, row int) []string {
	var out []string
	for p := m.grid.left; p < m.grid.left+m.grid.visibleCols() && p < len(l.IDs); p++ {
		text := display.Token(b.TokenBytes(l.Cells[row][p].Top[0].ID))
		out = append(out, shownText(m, text, row == m.grid.row && p == m.grid.col))
	}
	return out
}

// shownText is text as a cell of the grid shows it: cut to the column
// width less the lead cell, and less the closing bracket on the cursor.
func shownText(m *Model, text string, cursor bool) string {
	w := m.grid.colWidth() - 1
	if cursor {
		w--
	}
	return strings.TrimRight(fit(text, w), " ")
}

// containsInOrder reports whether s holds every part, left to right.
func containsInOrder(s string, parts []string) bool {
	for _, p := range parts {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

func TestGridShowsLens(t *testing.T) {
	b := &fakeBackend{layers: 4}
	m := loaded(t, b, fakeOptions(b, "The cat sat on the mat"), 80, 24)
	l := b.lensFor(b.ids("The cat sat on the mat", false))
	if l == nil {
		t.Fatal("no lens computed")
	}
	s := screen(m)
	for r, name := range map[int]string{0: "emb", 2: "2", 4: "4 out"} {
		got := line(s, name)
		if want := cellTexts(m, b, l, r); !containsInOrder(got, want) {
			t.Errorf("row %q = %q, want cells %q\n%s", name, got, want, s)
		}
	}
	// Output at the top, embedding at the bottom.
	if strings.Index(s, "4 out") > strings.Index(s, " emb ") {
		t.Errorf("output row is not above the embedding row:\n%s", s)
	}
	// Column headers show the input tokens.
	header := headerLine(m)
	if !containsInOrder(header, []string{"The", "␣cat", "␣sat", "␣on", "␣the", "␣mat"}) {
		t.Errorf("header = %q", header)
	}
}

func TestTokenRendering(t *testing.T) {
	b := &fakeBackend{layers: 2}
	m := loaded(t, b, fakeOptions(b, "x"), 120, 30)
	m.bos = true
	m.prompt.SetValue("é €\t\n")
	settle(t, m, m.requestLens())
	header := headerLine(m)
	// "€" is three one-byte tokens, none valid UTF-8 alone; the tab and
	// the line break reach the model and show as ⇥ and ↵.
	for _, want := range []string{"<|endoftext|>", "é", "␣", "<0xE2>", "<0x82>", "<0xAC>", "⇥", "↵"} {
		if cut := strings.TrimRight(fit(want, m.grid.colWidth()-1), " "); !strings.Contains(header, cut) {
			t.Errorf("header %q lacks %q", header, cut)
		}
	}
	for in, want := range map[string]string{"\n": "↵", "\t": "⇥", " a": "␣a"} {
		if got := display.Token([]byte(in)); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNavigationAndPanel(t *testing.T) {
	b := &fakeBackend{layers: 4}
	m := loaded(t, b, fakeOptions(b, "The cat sat on the mat"), 80, 24)
	l := b.lensFor(b.ids("The cat sat on the mat", false))
	g := &m.grid
	if m.focus != focusPrompt || g.row != 4 || g.col != 5 {
		t.Fatalf("start: focus %v cursor (%d,%d)", m.focus, g.row, g.col)
	}
	steps := []struct {
		keys     []string
		row, col int
	}{
		{[]string{"tab"}, 4, 5},
		{[]string{"j", "j"}, 2, 5},
		{[]string{"down"}, 1, 5},
		{[]string{"k", "up"}, 3, 5},
		{[]string{"h", "left"}, 3, 3},
		{[]string{"right"}, 3, 4}, // l switches the lens (tuned_test.go)
		{[]string{"G"}, 0, 4},
		{[]string{"g"}, 4, 4},
		{[]string{"home"}, 4, 0},
		{[]string{"end"}, 4, 5},
		{[]string{"pgdown"}, 0, 5},
		{[]string{"pgup"}, 4, 5},
		{[]string{"j", "h", "h"}, 3, 3},
	}
	for _, st := range steps {
		press(t, m, st.keys...)
		if g.row != st.row || g.col != st.col {
			t.Fatalf("after %v: cursor (%d,%d), want (%d,%d)", st.keys, g.row, g.col, st.row, st.col)
		}
	}
	// The panel shows the cursor cell's statistics and top-k, from the lens.
	s := screen(m)
	c := l.Cells[3][3]
	want := []string{"layer 3", "pos 4 of 6", "input  ␣on", "next   ␣the",
		fmt.Sprintf("entropy %.2f", c.Entropy), fmt.Sprintf("KL→final %.2f", c.KLToFinal)}
	for i, p := range c.Top {
		want = append(want, fmt.Sprintf("%2d %s", i+1, strings.TrimRight(fit(display.Token(b.TokenBytes(p.ID)), 14), " ")), display.Prob(p.Prob))
	}
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("panel lacks %q:\n%s", w, s)
		}
	}
	if q := press(t, m, "q"); !q {
		t.Error("q in the grid did not quit")
	}
}

func TestEditRecomputesAndDropsStale(t *testing.T) {
	b := &fakeBackend{layers: 2}
	m := loaded(t, b, fakeOptions(b, "The cat"), 80, 24)
	gen := m.gen
	typeText(t, m, " sat")
	if m.gen <= gen {
		t.Fatal("typing did not start a new lens")
	}
	if got, want := m.data.ids, b.ids("The cat sat", false); !equalInts(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
	// A column or end of an older generation changes nothing.
	before := screen(m)
	old := inference.Column{Pos: 0, Cells: make([]inference.Cell, 3)}
	m.Update(lensStreamMsg{msg: lensColumnMsg{gen: gen, col: old}, s: lensStream{ctx: context.Background(), ch: make(chan tea.Msg, 1)}})
	m.Update(lensDoneMsg{gen: gen, err: errors.New("stale")})
	if after := screen(m); after != before {
		t.Errorf("stale messages changed the screen")
	}
	// An error of the current generation shows in the status bar.
	m.Update(lensDoneMsg{gen: m.gen, err: errors.New("boom")})
	if s := screen(m); !strings.Contains(s, "lens: boom") {
		t.Errorf("error not shown:\n%s", s)
	}
}

func equalInts(a, b []int) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestCancelOnEdit(t *testing.T) {
	b := &fakeBackend{layers: 2}
	m := loaded(t, b, fakeOptions(b, "The"), 80, 24)
	// Start a request by hand and supersede it before it is read.
	m.Update(keyMsg(" "))
	first := m.gen
	_, cmd := m.Update(lensDebounceMsg{gen: first})
	if cmd == nil || m.cancelLens == nil {
		t.Fatal("debounce did not start the lens")
	}
	cancel := m.cancelLens
	m.Update(keyMsg("x"))
	if m.gen == first {
		t.Fatal("edit did not bump the generation")
	}
	cancel() // already cancelled by the edit: idempotent
	if msg := cmd(); msg != nil {
		if s, ok := msg.(lensStreamMsg); ok && s.s.ctx.Err() == nil {
			t.Error("the superseded request's context is still live")
		}
	}
}

func TestPromptUndoAndHistory(t *testing.T) {
	b := &fakeBackend{layers: 2}
	m := loaded(t, b, fakeOptions(b, "The"), 80, 24)
	typeText(t, m, " cat sat")
	press(t, m, "ctrl+z")
	if got := m.prompt.Value(); got != "The cat " {
		t.Errorf("after undo: %q", got)
	}
	press(t, m, "ctrl+z", "ctrl+z")
	if got := m.prompt.Value(); got != "The" {
		t.Errorf("after 3 undos: %q", got)
	}
	press(t, m, "ctrl+y", "ctrl+y")
	if got := m.prompt.Value(); got != "The cat " {
		t.Errorf("after two redos: %q", got)
	}
	press(t, m, "backspace")
	// Enter is a line break in the prompt; esc leaves for the grid and
	// records the prompt in the history.
	press(t, m, "enter")
	if m.focus != focusPrompt || m.prompt.Value() != "The cat\n" {
		t.Fatalf("enter: focus %v prompt %q", m.focus, m.prompt.Value())
	}
	press(t, m, "backspace", "esc")
	if m.focus != focusGrid {
		t.Fatal("esc did not move to the grid")
	}
	press(t, m, "tab", "ctrl+a", "ctrl+k")
	typeText(t, m, "The mat")
	press(t, m, "tab", "tab", "ctrl+p", "ctrl+p")
	if got := m.prompt.Value(); got != "The cat" {
		t.Errorf("history back twice: %q", got)
	}
	press(t, m, "ctrl+n")
	if got := m.prompt.Value(); got != "The mat" {
		t.Errorf("history forward: %q", got)
	}
	// "?" is text in the prompt; f1 opens help.
	typeText(t, m, "?")
	if m.showHelp || !strings.HasSuffix(m.prompt.Value(), "?") {
		t.Error("? did not type into the prompt")
	}
	press(t, m, "f1")
	if !m.showHelp || !strings.Contains(screen(m), "logitlens keys") {
		t.Error("f1 did not open help")
	}
	press(t, m, "esc")
	if m.showHelp {
		t.Error("esc did not close help")
	}
}

// TestHelpFromKeyMap opens the help at several sizes and scrolls through
// it: every binding's keys and description show, sections are titled by
// focus, and the grid stays visible around the box.
func TestHelpFromKeyMap(t *testing.T) {
	for _, size := range [][2]int{{200, 50}, {80, 24}, {40, 10}} {
		b := &fakeBackend{layers: 2}
		m := loaded(t, b, fakeOptions(b, "The cat"), size[0], size[1])
		press(t, m, "tab", "?")
		seen := screen(m)
		if !strings.Contains(seen, "logitlens keys") {
			t.Fatalf("%v: no help:\n%s", size, seen)
		}
		// The box is whole (its right border drawn) and shows a page of
		// keys even on the smallest screen (over the prompt if need be).
		top, bottom := strings.Count(seen, "╭"), strings.Count(seen, "╮")
		if top != 1 || bottom != 1 || strings.Count(seen, "╰") != 1 || strings.Count(seen, "╯") != 1 {
			t.Errorf("%v: the box is cut:\n%s", size, seen)
		}
		if size[1] <= 10 && !regexp.MustCompile(`lines 1–[4-9] of`).MatchString(seen) {
			t.Errorf("%v: the help shows under 4 lines of keys:\n%s", size, seen)
		}
		for range 60 { // a page is 3 lines at 40×10
			press(t, m, "pgdown")
			seen += screen(m)
		}
		for _, title := range []string{"anywhere", "prompt", "grid: move", "this help"} {
			if !strings.Contains(seen, title) {
				t.Errorf("%v: no section %q", size, title)
			}
		}
		for _, g := range m.keys.groups() {
			for _, k := range g.keys {
				if h := k.Help(); !strings.Contains(seen, h.Desc) || !strings.Contains(seen, h.Key) {
					t.Errorf("%v: help lacks %q %q", size, h.Key, h.Desc)
				}
			}
		}
		if size[0] >= 200 && !strings.Contains(screen(m), "2 out") {
			t.Errorf("%v: the grid is hidden by the help:\n%s", size, screen(m))
		}
		press(t, m, "?")
		if m.showHelp {
			t.Error("? did not close help")
		}
	}
}

func TestMetricCycleAndTarget(t *testing.T) {
	b := &fakeBackend{layers: 2}
	m := loaded(t, b, fakeOptions(b, "The cat"), 80, 24)
	press(t, m, "tab")
	var seen []export.Metric
	for range 6 {
		press(t, m, "m")
		seen = append(seen, m.metric)
	}
	if fmt.Sprint(seen) != fmt.Sprint([]export.Metric{export.MetricNextProb, export.MetricNextRank, export.MetricCE, export.MetricFinalProb, export.MetricFinalRank, export.MetricEntropy}) {
		t.Errorf("metric cycle without target: %v", seen)
	}
	press(t, m, "t")
	if m.focus != focusInput {
		t.Fatal("t did not open the target editor")
	}
	typeText(t, m, " Paris France")
	press(t, m, "enter")
	want := b.Encode(" Paris France")[0].ID
	if m.targetID != want || m.metric != export.MetricTarget {
		t.Fatalf("target %d metric %v, want %d and p(target)", m.targetID, m.metric, want)
	}
	s := screen(m)
	if !strings.Contains(s, "tokens; tracking the first") {
		t.Errorf("no several-tokens notice:\n%s", s)
	}
	l := b.lensFor(b.ids("The cat", false))
	if l.Target != want {
		t.Fatalf("last lens target %d", l.Target)
	}
	c := l.Cells[m.grid.row][m.grid.col]
	if w := fmt.Sprintf("target ␣Paris rank %d p %s", c.TargetRank, display.Prob(c.TargetProb)); !strings.Contains(s, w) {
		t.Errorf("panel lacks %q:\n%s", w, s)
	}
	press(t, m, "t", "ctrl+u", "enter")
	if m.targetID != -1 || m.metric != export.MetricProb {
		t.Errorf("clearing the target: id %d metric %v", m.targetID, m.metric)
	}
}

func TestSublayersAndBOS(t *testing.T) {
	b := &fakeBackend{layers: 3}
	m := loaded(t, b, fakeOptions(b, "The cat"), 80, 30)
	press(t, m, "tab", "s")
	if len(m.data.rows) != 7 || !strings.Contains(screen(m), "2.attn") {
		t.Errorf("sublayers: %d rows\n%s", len(m.data.rows), screen(m))
	}
	press(t, m, "b")
	if m.data.ids[0] != b.EOT() || !strings.Contains(headerLine(m), "<|endo") {
		t.Errorf("BOS: ids %v", m.data.ids)
	}
}

func TestFitHeightKeepsOutputRow(t *testing.T) {
	b := &fakeBackend{layers: 47}
	m := loaded(t, b, fakeOptions(b, "The cat sat"), 80, 24)
	press(t, m, "tab", "f")
	o := m.grid.order()
	if o[0] != 47 || len(o) > m.grid.bodyHeight() {
		t.Fatalf("fit order %v for body %d", o, m.grid.bodyHeight())
	}
	s := screen(m)
	if !strings.Contains(s, "47 out") {
		t.Errorf("output row hidden in fit mode:\n%s", s)
	}
	press(t, m, "G")
	if m.grid.row != o[len(o)-1] {
		t.Errorf("G in fit mode went to row %d", m.grid.row)
	}
	press(t, m, "f", "g")
	if m.grid.row != 47 || !strings.Contains(screen(m), "47 out") {
		t.Errorf("g: row %d", m.grid.row)
	}
	// Without fit the grid scrolls: the embedding is reachable and shown.
	press(t, m, "G")
	if s := screen(m); !strings.Contains(s, " emb ") || !strings.Contains(s, "▴") {
		t.Errorf("scrolled to the embedding:\n%s", s)
	}
}

func TestHorizontalScroll(t *testing.T) {
	b := &fakeBackend{layers: 2}
	prompt := strings.Repeat(" the cat", 10)
	m := loaded(t, b, fakeOptions(b, prompt), 80, 24)
	if m.grid.left == 0 || !strings.Contains(screen(m), "◂") {
		t.Errorf("cursor at the end should scroll right:\n%s", screen(m))
	}
	press(t, m, "tab", "home")
	if m.grid.left != 0 || !strings.Contains(headerLine(m), "▸") {
		t.Errorf("home: left %d", m.grid.left)
	}
	l := b.lensFor(b.ids(prompt, false))
	if got, want := line(screen(m), "2 out"), cellTexts(m, b, l, 2); !containsInOrder(got, want) {
		t.Errorf("output row %q, want %q", got, want)
	}
}

func TestMouse(t *testing.T) {
	b := &fakeBackend{layers: 4}
	m := loaded(t, b, fakeOptions(b, "The cat sat on the mat"), 80, 24)
	r := m.layout()
	lw, cw := m.grid.labelWidth(), m.grid.colWidth()
	// Row lines start below the header lines; the third one down is row 2.
	m.Update(tea.MouseClickMsg{X: r.gridX + lw + 2*cw + 1, Y: r.gridY + m.grid.headerLines() + 2, Button: tea.MouseLeft})
	if m.grid.row != 2 || m.grid.col != 2 || m.focus != focusGrid {
		t.Errorf("click: cursor (%d,%d) focus %v", m.grid.row, m.grid.col, m.focus)
	}
	m.Update(tea.MouseClickMsg{X: 3, Y: 0, Button: tea.MouseLeft})
	if m.focus != focusPrompt {
		t.Error("clicking the prompt did not focus it")
	}
	m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelUp, Mod: tea.ModShift})
}

// A model note (e.g. the fallback to the built-in model) stays readable in
// the panel after the status bar's notice has given way.
func TestModelNoteInPanel(t *testing.T) {
	for _, size := range [][2]int{{120, 30}, {80, 24}} {
		b := &fakeBackend{layers: 2, note: "gpt2 is not cached and the hub cannot be reached: built-in demo model"}
		m := loaded(t, b, fakeOptions(b, "The cat"), size[0], size[1])
		press(t, m, "tab")
		press(t, m, "left") // any key: the status bar's notice gives way
		s := screen(m)
		if !strings.Contains(s, "gpt2 is not cached") || !strings.Contains(s, "built-in demo") {
			t.Errorf("%dx%d: note not shown:\n%s", size[0], size[1], s)
		}
	}
}

func TestSnapshotsOff(t *testing.T) {
	b := &fakeBackend{layers: 2}
	opts := fakeOptions(b, "The cat")
	opts.SnapshotDir = t.TempDir()
	opts.NoSnapshots = "snapshots are off here"
	m := loaded(t, b, opts, 80, 24)
	press(t, m, "tab")
	press(t, m, "e")
	if !strings.Contains(screen(m), "snapshots are off here") {
		t.Errorf("no notice:\n%s", screen(m))
	}
	if files, _ := os.ReadDir(opts.SnapshotDir); len(files) != 0 {
		t.Errorf("wrote %v", files)
	}
}

func TestCopyAndSnapshot(t *testing.T) {
	b := &fakeBackend{layers: 2}
	opts := fakeOptions(b, "The cat")
	opts.SnapshotDir = t.TempDir()
	m := loaded(t, b, opts, 80, 24)
	press(t, m, "tab")
	l := b.lensFor(b.ids("The cat", false))
	press(t, m, "e")
	s := screen(m)
	if !strings.Contains(s, "wrote ") {
		t.Fatalf("snapshot:\n%s", s)
	}
	txt, _ := filepath.Glob(filepath.Join(opts.SnapshotDir, "logitlens-*.txt"))
	js, _ := filepath.Glob(filepath.Join(opts.SnapshotDir, "logitlens-*.json"))
	svg, _ := filepath.Glob(filepath.Join(opts.SnapshotDir, "logitlens-*.svg"))
	html, _ := filepath.Glob(filepath.Join(opts.SnapshotDir, "logitlens-*.html"))
	if len(txt) != 1 || len(js) != 1 || len(svg) != 1 || len(html) != 1 {
		t.Fatalf("files %v %v %v %v", txt, js, svg, html)
	}
	var doc struct {
		Prompt string `json:"prompt"`
		Tokens []any  `json:"tokens"`
	}
	if body, _ := os.ReadFile(js[0]); json.Unmarshal(body, &doc) != nil || doc.Prompt != "The cat" || len(doc.Tokens) != len(l.IDs) {
		t.Errorf("JSON snapshot: %+v", doc)
	}
	body, _ := os.ReadFile(txt[0])
	if !strings.Contains(string(body), "prompt \"The cat\"") || !strings.Contains(string(body), "2 out") {
		t.Errorf("text snapshot:\n%s", body)
	}
}

func TestLoadErrorAndProgress(t *testing.T) {
	m := newModel(Options{ModelID: "gpt2"})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	m.Update(loadProgressMsg{files: []inference.Progress{
		{File: "config.json", Done: 665, Total: 665, Finished: true},
		{File: "model.safetensors", Done: 100 << 20, Total: 400 << 20, BytesPerSec: 10 << 20},
	}})
	s := screen(m)
	for _, w := range []string{"gpt2", "config.json", "✓", "model.safetensors", "25%", "downloading"} {
		if !strings.Contains(s, w) {
			t.Errorf("progress view lacks %q:\n%s", w, s)
		}
	}
	m.Update(loadDoneMsg{err: fmt.Errorf("gpt2: offline and not in the cache: %w", hub.ErrOffline)})
	s = screen(m)
	for _, w := range []string{"Could not load", "offline and not in the cache", "HF_HUB_OFFLINE", "q or ctrl+c"} {
		if !strings.Contains(s, w) {
			t.Errorf("error view lacks %q:\n%s", w, s)
		}
	}
	if !press(t, m, "q") {
		t.Error("q did not quit the error view")
	}
}

// Each load error gets the advice that fits it, and only that.
func TestLoadHintsFitTheError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-model")
	_, statErr := os.Stat(missing)
	for _, c := range []struct {
		name, model string
		err         error
		want        []string
		not         []string
	}{
		{"missing directory", missing, fmt.Errorf("hub: model directory %s: %w", missing, statErr),
			[]string{"does not exist", "config.json"}, []string{"HF_TOKEN", "damaged", "HF_HUB_OFFLINE", "download"}},
		{"empty directory", t.TempDir(), fmt.Errorf("weights: %w", weights.ErrNoCheckpoint),
			[]string{"config.json, model.safetensors"}, []string{"HF_TOKEN", "damaged", "HF_HUB_OFFLINE"}},
		{"offline", "gpt2", fmt.Errorf("x: %w", hub.ErrOffline),
			[]string{"HF_HUB_OFFLINE", "logitlens download gpt2"}, []string{"HF_TOKEN", "damaged"}},
		{"unknown repo", "acme/nope", errors.Join(hub.ErrRepoNotFound, hub.ErrAuthRequired),
			[]string{"model name", "HF_TOKEN"}, []string{"damaged", "HF_HUB_OFFLINE="}},
		{"unreachable", "gpt2", fmt.Errorf("x: %w", hub.ErrUnreachable),
			[]string{"network", "HF_HUB_OFFLINE=1"}, []string{"HF_TOKEN", "damaged"}},
		{"cached but broken", "gpt2", errors.New("weights: model.safetensors: header length exceeds file size"),
			[]string{"damaged", "delete"}, []string{"HF_TOKEN", "HF_HUB_OFFLINE"}},
		{"no cuda", "gpt2", fmt.Errorf("inference: --device cuda: %w", inference.ErrNoCUDA),
			[]string{"--device cpu"}, []string{"HF_TOKEN", "damaged"}},
	} {
		hints := strings.Join(loadHints(c.err, c.model), "\n")
		for _, w := range c.want {
			if !strings.Contains(hints, w) {
				t.Errorf("%s: hints lack %q:\n%s", c.name, w, hints)
			}
		}
		for _, w := range c.not {
			if strings.Contains(hints, w) {
				t.Errorf("%s: hints mention %q:\n%s", c.name, w, hints)
			}
		}
	}
}

// A process waiting for another's download says so.
func TestLoadWaitingForAnotherDownload(t *testing.T) {
	m := newModel(Options{ModelID: "gpt2"})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 24})
	m.Update(loadProgressMsg{files: []inference.Progress{{File: "model.safetensors", Total: 500 << 20, Waiting: true}}})
	if s := screen(m); !strings.Contains(s, "waiting for another process") || strings.Contains(s, "0%") {
		t.Errorf("waiting view:\n%s", s)
	}
}

func TestLoadPanicBecomesError(t *testing.T) {
	m := newModel(Options{ModelID: "x", Load: func(context.Context, func(inference.Progress)) (Backend, error) {
		panic("bad checkpoint")
	}})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	settle(t, m, m.Init())
	if m.loadErr == nil || !strings.Contains(screen(m), "bad checkpoint") {
		t.Errorf("panic not shown:\n%s", screen(m))
	}
}

// TestResizeSweep draws every size from 1×1 to 130×45: no panic, exactly
// the terminal's size, and the notice below 40×10.
func TestResizeSweep(t *testing.T) {
	b := &fakeBackend{layers: 12}
	m := loaded(t, b, fakeOptions(b, "The cat sat on the mat in Paris"), 80, 24)
	press(t, m, "tab", "j", "s")
	for w := 1; w <= 130; w += 7 {
		for h := 1; h <= 45; h += 4 {
			m.Update(tea.WindowSizeMsg{Width: w, Height: h})
			out, _ := m.render()
			lines := strings.Split(out, "\n")
			if len(lines) != h {
				t.Fatalf("%d×%d: %d lines", w, h, len(lines))
			}
			for i, l := range lines {
				if lw := lipgloss.Width(l); lw > w {
					t.Fatalf("%d×%d: line %d is %d wide: %q", w, h, i, lw, ansi.Strip(l))
				}
			}
			small := w < minWidth || h < minHeight
			if small != strings.Contains(out, "too small") && h > 1 && w >= 20 {
				t.Fatalf("%d×%d: too-small notice %v", w, h, !small)
			}
		}
	}
}

func TestColourProfiles(t *testing.T) {
	b := &fakeBackend{layers: 2}
	for _, p := range []colorprofile.Profile{colorprofile.TrueColor, colorprofile.ANSI256, colorprofile.ANSI, colorprofile.ASCII} {
		m := loaded(t, b, fakeOptions(b, "The cat"), 80, 24)
		m.Update(tea.ColorProfileMsg{Profile: p})
		out, _ := m.render()
		hasBg := strings.Contains(out, "\x1b[48;")
		glyph := strings.ContainsAny(ansi.Strip(out), "░▒▓█")
		switch p {
		case colorprofile.TrueColor, colorprofile.ANSI256:
			if !hasBg {
				t.Errorf("%v: no cell backgrounds", p)
			}
		default:
			if hasBg || !glyph {
				t.Errorf("%v: backgrounds %v glyphs %v", p, hasBg, glyph)
			}
		}
	}
}

func TestUnknownPalette(t *testing.T) {
	if err := Run(context.Background(), Options{Palette: "jet"}); err == nil || !strings.Contains(err.Error(), "tui: theme: unknown palette") {
		t.Errorf("Run with a bad palette: %v", err)
	}
}

// teaSize is a window size message.
func teaSize(w, h int) tea.WindowSizeMsg { return tea.WindowSizeMsg{Width: w, Height: h} }

// TestPromptTooLong pastes a prompt longer than n_positions: the prompt is
// kept whole, the grid shows the first n_positions columns (read from the
// lens of those ids), and the overflow is marked in the status bar, the
// grid's header, the panel and the prompt itself.
func TestPromptTooLong(t *testing.T) {
	b := &fakeBackend{layers: 2, nPos: 16}
	m := loaded(t, b, fakeOptions(b, "The cat"), 80, 24)
	long := strings.Repeat(" the cat sat on the mat", 60)
	_, cmd := m.Update(tea.PasteMsg{Content: long})
	settle(t, m, cmd)
	if got := m.prompt.Value(); got != "The cat"+long {
		t.Fatalf("prompt lost: %d bytes, want %d", len(got), len("The cat"+long))
	}
	all := b.ids("The cat"+long, false)
	l := b.lensFor(all[:16])
	if l == nil {
		t.Fatal("no lens of the first n_positions tokens")
	}
	s := screen(m)
	if m.data.columns() != 16 || m.computing {
		t.Fatalf("%d columns, computing %v", m.data.columns(), m.computing)
	}
	lines := strings.Split(s, "\n")
	if status := lines[len(lines)-1]; !strings.Contains(status, fmt.Sprintf("16 of %d tok", len(all))) {
		t.Errorf("status bar: %q", status)
	}
	if h := headerLine(m); !strings.Contains(h, fmt.Sprintf("+%d", len(all)-16)) {
		t.Errorf("header does not mark the %d unread tokens: %q", len(all)-16, h)
	}
	if got, want := line(s, "2 out"), cellTexts(m, b, l, 2); !containsInOrder(got, want) {
		t.Errorf("output row %q, want %q", got, want)
	}
	if !strings.Contains(s, "not read") {
		t.Errorf("panel does not say the next token is not read:\n%s", s)
	}
	// The unread part of the prompt is struck through.
	press(t, m, "ctrl+home")
	m.Update(tea.ColorProfileMsg{Profile: colorprofile.ANSI256})
	raw, _ := m.render()
	if !strings.Contains(raw, "\x1b[9") && !strings.Contains(raw, ";9m") {
		t.Errorf("no struck-through overflow in the prompt:\n%q", strings.Split(raw, "\n")[0])
	}
}
