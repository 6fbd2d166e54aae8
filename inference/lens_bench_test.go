package inference

import (
	"context"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// benchModel opens the small-shape fixture (GPT-2 small's shape) for the
// benchmarks below.
func benchModel(b *testing.B) *Model {
	return testModel(b, "small-shape")
}

func benchIDs(m *Model, T int) []int {
	ids := make([]int, T)
	for i := range ids {
		ids[i] = (i*7919 + 13) % m.vocabTok
	}
	return ids
}

// benchLens times the full lens of T tokens from scratch, with the next
// token's statistics when next is set.
func benchLens(b *testing.B, T int, next bool) {
	m := benchModel(b)
	s := m.NewSession()
	ids := benchIDs(m, T)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		ids[0] = i & 1 // nothing reusable
		if _, err := s.Lens(context.Background(), Request{IDs: ids, TopK: 10, Target: 5, NextToken: next}, nil); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpuTime()-cpu0)
}

// benchAppend times one token appended to a cached prefix of T−1.
func benchAppend(b *testing.B, T int) {
	m := benchModel(b)
	s := m.NewSession()
	ids := benchIDs(m, T)
	req := func(ids []int) Request { return Request{IDs: ids, TopK: 10, Target: 5} }
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := s.Lens(context.Background(), req(ids[:T-1]), nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		cpu0 := cpuTime()
		if _, err := s.Lens(context.Background(), req(ids), nil); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - cpu0
	}
	reportCPU(b, cpu)
}

func BenchmarkLensT16(b *testing.B)     { benchLens(b, 16, false) }
func BenchmarkLensT64(b *testing.B)     { benchLens(b, 64, false) }
func BenchmarkLensT128(b *testing.B)    { benchLens(b, 128, false) }
func BenchmarkLensNextT64(b *testing.B) { benchLens(b, 64, true) }
func BenchmarkAppendT16(b *testing.B)   { benchAppend(b, 16) }
func BenchmarkAppendT64(b *testing.B)   { benchAppend(b, 64) }
func BenchmarkAppendT128(b *testing.B)  { benchAppend(b, 128) }

// BenchmarkUnembedStats times the lens of 64 positions (ln_f, the
// unembedding GEMM and every statistic) on stored rows; its gemm part the
// same without the statistics.
func BenchmarkUnembedStats(b *testing.B) {
	m := benchModel(b)
	d := m.backend.NewDevice()
	defer d.Close()
	ids := benchIDs(m, 64)
	if err := d.Forward(context.Background(), ids, 0); err != nil {
		b.Fatal(err)
	}
	rows := m.Rows(false)
	out := make([][]Cell, len(rows))
	for r := range out {
		out[r] = make([]Cell, len(ids))
	}
	req := LensRequest{Rows: rows, From: 0, To: len(ids), TopK: 10, Target: 5}
	b.Run("lens", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			d.Lens(context.Background(), req, out)
		}
	})
	req.LogitsOnly = true
	b.Run("gemm", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			d.Lens(context.Background(), req, out)
		}
	})
}

// BenchmarkAttention times causal attention of 128 queries, GPT-2 small's
// width and heads.
func BenchmarkAttention(b *testing.B) {
	const T, C, H = 128, 768, 12
	q, k, v, out := randSlice(T*C), randSlice(T*C), randSlice(T*C), make([]float32, T*C)
	for i := 0; i < b.N; i++ {
		attention(out, q, k, v, T, 0, C, H)
	}
}

// BenchmarkLayerNorm times ln over 128 rows of 768.
func BenchmarkLayerNorm(b *testing.B) {
	const T, C = 128, 768
	x, g, bb, out := randSlice(T*C), randSlice(C), randSlice(C), make([]float32, T*C)
	for i := 0; i < b.N; i++ {
		layerNorm(out, x, g, bb, C, 1e-5)
	}
}

// BenchmarkGELU times GELU over a [128, 3072] activation.
func BenchmarkGELU(b *testing.B) {
	x := randSlice(128 * 3072)
	y := make([]float32, len(x))
	for i := 0; i < b.N; i++ {
		copy(y, x)
		gelu(y)
	}
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time (all threads) per op: on a shared machine
// it is less disturbed by other load than the wall time.
func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(cpu)/1e6/float64(b.N), "cpu-ms/op")
}

func randSlice(n int) []float32 {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}
