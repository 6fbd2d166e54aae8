package cuda_test

import (
	"context"
	"errors"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/inference/devicetest"
)

// gaps are what the CUDA device does not do yet, for the suite.
var gaps = map[devicetest.Gap]string{
	devicetest.NextToken: "lens_stats takes one target per launch, not a token per row",
	devicetest.NaNRows:   "lens_final finds no argmax in a row of NaN and lens_stats reads z[INT_MAX]",
}

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
		Gaps:      gaps,
		Slow:      raceEnabled,
	})
	if n := emu.Allocated(); n != 0 {
		t.Errorf("%d bytes still allocated on the emulated GPU after the suite", n)
	}
}

// Until lens_final clamps its argmax, a position whose final row is all NaN
// faults the (emulated) GPU: the lens fails with the fault rather than
// returning numbers, and closing the model still frees every byte.
func TestNaNRowsFailRatherThanLie(t *testing.T) {
	dev, emu, err := cuda.NewEmulatedDevice()
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	m, err := inference.OpenDir(devicetest.OverflowCheckpoint(t, "h.0.attn.c_attn.weight"), "overflow", inference.CUDABackend(dev))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.NewSession().Lens(context.Background(), inference.Request{IDs: []int{464, 412, 733, 417, 8765, 318}, TopK: 5, Target: -1}, nil)
	var de *cuda.DriverError
	if !errors.As(err, &de) || de.Name != "CUDA_ERROR_ILLEGAL_ADDRESS" {
		t.Fatalf("a NaN final row: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Logf("closing after the fault: %v", err)
	}
	if n := emu.Allocated(); n != 0 {
		t.Errorf("%d bytes still allocated after the fault and Close", n)
	}
}
