package inference

import (
	"math"
	"runtime"
	"sync"
)

// The CPU ops, written as plain loops a reader can check against the paper.
// Each works on row-major float32 slices. Where the time goes: GELU (an
// exponential per element of [T,4C]) and attention's dot products and
// updates (T·P·C per block) have vector kernels (vec_amd64.s) beside the
// plain loops (geluRef, dotRef, axpyRef), which the tests hold them to.

// addBias adds bias[N] to every row of x[M,N].
func addBias(x, bias []float32) {
	N := len(bias)
	for i := 0; i+N <= len(x); i += N {
		row := x[i : i+N]
		for j, b := range bias {
			row[j] += b
		}
	}
}

// add sets x += y.
func add(x, y []float32) {
	y = y[:len(x)]
	for i := range x {
		x[i] += y[i]
	}
}

// splitQKV splits each row of c_attn's output qkv [T,3C] into the query
// q [T,C] and the new rows k, v [T,C] of the key and value caches.
func splitQKV(q, k, v, qkv []float32, C int) {
	for t := 0; t < len(qkv)/(3*C); t++ {
		row := qkv[t*3*C : (t+1)*3*C]
		copy(q[t*C:(t+1)*C], row[:C])
		copy(k[t*C:(t+1)*C], row[C:2*C])
		copy(v[t*C:(t+1)*C], row[2*C:])
	}
}

// layerNorm normalises each row of x[M,C] (Ba et al. 2016): mean and biased
// variance over the row, then scale g and shift b. Statistics are
// accumulated in float64 so long rows lose nothing.
func layerNorm(out, x, g, b []float32, C int, eps float32) {
	for i := 0; i+C <= len(x); i += C {
		row, o := x[i:i+C], out[i:i+C]
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		mean := sum / float64(C)
		var sq float64
		for _, v := range row {
			d := float64(v) - mean
			sq += d * d
		}
		rstd := 1 / math.Sqrt(sq/float64(C)+float64(eps))
		for j, v := range row {
			o[j] = float32((float64(v)-mean)*rstd)*g[j] + b[j]
		}
	}
}

// gelu applies GPT-2's tanh approximation of GELU, as geluRef, in float32:
// 0.5·x·(1 + tanh(s)) = x / (1 + exp(−2s)), s = √(2/π)·(x + 0.044715·x³).
func gelu(x []float32) {
	n := 0
	if haveVecStats {
		n = len(x) &^ 7
		if n > 0 {
			vecGELU(x[:n])
		}
	}
	for i := n; i < len(x); i++ {
		v := x[i]
		t := min(-2*0.7978845608028654*v*(1+0.044715*v*v), 88)
		x[i] = v / (1 + exp32(t))
	}
}

// geluRef applies GPT-2's tanh approximation of GELU (Hendrycks & Gimpel 2016):
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
func geluRef(x []float32) {
	const s = 0.7978845608028654 // √(2/π)
	for i, v := range x {
		u := float64(v)
		x[i] = float32(0.5 * u * (1 + math.Tanh(s*(u+0.044715*u*u*u))))
	}
}

// attention is causal multi-head self-attention (Vaswani et al. 2017) for T
// queries at positions p0..p0+T-1. q is [T,C]; k and v are the caches
// [p0+T, C]; head h owns columns h·D..(h+1)·D. Heads run in parallel.
func attention(out, q, k, v []float32, T, p0, C, H int) {
	D := C / H
	scale := float32(1 / math.Sqrt(float64(D)))
	work := func(h int, scores []float32) {
		for t := 0; t < T; t++ {
			qt := q[t*C+h*D : t*C+h*D+D]
			n := p0 + t + 1 // keys 0..p0+t are visible
			maxScore := float32(math.Inf(-1))
			for j := 0; j < n; j++ {
				s := dot(qt, k[j*C+h*D:j*C+h*D+D]) * scale
				scores[j] = s
				if s > maxScore {
					maxScore = s
				}
			}
			var sum float32
			for j := 0; j < n; j++ {
				e := exp32(scores[j] - maxScore)
				scores[j] = e
				sum += e
			}
			o := out[t*C+h*D : t*C+h*D+D]
			clear(o)
			inv := 1 / sum
			for j := 0; j < n; j++ {
				axpy(scores[j]*inv, v[j*C+h*D:j*C+h*D+D], o)
			}
		}
	}
	parallel(H, func(h0, h1 int) {
		scores := make([]float32, p0+T)
		for h := h0; h < h1; h++ {
			work(h, scores)
		}
	})
}

// dot returns Σ a[i]·b[i], as dotRef.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	n := 0
	var s float32
	if haveVecStats {
		n = len(a) &^ 7
		if n > 0 {
			s = vecDot(a[:n], b[:n])
		}
	}
	for i := n; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}

// dotRef returns Σ a[i]·b[i].
func dotRef(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpy sets y += alpha·x, as axpyRef.
func axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	n := 0
	if haveVecStats {
		n = len(x) &^ 7
		if n > 0 {
			vecAxpy(alpha, x[:n], y[:n])
		}
	}
	for i := n; i < len(x); i++ {
		y[i] += alpha * x[i]
	}
}

// axpyRef sets y += alpha·x.
func axpyRef(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// parallel splits [0,n) into one contiguous range per CPU and runs f on each.
func parallel(n int, f func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}
