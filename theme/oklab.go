package theme

import (
	"image/color"
	"math"
)

// OkLab is a colour in Björn Ottosson's OkLab space: L is perceived
// lightness in [0,1], A and B are the green–red and blue–yellow axes.
// Interpolating here keeps equal steps of a scale looking equally far apart,
// which sRGB or HSL blending does not.
type OkLab struct{ L, A, B float64 }

// srgbToLinear undoes the sRGB transfer curve (IEC 61966-2-1).
func srgbToLinear(c float64) float64 {
	if c <= 0.04045 {
		return c / 12.92
	}
	return math.Pow((c+0.055)/1.055, 2.4)
}

// linearToSRGB applies the sRGB transfer curve.
func linearToSRGB(c float64) float64 {
	if c <= 0.0031308 {
		return 12.92 * c
	}
	return 1.055*math.Pow(c, 1/2.4) - 0.055
}

// ToOkLab converts an sRGB colour (alpha ignored) to OkLab, using the
// matrices of https://bottosson.github.io/posts/oklab/.
func ToOkLab(c color.Color) OkLab {
	r16, g16, b16, _ := c.RGBA()
	r := srgbToLinear(float64(r16) / 0xffff)
	g := srgbToLinear(float64(g16) / 0xffff)
	b := srgbToLinear(float64(b16) / 0xffff)
	l := math.Cbrt(0.4122214708*r + 0.5363325363*g + 0.0514459929*b)
	m := math.Cbrt(0.2119034982*r + 0.6806995451*g + 0.1073969566*b)
	s := math.Cbrt(0.0883024619*r + 0.2817188376*g + 0.6299787005*b)
	return OkLab{
		L: 0.2104542553*l + 0.7936177850*m - 0.0040720468*s,
		A: 1.9779984951*l - 2.4285922050*m + 0.4505937099*s,
		B: 0.0259040371*l + 0.7827717662*m - 0.8086757660*s,
	}
}

// RGBA converts back to an opaque 8-bit sRGB colour, clamping out-of-gamut
// channels.
func (c OkLab) RGBA() color.RGBA {
	l := c.L + 0.3963377774*c.A + 0.2158037573*c.B
	m := c.L - 0.1055613458*c.A - 0.0638541728*c.B
	s := c.L - 0.0894841775*c.A - 1.2914855480*c.B
	l, m, s = l*l*l, m*m*m, s*s*s
	r := 4.0767416621*l - 3.3077115913*m + 0.2309699292*s
	g := -1.2684380046*l + 2.6097574011*m - 0.3413193965*s
	b := -0.0041960863*l - 0.7034186147*m + 1.7076147010*s
	return color.RGBA{R: to8(r), G: to8(g), B: to8(b), A: 0xff}
}

func to8(linear float64) uint8 {
	v := linearToSRGB(math.Min(1, math.Max(0, linear)))
	return uint8(math.Round(v * 255))
}

// lerp interpolates two OkLab colours; t=0 gives a, t=1 gives b.
func lerp(a, b OkLab, t float64) OkLab {
	return OkLab{a.L + (b.L-a.L)*t, a.A + (b.A-a.A)*t, a.B + (b.B-a.B)*t}
}

// dist2 is the squared Euclidean distance in OkLab (a fair ΔE).
func dist2(a, b OkLab) float64 {
	dl, da, db := a.L-b.L, a.A-b.A, a.B-b.B
	return dl*dl + da*da + db*db
}

// Lightness is the OkLab lightness of c in [0,1].
func Lightness(c color.Color) float64 { return ToOkLab(c).L }

// hex parses "#rrggbb"; it panics on a malformed literal because every
// caller passes a constant of this package.
func hex(s string) color.RGBA {
	if len(s) != 7 || s[0] != '#' {
		panic("theme: bad colour literal " + s)
	}
	var v [3]uint8
	for i := range 3 {
		hi, lo := unhex(s[1+2*i]), unhex(s[2+2*i])
		v[i] = hi<<4 | lo
	}
	return color.RGBA{R: v[0], G: v[1], B: v[2], A: 0xff}
}

func unhex(c byte) uint8 {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	panic("theme: bad hex digit " + string(c))
}

// xterm256 returns the sRGB value of an xterm 256-colour index in 16..255
// (the 6×6×6 cube and the 24-step grey ramp; 0..15 depend on the terminal).
func xterm256(i int) color.RGBA {
	if i >= 232 {
		v := uint8(8 + 10*(i-232))
		return color.RGBA{v, v, v, 0xff}
	}
	levels := [6]uint8{0, 95, 135, 175, 215, 255}
	i -= 16
	return color.RGBA{levels[i/36], levels[(i/6)%6], levels[i%6], 0xff}
}
