package inference

import (
	"context"
	"fmt"

	"gorgonia.org/tensor"
)

// Forward implements Device: GPT-2 (Radford et al. 2019) on the tokens ids
// at positions p0..p0+T-1, reading the keys and values of positions
// 0..p0-1 from the cache and appending its own. It stores every residual
// stream row (embedding, resid_mid, block outputs) for the lens. The
// context is checked between blocks.
func (d *cpuDevice) Forward(ctx context.Context, ids []int, p0 int) error {
	w := d.w
	T, C, H := len(ids), w.cfg.NEmbd, w.cfg.NHead
	P := p0 + T
	eps := float32(w.cfg.LayerNormEpsilon)
	if p0 < 0 || p0 > d.filled || P > w.cfg.NPositions {
		return fmt.Errorf("inference: forward of positions %d..%d, but %d are computed", p0, P, d.filled)
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return errClosed
	}
	d.filled = p0 // until this step completes, only the prefix is current
	d.reserve(P)
	b := d.scratch(T)

	// h[0] = wte[ids] + wpe[positions]                          [T] -> [T,C]
	for t, id := range ids {
		x := b.x[t*C : (t+1)*C]
		w.embedding(x, id)
		add(x, w.wpe[(p0+t)*C:(p0+t+1)*C])
	}
	d.keep(0, p0, b.x)

	for i, blk := range w.blocks {
		if err := ctx.Err(); err != nil {
			return err
		}
		kc, vc := d.kv[i].k, d.kv[i].v

		// attention half: x += c_proj(attn(ln_1(x)))
		layerNorm(b.a, b.x, blk.ln1G, blk.ln1B, C, eps)      // [T,C]
		matmul(b.qkv, b.a, blk.cAttnW, T)                    // [T,C] @ [C,3C] -> [T,3C]
		addBias(b.qkv, blk.cAttnB)                           // + [3C]
		splitQKV(b.q, kc[p0*C:P*C], vc[p0*C:P*C], b.qkv, C)  // q [T,C]; k, v -> cache rows p0..P-1
		attention(b.y, b.q, kc[:P*C], vc[:P*C], T, p0, C, H) // [T,C] against [P,C]
		matmul(b.proj, b.y, blk.attnProjW, T)                // [T,C] @ [C,C] -> [T,C]
		addBias(b.proj, blk.attnProjB)                       // + [C]
		add(b.x, b.proj)                                     // +residual
		d.keep(2*i+1, p0, b.x)                               // resid_mid

		// MLP half: x += c_proj(gelu(c_fc(ln_2(x))))
		layerNorm(b.a, b.x, blk.ln2G, blk.ln2B, C, eps) // [T,C]
		matmul(b.f, b.a, blk.fcW, T)                    // [T,C] @ [C,4C] -> [T,4C]
		addBias(b.f, blk.fcB)                           // + [4C]
		gelu(b.f)                                       // [T,4C]
		matmul(b.proj, b.f, blk.mlpProjW, T)            // [T,4C] @ [4C,C] -> [T,C]
		addBias(b.proj, blk.mlpProjB)                   // + [C]
		add(b.x, b.proj)                                // +residual
		d.keep(2*i+2, p0, b.x)                          // h[i+1]
	}
	d.filled = P
	return nil
}

// matmul sets out[T,N] = a[T,K] @ w[K,N] through tensor.MatMul, which
// calls the Sgemm package sgemm installed. The shapes are ours: a mismatch
// is a programmer error.
func matmul(out, a []float32, w *tensor.Dense, T int) {
	K, N := w.Shape()[0], w.Shape()[1]
	if _, err := tensor.MatMul(mat(a, T, K), w, tensor.WithReuse(mat(out, T, N))); err != nil {
		panic(fmt.Sprintf("inference: matmul [%d,%d] @ %v: %v", T, K, w.Shape(), err))
	}
}

// mat views s[:r*c] as an r×c matrix without copying.
func mat(s []float32, r, c int) *tensor.Dense {
	return tensor.New(tensor.WithShape(r, c), tensor.WithBacking(s[:r*c]))
}
