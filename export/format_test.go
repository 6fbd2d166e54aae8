package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights"
)

// fakeSource is a model's identity and vocabulary for NewDocument.
type fakeSource struct {
	id    string
	vocab map[int]string
}

func (s fakeSource) Info() inference.Info {
	return inference.Info{ID: s.id, Device: "cpu", Config: weights.Config{NLayer: 1, NEmbd: 8, NHead: 2, NPositions: 16, VocabSize: 50}}
}

func (s fakeSource) TokenBytes(id int) []byte { return []byte(s.vocab[id]) }

// hostileLens is a two-row lens over tokens that carry terminal controls
// (ESC, BEL, CR, a right-to-left override), whose block row (the output)
// overflowed at position 1, stated as package inference states it: no top-k,
// NaN statistics and ranks −1 there, NaN KL and final statistics in the
// finite embedding cell below it, final top-1 −1, and the breakdown.
func hostileLens() (*inference.Lens, fakeSource) {
	src := fakeSource{
		id:    "evil\x1b]0;pwned\x07/model",
		vocab: map[int]string{1: "ok", 2: "\x1b[2J", 3: "a\rb", 4: "\u202eexe", 5: "\a"},
	}
	nan := math.NaN()
	rows := []inference.Row{{Kind: inference.Embed, Name: "embed"}, {Kind: inference.BlockOut, Layer: 1, Name: "1"}}
	l := &inference.Lens{
		IDs:       []int{1, 2},
		Rows:      rows,
		FinalTop1: []int{3, -1},
		Target:    5,
		Cells: [][]inference.Cell{
			{
				{Top: []inference.Prediction{{ID: 3, Prob: 0.5}, {ID: 4, Prob: 0.25}}, Entropy: 1.5, KLToFinal: 0.75, FinalTop1Rank: 0, FinalTop1Prob: 0.5, TargetRank: 7, TargetProb: 0.01, NextRank: 4, NextProb: 0.03},
				{Top: []inference.Prediction{{ID: 4, Prob: 0.9}}, Entropy: 0.5, KLToFinal: nan, FinalTop1Rank: -1, FinalTop1Prob: nan, TargetRank: 3, TargetProb: 0.02, NextRank: -1},
			},
			{
				{Top: []inference.Prediction{{ID: 3, Prob: 0.6}}, Entropy: 1, FinalTop1Rank: 0, FinalTop1Prob: 0.6, TargetRank: 2, TargetProb: 0.05, NextRank: 9, NextProb: 0.001},
				{Entropy: nan, KLToFinal: nan, FinalTop1Rank: -1, FinalTop1Prob: nan, TargetRank: -1, TargetProb: nan, NextRank: -1, NonFinite: inference.ResidualInf},
			},
		},
		NonFinite: &inference.Breakdown{Row: rows[1], Pos: 1, Kind: inference.ResidualInf},
	}
	return l, src
}

func hostileDoc() *Document {
	l, src := hostileLens()
	return NewDocument(l, src, "\x1b[31mred\r\n\ttab \u202e", false, 2)
}

func TestFormatTable(t *testing.T) {
	for _, c := range []struct {
		name, path string
		want       Format
	}{
		{"", "", Text},
		{"", "-", Text},
		{"", "out", Text},
		{"", "out.txt", Text},
		{"", "out.SVG", SVG},
		{"", "dir.v2/OUT.Html", HTML},
		{"", "out.htm", HTML},
		{"", "out.csv", CSV},
		{"", "out.json", JSON},
		{"CSV", "", CSV},
		{"Json", "out.svg", JSON}, // the name wins over the extension
		{"text", "out.html", Text},
	} {
		got, err := FormatOf(c.name, c.path)
		if err != nil || got != c.want {
			t.Errorf("FormatOf(%q, %q) = %v, %v; want %v", c.name, c.path, got, err, c.want)
		}
	}
	for _, c := range []struct{ name, path, want string }{
		{"xml", "", `unknown format "xml"`},
		{"", "out.png", `no format writes ".png" files`},
	} {
		if _, err := FormatOf(c.name, c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FormatOf(%q, %q): %v, want %q", c.name, c.path, err, c.want)
		}
	}
	for _, name := range FormatNames() {
		f, err := ParseFormat(strings.ToUpper(name))
		if err != nil || f.String() != name {
			t.Errorf("ParseFormat(%q) = %v, %v", strings.ToUpper(name), f, err)
		}
		if back, err := FormatOf("", "x"+strings.ToUpper(f.Ext())); err != nil || back != f {
			t.Errorf("the extension %s of %v reads back as %v, %v", f.Ext(), f, back, err)
		}
		if f.Figure() != (name == "svg" || name == "html") {
			t.Errorf("%v.Figure() = %v", f, f.Figure())
		}
	}
}

func TestParseMetric(t *testing.T) {
	for i, name := range MetricNames() {
		m, err := ParseMetric(strings.ToUpper(name))
		if err != nil || m != Metric(i) || m.String() != name {
			t.Errorf("ParseMetric(%q) = %v, %v", name, m, err)
		}
	}
	if _, err := ParseMetric("loss"); err == nil || !strings.Contains(err.Error(), "prob, next-prob, next-rank, ce, final-prob") {
		t.Errorf("ParseMetric(loss): %v", err)
	}
	// The explorer's cycle: target only when a target is pinned.
	var seen []string
	for m, i := MetricProb, 0; i < 10; i++ {
		m = m.Next(false)
		seen = append(seen, m.String())
	}
	if got := strings.Join(seen, " "); got != "next-prob next-rank ce final-prob final-rank entropy kl prob next-prob next-rank" {
		t.Errorf("cycle without a target: %s", got)
	}
	if MetricKL.Next(true) != MetricTarget || MetricTarget.Next(true) != MetricProb {
		t.Error("cycle with a target skips it")
	}
}

// The scale's documented maths, on values where the answer is known.
func TestScaleValues(t *testing.T) {
	const vocab = 50257
	lnV := math.Log(vocab)
	for _, c := range []struct {
		m    Metric
		v, t float64
	}{
		{MetricProb, 0.25, 0.25},
		{MetricEntropy, lnV, 0},
		{MetricEntropy, lnV / 4, 0.75},
		{MetricFinalRank, 0, 1},
		{MetricFinalRank, vocab - 1, 0},
		{MetricFinalRank, math.Sqrt(vocab) - 1, 0.5}, // ln(1+r) = ln(V)/2
		{MetricKL, 0, 1},
		{MetricKL, 1, 0.5}, // lens maximum 2
		{MetricKL, 3, 0},   // beyond the range: clamped
		{MetricNextProb, 0.125, 0.125},
		{MetricNextRank, math.Sqrt(vocab) - 1, 0.5},
		{MetricCE, 0.5, 0.75},
	} {
		if got := NewScale(c.m, vocab, 2, false).T(c.v); math.Abs(got-c.t) > 1e-12 {
			t.Errorf("%v: T(%g) = %g, want %g", c.m, c.v, got, c.t)
		}
	}
	// A fixed scale puts KL and cross-entropy on 0..ln V whatever the lens.
	for _, m := range []Metric{MetricKL, MetricCE} {
		for _, lensMax := range []float64{0.5, 40} {
			s := NewScale(m, vocab, lensMax, true)
			if got := s.T(lnV / 4); math.Abs(got-0.75) > 1e-12 || s.T(2*lnV) != 0 || s.T(0) != 1 {
				t.Errorf("%v fixed (lens max %g): T(ln V/4) = %g, T(2 ln V) = %g", m, lensMax, got, s.T(2*lnV))
			}
		}
	}
	// The next token's statistics, from the cell: cross-entropy is −ln p;
	// at the last position (rank −1) there is nothing, drawn without colour.
	next := inference.Cell{NextRank: 3, NextProb: 0.25}
	if v := MetricCE.Value(next); math.Abs(v-math.Log(4)) > 1e-15 || MetricNextRank.Value(next) != 3 || MetricNextProb.Value(next) != 0.25 {
		t.Errorf("next-token values of %+v: ce %g", next, v)
	}
	for _, m := range []Metric{MetricNextProb, MetricNextRank, MetricCE} {
		if v := m.Value(inference.Cell{NextRank: -1}); !math.IsNaN(v) {
			t.Errorf("%v at the last position = %g, want NaN", m, v)
		}
	}
	if got := NewScale(MetricEntropy, vocab, 0, false).T(math.NaN()); !math.IsNaN(got) {
		t.Errorf("T(NaN) = %g, want NaN (drawn without colour)", got)
	}
	// A non-finite largest KL must not turn every cell's colour into NaN.
	for _, maxKL := range []float64{math.NaN(), math.Inf(1), -1} {
		if got := NewScale(MetricKL, vocab, maxKL, false).T(0); got != 1 {
			t.Errorf("maxKL %g: T(0) = %g, want 1", maxKL, got)
		}
	}
	if d, b := NewScale(MetricFinalRank, vocab, 0, false).Ends(); d != "50256" || b != "0 (log)" {
		t.Errorf("rank ends %q %q", d, b)
	}
	if d, b := NewScale(MetricEntropy, vocab, 0, false).Ends(); d != "10.8" || b != "0 nats" {
		t.Errorf("entropy ends %q %q", d, b)
	}
	if got := MetricEntropy.Format(math.Inf(1)) + " " + MetricFinalRank.Format(12) + " " + MetricProb.Format(0.25); got != "+Inf 12 0.250" {
		t.Errorf("Format: %s", got)
	}
}

// JSON never holds NaN or Inf (encoding/json refuses them): null, with the
// cell's reason and the document's summary.
func TestJSONNonFinite(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, JSON, hostileDoc(), Options{}); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		NonFinite string `json:"nonfinite"`
		Cells     [][]map[string]any
		LockIn    []any `json:"lock_in"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	// Position 0's top-1 is the output's from the embedding up; position
	// 1's output row has no top-1.
	if len(raw.LockIn) != 2 || raw.LockIn[0] != 0.0 || raw.LockIn[1] != nil {
		t.Errorf("lock_in %v, want [0 null]", raw.LockIn)
	}
	bad := raw.Cells[1][1]
	for _, k := range []string{"entropy", "kl_to_final", "final_top1_prob", "target_prob"} {
		if v, ok := bad[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	if why := bad["nonfinite"]; why != "the residual stream overflowed (inf)" || bad["final_top1_rank"] != -1.0 || len(bad["top"].([]any)) != 0 {
		t.Errorf("non-finite cell %v", bad)
	}
	// The finite cell below it lacks only what needs the output row.
	below := raw.Cells[0][1]
	if below["kl_to_final"] != nil || below["entropy"] != 0.5 || !strings.Contains(below["nonfinite"].(string), "kl_to_final, final_top1_prob not finite (the output row is not finite here)") {
		t.Errorf("cell below %v", below)
	}
	if _, ok := raw.Cells[0][0]["nonfinite"]; ok {
		t.Error("a finite cell has a nonfinite reason")
	}
	// The next token: at every position but the last.
	if raw.Cells[1][0]["next_rank"] != 9.0 || raw.Cells[1][0]["next_prob"] != 0.001 {
		t.Errorf("next token stats %v", raw.Cells[1][0])
	}
	if v, ok := raw.Cells[0][1]["next_rank"]; !ok || v != nil {
		t.Errorf("next token at the last position: %v, want null", raw.Cells[0][1])
	}
	if raw.NonFinite != "layer 1: activations overflow (inf) at position 1" {
		t.Errorf("document nonfinite %q", raw.NonFinite)
	}
	// It reads back: null as NaN.
	var back Document
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if c := back.Cells[1][1]; !math.IsNaN(float64(c.Entropy)) || c.Entropy.Finite() || back.Cells[0][0].Entropy != 1.5 {
		t.Errorf("read back %v %v", c.Entropy, back.Cells[0][0].Entropy)
	}
}

// Untrusted bytes (prompt, tokens, model path) never reach a terminal raw
// through text or CSV, and every format copes with a cell without top-k.
func TestNoControlsInTextAndCSV(t *testing.T) {
	d := hostileDoc()
	for _, f := range []Format{Text, CSV, SVG, HTML} {
		var buf bytes.Buffer
		if err := Write(&buf, f, d, Options{}); err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		if f.Figure() {
			continue // XML: checked below for the controls XML forbids
		}
		for _, r := range buf.String() {
			if (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x202e {
				t.Errorf("%v output holds %U:\n%s", f, r, buf.String())
				break
			}
		}
	}
	var text bytes.Buffer
	Write(&text, Text, d, Options{})
	for _, want := range []string{`evil\x1b]0;pwned\x07/model`, "<0x1B>[2J", "—", "! not finite: layer 1: activations overflow (inf) at position 1"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	var out bytes.Buffer
	Write(&out, CSV, d, Options{})
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := map[string]int{}
	for i, h := range recs[0] {
		head[h] = i
	}
	// Records: embed/0, embed/1, 1/0, 1/1.
	if got := recs[1][head["next_token"]]; got != `\x1b[2J` {
		t.Errorf("next_token %q", got)
	}
	if got := recs[2][head["top1_token"]]; got != `\u202eexe` {
		t.Errorf("top1_token %q", got)
	}
	bad := recs[4]
	for _, k := range []string{"top1_id", "top1_prob", "entropy", "kl_to_final", "final_top1_id", "final_top1_rank", "final_top1_prob", "target_rank", "target_prob", "next_rank", "top_ids"} {
		if bad[head[k]] != "" {
			t.Errorf("non-finite cell: %s = %q, want empty", k, bad[head[k]])
		}
	}
	if bad[head["nonfinite"]] != "the residual stream overflowed (inf)" || recs[1][head["nonfinite"]] != "" {
		t.Errorf("nonfinite column %q / %q", bad[head["nonfinite"]], recs[1][head["nonfinite"]])
	}
	if recs[3][head["next_rank"]] != "9" || recs[3][head["next_prob"]] != "0.001" {
		t.Errorf("next token columns %q", recs[3])
	}
}

// -o never leaves a partial or an empty file: a failed write keeps the old
// file and leaves no temporary file behind; a good one replaces it whole.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lens.svg")
	if err := os.WriteFile(path, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	noTarget := hostileDoc()
	noTarget.Target = nil
	err := WriteFile(path, SVG, noTarget, Options{Metric: MetricTarget})
	if err == nil || !strings.Contains(err.Error(), "needs a target") {
		t.Fatalf("error %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("a failed write changed the file to %q", b)
	}
	fresh := filepath.Join(dir, "new.html")
	if err := WriteFile(fresh, HTML, &Document{}, Options{}); err == nil {
		t.Fatal("an empty document was written")
	}
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed write left %s behind: %v", fresh, err)
	}
	if err := WriteFile(path, SVG, hostileDoc(), Options{}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !bytes.HasPrefix(b, []byte("<?xml")) || !bytes.HasSuffix(b, []byte("</svg>\n")) {
		t.Errorf("file holds %.40q…", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the replaced file's 0640", st.Mode().Perm())
	}
	// Through a symlink: the link stays, its target is replaced.
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink("lens.json", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, JSON, hostileDoc(), Options{}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", st.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "lens.json lens.svg link.json" { // nothing else, no temporary files
		t.Errorf("directory holds %s", got)
	}
	// A directory that cannot be written: an error, nothing written.
	if err := WriteFile(filepath.Join(dir, "missing", "x.csv"), CSV, hostileDoc(), Options{}); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	loop := filepath.Join(dir, "loop.csv")
	os.Symlink("loop.csv", loop)
	if err := WriteFile(loop, CSV, hostileDoc(), Options{}); err == nil || !strings.Contains(err.Error(), "symbolic links") {
		t.Errorf("symlink loop: %v", err)
	}
	// A path that is not a regular file is written in place.
	if err := WriteFile(os.DevNull, Text, hostileDoc(), Options{}); err != nil {
		t.Errorf("writing to %s: %v", os.DevNull, err)
	}
}

func TestWriteLeavesWriterUntouchedOnError(t *testing.T) {
	var buf bytes.Buffer
	for _, f := range []Format{Text, CSV, JSON, SVG, HTML} {
		if err := Write(&buf, f, nil, Options{}); err == nil {
			t.Errorf("%v: no error for a nil document", f)
		}
	}
	if err := Write(&buf, Format(42), hostileDoc(), Options{}); err == nil {
		t.Error("unknown format accepted")
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes before failing", buf.Len())
	}
}

// TestCellDoc: one cell as JSON, with the fields of a document's cell
// (flattened), where it is, and null for what it lacks.
func TestCellDoc(t *testing.T) {
	l, src := hostileLens()
	out := l.Rows[1]
	b, err := NewCellDoc(src, l.Rows[0], 0, l.IDs[0], l.IDs[1], l.Cells[0][0], l.Target, &out).JSON()
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if raw["schema"] != CellSchema || raw["position"] != 0.0 || raw["entropy"] != 1.5 || raw["next_rank"] != 4.0 ||
		raw["next"].(map[string]any)["id"] != 2.0 || raw["lock_in"].(map[string]any)["name"] != "1" || len(raw["top"].([]any)) != 2 {
		t.Errorf("cell JSON:\n%s", b)
	}
	// The last position's cell: no next token, and a NaN statistic is null.
	b, err = NewCellDoc(src, l.Rows[0], 1, l.IDs[1], -1, l.Cells[0][1], -1, nil).JSON()
	if err != nil {
		t.Fatal(err)
	}
	raw = nil
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"next", "lock_in", "kl_to_final", "next_rank"} {
		if v, ok := raw[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	if _, ok := raw["target"]; ok {
		t.Errorf("a target without one:\n%s", b)
	}
}
