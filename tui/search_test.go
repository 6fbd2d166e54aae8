package tui

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/inference"
)

// lensMatches lists, from the lens, the cells whose top-1's bytes are
// query: lowest row first, then leftmost.
func lensMatches(b *fakeBackend, l *inference.Lens, query string) [][2]int {
	var out [][2]int
	for r := range l.Rows {
		for p := range l.IDs {
			if string(b.TokenBytes(l.Cells[r][p].Top[0].ID)) == query {
				out = append(out, [2]int{r, p})
			}
		}
	}
	return out
}

// panelWhere is the panel's title for a cell, as a user reads it.
func panelWhere(l *inference.Lens, row, pos int) string {
	name := "layer " + l.Rows[row].Name
	switch {
	case row == len(l.Rows)-1:
		name += " (output)"
	case row == 0:
		name = "embedding"
	}
	return fmt.Sprintf("%s · pos %d of %d", name, pos+1, len(l.IDs))
}

// TestSearchAndJumpFlow finds a token with /, steps through its matches
// with n and N, and jumps with : to a layer and a position, reading where
// the cursor is from the panel and the expectations from the lens.
func TestSearchAndJumpFlow(t *testing.T) {
	b := &fakeBackend{layers: 4, settle: true}
	const prompt = "The cat sat on the mat"
	m := newModel(fakeOptions(b, prompt))
	x := newTerm(t, m, 120, 30, colorprofile.ANSI256)
	ids := b.ids(prompt, false)
	x.waitFor(t, "the whole grid", func(s string) bool {
		return b.lensFor(ids) != nil && !strings.Contains(s, "computing") && !strings.Contains(s, " ·  ")
	})
	l := b.lensFor(ids)
	// The query: the output's top-1 at position 3, which the settled
	// rows below it share.
	query := string(b.TokenBytes(l.Cells[len(l.Rows)-1][2].Top[0].ID))
	want := lensMatches(b, l, query)
	if len(want) < 3 {
		t.Fatalf("only %d matches of %q: the test shows little", len(want), query)
	}
	x.keys("tab", "/")
	x.tm.Type(query)
	x.keys("enter")
	at := func(i int) {
		t.Helper()
		w := panelWhere(l, want[i][0], want[i][1])
		x.waitFor(t, fmt.Sprintf("match %d at %s", i+1, w), func(s string) bool { return strings.Contains(s, w) })
	}
	at(0)
	x.keys("n")
	at(1)
	x.keys("n")
	at(2)
	x.keys("N", "N")
	at(0)
	x.keys("N") // wraps to the last
	at(len(want) - 1)

	x.keys(":")
	x.tm.Type("L2 3")
	x.keys("enter")
	x.waitFor(t, "layer 2, position 3", func(s string) bool { return strings.Contains(s, panelWhere(l, 2, 2)) })
	x.keys(":")
	x.tm.Type("out")
	x.keys("enter")
	x.waitFor(t, "the output row", func(s string) bool { return strings.Contains(s, panelWhere(l, len(l.Rows)-1, 2)) })
	x.keys(":")
	x.tm.Type("99")
	x.keys("enter")
	x.waitFor(t, "the out-of-range notice", func(s string) bool { return strings.Contains(s, "positions run 1 to 6") })
	// A token no cell predicts, typed without its leading space.
	x.keys("/")
	x.tm.Type("zzz")
	x.keys("enter")
	x.waitFor(t, "no match", func(s string) bool { return strings.Contains(s, `no cell's top-1 is "zzz"`) })
	x.keys("q")
	x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// TestCopy: y copies the top-1's raw bytes (not its display form), Y the
// cell as JSON with the lens's numbers; without a system clipboard both
// fall back to OSC 52 and say so; over SSH they use OSC 52 directly.
func TestCopy(t *testing.T) {
	var got string
	orig := writeClipboard
	defer func() { writeClipboard = orig }()
	writeClipboard = func(s string) error { got = s; return nil }
	b := &fakeBackend{layers: 3, oracle: true}
	m := loaded(t, b, fakeOptions(b, "The cat sat on"), 120, 30)
	l := b.lensFor(b.ids("The cat sat on", false))
	press(t, m, "tab", "h", "h", "j") // layer 2, position 2
	c := l.Cells[2][1]
	press(t, m, "y")
	if want := string(b.TokenBytes(c.Top[0].ID)); got != want {
		t.Errorf("y copied %q, want the raw %q", got, want)
	}
	if s := screen(m); !strings.Contains(s, "copied the top-1's text") {
		t.Errorf("no notice:\n%s", s)
	}
	press(t, m, "Y")
	var doc struct {
		Row      struct{ Name string }
		Position int
		Input    struct{ ID int }
		Next     struct{ ID int }
		Top      []struct {
			ID   int
			Prob float64
		}
		Entropy  float64
		NextRank int     `json:"next_rank"`
		NextProb float64 `json:"next_prob"`
	}
	if err := json.Unmarshal([]byte(got), &doc); err != nil {
		t.Fatalf("Y copied %q: %v", got, err)
	}
	if doc.Row.Name != "2" || doc.Position != 1 || doc.Input.ID != l.IDs[1] || doc.Next.ID != l.IDs[2] ||
		doc.Top[0].ID != c.Top[0].ID || math.Abs(doc.Top[0].Prob-c.Top[0].Prob) > 1e-12 ||
		math.Abs(doc.Entropy-c.Entropy) > 1e-12 || doc.NextRank != c.NextRank || math.Abs(doc.NextProb-c.NextProb) > 1e-12 {
		t.Errorf("Y copied %+v, want cell %+v", doc, c)
	}

	// No clipboard tool: OSC 52, said plainly.
	writeClipboard = func(string) error { return errors.New("no clipboard utilities available") }
	_, cmd := m.Update(keyMsg("y"))
	msg := cmd()
	if _, osc := m.Update(msg); osc == nil || !strings.Contains(screen(m), "no system clipboard") {
		t.Errorf("no OSC 52 fallback:\n%s", screen(m))
	}
	// Over SSH: OSC 52 at once.
	opts := fakeOptions(b, "The cat")
	opts.Remote = true
	m = loaded(t, b, opts, 120, 30)
	press(t, m, "tab")
	if _, cmd := m.Update(keyMsg("y")); cmd == nil || !strings.Contains(screen(m), "with OSC 52") {
		t.Errorf("remote copy:\n%s", screen(m))
	}
}

// TestTopKScrolls: with k=50 the panel shows what fits, ] and [ scroll
// through all fifty (read from the lens), with a line saying how many
// more are above or below.
func TestTopKScrolls(t *testing.T) {
	for _, size := range [][2]int{{120, 30}, {80, 24}} {
		b := &fakeBackend{layers: 2}
		opts := fakeOptions(b, "The cat")
		opts.TopK = 50
		m := loaded(t, b, opts, size[0], size[1])
		l := b.lensFor(b.ids("The cat", false))
		c := l.Cells[2][1]
		entry := func(i int) string {
			return fmt.Sprintf("%2d %s", i+1, ansi.Truncate(display.Token(b.TokenBytes(c.Top[i].ID)), 5, ""))
		}
		s := screen(m)
		if !strings.Contains(s, entry(0)) || strings.Contains(s, entry(49)) || !strings.Contains(s, "more (] scrolls)") {
			t.Fatalf("%v: first page:\n%s", size, s)
		}
		press(t, m, "tab")
		seen := map[int]bool{}
		for range 20 {
			s = screen(m)
			for i := range 50 {
				if strings.Contains(s, entry(i)) {
					seen[i] = true
				}
			}
			press(t, m, "]")
		}
		if len(seen) != 50 || !strings.Contains(screen(m), "more ([ scrolls)") {
			t.Errorf("%v: scrolling showed %d of 50 entries:\n%s", size, len(seen), screen(m))
		}
		for range 20 {
			press(t, m, "[")
		}
		if s := screen(m); !strings.Contains(s, entry(0)) || strings.Contains(s, "more ([ scrolls)") {
			t.Errorf("%v: back at the top:\n%s", size, s)
		}
	}
}
