package cuda_test

import (
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/inference/devicetest"
)

// The CUDA device runs the conformance suite on the emulated GPU: every
// launch, copy and GEMM in its real order and shapes, against Go
// transcriptions of the kernels. One emulated device holds every model of
// the suite, so its byte count finds any leak.
func TestEmulatedCUDAConformance(t *testing.T) {
	dev, emu, err := cuda.NewEmulatedDevice()
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	devicetest.Run(t, devicetest.Options{
		Open: func(t testing.TB, dir string) *inference.Model {
			m, err := inference.OpenDir(dir, "test", inference.CUDABackend(dev))
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
		Allocated: emu.Allocated,
		Slow:      raceEnabled,
	})
	if n := emu.Allocated(); n != 0 {
		t.Errorf("%d bytes still allocated on the emulated GPU after the suite", n)
	}
}
