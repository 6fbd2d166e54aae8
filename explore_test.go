package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/tui"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// tokenPrompts are the texts the explorer and `lens` must read identically.
var tokenPrompts = []string{
	"def f(x):\r\n\treturn x\r\n",
	"def f(x):\n\treturn x",
	"trailing spaces and tabs \t  ",
	"emoji 👍🏽 and a family 👨‍👩‍👧, flags 🇯🇵",
	"日本語です。東京タワー\n한국어 中文",
	"cafe\u0301 — naïve \u202e<|endoftext|> done",
}

// recordingSession is the explorer's backend with a record of the ids of
// every lens it was asked for.
type recordingSession struct {
	*inference.Session
	mu   sync.Mutex
	seen [][]int
}

func (r *recordingSession) Lens(ctx context.Context, req inference.Request, onColumn func(inference.Column)) (*inference.Lens, error) {
	r.mu.Lock()
	r.seen = append(r.seen, slices.Clone(req.IDs))
	r.mu.Unlock()
	return r.Session.Lens(ctx, req, onColumn)
}

// waitIDs waits until the explorer asked for the lens of want.
func (r *recordingSession) waitIDs(t *testing.T, want []int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, ids := range r.seen {
			if slices.Equal(ids, want) {
				r.mu.Unlock()
				return
			}
		}
		last := r.seen
		r.mu.Unlock()
		if time.Now().Add(100 * time.Millisecond).After(deadline) {
			t.Fatalf("the explorer computed %v, never %v", last, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExplorerAndLensSameTokens gives each prompt to `lens --prompt-file`
// and to the explorer (as its first prompt, and pasted into an empty one,
// as a terminal pastes it: line breaks as CR) on the same checkpoint, and
// checks that both compute the lens of the same token ids.
func TestExplorerAndLensSameTokens(t *testing.T) {
	dir := testmodel.Dir(t, "tiny-f32")
	t.Setenv("HF_HUB_OFFLINE", "1")
	for i, text := range tokenPrompts {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			lensIDs := lensIDsOf(t, dir, text)
			m, err := inference.Load(context.Background(), dir, inference.LoadOptions{Device: "cpu"})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for _, pasted := range []bool{false, true} {
				rec := &recordingSession{Session: m.NewSession()}
				opts := tui.Options{ModelID: dir, TopK: 5,
					Load: func(context.Context, func(inference.Progress)) (tui.Backend, error) { return rec, nil }}
				if !pasted {
					opts.Prompt = text
				}
				// (teatest would do, but its -update flag clashes with
				// this package's.)
				p := tea.NewProgram(tui.New(opts), tea.WithInput(nil), tea.WithOutput(io.Discard),
					tea.WithWindowSize(100, 30), tea.WithoutSignals())
				done := make(chan error, 1)
				go func() { _, err := p.Run(); done <- err }()
				if pasted {
					// A terminal sends each pasted line break as CR.
					p.Send(tea.PasteMsg{Content: crlfToCR(text)})
				}
				want := lensIDs
				if pasted {
					want = lensIDsOf(t, dir, lfText(text))
				}
				rec.waitIDs(t, want)
				p.Quit()
				select {
				case err := <-done:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the explorer did not quit")
				}
				rec.Session.Close()
			}
		})
	}
}

// crlfToCR turns each line break (LF or CR LF) into CR, as a terminal
// sends pasted text.
func crlfToCR(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n':
			out = append(out, '\r')
			i++
		case s[i] == '\n':
			out = append(out, '\r')
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}

// lfText is s with CR LF as LF: what a pasted s becomes.
func lfText(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}

// lensIDsOf runs `lens --prompt-file -` on text and returns its token ids.
func lensIDsOf(t *testing.T, dir, text string) []int {
	t.Helper()
	out, _, err := execArgs(t, text, "lens", "-m", dir, "--device", "cpu", "--prompt-file", "-", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Tokens []struct{ ID int } }
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, tk := range doc.Tokens {
		ids = append(ids, tk.ID)
	}
	return ids
}
