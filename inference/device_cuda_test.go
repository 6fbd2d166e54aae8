package inference

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// withEmulatedGPU makes openCUDA return a Device on a fresh Emulator
// (broken in the given kernels) for the rest of the test, and returns the
// Emulator of the last device opened.
func withEmulatedGPU(t *testing.T, broken ...string) **cuda.Emulator {
	t.Helper()
	var last *cuda.Emulator
	old := openCUDA
	openCUDA = func() (*cuda.Device, error) {
		d, e, err := cuda.NewEmulatedDevice()
		for _, k := range broken {
			e.Break(k)
		}
		last = e
		return d, err
	}
	t.Cleanup(func() { openCUDA = old })
	return &last
}

// withoutGPU makes openCUDA fail as it does on a machine without a driver.
func withoutGPU(t *testing.T) {
	old := openCUDA
	openCUDA = func() (*cuda.Device, error) {
		return nil, fmt.Errorf("cuda: libcuda.so.1 (the NVIDIA driver) not found: %w", cuda.ErrNoDriver)
	}
	t.Cleanup(func() { openCUDA = old })
}

// The GPU path is taken, silently, when the emulated GPU agrees with the
// CPU, and its cells equal the CPU's.
func TestAutoUsesAGoodGPU(t *testing.T) {
	emu := withEmulatedGPU(t)
	dir := testmodel.Dir(t, "tiny-f32")
	m, err := OpenOn(context.Background(), dir, "tiny-f32", "auto")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !strings.HasPrefix(m.Info().Device, "cuda: emulated") || m.Info().Note != "" {
		t.Fatalf("device %q, note %q", m.Info().Device, m.Info().Note)
	}
	cpu := testModel(t, "tiny-f32")
	req := Request{IDs: []int{464, 2068, 7586, 21831, 18045, 625, 262}, TopK: 5, Target: 262, Sublayers: true}
	s := m.NewSession()
	got, err := s.Lens(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := cpu.NewSession().Lens(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxCellDiff(t, got, want); d > 1e-5 {
		t.Errorf("emulated GPU differs from the CPU by %g", d)
	}
	if (*emu).Allocated() == 0 {
		t.Fatal("nothing allocated on the emulated GPU")
	}
	s.Close()
	m.Close()
	if n := (*emu).Allocated(); n != 0 {
		t.Errorf("%d bytes still allocated after closing the session and the model", n)
	}
}

// A GPU whose lens is wrong is caught by the self-check: auto falls back
// to the CPU with one line naming the difference; --device cuda fails with
// it. Nothing stays allocated on the GPU either way.
func TestSelfCheckCatchesAWrongGPU(t *testing.T) {
	emu := withEmulatedGPU(t, "gelu_forward")
	dir := testmodel.Dir(t, "tiny-f32")
	m, err := OpenOn(context.Background(), dir, "tiny-f32", "auto")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	note := m.Info().Note
	t.Log(note)
	if m.Info().Device != "cpu" || !strings.Contains(note, "failed its self-check") || !strings.Contains(note, "running on the CPU") ||
		strings.Contains(note, "\n") {
		t.Fatalf("device %q, note %q", m.Info().Device, note)
	}
	if n := (*emu).Allocated(); n != 0 {
		t.Errorf("%d bytes still allocated on the abandoned GPU", n)
	}
	if _, err := m.NewSession().Lens(context.Background(), Request{IDs: []int{1, 2}, TopK: 3, Target: -1}, nil); err != nil {
		t.Fatalf("the CPU fallback cannot compute: %v", err)
	}

	_, err = OpenOn(context.Background(), dir, "tiny-f32", "cuda")
	var sc *SelfCheckError
	if !errors.As(err, &sc) || sc.Prob <= selfCheckTol && sc.Top1Where == "" {
		t.Fatalf("--device cuda on a wrong GPU: %v", err)
	}
	t.Log(err)
	if n := (*emu).Allocated(); n != 0 {
		t.Errorf("%d bytes still allocated after --device cuda failed", n)
	}
}

// Without an NVIDIA driver, auto runs on the CPU and says nothing;
// --device cuda fails with the reason.
func TestNoGPU(t *testing.T) {
	withoutGPU(t)
	dir := testmodel.Dir(t, "tiny-f32")
	m, err := OpenOn(context.Background(), dir, "tiny-f32", "auto")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Info().Device != "cpu" || m.Info().Note != "" {
		t.Errorf("device %q, note %q: auto must be silent without a GPU", m.Info().Device, m.Info().Note)
	}
	_, err = OpenOn(context.Background(), dir, "tiny-f32", "cuda")
	if !errors.Is(err, ErrNoCUDA) || !strings.Contains(err.Error(), "libcuda.so.1") {
		t.Errorf("--device cuda without a driver: %v", err)
	}
}
