package sgemm

import (
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchSgemm(b *testing.B, f sgemmFunc, transB bool, m, n, k int) {
	r := rand.New(rand.NewPCG(1, 2))
	a := make([]float32, m*k)
	w := make([]float32, k*n)
	c := make([]float32, m*n)
	for i := range a {
		a[i] = r.Float32()
	}
	for i := range w {
		w[i] = r.Float32()
	}
	ldb := n
	if transB {
		ldb = k
	}
	f(false, transB, m, n, k, 1, a, k, w, ldb, 0, c, n)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f(false, transB, m, n, k, 1, a, k, w, ldb, 0, c, n)
	}
	flop := 2 * float64(m) * float64(n) * float64(k) * float64(b.N)
	b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	// Per CPU-second of this process: less disturbed by other load on a shared machine.
	b.ReportMetric(flop/(cpuTime()-cpu0).Seconds()/1e9, "GFLOP/cpu-s")
}

func withKernels(g *gemmKernels) sgemmFunc {
	return func(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		sgemmWith(g, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}

// BenchmarkSgemm times the lens's and the forward's products (T tokens, 13
// lens rows) on each Sgemm this machine has.
func BenchmarkSgemm(b *testing.B) {
	impls := map[string]sgemmFunc{}
	var names []string
	if _, f, err := loadOpenBLAS("", runtime.GOMAXPROCS(0)); err == nil {
		impls["openblas"] = f
		names = append(names, "openblas")
	}
	for _, g := range append(asmKernels(), goKernels) {
		impls[g.name] = withKernels(g)
		names = append(names, g.name)
	}
	for _, name := range names {
		for _, s := range []struct {
			name    string
			tB      bool
			m, n, k int
		}{
			{"lensT128", true, 13 * 128, 50257, 768}, {"lensT16", true, 13 * 16, 50257, 768}, {"lensT1", true, 13, 50257, 768},
			{"fcT1", false, 1, 3072, 768}, {"fcT16", false, 16, 3072, 768}, {"fcT32", false, 32, 3072, 768}, {"projT32", false, 32, 768, 3072},
		} {
			b.Run(name+"/"+s.name, func(b *testing.B) { benchSgemm(b, impls[name], s.tB, s.m, s.n, s.k) })
		}
	}
}
