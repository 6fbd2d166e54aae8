package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/logitlens/logitlens/inference"
)

// wantLockIn computes, from the lens, the lowest row of position p from
// which every row's top-1 is the output's.
func wantLockIn(l *inference.Lens, p int) int {
	R := len(l.Rows)
	final := l.Cells[R-1][p].Top[0].ID
	r := R - 1
	for r > 0 && l.Cells[r-1][p].Top[0].ID == final {
		r--
	}
	return r
}

// TestLockInFlow: L marks each column's lock-in cell with ▲, and only it,
// in colour and without; the panel names the lock-in row of the cursor's
// column; both read from the lens.
func TestLockInFlow(t *testing.T) {
	for _, profile := range []colorprofile.Profile{colorprofile.TrueColor, colorprofile.Ascii} {
		t.Run(profile.String(), func(t *testing.T) {
			b := &fakeBackend{layers: 4, settle: true}
			const prompt = "The cat sat on the mat"
			m := newModel(fakeOptions(b, prompt))
			x := newTerm(t, m, 120, 30, profile)
			ids := b.ids(prompt, false)
			x.waitFor(t, "the whole grid", func(s string) bool {
				return b.lensFor(ids) != nil && !strings.Contains(s, "computing") && !strings.Contains(s, " ·  ")
			})
			l := b.lensFor(ids)
			x.keys("tab", "L", "h")
			x.waitFor(t, "the marks", func(s string) bool { return strings.Contains(s, "▲") })
			// The geometry and the cursor, from a twin driven to the same
			// state: the program's model is the program's goroutine's.
			gb := &fakeBackend{layers: 4, settle: true}
			g := twin(t, gb, fakeOptions(gb, prompt), 120, 30, "tab", "L", "h")
			r := g.layout()
			lw, cw, hl := g.grid.labelWidth(), g.grid.colWidth(), g.grid.headerLines()
			levels := map[int]bool{}
			for i, row := range g.grid.order() {
				for p := range ids {
					want := wantLockIn(l, p) == row
					cell := x.emu.CellAt(r.gridX+lw+p*cw, r.gridY+hl+i)
					if got := cell.Content == "▲"; got != want && !(row == g.grid.row && p == g.grid.col) {
						t.Errorf("row %d pos %d: lead %q, lock-in mark %v, want %v", row, p, cell.Content, got, want)
					}
					levels[wantLockIn(l, p)] = true
				}
			}
			if len(levels) < 3 {
				t.Fatalf("columns lock in at only %d rows: the test shows little", len(levels))
			}
			// The cursor: output row, position 5 (1-based).
			want := "locks in at layer " + l.Rows[wantLockIn(l, 4)].Name
			switch wantLockIn(l, 4) {
			case 0:
				want = "locks in at the embedding"
			case len(l.Rows) - 1:
				want = "locks in only at the output"
			}
			x.waitFor(t, "the panel's lock-in line", func(s string) bool { return strings.Contains(s, want) })
			x.keys("q")
			x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
		})
	}
}
