package cuda_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/inference/devicetest"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// The CUDA device's cells equal the CPU device's field for field, through
// the seam: every statistic (a pinned target and the next token's too),
// and, on checkpoints whose activations overflow, which cells are not
// finite, what each says broke and which of its fields are NaN or −1.

// lensOn computes one lens of req on the checkpoint in dir with backend.
func lensOn(t *testing.T, dir string, backend inference.NewBackend, req inference.Request) *inference.Lens {
	t.Helper()
	m, err := inference.OpenDir(dir, "test", backend)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := m.NewSession()
	defer s.Close()
	l, err := s.Lens(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// sameNaN says whether a and b are both NaN or both not.
func sameNaN(a, b float64) bool { return math.IsNaN(a) == math.IsNaN(b) }

// compareLens holds the CUDA lens to the CPU's: the same non-finite cells
// with the same fields unset, and statistics within float32 rounding
// (ranks may differ by 2 where logits tie within it). It returns how many
// cells were not finite.
func compareLens(t *testing.T, cpu, gpu *inference.Lens) int {
	t.Helper()
	const tol = 1e-5
	bad := 0
	var maxDiff float64
	for r := range cpu.Cells {
		for p := range cpu.Cells[r] {
			c, g := cpu.Cells[r][p], gpu.Cells[r][p]
			where := fmt.Sprintf("row %s pos %d", cpu.Rows[r].Name, p)
			if c.NonFinite != g.NonFinite {
				t.Errorf("%s: CPU %s, CUDA %s", where, c.NonFinite, g.NonFinite)
				continue
			}
			if c.NonFinite != inference.Finite {
				bad++
			}
			for _, f := range []struct {
				name string
				c, g float64
			}{
				{"entropy", c.Entropy, g.Entropy}, {"KL", c.KLToFinal, g.KLToFinal},
				{"final top-1 prob", c.FinalTop1Prob, g.FinalTop1Prob},
				{"target prob", c.TargetProb, g.TargetProb}, {"next prob", c.NextProb, g.NextProb},
			} {
				if !sameNaN(f.c, f.g) {
					t.Errorf("%s: %s %g on the CPU, %g on CUDA", where, f.name, f.c, f.g)
				} else if d := math.Abs(f.c - f.g); d > tol {
					t.Errorf("%s: %s %g on the CPU, %g on CUDA", where, f.name, f.c, f.g)
				} else if !math.IsNaN(d) {
					maxDiff = max(maxDiff, d)
				}
			}
			for _, rk := range []struct {
				name string
				c, g int
			}{{"final top-1", c.FinalTop1Rank, g.FinalTop1Rank}, {"target", c.TargetRank, g.TargetRank}, {"next", c.NextRank, g.NextRank}} {
				if (rk.c < 0) != (rk.g < 0) || rk.c-rk.g > 2 || rk.g-rk.c > 2 {
					t.Errorf("%s: %s rank %d on the CPU, %d on CUDA", where, rk.name, rk.c, rk.g)
				}
			}
			if len(c.Top) != len(g.Top) {
				t.Errorf("%s: top-%d on the CPU, top-%d on CUDA", where, len(c.Top), len(g.Top))
				continue
			}
			for j := range c.Top {
				d := math.Abs(c.Top[j].Prob - g.Top[j].Prob)
				maxDiff = max(maxDiff, d)
				if d > tol || (c.Top[j].ID != g.Top[j].ID && d > 1e-6) {
					t.Errorf("%s: top[%d] %d (%g) on the CPU, %d (%g) on CUDA", where, j, c.Top[j].ID, c.Top[j].Prob, g.Top[j].ID, g.Top[j].Prob)
				}
			}
		}
	}
	for p := range cpu.FinalTop1 {
		if cpu.FinalTop1[p] != gpu.FinalTop1[p] {
			t.Errorf("pos %d: final top-1 %d on the CPU, %d on CUDA", p, cpu.FinalTop1[p], gpu.FinalTop1[p])
		}
	}
	if (cpu.NonFinite == nil) != (gpu.NonFinite == nil) || (cpu.NonFinite != nil && *cpu.NonFinite != *gpu.NonFinite) {
		t.Errorf("breakdown %v on the CPU, %v on CUDA", cpu.NonFinite, gpu.NonFinite)
	}
	t.Logf("max |Δ| CPU vs CUDA: %.2g; %d cells not finite", maxDiff, bad)
	return bad
}

func TestCellsMatchCPU(t *testing.T) {
	ids := []int{464, 412, 733, 417, 8765, 318, 262, 3290, 13, 50256}
	req := inference.Request{IDs: ids, TopK: 10, Target: 262, Sublayers: true, NextToken: true}
	for _, tc := range []struct {
		name    string
		dir     func(t *testing.T) string
		nonFin  bool
		nanRows bool // some position's final row is NaN only
	}{
		{"tiny-f32", func(t *testing.T) string { return testmodel.Dir(t, "tiny-f32") }, false, false},
		// NaN residuals from block 1's attention on, at some positions
		{"c_attn-overflow", func(t *testing.T) string { return devicetest.OverflowCheckpoint(t, "h.0.attn.c_attn.weight") }, true, true},
		// finite residuals, logits that overflow
		{"ln_f-overflow", func(t *testing.T) string { return devicetest.OverflowCheckpoint(t, "ln_f.weight") }, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			dev, emu, err := cuda.NewEmulatedDevice()
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			cpu := lensOn(t, dir, inference.NewCPUBackend, req)
			gpu := lensOn(t, dir, inference.CUDABackend(dev), req)
			if bad := compareLens(t, cpu, gpu); (bad > 0) != tc.nonFin {
				t.Errorf("%d cells not finite", bad)
			}
			nanRow := false
			for p, id := range gpu.FinalTop1 {
				last := gpu.Cells[len(gpu.Rows)-1][p]
				nanRow = nanRow || (id < 0 && last.NonFinite == inference.ResidualNaN)
			}
			if nanRow != tc.nanRows {
				t.Errorf("a final row of NaN: %v, want %v", nanRow, tc.nanRows)
			}
			if n := emu.Allocated(); n != 0 {
				t.Errorf("%d bytes allocated after closing", n)
			}
		})
	}
}
