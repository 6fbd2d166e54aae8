package inference

import (
	"math"
	"testing"
)

// pairCellOf against the definitions on small vocabularies: KL(P_A ‖ P_B)
// summed in float64, ties to the smaller id, and cells that are not finite.
func TestPairCellOf(t *testing.T) {
	softmax := func(z []float32) []float64 {
		m := math.Inf(-1)
		for _, v := range z {
			m = math.Max(m, float64(v))
		}
		var s float64
		p := make([]float64, len(z))
		for i, v := range z {
			p[i] = math.Exp(float64(v) - m)
			s += p[i]
		}
		for i := range p {
			p[i] /= s
		}
		return p
	}
	for _, tc := range []struct {
		name      string
		za, zb    []float32
		top1A     int
		top1B     int
		target    int
		nonFinite bool
		identical bool
	}{
		{"differ", []float32{1, 3, 2, 0}, []float32{4, 1, 2, 0}, 1, 0, 2, false, false},
		{"ties", []float32{2, 5, 5, 1}, []float32{7, 1, 7, 7}, 1, 0, 3, false, false},
		{"identical", []float32{0.5, -1, 2, 2}, []float32{0.5, -1, 2, 2}, 2, 2, 0, false, true},
		{"shifted", []float32{0, 1, 2, 3}, []float32{10, 11, 12, 13}, 3, 3, -1, false, false},
		{"nan in A", []float32{0, float32(math.NaN()), 1, 2}, []float32{0, 1, 2, 3}, -1, -1, -1, true, false},
		{"inf in B", []float32{0, 1, 2, 3}, []float32{0, float32(math.Inf(1)), 2, 3}, -1, -1, -1, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pairCellOf(tc.za, tc.zb, tc.target, make([]float32, len(tc.za)))
			if c.NonFinite != tc.nonFinite {
				t.Fatalf("NonFinite %v: %+v", c.NonFinite, c)
			}
			if tc.nonFinite {
				if !math.IsNaN(c.KL) || c.Top1Differs() {
					t.Errorf("%+v", c)
				}
				return
			}
			pa, pb := softmax(tc.za), softmax(tc.zb)
			var kl float64
			for i := range pa {
				kl += pa[i] * (math.Log(pa[i]) - math.Log(pb[i]))
			}
			if math.Abs(c.KL-kl) > 1e-6 || (tc.identical && c.KL != 0) {
				t.Errorf("KL %g, want %g", c.KL, kl)
			}
			if c.Top1A != tc.top1A || c.Top1B != tc.top1B {
				t.Errorf("top-1 %d and %d, want %d and %d", c.Top1A, c.Top1B, tc.top1A, tc.top1B)
			}
			if math.Abs(c.ProbA-pa[tc.top1A]) > 1e-6 || math.Abs(c.ProbB-pb[tc.top1A]) > 1e-6 {
				t.Errorf("P_A(top1_a) %g, P_B(top1_a) %g, want %g, %g", c.ProbA, c.ProbB, pa[tc.top1A], pb[tc.top1A])
			}
			if tc.target >= 0 && math.Abs(c.DeltaTarget()-(pb[tc.target]-pa[tc.target])) > 1e-6 {
				t.Errorf("Δ target %g, want %g", c.DeltaTarget(), pb[tc.target]-pa[tc.target])
			}
		})
	}
}
