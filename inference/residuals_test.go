package inference

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/logitlens/logitlens/weights/testmodel"
)

// TestResidualsMatchReference: the rows Residuals returns have the
// reference's norms and first four values (resid_norm, resid_head).
func TestResidualsMatchReference(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("devicetest", "testdata", "golden", "eiffel.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		IDs     []int  `json:"ids"`
		SHA256  string `json:"model_safetensors_sha256"`
		Results struct {
			F64 struct {
				Norm [][]float64   `json:"resid_norm"`
				Head [][][]float64 `json:"resid_head"`
			} `json:"float64"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	testmodel.CheckPin(t, "tiny-f32", "inference/devicetest/testdata/golden/eiffel.json", g.SHA256)
	m := testModel(t, "tiny-f32")
	hs, err := m.Residuals(context.Background(), g.IDs)
	if err != nil {
		t.Fatal(err)
	}
	C := m.cfg.NEmbd
	if len(hs) != m.cfg.NLayer+1 {
		t.Fatalf("%d rows", len(hs))
	}
	worst := 0.0
	for l, h := range hs {
		for p := range g.IDs {
			x := h[p*C : (p+1)*C]
			var ss float64
			for _, v := range x {
				ss += float64(v) * float64(v)
			}
			want := g.Results.F64.Norm[l][p]
			worst = max(worst, math.Abs(math.Sqrt(ss)-want)/want)
			for j, w := range g.Results.F64.Head[l][p] {
				worst = max(worst, math.Abs(float64(x[j])-w)/max(1, math.Abs(w)))
			}
		}
	}
	if worst > 1e-5 {
		t.Errorf("residuals differ from the reference by up to %g (relative)", worst)
	}
	if _, err := m.Residuals(context.Background(), nil); err == nil {
		t.Error("no tokens accepted")
	}
}
