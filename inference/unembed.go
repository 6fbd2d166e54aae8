package inference

// The unembedding W_U [C,V] is the one matrix every lens product reads, and
// with few rows (one appended token: 13 rows) repacking it for the kernels
// costs as much as the product. When our Sgemm runs the CPU engine, the
// model packs it once, at its first lens, into the kernels' panels, and
// gives the mapped pages of lm_head (wte when tied) back to the kernel as it
// goes, so peak RSS does not grow by the copy. With a tied wte, embedding
// rows are then read from the packed copy, so those pages stay given back.

// packedUnembed returns W_U packed for our Sgemm, or nil when another BLAS
// or engine runs the products.
func (m *Model) packedUnembed() *packedB {
	m.unembedOnce.Do(func() {
		if _, cpu := m.engine.(CPU); !cpu || !ourSgemm() {
			return
		}
		head := m.ckpt.LMHead() // [V,C]; W_U = headᵀ
		V, C := m.cfg.VocabSize, m.cfg.NEmbd
		m.unembedPacked = packBAll(gemm, true, C, V, head.Data, C, pageDropper(head.Data, C))
	})
	return m.unembedPacked
}

// unembedRows sets logits [rows,V] = x [rows,C] @ W_U.
func (m *Model) unembedRows(logits, x []float32, rows int) error {
	if pb := m.packedUnembed(); pb != nil {
		sgemmPacked(rows, x[:rows*m.cfg.NEmbd], pb, logits[:rows*m.cfg.VocabSize])
		return nil
	}
	return m.engine.MatMul(mat(logits, rows, m.cfg.VocabSize), mat(x, rows, m.cfg.NEmbd), m.unembed)
}

// wteRow copies row id of wte into x[C]: from the packed unembedding when
// wte is tied to it, so its given-back pages are not faulted in again.
func (m *Model) wteRow(x []float32, id int) {
	if m.ckpt.Tensor("lm_head.weight") == nil { // tied: W_U = wteᵀ
		if pb := m.packedUnembed(); pb != nil {
			pb.column(x, id)
			return
		}
	}
	C := m.cfg.NEmbd
	copy(x, m.wte.Float32s()[id*C:(id+1)*C])
}
