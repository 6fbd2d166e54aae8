package inference

import (
	"context"

	"gorgonia.org/tensor"
)

// forward runs GPT-2 (Radford et al. 2019) on the tokens ids at positions
// p0..p0+T-1, reading the keys and values of positions 0..p0-1 from the
// session's cache and appending its own. It stores every residual stream
// row (embedding, resid_mid, block outputs) for the lens. The context is
// checked between blocks.
func (s *Session) forward(ctx context.Context, ids []int, p0 int) error {
	if s.dev != nil {
		return s.dev.Forward(ids, p0) // weights, KV cache and streams live on the GPU
	}
	m, e := s.m, s.m.engine
	T, C, H := len(ids), m.cfg.NEmbd, m.cfg.NHead
	P := p0 + T
	eps := float32(m.cfg.LayerNormEpsilon)
	s.reserve(P)
	b := s.scratch(T)

	// h[0] = wte[ids] + wpe[positions]                          [T] -> [T,C]
	wpe := m.wpe.Float32s()
	for t, id := range ids {
		x := b.x[t*C : (t+1)*C]
		m.wteRow(x, id)
		add(x, wpe[(p0+t)*C:(p0+t+1)*C])
	}
	s.keep(0, p0, b.x)

	x := mat(b.x, T, C)
	for i, blk := range m.blocks {
		if err := ctx.Err(); err != nil {
			return err
		}
		// attention half: x += c_proj(attn(ln_1(x)))
		a := mat(b.a, T, C)
		e.LayerNorm(a, x, blk.ln1G, blk.ln1B, eps) //           [T,C]
		qkv := mat(b.qkv, T, 3*C)
		if err := e.MatMul(qkv, a, blk.cAttnW); err != nil { // [T,C] @ [C,3C] -> [T,3C]
			return err
		}
		e.AddBias(qkv, blk.cAttnB)
		kc, vc := s.kv[i].k, s.kv[i].v
		for t := 0; t < T; t++ { // split q | k | v; k and v go to the cache
			row := b.qkv[t*3*C : (t+1)*3*C]
			copy(b.q[t*C:(t+1)*C], row[:C])
			copy(kc[(p0+t)*C:(p0+t+1)*C], row[C:2*C])
			copy(vc[(p0+t)*C:(p0+t+1)*C], row[2*C:])
		}
		y := mat(b.y, T, C)
		e.Attention(y, mat(b.q, T, C), mat(kc[:P*C], P, C), mat(vc[:P*C], P, C), p0, H) // [T,C]
		proj := mat(b.proj, T, C)
		if err := e.MatMul(proj, y, blk.attnProjW); err != nil { // [T,C] @ [C,C] -> [T,C]
			return err
		}
		e.AddBias(proj, blk.attnProjB)
		e.Add(x, proj)
		s.keep(2*i+1, p0, b.x) // resid_mid

		// MLP half: x += c_proj(gelu(c_fc(ln_2(x))))
		e.LayerNorm(a, x, blk.ln2G, blk.ln2B, eps) //            [T,C]
		f := mat(b.f, T, 4*C)
		if err := e.MatMul(f, a, blk.fcW); err != nil { //       [T,C] @ [C,4C] -> [T,4C]
			return err
		}
		e.AddBias(f, blk.fcB)
		e.GELU(f)
		if err := e.MatMul(proj, f, blk.mlpProjW); err != nil { // [T,4C] @ [4C,C] -> [T,C]
			return err
		}
		e.AddBias(proj, blk.mlpProjB)
		e.Add(x, proj)
		s.keep(2*i+2, p0, b.x) // h[i+1]
	}
	return nil
}

// mat views s[:r*c] as an r×c matrix without copying.
func mat(s []float32, r, c int) *tensor.Dense {
	return tensor.New(tensor.WithShape(r, c), tensor.WithBacking(s[:r*c]))
}
