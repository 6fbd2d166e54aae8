package inference

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/logitlens/logitlens/weights/testmodel"
)

// The goldens of the tuned lens (testdata/golden/tuned-*.json): lens_ref.py
// --tuned over the tiny-f32 checkpoint of weights/testmodel, written by
// tools/goldens/regen.sh. The logit lens's own goldens are the conformance
// suite's (devicetest/testdata/golden).

// golden is the part of lens_ref.py's JSON the tests read. Arrays are
// [n_layer+1][T] or [n_layer+1][T][k].
type golden struct {
	Prompt     string `json:"prompt"`
	PrependBOS bool   `json:"prepend_bos"`
	IDs        []int  `json:"ids"`
	SHA256     string `json:"model_safetensors_sha256"`
	ProbeIDs   []int  `json:"probe_ids"`
	Results    struct {
		F64 struct {
			TopIDs        [][][]int     `json:"top_ids"`
			TopProbs      [][][]float64 `json:"top_probs"`
			MinGap        [][]float64   `json:"topk_min_gap"`
			Entropy       [][]float64   `json:"entropy"`
			KL            [][]float64   `json:"kl_final_layer"`
			FinalTop1     []int         `json:"final_top1"`
			FinalTop1Rank [][]int       `json:"final_top1_rank"`
			FinalTop1Prob [][]float64   `json:"final_top1_prob"`
			LSE           [][]float64   `json:"logsumexp"`
			ProbeLogits   [][][]float64 `json:"probe_logits"`
		} `json:"float64"`
	} `json:"results"`
}

func readGolden(t *testing.T, name, model string) *golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	testmodel.CheckPin(t, model, "inference/testdata/golden/"+name+".json", g.SHA256)
	return &g
}

// Tolerances against the float64 reference (issue #3).
const (
	tolProb    = 1e-4
	tolNats    = 1e-3
	tolMinGap  = 1e-5 // compare top-k ids only where the reference's gaps exceed this
	tolOwnProb = 1e-6 // incremental vs full recompute, same float32 code
)

// checkAgainstGolden compares every block row of l with the reference and
// reports the largest differences. A rank may differ from the reference's by
// at most ties(row, pos): the logits within float32 rounding of the ranked
// one, whose order no float32 product can resolve.
func checkAgainstGolden(t *testing.T, g *golden, l *Lens, ties func(row, pos int) int) {
	t.Helper()
	r := g.Results.F64
	if !slices.Equal(l.IDs, g.IDs) {
		t.Fatalf("ids %v, reference %v", l.IDs, g.IDs)
	}
	var maxProb, maxEnt, maxKL float64
	compared := 0
	row := 0
	for ri, rw := range l.Rows {
		if rw.Kind == AttnMid {
			continue
		}
		for pos := range l.IDs {
			c := l.Cells[ri][pos]
			if r.MinGap[row][pos] > tolMinGap {
				compared++
				for j, id := range r.TopIDs[row][pos] {
					if c.Top[j].ID != id {
						t.Errorf("row %s pos %d: top[%d] = %d, reference %d", rw.Name, pos, j, c.Top[j].ID, id)
					}
				}
			}
			for j := range r.TopProbs[row][pos] {
				maxProb = max(maxProb, math.Abs(c.Top[j].Prob-r.TopProbs[row][pos][j]))
			}
			maxEnt = max(maxEnt, math.Abs(c.Entropy-r.Entropy[row][pos]))
			maxKL = max(maxKL, math.Abs(c.KLToFinal-r.KL[row][pos]))
			maxProb = max(maxProb, math.Abs(c.FinalTop1Prob-r.FinalTop1Prob[row][pos]))
			if d := c.FinalTop1Rank - r.FinalTop1Rank[row][pos]; d != 0 && (ties == nil || abs(d) > ties(ri, pos)) {
				t.Errorf("row %s pos %d: final top-1 rank %d, reference %d", rw.Name, pos, c.FinalTop1Rank, r.FinalTop1Rank[row][pos])
			}
		}
		row++
	}
	if row != len(r.Entropy) {
		t.Fatalf("%d block rows, reference %d", row, len(r.Entropy))
	}
	if !slices.Equal(l.FinalTop1, r.FinalTop1) {
		t.Errorf("final top-1 %v, reference %v", l.FinalTop1, r.FinalTop1)
	}
	t.Logf("max |Δprob| %.2e, |Δentropy| %.2e, |ΔKL| %.2e; top-k ids compared in %d cells", maxProb, maxEnt, maxKL, compared)
	if maxProb > tolProb || maxEnt > tolNats || maxKL > tolNats {
		t.Errorf("outside tolerance: |Δprob| %.2e (≤ %g), |Δentropy| %.2e, |ΔKL| %.2e (≤ %g)", maxProb, tolProb, maxEnt, maxKL, tolNats)
	}
	if compared == 0 {
		t.Error("no cell had a top-k gap large enough to compare ids")
	}
}
