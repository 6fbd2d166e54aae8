package export

import (
	"bytes"
	"fmt"
	"math"
	"strings"

	"github.com/logitlens/logitlens/display"
)

// The comparison figure: the grid of a document's compare block, one column
// per position of the longer prompt, right-aligned so that the two runs'
// last tokens share the last column. A paired cell is coloured by the
// pairwise metric on the diverging palette (white: B equals A) and shows A's
// top-1 and, on a second line marked "≠", B's top-1 where the two differ,
// so the difference reads without colour. A column that only one run has
// is drawn in the paper colour with that run's own top-1 in the muted
// colour, left of a dashed line where the pairs begin: nothing is compared
// there, and nothing is dropped. Below the grid run A's tokens and, where
// they differ, B's.

// comparePos returns A's and B's positions at display column x (-1 where a
// run has none) and the comparison's column j (-1 unless both have one).
func (l *layout) comparePos(x int) (pa, pb, j int) {
	pa = l.cmp.posA(x, l.cols, len(l.d.Tokens))
	pb = l.cmp.posB(x, l.cols)
	j = -1
	if pa >= 0 && pb >= 0 {
		j = pa - l.cmp.OffsetA
	}
	return pa, pb, j
}

// writeCompareAxes writes the row labels, A's next tokens above the grid,
// and A's and B's tokens below it.
func (l *layout) writeCompareAxes(w *bytes.Buffer) {
	d := l.d
	l.writeRowLabels(w)
	bottom := l.gridY + l.gridH
	differ := tokensDiffer(d)
	fmt.Fprintf(w, `<text x="%g" y="%g" text-anchor="end" fill="%s">A next →</text>`+"\n", l.gridX-6, l.gridY-7, l.muted)
	fmt.Fprintf(w, `<text x="%g" y="%g" text-anchor="end" fill="%s">A input →</text>`+"\n", l.gridX-6, bottom+15, l.muted)
	if differ {
		fmt.Fprintf(w, `<text x="%g" y="%g" text-anchor="end" fill="%s">B input →</text>`+"\n", l.gridX-6, bottom+31, l.muted)
	}
	for x := range l.cols {
		pa, pb, _ := l.comparePos(x)
		cx := l.colX(x) + l.cellW/2
		if pa >= 0 {
			fmt.Fprintf(w, `<text class="col-label" x="%g" y="%g" text-anchor="middle" fill="%s">%s</text>`+"\n",
				cx, bottom+15, l.ink, esc(l.fit(clean(d.Tokens[pa].Display))))
			if next, ok := l.nextToken(pa); ok {
				fmt.Fprintf(w, `<text class="next-label" x="%g" y="%g" text-anchor="middle" fill="%s">%s</text>`+"\n",
					cx, l.gridY-7, l.muted, esc(l.fit(clean(next.Display))))
			}
		}
		// B's token where it is not A's: the columns that differ stand out.
		if differ && pb >= 0 && (pa < 0 || d.Tokens[pa].ID != l.cmp.B.Tokens[pb].ID) {
			fmt.Fprintf(w, `<text class="col-label-b" x="%g" y="%g" text-anchor="middle" font-weight="bold" fill="%s">%s</text>`+"\n",
				cx, bottom+31, l.ink, esc(l.fit(clean(l.cmp.B.Tokens[pb].Display))))
		}
	}
	y := bottom + 33
	if differ {
		y += 16
	}
	notes := []string{"right-aligned: the last tokens face each other · position t predicts token t+1"}
	if l.cols > l.cmp.Columns {
		only := "A"
		if l.cmp.OffsetB > 0 {
			only = "B"
		}
		notes = append(notes, "left of the dashed line only "+only+" has the positions: its own top-1, uncompared")
	}
	for i, note := range notes {
		fmt.Fprintf(w, `<text x="%g" y="%g" font-family="%s" font-size="11" fill="%s">%s</text>`+"\n",
			l.gridX, y+float64(i)*14, sansFamily, l.muted, esc(note))
	}
}

// writeCompareCells writes one rect and one or two lines of text per cell,
// then the output row's frame.
func (l *layout) writeCompareCells(w *bytes.Buffer, tooltips bool) {
	d := l.d
	w.WriteString(`<g class="cells" shape-rendering="crispEdges">` + "\n")
	for r := range d.Rows {
		for x := range l.cols {
			pa, pb, j := l.comparePos(x)
			cx, y := l.colX(x), l.rowY(r)
			fill, text := l.paper, l.muted
			line1, line2 := "·", ""
			var c PairInfo
			if j >= 0 {
				c = l.cmp.Cells[r][j]
				if t := l.scale.T(l.metric.PairValue(c.pairCell(), d.Target != nil)); !math.IsNaN(t) {
					bg := l.pal.At(t)
					fill, text = hexOf(bg), l.textOn(bg)
				}
				line1 = "—"
				if top := d.Cells[r][pa].Top; len(top) > 0 {
					line1 = top[0].Display
				}
				if c.Top1Differs && len(c.TopB) > 0 {
					line2 = "≠ " + c.TopB[0].Display
				}
			} else if top, ok := l.cmp.unpairedTop1(d, r, pa, pb); ok {
				line1 = top.Display // the one run's own prediction
			}
			fmt.Fprintf(w, `<rect class="cell" data-r="%d" data-x="%d" data-p="%d" data-j="%d" x="%g" y="%g" width="%g" height="%g" fill="%s">`,
				r, x, pa, j, cx, y, l.cellW, l.rowH, fill)
			if tooltips {
				fmt.Fprintf(w, "<title>%s</title>", esc(l.compareTooltip(r, x)))
			}
			w.WriteString("</rect>\n")
			y1 := y + l.rowH/2 + 4
			if line2 != "" {
				y1 = y + l.rowH/2 - 3
			}
			fmt.Fprintf(w, `<text class="top1" x="%g" y="%g" text-anchor="middle" fill="%s">%s</text>`+"\n",
				cx+l.cellW/2, y1, text, esc(l.fit(clean(line1))))
			if line2 != "" {
				fmt.Fprintf(w, `<text class="top1-b" x="%g" y="%g" text-anchor="middle" font-weight="bold" fill="%s">%s</text>`+"\n",
					cx+l.cellW/2, y1+13, text, esc(l.fit(clean(line2))))
			}
		}
	}
	w.WriteString("</g>\n")
	if first := l.cols - l.cmp.Columns; first > 0 {
		x := l.colX(first)
		fmt.Fprintf(w, `<line class="pairs-begin" x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="1.5" stroke-dasharray="4 3"/>`+"\n",
			x, l.gridY-cellH, x, l.gridY+l.gridH+cellH, l.muted)
	}
	out := len(d.Rows) - 1
	fmt.Fprintf(w, `<rect class="output-row" x="%g" y="%g" width="%g" height="%g" fill="none" stroke="%s" stroke-width="2"/>`+"\n",
		l.gridX-1, l.rowY(out)-1, l.gridW+2, l.rowH+2, l.ink)
}

// compareTooltip is a compared cell's one-line summary.
func (l *layout) compareTooltip(r, x int) string {
	d := l.d
	pa, pb, j := l.comparePos(x)
	var b strings.Builder
	fmt.Fprintf(&b, "row %s", d.Rows[r].Name)
	if pa >= 0 {
		fmt.Fprintf(&b, ", A position %d (%s)", pa, clean(d.Tokens[pa].Display))
	}
	if pb >= 0 {
		fmt.Fprintf(&b, ", B position %d (%s)", pb, clean(l.cmp.B.Tokens[pb].Display))
	}
	if j < 0 {
		b.WriteString("; no partner in the other run")
		if top, ok := l.cmp.unpairedTop1(d, r, pa, pb); ok {
			fmt.Fprintf(&b, "; its top-1 %s %s", clean(top.Display), display.Prob(float64(top.Prob)))
		}
		return b.String()
	}
	c := l.cmp.Cells[r][j]
	if top := d.Cells[r][pa].Top; len(top) > 0 {
		fmt.Fprintf(&b, "; A top-1 %s %s", clean(top[0].Display), display.Prob(float64(top[0].Prob)))
	}
	if len(c.TopB) > 0 {
		fmt.Fprintf(&b, "; B top-1 %s %s", clean(c.TopB[0].Display), display.Prob(float64(c.TopB[0].Prob)))
	}
	fmt.Fprintf(&b, "; %s = %s", l.label, l.metric.Format(l.metric.PairValue(c.pairCell(), d.Target != nil)))
	if c.NonFinite != "" {
		fmt.Fprintf(&b, "; not finite: %s", c.NonFinite)
	}
	return b.String()
}
