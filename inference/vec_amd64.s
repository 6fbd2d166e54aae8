// Vector kernels (AVX2+FMA) for the lens statistics (stats.go) and the
// element-wise ops (ops.go); vec_amd64.go declares them. exp is Cephes'
// expf, as exp32 in stats.go.

//go:build amd64 && !purego

#include "textflag.h"

DATA expc<>+0(SB)/4, $0x3fb8aa3b
DATA expc<>+4(SB)/4, $0x3fb8aa3b
DATA expc<>+8(SB)/4, $0x3fb8aa3b
DATA expc<>+12(SB)/4, $0x3fb8aa3b
DATA expc<>+16(SB)/4, $0x3fb8aa3b
DATA expc<>+20(SB)/4, $0x3fb8aa3b
DATA expc<>+24(SB)/4, $0x3fb8aa3b
DATA expc<>+28(SB)/4, $0x3fb8aa3b
DATA expc<>+32(SB)/4, $0x3f318000
DATA expc<>+36(SB)/4, $0x3f318000
DATA expc<>+40(SB)/4, $0x3f318000
DATA expc<>+44(SB)/4, $0x3f318000
DATA expc<>+48(SB)/4, $0x3f318000
DATA expc<>+52(SB)/4, $0x3f318000
DATA expc<>+56(SB)/4, $0x3f318000
DATA expc<>+60(SB)/4, $0x3f318000
DATA expc<>+64(SB)/4, $0xb95e8083
DATA expc<>+68(SB)/4, $0xb95e8083
DATA expc<>+72(SB)/4, $0xb95e8083
DATA expc<>+76(SB)/4, $0xb95e8083
DATA expc<>+80(SB)/4, $0xb95e8083
DATA expc<>+84(SB)/4, $0xb95e8083
DATA expc<>+88(SB)/4, $0xb95e8083
DATA expc<>+92(SB)/4, $0xb95e8083
DATA expc<>+96(SB)/4, $0xc2aeac4f
DATA expc<>+100(SB)/4, $0xc2aeac4f
DATA expc<>+104(SB)/4, $0xc2aeac4f
DATA expc<>+108(SB)/4, $0xc2aeac4f
DATA expc<>+112(SB)/4, $0xc2aeac4f
DATA expc<>+116(SB)/4, $0xc2aeac4f
DATA expc<>+120(SB)/4, $0xc2aeac4f
DATA expc<>+124(SB)/4, $0xc2aeac4f
DATA expc<>+128(SB)/4, $0x39506967
DATA expc<>+132(SB)/4, $0x39506967
DATA expc<>+136(SB)/4, $0x39506967
DATA expc<>+140(SB)/4, $0x39506967
DATA expc<>+144(SB)/4, $0x39506967
DATA expc<>+148(SB)/4, $0x39506967
DATA expc<>+152(SB)/4, $0x39506967
DATA expc<>+156(SB)/4, $0x39506967
DATA expc<>+160(SB)/4, $0x3ab743ce
DATA expc<>+164(SB)/4, $0x3ab743ce
DATA expc<>+168(SB)/4, $0x3ab743ce
DATA expc<>+172(SB)/4, $0x3ab743ce
DATA expc<>+176(SB)/4, $0x3ab743ce
DATA expc<>+180(SB)/4, $0x3ab743ce
DATA expc<>+184(SB)/4, $0x3ab743ce
DATA expc<>+188(SB)/4, $0x3ab743ce
DATA expc<>+192(SB)/4, $0x3c088908
DATA expc<>+196(SB)/4, $0x3c088908
DATA expc<>+200(SB)/4, $0x3c088908
DATA expc<>+204(SB)/4, $0x3c088908
DATA expc<>+208(SB)/4, $0x3c088908
DATA expc<>+212(SB)/4, $0x3c088908
DATA expc<>+216(SB)/4, $0x3c088908
DATA expc<>+220(SB)/4, $0x3c088908
DATA expc<>+224(SB)/4, $0x3d2aa9c1
DATA expc<>+228(SB)/4, $0x3d2aa9c1
DATA expc<>+232(SB)/4, $0x3d2aa9c1
DATA expc<>+236(SB)/4, $0x3d2aa9c1
DATA expc<>+240(SB)/4, $0x3d2aa9c1
DATA expc<>+244(SB)/4, $0x3d2aa9c1
DATA expc<>+248(SB)/4, $0x3d2aa9c1
DATA expc<>+252(SB)/4, $0x3d2aa9c1
DATA expc<>+256(SB)/4, $0x3e2aaaaa
DATA expc<>+260(SB)/4, $0x3e2aaaaa
DATA expc<>+264(SB)/4, $0x3e2aaaaa
DATA expc<>+268(SB)/4, $0x3e2aaaaa
DATA expc<>+272(SB)/4, $0x3e2aaaaa
DATA expc<>+276(SB)/4, $0x3e2aaaaa
DATA expc<>+280(SB)/4, $0x3e2aaaaa
DATA expc<>+284(SB)/4, $0x3e2aaaaa
DATA expc<>+288(SB)/4, $0x3f000000
DATA expc<>+292(SB)/4, $0x3f000000
DATA expc<>+296(SB)/4, $0x3f000000
DATA expc<>+300(SB)/4, $0x3f000000
DATA expc<>+304(SB)/4, $0x3f000000
DATA expc<>+308(SB)/4, $0x3f000000
DATA expc<>+312(SB)/4, $0x3f000000
DATA expc<>+316(SB)/4, $0x3f000000
DATA expc<>+320(SB)/4, $0x3f800000
DATA expc<>+324(SB)/4, $0x3f800000
DATA expc<>+328(SB)/4, $0x3f800000
DATA expc<>+332(SB)/4, $0x3f800000
DATA expc<>+336(SB)/4, $0x3f800000
DATA expc<>+340(SB)/4, $0x3f800000
DATA expc<>+344(SB)/4, $0x3f800000
DATA expc<>+348(SB)/4, $0x3f800000
DATA expc<>+352(SB)/4, $127
DATA expc<>+356(SB)/4, $127
DATA expc<>+360(SB)/4, $127
DATA expc<>+364(SB)/4, $127
DATA expc<>+368(SB)/4, $127
DATA expc<>+372(SB)/4, $127
DATA expc<>+376(SB)/4, $127
DATA expc<>+380(SB)/4, $127
GLOBL expc<>(SB), RODATA|NOPTR, $384

// func expSumsAVX2(z, f *float32, n int, m, top1, target float32, out *expSums)
// For i < n (a multiple of 8), with d = z[i]−m and w = exp(d): out = {Σ w,
// Σ w·d, Σ f·d (f may be nil), #{z > top1}, #{z > target}}. exp's argument
// is clamped at ln(FLT_MIN) ≈ −87.34 to keep its bit tricks in range, and
// w is then masked to 0 below it, as exp underflows: a clamped e^−87.34
// times a d of −1e38 would add −1e0 to Σ w·d for each such logit. d = −Inf
// (logits so far apart that z − m overflows) still gives 0·(−Inf) = NaN,
// which rowStats reports.
TEXT ·expSumsAVX2(SB), NOSPLIT, $0-48
	MOVQ z+0(FP), SI
	MOVQ f+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS m+24(FP), Y15
	VBROADCASTSS top1+28(FP), Y14
	VBROADCASTSS target+32(FP), Y13
	VXORPS Y12, Y12, Y12
	VXORPS Y11, Y11, Y11
	VXORPS Y10, Y10, Y10
	XORQ R10, R10
	XORQ R11, R11
	SHRQ $3, CX
	TESTQ CX, CX
	JEQ done
loop:
	VMOVUPS (SI), Y0
	VCMPPS $1, Y0, Y14, Y1
	VMOVMSKPS Y1, AX
	POPCNTL AX, AX
	ADDQ AX, R10
	VCMPPS $1, Y0, Y13, Y1
	VMOVMSKPS Y1, AX
	POPCNTL AX, AX
	ADDQ AX, R11
	VSUBPS Y15, Y0, Y2
	VMOVAPS Y2, Y6
	TESTQ DI, DI
	JEQ nof
	VFMADD231PS (DI), Y6, Y10
	ADDQ $32, DI
nof:
	VCMPPS $13, expc<>+96(SB), Y2, Y7
	VMAXPS expc<>+96(SB), Y2, Y2
	VMULPS expc<>+0(SB), Y2, Y4
	VROUNDPS $0, Y4, Y4
	VFNMADD231PS expc<>+32(SB), Y4, Y2
	VFNMADD231PS expc<>+64(SB), Y4, Y2
	VMOVUPS expc<>+128(SB), Y3
	VFMADD213PS expc<>+160(SB), Y2, Y3
	VFMADD213PS expc<>+192(SB), Y2, Y3
	VFMADD213PS expc<>+224(SB), Y2, Y3
	VFMADD213PS expc<>+256(SB), Y2, Y3
	VFMADD213PS expc<>+288(SB), Y2, Y3
	VMULPS Y2, Y2, Y5
	VFMADD213PS Y2, Y5, Y3
	VADDPS expc<>+320(SB), Y3, Y3
	VCVTPS2DQ Y4, Y4
	VPADDD expc<>+352(SB), Y4, Y4
	VPSLLD $23, Y4, Y4
	VMULPS Y4, Y3, Y3
	VANDPS Y7, Y3, Y3
	VADDPS Y3, Y12, Y12
	VFMADD231PS Y6, Y3, Y11
	ADDQ $32, SI
	DECQ CX
	JNZ loop
done:
	MOVQ out+40(FP), DX
	VEXTRACTF128 $1, Y12, X0
	VADDPS X0, X12, X12
	VEXTRACTF128 $1, Y11, X0
	VADDPS X0, X11, X11
	VEXTRACTF128 $1, Y10, X0
	VADDPS X0, X10, X10
	VHADDPS X12, X12, X12
	VHADDPS X12, X12, X12
	VHADDPS X11, X11, X11
	VHADDPS X11, X11, X11
	VHADDPS X10, X10, X10
	VHADDPS X10, X10, X10
	VMOVSS X12, 0(DX)
	VMOVSS X11, 4(DX)
	VMOVSS X10, 8(DX)
	MOVL R10, 12(DX)
	MOVL R11, 16(DX)
	VZEROUPPER
	RET

// func expScaleAVX2(dst, z *float32, n int, m, scale float32)
// dst[i] = exp(z[i] − m)·scale for i < n, a multiple of 8; 0 where
// z[i] − m < ln(FLT_MIN), as in expSumsAVX2.
TEXT ·expScaleAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ z+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS m+24(FP), Y15
	VBROADCASTSS scale+28(FP), Y14
	SHRQ $3, CX
	TESTQ CX, CX
	JEQ done
loop:
	VMOVUPS (SI), Y0
	VSUBPS Y15, Y0, Y2
	VCMPPS $13, expc<>+96(SB), Y2, Y7
	VMAXPS expc<>+96(SB), Y2, Y2
	VMULPS expc<>+0(SB), Y2, Y4
	VROUNDPS $0, Y4, Y4
	VFNMADD231PS expc<>+32(SB), Y4, Y2
	VFNMADD231PS expc<>+64(SB), Y4, Y2
	VMOVUPS expc<>+128(SB), Y3
	VFMADD213PS expc<>+160(SB), Y2, Y3
	VFMADD213PS expc<>+192(SB), Y2, Y3
	VFMADD213PS expc<>+224(SB), Y2, Y3
	VFMADD213PS expc<>+256(SB), Y2, Y3
	VFMADD213PS expc<>+288(SB), Y2, Y3
	VMULPS Y2, Y2, Y5
	VFMADD213PS Y2, Y5, Y3
	VADDPS expc<>+320(SB), Y3, Y3
	VCVTPS2DQ Y4, Y4
	VPADDD expc<>+352(SB), Y4, Y4
	VPSLLD $23, Y4, Y4
	VMULPS Y4, Y3, Y3
	VANDPS Y7, Y3, Y3
	VMULPS Y14, Y3, Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop
done:
	VZEROUPPER
	RET

DATA geluc<>+0(SB)/4, $0x3d372713
DATA geluc<>+4(SB)/4, $0x3d372713
DATA geluc<>+8(SB)/4, $0x3d372713
DATA geluc<>+12(SB)/4, $0x3d372713
DATA geluc<>+16(SB)/4, $0x3d372713
DATA geluc<>+20(SB)/4, $0x3d372713
DATA geluc<>+24(SB)/4, $0x3d372713
DATA geluc<>+28(SB)/4, $0x3d372713
DATA geluc<>+32(SB)/4, $0xbfcc422a
DATA geluc<>+36(SB)/4, $0xbfcc422a
DATA geluc<>+40(SB)/4, $0xbfcc422a
DATA geluc<>+44(SB)/4, $0xbfcc422a
DATA geluc<>+48(SB)/4, $0xbfcc422a
DATA geluc<>+52(SB)/4, $0xbfcc422a
DATA geluc<>+56(SB)/4, $0xbfcc422a
DATA geluc<>+60(SB)/4, $0xbfcc422a
DATA geluc<>+64(SB)/4, $0x42b00000
DATA geluc<>+68(SB)/4, $0x42b00000
DATA geluc<>+72(SB)/4, $0x42b00000
DATA geluc<>+76(SB)/4, $0x42b00000
DATA geluc<>+80(SB)/4, $0x42b00000
DATA geluc<>+84(SB)/4, $0x42b00000
DATA geluc<>+88(SB)/4, $0x42b00000
DATA geluc<>+92(SB)/4, $0x42b00000
GLOBL geluc<>(SB), RODATA|NOPTR, $96

// func geluAVX2(x *float32, n int)
// x[i] = x[i] / (1 + exp(−2·√(2/π)·(x[i] + 0.044715·x[i]³))) for i < n, a
// multiple of 8: GELU's tanh form, 0.5·x·(1 + tanh(s)) = x / (1 + e^(−2s)).
TEXT ·geluAVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	SHRQ $3, CX
	TESTQ CX, CX
	JEQ done
loop:
	VMOVUPS (SI), Y0
	VMULPS Y0, Y0, Y2
	VMULPS geluc<>+0(SB), Y2, Y2
	VADDPS expc<>+320(SB), Y2, Y2
	VMULPS Y0, Y2, Y2
	VMULPS geluc<>+32(SB), Y2, Y2
	VMINPS geluc<>+64(SB), Y2, Y2
	VMAXPS expc<>+96(SB), Y2, Y2
	VMULPS expc<>+0(SB), Y2, Y4
	VROUNDPS $0, Y4, Y4
	VFNMADD231PS expc<>+32(SB), Y4, Y2
	VFNMADD231PS expc<>+64(SB), Y4, Y2
	VMOVUPS expc<>+128(SB), Y3
	VFMADD213PS expc<>+160(SB), Y2, Y3
	VFMADD213PS expc<>+192(SB), Y2, Y3
	VFMADD213PS expc<>+224(SB), Y2, Y3
	VFMADD213PS expc<>+256(SB), Y2, Y3
	VFMADD213PS expc<>+288(SB), Y2, Y3
	VMULPS Y2, Y2, Y5
	VFMADD213PS Y2, Y5, Y3
	VADDPS expc<>+320(SB), Y3, Y3
	VCVTPS2DQ Y4, Y4
	VPADDD expc<>+352(SB), Y4, Y4
	VPSLLD $23, Y4, Y4
	VMULPS Y4, Y3, Y3
	VADDPS expc<>+320(SB), Y3, Y3
	VDIVPS Y3, Y0, Y0
	VMOVUPS Y0, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ loop
done:
	VZEROUPPER
	RET

// func dotAVX2(a, b *float32, n int) float32
// Σ a[i]·b[i] for i < n, a multiple of 8.
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	SHRQ $3, CX
	TESTQ CX, CX
	JEQ done
	TESTQ $1, CX
	JEQ pairs
	VMOVUPS (SI), Y2
	VFMADD231PS (DI), Y2, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JEQ done
pairs:
	VMOVUPS (SI), Y2
	VMOVUPS 32(SI), Y3
	VFMADD231PS (DI), Y2, Y0
	VFMADD231PS 32(DI), Y3, Y1
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $2, CX
	JNE pairs
done:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func axpyAVX2(alpha float32, x, y *float32, n int)
// y[i] += alpha·x[i] for i < n, a multiple of 8.
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Y0
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	TESTQ CX, CX
	JEQ done
loop:
	VMOVUPS (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop
done:
	VZEROUPPER
	RET

// func firstAboveAVX2(z *float32, n int, t float32) int
// The index of the first z[i] > t, i < n (a multiple of 8), or n.
TEXT ·firstAboveAVX2(SB), NOSPLIT, $0-32
	MOVQ z+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS t+16(FP), Y1
	XORQ AX, AX
loop:
	CMPQ AX, CX
	JGE none
	VMOVUPS (SI)(AX*4), Y0
	VCMPPS $1, Y0, Y1, Y2
	VMOVMSKPS Y2, DX
	TESTL DX, DX
	JNE found
	ADDQ $8, AX
	JMP loop
found:
	BSFL DX, DX
	ADDQ DX, AX
	MOVQ AX, ret+24(FP)
	VZEROUPPER
	RET
none:
	MOVQ CX, ret+24(FP)
	VZEROUPPER
	RET

// func maxFiniteAVX2(z *float32, n int) (m, nonFinite float32)
// The largest of z[:n], n a positive multiple of 32, and Σ z[i]·0 over
// z[:n]: 0 when every z[i] is finite, NaN when one is ±Inf or NaN (MAXPS
// drops NaN, so the max alone cannot tell).
TEXT ·maxFiniteAVX2(SB), NOSPLIT, $0-24
	MOVQ z+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Y0
	VMOVAPS Y0, Y1
	VMOVAPS Y0, Y2
	VMOVAPS Y0, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y8, Y8, Y8
	SHRQ $5, CX
loop:
	VMOVUPS (SI), Y6
	VMOVUPS 32(SI), Y7
	VMOVUPS 64(SI), Y11
	VMOVUPS 96(SI), Y12
	VMAXPS Y6, Y0, Y0
	VMAXPS Y7, Y1, Y1
	VMAXPS Y11, Y2, Y2
	VMAXPS Y12, Y3, Y3
	VFMADD231PS Y8, Y6, Y4
	VFMADD231PS Y8, Y7, Y5
	VFMADD231PS Y8, Y11, Y9
	VFMADD231PS Y8, Y12, Y10
	ADDQ $128, SI
	DECQ CX
	JNZ loop
	VMAXPS Y1, Y0, Y0
	VMAXPS Y3, Y2, Y2
	VMAXPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4E, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xB1, X0, X1
	VMAXPS X1, X0, X0
	VMOVSS X0, m+16(FP)
	VADDPS Y5, Y4, Y4
	VADDPS Y10, Y9, Y9
	VADDPS Y9, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VADDPS X5, X4, X4
	VHADDPS X4, X4, X4
	VHADDPS X4, X4, X4
	VMOVSS X4, nonFinite+20(FP)
	VZEROUPPER
	RET

// func countAboveAVX2(z *float32, n int, t float32) int
// #{i < n : z[i] > t}, n a multiple of 8.
TEXT ·countAboveAVX2(SB), NOSPLIT, $0-32
	MOVQ z+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS t+16(FP), Y1
	XORQ AX, AX
	SHRQ $3, CX
	TESTQ CX, CX
	JEQ done
loop:
	VMOVUPS (SI), Y0
	VCMPPS $1, Y0, Y1, Y2
	VMOVMSKPS Y2, DX
	POPCNTL DX, DX
	ADDQ DX, AX
	ADDQ $32, SI
	DECQ CX
	JNZ loop
done:
	MOVQ AX, ret+24(FP)
	VZEROUPPER
	RET
