package devicetest

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// compareFS holds lens_ref.py --compare-*'s comparisons of two runs
// (tools/goldens/compare.sh) and the pins of run B's checkpoints.
//
//go:embed testdata/compare/*.json testdata/compare/pins.txt
var compareFS embed.FS

// compareGolden is the part of a comparison golden the suite reads: run
// A's lens (its top-1 per cell and probe logits) and the compare block.
type compareGolden struct {
	Model      string `json:"model_dir"`
	SHA256     string `json:"model_safetensors_sha256"`
	Prompt     string `json:"prompt"`
	PrependBOS bool   `json:"prepend_bos"`
	IDs        []int  `json:"ids"`
	Tuned      string `json:"tuned_lens"`
	ProbeIDs   []int  `json:"probe_ids"`
	Results    struct {
		F64 struct {
			TopIDs      [][][]int     `json:"top_ids"`
			TopProbs    [][][]float64 `json:"top_probs"`
			ProbeLogits [][][]float64 `json:"probe_logits"`
		} `json:"float64"`
	} `json:"results"`
	Compare struct {
		IDsB      []int  `json:"ids_b"`
		Columns   int    `json:"columns"`
		Alignment string `json:"alignment"`
		B         struct {
			Prompt *string `json:"prompt"`
			Model  *string `json:"model_dir"`
			Tuned  *string `json:"tuned"`
		} `json:"b"`
		KL    [][]float64 `json:"kl_ab"`
		Top1B [][]int     `json:"top1_b"`
		ProbB [][]float64 `json:"prob_b_of_top1_a"`
	} `json:"compare"`
}

// readCompareGolden reads testdata/compare/<name>.json, checking that run
// A's checkpoint is still the one testmodel generates.
func readCompareGolden(t *testing.T, name string) *compareGolden {
	t.Helper()
	b, err := compareFS.ReadFile("testdata/compare/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var g compareGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("golden %s: %v", name, err)
	}
	if g.Compare.Alignment != "right" {
		t.Fatalf("golden %s: alignment %q", name, g.Compare.Alignment)
	}
	testmodel.CheckPin(t, g.Model, name+".json", g.SHA256)
	return &g
}

// comparePin is the sha256 compare.sh recorded for run B's checkpoint.
func comparePin(t *testing.T, name string) string {
	t.Helper()
	b, err := compareFS.ReadFile("testdata/compare/pins.txt")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if n, sha, ok := strings.Cut(sc.Text(), " "); ok && n == name {
			return sha
		}
	}
	t.Fatalf("testdata/compare/pins.txt has no %s", name)
	return ""
}

// compareCases are the comparison goldens: run B with another prompt
// (longer, shorter, after BOS, the same), another checkpoint (A's
// bf16-rounded copy, another seed) and another lens (logit and tuned, both
// ways).
var compareCases = []string{"prompt-longer", "prompt-shorter", "prompt-bos", "prompt-same",
	"model-bf16", "model-seed11", "lens-tuned", "lens-logit"}

// Tolerances of a comparison against the float64 reference (issue 16).
const (
	tolCompareKL   = 1e-3
	tolCompareProb = 1e-4
	tolLogit       = 1e-3 // a float32 logit of magnitude ~10
)

// compare holds the device's comparisons of two runs (two sessions,
// meeting on the host through Device.Logits) to the reference's: KL(P_A ‖
// P_B), B's top-1 and B's probability of A's top-1 at every right-aligned
// cell; a run compared with itself gives KLs of exactly 0 and no differing
// top-1; and the logits the device hands to the host are the reference's.
func (s *suite) compare(t *testing.T) {
	for _, name := range compareCases {
		t.Run(name, func(t *testing.T) {
			g := readCompareGolden(t, name)
			ma := s.open(t, testmodel.Dir(t, g.Model))
			mb := ma
			if b := g.Compare.B.Model; b != nil {
				testmodel.CheckPin(t, *b, name+".json", comparePin(t, *b))
				mb = s.open(t, testmodel.Dir(t, *b))
			}
			ra := inference.Request{IDs: encode(t, ma, g.Prompt, g.PrependBOS, g.IDs), TopK: 10, Target: -1}
			if g.Tuned != "" {
				ra.Tuned = loadLens(t, g.Tuned)
			}
			ra.NextToken = true
			rb := ra
			if p := g.Compare.B.Prompt; p != nil {
				rb.IDs = encode(t, mb, *p, g.PrependBOS, g.Compare.IDsB)
			}
			if l := g.Compare.B.Tuned; l != nil {
				rb.Tuned = nil
				if *l != "logit" {
					rb.Tuned = loadLens(t, *l)
				}
			}
			sa, sb := ma.NewSession(), mb.NewSession()
			defer sa.Close()
			defer sb.Close()
			p, err := inference.NewPair(sa, sb)
			if err != nil {
				t.Fatal(err)
			}
			c, err := p.Compare(context.Background(), ra, rb, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkComparison(t, g, c, name == "prompt-same")
			checkLogits(t, g, sa, ra)
		})
	}
}

// encode tokenizes a golden's prompt as the reference did.
func encode(t *testing.T, m *inference.Model, prompt string, bos bool, want []int) []int {
	t.Helper()
	ids := m.Tokenizer().EncodeIDs(prompt)
	if bos {
		ids = append([]int{m.EOT()}, ids...)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("tokenized %q to %v, reference %v", prompt, ids, want)
	}
	return ids
}

// checkComparison holds every aligned cell of c to the golden; identical
// runs must give exact zeros.
func checkComparison(t *testing.T, g *compareGolden, c *inference.Comparison, identical bool) {
	t.Helper()
	gc := g.Compare
	if c.Columns != gc.Columns || len(c.Cells) != len(gc.KL) {
		t.Fatalf("%d rows × %d columns, reference %d × %d", len(c.Cells), c.Columns, len(gc.KL), gc.Columns)
	}
	var maxKL, maxProb, maxDelta float64
	differs := 0
	for l, row := range c.Cells {
		for j, pc := range row {
			if pc.NonFinite {
				t.Fatalf("row %d column %d is not finite", l, j)
			}
			ta := c.PosA(j)
			maxKL = max(maxKL, math.Abs(pc.KL-gc.KL[l][j]))
			maxProb = max(maxProb, math.Abs(pc.ProbB-gc.ProbB[l][j]))
			maxDelta = max(maxDelta, math.Abs(pc.DeltaTop1()-(gc.ProbB[l][j]-g.Results.F64.TopProbs[l][ta][0])))
			if pc.Top1B != gc.Top1B[l][j] {
				t.Errorf("row %d column %d: top1_b %d, reference %d", l, j, pc.Top1B, gc.Top1B[l][j])
			}
			if want := g.Results.F64.TopIDs[l][ta][0]; pc.Top1A != want {
				t.Errorf("row %d column %d: A's top-1 %d, reference %d", l, j, pc.Top1A, want)
			}
			if a, b := c.A.Cells[l][ta].Top[0].ID, c.B.Cells[l][c.PosB(j)].Top[0].ID; a != pc.Top1A || b != pc.Top1B {
				t.Errorf("row %d column %d: the runs' cells say top-1 %d and %d, the pair %d and %d", l, j, a, b, pc.Top1A, pc.Top1B)
			}
			if pc.Top1Differs() {
				differs++
			}
			if identical && (pc.KL != 0 || pc.Top1Differs() || pc.DeltaTop1() != 0) {
				t.Errorf("row %d column %d of a run compared with itself: %+v", l, j, pc)
			}
		}
	}
	t.Logf("max |ΔKL| %.2e, |Δprob_b_of_top1_a| %.2e, |Δ(Δp top-1)| %.2e; %d cells of %d differ in top-1",
		maxKL, maxProb, maxDelta, differs, len(c.Cells)*c.Columns)
	if maxKL > tolCompareKL || maxProb > tolCompareProb || maxDelta > tolCompareProb {
		t.Errorf("outside tolerance: |ΔKL| %.2e (≤ %g), |Δp| %.2e and %.2e (≤ %g)", maxKL, tolCompareKL, maxProb, maxDelta, tolCompareProb)
	}
}

// checkLogits holds the logits a session hands to the host (Device.Logits,
// through the tuned lens when there is one) to the reference's probe
// logits, at every row and position.
func checkLogits(t *testing.T, g *compareGolden, sess *inference.Session, req inference.Request) {
	t.Helper()
	T, R := len(req.IDs), len(g.Results.F64.ProbeLogits)
	V := sess.Model().Config().VocabSize
	out := make([]float32, R*T*V)
	if err := sess.Logits(context.Background(), req, 0, T, out); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for r := range R {
		for p := range T {
			for i, id := range g.ProbeIDs {
				if id >= V {
					continue
				}
				worst = max(worst, math.Abs(float64(out[(r*T+p)*V+id])-g.Results.F64.ProbeLogits[r][p][i]))
			}
		}
	}
	if worst > tolLogit {
		t.Errorf("logits on the host differ from the reference's probe logits by %.2e (≤ %g)", worst, tolLogit)
	}
}
