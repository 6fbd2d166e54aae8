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

// The CSV adds the compare columns to every record of A, empty at the
// positions B has no partner for.
func TestCompareCSV(t *testing.T) {
	d, c := compareDoc(t, "The Eiffel Tower is in the city of", "Rome is the city of", 1748)
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
