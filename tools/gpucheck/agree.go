package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/cuda"
)

// Tolerances of the agreement between the GPU's cells and the CPU's: the
// self-check's probability bound, and the conformance suite's bound on
// nats; a rank counts the logits strictly above one, so logits within
// float32 rounding of it may move it by a little.
const (
	probTol = 1e-4
	natsTol = 1e-3
	rankTol = 2
	tieTol  = 1e-6 // top-k ids may differ where their probabilities tie within this
)

// agreement is how one lens on the GPU compared with the CPU's.
type agreement struct {
	Model string `json:"model"`
	T     int    `json:"tokens"`
	// Path is how the GPU reached the prompt: "full" from scratch,
	// "append" by appending its last token to the cached T−1.
	Path  string `json:"path"`
	Cells int    `json:"cells"`
	// Disagreements, by kind: top-k ids beyond a tie, ranks (final top-1,
	// target, next token) further apart than rankTol or present on one side
	// only, non-finite reports, final top-1 ids.
	IDs       int `json:"top_ids_differing"`
	Ranks     int `json:"ranks_differing"`
	NonFinite int `json:"nonfinite_differing"`
	FinalTop1 int `json:"final_top1_differing"`
	// Largest differences: probabilities (top-k, final top-1, target, next
	// token), entropy and KL in nats.
	Prob    float64 `json:"max_abs_dprob"`
	Entropy float64 `json:"max_abs_dentropy"`
	KL      float64 `json:"max_abs_dkl"`
	Worst   string  `json:"worst_cell"` // where the largest probability difference is
	OK      bool    `json:"ok"`
}

// promptIDs returns n pseudo-random token ids below V, the same on every
// run (as bench's prompts).
func promptIDs(n, V int) []int {
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = r.IntN(V)
	}
	return ids
}

// checkModel compares the GPU's lenses of one checkpoint with the CPU's at
// each prompt length (clipped to n_positions): from scratch, and by
// appending the last token. It also runs the self-check that --device auto
// runs. An error is a step that failed; disagreements are in the results.
func checkModel(ctx context.Context, dev *cuda.Device, dir, name string, tokens []int) ([]agreement, error) {
	cpu, err := inference.OpenDir(dir, name, inference.NewCPUBackend)
	if err != nil {
		return nil, err
	}
	defer cpu.Close()
	gpu, err := inference.OpenDir(dir, name, inference.CUDABackend(dev))
	if err != nil {
		return nil, err
	}
	defer gpu.Close()
	if sc := inference.SelfCheck(ctx, gpu, cpu.Backend()); sc != nil {
		return nil, sc
	}

	cfg := gpu.Config()
	V := gpu.Tokenizer().VocabSize()
	var lengths []int
	for _, T := range tokens {
		T = min(T, cfg.NPositions)
		if !slices.Contains(lengths, T) {
			lengths = append(lengths, T)
		}
	}
	ids := promptIDs(slices.Max(lengths), V)
	target := 262 % V // " the" in GPT-2's vocabulary
	var out []agreement
	for _, T := range lengths {
		req := inference.Request{IDs: ids[:T], TopK: 10, Target: target, Sublayers: true, NextToken: true}
		want, err := lensOf(ctx, cpu, nil, req)
		if err != nil {
			return out, fmt.Errorf("the CPU's lens at T=%d: %w", T, err)
		}
		full, err := lensOf(ctx, gpu, nil, req)
		if err != nil {
			return out, fmt.Errorf("the GPU's lens at T=%d: %w", T, err)
		}
		prefix := req
		prefix.IDs = ids[:T-1]
		appended, err := lensOf(ctx, gpu, &prefix, req)
		if err != nil {
			return out, fmt.Errorf("the GPU's lens at T=%d after T−1: %w", T, err)
		}
		out = append(out, compare(name, "full", want, full), compare(name, "append", want, appended))
	}
	return out, nil
}

// lensOf computes req's lens on a fresh session, after first computing
// prefix's (the session then reuses its cached positions) when not nil.
func lensOf(ctx context.Context, m *inference.Model, prefix *inference.Request, req inference.Request) (*inference.Lens, error) {
	s := m.NewSession()
	defer s.Close()
	if prefix != nil {
		if _, err := s.Lens(ctx, *prefix, nil); err != nil {
			return nil, err
		}
	}
	return s.Lens(ctx, req, nil)
}

// compare holds the GPU's lens to the CPU's, cell by cell.
func compare(model, path string, cpu, gpu *inference.Lens) agreement {
	a := agreement{Model: model, T: len(cpu.IDs), Path: path}
	worst := -1.0
	note := func(d float64, r, t int) {
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		if d > worst {
			worst, a.Worst = d, fmt.Sprintf("row %s pos %d", cpu.Rows[r].Name, t)
		}
		a.Prob = max(a.Prob, d)
	}
	for r := range cpu.Cells {
		for t, c := range cpu.Cells[r] {
			g := gpu.Cells[r][t]
			a.Cells++
			if c.NonFinite != g.NonFinite {
				a.NonFinite++
				continue
			}
			if c.NonFinite != inference.Finite {
				continue // no statistics on either side
			}
			if len(c.Top) != len(g.Top) {
				a.IDs++
				continue
			}
			for j := range c.Top {
				d := math.Abs(c.Top[j].Prob - g.Top[j].Prob)
				note(d, r, t)
				if c.Top[j].ID != g.Top[j].ID && !(d <= tieTol) {
					a.IDs++
				}
			}
			for _, p := range [][2]float64{{c.FinalTop1Prob, g.FinalTop1Prob}, {c.TargetProb, g.TargetProb}, {c.NextProb, g.NextProb}} {
				if math.IsNaN(p[0]) && math.IsNaN(p[1]) {
					continue
				}
				note(math.Abs(p[0]-p[1]), r, t)
			}
			a.Entropy = max(a.Entropy, nanInf(math.Abs(c.Entropy-g.Entropy)))
			if !(math.IsNaN(c.KLToFinal) && math.IsNaN(g.KLToFinal)) {
				a.KL = max(a.KL, nanInf(math.Abs(c.KLToFinal-g.KLToFinal)))
			}
			for _, rk := range [][2]int{{c.FinalTop1Rank, g.FinalTop1Rank}, {c.TargetRank, g.TargetRank}, {c.NextRank, g.NextRank}} {
				if (rk[0] < 0) != (rk[1] < 0) || rk[0]-rk[1] > rankTol || rk[1]-rk[0] > rankTol {
					a.Ranks++
				}
			}
		}
	}
	for t := range cpu.FinalTop1 {
		if cpu.FinalTop1[t] != gpu.FinalTop1[t] {
			a.FinalTop1++
		}
	}
	a.OK = a.IDs == 0 && a.Ranks == 0 && a.NonFinite == 0 && a.FinalTop1 == 0 &&
		a.Prob <= probTol && a.Entropy <= natsTol && a.KL <= natsTol
	return a
}

// nanInf makes a NaN difference (one side NaN) the largest.
func nanInf(d float64) float64 {
	if math.IsNaN(d) {
		return math.Inf(1)
	}
	return d
}

func printAgreementHeader(w io.Writer) {
	fmt.Fprintf(w, "| model | T | path | cells | top-k ids ≠ | ranks ≠ | non-finite ≠ | max |Δprob| | max |ΔH| | max |ΔKL| | worst cell | verdict |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
}

func printAgreement(w io.Writer, a agreement) {
	v := "ok"
	if !a.OK {
		v = "**DISAGREE**"
	}
	fmt.Fprintf(w, "| %s | %d | %s | %d | %d | %d | %d | %.1e | %.1e | %.1e | %s | %s |\n", a.Model, a.T, a.Path, a.Cells,
		a.IDs, a.Ranks, a.NonFinite+a.FinalTop1, a.Prob, a.Entropy, a.KL, a.Worst, v)
}
