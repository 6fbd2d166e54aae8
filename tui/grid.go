package tui

import (
	"fmt"
	"strings"

	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/inference"
)

// Column widths: at least wide enough for most GPT-2 tokens, so that an
// 80-column terminal shows about eight positions; wider, up to
// maxColWidth, when there is room (a short prompt on a wide terminal),
// unless the user fixed the width (--cell-width).
const (
	minColWidth = 7
	maxColWidth = 16
)

// The range of a fixed column width (Options.CellWidth): room for the
// brackets that frame the cursor and a character, up to a long token.
const (
	MinCellWidth = 4
	MaxCellWidth = 40
)

// grid is the heatmap: one line per lens row, the model output at the top
// and the embedding at the bottom, one column per position. Its row labels
// (left) and column headers (top) stay put while the body scrolls.
//
// Rows are addressed by their index in the lens (0 = embedding); "order" is
// the list of rows the cursor visits, top to bottom: every row, or in fit
// mode every stride-th row counted down from the output, so the output row
// always shows.
type grid struct {
	data    *lensData
	styles  Styles
	metric  export.Metric
	numbers bool // cells show the metric's value instead of the top-1 token
	fit     bool // fit all rows in the height by striding
	fixed   bool // kl and ce on 0..ln V rather than up to the lens's largest value
	locks   bool // mark each column's lock-in cell
	text    func(id int) string
	// cellWidth fixes the column width (--cell-width); 0 sizes columns to
	// the space.
	cellWidth int

	rows, cols int // shape of the lens
	row, col   int // cursor: lens row index, position
	top, left  int // first shown entry of order; first shown position

	width, height int // viewport set by resize
}

// setShape adapts the cursor and scroll to a lens of rows×cols. With
// followEnd the cursor jumps to the last position, so typing keeps the new
// token in view.
func (g *grid) setShape(rows, cols int, followEnd bool) {
	if g.rows == 0 {
		g.row = rows - 1
	} else if rows != g.rows && g.row == g.rows-1 {
		g.row = rows - 1
	}
	g.rows, g.cols = rows, cols
	if followEnd {
		g.col = cols - 1
	}
	g.row = clampInt(g.row, 0, rows-1)
	g.col = clampInt(g.col, 0, cols-1)
	g.ensureVisible()
}

// resize sets the viewport in cells, headers included.
func (g *grid) resize(width, height int) {
	g.width, g.height = width, height
	g.ensureVisible()
}

// headerLines is the number of header lines: the input tokens, then the
// next tokens (what each column should predict), dropped when the grid is
// very short.
func (g grid) headerLines() int {
	if g.height >= 6 {
		return 2
	}
	return 1
}

// bodyHeight is the number of row lines below the header.
func (g grid) bodyHeight() int { return max(1, g.height-g.headerLines()) }

// order lists the rows the cursor can visit, top (output) to bottom.
func (g grid) order() []int {
	stride := 1
	if h := g.bodyHeight(); g.fit && g.rows > h {
		stride = 1
		if h > 1 {
			stride = (g.rows - 1 + h - 2) / (h - 1) // ceil((R-1)/(H-1)) rows fit
		} else {
			stride = g.rows
		}
	}
	var o []int
	for r := g.rows - 1; r >= 0; r -= stride {
		o = append(o, r)
	}
	return o
}

// indexOf returns where the cursor row sits in order, snapping to the
// nearest visited row when it is not one.
func indexOf(order []int, row int) int {
	for i, r := range order {
		if r <= row {
			return i
		}
	}
	return max(0, len(order)-1)
}

// labelWidth is the width of the row-label column: an indicator, the
// longest label, a space.
func (g grid) labelWidth() int {
	w := 3
	if g.data != nil {
		for i, r := range g.data.rows {
			w = max(w, len(rowLabel(r, i == len(g.data.rows)-1)))
		}
	}
	return w + 2
}

// colWidth is the fixed width when one is set; else it fits all positions
// when they fit at a readable width, growing up to maxColWidth, or uses the
// minimum and scrolls.
func (g grid) colWidth() int {
	switch {
	case g.cellWidth > 0:
		return g.cellWidth
	case g.cols == 0:
		return maxColWidth
	}
	return clampInt((g.width-g.labelWidth()-len(g.overflowMark()))/g.cols, minColWidth, maxColWidth)
}

// overflowMark is the header's note after the last column of a prompt
// that goes on past n_positions (" +312": tokens not read), or "".
func (g grid) overflowMark() string {
	if g.data == nil || g.data.total <= g.cols {
		return ""
	}
	return fmt.Sprintf(" +%d", g.data.total-g.cols)
}

// visibleCols is how many positions fit, keeping room for the "more"
// marker when they do not all fit, and for the overflow mark after the
// last column.
func (g grid) visibleCols() int {
	avail := g.width - g.labelWidth()
	cw := g.colWidth()
	mark := len(g.overflowMark())
	if g.cols*cw+mark <= avail {
		return g.cols
	}
	return max(1, (avail-max(1, mark))/cw)
}

// capacity is how many columns the grid shows at most: all of them when
// they fit, else as many as fit at the narrowest width. It is known before
// the columns are (the view of a lens about to start).
func (g grid) capacity() int {
	if g.cols > 0 && g.visibleCols() == g.cols {
		return g.cols
	}
	cw := minColWidth
	if g.cellWidth > 0 {
		cw = g.cellWidth
	}
	return max(1, (g.width-g.labelWidth()-1)/cw)
}

// ensureVisible scrolls so that the cursor cell is shown.
func (g *grid) ensureVisible() {
	o := g.order()
	i := indexOf(o, g.row)
	if len(o) > 0 {
		g.row = o[i]
	}
	h := g.bodyHeight()
	g.top = clampInt(g.top, max(0, i-h+1), i)
	g.top = clampInt(g.top, 0, max(0, len(o)-h))
	n := g.visibleCols()
	g.left = clampInt(g.left, max(0, g.col-n+1), g.col)
	g.left = clampInt(g.left, 0, max(0, g.cols-n))
}

// move moves the cursor by dRows entries of order (positive is down,
// towards the embedding) and dCols positions.
func (g *grid) move(dRows, dCols int) {
	o := g.order()
	if len(o) == 0 {
		return
	}
	i := clampInt(indexOf(o, g.row)+dRows, 0, len(o)-1)
	g.row = o[i]
	g.col = clampInt(g.col+dCols, 0, g.cols-1)
	g.ensureVisible()
}

// moveTo puts the cursor on a lens row (snapped to order) and position.
func (g *grid) moveTo(row, col int) {
	g.row = clampInt(row, 0, g.rows-1)
	g.col = clampInt(col, 0, g.cols-1)
	g.ensureVisible()
}

// scroll moves the view without moving the cursor further than needed to
// keep it on screen.
func (g *grid) scroll(dRows, dCols int) {
	o := g.order()
	h := g.bodyHeight()
	g.top = clampInt(g.top+dRows, 0, max(0, len(o)-h))
	n := g.visibleCols()
	g.left = clampInt(g.left+dCols, 0, max(0, g.cols-n))
	if len(o) > 0 {
		i := clampInt(indexOf(o, g.row), g.top, min(len(o)-1, g.top+h-1))
		g.row = o[i]
	}
	g.col = clampInt(g.col, g.left, max(g.left, g.left+n-1))
	g.col = clampInt(g.col, 0, g.cols-1)
}

// hit maps a point relative to the grid's top-left corner to a cell.
func (g grid) hit(x, y int) (row, col int, ok bool) {
	lw, cw := g.labelWidth(), g.colWidth()
	o := g.order()
	hl := g.headerLines()
	i := g.top + y - hl
	if y < hl || i >= len(o) || i >= g.top+g.bodyHeight() || x < lw {
		return 0, 0, false
	}
	c := g.left + (x-lw)/cw
	if c >= g.left+g.visibleCols() || c >= g.cols {
		return 0, 0, false
	}
	return o[i], c, true
}

// writeRowLabel starts the grid's body line i, showing lens row row of
// shown: a new line, the scroll mark (▴ ▾ where rows are out of view) and
// the row's label in the label column's width lw, styled for the cursor's
// row and the output, with the space before the cells.
func (g grid) writeRowLabel(b *strings.Builder, st Styles, r inference.Row, i, row, shown, lw int) {
	b.WriteByte('\n')
	mark := " "
	switch {
	case i == g.top && g.top > 0:
		mark = "▴"
	case i == g.top+g.bodyHeight()-1 && i < shown-1:
		mark = "▾"
	}
	ls := st.Label
	switch {
	case row == g.row:
		ls = st.LabelCursor
	case row == g.rows-1:
		ls = st.LabelOutput
	}
	b.WriteString(st.Muted.Render(mark))
	b.WriteString(ls.Render(fitLeft(rowLabel(r, row == g.rows-1), lw-2)))
	b.WriteByte(' ')
}

// rowLabel names a lens row: "emb", the block number, "N.attn", and the last
// row marked as the model output.
func rowLabel(r inference.Row, last bool) string {
	name := r.Name
	if r.Kind == inference.Embed {
		name = "emb"
	}
	if last {
		name += " out"
	}
	return name
}

// View draws the grid in width×height cells: the input tokens and the next
// tokens above the rows; each cell's top-1 (or value), coloured by the
// metric, underlined and bold where it is the next token, with ▲ where the
// column locks in (when those marks are on), and the cursor cell framed in
// brackets.
func (g grid) View(width, height int) string {
	g.resize(width, height)
	d := g.data
	if d == nil || width <= 0 || height <= 0 {
		return ""
	}
	st := g.styles
	lw, cw, n := g.labelWidth(), g.colWidth(), g.visibleCols()
	var b strings.Builder

	corner := "input"
	if g.left > 0 {
		corner = "◂" + corner
	}
	b.WriteString(st.Muted.Render(fit(corner, lw)))
	for p := g.left; p < g.left+n && p < g.cols; p++ {
		hs := st.Header
		if p == g.col {
			hs = st.HeaderCursor
		}
		b.WriteString(hs.Render(fit(" "+d.headers[p], cw)))
	}
	switch {
	case g.left+n < g.cols:
		b.WriteString(st.Muted.Render("▸"))
	case g.overflowMark() != "":
		// The prompt goes on past n_positions: say how far.
		b.WriteString(st.Warn.Render(g.overflowMark()))
	}
	if g.headerLines() > 1 {
		b.WriteString("\n" + st.Muted.Render(fit("next →", lw)))
		for p := g.left; p < g.left+n && p < g.cols; p++ {
			text, hs := "—", st.Muted
			switch {
			case p+1 < d.columns():
				text = d.headers[p+1]
			case d.unread != "":
				text, hs = d.unread, st.Warn // past n_positions: not read
			}
			if p == g.col {
				hs = st.NextCursor
			}
			b.WriteString(hs.Render(fit(" "+text, cw)))
		}
	}

	o := g.order()
	scale := export.NewScale(g.metric, d.vocab, d.maxValue(g.metric), g.fixed)
	var lockRows []int
	if g.locks {
		for p := g.left; p < g.left+n && p < g.cols; p++ {
			lockRows = append(lockRows, d.lockIn(p))
		}
	}
	h := g.bodyHeight()
	for i := g.top; i < len(o) && i < g.top+h; i++ {
		row := o[i]
		g.writeRowLabel(&b, st, d.rows[row], i, row, len(o), lw)
		for p := g.left; p < g.left+n && p < g.cols; p++ {
			cursor := row == g.row && p == g.col
			lock := g.locks && lockRows[p-g.left] == row
			c, ok := d.cell(row, p)
			if !ok {
				text := ""
				if old, ok := d.staleCell(row, p); ok {
					text = g.text(old.Top[0].ID)
				}
				b.WriteString(st.pending(text, cw, cursor))
				continue
			}
			v := g.metric.Value(c)
			text := g.text(c.Top[0].ID)
			if g.numbers {
				text = g.metric.Format(v)
			}
			b.WriteString(st.cell(scale.T(v), text, cw, cellMarks{cursor: cursor, next: c.Top[0].ID == d.nextID(p), lock: lock}))
		}
	}
	return b.String()
}

func clampInt(v, lo, hi int) int {
	if hi < lo {
		return lo
	}
	return min(max(v, lo), hi)
}
