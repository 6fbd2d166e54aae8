package cuda

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemmRowMajorArgs pins the cuBLAS arguments for the two products the
// engine runs: a Conv1D weight [K,N] as stored, and W_U = wteᵀ from wte [V,C].
func TestGemmRowMajorArgs(t *testing.T) {
	got := gemmRowMajor(3, 1, 2, 16, 2304, 768, false)
	want := SgemmCall{TransA: OpN, TransB: OpN, M: 2304, N: 16, K: 768, Alpha: 1, A: 2, LDA: 2304, B: 1, LDB: 768, C: 3, LDC: 2304}
	if got != want {
		t.Errorf("x @ w:\n got %+v\nwant %+v", got, want)
	}
	got = gemmRowMajor(3, 1, 2, 13, 50257, 768, true)
	want = SgemmCall{TransA: OpT, TransB: OpN, M: 50257, N: 13, K: 768, Alpha: 1, A: 2, LDA: 768, B: 1, LDB: 768, C: 3, LDC: 50257}
	if got != want {
		t.Errorf("x @ wteᵀ:\n got %+v\nwant %+v", got, want)
	}
}

// TestGemmRowMajorProducts runs the mapped calls through a column-major
// Sgemm (the emulated cuBLAS) and compares with a row-major triple loop.
func TestGemmRowMajorProducts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range [][3]int{{1, 1, 1}, {3, 5, 7}, {7, 5, 3}, {16, 33, 8}, {2, 50, 64}} {
		M, N, K := s[0], s[1], s[2]
		for _, transB := range []bool{false, true} {
			e := NewEmulator()
			a := make([]float32, M*K)
			b := make([]float32, K*N) // [K,N], or [N,K] when transB
			for i := range a {
				a[i] = r.Float32() - 0.5
			}
			for i := range b {
				b[i] = r.Float32() - 0.5
			}
			pa, _ := e.Alloc(4 * len(a))
			pb, _ := e.Alloc(4 * len(b))
			pc, _ := e.Alloc(4 * M * N)
			e.HtoD(pa, f32Bytes(a))
			e.HtoD(pb, f32Bytes(b))
			if err := e.Sgemm(gemmRowMajor(pc, pa, pb, M, N, K, transB)); err != nil {
				t.Fatalf("%v transB=%v: %v", s, transB, err)
			}
			c := e.f32(pc, M*N)
			for i := range M {
				for j := range N {
					var want float64
					for l := range K {
						bv := b[l*N+j]
						if transB {
							bv = b[j*K+l]
						}
						want += float64(a[i*K+l]) * float64(bv)
					}
					if math.Abs(float64(c[i*N+j])-want) > 1e-5 {
						t.Fatalf("%v transB=%v: c[%d,%d] = %g, want %g", s, transB, i, j, c[i*N+j], want)
					}
				}
			}
		}
	}
}
