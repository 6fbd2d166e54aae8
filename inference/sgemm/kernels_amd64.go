//go:build amd64 && !purego

package sgemm

import "golang.org/x/sys/cpu"

// The assembly micro-kernels of kernels_amd64.s (see gen_kernels.go).

//go:noescape
func kernAVX2_1x16(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX2_2x16(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX2_3x16(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX2_4x16(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX2_5x16(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX2_6x16(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX512_1x48(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX512_2x48(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX512_3x48(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX512_4x48(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX512_5x48(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX512_6x48(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX512_7x48(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func kernAVX512_8x48(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func packT8AVX(src *float32, lds, k int, dst *float32, ldd int)

var avx2Kernels = &gemmKernels{
	name: "avx2+fma", mr: 6, nr: 16, kc: 256,
	outer:  []outerKernel{kernAVX2_1x16, kernAVX2_2x16, kernAVX2_3x16, kernAVX2_4x16, kernAVX2_5x16, kernAVX2_6x16},
	packT8: packT8AVX,
}

var avx512Kernels = &gemmKernels{
	name: "avx512", mr: 8, nr: 48, kc: 128,
	outer: []outerKernel{kernAVX512_1x48, kernAVX512_2x48, kernAVX512_3x48, kernAVX512_4x48,
		kernAVX512_5x48, kernAVX512_6x48, kernAVX512_7x48, kernAVX512_8x48},
	packT8: packT8AVX,
}

// asmKernels lists the kernels this CPU can run, fastest first.
func asmKernels() []*gemmKernels {
	var ks []*gemmKernels
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL {
		ks = append(ks, avx512Kernels)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernels)
	}
	return ks
}
