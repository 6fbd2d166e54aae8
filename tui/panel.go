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
	targetText string // printable pinned target; "" for none
	side       bool   // beside the grid (else below)
	note       string // why this model (e.g. a fallback); "" for none
	err        string // why the lens failed; "" while it computes or when it succeeded
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
		where = fmt.Sprintf("layer %s (model output)", d.rows[p.row].Name)
	}
	// Positions count from 1 on screen, as the status bar's token count.
	lines := []string{
		st.Title.Render(where) + st.Muted.Render(fmt.Sprintf(" · pos %d of %d", p.col+1, d.columns())),
		st.Muted.Render("input  ") + d.headers[p.col] + st.Muted.Render(fmt.Sprintf(" #%d", d.ids[p.col])),
	}
	c, ok := d.cell(p.row, p.col)
	next := st.Muted.Render("next   ")
	switch id := d.nextID(p.col); {
	case id < 0:
		next += st.Muted.Render("(end of prompt)")
	case p.col+1 < d.columns():
		next += d.headers[p.col+1] + st.Muted.Render(fmt.Sprintf(" #%d", id))
	default:
		next += d.unread + st.Muted.Render(fmt.Sprintf(" #%d", id)) + st.Warn.Render(" (not read)")
	}
	if ok && c.NextRank >= 0 {
		next += st.Muted.Render(" rank ") + fmt.Sprint(c.NextRank) + st.Muted.Render(" p ") + display.Prob(c.NextProb)
		if len(c.Top) > 0 && c.Top[0].ID == d.nextID(p.col) {
			next += st.OK.Render(" = top-1")
		}
	}
	lines = append(lines, next)
	switch {
	case !ok && p.err != "":
		// The status bar cuts a long error; here it wraps.
		return append(lines, strings.Split(st.Error.Render(lipgloss.Wrap(p.err, max(10, width), " ")), "\n")...)
	case !ok:
		return append(lines, st.Muted.Render("computing…"))
	}
	lines = append(lines,
		st.Muted.Render("entropy ")+fmt.Sprintf("%.2f", c.Entropy)+st.Muted.Render(" nats  KL→final ")+fmt.Sprintf("%.2f", c.KLToFinal))
	if final := d.cells[len(d.rows)-1][p.col]; len(final.Top) > 0 {
		lines = append(lines, st.Muted.Render("final  ")+p.text(final.Top[0].ID)+
			st.Muted.Render(" rank ")+fmt.Sprint(c.FinalTop1Rank)+st.Muted.Render(" p ")+display.Prob(c.FinalTop1Prob))
	}
	if p.targetText != "" && c.TargetRank >= 0 {
		lines = append(lines, st.Muted.Render("target ")+p.targetText+
			st.Muted.Render(" rank ")+fmt.Sprint(c.TargetRank)+st.Muted.Render(" p ")+display.Prob(c.TargetProb))
	}
	return lines
}

// topK returns up to n lines of the cursor cell's predictions in width
// cells: rank, token, bar, probability.
func (p panel) topK(width, n int) []string {
	c, ok := p.data.cell(p.row, p.col)
	if !ok || n <= 0 {
		return nil
	}
	st := p.styles
	tokW := clampInt(width/3, 6, 14)
	barW := max(0, width-3-1-tokW-1-1-6)
	var lines []string
	for i, pr := range c.Top {
		if i == n {
			break
		}
		line := st.Muted.Render(fmt.Sprintf("%2d ", i+1)) + fit(p.text(pr.ID), tokW) + " " +
			st.Bar.Render(bar(pr.Prob, barW)) + " " + fitLeft(display.Prob(pr.Prob), 6)
		lines = append(lines, line)
	}
	return lines
}

// legend returns the metric's name and its colour scale.
func (p panel) legend(width int) []string {
	scale := export.NewScale(p.metric, 0, 0, p.fixed)
	if p.data != nil {
		scale = export.NewScale(p.metric, p.data.vocab, p.data.maxValue(p.metric), p.fixed)
	}
	return []string{
		p.styles.Muted.Render("colour ") + p.metric.Label() + p.styles.Muted.Render(" (m)"),
		p.styles.legend(scale, width),
	}
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
