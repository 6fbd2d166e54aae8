// Command gpucheck checks the CUDA engine (inference/cuda) on a GPU box
// against the CPU engine and times it with CUDA events, before (and
// independently of) its wiring into logitlens. Build it for linux/amd64 on a
// development machine and carry it with tools/gpucheck/gpu-check.sh:
//
//	GOOS=linux GOARCH=amd64 go build -o gpucheck ./tools/gpucheck
//
// For each prompt length T it runs the full lens (forward from scratch,
// ln_f, one unembedding GEMM, device-side statistics and top-k) and one
// appended token on the KV cache with its lens, reports the medians of
// -runs runs measured with CUDA events, the kernel breakdown of one full
// lens, and the agreement of every cell with the CPU engine: top-k ids
// (ties within float32 rounding excepted), max |Δprob|, |Δentropy|, |ΔKL|.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/logitlens/logitlens/weights/tokenizer"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/weights"
)

func main() {
	model := flag.String("model", "small-shape", "checkpoint directory (HF layout), e.g. written by tools/testmodel")
	tokens := flag.String("tokens", "16,128,1024", "prompt lengths")
	runs := flag.Int("runs", 7, "timed runs per measurement, after one warm-up")
	topK := flag.Int("top-k", 10, "predictions per cell")
	tf32 := flag.Bool("tf32", false, "let cuBLAS use TF32 (faster, not float32-exact)")
	cpu := flag.Bool("cpu", true, "compare every cell with the CPU engine")
	flag.Parse()
	if err := run(*model, *tokens, *runs, *topK, *tf32, *cpu); err != nil {
		fmt.Fprintln(os.Stderr, "gpucheck:", err)
		os.Exit(1)
	}
}

// result is one prompt length's row of the table.
type result struct {
	T                 int
	full, inc         float64 // median ms, CUDA events
	fullMin, incMin   float64
	prob, ent, kl     float64 // max |Δ| vs CPU
	mismatch, checked int     // top-k ids that differ beyond a tie, of checked
	cpuMs             float64
}

func run(dir, tokens string, runs, topK int, tf32, withCPU bool) error {
	var lengths []int
	for _, s := range strings.Split(tokens, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			return fmt.Errorf("bad -tokens %q", tokens)
		}
		lengths = append(lengths, n)
	}
	opt := cuda.OptionsFromEnv()
	opt.TF32 = tf32
	dev, err := cuda.Open(opt)
	if err != nil {
		return err
	}
	defer dev.Close()
	fmt.Printf("device: %s\n  driver %s\n  cuBLAS %s\n", dev, dev.DriverPath, dev.CUBLASPath)

	ck, err := weights.OpenCheckpoint(dir)
	if err != nil {
		return err
	}
	defer ck.Close()
	cfg, w := cuda.FromCheckpoint(ck)
	t0 := time.Now()
	m, err := dev.Upload(cfg, w)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Printf("model: %s (L=%d C=%d V=%d), %.0f MB uploaded in %.0f ms\n", dir, cfg.NLayer, cfg.NEmbd, cfg.VocabSize,
		float64(m.Bytes())/1e6, ms(time.Since(t0)))
	st, err := m.NewState(cuda.StateOptions{})
	if err != nil {
		return err
	}
	defer st.Close()

	var cpuModel *inference.Model
	if withCPU {
		tok, err := tokenizer.Load(dir)
		if err != nil {
			return err
		}
		ck2, err := weights.OpenCheckpoint(dir)
		if err != nil {
			return err
		}
		if cpuModel, err = inference.NewModel(ck2, tok, inference.NewCPUBackend, dir); err != nil {
			return err
		}
		defer cpuModel.Close()
	}

	r := rand.New(rand.NewPCG(1, 2)) // the prompts of bench.Run
	ids := make([]int, slices.Max(lengths))
	for i := range ids {
		ids[i] = r.IntN(min(cfg.VocabSize, 50257))
	}
	var streams []int // the lens rows without sublayers: embed and every block's output
	for i := 0; i <= cfg.NLayer; i++ {
		streams = append(streams, 2*i)
	}
	var results []result
	for _, T := range lengths {
		if T > cfg.NPositions {
			return fmt.Errorf("%d tokens exceed n_positions %d", T, cfg.NPositions)
		}
		res := result{T: T}
		req := cuda.LensRequest{Streams: streams, From: 0, To: T, TopK: topK, Target: -1}
		var cells [][]cuda.Cell
		full := func() error {
			if err := st.Forward(ids[:T], 0); err != nil {
				return err
			}
			cells, err = st.Lens(req)
			return err
		}
		if res.full, res.fullMin, err = timeRuns(st, runs, nil, full); err != nil {
			return err
		}
		inc := func() error {
			if err := st.Forward(ids[T-1:T], T-1); err != nil {
				return err
			}
			_, err := st.Lens(cuda.LensRequest{Streams: streams, From: T - 1, To: T, TopK: topK, Target: -1})
			return err
		}
		prefill := func() error { return st.Forward(ids[:T-1], 0) }
		if res.inc, res.incMin, err = timeRuns(st, runs, prefill, inc); err != nil {
			return err
		}
		if cpuModel != nil {
			t0 := time.Now()
			l, err := cpuModel.NewSession().Lens(context.Background(), inference.Request{IDs: ids[:T], TopK: topK, Target: -1}, nil)
			if err != nil {
				return err
			}
			res.cpuMs = ms(time.Since(t0))
			compare(&res, l, cells)
		}
		results = append(results, res)
	}
	if err := breakdown(m, ids[:lengths[len(lengths)-1]], streams, topK); err != nil {
		return err
	}
	printTable(results, withCPU, dev.TF32)
	return nil
}

// timeRuns times f with CUDA events: one warm-up, then runs runs; setup
// (untimed) runs before each.
func timeRuns(st *cuda.State, runs int, setup, f func() error) (median, minimum float64, err error) {
	var t []float64
	for i := 0; i <= runs; i++ {
		if setup != nil {
			if err := setup(); err != nil {
				return 0, 0, err
			}
		}
		ms, err := st.Time(f)
		if err != nil {
			return 0, 0, err
		}
		if i > 0 {
			t = append(t, ms)
		}
	}
	slices.Sort(t)
	return t[len(t)/2], t[0], nil
}

// compare holds the GPU cells to the CPU lens.
func compare(res *result, l *inference.Lens, cells [][]cuda.Cell) {
	for r := range l.Cells {
		for p, c := range l.Cells[r] {
			g := cells[r][p]
			for j := range c.Top {
				res.checked++
				d := math.Abs(c.Top[j].Prob - g.Top[j].Prob)
				res.prob = max(res.prob, d)
				if c.Top[j].ID != g.Top[j].ID && d > 1e-6 {
					res.mismatch++
				}
			}
			res.prob = max(res.prob, math.Abs(c.FinalTop1Prob-g.FinalTop1Prob))
			res.ent = max(res.ent, math.Abs(c.Entropy-g.Entropy))
			res.kl = max(res.kl, math.Abs(c.KLToFinal-g.KLToFinal))
		}
	}
}

// breakdown prints the kernel times of one full lens at the longest T.
func breakdown(m *cuda.Model, ids []int, streams []int, topK int) error {
	st, err := m.NewState(cuda.StateOptions{Profile: true})
	if err != nil {
		return err
	}
	defer st.Close()
	for i := 0; i < 2; i++ { // the first run warms up (JIT, cuBLAS heuristics)
		if err := st.Forward(ids, 0); err != nil {
			return err
		}
		if _, err := st.Lens(cuda.LensRequest{Streams: streams, From: 0, To: len(ids), TopK: topK, Target: -1}); err != nil {
			return err
		}
		kt, err := st.KernelTimes()
		if err != nil {
			return err
		}
		if i == 1 {
			fmt.Printf("\nkernel breakdown, full lens at T=%d (CUDA events around each call):\n", len(ids))
			var total float64
			for _, k := range kt {
				total += k.Ms
			}
			for _, k := range kt {
				fmt.Printf("  %-20s %5d calls %9.3f ms %5.1f%%\n", k.Name, k.Calls, k.Ms, 100*k.Ms/total)
			}
		}
	}
	return nil
}

func printTable(rs []result, withCPU, tf32 bool) {
	fmt.Printf("\n| T | full lens ms (median / min) | +1 token ms (median / min) |")
	if withCPU {
		fmt.Printf(" top-k ids ≠ CPU | max |Δprob| | max |ΔH| | max |ΔKL| | CPU full ms |")
	}
	fmt.Println()
	fmt.Printf("|---|---|---|")
	if withCPU {
		fmt.Printf("---|---|---|---|---|")
	}
	fmt.Println()
	for _, r := range rs {
		fmt.Printf("| %d | %.2f / %.2f | %.2f / %.2f |", r.T, r.full, r.fullMin, r.inc, r.incMin)
		if withCPU {
			fmt.Printf(" %d of %d | %.1e | %.1e | %.1e | %.0f |", r.mismatch, r.checked, r.prob, r.ent, r.kl, r.cpuMs)
		}
		fmt.Println()
	}
	fmt.Printf("\ngoals: full lens at T=1024 ≤ 20 ms, one appended token ≤ 3 ms; agreement |Δprob| ≤ 1e-4 (TF32 %v)\n", tf32)
	ok := true
	for _, r := range rs {
		if withCPU && (r.prob > 1e-4 || r.mismatch > 0) && !tf32 {
			ok = false
		}
	}
	if ok {
		fmt.Println("agreement: PASS")
	} else {
		fmt.Println("agreement: FAIL")
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
