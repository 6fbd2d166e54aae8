package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/bench"
	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/weights"
)

// The goals of docs/PERFORMANCE.md for GPT-2 small on a GPU, in ms.
const (
	goalT      = 1024
	goalFull   = 20.0 // the full lens of a fresh prompt of goalT tokens
	goalAppend = 3.0  // one token appended to a cached prefix of goalT−1
)

// timing is one prompt length's times, every one measured with CUDA
// events: median, min and max of the runs after a warm-up, in ms.
type timing struct {
	Model string `json:"model"`
	TF32  bool   `json:"tf32"`
	T     int    `json:"tokens"`
	// The engine alone (package cuda): Forward and Lens of the 13 block
	// rows with top-10, a target and every statistic.
	EngineFull   bench.Times `json:"engine_full_ms"`
	EngineAppend bench.Times `json:"engine_append_ms"`
	// Through the session, as `logitlens bench --device cuda` reports:
	// the full lens, one appended token, and the bare ln_f + unembedding
	// against the same with every statistic.
	Full    bench.Times `json:"full_ms"`
	Append  bench.Times `json:"append_ms"`
	Unembed bench.Times `json:"unembed_ms"`
	Lens    bench.Times `json:"lens_ms"`
}

// timeModel times the checkpoint in dir on dev at each length (clipped to
// n_positions), prints the tables and the kernel breakdown at the longest,
// and returns the times.
func timeModel(ctx context.Context, dev *cuda.Device, dir, name string, tokens []int, runs int, w io.Writer) ([]timing, error) {
	ck, err := weights.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	cfg, wts := cuda.FromCheckpoint(ck)
	m, err := dev.Upload(cfg, wts)
	ck.Close() // Upload copied the weights
	if err != nil {
		return nil, err
	}
	defer m.Close()
	var lengths []int
	for _, T := range tokens {
		if T = min(T, cfg.NPositions); !slices.Contains(lengths, T) {
			lengths = append(lengths, T)
		}
	}
	ids := promptIDs(slices.Max(lengths), cfg.VocabSize)
	streams := make([]int, 0, cfg.NLayer+1) // the embedding and every block's output
	for i := 0; i <= cfg.NLayer; i++ {
		streams = append(streams, 2*i)
	}

	st, err := m.NewState(cuda.StateOptions{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out := make([]timing, len(lengths))
	for i, T := range lengths {
		req := cuda.LensRequest{Streams: streams, From: 0, To: T, TopK: 10, Target: ids[T-1]}
		t := &out[i]
		t.Model, t.TF32, t.T = name, dev.TF32, T
		t.EngineFull, err = timeRuns(st, runs, nil, func() error {
			if err := st.Forward(ids[:T], 0); err != nil {
				return err
			}
			_, err := st.Lens(req)
			return err
		})
		if err != nil {
			return nil, err
		}
		appendReq := req
		appendReq.From = T - 1
		t.EngineAppend, err = timeRuns(st, runs, func() error { return st.Forward(ids[:T-1], 0) }, func() error {
			if err := st.Forward(ids[T-1:T], T-1); err != nil {
				return err
			}
			_, err := st.Lens(appendReq)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if err := breakdown(m, ids[:slices.Max(lengths)], streams, w); err != nil {
		return nil, err
	}

	sm, err := inference.OpenDir(dir, name, inference.CUDABackend(dev))
	if err != nil {
		return nil, err
	}
	defer sm.Close()
	rep, err := bench.Run(ctx, sm, bench.Options{Tokens: lengths, Runs: runs, TopK: 10})
	if err != nil {
		return nil, err
	}
	for i, r := range rep.Results {
		out[i].Full, out[i].Append, out[i].Unembed, out[i].Lens = r.Full, r.Incremental, r.Unembed, r.Lens
	}
	fmt.Fprintf(w, "\n## Times of %s (TF32 %s), ms: median [min–max] of %d runs after a warm-up, CUDA events\n\n", name, onOff(dev.TF32), runs)
	fmt.Fprintf(w, "| T | engine: full lens | engine: +1 token | session: full lens | session: +1 token | session: ln_f + unembedding | session: lens |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|\n")
	for _, t := range out {
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s |\n", t.T, span(t.EngineFull), span(t.EngineAppend),
			span(t.Full), span(t.Append), span(t.Unembed), span(t.Lens))
	}
	fmt.Fprintf(w, "\n`logitlens bench --device cuda` would print:\n\n")
	if err := rep.WriteText(w); err != nil {
		return nil, err
	}
	return out, nil
}

// timeRuns times f with CUDA events: once to warm up, then runs times;
// setup, when not nil, runs untimed before each (its work is queued before
// the start event, so the event waits for it).
func timeRuns(st *cuda.State, runs int, setup, f func() error) (bench.Times, error) {
	var ms []float64
	for i := 0; i <= runs; i++ {
		if setup != nil {
			if err := setup(); err != nil {
				return bench.Times{}, err
			}
		}
		d, err := st.Time(f)
		if err != nil {
			return bench.Times{}, err
		}
		if i > 0 {
			ms = append(ms, d)
		}
	}
	slices.Sort(ms)
	return bench.Times{Median: ms[len(ms)/2], Min: ms[0], Max: ms[len(ms)-1]}, nil
}

// breakdown prints the kernel and GEMM times of one full lens of ids,
// after a warm-up (the driver's JIT, cuBLAS's heuristics).
func breakdown(m *cuda.Model, ids, streams []int, w io.Writer) error {
	st, err := m.NewState(cuda.StateOptions{Profile: true})
	if err != nil {
		return err
	}
	defer st.Close()
	var kt []cuda.KernelTime
	for range 2 {
		if err := st.Forward(ids, 0); err != nil {
			return err
		}
		if _, err := st.Lens(cuda.LensRequest{Streams: streams, From: 0, To: len(ids), TopK: 10, Target: ids[len(ids)-1]}); err != nil {
			return err
		}
		if kt, err = st.KernelTimes(); err != nil {
			return err
		}
	}
	var total float64
	for _, k := range kt {
		total += k.Ms
	}
	fmt.Fprintf(w, "\nKernel breakdown of one full lens at T=%d (CUDA events around each call; %.2f ms in all):\n\n", len(ids), total)
	fmt.Fprintf(w, "| kernel | calls | ms | share |\n|---|---|---|---|\n")
	for _, k := range kt {
		fmt.Fprintf(w, "| %s | %d | %.3f | %.1f%% |\n", k.Name, k.Calls, k.Ms, 100*k.Ms/total)
	}
	return nil
}

// printGoals says whether the session's times at goalT meet the goals.
func printGoals(w io.Writer, ts []timing) {
	fmt.Fprintf(w, "\n## Goals (GPT-2 small's shape, T=%d, through the session)\n\n", goalT)
	seen := false
	for _, t := range ts {
		if t.T != goalT {
			continue
		}
		seen = true
		fmt.Fprintf(w, "- TF32 %s: full lens %.2f ms (goal ≤ %.0f: %s); one appended token %.2f ms (goal ≤ %.0f: %s)\n",
			onOff(t.TF32), t.Full.Median, goalFull, met(t.Full.Median <= goalFull),
			t.Append.Median, goalAppend, met(t.Append.Median <= goalAppend))
	}
	if !seen {
		fmt.Fprintf(w, "- not measured: -tokens lacks %d\n", goalT)
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func span(t bench.Times) string { return fmt.Sprintf("%.2f [%.2f–%.2f]", t.Median, t.Min, t.Max) }
