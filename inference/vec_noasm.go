//go:build !amd64 || purego

package inference

// haveVecStats: no vector statistics kernels on this platform.
const haveVecStats = false

func vecExpSums(z, f []float32, m, top1, target float32, out *expSums) { panic("unreachable") }
func vecExpScale(dst, z []float32, m, scale float32)                   { panic("unreachable") }
func vecMaxFinite(z []float32) (float32, bool)                         { panic("unreachable") }
func vecCountAbove(z []float32, t float32) int                         { panic("unreachable") }
func vecGELU(x []float32)                                              { panic("unreachable") }
func vecDot(a, b []float32) float32                                    { panic("unreachable") }
func vecAxpy(alpha float32, x, y []float32)                            { panic("unreachable") }
func vecFirstAbove(z []float32, t float32) int                         { panic("unreachable") }
