package export

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/theme"
)

var outDir = flag.String("out", "", "write example figures (SVG, HTML, JSON) into this directory")

// node is a generic XML element, enough to walk an SVG.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []node     `xml:",any"`
}

func (n *node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n *node) float(t *testing.T, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(n.attr(name), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.XMLName.Local, name, n.attr(name), err)
	}
	return v
}

// find returns the elements below n with the given tag whose class list
// contains class ("" matches any).
func (n *node) find(tag, class string) []*node {
	var out []*node
	var walk func(*node)
	walk = func(m *node) {
		for i := range m.Children {
			c := &m.Children[i]
			if c.XMLName.Local == tag && (class == "" || hasClass(c.attr("class"), class)) {
				out = append(out, c)
			}
			walk(c)
		}
	}
	walk(n)
	return out
}

func hasClass(list, class string) bool {
	for _, c := range strings.Fields(list) {
		if c == class {
			return true
		}
	}
	return false
}

func parseSVG(t *testing.T, data []byte) *node {
	t.Helper()
	var root node
	if err := xml.Unmarshal(data, &root); err != nil {
		t.Fatalf("SVG is not well-formed XML: %v", err)
	}
	if root.XMLName.Local != "svg" {
		t.Fatalf("root element %q, want svg", root.XMLName.Local)
	}
	return &root
}

// wantT is the palette position of a cell's metric, computed here from the
// documented conventions rather than through Scale.
func wantT(t *testing.T, metric Metric, d *Document, c CellInfo) float64 {
	t.Helper()
	lnV := math.Log(float64(d.Model.VocabSize))
	switch metric.String() {
	case "prob":
		return float64(c.Top[0].Prob)
	case "final-prob":
		return float64(c.FinalTop1Prob)
	case "target":
		return float64(*c.TargetProb)
	case "final-rank":
		return 1 - math.Log(1+float64(c.FinalTop1Rank))/lnV // log1p(V-1) = ln V
	case "entropy":
		return 1 - float64(c.Entropy)/lnV
	case "kl":
		maxKL := 0.0
		for _, row := range d.Cells {
			for _, x := range row {
				maxKL = math.Max(maxKL, float64(x.KLToFinal))
			}
		}
		return 1 - float64(c.KLToFinal)/maxKL
	case "next-prob", "next-rank", "ce":
		if c.NextRank == nil {
			return math.NaN() // the last position: drawn without colour
		}
		switch metric.String() {
		case "next-prob":
			return float64(*c.NextProb)
		case "next-rank":
			return 1 - math.Log(1+float64(*c.NextRank))/lnV
		}
		maxCE := 0.0
		for _, row := range d.Cells {
			for _, x := range row {
				if x.NextProb != nil && *x.NextProb > 0 {
					maxCE = math.Max(maxCE, -math.Log(float64(*x.NextProb)))
				}
			}
		}
		return math.Max(0, 1+math.Log(float64(*c.NextProb))/maxCE)
	}
	t.Fatalf("no expectation for metric %q", metric)
	return 0
}

func parseHex(t *testing.T, s string) color.RGBA {
	t.Helper()
	var r, g, b uint8
	if _, err := fmt.Sscanf(s, "#%02x%02x%02x", &r, &g, &b); err != nil || len(s) != 7 {
		t.Fatalf("bad colour %q", s)
	}
	return color.RGBA{r, g, b, 0xff}
}

// wcag is the WCAG 2 contrast ratio of two sRGB colours, written out here
// independently of the package's.
func wcag(a, b color.RGBA) float64 {
	lum := func(c color.RGBA) float64 {
		ch := func(v uint8) float64 {
			x := float64(v) / 255
			if x <= 0.04045 {
				return x / 12.92
			}
			return math.Pow((x+0.055)/1.055, 2.4)
		}
		return 0.2126*ch(c.R) + 0.7152*ch(c.G) + 0.0722*ch(c.B)
	}
	la, lb := lum(a), lum(b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

// checkSVG asserts the structure and colours of a heatmap against its document.
func checkSVG(t *testing.T, root *node, d *Document, metric Metric, palette string) {
	t.Helper()
	pal, err := theme.Lookup(palette)
	if err != nil {
		t.Fatal(err)
	}
	nRows, nTok := len(d.Rows), len(d.Tokens)
	cells := root.find("rect", "cell")
	if len(cells) != nRows*nTok {
		t.Fatalf("%d cells, want rows×tokens = %d×%d", len(cells), nRows, nTok)
	}
	texts := root.find("text", "top1")
	if len(texts) != len(cells) {
		t.Fatalf("%d top-1 labels for %d cells", len(texts), len(cells))
	}
	rowY := map[int]float64{}
	for i, cell := range cells {
		r, _ := strconv.Atoi(cell.attr("data-r"))
		p, _ := strconv.Atoi(cell.attr("data-p"))
		c := d.Cells[r][p]
		tt := wantT(t, metric, d, c)
		if got, want := cell.attr("fill"), hexOf(pal.At(tt)); !math.IsNaN(tt) && got != want {
			t.Fatalf("cell (%s, %d): fill %s, want %s (t=%.4f)", d.Rows[r].Name, p, got, want, tt)
		}
		rowY[r] = cell.float(t, "y")
		txt := texts[i]
		if math.IsNaN(tt) {
			// No value (the next token at the last position): the
			// paper colour, the label muted.
			if got, want := cell.attr("fill"), hexOf(theme.Gray.TextOn(0, theme.TrueColor)); got != want {
				t.Fatalf("cell (%s, %d) without a value: fill %s, want the paper %s", d.Rows[r].Name, p, got, want)
			}
			continue
		}
		// The top-1 label follows its cell, in black or white, readable.
		fill := parseHex(t, cell.attr("fill"))
		ink := parseHex(t, txt.attr("fill"))
		if ink != (color.RGBA{0, 0, 0, 255}) && ink != (color.RGBA{255, 255, 255, 255}) {
			t.Fatalf("cell (%d,%d): text colour %s is neither black nor white", r, p, txt.attr("fill"))
		}
		// WCAG AA for normal text is 4.5:1; black or white always reaches 4.58.
		if cr := wcag(fill, ink); cr < 4.5 {
			t.Fatalf("cell (%d,%d): text %s on %s has contrast %.2f < 4.5", r, p, txt.attr("fill"), cell.attr("fill"), cr)
		}
		if want := cut(c.Top[0].Display, 12); strings.TrimSuffix(txt.Text, "…") != strings.TrimSuffix(want, "…") && !strings.HasPrefix(want, strings.TrimSuffix(txt.Text, "…")) {
			t.Fatalf("cell (%d,%d): label %q, want top-1 %q", r, p, txt.Text, c.Top[0].Display)
		}
	}
	// The output row (the last) is drawn on top, the embedding at the bottom.
	if rowY[nRows-1] >= rowY[0] {
		t.Errorf("output row at y=%g is not above the embedding row at y=%g", rowY[nRows-1], rowY[0])
	}
	labels := root.find("text", "row-label")
	if len(labels) != nRows {
		t.Fatalf("%d row labels, want %d", len(labels), nRows)
	}
	for i, lab := range labels {
		if !strings.HasSuffix(lab.Text, d.Rows[i].Name) {
			t.Errorf("row label %d %q, want %q", i, lab.Text, d.Rows[i].Name)
		}
	}
	outs := root.find("text", "output")
	if len(outs) != 1 || !strings.Contains(outs[0].Text, "output") || !strings.HasSuffix(outs[0].Text, d.Rows[nRows-1].Name) {
		t.Fatalf("output row label: %+v", outs)
	}
	frame := root.find("rect", "output-row")
	if len(frame) != 1 || math.Abs(frame[0].float(t, "y")+1-rowY[nRows-1]) > 1e-9 {
		t.Fatalf("output row frame missing or misplaced: %+v", frame)
	}
	cols := root.find("text", "col-label")
	if len(cols) != nTok {
		t.Fatalf("%d column labels, want %d", len(cols), nTok)
	}
	for p, c := range cols {
		want := d.Tokens[p].Display
		if got := strings.TrimSuffix(c.Text, "…"); !strings.HasPrefix(want, got) {
			t.Errorf("column %d label %q, want %q", p, c.Text, want)
		}
	}
	if ticks := root.find("text", "tick"); len(ticks) < 2 {
		t.Errorf("colour bar has %d ticks", len(ticks))
	}
}

func TestSVG(t *testing.T) {
	docs := map[string]*Document{"hand": handDoc()}
	if !testing.Short() {
		docs["tiny-f32"] = tinyDoc(t)
	}
	for name, d := range docs {
		for _, metric := range Metrics() {
			palettes := theme.Names()
			if name != "hand" {
				palettes = palettes[:1] // every palette on the hand-made document is enough
			}
			for _, palette := range palettes {
				t.Run(name+"/"+metric.String()+"/"+palette, func(t *testing.T) {
					var buf bytes.Buffer
					if err := Write(&buf, SVG, d, Options{Metric: metric, Palette: palette}); err != nil {
						t.Fatal(err)
					}
					root := parseSVG(t, buf.Bytes())
					if root.XMLName.Space != "http://www.w3.org/2000/svg" {
						t.Errorf("namespace %q", root.XMLName.Space)
					}
					checkSVG(t, root, d, metric, palette)
					s := buf.String()
					for _, bad := range []string{"<script", "href=", "<image", "@import", "url("} {
						if strings.Contains(s, bad) {
							t.Errorf("SVG contains %q: not self-contained", bad)
						}
					}
				})
			}
		}
	}
}

// TestSVGDisplayForms checks that tokens appear in their display forms.
func TestSVGDisplayForms(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, SVG, handDoc(), Options{}); err != nil {
		t.Fatal(err)
	}
	root := parseSVG(t, buf.Bytes())
	var cols []string
	for _, c := range root.find("text", "col-label") {
		cols = append(cols, c.Text)
	}
	want := []string{"The", "␣Eiffel", "␣Tower", "␣is", "␣in", "␣the", "␣city", "␣of", "↵", "<0xE2>"}
	if !reflect.DeepEqual(cols, want) {
		t.Errorf("column labels %q, want %q", cols, want)
	}
}

func TestHTML(t *testing.T) {
	docs := map[string]*Document{"hand": handDoc()}
	if !testing.Short() {
		docs["tiny-f32"] = tinyDoc(t)
	}
	for name, d := range docs {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, HTML, d, Options{Metric: MetricEntropy, Palette: "cividis"}); err != nil {
				t.Fatal(err)
			}
			s := buf.String()
			// Self-contained: nothing fetched, no URL at all.
			for _, bad := range []string{"http://", "https://", "src=", "href=", "@import", "url(", "//cdn"} {
				if strings.Contains(s, bad) {
					t.Errorf("HTML contains %q: not self-contained", bad)
				}
			}
			// The embedded document round-trips.
			open := `<script type="application/json" id="` + DataID + `">`
			i := strings.Index(s, open)
			if i < 0 {
				t.Fatal("no embedded lens document")
			}
			rest := s[i+len(open):]
			j := strings.Index(rest, "</script>")
			var back Document
			if err := json.Unmarshal([]byte(rest[:j]), &back); err != nil {
				t.Fatalf("embedded JSON: %v", err)
			}
			if !reflect.DeepEqual(&back, d) {
				t.Error("embedded document differs from the one written")
			}
			if strings.Count(s, "</script>") != 2 {
				t.Errorf("%d </script> tags, want 2: the document escaped its element", strings.Count(s, "</script>"))
			}
			// The inline heatmap is the same as the SVG file's.
			k, e := strings.Index(s, "<svg"), strings.Index(s, "</svg>")
			checkSVG(t, parseSVG(t, []byte(s[k:e+len("</svg>")])), d, MetricEntropy, "cividis")
		})
	}
}

func TestValidate(t *testing.T) {
	for _, m := range Metrics() {
		for _, p := range append(theme.Names(), "") {
			if err := (Options{Metric: m, Palette: p}).Validate(true); err != nil {
				t.Errorf("Validate(%q, %q): %v", m, p, err)
			}
		}
	}
}

func TestScale(t *testing.T) {
	d := handDoc()
	for _, m := range Metrics() {
		s := NewScale(m, d.Model.VocabSize, d.maxValue(m), false)
		ticks := s.Ticks()
		if ticks[0].T != s.T(s.Lo) || ticks[len(ticks)-1].T != s.T(s.Hi) {
			t.Errorf("%s: ticks %v do not span the range", m, ticks)
		}
		for i := 1; i < len(ticks); i++ {
			if (ticks[i].T <= ticks[i-1].T) == !s.Reversed {
				t.Errorf("%s: ticks %v not in order", m, ticks)
			}
		}
		// Bright (t=1) means confident.
		if got := s.T(s.Lo); (got == 1) != s.Reversed {
			t.Errorf("%s: T(lo) = %g", m, got)
		}
	}
	if s := NewScale(MetricFinalRank, d.Model.VocabSize, 0, false); math.Abs(s.T(0)-1) > 0 || s.T(50256) != 0 {
		t.Errorf("rank scale ends: %g %g", s.T(0), s.T(50256))
	}
}

func TestErrors(t *testing.T) {
	d := handDoc()
	noTarget := *d
	noTarget.Target = nil
	ragged := *d
	ragged.Cells = append([][]CellInfo{d.Cells[0][:2]}, d.Cells[1:]...)
	cases := []struct {
		name string
		d    *Document
		opt  Options
		want string
	}{
		{"metric", d, Options{Metric: Metric(99)}, "unknown metric"},
		{"palette", d, Options{Palette: "jet"}, "unknown palette"},
		{"target", &noTarget, Options{Metric: MetricTarget}, "needs a target"},
		{"empty", &Document{}, Options{}, "no rows"},
		{"ragged", &ragged, Options{}, "has 2 cells"},
	}
	for _, c := range cases {
		if c.d == d || c.d == &noTarget {
			if err := c.opt.Validate(c.d.Target != nil); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: Validate: %v, want an error containing %q", c.name, err, c.want)
			}
		}
		for _, write := range []func(*bytes.Buffer) error{
			func(b *bytes.Buffer) error { return Write(b, SVG, c.d, c.opt) },
			func(b *bytes.Buffer) error { return Write(b, HTML, c.d, c.opt) },
		} {
			var buf bytes.Buffer
			err := write(&buf)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "export: ") {
				t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
			}
			if buf.Len() != 0 {
				t.Errorf("%s: wrote %d bytes before failing", c.name, buf.Len())
			}
		}
	}
}

// TestExampleFiles writes the example figures when -out is given; the
// browser check (testdata/browser_test.sh) and the README's pictures use it:
//
//	go test ./export -run TestExampleFiles -out DIR
func TestExampleFiles(t *testing.T) {
	if *outDir == "" {
		t.Skip("no -out directory")
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, f func(*os.File) error) {
		file, err := os.Create(filepath.Join(*outDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := f(file); err != nil {
			t.Fatal(err)
		}
		if err := file.Close(); err != nil {
			t.Fatal(err)
		}
	}
	docs := map[string]*Document{"example": handDoc(), "tiny": tinyDoc(t)}
	for name, d := range docs {
		write(name+".json", func(f *os.File) error { return Write(f, JSON, d, Options{}) })
		write(name+".svg", func(f *os.File) error { return Write(f, SVG, d, Options{}) })
		write(name+".html", func(f *os.File) error { return Write(f, HTML, d, Options{}) })
	}
	for _, m := range Metrics() {
		for _, p := range theme.Names() {
			write("example-"+m.String()+"-"+p+".svg", func(f *os.File) error {
				return Write(f, SVG, docs["example"], Options{Metric: m, Palette: p})
			})
		}
	}
}
