package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// TestStatusNeverCuts: a notice, however long (up to its lines' bound), is
// shown whole at every width, on lines of its own when it does not fit
// beside the model line; every line fits the terminal.
func TestStatusNeverCuts(t *testing.T) {
	notices := []string{
		"target ␣Paris",
		`" Paris France" is 2 tokens; tracking the first, ␣Paris`,
		"no system clipboard: sent the cell as JSON with OSC 52 (if nothing arrives, the terminal refused it)",
	}
	for _, w := range []int{40, 80, 120, 200} {
		for _, n := range notices {
			b := &fakeBackend{layers: 2}
			m := loaded(t, b, fakeOptions(b, "The cat"), w, 24)
			m.status.setNotice(n)
			m.sync()
			raw, _ := m.render()
			lines := strings.Split(raw, "\n")
			if len(lines) != 24 {
				t.Fatalf("%d: %d lines", w, len(lines))
			}
			for i, l := range lines {
				if lipgloss.Width(l) > w {
					t.Fatalf("%d: line %d is %d wide", w, i, lipgloss.Width(l))
				}
			}
			flat := strings.Join(strings.Fields(screen(m)), " ")
			if !strings.Contains(flat, strings.Join(strings.Fields(n), " ")) {
				t.Errorf("%d columns: notice %q cut:\n%s", w, n, screen(m))
			}
		}
	}
}

// TestPanelPositionsWhole: at 120 columns the panel names a position of a
// long prompt whole ("pos 191 of 448", not "pos 191/19"), 1-based like the
// status bar's count.
func TestPanelPositionsWhole(t *testing.T) {
	b := &fakeBackend{layers: 12}
	prompt := strings.Repeat(" the", 448)
	m := loaded(t, b, fakeOptions(b, prompt), 120, 35)
	press(t, m, "tab", ":")
	typeText(t, m, "191")
	press(t, m, "enter")
	s := screen(m)
	if !strings.Contains(s, fmt.Sprintf("pos 191 of %d", len(b.ids(prompt, false)))) || !strings.Contains(s, "448 tok") {
		t.Errorf("panel:\n%s", s)
	}
}

// TestStatusHintApart: at every width the key hint stays at least two
// cells from the model line, cut if need be rather than run into it
// ("401msesc to the grid" was seen at 80 columns).
func TestStatusHintApart(t *testing.T) {
	b := &fakeBackend{layers: 2}
	m := loaded(t, b, fakeOptions(b, "The cat"), 80, 24)
	m.lastElapsed = 401 * time.Millisecond
	for _, f := range []string{"prompt", "grid"} {
		if f == "grid" {
			press(t, m, "tab")
		}
		for w := minWidth; w <= 140; w++ {
			m.Update(tea.WindowSizeMsg{Width: w, Height: 24})
			m.sync()
			lines := strings.Split(screen(m), "\n")
			status := lines[len(lines)-1]
			left := ansi.Strip(m.status.left(w))
			rest, ok := strings.CutPrefix(status, left)
			if !ok {
				t.Fatalf("%s, %d columns: status %q does not start with the model line %q", f, w, status, left)
			}
			if strings.TrimSpace(rest) != "" && !strings.HasPrefix(rest, "  ") {
				t.Errorf("%s, %d columns: the hint touches the model line: %q", f, w, status)
			}
			if strings.TrimSpace(rest) == "…" {
				t.Errorf("%s, %d columns: a hint of no key: %q", f, w, status)
			}
		}
	}
}
