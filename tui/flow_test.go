package tui

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logitlens/logitlens/display"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/charmbracelet/x/vt"
)

// term replays a program's output into a virtual terminal, so flows assert
// on the plain text a user would see rather than on escape codes.
type term struct {
	tm  *teatest.TestModel
	emu *vt.Emulator
	mu  sync.Mutex
}

func newTerm(t *testing.T, m tea.Model, w, h int, profile colorprofile.Profile) *term {
	t.Helper()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(tea.WithColorProfile(profile)))
	emu := vt.NewEmulator(w, h)
	// Replies to terminal queries go to the emulator's input pipe; drain it
	// so they never block a write.
	go func() { _, _ = io.Copy(io.Discard, emu) }()
	// Closing the input pipe ends the drain (Close would race with Read).
	t.Cleanup(func() { _ = emu.InputPipe().(io.Closer).Close() })
	return &term{tm: tm, emu: emu}
}

// screen feeds any new output to the emulator and returns its plain text.
func (x *term) screen() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	b, _ := io.ReadAll(x.tm.Output())
	// With no TTY the renderer writes bare line feeds: add the carriage
	// returns a terminal's output processing would.
	b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	_, _ = x.emu.Write(b)
	return x.emu.String()
}

// waitFor polls the screen until cond holds, failing after a deadline with
// the last screen.
func (x *term) waitFor(t *testing.T, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := x.screen()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s; screen:\n%s", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (x *term) keys(keys ...string) {
	for _, k := range keys {
		x.tm.Send(keyMsg(k))
	}
}

// TestFlowTypeNavigateRead types into the prompt, waits for the grid of the
// new prompt, moves the cursor and reads the panel, comparing the screen
// with what the backend's lens says, at 80×24 and 200×50.
func TestFlowTypeNavigateRead(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {200, 50}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			b := &fakeBackend{layers: 4, delay: time.Millisecond}
			m := newModel(fakeOptions(b, "The cat"))
			x := newTerm(t, m, size[0], size[1], colorprofile.ANSI256)

			x.waitFor(t, "the first grid", func(s string) bool {
				return b.lensFor(b.ids("The cat", false)) != nil && strings.Contains(s, "4 out")
			})
			x.tm.Type(" sat on the mat")
			ids := b.ids("The cat sat on the mat", false)
			x.waitFor(t, "the lens of the typed prompt", func(string) bool { return b.lensFor(ids) != nil })
			l := b.lensFor(ids)
			want := func(row, pos int) string {
				// Columns are at least minColWidth wide: the first
				// minColWidth-2 cells of a token always show.
				return ansi.Truncate(display.Token(b.TokenBytes(l.Cells[row][pos].Top[0].ID)), minColWidth-2, "")
			}
			x.waitFor(t, "the output row of the typed prompt", func(s string) bool {
				out := line(s, "4 out")
				for p := range ids {
					if !strings.Contains(out, want(4, p)) {
						return false
					}
				}
				return true
			})

			// Into the grid, two layers down, two tokens left: layer 2, ␣on.
			x.keys("tab", "j", "j", "h", "h")
			c := l.Cells[2][3]
			top := []string{"layer 2", "pos 4 of 6", "input  ␣on", "next   ␣the", fmt.Sprintf("entropy %.2f", c.Entropy)}
			for i, p := range c.Top {
				top = append(top, fmt.Sprintf("%2d %s", i+1, ansi.Truncate(display.Token(b.TokenBytes(p.ID)), 5, "")), display.Prob(p.Prob))
			}
			s := x.waitFor(t, "the panel of layer 2, position 3", func(s string) bool {
				for _, w := range top {
					if !strings.Contains(s, w) {
						return false
					}
				}
				return true
			})
			if !strings.Contains(s, "fake/gpt2-test") || !strings.Contains(s, "6 tok") {
				t.Errorf("status bar:\n%s", s)
			}

			x.keys("?")
			x.waitFor(t, "the help overlay", func(s string) bool { return strings.Contains(s, "logitlens keys") })
			x.keys("?")
			x.tm.Send(tea.WindowSizeMsg{Width: 30, Height: 8})
			x.emu.Resize(30, 8)
			x.waitFor(t, "the too-small notice", func(s string) bool { return strings.Contains(s, "too small") })
			x.keys("ctrl+c")
			x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
		})
	}
}

// TestFlowStreamingCancels types while a slow lens runs: older requests
// are cancelled and the final grid is the lens of the final prompt.
func TestFlowStreamingCancels(t *testing.T) {
	b := &fakeBackend{layers: 2, delay: 15 * time.Millisecond}
	m := newModel(fakeOptions(b, "The"))
	x := newTerm(t, m, 80, 24, colorprofile.ASCII)
	x.waitFor(t, "the first grid", func(s string) bool { return strings.Contains(s, "2 out") })
	for _, r := range " cat sat on the mat" {
		x.tm.Type(string(r))
		time.Sleep(40 * time.Millisecond)
	}
	ids := b.ids("The cat sat on the mat", false)
	x.waitFor(t, "the final lens", func(string) bool { return b.lensFor(ids) != nil })
	x.waitFor(t, "the final grid", func(s string) bool { return strings.Contains(s, "6 tok") && !strings.Contains(s, "computing") })
	b.mu.Lock()
	cancels := b.cancels
	b.mu.Unlock()
	if cancels == 0 {
		t.Log("no request was cancelled (machine fast enough to finish each)")
	}
	x.keys("tab", "q")
	x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}
