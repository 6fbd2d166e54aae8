package sgemm

// Operand is a right-hand matrix B [k, n] prepared once for many products
// C = A·B: the lens multiplies every decoded row by the unembedding W_U.
// With few rows (one appended token: 13) repacking B for the kernels on
// every product costs as much as the product, so under our Sgemm the
// Operand holds B packed into the kernels' panels, outside the Go heap. Under
// another BLAS it holds B as given and each product is one Sgemm.
//
// An Operand may be used from several goroutines at once; Close frees it.
type Operand struct {
	k, n   int
	bt     []float32 // Bᵀ [n, k], when not packed
	packed *packedB  // when our Sgemm runs
}

// NewTransposed prepares B = btᵀ from bt [n, k], row-major: W_U = lm_headᵀ
// from lm_head (or wte) [V, C]. When bt is a read-only file mapping (a
// float32 checkpoint) and our Sgemm packs it, the pages of bt are given back
// to the kernel as they are packed, so peak RSS does not grow by the copy;
// bt stays readable (pages fault back in from the page cache), but readers
// of its rows should use Column, which reads the packed copy.
func NewTransposed(bt []float32, n, k int) *Operand {
	Use()
	o := &Operand{k: k, n: n}
	if !ours {
		o.bt = bt[:n*k]
		return o
	}
	o.packed = packBAll(gemm, true, k, n, bt, k, pageDropper(bt, k))
	return o
}

// Mul sets c [m, n] = a [m, k] · B.
func (o *Operand) Mul(c, a []float32, m int) {
	if m == 0 {
		return
	}
	if o.packed != nil {
		sgemmPacked(m, a[:m*o.k], o.packed, c[:m*o.n])
		return
	}
	Sgemm(false, true, m, o.n, o.k, 1, a, o.k, o.bt, o.k, 0, c, o.n)
}

// Column copies column j of B, which is row j of bt, into dst [k]: the
// embedding row of token j when W_U = wteᵀ, read without faulting the
// given-back pages of bt in again.
func (o *Operand) Column(dst []float32, j int) {
	if o.packed != nil {
		o.packed.column(dst, j)
		return
	}
	copy(dst[:o.k], o.bt[j*o.k:(j+1)*o.k])
}

// Close frees the packed copy. The Operand must not be used afterwards.
func (o *Operand) Close() {
	if pb := o.packed; pb != nil && pb.free != nil {
		pb.free()
	}
	o.packed, o.bt = nil, nil
}
