package theme

import (
	"image/color"
	"math"
	"testing"

	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
)

func TestOkLabRoundTrip(t *testing.T) {
	for _, s := range []*Scale{Viridis, Cividis, Gray, RdBu, PuOr} {
		for _, h := range s.Stops {
			want := hex(h)
			if got := ToOkLab(want).RGBA(); got != want {
				t.Errorf("%s: %s round-trips to %v", s.Name, h, got)
			}
		}
	}
	// Reference values from Ottosson's post: white is L=1, a=b=0.
	w := ToOkLab(color.RGBA{255, 255, 255, 255})
	if math.Abs(w.L-1) > 1e-4 || math.Abs(w.A) > 1e-4 || math.Abs(w.B) > 1e-4 {
		t.Errorf("white = %+v", w)
	}
}

func TestScaleEndpointsAndMonotone(t *testing.T) {
	for _, s := range []*Scale{Viridis, Cividis, Gray} {
		if got, want := s.At(0), hex(s.Stops[0]); got != want {
			t.Errorf("%s At(0) = %v, want %v", s.Name, got, want)
		}
		if got, want := s.At(1), hex(s.Stops[len(s.Stops)-1]); got != want {
			t.Errorf("%s At(1) = %v, want %v", s.Name, got, want)
		}
		prev := -1.0
		for i := 0; i <= 100; i++ {
			l := s.Lab(float64(i) / 100).L
			if l < prev-1e-9 {
				t.Fatalf("%s: lightness falls at t=%.2f", s.Name, float64(i)/100)
			}
			prev = l
		}
	}
}

func TestTable256(t *testing.T) {
	for _, s := range []*Scale{Viridis, Cividis, Gray, RdBu, PuOr} {
		if len(s.Table256) != Levels {
			t.Fatalf("%s: %d entries", s.Name, len(s.Table256))
		}
		seen := map[int]bool{}
		prev := -1.0
		for i, idx := range s.Table256 {
			if idx < 16 || idx > 255 || seen[idx] {
				t.Errorf("%s: entry %d = %d repeated or out of range", s.Name, i, idx)
			}
			seen[idx] = true
			l := Lightness(xterm256(idx))
			if !s.Diverging && l <= prev {
				t.Errorf("%s: entry %d (%d) not lighter than the one before", s.Name, i, idx)
			}
			prev = l
		}
	}
}

func TestLevelAndGlyph(t *testing.T) {
	cases := []struct {
		t     float64
		level int
		glyph string
	}{
		{math.NaN(), 0, " "}, {-1, 0, " "}, {0, 0, " "}, {0.19, 3, " "}, {0.2, 3, "░"},
		{0.5, 8, "▒"}, {0.79, 12, "▓"}, {0.8, 12, "█"}, {1, 15, "█"}, {2, 15, "█"},
	}
	for _, c := range cases {
		if got := Level(c.t, Levels); got != c.level {
			t.Errorf("Level(%v) = %d, want %d", c.t, got, c.level)
		}
		if got := Glyph(c.t); got != c.glyph {
			t.Errorf("Glyph(%v) = %q, want %q", c.t, got, c.glyph)
		}
	}
}

func TestColorPerProfile(t *testing.T) {
	if c := Viridis.Color(0.5, TrueColor); c != Viridis.At(0.5) {
		t.Errorf("truecolor: %v", c)
	}
	if c, ok := Viridis.Color(0.99, ANSI256).(interface{ RGBA() (r, g, b, a uint32) }); !ok || c == nil {
		t.Errorf("256: %v", c)
	}
	for _, p := range []Profile{ANSI16, NoColor} {
		if c := Viridis.Color(0.5, p); c != nil {
			t.Errorf("%v: want no colour, got %v", p, c)
		}
		if c := Viridis.TextOn(0.5, p); c != nil {
			t.Errorf("%v: want no text colour, got %v", p, c)
		}
	}
}

// TestTextContrast checks that the chosen text colour has a lightness
// difference of at least 0.35 from every background it sits on.
func TestTextContrast(t *testing.T) {
	for _, s := range []*Scale{Viridis, Cividis, Gray} {
		for _, p := range []Profile{TrueColor, ANSI256} {
			for i := 0; i <= 50; i++ {
				x := float64(i) / 50
				var bg color.Color = s.At(x)
				if p == ANSI256 {
					bg = xterm256(s.Table256[Level(x, Levels)])
				}
				fg := s.TextOn(x, p)
				if p == ANSI256 {
					fg = xterm256(int(fg.(ansi.IndexedColor)))
				}
				if d := math.Abs(Lightness(fg) - Lightness(bg)); d < 0.35 {
					t.Errorf("%s %v t=%.2f: contrast %.2f", s.Name, p, x, d)
				}
			}
		}
	}
}

func TestLookup(t *testing.T) {
	for _, n := range append(Names(), "", "VIRIDIS") {
		if _, err := Lookup(n); err != nil {
			t.Errorf("Lookup(%q): %v", n, err)
		}
	}
	if s, _ := Lookup(""); s != Viridis {
		t.Errorf("default is %s", s.Name)
	}
	if _, err := Lookup("jet"); err == nil {
		t.Error("Lookup(jet) succeeded")
	}
}

func TestProfileOf(t *testing.T) {
	cases := map[colorprofile.Profile]Profile{
		colorprofile.TrueColor: TrueColor, colorprofile.ANSI256: ANSI256, colorprofile.ANSI: ANSI16,
		colorprofile.ASCII: NoColor, colorprofile.NoTTY: NoColor, colorprofile.Unknown: NoColor,
	}
	for in, want := range cases {
		if got := ProfileOf(in); got != want {
			t.Errorf("ProfileOf(%v) = %v, want %v", in, got, want)
		}
	}
}

// The diverging partners: light and neutral at the centre, the two ends
// apart in hue and darker than the centre.
func TestDivergingFor(t *testing.T) {
	if DivergingFor("viridis") != RdBu || DivergingFor("") != RdBu || DivergingFor("CIVIDIS") != PuOr || DivergingFor("gray") != RdBu {
		t.Error("DivergingFor pairs the palettes wrongly")
	}
	for _, s := range []*Scale{RdBu, PuOr} {
		mid, lo, hi := Lightness(s.At(0.5)), Lightness(s.At(0)), Lightness(s.At(1))
		if !s.Diverging || mid < 0.9 || lo > mid-0.3 || hi > mid-0.3 {
			t.Errorf("%s: lightness %.2f … %.2f … %.2f", s.Name, lo, mid, hi)
		}
	}
}
