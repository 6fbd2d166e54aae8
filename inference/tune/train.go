package tune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/logitlens/logitlens/inference/sgemm"
	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// Model is what training needs of a GPT-2: its residual streams, from our
// own forward pass, and its frozen head.
type Model interface {
	Config() weights.Config
	// Residuals runs the model on ids (at most n_positions) from position 0
	// and returns the rows h[0..L], each [T,C] row-major (see the package
	// doc of inference for the row convention).
	Residuals(ctx context.Context, ids []int) ([][]float32, error)
	// FinalNorm returns ln_f's weight and bias [C].
	FinalNorm() (gamma, beta []float32)
	// Unembedding returns W_U [V,C] row-major (wte, or an untied lm_head).
	Unembedding() []float32
}

// Defaults of the tuned-lens package's training script.
const (
	DefaultSteps         = 250
	DefaultTokensPerStep = 1 << 18
)

// Options configure a training run. Zero values take the package's
// defaults.
type Options struct {
	Steps         int     // optimiser steps (250)
	TokensPerStep int     // tokens per step (2^18); a multiple of n_positions
	LR            float64 // learning-rate scale (1): SGD steps by LR·(1 − 0.9), Adam by LR·1e-3
	Optimizer     string  // SGD (default) or Adam
	Seed          uint64  // the order of the windows
	BaseModel     string  // config.json's base_model_name_or_path
	// Dir holds the checkpoint (Dir/checkpoint): written every
	// CheckpointEvery (10 minutes) and when ctx is cancelled, resumed from
	// when present. Empty: no checkpoints.
	Dir             string
	CheckpointEvery time.Duration
	// Progress, if set, is called after every window of a step.
	Progress func(Progress)
}

// Progress reports a training run.
type Progress struct {
	Step, Steps     int       // steps done before this one; total
	Window, PerStep int       // windows of the current step done; windows per step
	Epoch           int       // passes over the corpus so far (0-based)
	Tokens          int64     // tokens trained on in this process
	TokensPerSec    float64   // in this process
	KL              []float64 // per layer 0..L-1: mean KL(P_output ‖ P_lens) over the step so far, nats
	LastKL          []float64 // the same over the last finished step, nil before the first
	ResumedFrom     int       // the step a checkpoint resumed at, 0 when none
	Elapsed         time.Duration
}

// ErrInterrupted is returned (wrapped, with the step reached and where the
// checkpoint went) when ctx is cancelled during training.
var ErrInterrupted = errors.New("training interrupted")

// microRows is how many positions one graph run takes: the graph's [N,V]
// buffers stay near 13 MB each for GPT-2's vocabulary.
const microRows = 64

func (o *Options) defaults() error {
	if o.Steps == 0 {
		o.Steps = DefaultSteps
	}
	if o.TokensPerStep == 0 {
		o.TokensPerStep = DefaultTokensPerStep
	}
	if o.LR == 0 {
		o.LR = 1
	}
	if o.Optimizer == "" {
		o.Optimizer = SGD
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 10 * time.Minute
	}
	switch {
	case o.Steps < 0:
		return fmt.Errorf("tune: --steps %d: want at least 1", o.Steps)
	case o.TokensPerStep < 0:
		return fmt.Errorf("tune: --tokens-per-step %d: want at least one window", o.TokensPerStep)
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("tune: --lr %g: want a positive number", o.LR)
	case o.Optimizer != SGD && o.Optimizer != Adam:
		return fmt.Errorf("tune: unknown optimizer %q (want %q or %q)", o.Optimizer, SGD, Adam)
	}
	return nil
}

// trainer holds a run's state.
type trainer struct {
	m       Model
	corpus  *Corpus
	opts    Options
	L, C, V int
	hd      *head
	fwd     *forwardGraph
	gr      *graph
	params  [][]float32 // per layer: Wt = Weightᵀ [C,C], then b [C]
	grads   [][]float32
	opt     optimizer
	step    int // steps done
}

// Train trains a tuned lens for m on corpus: every translator starts at
// zero (the logit lens) and learns to minimise KL(P_output ‖ P_lens), as
// the tuned-lens package does by default. On cancellation it saves a
// checkpoint (when opts.Dir is set) and returns an error wrapping
// ErrInterrupted; running again with the same options resumes it, and a
// resumed run ends with the same lens, bit for bit, as an uninterrupted one.
// The checkpoint stays until the caller, having saved the lens, calls
// RemoveCheckpoint.
func Train(ctx context.Context, m Model, corpus *Corpus, opts Options) (*tunedlens.Lens, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	cfg := m.Config()
	if corpus.Window != cfg.NPositions {
		return nil, fmt.Errorf("tune: corpus windows of %d tokens, but the model reads %d", corpus.Window, cfg.NPositions)
	}
	if opts.TokensPerStep%corpus.Window != 0 {
		return nil, fmt.Errorf("tune: --tokens-per-step %d is not a multiple of the window, n_positions = %d (e.g. %d)",
			opts.TokensPerStep, corpus.Window, max(1, opts.TokensPerStep/corpus.Window)*corpus.Window)
	}
	sgemm.Use() // gorgonia's MatMul runs on gorgonia.org/tensor: the same Sgemm as inference
	t := &trainer{m: m, corpus: corpus, opts: opts, L: cfg.NLayer, C: cfg.NEmbd, V: cfg.VocabSize}
	if err := t.setup(cfg); err != nil {
		return nil, err
	}
	defer t.hd.close()
	resumed, err := t.resume()
	if err != nil {
		return nil, err
	}
	if err := t.run(ctx, resumed); err != nil {
		return nil, err
	}
	return t.lens(), nil
}

func (t *trainer) setup(cfg weights.Config) error {
	gamma, beta := t.m.FinalNorm()
	wu := t.m.Unembedding()
	C, V := t.C, t.V
	if len(gamma) != C || len(beta) != C || len(wu) != V*C {
		return fmt.Errorf("tune: head of %d, %d and %d values for C = %d, V = %d", len(gamma), len(beta), len(wu), C, V)
	}
	t.hd = newHead(gamma, beta, float32(cfg.LayerNormEpsilon), wu, C, V)
	rows := min(microRows, t.corpus.Window)
	var err error
	if t.fwd, err = newForwardGraph(t.hd, rows); err == nil {
		t.gr, err = newGraph(t.hd, rows, true)
	}
	if err != nil {
		t.hd.close()
		return err
	}
	for range t.L {
		t.params = append(t.params, make([]float32, C*C), make([]float32, C))
		t.grads = append(t.grads, make([]float32, C*C), make([]float32, C))
	}
	t.opt, err = newOptimizer(t.opts.Optimizer, t.params)
	return err
}

// run trains from t.step to the last step.
func (t *trainer) run(ctx context.Context, resumed int) error {
	L, V := t.L, t.V
	T, N := t.corpus.Window, t.fwd.n
	perStep := t.opts.TokensPerStep / T
	scale := 1 / float32(t.opts.TokensPerStep)
	warmup := warmupSteps(t.opts.Optimizer, t.opts.Steps)
	start, lastSave := time.Now(), time.Now()
	var tokens int64
	var lastKL []float64

	hbuf := make([]float32, N*t.C)
	p := make([]float32, N*V)
	logits := p // the output row's logits become its probabilities in place
	entropy := make([]float64, N)
	for ; t.step < t.opts.Steps; t.step++ {
		for _, g := range t.grads {
			clear(g)
		}
		kl := make([]float64, L)
		epoch := 0
		for w := range perStep {
			var ids []int
			ids, epoch = t.corpus.window(t.opts.Seed, t.step*perStep+w)
			hs, err := t.m.Residuals(ctx, ids)
			if err != nil {
				return t.stop(ctx, err)
			}
			for a := 0; a < T; a += N {
				if err := ctx.Err(); err != nil {
					return t.stop(ctx, err)
				}
				rows := min(N, T-a)
				gather(hbuf, hs[L], a, rows, t.C)
				if err := t.fwd.run(hbuf, nil, nil, logits); err != nil {
					return err
				}
				softmaxRows(p, entropy, rows, V) // P_output; rows past `rows` are padding: p = 0
				var hsum float64
				for r := range rows {
					hsum += entropy[r]
				}
				for l := range L {
					gather(hbuf, hs[l], a, rows, t.C)
					ce, err := t.gr.run(hbuf, p, t.params[2*l], t.params[2*l+1], 1, t.grads[2*l], t.grads[2*l+1])
					if err != nil {
						return err
					}
					kl[l] += float64(ce) - hsum
				}
			}
			tokens += int64(T)
			if t.opts.Progress != nil {
				done := float64((w + 1) * T)
				mean := make([]float64, L)
				for l := range L {
					mean[l] = kl[l] / done
				}
				el := time.Since(start)
				t.opts.Progress(Progress{Step: t.step, Steps: t.opts.Steps, Window: w + 1, PerStep: perStep, Epoch: epoch,
					Tokens: tokens, TokensPerSec: float64(tokens) / el.Seconds(), KL: mean, LastKL: lastKL,
					ResumedFrom: resumed, Elapsed: el})
			}
		}
		for _, g := range t.grads { // the mean over the step's tokens, as the package's loss
			for i := range g {
				g[i] *= scale
			}
		}
		clipGradNorm(t.grads, maxGradNorm)
		t.opt.step(t.params, t.grads, baseLR(t.opts.Optimizer, t.opts.LR)*lrFactor(t.step, t.opts.Steps, warmup), t.step+1)
		lastKL = make([]float64, L)
		for l := range L {
			lastKL[l] = kl[l] / float64(perStep*T)
		}
		if t.opts.Dir != "" && time.Since(lastSave) > t.opts.CheckpointEvery && t.step+1 < t.opts.Steps {
			t.step++ // the checkpoint holds the steps done
			err := t.save()
			t.step--
			if err != nil {
				return err
			}
			lastSave = time.Now()
		}
	}
	return nil
}

// stop ends a run on err: on cancellation it saves the state as of the
// last finished step.
func (t *trainer) stop(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if t.opts.Dir == "" {
		return fmt.Errorf("tune: %w at step %d of %d (no checkpoint: no output folder)", ErrInterrupted, t.step, t.opts.Steps)
	}
	if serr := t.save(); serr != nil {
		return fmt.Errorf("tune: %w at step %d of %d, and the checkpoint failed: %v", ErrInterrupted, t.step, t.opts.Steps, serr)
	}
	return fmt.Errorf("tune: %w after %d of %d steps; checkpoint saved in %s: run the same command again to resume",
		ErrInterrupted, t.step, t.opts.Steps, checkpointDir(t.opts.Dir))
}

// gather copies rows a..a+rows−1 of the [T,C] stream into dst [N,C],
// zeroing the rest (padding).
func gather(dst, stream []float32, a, rows, C int) {
	n := copy(dst, stream[a*C:(a+rows)*C])
	clear(dst[n:])
}

// softmaxRows turns the first rows rows of z [N,V] into probabilities in
// place, writing each row's entropy (nats); the other rows become zeros.
func softmaxRows(z []float32, entropy []float64, rows, V int) {
	n := len(z) / V
	parallelRows(n, func(r int) {
		zr := z[r*V : (r+1)*V]
		if r >= rows {
			clear(zr)
			entropy[r] = 0
			return
		}
		m := zr[0]
		for _, x := range zr {
			m = max(m, x)
		}
		var s, sz float64
		for i, x := range zr {
			e := math.Exp(float64(x - m))
			s += e
			sz += e * float64(x-m)
			zr[i] = float32(e)
		}
		inv := 1 / s
		for i := range zr {
			zr[i] = float32(float64(zr[i]) * inv)
		}
		entropy[r] = math.Log(s) - sz/s // H = log s − E[z − m]
	})
}

// lens returns the translators in the package's layout (Weight = Wtᵀ).
func (t *trainer) lens() *tunedlens.Lens {
	l := tunedlens.Identity(t.opts.BaseModel, t.C, t.L, true)
	for i := range t.L {
		transpose(l.Translators[i].Weight, t.params[2*i], t.C)
		copy(l.Translators[i].Bias, t.params[2*i+1])
	}
	return l
}

// transpose writes the transpose of the C×C matrix src into dst.
func transpose(dst, src []float32, C int) {
	for i := range C {
		for j := range C {
			dst[j*C+i] = src[i*C+j]
		}
	}
}
