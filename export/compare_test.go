package export

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/theme"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// compareDoc computes run A (prompt a) and run B (prompt b) on testmodel's
// tiny-f32 and returns A's document with the comparison, and the
// comparison itself.
func compareDoc(t *testing.T, a, b string, target int) (*Document, *inference.Comparison) {
	t.Helper()
	m, err := inference.OpenDir(testmodel.Dir(t, "tiny-f32"), "tiny-f32", inference.NewCPUBackend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	sa, sb := m.NewSession(), m.NewSession()
	t.Cleanup(func() { sa.Close(); sb.Close() })
	p, err := inference.NewPair(sa, sb)
	if err != nil {
		t.Fatal(err)
	}
	ra := inference.Request{IDs: m.Tokenizer().EncodeIDs(a), TopK: 5, Target: target, NextToken: true}
	rb := ra
	rb.IDs = m.Tokenizer().EncodeIDs(b)
	c, err := p.Compare(context.Background(), ra, rb, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDocument(c.A, m, a, false, 5)
	d.AddComparison(c, m, RunB{Differs: "prompt", Prompt: b})
	return d, c
}

// The JSON's compare block holds the comparison's numbers at their
// right-aligned places, B's tokens and top-k, and the target's Δ only
// with a target.
func TestCompareJSON(t *testing.T) {
	for _, target := range []int{-1, 1748} {
		d, c := compareDoc(t, "The Eiffel Tower is in the city of", "Rome is the city of", target)
		var buf bytes.Buffer
		if err := Write(&buf, JSON, d, Options{}); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Tokens  []TokenRef `json:"tokens"`
			Compare struct {
				Alignment string `json:"alignment"`
				Columns   int    `json:"columns"`
				OffsetA   int    `json:"offset_a"`
				OffsetB   int    `json:"offset_b"`
				IDsB      []int  `json:"ids_b"`
				B         struct {
					Differs string     `json:"differs"`
					Prompt  string     `json:"prompt"`
					Tokens  []TokenRef `json:"tokens"`
				} `json:"b"`
				Cells [][]map[string]any `json:"cells"`
			} `json:"compare"`
		}
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		gc := got.Compare
		tA, tB := len(c.A.IDs), len(c.B.IDs)
		if gc.Alignment != "right" || gc.Columns != min(tA, tB) || gc.OffsetA != tA-gc.Columns || gc.OffsetB != 0 ||
			gc.B.Differs != "prompt" || gc.B.Prompt != "Rome is the city of" || len(gc.B.Tokens) != tB || len(gc.IDsB) != tB {
			t.Fatalf("compare block %+v", gc)
		}
		for r, row := range gc.Cells {
			if len(row) != gc.Columns {
				t.Fatalf("row %d: %d cells", r, len(row))
			}
			for j, cell := range row {
				pc := c.Cells[r][j]
				if cell["kl_ab"].(float64) != pc.KL || int(cell["top1_b"].(float64)) != pc.Top1B ||
					cell["prob_b_of_top1_a"].(float64) != pc.ProbB || cell["top1_differs"].(bool) != pc.Top1Differs() {
					t.Errorf("row %d column %d: %v, comparison %+v", r, j, cell, pc)
				}
				topB := cell["top_b"].([]any)
				if len(topB) != 5 || int(topB[0].(map[string]any)["id"].(float64)) != pc.Top1B {
					t.Errorf("row %d column %d: B's top-k %v", r, j, topB)
				}
				if _, ok := cell["delta_target"]; ok != (target >= 0) {
					t.Errorf("row %d column %d: delta_target present %v with target %d", r, j, ok, target)
				}
			}
		}
	}
}

// The JSON keeps B's cells at the positions A has no partner for (B the
// longer prompt) in unpaired_b, and has none when A is the longer.
func TestCompareJSONUnpairedB(t *testing.T) {
	const short, long = "Rome is the city of", "The Eiffel Tower is in the city of"
	for _, tc := range []struct {
		a, b   string
		wantNo bool
	}{{short, long, false}, {long, short, true}} {
		d, c := compareDoc(t, tc.a, tc.b, -1)
		var buf bytes.Buffer
		if err := Write(&buf, JSON, d, Options{}); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Compare struct {
				UnpairedB *[][]struct {
					Top1B int        `json:"top1_b"`
					TopB  []TopEntry `json:"top_b"`
				} `json:"unpaired_b"`
			} `json:"compare"`
		}
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		u := got.Compare.UnpairedB
		if tc.wantNo {
			if u != nil {
				t.Errorf("A the longer: unpaired_b %v", *u)
			}
			continue
		}
		off := len(c.B.IDs) - c.Columns
		if u == nil || len(*u) != len(c.Cells) || off == 0 {
			t.Fatalf("B the longer by %d: unpaired_b %v", off, u)
		}
		for r, row := range *u {
			if len(row) != off {
				t.Fatalf("row %d: %d unpaired cells of B, want %d", r, len(row), off)
			}
			for p, cell := range row {
				want := c.B.Cells[r][p].Top
				if cell.Top1B != want[0].ID || len(cell.TopB) != len(want) || cell.TopB[0].ID != want[0].ID ||
					math.Abs(float64(cell.TopB[0].Prob)-want[0].Prob) > 1e-7 {
					t.Errorf("row %d B position %d: %+v, B's lens %+v", r, p, cell, want)
				}
			}
		}
	}
}

// csvRecords writes d as CSV and reads it back: its records, the header
// first, and each column's index by name.
func csvRecords(t *testing.T, d *Document) ([][]string, map[string]int) {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, CSV, d, Options{}); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	return recs, col
}

// The CSV adds the compare columns to every record of A, empty at the
// positions B has no partner for.
func TestCompareCSV(t *testing.T) {
	d, c := compareDoc(t, "The Eiffel Tower is in the city of", "Rome is the city of", 1748)
	recs, col := csvRecords(t, d)
	for _, name := range []string{"compare_column", "b_position", "kl_ab", "top1_b_id", "prob_b_of_top1_a", "delta_top1", "top1_differs", "delta_target", "top_b_ids"} {
		if _, ok := col[name]; !ok {
			t.Fatalf("no column %s in %v", name, recs[0])
		}
	}
	off := len(c.A.IDs) - c.Columns
	for _, rec := range recs[1:] {
		p, _ := strconv.Atoi(rec[col["position"]])
		r := 0
		for r < len(d.Rows) && d.Rows[r].Name != rec[col["row"]] {
			r++
		}
		if p < off {
			if rec[col["compare_column"]] != "" || rec[col["kl_ab"]] != "" {
				t.Errorf("unpaired position %d has compare values %v", p, rec)
			}
			continue
		}
		j := p - off
		kl, err := strconv.ParseFloat(rec[col["kl_ab"]], 64)
		if err != nil || math.Abs(kl-c.Cells[r][j].KL) > 1e-6*max(1, kl) || rec[col["top1_b_id"]] != strconv.Itoa(c.Cells[r][j].Top1B) ||
			rec[col["compare_column"]] != strconv.Itoa(j) || rec[col["b_position"]] != strconv.Itoa(c.PosB(j)) {
			t.Errorf("row %d position %d: %v, comparison %+v", r, p, rec, c.Cells[r][j])
		}
	}
}

// With B the longer prompt, each row of the CSV starts with a record per
// position of B that has no partner: B's position, token and top-k, and
// nothing of A or of the pair.
func TestCompareCSVUnpairedB(t *testing.T) {
	d, c := compareDoc(t, "Rome is the city of", "The Eiffel Tower is in the city of", -1)
	recs, col := csvRecords(t, d)
	off := len(c.B.IDs) - c.Columns
	seen := map[[2]int]bool{}
	for _, rec := range recs[1:] {
		if rec[col["position"]] != "" {
			continue
		}
		r := 0
		for r < len(d.Rows) && d.Rows[r].Name != rec[col["row"]] {
			r++
		}
		pb, err := strconv.Atoi(rec[col["b_position"]])
		if err != nil || r == len(d.Rows) || pb >= off {
			t.Fatalf("a record without an A position: %v", rec)
		}
		seen[[2]int{r, pb}] = true
		top := c.B.Cells[r][pb].Top
		ids := make([]string, len(top))
		for i, e := range top {
			ids[i] = strconv.Itoa(e.ID)
		}
		if rec[col["top1_b_id"]] != strconv.Itoa(top[0].ID) || rec[col["b_input_id"]] != strconv.Itoa(c.B.IDs[pb]) ||
			rec[col["top_b_ids"]] != strings.Join(ids, " ") || rec[col["kl_ab"]] != "" || rec[col["compare_column"]] != "" ||
			rec[col["top1_id"]] != "" || rec[col["input_id"]] != "" {
			t.Errorf("row %d B position %d: %v", r, pb, rec)
		}
	}
	if len(seen) != len(d.Rows)*off || len(recs) != 1+len(d.Rows)*(len(c.A.IDs)+off) {
		t.Errorf("%d records of B's %d unpaired positions × %d rows; %d records in all", len(seen), off, len(d.Rows), len(recs)-1)
	}
}

// The text's compare grid: per row, the unpaired columns' own top-1 in
// parentheses, then each pair's KL and, where the top-1s differ, ≠ and B's.
func TestCompareText(t *testing.T) {
	for _, tc := range [][2]string{{"Rome is the city of", "The Eiffel Tower is in the city of"}, {"The Eiffel Tower is in the city of", "Rome is the city of"}} {
		d, c := compareDoc(t, tc[0], tc[1], -1)
		var buf bytes.Buffer
		if err := Write(&buf, Text, d, Options{}); err != nil {
			t.Fatal(err)
		}
		_, grid, ok := strings.Cut(buf.String(), "\ncompare · ")
		if !ok {
			t.Fatalf("no compare grid:\n%s", buf.String())
		}
		tA, tB := len(c.A.IDs), len(c.B.IDs)
		W := max(tA, tB)
		for r := range d.Rows {
			name := d.Rows[r].Name
			if r == len(d.Rows)-1 {
				name += "*"
			}
			var line string
			for _, l := range strings.Split(grid, "\n") {
				if strings.HasPrefix(l, name+" ") {
					line = l
				}
			}
			var want []string
			for x := range W {
				pa, pb := x-(W-tA), x-(W-tB)
				var cell string
				switch {
				case pa < 0:
					cell = "(" + d.Compare.UnpairedB[r][pb].TopB[0].Display + ")"
				case pb < 0:
					cell = "(" + d.Cells[r][pa].Top[0].Display + ")"
				default:
					pc := c.Cells[r][pa-(tA-c.Columns)]
					cell = strconv.FormatFloat(pc.KL, 'f', 2, 64)
					if pc.Top1Differs() {
						cell += "≠" + d.Compare.Cells[r][pa-(tA-c.Columns)].TopB[0].Display
					}
				}
				want = append(want, cut(cell, textColumn-1))
			}
			rest := line
			for _, w := range want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("A %q, B %q, row %s: %q lacks %q in order (cells %q)", tc[0], tc[1], name, line, w, want)
				}
				rest = rest[i+len(w):]
			}
		}
	}
}

// The comparison's figure: one column per position of the longer prompt,
// each paired cell on the diverging palette at the metric's documented
// position (computed here from the definitions), unpaired cells uncoloured,
// "≠ B's top-1" exactly where the top-1s differ, B's tokens under A's.
func TestCompareSVG(t *testing.T) {
	d, c := compareDoc(t, "The Eiffel Tower is in the city of", "Rome's Colosseum, not the Eiffel Tower, is in the city of", 1748)
	tA, tB := len(c.A.IDs), len(c.B.IDs)
	W := max(tA, tB)
	for _, tc := range []struct {
		metric  Metric
		palette string
		pal     *theme.Scale
	}{
		{MetricKLAB, "viridis", theme.RdBu}, {MetricDeltaTop1, "cividis", theme.PuOr}, {MetricDeltaTarget, "gray", theme.RdBu},
	} {
		t.Run(tc.metric.String(), func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, SVG, d, Options{Metric: tc.metric, Palette: tc.palette}); err != nil {
				t.Fatal(err)
			}
			root := parseSVG(t, buf.Bytes())
			maxKL := 0.0
			for _, row := range c.Cells {
				for _, pc := range row {
					maxKL = math.Max(maxKL, pc.KL)
				}
			}
			cells := root.find("rect", "cell")
			if len(cells) != len(d.Rows)*W {
				t.Fatalf("%d cells, want %d rows × %d columns", len(cells), len(d.Rows), W)
			}
			paper := hexOf(theme.Gray.TextOn(0, theme.TrueColor))
			for _, n := range cells {
				r, _ := strconv.Atoi(n.attr("data-r"))
				x, _ := strconv.Atoi(n.attr("data-x"))
				pa, pb := x-(W-tA), x-(W-tB)
				if pa < 0 || pb < 0 {
					if n.attr("fill") != paper {
						t.Errorf("unpaired cell row %d column %d filled %s", r, x, n.attr("fill"))
					}
					continue
				}
				pc := c.Cells[r][pa-(tA-c.Columns)]
				var want float64
				switch tc.metric {
				case MetricKLAB:
					want = 0.5 * (1 - pc.KL/maxKL)
				case MetricDeltaTop1:
					want = (1 + pc.ProbB - pc.ProbA) / 2
				case MetricDeltaTarget:
					want = (1 + pc.TargetB - pc.TargetA) / 2
				}
				if got, exp := n.attr("fill"), hexOf(tc.pal.At(want)); got != exp {
					t.Errorf("row %d column %d: fill %s, want %s (t = %.3f)", r, x, got, exp, want)
				}
			}
			marks := 0
			for _, n := range root.find("text", "top1-b") {
				if !strings.HasPrefix(n.Text, "≠ ") {
					t.Errorf("B's top-1 written as %q", n.Text)
				}
				marks++
			}
			differ := 0
			for _, row := range c.Cells {
				for _, pc := range row {
					if pc.Top1Differs() {
						differ++
					}
				}
			}
			if marks != differ || differ == 0 {
				t.Errorf("%d cells marked ≠, %d differ", marks, differ)
			}
			if n := len(root.find("text", "col-label-b")); n == 0 || n > tB {
				t.Errorf("%d of B's tokens written under the grid", n)
			}
			// The unpaired columns: B's own top-1 in each, left of a
			// dashed line at the first paired column.
			texts := root.find("text", "top1")
			if len(texts) != len(cells) {
				t.Fatalf("%d cell texts for %d cells", len(texts), len(cells))
			}
			for i, n := range cells {
				r, _ := strconv.Atoi(n.attr("data-r"))
				x, _ := strconv.Atoi(n.attr("data-x"))
				pb := x - (W - tB)
				if x-(W-tA) >= 0 || pb < 0 {
					continue
				}
				u := d.Compare.UnpairedB[r][pb].TopB[0]
				if u.ID != c.B.Cells[r][pb].Top[0].ID {
					t.Fatalf("row %d B position %d: unpaired top-1 %d, B's lens %d", r, pb, u.ID, c.B.Cells[r][pb].Top[0].ID)
				}
				want := clean(u.Display)
				if got := texts[i].Text; got != want && !(strings.HasSuffix(got, "…") && strings.HasPrefix(want, strings.TrimSuffix(got, "…"))) {
					t.Errorf("unpaired cell row %d column %d: %q, B's top-1 %q", r, x, got, want)
				}
			}
			lines := root.find("line", "pairs-begin")
			if len(lines) != 1 || lines[0].float(t, "x1") != cells[W-c.Columns].float(t, "x") {
				t.Errorf("the dashed line where the pairs begin: %d lines", len(lines))
			}
		})
	}
}

// A comparison of a run with itself: nothing is marked, every paired cell
// is the palette's centre (kl-ab: its white end), no B token row.
func TestCompareSVGIdentical(t *testing.T) {
	d, _ := compareDoc(t, "Hello world", "Hello world", -1)
	var buf bytes.Buffer
	if err := Write(&buf, SVG, d, Options{Metric: MetricDeltaTop1}); err != nil {
		t.Fatal(err)
	}
	root := parseSVG(t, buf.Bytes())
	for _, n := range root.find("rect", "cell") {
		if n.attr("fill") != hexOf(theme.RdBu.At(0.5)) {
			t.Errorf("cell %s/%s filled %s", n.attr("data-r"), n.attr("data-x"), n.attr("fill"))
		}
	}
	if len(root.find("text", "top1-b")) != 0 || len(root.find("text", "col-label-b")) != 0 {
		t.Error("a run compared with itself has marks or B tokens")
	}
}

// The pairwise metrics: their scales, their cycle, and the options that
// cannot draw them.
func TestCompareMetrics(t *testing.T) {
	for _, c := range []struct {
		m    Metric
		v, t float64
	}{
		{MetricDeltaTop1, -1, 0}, {MetricDeltaTop1, 0, 0.5}, {MetricDeltaTop1, 1, 1}, {MetricDeltaTarget, -0.5, 0.25},
		{MetricKLAB, 0, 0.5}, {MetricKLAB, 2, 0.25}, {MetricKLAB, 4, 0}, {MetricKLAB, 9, 0},
	} {
		if got := NewScale(c.m, 50257, 4, false).T(c.v); math.Abs(got-c.t) > 1e-12 {
			t.Errorf("%s: T(%g) = %g, want %g", c.m, c.v, got, c.t)
		}
	}
	if MetricKLAB.Next(false) != MetricDeltaTop1 || MetricDeltaTop1.Next(false) != MetricKLAB || MetricDeltaTop1.Next(true) != MetricDeltaTarget ||
		MetricDeltaTarget.Next(true) != MetricKLAB || MetricTarget.Next(true) != MetricProb {
		t.Error("the pairwise metrics cycle among themselves")
	}
	for _, m := range Metrics() {
		if m.Pairwise() {
			t.Errorf("%s is listed among one lens's metrics", m)
		}
	}
	d, _ := compareDoc(t, "Hello world", "Hello there", -1)
	var buf bytes.Buffer
	if err := Write(&buf, SVG, d, Options{Metric: MetricDeltaTarget}); err == nil || !strings.Contains(err.Error(), "needs a target") {
		t.Errorf("delta-target without a target: %v", err)
	}
	d.Compare = nil
	if err := Write(&buf, SVG, d, Options{Metric: MetricKLAB}); err == nil || !strings.Contains(err.Error(), "has none") {
		t.Errorf("kl-ab without a comparison: %v", err)
	}
}
