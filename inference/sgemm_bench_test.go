package inference

import (
	"math/rand/v2"
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

func openblasOrSkip(b *testing.B) sgemmFunc {
	_, f, err := loadOpenBLAS("", 2)
	if err != nil {
		b.Skip(err)
	}
	return f
}

func BenchmarkOpenBLASLensT128(b *testing.B) {
	benchSgemm(b, openblasOrSkip(b), true, 13*128, 50257, 768)
}
func BenchmarkOpenBLASLensT16(b *testing.B) {
	benchSgemm(b, openblasOrSkip(b), true, 13*16, 50257, 768)
}
func BenchmarkOpenBLASLensT1(b *testing.B) { benchSgemm(b, openblasOrSkip(b), true, 13, 50257, 768) }
func BenchmarkOpenBLASFcT1(b *testing.B)   { benchSgemm(b, openblasOrSkip(b), false, 1, 3072, 768) }
func BenchmarkOpenBLASFcT16(b *testing.B)  { benchSgemm(b, openblasOrSkip(b), false, 16, 3072, 768) }
func BenchmarkOpenBLASFcT128(b *testing.B) { benchSgemm(b, openblasOrSkip(b), false, 128, 3072, 768) }

func withKernels(g *gemmKernels) sgemmFunc {
	return func(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		sgemmWith(g, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}

func BenchmarkGoSgemm(b *testing.B) {
	for _, g := range asmKernels() {
		for _, s := range []struct {
			name    string
			tB      bool
			m, n, k int
		}{
			{"lensT128", true, 13 * 128, 50257, 768}, {"lensT16", true, 13 * 16, 50257, 768}, {"lensT1", true, 13, 50257, 768},
			{"fcT1", false, 1, 3072, 768}, {"fcT16", false, 16, 3072, 768}, {"fcT32", false, 32, 3072, 768}, {"projT32", false, 32, 768, 3072},
		} {
			b.Run(g.name+"/"+s.name, func(b *testing.B) { benchSgemm(b, withKernels(g), s.tB, s.m, s.n, s.k) })
		}
	}
}
