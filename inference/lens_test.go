package inference

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/logitlens/logitlens/weights/testmodel"
)

// testModel opens a weights/testmodel checkpoint on the CPU.
func testModel(t testing.TB, name string) *Model {
	t.Helper()
	m, err := OpenDir(testmodel.Dir(t, name), name, NewCPUBackend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// readGolden reads one of the conformance suite's goldens (computed by the
// reference over testmodel's checkpoints) and checks it was computed on the
// checkpoint testmodel writes now.
func suiteGolden(t *testing.T, name, model string) *rankGolden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("devicetest", "testdata", "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g rankGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	testmodel.CheckPin(t, model, name+".json", g.SHA256)
	return &g
}

// TestRanksMatchReferenceExactly holds the CPU device's ranks to the
// reference's exactly: a rank may differ only by the logits that tie with
// the ranked one within float32 rounding, counted in float64 from the
// session's own residual (the conformance suite, which cannot see a
// device's residuals, accepts a difference of 2 beyond the top-k). The rest
// of every cell is the suite's (device_test.go).
func TestRanksMatchReferenceExactly(t *testing.T) {
	for _, tc := range []struct{ golden, model string }{
		{"eiffel", "tiny-f32"}, {"unicode", "tiny-f32"}, {"long-seed11", "tiny-seed11"},
		{"lmhead", "tiny-lmhead"}, {"small-shape", "small-shape"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			g := suiteGolden(t, tc.golden, tc.model)
			m := testModel(t, tc.model)
			s := m.NewSession()
			defer s.Close()
			l, err := s.Lens(context.Background(), Request{IDs: g.IDs, TopK: 10, Target: -1, NextToken: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := g.Results.F64
			compared := 0
			for row := range l.Rows {
				for pos := range g.IDs {
					c := l.Cells[row][pos]
					check := func(what string, got, want, id int) {
						if d := got - want; d != 0 && abs(d) > nearTies(s, l.Rows[row], pos, id) {
							t.Errorf("row %d pos %d: %s %d, reference %d", row, pos, what, got, want)
						}
						compared++
					}
					check("final top-1 rank", c.FinalTop1Rank, r.FinalTop1Rank[row][pos], l.FinalTop1[pos])
					if pos+1 < len(g.IDs) {
						check("next rank", c.NextRank, *r.NextRank[row][pos], g.IDs[pos+1])
					}
				}
			}
			t.Logf("%d ranks compared", compared)
		})
	}
}

// rankGolden is the part of lens_ref.py's JSON the rank test reads.
type rankGolden struct {
	IDs     []int  `json:"ids"`
	SHA256  string `json:"model_safetensors_sha256"`
	Results struct {
		F64 struct {
			FinalTop1Rank [][]int  `json:"final_top1_rank"`
			NextRank      [][]*int `json:"next_rank"`
		} `json:"float64"`
	} `json:"results"`
}

// maxCellDiff returns the largest difference between two lenses of the
// same request, failing on any difference of ids or ranks.
func maxCellDiff(t *testing.T, a, b *Lens) float64 {
	t.Helper()
	if !slices.Equal(a.IDs, b.IDs) || len(a.Rows) != len(b.Rows) {
		t.Fatalf("different shapes: %d×%d vs %d×%d", len(a.Rows), len(a.IDs), len(b.Rows), len(b.IDs))
	}
	var d float64
	for r := range a.Cells {
		for p := range a.Cells[r] {
			x, y := a.Cells[r][p], b.Cells[r][p]
			if len(x.Top) != len(y.Top) || x.FinalTop1Rank != y.FinalTop1Rank || x.TargetRank != y.TargetRank {
				t.Fatalf("row %d pos %d: %+v vs %+v", r, p, x, y)
			}
			for j := range x.Top {
				if x.Top[j].ID != y.Top[j].ID {
					t.Fatalf("row %d pos %d: top ids differ", r, p)
				}
				d = max(d, math.Abs(x.Top[j].Prob-y.Top[j].Prob))
			}
			d = max(d, math.Abs(x.Entropy-y.Entropy), math.Abs(x.KLToFinal-y.KLToFinal), math.Abs(x.TargetProb-y.TargetProb))
		}
	}
	return d
}

func abs(x int) int { return max(x, -x) }

// nearTies recomputes one lens row's logits in float64 from the session's
// stored stream and counts the ids whose logit is within float32 error of
// id's: a float32 dot product of C terms may be off by C·2⁻²⁴·Σ|x·u|
// (Higham's bound), and two logits that close may order either way.
func nearTies(s *Session, row Row, pos, id int) int {
	m := s.m
	C, V := m.cfg.NEmbd, m.cfg.VocabSize
	d := s.dev.(*cpuDevice) // these tests run the CPU device
	x := append([]float32(nil), d.streams[row.stream()][pos*C:(pos+1)*C]...)
	layerNorm(x, x, d.w.lnFG, d.w.lnFB, C, float32(m.cfg.LayerNormEpsilon))
	u := m.ckpt.LMHead().Data // [V,C]
	logit := func(j int) (z, abs float64) {
		for p, v := range x {
			t := float64(v) * float64(u[j*C+p])
			z += t
			abs += math.Abs(t)
		}
		return z, abs
	}
	zi, ai := logit(id)
	n := 0
	for j := 0; j < V; j++ {
		zj, aj := logit(j)
		if j != id && math.Abs(zj-zi) <= float64(C)*math.Ldexp(ai+aj, -24) {
			n++
		}
	}
	return n
}
