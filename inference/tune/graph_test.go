package tune

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/logitlens/logitlens/inference/sgemm"
	"gorgonia.org/tensor"
)

// refCost computes the cost and its gradients in float64 by the formulas:
// cost = −scale Σ_r Σ_v p log q, ∂cost/∂logits = scale·(Σ_v p)·q − scale·p,
// back through ln_f and the translator by hand.
func refCost(hd *testHead, n int, h, p, wt, b []float32, scale float64) (cost float64, dwt, db []float64) {
	C, V := hd.c, hd.v
	dwt, db = make([]float64, C*C), make([]float64, C)
	for r := range n {
		x := make([]float64, C)
		for j := range C {
			x[j] = float64(h[r*C+j])
			for k := range C {
				x[j] += float64(h[r*C+k]) * float64(wt[k*C+j])
			}
			if b != nil {
				x[j] += float64(b[j])
			}
		}
		mean, vr := 0.0, 0.0
		for _, v := range x {
			mean += v
		}
		mean /= float64(C)
		for _, v := range x {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(C)
		inv := 1 / math.Sqrt(vr+float64(hd.eps))
		xn, y := make([]float64, C), make([]float64, C)
		for j := range C {
			xn[j] = (x[j] - mean) * inv
			y[j] = xn[j]*float64(hd.lnG[j]) + float64(hd.lnB[j])
		}
		logits := make([]float64, V)
		mx := math.Inf(-1)
		for v := range V {
			for j := range C {
				logits[v] += y[j] * float64(hd.wu[v*C+j])
			}
			mx = max(mx, logits[v])
		}
		lse := 0.0
		for _, l := range logits {
			lse += math.Exp(l - mx)
		}
		lse = mx + math.Log(lse)
		psum := 0.0
		for v := range V {
			cost -= scale * float64(p[r*V+v]) * (logits[v] - lse)
			psum += float64(p[r*V+v])
		}
		dy := make([]float64, C)
		for v := range V {
			dl := scale * (psum*math.Exp(logits[v]-lse) - float64(p[r*V+v]))
			for j := range C {
				dy[j] += dl * float64(hd.wu[v*C+j])
			}
		}
		// layer norm backward: dx = inv·(dxn − mean(dxn) − xn·mean(dxn·xn))
		dxn := make([]float64, C)
		m1, m2 := 0.0, 0.0
		for j := range C {
			dxn[j] = dy[j] * float64(hd.lnG[j])
			m1 += dxn[j]
			m2 += dxn[j] * xn[j]
		}
		m1 /= float64(C)
		m2 /= float64(C)
		for j := range C {
			dx := inv * (dxn[j] - m1 - xn[j]*m2)
			db[j] += dx
			for k := range C {
				dwt[k*C+j] += float64(h[r*C+k]) * dx
			}
		}
	}
	return cost, dwt, db
}

// testHead is a head with its unembedding W_U [V,C] kept for refCost.
type testHead struct {
	*head
	wu []float32
}

func randHead(rng *rand.Rand, c, v int) *testHead {
	hd := &head{c: c, v: v, eps: 1e-5, lnG: make([]float32, c), lnB: make([]float32, c)}
	for j := range c {
		hd.lnG[j] = 1 + 0.3*float32(rng.NormFloat64())
		hd.lnB[j] = 0.1 * float32(rng.NormFloat64())
	}
	wu := randn(rng, v*c, 1)
	return &testHead{newHead(hd.lnG, hd.lnB, hd.eps, wu, c, v), wu}
}

func randn(rng *rand.Rand, n int, s float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(s * rng.NormFloat64())
	}
	return x
}

// TestGraphGradient: gorgonia's cost and gradients equal the formulas in
// float64 (refCost) on a small head, with and without bias, including a
// row whose target is all zeros (a padding row).
func TestGraphGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, c, v = 5, 8, 11
	hd := randHead(rng, c, v)
	for _, bias := range []bool{true, false} {
		gr, err := newGraph(hd.head, n, bias)
		if err != nil {
			t.Fatal(err)
		}
		h := randn(rng, n*c, 2)
		p := make([]float32, n*v)
		for r := range n - 1 { // the last row pads
			s := float32(0)
			for j := range v {
				p[r*v+j] = rng.Float32()
				s += p[r*v+j]
			}
			for j := range v {
				p[r*v+j] /= s
			}
		}
		wt, b := randn(rng, c*c, 0.3), randn(rng, c, 0.5)
		if !bias {
			b = nil
		}
		dwt, db := make([]float32, c*c), make([]float32, c)
		for range 2 { // a second run must give the same (the machine resets)
			clear(dwt)
			clear(db)
			cost, err := gr.run(h, p, wt, b, 0.25, dwt, db)
			if err != nil {
				t.Fatal(err)
			}
			rc, rdw, rdb := refCost(hd, n, h, p, wt, b, 0.25)
			if math.Abs(float64(cost)-rc) > 1e-4*math.Abs(rc) {
				t.Errorf("bias %v: cost %g, want %g", bias, cost, rc)
			}
			worst := 0.0
			for i := range rdw {
				worst = max(worst, math.Abs(float64(dwt[i])-rdw[i]))
			}
			for i := range rdb {
				if bias {
					worst = max(worst, math.Abs(float64(db[i])-rdb[i]))
				} else if db[i] != 0 {
					t.Fatalf("no bias, but db[%d] = %g", i, db[i])
				}
			}
			if worst > 1e-4 {
				t.Errorf("bias %v: gradient off by %g", bias, worst)
			}
		}
	}
}

// Benchmarks at the built-in model's shape (C 128, V 50257) on 64 rows:
// one training run of the graph (forward, loss, gradients) against its
// floor, the two bare GEMMs of the unembedding it must do (logits, and the
// gradient back through W_U). Compare the two in one run: the ratio is the
// graph's overhead.
func benchHead(b *testing.B) (*testHead, []float32) {
	sgemm.Use()
	rng := rand.New(rand.NewPCG(1, 2))
	const n, c, v = 64, 128, 50257
	return randHead(rng, c, v), randn(rng, n*c, 1)
}

func BenchmarkGraphRunN64C128(b *testing.B) {
	hd, h := benchHead(b)
	gr, err := newGraph(hd.head, 64, true)
	if err != nil {
		b.Fatal(err)
	}
	p := make([]float32, 64*hd.v)
	wt, bias := make([]float32, hd.c*hd.c), make([]float32, hd.c)
	dwt, db := make([]float32, hd.c*hd.c), make([]float32, hd.c)
	for b.Loop() {
		if _, err := gr.run(h, p, wt, bias, 1, dwt, db); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnembedGEMMsN64C128(b *testing.B) {
	hd, h := benchHead(b)
	x := tensor.New(tensor.WithShape(64, hd.c), tensor.WithBacking(h))
	wu := tensor.New(tensor.WithShape(hd.v, hd.c), tensor.WithBacking(hd.wu))
	wuT := wu.ShallowClone()
	if err := wuT.T(); err != nil {
		b.Fatal(err)
	}
	logits := tensor.New(tensor.WithShape(64, hd.v), tensor.Of(tensor.Float32))
	dx := tensor.New(tensor.WithShape(64, hd.c), tensor.Of(tensor.Float32))
	for b.Loop() {
		if _, err := tensor.MatMul(x, wuT, tensor.WithReuse(logits)); err != nil { // [N,C] @ [C,V]
			b.Fatal(err)
		}
		if _, err := tensor.MatMul(logits, wu, tensor.WithReuse(dx)); err != nil { // [N,V] @ [V,C]
			b.Fatal(err)
		}
	}
}

// TestGraphUsesOurSgemm: gorgonia's MatMul calls gorgonia.org/tensor's
// installed BLAS, which sgemm.Use replaces; after Train's call to it, that
// is ours (or OpenBLAS), not gonum's pure Go.
func TestGraphUsesOurSgemm(t *testing.T) {
	sgemm.Use()
	want := "sgemm.cpuBLAS"
	if os.Getenv("LOGITLENS_BLAS") == "gonum" {
		want = "gonum.Implementation"
	}
	if got := fmt.Sprintf("%T", tensor.WhichBLAS()); got != want {
		t.Errorf("tensor's BLAS is %s, want %s", got, want)
	}
}
