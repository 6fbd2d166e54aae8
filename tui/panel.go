package tui

import (
	"fmt"
	"strings"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/inference"

	"charm.land/lipgloss/v2"
)

// panel describes the cursor cell: where it is, the input and actual next
// token, its top-k with probability bars, entropy, KL to final, the final
// top-1's and the target's rank and probability, and the colour legend.
// Beside the grid it stacks everything; below it, on narrow terminals, the
// statistics and the top-k sit side by side.
type panel struct {
	data       *lensData
	styles     Styles
	metric     export.Metric
	fixed      bool // kl and ce on 0..ln V
	text       func(id int) string
	row, col   int
	scroll     int    // first top-k entry shown when they do not all fit
	targetText string // printable pinned target; "" for none
	side       bool   // beside the grid (else below)
	note       string // why this model (e.g. a fallback); "" for none
	err        string // why the lens failed; "" while it computes or when it succeeded
	other      string // the cell's top-1 under both the logit and the tuned lens; "" for none
}

// noteLines wraps the model note to width, or returns nil.
func (p panel) noteLines(width int) []string {
	if p.note == "" || width < 10 {
		return nil
	}
	return strings.Split(p.styles.Warn.Render(lipgloss.Wrap(p.note, width, " ")), "\n")
}

// stats returns the statistics lines of the cursor cell, wrapped to width
// where they can be.
func (p panel) stats(width int) []string {
	st := p.styles
	d := p.data
	if d == nil || p.col < 0 || p.col >= d.columns() || p.row < 0 || p.row >= len(d.rows) {
		return []string{st.Muted.Render("no cell")}
	}
	last := p.row == len(d.rows)-1
	where := "layer " + rowLabel(d.rows[p.row], last)
	if d.rows[p.row].Kind == inference.Embed {
		where = "embedding"
	}
	if last {
		where = fmt.Sprintf("layer %s (output)", d.rows[p.row].Name)
	}
	mu := st.Muted.Render
	// Positions count from 1 on screen, as the status bar's token count.
	lines := flow(width, "  ", st.Title.Render(where), mu(fmt.Sprintf("· pos %d of %d", p.col+1, d.columns())))
	lines = append(lines, flow(width, "       ", mu("input  ")+d.headers[p.col], mu(fmt.Sprintf("#%d", d.ids[p.col])))...)
	c, ok := d.cell(p.row, p.col)
	next := []string{mu("next   ")}
	switch id := d.nextID(p.col); {
	case id < 0:
		next[0] += mu("(end of prompt)")
	case p.col+1 < d.columns():
		next[0] += d.headers[p.col+1]
		next = append(next, mu(fmt.Sprintf("#%d", id)))
	default:
		next[0] += d.unread
		next = append(next, mu(fmt.Sprintf("#%d", id)), st.Warn.Render("(not read)"))
	}
	if ok && c.NextRank >= 0 {
		next = append(next, mu("rank ")+fmt.Sprint(c.NextRank), mu("p ")+display.Prob(c.NextProb))
		if len(c.Top) > 0 && c.Top[0].ID == d.nextID(p.col) {
			next = append(next, st.OK.Render("= top-1"))
		}
	}
	lines = append(lines, flow(width, "       ", next...)...)
	switch {
	case !ok && p.err != "":
		// The status bar cuts a long error; here it wraps.
		return append(lines, strings.Split(st.Error.Render(lipgloss.Wrap(p.err, max(10, width), " ")), "\n")...)
	case !ok:
		return append(lines, mu("computing…"))
	}
	lines = append(lines, flow(width, "  ", mu("entropy ")+fmt.Sprintf("%.2f", c.Entropy)+mu(" nats"), mu(" KL→final ")+fmt.Sprintf("%.2f", c.KLToFinal))...)
	if final := d.cells[len(d.rows)-1][p.col]; len(final.Top) > 0 {
		lines = append(lines, flow(width, "       ", mu("final  ")+p.text(final.Top[0].ID),
			mu("rank ")+fmt.Sprint(c.FinalTop1Rank), mu("p ")+display.Prob(c.FinalTop1Prob))...)
	}
	lines = append(lines, flow(width, "  ", p.lockInLine()...)...)
	if p.targetText != "" && c.TargetRank >= 0 {
		lines = append(lines, flow(width, "       ", mu("target ")+p.targetText,
			mu("rank ")+fmt.Sprint(c.TargetRank), mu("p ")+display.Prob(c.TargetProb))...)
	}
	if p.other != "" {
		lines = append(lines, flow(width, "       ", p.other)...)
	}
	return lines
}

// topK returns up to n lines of the cursor cell's predictions in width
// cells: rank, token, id (when there is room), bar, probability. When the
// top-k is longer than n lines it scrolls from p.scroll, with a line saying
// how many more are above or below.
func (p panel) topK(width, n int) []string {
	c, ok := p.data.cell(p.row, p.col)
	if !ok || n <= 0 {
		return nil
	}
	st := p.styles
	tokW := clampInt(width/3, 6, 14)
	idW := 0
	if width >= 40 {
		idW = 7 // " #50256"
	}
	barW := max(0, width-3-1-tokW-idW-1-1-6)
	k := len(c.Top)
	first, last := 0, k // entries shown: [first, last)
	if k > n {
		// The last page needs only the line above; the others may need
		// both lines.
		first = clampInt(p.scroll, 0, max(0, k-(n-1)))
		room := n
		if first > 0 {
			room--
		}
		if first+room < k {
			room--
		}
		last = min(k, first+max(1, room))
	}
	var lines []string
	if first > 0 {
		lines = append(lines, st.Muted.Render(fmt.Sprintf("   ▲ %d more ([)", first)))
	}
	for i := first; i < last; i++ {
		pr := c.Top[i]
		line := st.Muted.Render(fmt.Sprintf("%2d ", i+1)) + fit(p.text(pr.ID), tokW)
		if idW > 0 {
			line += st.Muted.Render(fitLeft(fmt.Sprintf("#%d", pr.ID), idW))
		}
		line += " " + st.Bar.Render(bar(pr.Prob, barW)) + " " + fitLeft(display.Prob(pr.Prob), 6)
		lines = append(lines, line)
	}
	if last < k {
		lines = append(lines, st.Muted.Render(fmt.Sprintf("   ▼ %d more (])", k-last)))
	}
	return lines
}

// legend returns the metric's name and its colour scale.
func (p panel) legend(width int) []string {
	scale := export.NewScale(p.metric, 0, 0, p.fixed)
	if p.data != nil {
		scale = export.NewScale(p.metric, p.data.vocab, p.data.maxValue(p.metric), p.fixed)
	}
	// The label wraps rather than being cut ("KL(P_final ‖ P_row) (nats)"
	// fills a narrow panel).
	mu := p.styles.Muted.Render
	return append(flow(width, "  ", mu("colour"), p.metric.Label(), mu("(m)")), p.styles.legend(scale, width))
}

// View draws the panel in width×height cells.
func (p panel) View(width, height int) string {
	if width <= 0 || height <= 0 {
		return ""
	}
	var lines []string
	if p.side || width < 60 {
		// Stacked: statistics first, then as much top-k as fits, then the
		// legend when there is room for it.
		lines = append(lines, p.stats(width)...)
		legend := p.legend(width)
		room := height - len(lines) - 1
		if room-len(legend)-1 >= 3 {
			room -= len(legend) + 1
		} else {
			legend = nil
		}
		if tk := p.topK(width, room); len(tk) > 0 {
			lines = append(lines, "")
			lines = append(lines, tk...)
		}
		if legend != nil {
			lines = append(lines, "")
			lines = append(lines, legend...)
		}
		if note := p.noteLines(width); len(note) > 0 && height-len(lines)-1 > 0 {
			lines = append(lines, "")
			lines = append(lines, note[:min(len(note), height-len(lines))]...)
		}
	} else {
		leftW := min(44, width/2)
		left := append(p.stats(leftW-1), "")
		left = append(left, p.legend(leftW-1)...)
		if note := p.noteLines(leftW - 1); len(note) > 0 {
			left = append(left, "")
			left = append(left, note...)
		}
		right := p.topK(width-leftW-1, height)
		for i := 0; i < height && (i < len(left) || i < len(right)); i++ {
			var l, r string
			if i < len(left) {
				l = left[i]
			}
			if i < len(right) {
				r = right[i]
			}
			lines = append(lines, fitStyled(l, leftW)+" "+r)
		}
	}
	for i := range lines {
		lines[i] = fitStyled(lines[i], width)
	}
	if len(lines) > height {
		lines = lines[:height]
	}
	return strings.Join(lines, "\n")
}

// fitStyled cuts or pads a styled line to exactly w cells. Zero cells is
// the empty string: lipgloss reads MaxWidth(0) as no limit.
func fitStyled(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if lipgloss.Width(s) > w {
		return lipgloss.NewStyle().MaxWidth(w).Render(s)
	}
	return s + strings.Repeat(" ", w-lipgloss.Width(s))
}

// bar draws p in [0,1] as a bar of w cells with eighth-cell resolution.
func bar(p float64, w int) string {
	if w <= 0 {
		return ""
	}
	eighths := int(clamp01(p)*float64(w*8) + 0.5)
	full, part := eighths/8, eighths%8
	s := strings.Repeat("█", full)
	if part > 0 {
		s += string([]rune(" ▏▎▍▌▋▊▉")[part])
	}
	return s + strings.Repeat(" ", w-lipgloss.Width(s))
}

func clamp01(v float64) float64 { return min(max(v, 0), 1) }

// lockInLine says where the cursor column's prediction locks in: the
// lowest row from which the top-1 is the output's (parts for flow).
func (p panel) lockInLine() []string {
	st, d := p.styles, p.data
	r := d.lockIn(p.col)
	out := len(d.rows) - 1
	switch {
	case r < 0:
		return []string{st.Muted.Render("no lock-in:"), st.Muted.Render("the output has no top-1")}
	case r == out:
		return []string{st.Muted.Render("locks in only at the output")}
	}
	where := "layer " + d.rows[r].Name
	if r == 0 {
		where = "the embedding"
	}
	parts := []string{st.Muted.Render("locks in at ") + where}
	if r <= p.row && p.row < out {
		parts = append(parts, st.Muted.Render("· row agrees"))
	}
	return parts
}

// flow joins styled parts with spaces into lines of at most width cells,
// starting a new line, after indent, where the next part does not fit; a
// part longer than a line is cut later by the panel.
func flow(width int, indent string, parts ...string) []string {
	var lines []string
	cur := ""
	for i, part := range parts {
		switch {
		case i == 0:
			cur = part
		case lipgloss.Width(cur)+1+lipgloss.Width(part) <= width:
			cur += " " + part
		default:
			lines = append(lines, cur)
			cur = indent + part
		}
	}
	return append(lines, cur)
}
