//go:build ignore

// gen_kernels writes sgemm_amd64.s, the Sgemm micro-kernels, one per row
// count so edge tiles need no branches inside the k loop. Run it with
// `go run gen_kernels.go` in this directory after changing it.
//
// Outer-product kernels (Goto & van de Geijn 2008): for k steps, broadcast
// one element of each of the mr rows of the packed A panel and multiply it by
// the nr-wide row of B, accumulating an mr×nr tile in registers. B is either
// a packed panel (ldb = nr) or rows of the original matrix (ldb = its row
// stride). acc says whether the tile is added to C or overwrites it.
//
// Dot kernels, for Bᵀ with few rows of A (one appended token): four rows of A
// against four rows of W (B = Wᵀ), each dot product a vector accumulator
// reduced horizontally at the end, so W is streamed without packing.
package main

import (
	"bytes"
	"fmt"
	"os"
)

var w bytes.Buffer

func p(format string, args ...any) { fmt.Fprintf(&w, "\t"+format+"\n", args...) }

// outer writes kernel name for mr rows and nr = vecs·lanes columns.
func outer(name string, mr, vecs int, reg string, lanes int, firstAcc int) {
	fmt.Fprintf(&w, "\n// func %s(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)\n", name)
	fmt.Fprintf(&w, "TEXT ·%s(SB), NOSPLIT, $0-49\n", name)
	p("MOVQ k+0(FP), CX")
	p("MOVQ a+8(FP), SI")
	p("MOVQ b+16(FP), DI")
	p("MOVQ ldb+24(FP), R8")
	p("SHLQ $2, R8")
	p("MOVQ c+32(FP), DX")
	p("MOVQ ldc+40(FP), R9")
	p("SHLQ $2, R9")
	acc := func(i, j int) string { return fmt.Sprintf("%s%d", reg, firstAcc+i*vecs+j) }
	for i := 0; i < mr; i++ {
		for j := 0; j < vecs; j++ {
			p("%s %s, %s, %s", xor(reg), acc(i, j), acc(i, j), acc(i, j))
		}
	}
	p("TESTQ CX, CX")
	p("JEQ store")
	fmt.Fprintf(&w, "loop:\n")
	for j := 0; j < vecs; j++ {
		p("VMOVUPS %d(DI), %s%d", j*lanes*4, reg, j)
	}
	bc := vecs // broadcast register
	for i := 0; i < mr; i++ {
		r := fmt.Sprintf("%s%d", reg, bc+i%2)
		p("VBROADCASTSS %d(SI), %s", i*4, r)
		for j := 0; j < vecs; j++ {
			p("VFMADD231PS %s%d, %s, %s", reg, j, r, acc(i, j))
		}
	}
	p("ADDQ $%d, SI", mr*4)
	p("ADDQ R8, DI")
	p("DECQ CX")
	p("JNZ loop")
	fmt.Fprintf(&w, "store:\n")
	p("MOVBLZX acc+48(FP), AX")
	p("TESTQ AX, AX")
	p("JEQ overwrite")
	p("MOVQ DX, BX")
	for i := 0; i < mr; i++ {
		for j := 0; j < vecs; j++ {
			p("VADDPS %d(BX), %s, %s", j*lanes*4, acc(i, j), acc(i, j))
		}
		if i < mr-1 {
			p("ADDQ R9, BX")
		}
	}
	fmt.Fprintf(&w, "overwrite:\n")
	for i := 0; i < mr; i++ {
		for j := 0; j < vecs; j++ {
			p("VMOVUPS %s, %d(DX)", acc(i, j), j*lanes*4)
		}
		if i < mr-1 {
			p("ADDQ R9, DX")
		}
	}
	p("VZEROUPPER")
	p("RET")
}

// dot writes a 4×4 dot kernel: out[4i+j] = Σ_p a_i[p]·w_j[p] for p < k,
// k a multiple of lanes.
func dot(name, reg string, lanes int) { // AVX-512 only: 16 accumulators need 32 registers
	fmt.Fprintf(&w, "\n// func %s(k int, a0, a1, a2, a3, w0, w1, w2, w3 *float32, out *float32)\n", name)
	fmt.Fprintf(&w, "TEXT ·%s(SB), NOSPLIT, $0-80\n", name)
	p("MOVQ k+0(FP), CX")
	p("SHLQ $2, CX")
	as := []string{"SI", "DI", "R8", "R9"}
	ws := []string{"R10", "R11", "R12", "R13"}
	for i, r := range as {
		p("MOVQ a%d+%d(FP), %s", i, 8+8*i, r)
	}
	for j, r := range ws {
		p("MOVQ w%d+%d(FP), %s", j, 40+8*j, r)
	}
	const first = 16 // Z16..Z31; the reduction folds them into Y8..Y11 for VHADDPS (VEX only)
	acc := func(i, j int) string { return fmt.Sprintf("%s%d", reg, first+4*i+j) }
	for i := 0; i < 4; i++ {
		for j := 0; j < 4; j++ {
			p("%s %s, %s, %s", xor(reg), acc(i, j), acc(i, j), acc(i, j))
		}
	}
	p("XORQ AX, AX")
	p("TESTQ CX, CX")
	p("JEQ reduce")
	fmt.Fprintf(&w, "loop:\n")
	for i, r := range as {
		p("VMOVUPS (%s)(AX*1), %s%d", r, reg, i)
	}
	for j, r := range ws {
		p("VMOVUPS (%s)(AX*1), %s%d", r, reg, 4+j)
	}
	for i := 0; i < 4; i++ {
		for j := 0; j < 4; j++ {
			p("VFMADD231PS %s%d, %s%d, %s", reg, 4+j, reg, i, acc(i, j))
		}
	}
	p("ADDQ $%d, AX", lanes*4)
	p("CMPQ AX, CX")
	p("JLT loop")
	fmt.Fprintf(&w, "reduce:\n")
	p("MOVQ out+72(FP), DX")
	for i := 0; i < 4; i++ {
		// fold 512 → 256 bits into Y8..Y11 (VEX registers for VHADDPS)
		for j := 0; j < 4; j++ {
			p("VEXTRACTF64X4 $1, %s, Y0", acc(i, j))
			p("VADDPS Y0, Y%d, Y%d", first+4*i+j, 8+j)
		}
		hadd4(fmt.Sprintf("%d(DX)", 16*i))
	}
	p("VZEROUPPER")
	p("RET")
}

// xor names the zeroing instruction: VXORPS on zmm needs AVX512DQ, VPXORD
// only AVX512F.
func xor(reg string) string {
	if reg == "Z" {
		return "VPXORD"
	}
	return "VXORPS"
}

// hadd4 sums each of Y8..Y11 horizontally and stores the four sums at dst.
func hadd4(dst string) {
	p("VHADDPS Y9, Y8, Y8")
	p("VHADDPS Y11, Y10, Y10")
	p("VHADDPS Y10, Y8, Y8")
	p("VEXTRACTF128 $1, Y8, X9")
	p("VADDPS X9, X8, X8")
	p("VMOVUPS X8, %s", dst)
}

// dot2x4 is the AVX2 dot kernel: two rows of A against four rows of W.
func dot2x4(name string) {
	fmt.Fprintf(&w, "\n// func %s(k int, a0, a1, w0, w1, w2, w3 *float32, out *float32)\n", name)
	fmt.Fprintf(&w, "TEXT ·%s(SB), NOSPLIT, $0-64\n", name)
	p("MOVQ k+0(FP), CX")
	p("SHLQ $2, CX")
	as := []string{"SI", "DI"}
	ws := []string{"R10", "R11", "R12", "R13"}
	for i, r := range as {
		p("MOVQ a%d+%d(FP), %s", i, 8+8*i, r)
	}
	for j, r := range ws {
		p("MOVQ w%d+%d(FP), %s", j, 24+8*j, r)
	}
	acc := func(i, j int) string { return fmt.Sprintf("Y%d", 8+4*i+j) }
	for i := 0; i < 2; i++ {
		for j := 0; j < 4; j++ {
			p("VXORPS %s, %s, %s", acc(i, j), acc(i, j), acc(i, j))
		}
	}
	p("XORQ AX, AX")
	p("TESTQ CX, CX")
	p("JEQ reduce")
	fmt.Fprintf(&w, "loop:\n")
	for i, r := range as {
		p("VMOVUPS (%s)(AX*1), Y%d", r, i)
	}
	for j, r := range ws {
		p("VMOVUPS (%s)(AX*1), Y%d", r, 2+j)
	}
	for i := 0; i < 2; i++ {
		for j := 0; j < 4; j++ {
			p("VFMADD231PS Y%d, Y%d, %s", 2+j, i, acc(i, j))
		}
	}
	p("ADDQ $32, AX")
	p("CMPQ AX, CX")
	p("JLT loop")
	fmt.Fprintf(&w, "reduce:\n")
	p("MOVQ out+56(FP), DX")
	hadd4("0(DX)")
	for j := 0; j < 4; j++ {
		p("VMOVAPS Y%d, Y%d", 12+j, 8+j)
	}
	hadd4("16(DX)")
	p("VZEROUPPER")
	p("RET")
}

// transpose8 writes packT8: for p < k (a multiple of 8), dst[p·ldd + i] =
// src[i·lds + p], i < 8: eight rows of Bᵀ become eight columns of a packed
// panel, an 8×8 block at a time (unpck, shuf, perm2f128).
func transpose8(name string) {
	fmt.Fprintf(&w, "\n// func %s(src *float32, lds, k int, dst *float32, ldd int)\n", name)
	fmt.Fprintf(&w, "TEXT ·%s(SB), NOSPLIT, $0-40\n", name)
	p("MOVQ src+0(FP), SI")
	p("MOVQ lds+8(FP), R8")
	p("SHLQ $2, R8")
	p("MOVQ k+16(FP), CX")
	p("MOVQ dst+24(FP), DI")
	p("MOVQ ldd+32(FP), R9")
	p("SHLQ $2, R9")
	p("SHRQ $3, CX")
	p("TESTQ CX, CX")
	p("JEQ done")
	fmt.Fprintf(&w, "loop:\n")
	p("MOVQ SI, AX")
	for i := 0; i < 8; i++ {
		p("VMOVUPS (AX), Y%d", i)
		if i < 7 {
			p("ADDQ R8, AX")
		}
	}
	for i := 0; i < 8; i += 2 {
		p("VUNPCKLPS Y%d, Y%d, Y%d", i+1, i, 8+i)
		p("VUNPCKHPS Y%d, Y%d, Y%d", i+1, i, 9+i)
	}
	// t0..t7 in Y8..Y15; s in Y0..Y7
	p("VSHUFPS $0x44, Y10, Y8, Y0")
	p("VSHUFPS $0xEE, Y10, Y8, Y1")
	p("VSHUFPS $0x44, Y11, Y9, Y2")
	p("VSHUFPS $0xEE, Y11, Y9, Y3")
	p("VSHUFPS $0x44, Y14, Y12, Y4")
	p("VSHUFPS $0xEE, Y14, Y12, Y5")
	p("VSHUFPS $0x44, Y15, Y13, Y6")
	p("VSHUFPS $0xEE, Y15, Y13, Y7")
	for i := 0; i < 4; i++ {
		p("VPERM2F128 $0x20, Y%d, Y%d, Y%d", 4+i, i, 8+i)
		p("VPERM2F128 $0x31, Y%d, Y%d, Y%d", 4+i, i, 12+i)
	}
	p("MOVQ DI, AX")
	for i := 0; i < 8; i++ {
		p("VMOVUPS Y%d, (AX)", 8+i)
		if i < 7 {
			p("ADDQ R9, AX")
		}
	}
	p("ADDQ $32, SI")
	p("LEAQ (DI)(R9*8), DI")
	p("DECQ CX")
	p("JNZ loop")
	fmt.Fprintf(&w, "done:\n")
	p("VZEROUPPER")
	p("RET")
}

func main() {
	w.WriteString("// Code generated by gen_kernels.go; DO NOT EDIT.\n\n//go:build amd64 && !purego\n\n#include \"textflag.h\"\n")
	for mr := 1; mr <= 6; mr++ {
		outer(fmt.Sprintf("kernAVX2_%dx16", mr), mr, 2, "Y", 8, 4)
	}
	for mr := 1; mr <= 8; mr++ {
		outer(fmt.Sprintf("kernAVX512_%dx48", mr), mr, 3, "Z", 16, 8)
	}
	dot2x4("dotAVX2_2x4")
	dot("dotAVX512_4x4", "Z", 16)
	transpose8("packT8AVX")
	if err := os.WriteFile("sgemm_amd64.s", w.Bytes(), 0o644); err != nil {
		panic(err)
	}
}
