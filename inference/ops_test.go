package inference

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The vector GELU, dot and axpy equal their plain loops on every length up
// to a few vectors and on values across GELU's range.
func TestVectorOpsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for n := 0; n <= 70; n++ {
		for _, scale := range []float32{0.01, 1, 4, 30, 200} {
			x := make([]float32, n)
			for i := range x {
				x[i] = (r.Float32()*2 - 1) * scale
			}
			got, want := append([]float32(nil), x...), append([]float32(nil), x...)
			gelu(got)
			geluRef(want)
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 2e-6*max(1, math.Abs(float64(want[i]))) || math.IsNaN(float64(got[i])) {
					t.Fatalf("gelu(%g) = %g, reference %g", x[i], got[i], want[i])
				}
			}
			y := make([]float32, n)
			for i := range y {
				y[i] = r.Float32()
			}
			if g, w := dot(x, y), dotRef(x, y); math.Abs(float64(g-w)) > 1e-5*float64(scale)*float64(n+1) {
				t.Fatalf("n=%d: dot %g, reference %g", n, g, w)
			}
			gy, wy := append([]float32(nil), y...), append([]float32(nil), y...)
			axpy(0.37, x, gy)
			axpyRef(0.37, x, wy)
			for i := range gy {
				if math.Abs(float64(gy[i]-wy[i])) > 1e-6*(math.Abs(float64(wy[i]))+float64(scale)) {
					t.Fatalf("n=%d: axpy[%d] %g, reference %g", n, i, gy[i], wy[i])
				}
			}
		}
	}
}
