package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// helpView is the overlay listing every key, generated from the KeyMap so
// that it always matches what Update does, in sections by focus (anywhere,
// prompt, grid, inputs). The sections flow into as many columns as fit; what
// does not fit the height scrolls. It is drawn in a box over the grid.
type helpView struct {
	keys   KeyMap
	styles Styles
	scroll int // first body line shown
}

// short renders the one-line hint for the status bar in width cells.
func (h helpView) short(f focus, width int) string {
	m := help.New()
	m.Styles = h.styles.Help
	m.SetWidth(width)
	return m.ShortHelpView(h.keys.shortHelp(f))
}

// section draws one group: its title, then a line per binding with the
// keys in a column of keyW cells.
func (h helpView) section(g keyGroup, keyW int) []string {
	st := h.styles
	lines := []string{st.Title.Render(g.title)}
	for _, b := range g.keys {
		hb := b.Help()
		lines = append(lines, st.Help.FullKey.Render(fit(hb.Key, keyW))+" "+st.Help.FullDesc.Render(hb.Desc))
	}
	return lines
}

// body lays the sections out in columns that fit width cells.
func (h helpView) body(width int) []string {
	groups := h.keys.groups()
	keyW := 0
	for _, g := range groups {
		for _, b := range g.keys {
			keyW = max(keyW, lipgloss.Width(b.Help().Key))
		}
	}
	var blocks [][]string
	colW := 0
	for _, g := range groups {
		s := h.section(g, keyW)
		for _, l := range s {
			colW = max(colW, lipgloss.Width(l))
		}
		blocks = append(blocks, s)
	}
	colW = min(colW, width)
	ncol := max(1, (width+2)/(colW+2))
	// Balance the columns: fill each up to the total over ncol lines.
	total := 0
	for _, b := range blocks {
		total += len(b) + 1
	}
	perCol := (total + ncol - 1) / ncol
	var cols [][]string
	var cur []string
	for _, b := range blocks {
		if len(cur) > 0 && len(cur)+len(b) > perCol && len(cols) < ncol-1 {
			cols = append(cols, cur)
			cur = nil
		}
		if len(cur) > 0 {
			cur = append(cur, "")
		}
		cur = append(cur, b...)
	}
	cols = append(cols, cur)
	rows := 0
	for _, c := range cols {
		rows = max(rows, len(c))
	}
	out := make([]string, rows)
	for i := range rows {
		var b strings.Builder
		for j, c := range cols {
			if j > 0 {
				b.WriteString("  ")
			}
			l := ""
			if i < len(c) {
				l = c[i]
			}
			b.WriteString(fitStyled(l, colW))
		}
		out[i] = b.String()
	}
	return out
}

// pageLines is how many body lines the box shows at height.
func (h helpView) pageLines(height int) int { return max(1, height-5) } // borders, title, blank, footer

// scrollBy moves the view by n lines within the body drawn for width and
// height.
func (h *helpView) scrollBy(n, width, height int) {
	body := h.body(h.innerWidth(width))
	h.scroll = clampInt(h.scroll+n, 0, max(0, len(body)-h.pageLines(height)))
}

// innerWidth is the width of the box's text at a screen width: at most
// three columns of sections, so on a wide screen the grid shows around it.
func (h helpView) innerWidth(width int) int { return max(10, min(width-4, 3*44+4)) }

// View draws the box for a screen area of width×height cells: a title, the
// visible body lines, and a footer saying how to scroll and close.
func (h helpView) View(width, height int) string {
	st := h.styles
	body := h.body(h.innerWidth(width))
	page := h.pageLines(height)
	scroll := clampInt(h.scroll, 0, max(0, len(body)-page))
	shown := body[scroll:min(len(body), scroll+page)]
	title := st.Title.Render("logitlens keys")
	footer := "esc, ? or q closes"
	if len(body) > page {
		// The longest footer that fits the box.
		for _, f := range []string{"↑/↓ pgup/pgdn scroll · " + footer, "↑/↓ scroll · esc closes", "esc closes"} {
			if footer = f; lipgloss.Width(f) <= h.innerWidth(width) {
				break
			}
		}
		title += st.Muted.Render(linesSpan(scroll+1, scroll+len(shown), len(body)))
	}
	text := title + "\n\n" + strings.Join(shown, "\n") + "\n" + st.Muted.Render(footer)
	return st.Box.MaxWidth(width).Render(text)
}

// linesSpan says which lines of how many show, e.g. " (lines 1–20 of 64)".
func linesSpan(a, b, n int) string { return fmt.Sprintf(" (lines %d–%d of %d)", a, b, n) }

// overlay draws box over base (both lines of cells), centred in a
// width×height area; base shows around it.
func overlay(base, box string, width, height int) string {
	lines := strings.Split(base, "\n")
	for len(lines) < height {
		lines = append(lines, "")
	}
	boxLines := strings.Split(box, "\n")
	bw := 0
	for _, l := range boxLines {
		bw = max(bw, lipgloss.Width(l))
	}
	bw = min(bw, width)
	x := max(0, (width-bw)/2)
	y := max(0, (height-len(boxLines))/2)
	for i, bl := range boxLines {
		if y+i >= len(lines) {
			break
		}
		l := fitStyled(lines[y+i], width)
		lines[y+i] = ansi.Cut(l, 0, x) + fitStyled(bl, bw) + ansi.Cut(l, x+bw, width)
	}
	return strings.Join(lines[:height], "\n")
}
