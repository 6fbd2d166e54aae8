package export

// The figures: a self-contained SVG heatmap like the reference notebook's
// figure, and one self-contained HTML file holding the same heatmap plus a
// panel that shows a cell's top-k and statistics on hover or click. Neither
// loads anything from the network, so both work offline and convert with
// common tools (rsvg-convert, a headless browser's screenshot).
//
// Rows are the lens rows, drawn with the model's output at the top and the
// embedding at the bottom; columns are the input tokens in their display
// forms (␣ ↵ ⇥ <0xNN>); each cell is coloured by the chosen metric on the
// chosen palette (the explorer's palettes, package theme) and shows its top-1
// token in black or white, whichever contrasts with the cell. The next input
// token labels each column from above, and a cell's top-1 is bold where it
// equals that token. A cell whose statistics are not finite is drawn in the
// paper colour with "—".
//
// Colours come from package theme only: the cells and the colour bar from a
// theme.Scale, the ink and paper from theme.Gray's contrast colours.

import (
	"fmt"
	"image/color"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/logitlens/logitlens/theme"
)

// Sizes in CSS pixels. The monospace advance is DejaVu Sans Mono's 0.602 em;
// other monospace fonts are within a few per cent, and cell text is clipped
// to its cell regardless.
const (
	fontSize   = 12.0
	charW      = 0.602 * fontSize
	cellH      = 22.0
	minChars   = 4  // narrowest cell, in characters
	maxChars   = 12 // widest cell; longer tokens are cut with "…"
	margin     = 12.0
	barW       = 14.0
	minBarH    = 160.0
	barSlices  = 64 // the colour bar is drawn as this many flat slices
	titleLines = 3
	minWidth   = 560.0
	monoFamily = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace"
	sansFamily = "DejaVu Sans, Helvetica, Arial, sans-serif"
)

// layout is the geometry of one figure, computed once for both writers.
type layout struct {
	d      *Document
	metric Metric
	scale  Scale
	label  string // the colour bar's title
	pal    *theme.Scale

	// cmp is the comparison the figure draws instead of the lens, when
	// the metric is pairwise: cols display columns, right-aligned.
	cmp  *Comparison
	cols int     // columns drawn: the tokens, or the longer prompt's
	rowH float64 // height of a row: two lines of text in a comparison

	chars         int     // characters that fit in a cell
	cellW         float64 // cell width
	labelW        float64 // width of the row-label column
	gridX, gridY  float64 // top-left corner of the grid
	gridW, gridH  float64
	barX, barY    float64 // top-left corner of the colour bar
	barH          float64
	width, height float64

	ink, paper, muted string // "#rrggbb"
	inkRGB, paperRGB  color.Color
}

// newLayout validates the document and the options and places everything.
func newLayout(d *Document, opt Options) (*layout, error) {
	if len(d.Rows) == 0 || len(d.Tokens) == 0 {
		return nil, fmt.Errorf("export: the document has no rows or no tokens")
	}
	if len(d.Cells) != len(d.Rows) {
		return nil, fmt.Errorf("export: %d rows of cells for %d rows", len(d.Cells), len(d.Rows))
	}
	for r, row := range d.Cells {
		if len(row) != len(d.Tokens) {
			return nil, fmt.Errorf("export: row %s has %d cells for %d tokens", clean(d.Rows[r].Name), len(row), len(d.Tokens))
		}
	}
	if err := opt.Validate(d.Target != nil); err != nil {
		return nil, err
	}
	pal, err := theme.Lookup(opt.Palette)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	l := &layout{d: d, metric: opt.Metric, scale: NewScale(opt.Metric, d.Model.VocabSize, d.maxValue(opt.Metric), opt.FixedScale),
		label: opt.Metric.Label(), pal: pal, cols: len(d.Tokens), rowH: cellH}
	switch opt.Metric {
	case MetricTarget:
		l.label = "p(target " + clean(d.Target.Display) + ")"
	case MetricDeltaTarget:
		l.label = "Δp(target " + clean(d.Target.Display) + ") (B − A)"
	}
	if opt.Metric.Pairwise() {
		if err := l.setComparison(opt); err != nil {
			return nil, err
		}
	}
	// Ink and paper are the contrast colours theme picks for the ends of its
	// gray scale (black text on the light end, white on the dark end).
	l.inkRGB = theme.Gray.TextOn(1, theme.TrueColor)
	l.paperRGB = theme.Gray.TextOn(0, theme.TrueColor)
	l.ink, l.paper = hexOf(l.inkRGB), hexOf(l.paperRGB)
	l.muted = hexOf(theme.Gray.At(0.4))

	widest := minChars
	for p, t := range d.Tokens {
		widest = max(widest, ansi.StringWidth(t.Display))
		for r := range d.Cells {
			if top := d.Cells[r][p].Top; len(top) > 0 {
				widest = max(widest, ansi.StringWidth(top[0].Display))
			}
		}
	}
	if l.cmp != nil {
		for _, t := range l.cmp.B.Tokens {
			widest = max(widest, ansi.StringWidth(t.Display))
		}
		for _, row := range l.cmp.Cells {
			for _, c := range row {
				if c.Top1Differs && len(c.TopB) > 0 {
					widest = max(widest, ansi.StringWidth(c.TopB[0].Display)+2) // "≠ "
				}
			}
		}
		for _, row := range l.cmp.UnpairedB {
			for _, c := range row {
				if len(c.TopB) > 0 {
					widest = max(widest, ansi.StringWidth(c.TopB[0].Display))
				}
			}
		}
	}
	l.chars = min(widest, maxChars)
	l.cellW = float64(l.chars)*charW + 10

	labelChars := 0
	for i, r := range d.Rows {
		labelChars = max(labelChars, len(l.rowLabel(i, r)))
	}
	l.labelW = float64(labelChars)*charW + 10

	l.gridX = margin + l.labelW
	l.gridY = margin + titleLines*18 + 8 + cellH // title, then the next-token labels
	l.gridW = float64(l.cols) * l.cellW
	l.gridH = float64(len(d.Rows)) * l.rowH
	l.barX = l.gridX + l.gridW + 28
	l.barY = l.gridY
	l.barH = max(l.gridH, minBarH)
	tickChars := 0
	for _, t := range l.scale.Ticks() {
		tickChars = max(tickChars, len(t.Label))
	}
	right := max(l.barX+barW+6+float64(tickChars)*charW, l.barX+float64(utf8.RuneCountInString(l.label))*7)
	l.width = max(right+margin, minWidth)
	below := cellH + 22 // the input tokens, the note
	if l.cmp != nil && tokensDiffer(d) {
		below += 16 // B's tokens
	}
	if l.cmp != nil && l.cols > l.cmp.Columns {
		below += 14 // the note on the unpaired columns
	}
	l.height = max(l.gridY+l.gridH+below, l.barY+l.barH+12) + margin
	return l, nil
}

// setComparison makes the layout draw the document's comparison: the
// longer prompt's columns, two lines per cell, the diverging palette that
// goes with palette and a scale up to the comparison's largest KL.
func (l *layout) setComparison(opt Options) error {
	d := l.d
	cmp := d.Compare
	if cmp == nil {
		return fmt.Errorf("export: metric %s colours a comparison, and the document has none", l.metric)
	}
	if len(cmp.Cells) != len(d.Rows) || cmp.OffsetA+cmp.Columns != len(d.Tokens) || cmp.OffsetB+cmp.Columns != len(cmp.B.Tokens) {
		return fmt.Errorf("export: the comparison's %d rows × %d columns do not fit %d rows, %d and %d tokens",
			len(cmp.Cells), cmp.Columns, len(d.Rows), len(d.Tokens), len(cmp.B.Tokens))
	}
	for _, row := range cmp.Cells {
		if len(row) != cmp.Columns {
			return fmt.Errorf("export: a row of the comparison has %d cells for %d columns", len(row), cmp.Columns)
		}
	}
	if u := cmp.UnpairedB; len(u) > 0 && len(u) != len(d.Rows) {
		return fmt.Errorf("export: the comparison has unpaired cells of B for %d rows of %d", len(u), len(d.Rows))
	}
	for _, row := range cmp.UnpairedB {
		if len(row) != cmp.OffsetB {
			return fmt.Errorf("export: the comparison has %d unpaired cells of B in a row, for %d positions", len(row), cmp.OffsetB)
		}
	}
	l.cmp = cmp
	l.cols = cmp.width(len(d.Tokens))
	l.rowH = 2*cellH - 6
	l.pal = theme.DivergingFor(opt.Palette)
	l.scale = NewScale(l.metric, d.Model.VocabSize, cmp.maxKLAB(), opt.FixedScale)
	return nil
}

// rowLabel is a row's name on the left; the output row says so.
func (l *layout) rowLabel(i int, r RowInfo) string {
	if i == len(l.d.Rows)-1 {
		return "output " + r.Name
	}
	return r.Name
}

// rowY is the top of row r: the output row (the last) is drawn first.
func (l *layout) rowY(r int) float64 {
	return l.gridY + float64(len(l.d.Rows)-1-r)*l.rowH
}

// colX is the left edge of position p.
func (l *layout) colX(p int) float64 { return l.gridX + float64(p)*l.cellW }

// value is the metric's raw value of a cell.
func (l *layout) value(c CellInfo) float64 { return l.metric.Value(c.stats()) }

// cellColor returns a cell's fill and text colours: the palette's colour of
// its value, or the paper and muted colours where the value is not finite.
func (l *layout) cellColor(c CellInfo) (fill, text string) {
	t := l.scale.T(l.value(c))
	if math.IsNaN(t) || c.NonFinite != "" {
		return l.paper, l.muted
	}
	bg := l.pal.At(t)
	return hexOf(bg), l.textOn(bg)
}

// textOn returns the ink or the paper colour, whichever has the larger WCAG
// contrast ratio on bg. A figure is read at small sizes and printed, so it
// picks by contrast (at least 4.58:1 for any bg) rather than by theme's
// lightness threshold, which puts white on viridis' mid greens (3.3:1).
func (l *layout) textOn(bg color.Color) string {
	if contrast(bg, l.inkRGB) >= contrast(bg, l.paperRGB) {
		return l.ink
	}
	return l.paper
}

// contrast is the WCAG 2 contrast ratio of two colours, 1..21.
func contrast(a, b color.Color) float64 {
	la, lb := luminance(a), luminance(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

// luminance is the WCAG 2 relative luminance of an sRGB colour.
func luminance(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	ch := func(v uint32) float64 {
		x := float64(v) / 0xffff
		if x <= 0.04045 {
			return x / 12.92
		}
		return math.Pow((x+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(r) + 0.7152*ch(g) + 0.0722*ch(b)
}

// fit cuts a display string to the cell's width, marking the cut with "…".
func (l *layout) fit(s string) string {
	if ansi.StringWidth(s) <= l.chars {
		return s
	}
	return ansi.Truncate(s, l.chars, "…")
}

// nextToken returns the input token after position p, if any.
func (l *layout) nextToken(p int) (TokenRef, bool) {
	if p+1 < len(l.d.Tokens) {
		return l.d.Tokens[p+1], true
	}
	return TokenRef{}, false
}

// hexOf formats a colour as "#rrggbb".
func hexOf(c color.Color) string {
	r, g, b, _ := c.RGBA()
	return fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8)
}

// clean makes free text (a prompt, a model path) safe and readable in a
// one-line label: newlines and tabs become ↵ and ⇥, other control characters
// and characters XML forbids become <U+XXXX>, invalid UTF-8 becomes U+FFFD.
func clean(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '\n':
			b.WriteString("↵")
		case r == '\t':
			b.WriteString("⇥")
		case r < 0x20 || (r >= 0x7f && r < 0xa0) || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF):
			fmt.Fprintf(&b, "<U+%04X>", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
