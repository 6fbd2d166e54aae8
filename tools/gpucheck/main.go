// Command gpucheck checks logitlens's CUDA device on a GPU box and times it
// with CUDA events. The box needs the NVIDIA driver and cuBLAS only: the
// checkpoints are written by the binary itself (weights/testmodel's
// deterministic specs: tiny-f32 with peaked distributions, GPT-2 small's
// shape, GPT-2 xl's geometry in one layer), and the CPU device in the same
// binary is the reference.
//
// For every checkpoint and prompt length it computes the lens of every row
// (sublayers included) with a pinned target and each position's next token,
// on the GPU (a fresh prompt, and the same prompt reached by appending its
// last token to a cached prefix) and on the CPU, and compares every cell:
// top-k ids (beyond float32 ties) and probabilities, entropy, KL to the
// final row, the ranks and probabilities of the final top-1, the target and
// the next token, and the non-finite report. Any disagreement beyond the
// tolerances (|Δprob| ≤ 1e-4, |Δnats| ≤ 1e-3, ranks within 2) makes it exit
// with status 1; a machine where the check cannot run at all (no GPU, no
// cuBLAS) exits with status 2.
//
// It then times GPT-2 small's shape with CUDA events (TF32 off, and on with
// -tf32): the full lens and one appended token at each -tokens length, both
// through the engine alone (package cuda) and through the session as
// `logitlens bench --device cuda` does (package bench), with the kernel
// breakdown of one full lens at the longest length, against the goals (full
// lens at T=1024 ≤ 20 ms, one appended token ≤ 3 ms). Timings never change
// the exit status. tools/gpucheck/README.md says how to build and carry it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// Exit statuses.
const (
	exitAgree    = 0 // every cell agreed
	exitDisagree = 1 // some cell did not, or a step failed on the GPU
	exitCannot   = 2 // no GPU to check, or a bad command line
)

// openDevice opens the GPU; tests replace it with an emulated one.
var openDevice = func(tf32 bool) (*cuda.Device, error) {
	opt := cuda.OptionsFromEnv()
	opt.TF32 = tf32
	return cuda.Open(opt)
}

// config is a parsed command line.
type config struct {
	dir     string   // where checkpoints are written
	models  []string // testmodel names to check
	timed   string   // the model timed
	tokens  []int    // prompt lengths
	runs    int      // timed runs after a warm-up
	tf32    bool     // time with TF32 on too
	jsonOut string   // report file, or ""
}

func main() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }

// run is the whole check; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitAgree
		}
		fmt.Fprintln(stderr, "gpucheck:", err)
		return exitCannot
	}
	dev, err := openDevice(false)
	if err != nil {
		fmt.Fprintln(stderr, "gpucheck: no GPU to check:", err)
		return exitCannot
	}
	defer func() { dev.Close() }()
	rep := &report{Device: dev.String(), Driver: dev.DriverPath, CUBLAS: dev.CUBLASPath}
	fmt.Fprintf(stdout, "device  %s\ndriver  %s\ncuBLAS  %s\n", rep.Device, rep.Driver, rep.CUBLAS)

	dirs := map[string]string{}
	for _, name := range cfg.models {
		dir := filepath.Join(cfg.dir, name)
		if err := writeCheckpoint(dir, name); err != nil {
			fmt.Fprintln(stderr, "gpucheck:", err)
			return exitCannot
		}
		dirs[name] = dir
	}

	status := exitAgree
	fail := func(err error) {
		fmt.Fprintln(stdout, "FAIL:", err)
		rep.Errors = append(rep.Errors, err.Error())
		status = exitDisagree
	}
	fmt.Fprintf(stdout, "\n## Agreement with the CPU device (TF32 off)\n\n")
	printAgreementHeader(stdout)
	for _, name := range cfg.models {
		as, err := checkModel(ctx, dev, dirs[name], name, cfg.tokens)
		for _, a := range as {
			printAgreement(stdout, a)
			if !a.OK {
				status = exitDisagree
			}
		}
		rep.Agreement = append(rep.Agreement, as...)
		if err != nil {
			fail(fmt.Errorf("%s: %w", name, err))
		}
	}

	if dir, ok := dirs[cfg.timed]; ok {
		for _, tf32 := range []bool{false, true} {
			if tf32 && !cfg.tf32 {
				break
			}
			if tf32 { // TF32 is cuBLAS's math mode: a device of its own
				dev.Close()
				if dev, err = openDevice(true); err != nil {
					fail(fmt.Errorf("opening the GPU with TF32: %w", err))
					break
				}
			}
			t, err := timeModel(ctx, dev, dir, cfg.timed, cfg.tokens, cfg.runs, stdout)
			if err != nil {
				fail(fmt.Errorf("timing %s (TF32 %v): %w", cfg.timed, tf32, err))
				continue
			}
			rep.Timing = append(rep.Timing, t...)
		}
		printGoals(stdout, rep.Timing)
	}

	rep.Verdict = "PASS"
	if status != exitAgree {
		rep.Verdict = "FAIL"
	}
	fmt.Fprintf(stdout, "\nverdict: %s\n", rep.Verdict)
	if cfg.jsonOut != "" {
		if err := rep.write(cfg.jsonOut); err != nil {
			fmt.Fprintln(stderr, "gpucheck:", err)
			return exitCannot
		}
	}
	return status
}

// parse reads the command line.
func parse(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("gpucheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", filepath.Join(os.TempDir(), "gpucheck-models"), "where the test checkpoints are written")
	models := fs.String("models", "tiny-f32,small-shape,xl-1layer", "testmodel checkpoints to check, comma-separated")
	timed := fs.String("time", "small-shape", "the checkpoint to time (one of -models; \"\" for none)")
	tokens := fs.String("tokens", "16,128,1024", "prompt lengths, comma-separated (clipped to each model's n_positions)")
	runs := fs.Int("runs", 7, "timed runs per measurement, after one warm-up")
	tf32 := fs.Bool("tf32", true, "also time with cuBLAS's TF32 tensor-core maths (not float32-exact)")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gpucheck [flags]\n\nChecks the CUDA device against the CPU and times it (see tools/gpucheck/README.md).\nExit status: 0 agreement, 1 disagreement, 2 no GPU or bad flags.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := config{dir: *dir, timed: *timed, runs: *runs, tf32: *tf32, jsonOut: *jsonOut}
	for _, n := range strings.Split(*models, ",") {
		n = strings.TrimSpace(n)
		if _, ok := testmodel.Named(n); !ok {
			return cfg, fmt.Errorf("-models: no checkpoint named %q (known: %s)", n, strings.Join(testmodel.Names(), ", "))
		}
		cfg.models = append(cfg.models, n)
	}
	if cfg.timed != "" && !slices.Contains(cfg.models, cfg.timed) {
		return cfg, fmt.Errorf("-time %q is not one of -models", cfg.timed)
	}
	for _, f := range strings.Split(*tokens, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			return cfg, fmt.Errorf("-tokens: %q is not a length of 2 or more", f)
		}
		cfg.tokens = append(cfg.tokens, n)
	}
	if cfg.runs < 1 {
		return cfg, fmt.Errorf("-runs %d is not positive", cfg.runs)
	}
	return cfg, nil
}

// writeCheckpoint writes the named test checkpoint into dir, unless a
// previous run left the same spec there.
func writeCheckpoint(dir, name string) error {
	spec, _ := testmodel.Named(name)
	want, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if got, err := os.ReadFile(filepath.Join(dir, "gpucheck-spec.json")); err == nil && string(got) == string(want) {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := testmodel.Write(dir, spec); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return os.WriteFile(filepath.Join(dir, "gpucheck-spec.json"), want, 0o644)
}

// report is what the check found, for -json.
type report struct {
	Device    string      `json:"device"`
	Driver    string      `json:"driver"`
	CUBLAS    string      `json:"cublas"`
	Agreement []agreement `json:"agreement"`
	Timing    []timing    `json:"timing"`
	Errors    []string    `json:"errors,omitempty"`
	Verdict   string      `json:"verdict"`
}

func (r *report) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
