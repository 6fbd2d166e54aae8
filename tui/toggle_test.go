package tui

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"
)

// TestTogglesKeepCursor: b (BOS) and s (sublayer rows) keep the cursor on
// its token and its layer, read from the panel, while the columns shift
// under it and rows come and go.
func TestTogglesKeepCursor(t *testing.T) {
	b := &fakeBackend{layers: 3}
	prompt := "The cat sat on the mat"
	m := newModel(fakeOptions(b, prompt))
	x := newTerm(t, m, 120, 30, colorprofile.ASCII)
	T := len(b.ids(prompt, false))
	done := func(s string, bos bool) bool {
		return b.lensFor(b.ids(prompt, bos)) != nil && !strings.Contains(s, "computing")
	}
	x.waitFor(t, "the first lens", func(s string) bool { return done(s, false) })
	// The cursor to "␣cat" (position 2) on layer 2.
	x.keys("tab", "home", "right", "down")
	at := func(what, layer string, pos, of int) {
		t.Helper()
		want := layer + " · pos " + strconv.Itoa(pos) + " of " + strconv.Itoa(of)
		x.waitFor(t, what, func(s string) bool {
			return strings.Contains(s, want) && strings.Contains(s, "input  ␣cat")
		})
	}
	at("the cursor on ␣cat, layer 2", "layer 2", 2, T)
	x.keys("b")
	x.waitFor(t, "the lens with BOS", func(s string) bool { return done(s, true) })
	at("the cursor still on ␣cat after BOS", "layer 2", 3, T+1)
	x.keys("s")
	x.waitFor(t, "the sublayer rows", func(s string) bool { return strings.Contains(s, "2.attn") && !strings.Contains(s, "computing") })
	at("the cursor still on layer 2 with sublayers", "layer 2", 3, T+1)
	x.keys("up") // 3.attn
	at("layer 3's resid_mid", "layer 3.attn", 3, T+1)
	x.keys("s")
	x.waitFor(t, "the block rows alone", func(s string) bool { return !strings.Contains(s, "2.attn") && !strings.Contains(s, "computing") })
	at("resid_mid gone: its block's row, the output", "layer 3 (output)", 3, T+1)
	x.keys("b")
	x.waitFor(t, "the lens without BOS", func(s string) bool { return done(s, false) })
	at("the cursor on ␣cat again", "layer 3 (output)", 2, T)
	// On the BOS column itself, removing BOS leaves the cursor on the
	// first token.
	x.keys("b")
	x.waitFor(t, "BOS again", func(s string) bool { return done(s, true) && strings.Contains(s, "pos 3 of "+strconv.Itoa(T+1)) })
	x.keys("home")
	x.waitFor(t, "the cursor on BOS", func(s string) bool { return strings.Contains(s, "pos 1 of "+strconv.Itoa(T+1)) })
	x.keys("b")
	x.waitFor(t, "the first token", func(s string) bool {
		return done(s, false) && strings.Contains(s, "pos 1 of "+strconv.Itoa(T)) && strings.Contains(s, "input  The")
	})
	x.keys("q")
	x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}
