package tui

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/logitlens/logitlens/display"
)

// lastAsked returns the Priority of the backend's latest request.
func (f *fakeBackend) lastAsked() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.asked) == 0 {
		return nil
	}
	return f.asked[len(f.asked)-1]
}

func span(a, b int) []int {
	var out []int
	for p := a; p < b; p++ {
		out = append(out, p)
	}
	return out
}

// TestVisibleFirstFlow: every lens asks for the columns on screen first:
// the last ones while the cursor follows the end of the prompt, the first
// ones once the user scrolls home while the lens still computes (the
// request restarts for them); and while it recomputes, the grid shows the
// previous lens's tokens dimmed, not blanks.
func TestVisibleFirstFlow(t *testing.T) {
	b := &fakeBackend{layers: 3}
	prompt := strings.Repeat(" the cat", 40)
	m := newModel(fakeOptions(b, prompt))
	x := newTerm(t, m, 80, 24, colorprofile.ANSI256)
	T := len(b.ids(prompt, false))
	s := x.waitFor(t, "the first lens", func(s string) bool {
		return b.lensFor(b.ids(prompt, false)) != nil && !strings.Contains(s, "computing")
	})
	// The columns on screen: as many as the header shows.
	n := len(strings.Fields(strings.TrimPrefix(line(s, "◂input"), "◂input")))
	if got, want := b.lastAsked(), span(T-n, T); !slices.Equal(got, want) {
		t.Errorf("first lens asked for %v first, want the last %d columns %v", got, n, want)
	}
	old := b.lensFor(b.ids(prompt, false))

	// An edit at the start, on a slow backend: while it computes, the
	// grid shows the old top-1s dimmed.
	b.mu.Lock()
	b.delay = 40 * time.Millisecond
	b.mu.Unlock()
	x.keys("ctrl+home")
	x.tm.Type("A")
	oldTop := display0(b, old.Cells[len(old.Rows)-1][T-2].Top[0].ID) // the cursor is on T-1
	x.waitFor(t, "the old grid, dimmed", func(s string) bool {
		return strings.Contains(s, "computing") && strings.Contains(line(s, "3 out"), "·"+oldTop)
	})
	// Home while it computes: the request restarts with the first
	// columns, once the view rests there: moving back and forth (a key
	// held) restarts it once, not at every move.
	b.mu.Lock()
	calls := b.calls
	b.mu.Unlock()
	x.keys("tab", "home", "end", "home", "end", "home")
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(b.lastAsked(), span(0, n)) {
		if time.Now().After(deadline) {
			t.Fatalf("after home, asked for %v first, want %v", b.lastAsked(), span(0, n))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * viewSettle)
	b.mu.Lock()
	restarts := b.calls - calls
	b.mu.Unlock()
	if restarts != 1 {
		t.Errorf("moving the view home and back %d times restarted the lens %d times, want once", 3, restarts)
	}
	b.mu.Lock()
	b.delay = 0
	b.mu.Unlock()
	x.waitFor(t, "the edited prompt's lens", func(s string) bool {
		return b.lensFor(b.ids("A"+prompt, false)) != nil && !strings.Contains(s, "computing")
	})
	x.keys("q")
	x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// display0 is a token's display form cut as a narrow pending cell shows
// it, after its "·".
func display0(b *fakeBackend, id int) string {
	return strings.TrimRight(fit(display.Token(b.TokenBytes(id)), minColWidth-1), " ")
}

// TestDimmedCellsFollowTokens: after an edit before them, the columns of
// the old lens shown dimmed while the new one computes sit under their own
// tokens, not under the ones now at their old positions, and the grid
// cursor stays on its token.
func TestDimmedCellsFollowTokens(t *testing.T) {
	b := &fakeBackend{layers: 2}
	prompt := "The cat sat on the mat"
	m := newModel(fakeOptions(b, prompt))
	x := newTerm(t, m, 200, 30, colorprofile.ASCII)
	ids := b.ids(prompt, false)
	// The backend's lens done is not enough: the explorer must have read
	// all of it (the status gives its time only then), or the moves below
	// restart it and the edit finds a column with no old cells to dim.
	doneTime := regexp.MustCompile(`6 tok │ [0-9.]+(µs|ms|s)`)
	x.waitFor(t, "the first lens", func(s string) bool {
		return b.lensFor(ids) != nil && !strings.Contains(s, "computing") && doneTime.MatchString(s)
	})
	old := b.lensFor(ids)
	x.keys("tab", "home", "right", "right", "right")
	x.waitFor(t, "the cursor on ␣on", func(s string) bool { return strings.Contains(s, "input  ␣on") })

	b.mu.Lock()
	b.delay = 300 * time.Millisecond
	b.mu.Unlock()
	x.keys("tab", "ctrl+home")
	x.tm.Type("A ") // two tokens before the rest
	s := x.waitFor(t, "the recompute", func(s string) bool {
		f := strings.Fields(line(s, "input"))
		return strings.Contains(s, "computing") && len(f) > 1 && f[1] == "A"
	})
	header, out := []rune(line(s, "input")), []rune(line(s, "2 out"))
	for q, id := range ids {
		tok := []rune(display.Token(b.TokenBytes(id)))
		i := runeIndex(header, tok)
		if i < 1 {
			t.Fatalf("token %q not in the header %q", string(tok), string(header))
		}
		top := []rune(display.Token(b.TokenBytes(old.Cells[2][q].Top[0].ID)))
		top = top[:min(len(top), 4)]
		got := string(out[i-1 : min(len(out), i+len(top))])
		if got != "·"+string(top) && got != "["+string(top) {
			t.Errorf("under %q: %q, want its old top-1 %q dimmed\n%s", string(tok), got, string(top), s)
		}
	}
	if !strings.Contains(s, "input  ␣on") {
		t.Errorf("the cursor left ␣on:\n%s", s)
	}
	b.mu.Lock()
	b.delay = 0
	b.mu.Unlock()
	x.waitFor(t, "the new lens, the cursor on ␣on", func(s string) bool {
		return !strings.Contains(s, "computing") && strings.Contains(s, "input  ␣on") && strings.Contains(s, "pos 6 of 8")
	})
	x.keys("ctrl+c")
	x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// runeIndex is the index of sub in s, in runes; -1 if absent.
func runeIndex(s, sub []rune) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if string(s[i:i+len(sub)]) == string(sub) {
			return i
		}
	}
	return -1
}
