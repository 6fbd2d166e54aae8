package cuda

import (
	"math"
	"testing"
)

// Lens with Logits copies every row's logits to the host in the layout
// [stream][position][id], the same whether one GEMM takes all positions or
// the state's LensBytes chunks them (here three rows a GEMM), and refuses
// a buffer of the wrong size.
func TestLogitsToHost(t *testing.T) {
	d, _, err := NewEmulatedDevice()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg := smallConfig
	m := randomModel(t, d, cfg)
	V := cfg.VocabSize
	ids := []int{1, 5, 9, 2, 7, 3, 8}
	streams := []int{0, 2, 4, 3}
	T, R := len(ids), len(streams)
	get := func(lensBytes int64, from, to int) []float32 {
		st, err := m.NewState(StateOptions{LensBytes: lensBytes})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.Forward(ids, 0); err != nil {
			t.Fatal(err)
		}
		out := make([]float32, R*(to-from)*V)
		if _, err := st.Lens(LensRequest{Streams: streams, From: from, To: to, TopK: 1, Target: -1, Logits: out}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	whole := get(0, 0, T)
	chunked := get(int64(4*V*3), 0, T)
	part := get(int64(4*V*3), 2, 6)
	for r := range R {
		for p := range T {
			for v := range V {
				w := whole[(r*T+p)*V+v]
				if c := chunked[(r*T+p)*V+v]; math.Abs(float64(c-w)) > 1e-5 {
					t.Fatalf("stream %d position %d id %d: chunked %g, whole %g", streams[r], p, v, c, w)
				}
				if p >= 2 && p < 6 {
					if c := part[(r*4+p-2)*V+v]; math.Abs(float64(c-w)) > 1e-5 {
						t.Fatalf("stream %d position %d id %d: positions 2..5 give %g, all %g", streams[r], p, v, c, w)
					}
				}
			}
		}
	}
	// The final stream's logits are the model's output: its argmax is
	// the lens's top-1.
	st, err := m.NewState(StateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Forward(ids, 0); err != nil {
		t.Fatal(err)
	}
	cells, err := st.Lens(LensRequest{Streams: streams, From: 0, To: T, TopK: 1, Target: -1})
	if err != nil {
		t.Fatal(err)
	}
	for p := range T {
		z := whole[(2*T+p)*V : (2*T+p+1)*V]
		best := 0
		for v := range z {
			if z[v] > z[best] {
				best = v
			}
		}
		if cells[2][p].Top[0].ID != best {
			t.Errorf("position %d: the lens's top-1 %d, the logits' argmax %d", p, cells[2][p].Top[0].ID, best)
		}
	}
	if _, err := st.Lens(LensRequest{Streams: streams, From: 0, To: T, TopK: 1, Target: -1, Logits: make([]float32, 5)}); err == nil {
		t.Error("a logits buffer of the wrong size was accepted")
	}
}
