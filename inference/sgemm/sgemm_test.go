package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
)

// kernelSets are the micro-kernel sets this machine can run, each also with
// a tiny k block so blocking along k is exercised on small shapes.
func kernelSets() []*gemmKernels {
	sets := append([]*gemmKernels{goKernels}, asmKernels()...)
	var out []*gemmKernels
	for _, g := range sets {
		small := *g
		small.kc = 20 // crosses k blocks and leaves a tail for packT8
		small.name += "/kc" + fmt.Sprint(small.kc)
		out = append(out, g, &small)
	}
	return out
}

// withBlocks runs f with the package's block sizes set small, so a few
// columns and rows cross every block boundary.
func withBlocks(nc, mc, direct int, f func()) {
	o := [3]int{gemmNC, gemmMC, gemmDirectM}
	gemmNC, gemmMC, gemmDirectM = nc, mc, direct
	defer func() { gemmNC, gemmMC, gemmDirectM = o[0], o[1], o[2] }()
	f()
}

type gemmCase struct {
	tA, tB      bool
	m, n, k     int
	alpha, beta float32
	pad         int // extra columns in each leading dimension
}

// checkSgemm runs the case through g and sgemmRef and compares, relative to
// Σ|a·b| (float32 rounding grows with k).
func checkSgemm(t *testing.T, g *gemmKernels, r *rand.Rand, tc gemmCase) {
	t.Helper()
	ra, ca := tc.m, tc.k
	if tc.tA {
		ra, ca = tc.k, tc.m
	}
	rb, cb := tc.k, tc.n
	if tc.tB {
		rb, cb = tc.n, tc.k
	}
	lda, ldb, ldc := max(1, ca+tc.pad), max(1, cb+tc.pad), tc.n+tc.pad
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = r.Float32()*2 - 1
		}
		return s
	}
	a, b := fill(max(0, (ra-1)*lda+ca)), fill(max(0, (rb-1)*ldb+cb))
	c := fill(max(0, (tc.m-1)*ldc+tc.n))
	want := append([]float32(nil), c...)
	switch {
	case g.outer == nil && strings.HasPrefix(g.name, "openblas") && g.name != Use():
		_, f, _ := loadOpenBLAS(os.Getenv("LOGITLENS_OPENBLAS"), 2)
		f(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	case g.outer == nil:
		selected(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	default:
		sgemmWith(g, tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	}
	sgemmRef(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
	tol := 1e-6 * float64(tc.k+4)
	for i := range c {
		if math.Abs(float64(c[i]-want[i])) > tol || math.IsNaN(float64(c[i])) {
			t.Fatalf("%s %+v: c[%d] = %g, reference %g", g.name, tc, i, c[i], want[i])
		}
	}
}

// Every shape up to a few tiles, every transpose, alpha and beta, on every
// kernel set and path (direct B, packed B).
func TestSgemmMatchesReferenceExhaustive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, g := range kernelSets() {
		withBlocks(2*g.nr+1, 2*g.mr, 3, func() {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					for m := 1; m <= 2*g.mr+1; m++ {
						for _, n := range []int{1, 3, g.nr - 1, g.nr, g.nr + 1, 2*g.nr + 5, 5*g.nr + 3} {
							for _, k := range []int{0, 1, 7, g.kc, g.kc + 3, 33} {
								checkSgemm(t, g, r, gemmCase{tA, tB, m, n, k, 1, 0, 0})
							}
						}
					}
				}
			}
			for _, ab := range [][2]float32{{1, 1}, {0.5, -2}, {0, 0.5}, {2, 0}} {
				checkSgemm(t, g, r, gemmCase{false, true, 7, 2*g.nr + 3, 40, ab[0], ab[1], 3})
				checkSgemm(t, g, r, gemmCase{false, false, 30, 2*g.nr + 3, 40, ab[0], ab[1], 2})
				checkSgemm(t, g, r, gemmCase{true, false, 2, 9, 17, ab[0], ab[1], 1})
			}
		})
	}
}

// Random shapes with the real block sizes.
func TestSgemmMatchesReferenceRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, g := range kernelSets() {
		for range 25 {
			tc := gemmCase{
				tA: r.IntN(4) == 0, tB: r.IntN(2) == 0,
				m: 1 + r.IntN(70), n: 1 + r.IntN(300), k: r.IntN(300),
				alpha: 1, beta: []float32{0, 1, 0.25}[r.IntN(3)], pad: r.IntN(3),
			}
			checkSgemm(t, g, r, tc)
		}
	}
}

// The installed BLAS (whichever Use chose) agrees too, through
// tensor's Sgemm with a transposed view, as the lens calls it.
func TestInstalledBLASMatchesReference(t *testing.T) {
	Use()
	t.Log("BLAS:", Use())
	if selected == nil {
		t.Skip("gonum's BLAS is installed")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []gemmCase{{false, true, 13, 1000, 64, 1, 0, 0}, {false, false, 5, 200, 96, 1, 0, 0}, {false, true, 100, 77, 33, 1, 0, 0}} {
		checkSgemm(t, &gemmKernels{name: Use()}, r, tc)
	}
}

// A row of C does not depend on the other rows of the product: the lens of
// one appended token must equal the full recompute bit for bit.
func TestSgemmRowsIndependentOfM(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, g := range kernelSets() {
		for _, tc := range []struct {
			tB bool
			n  int
		}{{false, 3*g.nr + 7}, {true, 3*g.nr + 7}, {false, 3 * g.nr}, {false, 24}} { // n%8 == 0: the one-row gemv
			tB, n := tc.tB, tc.n
			m, k := 40, 2*g.kc+5
			a, b := make([]float32, m*k), make([]float32, n*k)
			for i := range a {
				a[i] = r.Float32()
			}
			for i := range b {
				b[i] = r.Float32()
			}
			ldb := n
			if tB {
				ldb = k
			}
			full := make([]float32, m*n)
			sgemmWith(g, false, tB, m, n, k, 1, a, k, b, ldb, 0, full, n)
			for _, rows := range [][2]int{{0, 1}, {7, 8}, {3, 16}, {39, 40}, {10, 35}} {
				part := make([]float32, (rows[1]-rows[0])*n)
				sgemmWith(g, false, tB, rows[1]-rows[0], n, k, 1, a[rows[0]*k:], k, b, ldb, 0, part, n)
				for i := range part {
					if part[i] != full[rows[0]*n+i] {
						t.Fatalf("%s tB=%v rows %v: element %d = %g, in the full product %g", g.name, tB, rows, i, part[i], full[rows[0]*n+i])
					}
				}
			}
		}
	}
}

// OpenBLAS, when this machine has it, loaded without cgo, agrees too
// (CI installs libopenblas0).
func TestOpenBLASMatchesReference(t *testing.T) {
	name, _, err := loadOpenBLAS(os.Getenv("LOGITLENS_OPENBLAS"), 2)
	if err != nil {
		t.Skip(err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	for _, tc := range []gemmCase{{false, true, 13, 1000, 64, 1, 0, 0}, {false, false, 5, 200, 96, 0.5, 1, 2}, {true, true, 30, 77, 33, 1, 0.5, 1}} {
		checkSgemm(t, &gemmKernels{name: name}, r, tc)
	}
}

// A B packed once gives, bit for bit, what packing on the fly gives, on
// every kernel set, and done sees every column once.
func TestSgemmPackedEqualsUnpacked(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, g := range kernelSets() {
		for _, tB := range []bool{false, true} {
			for _, shape := range [][3]int{{1, 1, 1}, {13, 5*g.nr + 3, 2*g.kc + 7}, {30, 70*g.nr + 1, 40}, {3, 7, g.kc}} {
				m, n, k := shape[0], shape[1], shape[2]
				a, b := make([]float32, m*k), make([]float32, n*k)
				for i := range a {
					a[i] = r.Float32()*2 - 1
				}
				for i := range b {
					b[i] = r.Float32()*2 - 1
				}
				ldb := n
				if tB {
					ldb = k
				}
				seen := make([]int, n)
				var mu sync.Mutex
				pb := packBAll(g, tB, k, n, b, ldb, func(j0, j1 int) {
					mu.Lock()
					defer mu.Unlock()
					for j := j0; j < j1; j++ {
						seen[j]++
					}
				})
				for j, s := range seen {
					if s != 1 {
						t.Fatalf("%s: column %d reported %d times", g.name, j, s)
					}
				}
				col := make([]float32, k)
				for j := 0; j < n; j++ {
					pb.column(col, j)
					for p := range col {
						if col[p] != b[off(tB, p, j, ldb)] {
							t.Fatalf("%s: column %d of the packing differs at %d", g.name, j, p)
						}
					}
				}
				want, got := make([]float32, m*n), make([]float32, m*n)
				sgemmWith(g, false, tB, m, n, k, 1, a, k, b, ldb, 0, want, n)
				sgemmPacked(m, a, pb, got)
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("%s tB=%v %v: element %d = %g, unpacked %g", g.name, tB, shape, i, got[i], want[i])
					}
				}
			}
		}
	}
}
