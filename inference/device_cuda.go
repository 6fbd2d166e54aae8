package inference

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// The CUDA device: an adapter from the seam to package cuda, which runs
// the forward pass and the lens as whole steps on the GPU. The weights are
// uploaded once per model (cuda.Model); each session's device is a
// cuda.State (KV cache, residual streams, scratch), allocated at its first
// Forward and freed by Close. Only token ids go in and lens statistics
// come out; this file maps cuda's cells to ours and enforces the seam's
// conventions on rows that are not finite.

// cudaBackend is a model's weights on a GPU.
type cudaBackend struct {
	dev        *cuda.Device
	model      *cuda.Model
	ownsDevice bool // Close closes dev too (a device Load opened)

	mu      sync.Mutex
	devices map[*cudaDevice]struct{} // open, so Close can free them
	closed  bool
	// tuned holds the tuned lenses uploaded so far, each once: a session
	// switching lenses reuses them; Close frees them.
	tuned map[*tunedlens.Lens]*cuda.Translators
}

var _ Backend = (*cudaBackend)(nil)

// CUDABackend returns the NewBackend that uploads a checkpoint to dev. The
// device stays the caller's to close, after the model.
func CUDABackend(dev *cuda.Device) NewBackend {
	return func(ck *weights.Checkpoint) (Backend, error) { return newCUDABackend(dev, ck, false) }
}

// newCUDABackend uploads ck's weights to dev.
func newCUDABackend(dev *cuda.Device, ck *weights.Checkpoint, ownsDevice bool) (*cudaBackend, error) {
	cfg, w := cuda.FromCheckpoint(ck)
	m, err := dev.Upload(cfg, w)
	if err != nil {
		return nil, fmt.Errorf("inference: %w", err)
	}
	return &cudaBackend{dev: dev, model: m, ownsDevice: ownsDevice, devices: map[*cudaDevice]struct{}{},
		tuned: map[*tunedlens.Lens]*cuda.Translators{}}, nil
}

// openCUDA opens the first GPU, with the library paths from the
// environment. Tests replace it with an emulated device.
var openCUDA = func() (*cuda.Device, error) { return cuda.Open(cuda.OptionsFromEnv()) }

// noGPU says whether openCUDA's error means the machine has no NVIDIA GPU
// at all, which deserves no message (see cuda.NoGPU).
func noGPU(err error) bool { return cuda.NoGPU(err) }

// CUDAStatus says whether the CUDA device can run here: the GPU it would
// use, or why not.
func CUDAStatus() string {
	d, err := openCUDA()
	if err != nil {
		return "not available: " + err.Error()
	}
	defer d.Close()
	return "available: " + d.String()
}

// Name implements Backend, e.g. "cuda: NVIDIA H100 80GB HBM3 (sm_90, …)".
func (b *cudaBackend) Name() string { return "cuda: " + b.dev.String() }

// NewDevice implements Backend.
func (b *cudaBackend) NewDevice() Device {
	d := &cudaDevice{b: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.devices[d] = struct{}{}
	}
	return d
}

// Time implements Backend with CUDA events.
func (b *cudaBackend) Time(f func() error) (time.Duration, error) { return b.dev.Time(f) }

// Close implements Backend: the sessions' states, the weights, and the
// device when the backend opened it.
func (b *cudaBackend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	open := make([]*cudaDevice, 0, len(b.devices))
	for d := range b.devices {
		open = append(open, d)
	}
	b.mu.Unlock()
	var errs []error
	for _, d := range open {
		errs = append(errs, d.Close())
	}
	b.mu.Lock()
	for l, t := range b.tuned {
		errs = append(errs, t.Close())
		delete(b.tuned, l)
	}
	b.mu.Unlock()
	errs = append(errs, b.model.Close())
	if b.ownsDevice {
		errs = append(errs, b.dev.Close())
	}
	return errors.Join(errs...)
}

// cudaDevice is one session's prompt on the GPU.
type cudaDevice struct {
	b  *cudaBackend
	mu sync.Mutex // against the backend's Close
	st *cuda.State
}

var _ Device = (*cudaDevice)(nil)

// Chunk implements Device: one forward and one lens GEMM for the whole
// prompt, which the GPU wants.
func (d *cudaDevice) Chunk() int { return 0 }

// state returns the device's cuda.State, allocating it at first use; d.mu
// is held.
func (d *cudaDevice) state() (*cuda.State, error) {
	if d.st != nil {
		return d.st, nil
	}
	d.b.mu.Lock()
	closed := d.b.closed
	d.b.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	st, err := d.b.model.NewState(cuda.StateOptions{})
	if err != nil { // e.g. the GPU's memory is full
		return nil, fmt.Errorf("inference: %w", err)
	}
	d.st = st
	return st, nil
}

// Forward implements Device.
func (d *cudaDevice) Forward(ctx context.Context, ids []int, p0 int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.state()
	if err != nil {
		return err
	}
	return st.Forward(ids, p0)
}

// Lens implements Device.
func (d *cudaDevice) Lens(ctx context.Context, req LensRequest, out [][]Cell) error {
	cfg := d.b.model.Config()
	if err := checkTuned(cfg.NEmbd, cfg.NLayer, req); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.state()
	if err != nil {
		return err
	}
	creq, err := d.request(req)
	if err != nil {
		return err
	}
	streams := creq.Streams
	cells, err := st.Lens(creq)
	if err != nil || req.LogitsOnly {
		return err
	}
	final := slices.Index(streams, 2*d.b.model.Config().NLayer)
	for r := range cells {
		for t, c := range cells[r] {
			out[r][t] = cellFromCUDA(c, !finite(cells[final][t].Entropy))
		}
	}
	return d.classifyNonFinite(st, streams, req, out)
}

// translators returns lens's translators on the device, uploading them at
// first use.
func (b *cudaBackend) translators(lens *tunedlens.Lens) (*cuda.Translators, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errClosed
	}
	if t, ok := b.tuned[lens]; ok {
		return t, nil
	}
	var ws, bs [][]float32
	for _, tr := range lens.Translators {
		ws, bs = append(ws, tr.Weight), append(bs, tr.Bias)
	}
	t, err := b.model.UploadTranslators(ws, bs)
	if err != nil {
		return nil, fmt.Errorf("inference: tuned lens: %w", err)
	}
	b.tuned[lens] = t
	return t, nil
}

// request maps a lens request to package cuda's, uploading a tuned lens's
// translators at their first use.
func (d *cudaDevice) request(req LensRequest) (cuda.LensRequest, error) {
	streams := make([]int, len(req.Rows))
	for r, row := range req.Rows {
		streams[r] = row.stream()
	}
	creq := cuda.LensRequest{Streams: streams, From: req.From, To: req.To,
		TopK: req.TopK, Target: req.Target, Next: req.Next, LogitsOnly: req.LogitsOnly}
	if req.Tuned != nil {
		var err error
		if creq.Translators, err = d.b.translators(req.Tuned); err != nil {
			return creq, err
		}
		for _, row := range req.Rows {
			l := -1
			if translatorOf(req, row, d.b.model.Config().NLayer) != nil {
				l = row.stream() / 2
			}
			creq.Translate = append(creq.Translate, l)
		}
	}
	return creq, nil
}

// Logits implements Device: the lens's GEMM on the GPU (chunked by the
// state's LensBytes), each chunk's logits copied to out. For GPT-2 small
// that is 13·V floats, 2.6 MB, per position and run.
func (d *cudaDevice) Logits(ctx context.Context, req LensRequest, out []float32) error {
	cfg := d.b.model.Config()
	if err := checkTuned(cfg.NEmbd, cfg.NLayer, req); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if req.From == req.To {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.state()
	if err != nil {
		return err
	}
	creq, err := d.request(LensRequest{Rows: req.Rows, From: req.From, To: req.To, TopK: 1, Target: -1, Tuned: req.Tuned})
	if err != nil {
		return err
	}
	creq.Logits = out
	_, err = st.Lens(creq)
	return err
}

// cellFromCUDA maps a cuda.Cell to a Cell. The device's sums turn NaN or
// infinite when a logit is not finite (exp(NaN), Inf − Inf, 0·Inf), so a
// row whose entropy is not finite is a non-finite cell, classified later
// from its residual; a finite row of a position whose final row is not
// finite has no KL and no final top-1.
func cellFromCUDA(c cuda.Cell, finalNonFinite bool) Cell {
	if !finite(c.Entropy) {
		return Cell{NonFinite: LogitsOverflow} // completed by classifyNonFinite
	}
	top := make([]Prediction, len(c.Top))
	for j, p := range c.Top {
		top[j] = Prediction{ID: p.ID, Prob: p.Prob}
	}
	cell := Cell{Top: top, Entropy: c.Entropy, KLToFinal: c.KLToFinal,
		FinalTop1Rank: c.FinalTop1Rank, FinalTop1Prob: c.FinalTop1Prob,
		TargetRank: c.TargetRank, TargetProb: c.TargetProb, NextRank: c.NextRank, NextProb: c.NextProb}
	if finalNonFinite {
		cell.KLToFinal, cell.FinalTop1Rank, cell.FinalTop1Prob = math.NaN(), -1, math.NaN()
	}
	return cell
}

// classifyNonFinite completes the non-finite cells of out as the CPU
// device does (setNonFinite): it copies the residual rows of their
// streams back (rare: only a broken checkpoint has any) and says what
// broke; the target's and the next token's probabilities are NaN where
// the cell has them.
func (d *cudaDevice) classifyNonFinite(st *cuda.State, streams []int, req LensRequest, out [][]Cell) error {
	C := d.b.model.Config().NEmbd
	for r, row := range out {
		var h []float32
		for t := range row {
			if row[t].NonFinite == Finite {
				continue
			}
			if h == nil {
				var err error
				if h, err = st.Stream(streams[r], req.From, req.To); err != nil {
					return err
				}
			}
			next := -1
			if req.Next != nil {
				next = req.Next[t]
			}
			setNonFinite(&row[t], residualKind(h[t*C:(t+1)*C]), req.Target, next)
		}
	}
	return nil
}

// Residual implements Device.
func (d *cudaDevice) Residual(row Row, from, to int) ([]float32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.state()
	if err != nil {
		return nil, err
	}
	return st.Stream(row.stream(), from, to)
}

// Close implements Device.
func (d *cudaDevice) Close() error {
	d.b.mu.Lock()
	delete(d.b.devices, d)
	d.b.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st == nil {
		return nil
	}
	err := d.st.Close()
	d.st = nil
	return err
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
