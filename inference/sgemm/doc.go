// Package sgemm is the CPU's single-precision matrix product: our own
// blocked, packed, parallel Sgemm with Go assembly micro-kernels (AVX2+FMA,
// AVX-512), OpenBLAS loaded at run time without cgo, or gonum's pure Go,
// whichever is fastest on this machine (see choose.go for the order and
// why).
//
// Callers never pick a kernel: Use chooses once and installs the choice as
// gorgonia.org/tensor's BLAS, so every tensor.MatMul of float32 runs it,
// and Sgemm calls it directly. The one product that reuses a large operand
// many times, the lens's unembedding, has a prepared operand (Operand):
// packed once for our kernels, and giving the pages of a mapped checkpoint
// back to the kernel as it packs them.
//
// Nothing here knows about GPT-2; the package imports none of ours.
package sgemm
