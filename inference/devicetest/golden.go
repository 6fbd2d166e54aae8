package devicetest

import (
	"embed"
	"encoding/json"
	"testing"

	"github.com/logitlens/logitlens/weights/testmodel"
)

// goldenFS holds the lens of the independent reference (shared/reference/
// lens_ref.py, torch, float64) over weights/testmodel's checkpoints,
// written by tools/goldens/regen.sh. They are embedded so that a test
// binary built with `go test -c` runs on a machine with nothing else.
//
//go:embed testdata/golden/*.json
var goldenFS embed.FS

// golden is the part of lens_ref.py's JSON the suite reads. Arrays are
// [n_layer+1][T], or [n_layer+1][T][k].
type golden struct {
	Model      string `json:"model_dir"` // the testmodel checkpoint it was computed on
	Prompt     string `json:"prompt"`
	PrependBOS bool   `json:"prepend_bos"`
	IDs        []int  `json:"ids"`
	SHA256     string `json:"model_safetensors_sha256"`
	ProbeIDs   []int  `json:"probe_ids"`
	Results    struct {
		F64 struct {
			TopIDs        [][][]int     `json:"top_ids"`
			TopLogits     [][][]float64 `json:"top_logits"`
			TopProbs      [][][]float64 `json:"top_probs"`
			MinGap        [][]float64   `json:"topk_min_gap"`
			Entropy       [][]float64   `json:"entropy"`
			KL            [][]float64   `json:"kl_final_layer"`
			FinalTop1     []int         `json:"final_top1"`
			FinalTop1Rank [][]int       `json:"final_top1_rank"`
			FinalTop1Prob [][]float64   `json:"final_top1_prob"`
			LSE           [][]float64   `json:"logsumexp"`
			NextProb      [][]*float64  `json:"next_prob"` // null at the last position
			NextRank      [][]*int      `json:"next_rank"`
			ProbeLogits   [][][]float64 `json:"probe_logits"`
			ResidNorm     [][]float64   `json:"resid_norm"` // ‖h[l][t]‖₂
			ResidHead     [][][]float64 `json:"resid_head"` // h[l][t][:4]
		} `json:"float64"`
	} `json:"results"`
}

// readGolden reads testdata/golden/<name>.json and returns it with the
// directory of the checkpoint it was computed on, which must still be the
// one testmodel generates.
func readGolden(t *testing.T, name, model string) (*golden, string) {
	t.Helper()
	b, err := goldenFS.ReadFile("testdata/golden/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("golden %s: %v", name, err)
	}
	dir := testmodel.Dir(t, model)
	if model == g.Model { // not the goldens of edited copies (eiffel-mid*)
		testmodel.CheckPin(t, model, name+".json", g.SHA256)
	}
	return &g, dir
}
