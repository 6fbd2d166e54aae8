package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/inference/tune"
	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// maxDataFile bounds one --data file: a corpus of plain text, read whole
// and tokenized in memory.
const maxDataFile = 1 << 30

// tuneOptions are a tune command line, parsed and checked.
type tuneOptions struct {
	model modelFlags
	data  []string
	out   string
	train tune.Options
}

// newTuneCmd is `logitlens tune`. run replaces the training in tests of the
// flags.
func newTuneCmd(a *app, run func(context.Context, *tuneOptions) error) *cobra.Command {
	if run == nil {
		run = func(ctx context.Context, o *tuneOptions) error { return runTune(ctx, a, o) }
	}
	o := &tuneOptions{model: modelFlags{device: "cpu"}}
	var seed int64
	cmd := &cobra.Command{
		Use:   "tune",
		Short: "Train a tuned lens for a model on text files",
		Long: `Train a tuned lens (Belrose et al. 2023) for a model: per layer l < L, an
affine translator applied before ln_f, logits_l = ln_f(h_l + h_l·W_lᵀ + b_l)·W_U,
trained as the tuned-lens package does: translators start at zero (the logit
lens), the loss is KL(P_output ‖ P_lens) at every position, ln_f and the
unembedding stay frozen, the gradients are clipped to a global norm of 1.
--optimizer sgd (the package's default: Nesterov momentum 0.9, step size
--lr·0.1, linear decay to zero) or adam (AMSGrad, --lr·1e-3, a warm-up over
the first fifth of the steps).

The text is each --data file (UTF-8) as one document, the documents joined
by <|endoftext|> (one first, too) and cut into windows of n_positions
tokens; the last, partial window is dropped. Each step reads
--tokens-per-step tokens (a multiple of n_positions) of windows in an order
fixed by --seed, reshuffled after each pass over the corpus.

The training graph runs in gorgonia on the CPU; the residual streams come
from logitlens's own forward pass. Ctrl-C saves a checkpoint in
--out/checkpoint; the same command resumes it and ends with the same lens
as an uninterrupted run. --out gets config.json and params.pt in the
package's layout: use them with --lens tuned:DIR, or in Python with
TunedLens.from_model_and_pretrained(model, DIR).`,
		Example: `  logitlens tune -m demo --data brown.txt --steps 200 --tokens-per-step 8192 --out demo-lens
  logitlens lens -m demo --lens tuned:demo-lens -p "The man said that"`,
		Args: noArgs(""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.model.check(cmd); err != nil {
				return err
			}
			switch {
			case len(o.data) == 0:
				return usagef("tune needs training text: --data FILE (repeatable)")
			case o.out == "":
				return usagef("tune needs --out DIR, where the lens is written")
			case o.train.Steps < 1:
				return usagef("--steps %d: want at least 1", o.train.Steps)
			case o.train.TokensPerStep < 1:
				return usagef("--tokens-per-step %d: want at least one window of n_positions tokens", o.train.TokensPerStep)
			case !(o.train.LR > 0):
				return usagef("--lr %g: want a positive number", o.train.LR)
			case o.train.Optimizer != tune.SGD && o.train.Optimizer != tune.Adam:
				return usagef("--optimizer %q: want sgd or adam", display.Safe(o.train.Optimizer))
			}
			o.train.Seed = uint64(seed)
			return run(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.model.spec, "model", "m", "gpt2", `the model: Hugging Face repo id (optionally @revision), local directory, or "demo"`)
	cmd.RegisterFlagCompletionFunc("model", completeModels)
	fs.StringArrayVar(&o.data, "data", nil, "a UTF-8 text file to train on, one document (repeatable)")
	fs.StringVarP(&o.out, "out", "o", "", "folder for config.json and params.pt (and the checkpoint while training)")
	fs.IntVar(&o.train.Steps, "steps", tune.DefaultSteps, "optimiser steps")
	fs.IntVar(&o.train.TokensPerStep, "tokens-per-step", tune.DefaultTokensPerStep, "tokens per step, a multiple of n_positions")
	fs.Float64Var(&o.train.LR, "lr", 1, "scale of the learning rate: sgd steps by lr·0.1, adam by lr·1e-3 (the package's lr_scale)")
	fs.StringVar(&o.train.Optimizer, "optimizer", tune.SGD, "the optimiser: sgd (Nesterov momentum, the package's default) or adam (AMSGrad)")
	fs.Int64Var(&seed, "seed", 42, "order of the training windows")
	cmd.MarkFlagFilename("data", "txt")
	cmd.MarkFlagDirname("out")
	cmd.RegisterFlagCompletionFunc("optimizer", completeFixed([]string{tune.SGD, tune.Adam}))
	sortFlagsAsRegistered(cmd)
	return cmd
}

// runTune loads the model and the text, trains, and writes the lens.
func runTune(ctx context.Context, a *app, o *tuneOptions) error {
	docs, err := readDocuments(o.data)
	if err != nil {
		return err
	}
	m, err := o.model.load(ctx, a)
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := m.Config()
	corpus, err := tune.NewCorpus(tune.TokenizerOf(m), docs, cfg.NPositions)
	if err != nil {
		return err
	}
	if o.train.TokensPerStep%corpus.Window != 0 {
		return usagef("--tokens-per-step %d is not a multiple of this model's n_positions, %d (e.g. %d)",
			o.train.TokensPerStep, corpus.Window, max(1, o.train.TokensPerStep/corpus.Window)*corpus.Window)
	}
	total := int64(o.train.Steps) * int64(o.train.TokensPerStep)
	fmt.Fprintf(a.stderr, "tuning a lens for %s (%d layers, d_model %d) on %s tokens in %d windows of %d from %d file(s)\n",
		display.Safe(m.Info().ID), cfg.NLayer, cfg.NEmbd, thousands(int64(len(corpus.Windows)*corpus.Window)),
		len(corpus.Windows), corpus.Window, len(o.data))
	fmt.Fprintf(a.stderr, "%d steps × %s tokens = %s tokens (%.1f passes over the text), optimizer %s, lr scale %g, seed %d\n",
		o.train.Steps, thousands(int64(o.train.TokensPerStep)), thousands(total),
		float64(total)/float64(len(corpus.Windows)*corpus.Window), o.train.Optimizer, o.train.LR, o.train.Seed)

	o.train.BaseModel = m.Info().ID
	o.train.Dir = o.out
	o.train.Progress = tuneProgress(a.stderr, a.stderrTTY, total)
	lens, err := tune.Train(ctx, tune.FromInference(m), corpus, o.train)
	if a.stderrTTY {
		fmt.Fprintln(a.stderr)
	}
	if errors.Is(err, tune.ErrInterrupted) {
		fmt.Fprintln(a.stderr, strings.TrimPrefix(err.Error(), "tune: "))
		return context.Canceled // exit status 130, "interrupted"
	}
	if err != nil {
		return err
	}
	wu := m.Checkpoint().LMHead()
	hash := tunedlens.UnembedHash(wu.Data, wu.Shape[0], wu.Shape[1])
	lens.Config.UnembedHash = &hash
	if err := tunedlens.Save(o.out, lens); err != nil {
		return err
	}
	if err := tune.RemoveCheckpoint(o.out); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "wrote %s (config.json, params.pt)\n", display.Safe(o.out))
	return nil
}

// readDocuments reads the --data files, each one document of UTF-8 text.
func readDocuments(paths []string) ([]string, error) {
	var docs []string
	for _, p := range paths {
		b, err := weights.ReadFile(p, maxDataFile)
		if err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		if !utf8.Valid(b) {
			i := 0
			for i < len(b) {
				r, n := utf8.DecodeRune(b[i:])
				if r == utf8.RuneError && n == 1 {
					break
				}
				i += n
			}
			return nil, fmt.Errorf("--data: %s is not UTF-8 text (invalid byte 0x%02x at offset %d)", display.Safe(p), b[i], i)
		}
		docs = append(docs, string(b))
	}
	return docs, nil
}

// tuneProgress renders training progress: on a terminal one line redrawn
// in place, elsewhere a line per finished step.
func tuneProgress(w io.Writer, tty bool, total int64) func(tune.Progress) {
	var mu sync.Mutex
	return func(p tune.Progress) {
		mu.Lock()
		defer mu.Unlock()
		stepDone := p.Window == p.PerStep
		if !tty && !stepDone {
			return
		}
		perStep := total / int64(p.Steps) // tokens
		done := int64(p.Step)*perStep + int64(p.Window)*perStep/int64(p.PerStep)
		eta := "?"
		if p.TokensPerSec > 0 {
			eta = (time.Duration(float64(total-done)/p.TokensPerSec) * time.Second).Round(time.Second).String()
		}
		kl := make([]string, len(p.KL))
		for i, v := range p.KL {
			kl[i] = fmt.Sprintf("%.3g", v)
		}
		line := fmt.Sprintf("step %d/%d (%d/%d windows) · pass %d · %.0f tok/s · ETA %s · KL per layer %s",
			p.Step+1, p.Steps, p.Window, p.PerStep, p.Epoch+1, p.TokensPerSec, eta, strings.Join(kl, " "))
		if p.ResumedFrom > 0 {
			line += fmt.Sprintf(" · resumed at step %d", p.ResumedFrom+1)
		}
		if tty {
			fmt.Fprint(w, "\r\033[K"+line)
			return
		}
		fmt.Fprintln(w, line)
	}
}

// thousands formats n with thin separators: 1,234,567.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
