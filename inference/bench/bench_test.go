package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// openModel opens a weights/testmodel checkpoint on the CPU.
func openModel(t testing.TB, name string) *inference.Model {
	t.Helper()
	m, err := inference.OpenDir(testmodel.Dir(t, name), name, inference.NewCPUBackend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// The report keeps the JSON shape the issue fixes, and its text renders.
func TestReportShape(t *testing.T) {
	m := openModel(t, "tiny-f32")
	rep, err := Run(context.Background(), m, Options{Tokens: []int{2, 5}, Runs: 1})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var shape struct {
		BLAS    string `json:"blas"`
		Device  string `json:"device"`
		Results []struct {
			Tokens  int                `json:"tokens"`
			Full    map[string]float64 `json:"full_ms"`
			Visible map[string]float64 `json:"visible_ms"`
			Inc     map[string]float64 `json:"incremental_ms"`
			Unembed map[string]float64 `json:"unembed_ms"`
			Lens    map[string]float64 `json:"lens_ms"`
		} `json:"results"`
	}
	if err := json.Unmarshal(buf.Bytes(), &shape); err != nil {
		t.Fatal(err)
	}
	if shape.BLAS == "" || shape.Device != "cpu" || len(shape.Results) != 2 || shape.Results[1].Tokens != 5 {
		t.Fatalf("report shape: %s", buf.String())
	}
	for _, r := range shape.Results {
		for _, k := range []string{"median", "min", "max"} {
			if r.Full[k] <= 0 || r.Visible[k] <= 0 || r.Inc[k] <= 0 || r.Unembed[k] <= 0 || r.Lens[k] <= 0 {
				t.Fatalf("%d tokens: %s missing: %s", r.Tokens, k, buf.String())
			}
		}
	}
	buf.Reset()
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + buf.String())
	if _, err := Run(context.Background(), m, Options{Tokens: []int{1}}); err == nil {
		t.Error("1 token: no error")
	}
}

// On a GPU the report is the device's: times from its events, the
// unembedding alone run there, no host memory floor. The emulated GPU's
// events are 1 ms apart, which no host clock would give for every
// measurement, the bare unembedding's included.
func TestReportOnEmulatedGPU(t *testing.T) {
	dev, emu, err := cuda.NewEmulatedDevice()
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	m, err := inference.OpenDir(testmodel.Dir(t, "tiny-f32"), "tiny-f32", inference.CUDABackend(dev))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), m, Options{Tokens: []int{3, 9}, Runs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rep.Device, "cuda: emulated") || rep.MemReadGB != 0 {
		t.Errorf("report %+v", rep)
	}
	for _, r := range rep.Results {
		if r.IncFloorRatio != 0 {
			t.Errorf("%d tokens: a host memory floor on a GPU", r.Tokens)
		}
		// Visible is wall time (columns as they reach the host), not events.
		if !(r.Visible.Min > 0 && r.Visible.Min <= r.Visible.Median && r.Visible.Median <= r.Visible.Max) {
			t.Errorf("%d tokens, visible: %+v", r.Tokens, r.Visible)
		}
		for name, tm := range map[string]Times{"full": r.Full, "incremental": r.Incremental, "unembed": r.Unembed, "lens": r.Lens} {
			if tm != (Times{Median: 1, Min: 1, Max: 1}) {
				t.Errorf("%d tokens, %s: %+v, not the events' 1 ms", r.Tokens, name, tm)
			}
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "device   cuda: emulated") || strings.Contains(buf.String(), "blas ") {
		t.Errorf("text report:\n%s", buf.String())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if n := emu.Allocated(); n != 0 {
		t.Errorf("%d bytes left on the emulated GPU after the bench", n)
	}
	if n := emu.Events(); n != 0 {
		t.Errorf("%d events left on the emulated GPU after the bench", n)
	}
}

// go test -run SmallShape -v ./inference/bench with LOGITLENS_BENCH=1
// prints the report for the small-shape fixture.
func TestSmallShape(t *testing.T) {
	if os.Getenv("LOGITLENS_BENCH") == "" {
		t.Skip("set LOGITLENS_BENCH=1")
	}
	m := openModel(t, "small-shape")
	rep, err := Run(context.Background(), m, Options{Runs: 3})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.WriteText(&buf)
	t.Log("\n" + buf.String())
}
