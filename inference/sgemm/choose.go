package sgemm

import (
	"os"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	"gorgonia.org/tensor"
)

// Where the matrix products go. tensor.MatMul calls the BLAS installed with
// tensor.Use; every float32 product of the forward pass and the lens is one
// Sgemm. Use installs, once, the fastest Sgemm this machine offers:
//
//  1. our own blocked, packed, parallel Sgemm (sgemm.go) with Go assembly
//     micro-kernels, where the CPU has AVX-512 or AVX2+FMA;
//  2. otherwise OpenBLAS (cblas_sgemm), loaded at run time from
//     libopenblas.so.0 with no cgo, when the system has it (openblas_dl.go);
//  3. otherwise our Sgemm with its plain Go micro-kernel.
//
// Ours comes first because it was measured faster (docs/PERFORMANCE.md:
// Debian's OpenBLAS 0.3.21 reached 25–29 GFLOP/s per core on the lens's
// products on the development machine, our AVX-512 kernels 90–115, AVX2 50–60)
// and because it sums each row of C in an order independent of the other
// rows, so a one-token step reproduces a full recompute bit for bit.
// LOGITLENS_BLAS=openblas|go|gonum forces a choice; LOGITLENS_OPENBLAS names
// the OpenBLAS library file to load.

// sgemmFunc computes C = alpha·op(A)·op(B) + beta·C on row-major matrices,
// op(X) = Xᵀ when the matching trans flag is set; op(A) is m×k, op(B) k×n.
type sgemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// cpuBLAS is gonum's BLAS with Sgemm replaced.
type cpuBLAS struct {
	gonum.Implementation
	sgemm sgemmFunc
}

// Sgemm implements blas.Float32 (row-major, as tensor calls it).
func (b cpuBLAS) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, bb []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	b.sgemm(tA != blas.NoTrans, tB != blas.NoTrans, m, n, k, alpha, a, lda, bb, ldb, beta, c, ldc)
}

var (
	once     sync.Once
	name     = "gonum (pure Go)"
	note     string
	ours     bool      // the installed Sgemm is goSgemm
	selected sgemmFunc // the installed Sgemm; nil for gonum's
)

// Use installs the fastest Sgemm this machine offers as gorgonia's
// tensor.MatMul BLAS (see the order above) and returns its name, e.g.
// "go avx2+fma (2 threads)" or "openblas 0.3.21 (2 threads)". Only the
// first call chooses; later calls return the same name.
func Use() string {
	once.Do(func() {
		threads := runtime.GOMAXPROCS(0)
		want := os.Getenv("LOGITLENS_BLAS")
		switch {
		case want == "gonum":
			tensor.Use(gonum.Implementation{})
			name = "gonum (pure Go)"
			return
		case want == "go" || (want == "" && len(asmKernels()) > 0):
			install(goSgemmName(), goSgemm, true)
			return
		}
		n, f, err := loadOpenBLAS(os.Getenv("LOGITLENS_OPENBLAS"), threads)
		if err == nil {
			install(n, f, false)
			return
		}
		if want == "openblas" {
			note = err.Error()
		}
		install(goSgemmName(), goSgemm, true)
	})
	return name
}

// Note says why the preferred BLAS was not taken (LOGITLENS_BLAS=openblas
// without a loadable OpenBLAS), or "".
func Note() string {
	Use()
	return note
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C on row-major matrices with
// the implementation Use chose, op(X) = Xᵀ when the matching trans flag is
// set; op(A) is m×k, op(B) k×n, and lda, ldb, ldc are the row strides.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	Use()
	if m == 0 || n == 0 {
		return
	}
	if selected != nil {
		selected(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	op := func(t bool) blas.Transpose {
		if t {
			return blas.Trans
		}
		return blas.NoTrans
	}
	gonum.Implementation{}.Sgemm(op(transA), op(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func install(n string, f sgemmFunc, isOurs bool) {
	selected, ours = f, isOurs
	tensor.Use(cpuBLAS{sgemm: f})
	name = n
}
