package cuda

// cuBLAS is column-major; our matrices are row-major. A row-major X[r,c]
// has the bytes of the column-major Xᵀ[c,r] with leading dimension c, so
// out = a·op(b) is computed as outᵀ = op(b)ᵀ·aᵀ: cuBLAS's A is b's memory,
// its B is a's, its C[N,M] is out, and no matrix is copied or transposed.

// gemmRowMajor returns the cuBLAS call for row-major out[M,N] = a[M,K]·b,
// where b is stored [K,N] (a Conv1D weight, transB false) or [N,K] and used
// transposed (wte or lm_head as W_U, transB true).
func gemmRowMajor(out, a, b DevicePtr, M, N, K int, transB bool) SgemmCall {
	c := SgemmCall{
		TransA: OpN, TransB: OpN,
		M: N, N: M, K: K,
		Alpha: 1, A: b, LDA: N, B: a, LDB: K,
		Beta: 0, C: out, LDC: N,
	}
	if transB { // b's memory is column-major bᵀ [K,N] with ld K; op T gives b [N,K]
		c.TransA, c.LDA = OpT, K
	}
	return c
}
