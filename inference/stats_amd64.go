//go:build amd64 && !purego

package inference

import "golang.org/x/sys/cpu"

//go:noescape
func expSumsAVX2(z, f *float32, n int, m, top1, target float32, out *expSums)

//go:noescape
func expScaleAVX2(dst, z *float32, n int, m, scale float32)

//go:noescape
func maxAVX2(z *float32, n int) float32

// haveVecStats says whether the AVX2 statistics kernels run here.
var haveVecStats = cpu.X86.HasAVX2 && cpu.X86.HasFMA

func vecExpSums(z, f []float32, m, top1, target float32, out *expSums) {
	var fp *float32
	if f != nil {
		fp = &f[0]
	}
	expSumsAVX2(&z[0], fp, len(z), m, top1, target, out)
}

func vecExpScale(dst, z []float32, m, scale float32) { expScaleAVX2(&dst[0], &z[0], len(z), m, scale) }

func vecMax(z []float32) float32 { return maxAVX2(&z[0], len(z)) }
