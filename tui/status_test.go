package tui

import (
	"fmt"
	"strings"
	"testing"

	"charm.land/lipgloss/v2"
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
