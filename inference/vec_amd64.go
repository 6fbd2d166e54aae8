//go:build amd64 && !purego

package inference

import "golang.org/x/sys/cpu"

//go:noescape
func expSumsAVX2(z, f *float32, n int, m, top1, target float32, out *expSums)

//go:noescape
func expScaleAVX2(dst, z *float32, n int, m, scale float32)

//go:noescape
func maxFiniteAVX2(z *float32, n int) (m, nonFinite float32)

//go:noescape
func countAboveAVX2(z *float32, n int, t float32) int

// haveVecStats says whether the AVX2 kernels (statistics and element-wise
// ops) run here.
var haveVecStats = cpu.X86.HasAVX2 && cpu.X86.HasFMA

func vecExpSums(z, f []float32, m, top1, target float32, out *expSums) {
	var fp *float32
	if f != nil {
		fp = &f[0]
	}
	expSumsAVX2(&z[0], fp, len(z), m, top1, target, out)
}

func vecExpScale(dst, z []float32, m, scale float32) { expScaleAVX2(&dst[0], &z[0], len(z), m, scale) }

func vecMaxFinite(z []float32) (float32, bool) {
	m, nf := maxFiniteAVX2(&z[0], len(z))
	return m, nf == 0
}

func vecCountAbove(z []float32, t float32) int { return countAboveAVX2(&z[0], len(z), t) }

//go:noescape
func geluAVX2(x *float32, n int)

//go:noescape
func dotAVX2(a, b *float32, n int) float32

//go:noescape
func axpyAVX2(alpha float32, x, y *float32, n int)

func vecGELU(x []float32) { geluAVX2(&x[0], len(x)) }

func vecDot(a, b []float32) float32 { return dotAVX2(&a[0], &b[0], len(a)) }

func vecAxpy(alpha float32, x, y []float32) { axpyAVX2(alpha, &x[0], &y[0], len(x)) }

//go:noescape
func firstAboveAVX2(z *float32, n int, t float32) int

func vecFirstAbove(z []float32, t float32) int { return firstAboveAVX2(&z[0], len(z), t) }
