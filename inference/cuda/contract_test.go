package cuda_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// The contract tests run the engine's host side (every launch, copy and
// GEMM in its real order, with its real shapes and offsets) on the emulated
// device, whose kernels are Go transcriptions of the CUDA C, and hold the
// cells to the CPU engine's on the tiny test checkpoints (weights/testmodel).
// What they cannot show is that the CUDA C matches its transcription:
// tools/gpucheck/gpu-check.sh does that on a GPU box.

// cpuLens is the CPU engine's lens of ids with every sublayer row.
func cpuLens(t *testing.T, dir string, ids []int, topK, target int) *inference.Lens {
	t.Helper()
	m, err := inference.OpenDir(dir, "fixture", inference.NewCPUBackend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	l, err := m.NewSession().Lens(context.Background(), inference.Request{IDs: ids, TopK: topK, Target: target, Sublayers: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// tolerance: |Δprob| ≤ 1e-4 (the bound), entropy and KL within
// 1e-4 nats; top-k ids and ranks equal unless the logits tie within float32
// rounding (then the probabilities must agree instead).
const probTol = 1e-4

type diffs struct{ prob, ent, kl float64 }

func compareCells(t *testing.T, where string, cpu inference.Cell, gpu cuda.Cell, d *diffs) {
	t.Helper()
	if len(cpu.Top) != len(gpu.Top) {
		t.Fatalf("%s: top-k of %d vs %d", where, len(cpu.Top), len(gpu.Top))
	}
	for j := range cpu.Top {
		c, g := cpu.Top[j], gpu.Top[j]
		d.prob = max(d.prob, math.Abs(c.Prob-g.Prob))
		if c.ID != g.ID && math.Abs(c.Prob-g.Prob) > 1e-6 {
			t.Errorf("%s: top[%d] = %d (%.6g) on the CPU, %d (%.6g) emulated", where, j, c.ID, c.Prob, g.ID, g.Prob)
		}
	}
	for _, p := range [][2]float64{{cpu.FinalTop1Prob, gpu.FinalTop1Prob}, {cpu.TargetProb, gpu.TargetProb}} {
		d.prob = max(d.prob, math.Abs(p[0]-p[1]))
	}
	d.ent = max(d.ent, math.Abs(cpu.Entropy-gpu.Entropy))
	d.kl = max(d.kl, math.Abs(cpu.KLToFinal-gpu.KLToFinal))
	if cpu.FinalTop1Rank != gpu.FinalTop1Rank && math.Abs(cpu.FinalTop1Prob-gpu.FinalTop1Prob) > 1e-6 {
		t.Errorf("%s: final top-1 rank %d vs %d", where, cpu.FinalTop1Rank, gpu.FinalTop1Rank)
	}
	if cpu.TargetRank != gpu.TargetRank && math.Abs(cpu.TargetProb-gpu.TargetProb) > 1e-6 {
		t.Errorf("%s: target rank %d vs %d", where, cpu.TargetRank, gpu.TargetRank)
	}
}

func (d diffs) check(t *testing.T) {
	t.Helper()
	t.Logf("max |Δ| vs CPU engine: prob %.2g, entropy %.2g, KL %.2g", d.prob, d.ent, d.kl)
	if d.prob > probTol || d.ent > probTol || d.kl > probTol {
		t.Errorf("differences exceed %g", probTol)
	}
}

// emulatedModel uploads the checkpoint in dir to an emulated device; the
// test's cleanup frees both.
func emulatedModel(t *testing.T, dir string) (*cuda.Model, cuda.Config) {
	t.Helper()
	ck, err := weights.OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	cfg, w := cuda.FromCheckpoint(ck)
	dev, _, err := cuda.NewEmulatedDevice()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	m, err := dev.Upload(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, cfg
}

var testIDs = []int{464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13}

func TestLensMatchesCPUEngine(t *testing.T) {
	for _, name := range []string{"tiny-f32", "tiny-lmhead"} {
		t.Run(name, func(t *testing.T) {
			dir := testmodel.Dir(t, name)
			const topK, target = 10, 262
			cpu := cpuLens(t, dir, testIDs, topK, target)

			m, cfg := emulatedModel(t, dir)
			st, err := m.NewState(cuda.StateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Forward(testIDs, 0); err != nil {
				t.Fatal(err)
			}
			streams := make([]int, 2*cfg.NLayer+1)
			for i := range streams {
				streams[i] = i
			}
			cells, err := st.Lens(cuda.LensRequest{Streams: streams, From: 0, To: len(testIDs), TopK: topK, Target: target})
			if err != nil {
				t.Fatal(err)
			}
			var d diffs
			for r := range cpu.Cells {
				for p := range testIDs {
					compareCells(t, fmt.Sprintf("row %s pos %d", cpu.Rows[r].Name, p), cpu.Cells[r][p], cells[r][p], &d)
				}
			}
			d.check(t)
		})
	}
}

// TestIncrementalMatchesFull appends one token on the KV cache, and edits
// the prompt from a middle position, and expects the full lens's cells.
func TestIncrementalMatchesFull(t *testing.T) {
	dir := testmodel.Dir(t, "tiny-f32")
	m, _ := emulatedModel(t, dir)
	st, err := m.NewState(cuda.StateOptions{LensBytes: 4 * 50257 * 3}) // 3 rows per GEMM: forces chunking
	if err != nil {
		t.Fatal(err)
	}
	T := len(testIDs)
	cpu := cpuLens(t, dir, testIDs, 5, -1)
	edited := append([]int{}, testIDs...)
	edited[4] = 50256
	// a different prompt first, then edit back to testIDs from position 4
	if err := st.Forward(edited[:T-1], 0); err != nil {
		t.Fatal(err)
	}
	if err := st.Forward(testIDs[4:T-1], 4); err != nil {
		t.Fatal(err)
	}
	if err := st.Forward(testIDs[T-1:], T-1); err != nil { // one appended token
		t.Fatal(err)
	}
	cells, err := st.Lens(cuda.LensRequest{Streams: []int{4, 0, 2}, From: 2, To: T, TopK: 5, Target: -1})
	if err != nil {
		t.Fatal(err)
	}
	var d diffs
	for r, st := range []int{4, 0, 2} {
		for p := 2; p < T; p++ {
			g := cells[r][p-2]
			if g.TargetRank != -1 || g.TargetProb != 0 {
				t.Fatalf("no target, but rank %d prob %g", g.TargetRank, g.TargetProb)
			}
			compareCells(t, fmt.Sprintf("stream %d pos %d", st, p), cpu.Cells[st][p], g, &d)
		}
	}
	d.check(t)
}
