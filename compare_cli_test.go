package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// The compare flags: one run B at a time, the metric that colours a
// comparison by default, and the metrics that cannot colour it.
func TestCompareFlags(t *testing.T) {
	o, err := parseLens(t, "", "-p", "Paris", "--compare-prompt", "Rome", "-o", "x.svg")
	if err != nil || !o.compare.on() || o.compare.differs() != "prompt" || o.compare.prompt != "Rome" || o.figure.Metric != export.MetricKLAB {
		t.Errorf("--compare-prompt: %+v, %v", o, err)
	}
	o, err = parseLens(t, "", "-p", "Paris", "--compare-lens", "tuned:lenses/gpt2", "--format", "json")
	if err != nil || o.compare.differs() != "lens" || !o.compare.lens.tuned {
		t.Errorf("--compare-lens: %+v, %v", o.compare, err)
	}
	o, err = parseLens(t, "", "-p", "Paris", "--compare-model", "distilgpt2", "--format", "json")
	if err != nil || o.compare.differs() != "model" || o.compare.model != "distilgpt2" {
		t.Errorf("--compare-model: %+v, %v", o, err)
	}
	if o, err = parseLens(t, "", "--bos", "--compare-prompt", "", "-p", "x"); err != nil || !o.compare.promptSet {
		t.Errorf("an empty run B prompt after <|endoftext|>: %v", err)
	}
	if o, err = parseLens(t, "", "-p", "x"); err != nil || o.compare.on() {
		t.Errorf("no run B: %+v, %v", o.compare, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", "x", "--compare-prompt", "y", "--compare-model", "m"}, "give one of"},
		{[]string{"-p", "x", "--compare-lens", "tuned", "--compare-model", "m"}, "give one of"},
		{[]string{"-p", "x", "--compare-lens", "sideways"}, "--compare-lens"},
		{[]string{"-p", "x", "--compare-lens", "tuned", "--sublayers"}, "--compare-lens logit"},
		{[]string{"-p", "x", "--compare-prompt", ""}, "--compare-prompt is empty"},
		{[]string{"-p", "x", "--compare-model", " "}, "--compare-model is empty"},
		{[]string{"-p", "x", "--metric", "kl-ab", "-o", "x.svg"}, "colours a comparison"},
		{[]string{"-p", "x", "--compare-prompt", "y", "--metric", "prob", "-o", "x.svg"}, "colours one lens"},
		{[]string{"-p", "x", "--compare-prompt", "y", "--metric", "delta-target", "-o", "x.svg"}, "give --target"},
	} {
		_, err := parseLens(t, "", c.args...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &ue) {
			t.Errorf("%v: error %v, want a usage error containing %q", c.args, err, c.want)
		}
	}
}

// `lens --compare-prompt/--compare-model --format json` carries the
// reference's comparison (lens_ref.py --compare-*, float64,
// inference/devicetest/testdata/compare) at the tolerances of issue 16.
func TestLensCompareMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   func(g *compareGoldenDoc) []string
	}{
		{"prompt-same", func(g *compareGoldenDoc) []string { return []string{"--compare-prompt", *g.Compare.B.Prompt} }},
		{"prompt-longer", func(g *compareGoldenDoc) []string { return []string{"--compare-prompt", *g.Compare.B.Prompt} }},
		{"prompt-shorter", func(g *compareGoldenDoc) []string { return []string{"--compare-prompt", *g.Compare.B.Prompt} }},
		{"prompt-bos", func(g *compareGoldenDoc) []string { return []string{"--compare-prompt", *g.Compare.B.Prompt, "--bos"} }},
		{"model-seed11", func(g *compareGoldenDoc) []string {
			return []string{"--compare-model", testmodel.Dir(t, *g.Compare.B.Model)}
		}},
		{"model-bf16", func(g *compareGoldenDoc) []string {
			return []string{"--compare-model", testmodel.Dir(t, *g.Compare.B.Model)}
		}},
		{"lens-tuned", func(g *compareGoldenDoc) []string {
			return []string{"--compare-lens", "tuned:" + testLens(*g.Compare.B.Tuned)}
		}},
		{"lens-logit", func(g *compareGoldenDoc) []string {
			return []string{"--lens", "tuned:" + testLens(g.Tuned), "--compare-lens", *g.Compare.B.Tuned}
		}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			g := readCompareGoldenDoc(t, tc.golden)
			dir := testmodel.Dir(t, g.Model)
			args := append([]string{"lens", "--model", dir, "--prompt", g.Prompt, "--format", "json"}, tc.args(g)...)
			out, _, err := runCmd(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Compare struct {
					Alignment string `json:"alignment"`
					Columns   int    `json:"columns"`
					IDsB      []int  `json:"ids_b"`
					Cells     [][]struct {
						KL      float64 `json:"kl_ab"`
						Top1A   int     `json:"top1_a"`
						Top1B   int     `json:"top1_b"`
						ProbB   float64 `json:"prob_b_of_top1_a"`
						Differs bool    `json:"top1_differs"`
					} `json:"cells"`
				} `json:"compare"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatal(err)
			}
			c := doc.Compare
			if c.Alignment != "right" || c.Columns != g.Compare.Columns || !slices.Equal(c.IDsB, g.Compare.IDsB) || len(c.Cells) != len(g.Compare.KL) {
				t.Fatalf("compare block: alignment %q, %d columns, ids_b %v, %d rows; reference %d columns, ids_b %v, %d rows",
					c.Alignment, c.Columns, c.IDsB, len(c.Cells), g.Compare.Columns, g.Compare.IDsB, len(g.Compare.KL))
			}
			var maxKL, maxP float64
			for l, row := range c.Cells {
				for j, cell := range row {
					maxKL = math.Max(maxKL, math.Abs(cell.KL-g.Compare.KL[l][j]))
					maxP = math.Max(maxP, math.Abs(cell.ProbB-g.Compare.ProbB[l][j]))
					if cell.Top1B != g.Compare.Top1B[l][j] {
						t.Errorf("row %d column %d: top1_b %d, reference %d", l, j, cell.Top1B, g.Compare.Top1B[l][j])
					}
				}
			}
			if tc.golden == "prompt-same" { // A against itself: exactly no difference anywhere
				for l, row := range c.Cells {
					for j, cell := range row {
						if cell.KL != 0 || cell.Differs || cell.Top1B != cell.Top1A {
							t.Errorf("A against itself, row %d column %d: kl_ab %g, top1 %d/%d, differs %v", l, j, cell.KL, cell.Top1A, cell.Top1B, cell.Differs)
						}
					}
				}
			}
			t.Logf("max |ΔKL| %.2e, |Δprob_b_of_top1_a| %.2e", maxKL, maxP)
			if maxKL > 1e-3 || maxP > 1e-4 {
				t.Errorf("outside tolerance: |ΔKL| %.2e (≤ 1e-3), |Δp| %.2e (≤ 1e-4)", maxKL, maxP)
			}
		})
	}
}

// `lens --compare-* --format csv`: every paired record's kl_ab,
// top1_b_id and prob_b_of_top1_a are the reference's (at the tolerances
// of issue 16) at its layer and aligned column, with one record per cell of
// A and per unpaired position of B.
func TestLensCompareCSVMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   func(g *compareGoldenDoc) []string
	}{
		{"prompt-longer", func(g *compareGoldenDoc) []string { return []string{"--compare-prompt", *g.Compare.B.Prompt} }},
		{"prompt-shorter", func(g *compareGoldenDoc) []string { return []string{"--compare-prompt", *g.Compare.B.Prompt} }},
		{"model-bf16", func(g *compareGoldenDoc) []string {
			return []string{"--compare-model", testmodel.Dir(t, *g.Compare.B.Model)}
		}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			g := readCompareGoldenDoc(t, tc.golden)
			args := append([]string{"lens", "--model", testmodel.Dir(t, g.Model), "--prompt", g.Prompt, "--format", "csv"}, tc.args(g)...)
			out, _, err := runCmd(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			col := map[string]int{}
			for i, h := range recs[0] {
				col[h] = i
			}
			rows, tA, tB := len(g.Compare.KL), len(g.IDs), len(g.Compare.IDsB)
			if want := rows * (tA + max(0, tB-tA)); len(recs)-1 != want {
				t.Errorf("%d records, want %d (%d rows × (%d of A + %d unpaired of B))", len(recs)-1, want, rows, tA, max(0, tB-tA))
			}
			paired := 0
			var maxKL, maxP float64
			for _, rec := range recs[1:] {
				if rec[col["compare_column"]] == "" {
					continue
				}
				l, _ := strconv.Atoi(rec[col["layer"]])
				j, _ := strconv.Atoi(rec[col["compare_column"]])
				kl, err1 := strconv.ParseFloat(rec[col["kl_ab"]], 64)
				p, err2 := strconv.ParseFloat(rec[col["prob_b_of_top1_a"]], 64)
				if err1 != nil || err2 != nil || l >= rows || j >= g.Compare.Columns {
					t.Fatalf("record %v", rec)
				}
				paired++
				maxKL = math.Max(maxKL, math.Abs(kl-g.Compare.KL[l][j]))
				maxP = math.Max(maxP, math.Abs(p-g.Compare.ProbB[l][j]))
				if rec[col["top1_b_id"]] != strconv.Itoa(g.Compare.Top1B[l][j]) {
					t.Errorf("layer %d column %d: top1_b_id %s, reference %d", l, j, rec[col["top1_b_id"]], g.Compare.Top1B[l][j])
				}
			}
			t.Logf("%d paired records: max |ΔKL| %.2e, |Δprob_b_of_top1_a| %.2e", paired, maxKL, maxP)
			if paired != rows*g.Compare.Columns || maxKL > 1e-3 || maxP > 1e-4 {
				t.Errorf("%d paired records of %d; |ΔKL| %.2e (≤ 1e-3), |Δp| %.2e (≤ 1e-4)", paired, rows*g.Compare.Columns, maxKL, maxP)
			}
		})
	}
}

// compareGoldenDoc is the part of a comparison golden the CLI test reads.
type compareGoldenDoc struct {
	Model   string `json:"model_dir"`
	Tuned   string `json:"tuned_lens"`
	SHA256  string `json:"model_safetensors_sha256"`
	Prompt  string `json:"prompt"`
	IDs     []int  `json:"ids"`
	Compare struct {
		IDsB    []int `json:"ids_b"`
		Columns int   `json:"columns"`
		B       struct {
			Prompt *string `json:"prompt"`
			Model  *string `json:"model_dir"`
			Tuned  *string `json:"tuned"`
		} `json:"b"`
		KL    [][]float64 `json:"kl_ab"`
		Top1B [][]int     `json:"top1_b"`
		ProbB [][]float64 `json:"prob_b_of_top1_a"`
	} `json:"compare"`
}

// readCompareGoldenDoc reads the comparison golden name of the conformance
// suite (inference/devicetest/testdata/compare), checking that run A's
// checkpoint is still the one testmodel generates.
func readCompareGoldenDoc(t *testing.T, name string) *compareGoldenDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("inference", "devicetest", "testdata", "compare", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g compareGoldenDoc
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	testmodel.CheckPin(t, g.Model, name+".json", g.SHA256)
	return &g
}

// testLens is the folder of one of the tuned lenses written for tiny-f32
// (weights/tunedlens/testdata/lenses).
func testLens(name string) string {
	return filepath.Join("weights", "tunedlens", "testdata", "lenses", name)
}

// A checkpoint with another number of layers is refused with both names.
func TestLensCompareRefusesOtherShape(t *testing.T) {
	a, b := testmodel.Dir(t, "tiny-f32"), testmodel.Dir(t, "small-shape")
	_, _, err := runCmd(t, "lens", "--model", a, "--prompt", "Hi", "--compare-model", b)
	if err == nil || !strings.Contains(err.Error(), "tiny-f32") || !strings.Contains(err.Error(), "small-shape") || !strings.Contains(err.Error(), "layers") {
		t.Errorf("tiny-f32 against small-shape: %v", err)
	}
}

// Run B's lens that cannot be found is refused with advice about the flag
// the user gave, --compare-lens, not A's --lens.
func TestLensCompareLensAdvice(t *testing.T) {
	_, _, err := runCmd(t, "lens", "--model", testmodel.Dir(t, "tiny-f32"), "--prompt", "Hi", "--compare-lens", "tuned")
	if err == nil || !strings.Contains(err.Error(), "--compare-lens tuned:DIR") || strings.Contains(err.Error(), "give --lens") {
		t.Errorf("--compare-lens tuned on a folder's model: %v", err)
	}
}

// The explorer's run B fixed by --compare-model or --compare-lens: the
// backend compares A's request with B's through the other checkpoint or
// lens, as the reference does (lens_ref.py --compare-*, at the tolerances
// of issue 16), and names B for the B line.
func TestExploreFixedRunB(t *testing.T) {
	for _, tc := range []struct {
		golden, name string
		args         func(g *compareGoldenDoc) []string
	}{
		{"model-seed11", "the model ", func(g *compareGoldenDoc) []string {
			return []string{"--compare-model", testmodel.Dir(t, *g.Compare.B.Model)}
		}},
		{"lens-tuned", "the tuned lens weights/", func(g *compareGoldenDoc) []string {
			return []string{"--compare-lens", "tuned:" + testLens(*g.Compare.B.Tuned)}
		}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			g := readCompareGoldenDoc(t, tc.golden)
			var o *exploreOptions
			run := func(_ context.Context, got *exploreOptions) error { o = got; return nil }
			if err := parse(t, newExploreCmd(testApp(), run), "", append([]string{"-m", testmodel.Dir(t, g.Model), "--device", "cpu"}, tc.args(g)...)...); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(o.compareWith(), tc.name) {
				t.Errorf("run B named %q, want %q…", o.compareWith(), tc.name)
			}
			m, err := inference.Load(context.Background(), o.model.spec, o.model.loadOptions(nil))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var loadedB loadedModel
			defer loadedB.close()
			backend, err := o.backendB(context.Background(), m, m.NewSession(), &loadedB, nil)
			if err != nil {
				t.Fatal(err)
			}
			cmp, ok := backend.(interface {
				Compare(context.Context, inference.Request, inference.Request, func(inference.CompareColumn)) (*inference.Comparison, error)
			})
			if !ok {
				t.Fatalf("backend %T does not compare", backend)
			}
			req := inference.Request{IDs: g.IDs, TopK: 5, Target: -1}
			c, err := cmp.Compare(context.Background(), req, req, nil) // the explorer asks for B as A
			if err != nil {
				t.Fatal(err)
			}
			var maxKL, maxP float64
			for l, row := range c.Cells {
				for j, cell := range row {
					maxKL = math.Max(maxKL, math.Abs(cell.KL-g.Compare.KL[l][j]))
					maxP = math.Max(maxP, math.Abs(cell.ProbB-g.Compare.ProbB[l][j]))
					if cell.Top1B != g.Compare.Top1B[l][j] {
						t.Errorf("row %d column %d: top1_b %d, reference %d", l, j, cell.Top1B, g.Compare.Top1B[l][j])
					}
				}
			}
			t.Logf("max |ΔKL| %.2e, |Δprob_b_of_top1_a| %.2e", maxKL, maxP)
			if len(c.Cells) != len(g.Compare.KL) || maxKL > 1e-3 || maxP > 1e-4 {
				t.Errorf("%d rows of %d; |ΔKL| %.2e (≤ 1e-3), |Δp| %.2e (≤ 1e-4)", len(c.Cells), len(g.Compare.KL), maxKL, maxP)
			}
		})
	}
	// A run B that cannot be set up leaves run A working; every comparison
	// says why.
	for _, args := range [][]string{
		{"--compare-model", testmodel.Dir(t, "small-shape")},
		{"--compare-model", filepath.Join(t.TempDir(), "none")},
		{"--compare-lens", "tuned:" + filepath.Join(t.TempDir(), "none")},
	} {
		var o *exploreOptions
		run := func(_ context.Context, got *exploreOptions) error { o = got; return nil }
		if err := parse(t, newExploreCmd(testApp(), run), "", append([]string{"-m", testmodel.Dir(t, "tiny-f32"), "--device", "cpu"}, args...)...); err != nil {
			t.Fatal(err)
		}
		m, err := inference.Load(context.Background(), o.model.spec, o.model.loadOptions(nil))
		if err != nil {
			t.Fatal(err)
		}
		var loadedB loadedModel
		backend, err := o.backendB(context.Background(), m, m.NewSession(), &loadedB, nil)
		if err != nil {
			t.Fatalf("%v: the explorer failed to load: %v", args, err)
		}
		req := inference.Request{IDs: []int{1, 2, 3}, TopK: 5, Target: -1}
		if _, err := backend.(*fixedRunB).Compare(context.Background(), req, req, nil); err == nil || !strings.HasPrefix(err.Error(), args[0]+": ") {
			t.Errorf("%v: comparison error %v", args, err)
		}
		if _, err := backend.Lens(context.Background(), req, nil); err != nil {
			t.Errorf("%v: run A: %v", args, err)
		}
		loadedB.close()
		m.Close()
	}

	// One run B at a time, and an explorer without one compares only when c is pressed.
	run := func(context.Context, *exploreOptions) error { return nil }
	var ue usageError
	if err := parse(t, newExploreCmd(testApp(), run), "", "--compare-prompt", "x", "--compare-model", "m"); !errors.As(err, &ue) {
		t.Errorf("two runs B: %v, want a usage error", err)
	}
	var o *exploreOptions
	if err := parse(t, newExploreCmd(testApp(), func(_ context.Context, got *exploreOptions) error { o = got; return nil }), ""); err != nil || o.compareWith() != "" || o.compare.on() {
		t.Errorf("no run B: %v, %+v", err, o.compare)
	}
}
