package tui

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/export"
)

// TestNextTokenFlow drives the explorer in a terminal emulator: the header's
// next-token row shows what each column predicts, every cell whose top-1 is
// that token is underlined (and no other), in colour and without, the panel
// gives the next token's rank and probability, and the next-token metrics
// colour and number the cells; all read from the lens.
func TestNextTokenFlow(t *testing.T) {
	for _, profile := range []colorprofile.Profile{colorprofile.ANSI256, colorprofile.ASCII} {
		t.Run(profile.String(), func(t *testing.T) {
			b := &fakeBackend{layers: 3, oracle: true}
			const prompt = "The cat sat on the mat"
			m := newModel(fakeOptions(b, prompt))
			x := newTerm(t, m, 120, 30, profile)
			ids := b.ids(prompt, false)
			x.waitFor(t, "the lens", func(s string) bool { return b.lensFor(ids) != nil && strings.Contains(s, "6 tok") })
			l := b.lensFor(ids)
			x.keys("tab")
			s := x.waitFor(t, "the whole grid", func(s string) bool {
				return strings.Contains(s, "next →") && !strings.Contains(s, "computing") && !strings.Contains(s, " ·  ") // no pending cell
			})

			// The geometry, from a twin driven to the same state: the
			// program's model is the program's goroutine's to read.
			gb := &fakeBackend{layers: 3, oracle: true}
			g := twin(t, gb, fakeOptions(gb, prompt), 120, 30, "tab")
			r := g.layout()
			lines := strings.Split(s, "\n")
			nextLine := lines[r.gridY+1]
			var wantNext []string
			for p := range ids {
				tok := "—"
				if p+1 < len(ids) {
					tok = display.Token(b.TokenBytes(ids[p+1]))
				}
				wantNext = append(wantNext, shownText(g, tok, false))
			}
			if !containsInOrder(nextLine, wantNext) {
				t.Errorf("next row %q, want %q", nextLine, wantNext)
			}

			// Underlined exactly where the top-1 is the next token.
			lw, cw, hl := g.grid.labelWidth(), g.grid.colWidth(), g.grid.headerLines()
			hits := 0
			for i, row := range g.grid.order() {
				for p := range ids {
					c := l.Cells[row][p]
					want := p+1 < len(ids) && c.Top[0].ID == ids[p+1]
					cell := x.emu.CellAt(r.gridX+lw+p*cw+1, r.gridY+hl+i)
					if cell == nil {
						t.Fatalf("no cell at row %d pos %d", row, p)
					}
					if got := cell.Style.Underline != 0; got != want {
						t.Errorf("row %d pos %d (%q): underlined %v, want %v", row, p, cell.Content, got, want)
					}
					if want {
						hits++
					}
				}
			}
			if hits == 0 {
				t.Fatal("no cell predicts its next token: the test shows nothing")
			}

			// The cursor cell (output row, last-but-one position): the
			// panel gives its next token's rank and probability.
			x.keys("h")
			c := l.Cells[len(l.Rows)-1][len(ids)-2]
			x.waitFor(t, "the next token's statistics", func(s string) bool {
				return strings.Contains(s, fmt.Sprintf("next   ␣mat #%d rank %d p %s", ids[len(ids)-1], c.NextRank, display.Prob(c.NextProb)))
			})

			// m: colour by p(next token); n: its values in the cells.
			x.keys("m", "v")
			x.waitFor(t, "the next-token values", func(s string) bool {
				out := line(s, "3 out")
				for p := range len(ids) - 1 {
					v := export.MetricNextProb.Format(l.Cells[len(l.Rows)-1][p].NextProb)
					if !strings.Contains(out, v) {
						return false
					}
				}
				return strings.Contains(s, "p(next token)")
			})
			x.keys("q")
			x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
		})
	}
}

// TestStartMetricAndFixedScale: --metric picks the first colour; K moves kl
// between the lens's own maximum and the fixed 0..ln V, as the legend's
// dark end says (read from the lens and the vocabulary).
func TestStartMetricAndFixedScale(t *testing.T) {
	b := &fakeBackend{layers: 3}
	opts := fakeOptions(b, "The cat sat")
	opts.Metric = export.MetricKL
	m := loaded(t, b, opts, 120, 30)
	l := b.lensFor(b.ids("The cat sat", false))
	maxKL := 0.0
	for _, row := range l.Cells {
		for _, c := range row {
			maxKL = max(maxKL, c.KLToFinal)
		}
	}
	if s := screen(m); !strings.Contains(s, "colour KL(P_final ‖ P_row)") || !strings.Contains(s, fmt.Sprintf("%.2f", maxKL)) {
		t.Errorf("kl legend up to the lens's %.2f:\n%s", maxKL, s)
	}
	press(t, m, "tab", "K")
	lnV := math.Log(float64(b.vocab()))
	if s := screen(m); !strings.Contains(s, fmt.Sprintf("%.2f", lnV)) || !m.fixed {
		t.Errorf("fixed kl legend up to ln V = %.2f:\n%s", lnV, s)
	}
	// A target metric without a target starts on p(top-1).
	opts.Metric = export.MetricTarget
	if m := newModel(opts); m.metric != export.MetricProb {
		t.Errorf("target metric without a target: %v", m.metric)
	}
}

// TestNoNextTokenDevice: a backend that refuses next-token statistics (the
// GPU's) still gets its lens drawn, says so once, and is not asked again.
func TestNoNextTokenDevice(t *testing.T) {
	b := &fakeBackend{layers: 2, refuseNext: true}
	m := loaded(t, b, fakeOptions(b, "The cat"), 120, 30)
	if m.data == nil || m.data.lens == nil || m.lensErr != "" {
		t.Fatalf("no lens: %q", m.lensErr)
	}
	if s := screen(m); !strings.Contains(s, "no next-token statistics") {
		t.Errorf("no notice:\n%s", s)
	}
	typeText(t, m, " sat")
	if !m.pending.noNext || m.data.lens == nil {
		t.Error("the next request asked for next-token statistics again")
	}
}
