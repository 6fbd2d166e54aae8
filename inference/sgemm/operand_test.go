package sgemm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// An Operand multiplies as the reference does and hands back the columns
// of B it was given, whichever Sgemm Use chose; Sgemm agrees too.
func TestOperandAndSgemm(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	t.Log("BLAS:", Use())
	for _, s := range [][3]int{{1, 1, 1}, {13, 1000, 64}, {3, 77, 33}, {130, 999, 160}} {
		m, n, k := s[0], s[1], s[2]
		a, bt := make([]float32, m*k), make([]float32, n*k)
		for i := range a {
			a[i] = r.Float32()*2 - 1
		}
		for i := range bt {
			bt[i] = r.Float32()*2 - 1
		}
		want := make([]float32, m*n)
		sgemmRef(false, true, m, n, k, 1, a, k, bt, k, 0, want, n)
		o := NewTransposed(bt, n, k)
		got := make([]float32, m*n)
		o.Mul(got, a, m)
		direct := make([]float32, m*n)
		Sgemm(false, true, m, n, k, 1, a, k, bt, k, 0, direct, n)
		for i := range got {
			if math.Abs(float64(got[i]-want[i])) > 1e-5*float64(k) || math.Abs(float64(direct[i]-want[i])) > 1e-5*float64(k) {
				t.Fatalf("%v: element %d = %g (Operand), %g (Sgemm), reference %g", s, i, got[i], direct[i], want[i])
			}
		}
		col := make([]float32, k)
		for j := range n {
			o.Column(col, j)
			for p, v := range col {
				if v != bt[j*k+p] {
					t.Fatalf("%v: column %d differs at %d", s, j, p)
				}
			}
		}
		o.Close()
	}
}
