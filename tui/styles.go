package tui

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/theme"
)

// Styles is every style of the explorer, built once from the theme's scale
// and semantic colours for the terminal's profile and passed down to the
// components.
type Styles struct {
	scale   *theme.Scale
	profile theme.Profile

	Help help.Styles

	PromptLabel        lipgloss.Style // the prompt's label while it has focus
	PromptLabelBlurred lipgloss.Style
	PromptEscape       lipgloss.Style // ⇥, ␍, trailing-space dots and escapes drawn for the prompt's invisible characters
	PromptOverflow     lipgloss.Style // prompt text past what the model reads

	Title        lipgloss.Style
	Muted        lipgloss.Style
	Accent       lipgloss.Style
	Error        lipgloss.Style
	Warn         lipgloss.Style
	OK           lipgloss.Style
	Header       lipgloss.Style
	HeaderCursor lipgloss.Style
	NextCursor   lipgloss.Style // the cursor column's next token
	Label        lipgloss.Style
	LabelCursor  lipgloss.Style
	LabelOutput  lipgloss.Style
	Pending      lipgloss.Style
	Bar          lipgloss.Style
	Box          lipgloss.Style
}

// newStyles builds the styles for a scale under a profile.
func newStyles(scale *theme.Scale, profile theme.Profile) Styles {
	sem := theme.DefaultSemantic()
	fg := func(c color.Color) lipgloss.Style { return lipgloss.NewStyle().Foreground(c) }
	s := Styles{
		scale:        scale,
		profile:      profile,
		Title:        lipgloss.NewStyle().Bold(true),
		Muted:        fg(sem.Muted),
		Accent:       fg(sem.Accent).Bold(true),
		Error:        fg(sem.Error).Bold(true),
		Warn:         fg(sem.Warn),
		OK:           fg(sem.OK),
		Header:       lipgloss.NewStyle(),
		HeaderCursor: fg(sem.Accent).Bold(true).Underline(true),
		NextCursor:   fg(sem.Accent).Underline(true),
		Label:        fg(sem.Muted),
		LabelCursor:  fg(sem.Accent).Bold(true),
		LabelOutput:  fg(sem.Output).Bold(true),
		Pending:      fg(sem.Muted),
		Bar:          fg(sem.BarFill),
		Box:          lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(sem.Accent).Padding(0, 1),
	}
	s.PromptLabel = fg(sem.Accent).Bold(true)
	s.PromptLabelBlurred = fg(sem.Muted)
	s.PromptEscape = fg(sem.Muted)
	// Struck through as well as dimmed: the mark must survive NO_COLOR.
	s.PromptOverflow = fg(sem.Muted).Strikethrough(true)
	s.Help = help.Styles{
		Ellipsis:       fg(sem.Muted),
		ShortKey:       fg(sem.Accent),
		ShortDesc:      fg(sem.Muted),
		ShortSeparator: fg(sem.Muted),
		FullKey:        fg(sem.Accent),
		FullDesc:       lipgloss.NewStyle(),
		FullSeparator:  fg(sem.Muted),
	}
	return s
}

// glyphs reports whether cells show the glyph ramp instead of colour.
func (s Styles) glyphs() bool { return s.profile < theme.ANSI256 }

// cellMarks are what a cell shows besides its value.
type cellMarks struct {
	cursor bool // the cursor is on it
	next   bool // its top-1 is the token that comes next
	lock   bool // its column's prediction locks in here
}

// cell draws one heatmap cell of width w for value t in [0,1]: a lead cell,
// then the text, on a background from the scale, or after the ramp glyph
// without colour; a NaN t (no value, e.g. the next token at the last
// position) is drawn without colour. The marks never rely on colour alone,
// so they show in every palette and without colour: a top-1 that is the
// next token is bold and underlined; a column's lock-in cell has ▲ for its
// lead; the cursor cell is framed in brackets
// ("[" for the lead cell, "]" for the last) and drawn in reverse video.
func (s Styles) cell(t float64, text string, w int, mk cellMarks) string {
	if w <= 0 {
		return ""
	}
	lead := " "
	st := lipgloss.NewStyle()
	switch {
	case math.IsNaN(t):
		st = s.Muted
		lead = "·"
	case s.glyphs():
		lead = theme.Glyph(t)
	default:
		st = st.Background(s.scale.Color(t, s.profile)).Foreground(s.scale.TextOn(t, s.profile))
	}
	if mk.lock {
		lead = "▲" // in place of the value glyph: the panel gives the value
	}
	textSt := st
	if mk.next {
		textSt = textSt.Bold(true).Underline(true)
	}
	if !mk.cursor || w < 3 {
		return st.Render(lead) + textSt.Render(fit(text, w-1))
	}
	st, textSt = st.Reverse(true).Bold(true), textSt.Reverse(true).Bold(true)
	return st.Render("[") + textSt.Render(fit(text, w-2)) + st.Render("]")
}

// pending draws a cell whose column has not arrived yet: "·", then the
// previous lens's top-1 (old, "" if none) faint and without colour, so a
// recompute dims the grid rather than blanking it.
func (s Styles) pending(old string, w int, cursor bool) string {
	st := s.Pending.Faint(true)
	if cursor && w >= 3 {
		return st.Reverse(true).Render("[" + fit(old, w-2) + "]")
	}
	return s.Pending.Render("·") + st.Render(fit(old, w-1))
}

// legend draws the scale from its dark to its bright end in about width
// cells, labelled with the metric's ends; without colour it lists the
// glyphs with the lower bound of each fifth.
func (s Styles) legend(scale export.Scale, width int) string {
	dark, bright := scale.Ends()
	if s.glyphs() {
		var b strings.Builder
		b.WriteString(dark + " ")
		for i, g := range theme.Glyphs() {
			fmt.Fprintf(&b, "[%s]", g)
			if i < len(theme.Glyphs())-1 {
				b.WriteString("·")
			}
		}
		b.WriteString(" " + bright)
		return ansi.Truncate(b.String(), width, "…")
	}
	n := max(4, min(16, width-lipgloss.Width(dark)-lipgloss.Width(bright)-2))
	var b strings.Builder
	b.WriteString(dark + " ")
	for i := range n {
		t := (float64(i) + 0.5) / float64(n)
		b.WriteString(lipgloss.NewStyle().Background(s.scale.Color(t, s.profile)).Render(" "))
	}
	b.WriteString(" " + bright)
	return b.String()
}

// fit cuts text to exactly w cells, ending it with "…" when cut.
func fit(text string, w int) string {
	if w <= 0 {
		return ""
	}
	if lipgloss.Width(text) > w {
		text = ansi.Truncate(text, w, "…")
	}
	if pad := w - lipgloss.Width(text); pad > 0 {
		text += strings.Repeat(" ", pad)
	}
	return text
}

// fitLeft right-aligns text in w cells, cutting it like fit.
func fitLeft(text string, w int) string {
	if lipgloss.Width(text) >= w {
		return fit(text, w)
	}
	return strings.Repeat(" ", w-lipgloss.Width(text)) + text
}
