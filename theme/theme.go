// Package theme holds logitlens's colours as data: the heatmap scales
// (viridis, cividis, gray and the diverging RdBu), their per-terminal forms
// and the semantic colours of the interface. No other package writes a colour
// literal.
//
// A scale is a list of sRGB stops interpolated in OkLab. What a cell shows
// depends on the terminal profile:
//
//   - truecolour: the interpolated colour;
//   - 256 colours: one of 16 table entries that rise in lightness, so the
//     ordering survives the conversion;
//   - 16 colours or none (NO_COLOR, dumb terminals): a glyph ramp " ░▒▓█",
//     with the numbers in the legend and the panel.
//
// Text on a coloured cell is black or white by the cell's OkLab lightness.
package theme

import (
	"image/color"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"
)

// Profile is how many colours the terminal shows, reduced to the cases the
// heatmap treats differently.
type Profile int

const (
	// NoColor shows no colour at all (NO_COLOR, TERM=dumb, not a terminal).
	NoColor Profile = iota
	// ANSI16 has the 16 terminal colours, whose values the user's theme
	// decides: too unreliable for a scale, so cells use glyphs.
	ANSI16
	// ANSI256 has the xterm 256-colour palette.
	ANSI256
	// TrueColor has 24-bit colour.
	TrueColor
)

// String names the profile for status lines.
func (p Profile) String() string {
	switch p {
	case TrueColor:
		return "truecolor"
	case ANSI256:
		return "256"
	case ANSI16:
		return "16"
	}
	return "no-color"
}

// ProfileOf maps a colorprofile detection (which honours NO_COLOR,
// CLICOLOR_FORCE, TERM and COLORTERM) to a Profile.
func ProfileOf(p colorprofile.Profile) Profile {
	switch p {
	case colorprofile.TrueColor:
		return TrueColor
	case colorprofile.ANSI256:
		return ANSI256
	case colorprofile.ANSI:
		return ANSI16
	}
	return NoColor
}

// Semantic holds the interface colours by role. They are ANSI palette
// entries, so they follow the user's terminal theme, light or dark, and
// survive any profile.
type Semantic struct {
	Accent  color.Color // focus, the cursor's row and column, titles
	Muted   color.Color // labels, hints, pending cells
	Error   color.Color // errors
	Warn    color.Color // notices
	OK      color.Color // progress fill, success
	Output  color.Color // the model-output row label
	BarFill color.Color // probability bars in the panel
}

// DefaultSemantic returns the interface colours.
func DefaultSemantic() Semantic {
	return Semantic{
		Accent:  lipgloss.ANSIColor(6),  // cyan
		Muted:   lipgloss.ANSIColor(8),  // bright black
		Error:   lipgloss.ANSIColor(9),  // bright red
		Warn:    lipgloss.ANSIColor(3),  // yellow
		OK:      lipgloss.ANSIColor(2),  // green
		Output:  lipgloss.ANSIColor(13), // bright magenta
		BarFill: lipgloss.ANSIColor(4),  // blue
	}
}
