package inference_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/inference/devicetest"
)

// emulatedGPU makes OpenOn open emulated GPUs, with the given kernels
// faulting, for the rest of the test; it returns the last one opened.
func emulatedGPU(t *testing.T, faulty ...string) **cuda.Emulator {
	var emu *cuda.Emulator
	old := *inference.OpenCUDA
	*inference.OpenCUDA = func() (*cuda.Device, error) {
		d, e, err := cuda.NewEmulatedDevice()
		for _, k := range faulty {
			e.Fault(k)
		}
		emu = e
		return d, err
	}
	t.Cleanup(func() { *inference.OpenCUDA = old })
	return &emu
}

// A checkpoint whose activations overflow is no reason to leave the GPU:
// its cells that are not finite are not finite on both devices, and the
// self-check passes.
func TestSelfCheckAcceptsOverflowBothAgreeOn(t *testing.T) {
	emulatedGPU(t)
	m, err := inference.OpenOn(context.Background(), devicetest.OverflowCheckpoint(t, "h.0.attn.c_attn.weight"), "overflow", "auto")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !strings.HasPrefix(m.Info().Device, "cuda") || m.Info().Note != "" {
		t.Errorf("device %q, note %q", m.Info().Device, m.Info().Note)
	}
}

// A GPU that faults on the user's own model fails its self-check: auto
// falls back to the CPU, which computes the lens, and nothing stays
// allocated on the GPU; --device cuda fails with the fault.
func TestSelfCheckFallsBackOnAFault(t *testing.T) {
	emu := emulatedGPU(t, "lens_stats")
	dir := devicetest.OverflowCheckpoint(t, "h.0.attn.c_attn.weight")
	m, err := inference.OpenOn(context.Background(), dir, "overflow", "auto")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	note := m.Info().Note
	t.Log(note)
	if m.Info().Device != "cpu" || !strings.Contains(note, "failed its self-check") || !strings.Contains(note, "running on the CPU") {
		t.Fatalf("device %q, note %q", m.Info().Device, note)
	}
	if n := (*emu).Allocated(); n != 0 {
		t.Errorf("%d bytes left on the faulted GPU", n)
	}
	sess := m.NewSession()
	defer sess.Close()
	l, err := sess.Lens(context.Background(), inference.Request{IDs: []int{464, 412, 733, 417, 8765, 318}, TopK: 5, Target: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.NonFinite == nil {
		t.Error("the CPU's lens of an overflowing checkpoint reports nothing")
	}

	_, err = inference.OpenOn(context.Background(), dir, "overflow", "cuda")
	var sc *inference.SelfCheckError
	if !errors.As(err, &sc) || sc.Err == nil {
		t.Errorf("--device cuda on a GPU that faults: %v", err)
	}
}
