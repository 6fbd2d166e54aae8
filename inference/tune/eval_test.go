package tune

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/logitlens/logitlens/weights/tunedlens"
)

// TestEvaluateMatchesReference: Evaluate's per-row means, over one window
// of the reference's prompt, are the means of the reference's cells
// (lens_ref.py, float64: kl_final_layer, and −log next_prob for the
// next-token cross-entropy), for the logit lens and for tuned lenses with
// and without bias. The goldens are the conformance suite's.
func TestEvaluateMatchesReference(t *testing.T) {
	m := FromInference(tinyModel(t))
	golden := filepath.Join("..", "devicetest", "testdata", "golden")
	for _, c := range []struct{ golden, lens string }{{"eiffel", ""}, {"tuned-f32", "f32"}, {"tuned-nobias", "nobias"}} {
		t.Run(c.golden, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(golden, c.golden+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var g struct {
				IDs     []int // what the model reads, BOS included
				Results struct {
					F64 struct {
						KL       [][]float64 `json:"kl_final_layer"`
						NextProb [][]float64 `json:"next_prob"`
					} `json:"float64"`
				}
			}
			if err := json.Unmarshal(data, &g); err != nil {
				t.Fatal(err)
			}
			if len(g.IDs) < 2 || len(g.Results.F64.KL) == 0 || len(g.Results.F64.KL[0]) != len(g.IDs) {
				t.Fatalf("golden: %d ids for %d rows of cells", len(g.IDs), len(g.Results.F64.KL))
			}
			var lens *tunedlens.Lens
			if c.lens != "" {
				if lens, err = tunedlens.Load(filepath.Join("..", "devicetest", "testdata", "lenses", c.lens), 64, 2); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Evaluate(context.Background(), m, lens, [][]int{g.IDs})
			if err != nil {
				t.Fatal(err)
			}
			ref := g.Results.F64
			if len(got) != len(ref.KL) {
				t.Fatalf("%d rows, reference %d", len(got), len(ref.KL))
			}
			T := len(g.IDs)
			for r := range got {
				var kl, ce float64
				for p := range T {
					kl += ref.KL[r][p] / float64(T)
					if p+1 < T {
						ce -= math.Log(ref.NextProb[r][p]) / float64(T-1)
					}
				}
				t.Logf("row %d: KL %.6f (reference %.6f), CE %.6f (reference %.6f)", r, got[r].KL, kl, got[r].CE, ce)
				if d := math.Abs(got[r].KL - kl); d > 1e-4+1e-3*kl {
					t.Errorf("row %d: mean KL %.6f, reference %.6f", r, got[r].KL, kl)
				}
				if d := math.Abs(got[r].CE - ce); d > 1e-4+1e-4*ce {
					t.Errorf("row %d: mean next-token CE %.6f, reference %.6f", r, got[r].CE, ce)
				}
			}
		})
	}
}
