package export

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/logitlens/logitlens/display"
)

// writeSVG writes the lens heatmap as one self-contained SVG file: no
// scripts, no external fonts or images. Each cell carries a <title> with its
// top-1 and the metric's value, which viewers show as a tooltip.
func writeSVG(w *bytes.Buffer, d *Document, opt Options) error {
	l, err := newLayout(d, opt)
	if err != nil {
		return err
	}
	w.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
	l.writeSVG(w, true)
	return nil
}

// writeSVG writes the <svg> element. standalone adds the namespace and the
// per-cell tooltips; the HTML page leaves both out (its panel replaces the
// tooltips, and inline SVG needs no namespace).
func (l *layout) writeSVG(w *bytes.Buffer, standalone bool) {
	ns := ""
	if standalone {
		ns = ` xmlns="http://www.w3.org/2000/svg"`
	}
	fmt.Fprintf(w, `<svg%s id="lens" width="%g" height="%g" viewBox="0 0 %g %g" font-family="%s" font-size="%g" role="img">`+"\n",
		ns, l.width, l.height, l.width, l.height, monoFamily, fontSize)
	fmt.Fprintf(w, "<title>%s</title>\n", esc(l.title()))
	fmt.Fprintf(w, "<desc>%s</desc>\n", esc(l.description()))
	fmt.Fprintf(w, `<rect x="0" y="0" width="%g" height="%g" fill="%s"/>`+"\n", l.width, l.height, l.paper)
	l.writeTitle(w)
	if l.cmp != nil {
		l.writeCompareAxes(w)
		l.writeCompareCells(w, standalone)
	} else {
		l.writeAxes(w)
		l.writeCells(w, standalone)
	}
	if !standalone {
		// The page's cursor: a light frame under a dark one, visible on
		// every cell colour; the script moves it.
		fmt.Fprintf(w, `<rect class="cursor" visibility="hidden" fill="none" stroke="%s" stroke-width="5"/>`+"\n", l.paper)
		fmt.Fprintf(w, `<rect class="cursor" visibility="hidden" fill="none" stroke="%s" stroke-width="2"/>`+"\n", l.ink)
	}
	l.writeBar(w)
	w.WriteString("</svg>\n")
}

// title is the figure's one-line name: model and prompt.
func (l *layout) title() string {
	if l.cmp != nil {
		return fmt.Sprintf("%s of %s on %q compared with B (%s)", clean(l.d.Lens.Name()), clean(l.d.Model.ID), clean(l.d.Prompt), clean(runBName(l.cmp.B)))
	}
	return fmt.Sprintf("%s of %s on %q", clean(l.d.Lens.Name()), clean(l.d.Model.ID), clean(l.d.Prompt))
}

// description states what the picture encodes, for screen readers and for
// anyone reading the file.
func (l *layout) description() string {
	c := l.d.Conventions
	s := "Rows: lens rows, the model's output at the top"
	if c.Rows != "" {
		s += " (" + c.Rows + ")"
	}
	if l.cmp != nil {
		s += ". Columns: run A's and run B's tokens, right-aligned (the last tokens face each other); position t predicts token t+1. Cell text: A's top-1 token and, marked ≠, B's where it differs. Colour: " +
			l.label + " on the diverging " + l.pal.Name + " palette, white where B equals A; uncoloured columns, left of the dashed line, have no partner and show their run's own top-1."
	} else {
		s += ". Columns: input tokens; position t predicts token t+1. Cell text: the row's top-1 token, bold where it is the next input token. Colour: " +
			l.label + " on the " + l.pal.Name + " palette."
	}
	for _, x := range []string{c.Lens, c.Units, c.Rank} {
		if x != "" {
			s += " " + strings.ToUpper(x[:1]) + x[1:] + "."
		}
	}
	return s
}

// writeTitle writes the three header lines.
func (l *layout) writeTitle(w *bytes.Buffer) {
	d := l.d
	room := int((l.width - 2*margin) / 7.5) // characters of the sans title font
	model := fmt.Sprintf("logitlens · %s · %d layers · vocab %d · %s", clean(d.Model.ID), d.Model.NLayer, d.Model.VocabSize, clean(d.Lens.Name()))
	prompt := "prompt: “" + clean(d.Prompt) + "”"
	if d.BOS {
		prompt += " (after <|endoftext|>)"
	}
	meta := fmt.Sprintf("colour: %s · palette %s · bold: top-1 = next input token", l.label, l.pal.Name)
	if l.cmp != nil {
		prompt = "A: “" + clean(d.Prompt) + "” · B changes the " + l.cmp.B.Differs + ": " + clean(runBName(l.cmp.B))
		if d.BOS {
			prompt += " (both after <|endoftext|>)"
		}
		meta = fmt.Sprintf("colour: %s · palette %s · ≠: B's top-1 where it differs from A's · right-aligned", l.label, l.pal.Name)
	}
	if d.Device != "" {
		meta += " · " + clean(d.Device)
	}
	lines := []struct {
		text, weight, fill string
		size               float64
	}{
		{cut(model, room), "bold", l.ink, 15},
		{cut(prompt, room), "normal", l.ink, 13},
		{cut(meta, int(float64(room)*1.1)), "normal", l.muted, 12},
	}
	for i, ln := range lines {
		fmt.Fprintf(w, `<text class="title" x="%g" y="%g" font-family="%s" font-size="%g" font-weight="%s" fill="%s" xml:space="preserve">%s</text>`+"\n",
			margin, margin+14+float64(i)*18, sansFamily, ln.size, ln.weight, ln.fill, esc(ln.text))
	}
}

// writeRowLabels writes each row's label left of the grid, the output's
// in bold.
func (l *layout) writeRowLabels(w *bytes.Buffer) {
	d := l.d
	for r, row := range d.Rows {
		y := l.rowY(r) + l.rowH/2 + 4
		class, weight := "row-label", "normal"
		if r == len(d.Rows)-1 {
			class, weight = "row-label output", "bold"
		}
		fmt.Fprintf(w, `<text class="%s" x="%g" y="%g" text-anchor="end" font-weight="%s" fill="%s">%s</text>`+"\n",
			class, l.gridX-6, y, weight, l.ink, esc(l.rowLabel(r, row)))
	}
}

// writeAxes writes the row labels on the left, the next tokens above the
// grid and the input tokens below it.
func (l *layout) writeAxes(w *bytes.Buffer) {
	d := l.d
	l.writeRowLabels(w)
	fmt.Fprintf(w, `<text x="%g" y="%g" text-anchor="end" fill="%s">next →</text>`+"\n", l.gridX-6, l.gridY-7, l.muted)
	bottom := l.gridY + l.gridH
	fmt.Fprintf(w, `<text x="%g" y="%g" text-anchor="end" fill="%s">input →</text>`+"\n", l.gridX-6, bottom+15, l.muted)
	for p, t := range d.Tokens {
		x := l.colX(p) + l.cellW/2
		fmt.Fprintf(w, `<text class="col-label" x="%g" y="%g" text-anchor="middle" fill="%s">%s</text>`+"\n",
			x, bottom+15, l.ink, esc(l.fit(clean(t.Display))))
		if next, ok := l.nextToken(p); ok {
			fmt.Fprintf(w, `<text class="next-label" x="%g" y="%g" text-anchor="middle" fill="%s">%s</text>`+"\n",
				x, l.gridY-7, l.muted, esc(l.fit(clean(next.Display))))
		}
	}
	fmt.Fprintf(w, `<text x="%g" y="%g" font-family="%s" font-size="11" fill="%s">position t predicts token t+1 · ln_f applied once per row</text>`+"\n",
		l.gridX, bottom+33, sansFamily, l.muted)
}

// writeCells writes one rect and one text per cell, then the frame that
// marks the output row.
func (l *layout) writeCells(w *bytes.Buffer, tooltips bool) {
	d := l.d
	// crispEdges: no anti-aliased seams between neighbouring cells.
	w.WriteString(`<g class="cells" shape-rendering="crispEdges">` + "\n")
	for r := range d.Rows {
		for p, c := range d.Cells[r] {
			fill, text := l.cellColor(c)
			x, y := l.colX(p), l.rowY(r)
			fmt.Fprintf(w, `<rect class="cell" data-r="%d" data-p="%d" x="%g" y="%g" width="%g" height="%g" fill="%s">`,
				r, p, x, y, l.cellW, cellH, fill)
			if tooltips {
				fmt.Fprintf(w, "<title>%s</title>", esc(l.tooltip(r, p)))
			}
			w.WriteString("</rect>\n")
			label, weight := "—", "normal"
			if len(c.Top) > 0 {
				label = c.Top[0].Display
				if next, ok := l.nextToken(p); ok && next.ID == c.Top[0].ID {
					weight = "bold"
				}
			}
			fmt.Fprintf(w, `<text class="top1" x="%g" y="%g" text-anchor="middle" font-weight="%s" fill="%s">%s</text>`+"\n",
				x+l.cellW/2, y+cellH/2+4, weight, text, esc(l.fit(clean(label))))
		}
	}
	w.WriteString("</g>\n")
	out := len(d.Rows) - 1
	fmt.Fprintf(w, `<rect class="output-row" x="%g" y="%g" width="%g" height="%g" fill="none" stroke="%s" stroke-width="2"/>`+"\n",
		l.gridX-1, l.rowY(out)-1, l.gridW+2, l.rowH+2, l.ink)
}

// tooltip is a cell's one-line summary for standalone SVG viewers.
func (l *layout) tooltip(r, p int) string {
	c := l.d.Cells[r][p]
	var b strings.Builder
	fmt.Fprintf(&b, "row %s, position %d (%s)", l.d.Rows[r].Name, p, clean(l.d.Tokens[p].Display))
	for i, t := range c.Top {
		if i == 3 {
			break
		}
		fmt.Fprintf(&b, "; %s %s", clean(t.Display), display.Prob(float64(t.Prob)))
	}
	fmt.Fprintf(&b, "; %s = %s", l.label, l.metric.Format(l.value(c)))
	if c.NonFinite != "" {
		fmt.Fprintf(&b, "; not finite: %s", c.NonFinite)
	}
	return b.String()
}

// writeBar writes the colour bar: flat slices from t=0 at the bottom to t=1
// at the top (flat, not a gradient, because SVG gradients blend in sRGB and
// the palette is interpolated in OkLab), its ticks and its title.
func (l *layout) writeBar(w *bytes.Buffer) {
	w.WriteString(`<g class="colorbar" shape-rendering="crispEdges">` + "\n")
	fmt.Fprintf(w, `<text x="%g" y="%g" font-family="%s" font-size="12" fill="%s">%s</text>`+"\n",
		l.barX, l.barY-14, sansFamily, l.ink, esc(l.label))
	h := l.barH / barSlices
	lo, hi := l.scale.Range()
	for i := range barSlices {
		t := lo + (hi-lo)*(float64(i)+0.5)/barSlices
		y := l.barY + l.barH - float64(i+1)*h
		fmt.Fprintf(w, `<rect x="%g" y="%.2f" width="%g" height="%.2f" fill="%s"/>`+"\n", l.barX, y, barW, h+0.3, hexOf(l.pal.At(t)))
	}
	fmt.Fprintf(w, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="%s" stroke-width="0.5"/>`+"\n",
		l.barX, l.barY, barW, l.barH, l.muted)
	for _, t := range l.scale.Ticks() {
		y := l.barY + l.barH - (t.T-lo)/(hi-lo)*l.barH
		fmt.Fprintf(w, `<line x1="%g" y1="%.2f" x2="%g" y2="%.2f" stroke="%s"/>`+"\n", l.barX+barW, y, l.barX+barW+4, y, l.ink)
		fmt.Fprintf(w, `<text class="tick" x="%g" y="%.2f" fill="%s">%s</text>`+"\n", l.barX+barW+6, y+4, l.ink, esc(t.Label))
	}
	w.WriteString("</g>\n")
}

// esc escapes text for XML character data and attribute values.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
