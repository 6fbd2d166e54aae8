package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/bench"
)

// benchOptions are a bench command line, parsed and checked.
type benchOptions struct {
	model modelFlags
	bench bench.Options
	json  bool // --format json
}

// newBenchCmd is `logitlens bench`. run replaces the benchmark in tests of
// the flags.
func newBenchCmd(a *app, run func(context.Context, *benchOptions) error) *cobra.Command {
	if run == nil {
		run = func(ctx context.Context, o *benchOptions) error { return runBench(ctx, a, o) }
	}
	o := &benchOptions{}
	var tokens, format string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Time the full lens and a one-token append on this machine",
		Long: `Time the lens on this machine: for each prompt length, the full lens of a
fresh prompt (forward pass, every row's projection onto the vocabulary,
top-k and statistics) and the incremental lens after appending one token to
a cached prefix, each as the median, min and max of --runs runs after one
warm-up; and the time from start to the first lens (load included).`,
		Example: `  logitlens bench -m gpt2 --tokens 16,64,128
  logitlens bench -m demo --runs 3 --format json`,
		Args: noArgs(""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.model.check(cmd); err != nil {
				return err
			}
			if err := checkTopK(o.bench.TopK); err != nil {
				return err
			}
			switch format {
			case "text":
			case "json":
				o.json = true
			default:
				return usagef("bench: unknown format %q (want text or json)", format)
			}
			if o.bench.Runs < 1 {
				// bench.Run reads 0 as its default; a user who typed it
				// meant something else.
				return usagef("--runs %d is not a positive number", o.bench.Runs)
			}
			o.bench.Tokens = nil
			for f := range strings.SplitSeq(tokens, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil || n < 1 {
					return usagef("--tokens: %q is not a positive number", f)
				}
				o.bench.Tokens = append(o.bench.Tokens, n)
			}
			return run(cmd.Context(), o)
		},
	}
	o.model.register(cmd)
	registerTopK(cmd, &o.bench.TopK, "predictions per cell")
	fs := cmd.Flags()
	fs.BoolVar(&o.bench.Sublayers, "sublayers", false, "add each block's resid_mid row")
	fs.StringVar(&tokens, "tokens", "16,64,128", "prompt lengths to time, comma-separated")
	fs.IntVar(&o.bench.Runs, "runs", 7, "timed runs per measurement, after one warm-up")
	fs.StringVar(&format, "format", "text", "output format: text or json")
	cmd.RegisterFlagCompletionFunc("format", completeFixed([]string{"text", "json"}))
	sortFlagsAsRegistered(cmd)
	return cmd
}

// runBench loads the model, times it and prints the report.
func runBench(ctx context.Context, a *app, o *benchOptions) error {
	// Load to first lens: what a user waits for before the first screen.
	start := time.Now()
	m, err := o.model.load(ctx, a)
	if err != nil {
		return err
	}
	defer m.Close()
	first := m.NewSession()
	_, err = first.Lens(ctx, inference.Request{IDs: []int{0}, TopK: 10, Target: -1}, nil)
	first.Close()
	if err != nil {
		return err
	}
	o.bench.LoadTime = time.Since(start)
	if n := m.Config().NPositions; slices.Max(o.bench.Tokens) > n {
		return fmt.Errorf("bench: --tokens %d exceeds the model's n_positions %d", slices.Max(o.bench.Tokens), n)
	}
	rep, err := bench.Run(ctx, m, o.bench)
	if err != nil {
		return err
	}
	if o.json {
		return rep.WriteJSON(a.out)
	}
	return rep.WriteText(a.out)
}
