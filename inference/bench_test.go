package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"testing"
)

// The report keeps the JSON shape the issue fixes, and its text renders.
func TestBenchReportShape(t *testing.T) {
	m := openModel(t, "tiny-f32")
	rep, err := Bench(context.Background(), m, BenchOptions{Tokens: []int{2, 5}, Runs: 1})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var shape struct {
		BLAS    string `json:"blas"`
		Device  string `json:"device"`
		Results []struct {
			Tokens int                `json:"tokens"`
			Full   map[string]float64 `json:"full_ms"`
			Inc    map[string]float64 `json:"incremental_ms"`
		} `json:"results"`
	}
	if err := json.Unmarshal(buf.Bytes(), &shape); err != nil {
		t.Fatal(err)
	}
	if shape.BLAS == "" || shape.Device != "cpu" || len(shape.Results) != 2 || shape.Results[1].Tokens != 5 {
		t.Fatalf("report shape: %s", buf.String())
	}
	for _, r := range shape.Results {
		for _, k := range []string{"median", "min", "max"} {
			if r.Full[k] <= 0 || r.Inc[k] <= 0 {
				t.Fatalf("%d tokens: %s missing: %s", r.Tokens, k, buf.String())
			}
		}
	}
	buf.Reset()
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + buf.String())
	if _, err := Bench(context.Background(), m, BenchOptions{Tokens: []int{1}}); err == nil {
		t.Error("1 token: no error")
	}
}

// go test -run BenchSmallShape -v ./inference/ with LOGITLENS_BENCH=1 prints
// the bench report for the small-shape fixture.
func TestBenchSmallShape(t *testing.T) {
	if os.Getenv("LOGITLENS_BENCH") == "" {
		t.Skip("set LOGITLENS_BENCH=1")
	}
	m := openModel(t, "small-shape")
	rep, err := Bench(context.Background(), m, BenchOptions{Runs: 3})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.WriteText(&buf)
	t.Log("\n" + buf.String())
}

// benchModel opens the small-shape fixture (GPT-2 small's shape) for the
// benchmarks below.
func benchModel(b *testing.B) *Model {
	m := openModel(b, "small-shape")
	UseBestBLAS()
	return m
}

func benchIDs(m *Model, T int) []int {
	ids := make([]int, T)
	for i := range ids {
		ids[i] = (i*7919 + 13) % m.vocabTok
	}
	return ids
}

// benchLens times the full lens of T tokens from scratch.
func benchLens(b *testing.B, T int) {
	m := benchModel(b)
	s := m.NewSession()
	ids := benchIDs(m, T)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ids[0] = i & 1 // nothing reusable
		if _, err := s.Lens(context.Background(), Request{IDs: ids, TopK: 10, Target: 5}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// benchAppend times one token appended to a cached prefix of T−1.
func benchAppend(b *testing.B, T int) {
	m := benchModel(b)
	s := m.NewSession()
	ids := benchIDs(m, T)
	req := func(ids []int) Request { return Request{IDs: ids, TopK: 10, Target: 5} }
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := s.Lens(context.Background(), req(ids[:T-1]), nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Lens(context.Background(), req(ids), nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLensT16(b *testing.B)    { benchLens(b, 16) }
func BenchmarkLensT64(b *testing.B)    { benchLens(b, 64) }
func BenchmarkLensT128(b *testing.B)   { benchLens(b, 128) }
func BenchmarkAppendT16(b *testing.B)  { benchAppend(b, 16) }
func BenchmarkAppendT64(b *testing.B)  { benchAppend(b, 64) }
func BenchmarkAppendT128(b *testing.B) { benchAppend(b, 128) }

// BenchmarkUnembedStats times the lens of 64 positions (ln_f, the
// unembedding GEMM and every statistic) on stored streams; BenchmarkUnembed
// the bare GEMMs alone.
func BenchmarkUnembedStats(b *testing.B) {
	m := benchModel(b)
	s := m.NewSession()
	ids := benchIDs(m, 64)
	req := Request{IDs: ids, TopK: 10, Target: 5}
	if _, err := s.Lens(context.Background(), req, nil); err != nil {
		b.Fatal(err)
	}
	var streams []int
	for _, r := range m.Rows(false) {
		streams = append(streams, r.stream())
	}
	b.Run("lens", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s.lensRange(context.Background(), 0, 64, streams, req)
		}
	})
	b.Run("gemm", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s.unembedOnly(context.Background(), 0, 64, len(streams))
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

func randSlice(n int) []float32 {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}
