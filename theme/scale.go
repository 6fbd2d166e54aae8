package theme

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"charm.land/lipgloss/v2"
)

// Levels is how many steps a scale has below truecolor: the 256-colour
// tables hold this many entries.
const Levels = 16

// Scale is a colour scale given as data: sRGB stops spaced evenly over
// [0,1], interpolated in OkLab. Sequential scales run dark to light;
// a diverging scale runs from one hue through a light centre to another.
type Scale struct {
	Name      string
	Diverging bool
	Stops     []string // "#rrggbb", evenly spaced from t=0 to t=1
	// Table256 holds Levels xterm indices, one per level. For a sequential
	// scale the entries rise in lightness, so the order survives terminals
	// (and tmux) that only speak 256 colours; Bubble Tea's automatic
	// conversion of truecolour would merge neighbouring levels.
	Table256 []int

	lab []OkLab
}

// Viridis is matplotlib's default perceptually uniform scale (the default).
// The 256-colour table is the measured lightness-monotone one from
// docs/stack.md.
var Viridis = newScale("viridis", false,
	[]string{"#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"},
	[]int{53, 54, 55, 61, 62, 31, 66, 37, 73, 108, 42, 77, 113, 148, 184, 220})

// Cividis is a blue–yellow scale designed to read the same with colour-vision
// deficiencies (Nuñez, Anderton & Renslow 2018).
var Cividis = newScale("cividis", false,
	[]string{"#00204c", "#00336f", "#39486b", "#575c6d", "#707173", "#8a8779", "#a59c74", "#c3b369", "#e1cc55", "#ffea46"},
	nil)

// Gray runs from near-black to near-white.
var Gray = newScale("gray", false, []string{"#101010", "#f0f0f0"}, nil)

// RdBu is ColorBrewer's red–white–blue diverging scale, for signed
// differences: t=0 is the most negative, 0.5 zero, 1 the most positive.
var RdBu = newScale("rdbu", true,
	[]string{"#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7f7", "#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061"},
	nil)

// PuOr is ColorBrewer's orange–white–purple diverging scale, the partner
// of Cividis: t=0 is orange, 1 purple. It avoids the red–green axis and,
// unlike RdBu, keeps its ends apart under tritanopia too.
var PuOr = newScale("puor", true,
	[]string{"#7f3b08", "#b35806", "#e08214", "#fdb863", "#fee0b6", "#f7f7f7", "#d8daeb", "#b2abd2", "#8073ac", "#542788", "#2d004b"},
	nil)

// DivergingFor returns the diverging scale that goes with a sequential
// palette (a Lookup name), for signed differences drawn beside it: PuOr
// for cividis, whose users chose colour-blind safety, RdBu otherwise.
func DivergingFor(palette string) *Scale {
	if strings.EqualFold(palette, Cividis.Name) {
		return PuOr
	}
	return RdBu
}

// scales lists the sequential scales selectable with --palette.
var scales = []*Scale{Viridis, Cividis, Gray}

// Names lists the values --palette accepts, the default first.
func Names() []string {
	n := make([]string, len(scales))
	for i, s := range scales {
		n[i] = s.Name
	}
	return n
}

// Lookup returns the sequential scale with the given name (case-insensitive);
// an empty name gives the default, Viridis.
func Lookup(name string) (*Scale, error) {
	if name == "" {
		return Viridis, nil
	}
	for _, s := range scales {
		if strings.EqualFold(s.Name, name) {
			return s, nil
		}
	}
	return nil, fmt.Errorf("theme: unknown palette %q (want one of %s)", name, strings.Join(Names(), ", "))
}

func newScale(name string, diverging bool, stops []string, table []int) *Scale {
	s := &Scale{Name: name, Diverging: diverging, Stops: stops}
	for _, h := range stops {
		s.lab = append(s.lab, ToOkLab(hex(h)))
	}
	if table == nil {
		table = fit256(s, !diverging)
	}
	s.Table256 = table
	return s
}

// clamp01 maps NaN to 0 and clips t to [0,1].
func clamp01(t float64) float64 {
	if math.IsNaN(t) || t < 0 {
		return 0
	}
	return math.Min(t, 1)
}

// Lab returns the scale's OkLab colour at t in [0,1] (clamped).
func (s *Scale) Lab(t float64) OkLab {
	t = clamp01(t)
	n := len(s.lab) - 1
	x := t * float64(n)
	i := min(int(x), n-1)
	return lerp(s.lab[i], s.lab[i+1], x-float64(i))
}

// At returns the truecolour sRGB value of the scale at t in [0,1].
func (s *Scale) At(t float64) color.RGBA { return s.Lab(t).RGBA() }

// Level quantises t in [0,1] to one of n steps 0..n-1.
func Level(t float64, n int) int {
	return min(n-1, int(clamp01(t)*float64(n)))
}

// Color returns the cell background for t under a terminal profile: an
// interpolated RGB colour in truecolour, an entry of Table256 in 256
// colours, and nil with fewer colours, where cells use Glyph instead.
func (s *Scale) Color(t float64, p Profile) color.Color {
	switch p {
	case TrueColor:
		return s.At(t)
	case ANSI256:
		return lipgloss.ANSIColor(uint8(s.Table256[Level(t, Levels)]))
	}
	return nil
}

// fit256 picks, level by level, the xterm colour (16..255) nearest in OkLab
// to the scale's colour; with monotone set each pick must be lighter than the
// one before, and picks never repeat. Sequential tables stay ordered by
// lightness this way even where the cube is coarse.
func fit256(s *Scale, monotone bool) []int {
	table := make([]int, Levels)
	used := map[int]bool{}
	prevL := -1.0
	for lv := range Levels {
		want := s.Lab((float64(lv) + 0.5) / Levels)
		best, bestD := -1, math.Inf(1)
		for i := 16; i < 256; i++ {
			c := ToOkLab(xterm256(i))
			if used[i] || (monotone && c.L <= prevL+0.005) {
				continue
			}
			if d := dist2(c, want); d < bestD {
				best, bestD = i, d
			}
		}
		table[lv] = best
		used[best] = true
		prevL = ToOkLab(xterm256(best)).L
	}
	return table
}

// glyphs is the ramp used without colour: blank for the lowest fifth up to a
// full block for the highest.
var glyphs = []string{" ", "░", "▒", "▓", "█"}

// Glyphs returns the glyph ramp, lowest first.
func Glyphs() []string { return append([]string(nil), glyphs...) }

// Glyph returns the ramp glyph for t in [0,1].
func Glyph(t float64) string { return glyphs[Level(t, len(glyphs))] }

// TextOn returns a foreground with strong contrast on the cell background of
// the scale at t: near-black on light cells, near-white on dark ones, chosen
// by the OkLab lightness of the colour actually shown under the profile.
// It returns nil where the profile shows no background.
func (s *Scale) TextOn(t float64, p Profile) color.Color {
	var bg color.Color
	switch p {
	case TrueColor:
		bg = s.At(t)
	case ANSI256:
		bg = xterm256(s.Table256[Level(t, Levels)])
	default:
		return nil
	}
	dark := Lightness(bg) > 0.65
	if p == ANSI256 {
		if dark {
			return lipgloss.ANSIColor(16)
		}
		return lipgloss.ANSIColor(231)
	}
	if dark {
		return hex("#000000")
	}
	return hex("#ffffff")
}
