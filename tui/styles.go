package tui

import (
	"fmt"
	"image/color"
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

// cell draws one heatmap cell of width w for value t in [0,1]: the text
// after one cell of padding on a background from the scale, or after the
// ramp glyph without colour. The cursor cell is drawn in reverse video.
func (s Styles) cell(t float64, text string, w int, cursor bool) string {
	if w <= 0 {
		return ""
	}
	lead := " "
	st := lipgloss.NewStyle()
	if s.glyphs() {
		lead = theme.Glyph(t)
	} else {
		st = st.Background(s.scale.Color(t, s.profile)).Foreground(s.scale.TextOn(t, s.profile))
	}
	if cursor {
		st = st.Reverse(true).Bold(true)
	}
	return st.Render(lead + fit(text, w-1))
}

// pending draws a cell whose column has not arrived yet.
func (s Styles) pending(w int, cursor bool) string {
	st := s.Pending
	if cursor {
		st = st.Reverse(true)
	}
	return st.Render(fit(" ·", w))
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
