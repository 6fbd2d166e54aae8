package inference

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/logitlens/logitlens/weights/tunedlens"
)

// The device seam. A Session keeps what one user's prompt needs whatever
// runs it (the token ids, the lens cells computed so far, which of them are
// still current) and drives a Device for the rest: running GPT-2 on new
// positions, which leaves every residual stream row stored on the device,
// and decoding stored rows into lens cells. A Backend is the per-model
// side: it owns the weights where the device reads them (mapped host
// memory; uploaded GPU memory) and makes one Device per session.
//
// Two adapters implement the seam, and only they know what they run on:
// the CPU device (device_cpu.go, forward.go) and the CUDA device
// (device_cuda.go, over package cuda). Everything else (the session, the
// statistics' conventions, loading, the self-check) is written once against
// these interfaces.

// Backend is a model's weights where a device reads them, and the maker of
// the devices that run them. It is shared by every session of the model.
type Backend interface {
	// Name says what runs the model, e.g. "cpu" or "cuda: NVIDIA H100
	// 80GB HBM3 (sm_90, 80 GB, driver 13.0, cuBLAS 13.0.0)".
	Name() string
	// NewDevice starts a device for one session. It allocates lazily, so
	// an idle session costs nothing.
	NewDevice() Device
	// Time runs f and returns how long the backend's hardware spent on it:
	// wall time on the CPU; on a GPU, the time between events recorded on
	// its stream before and after f, which the host's view of an
	// asynchronous queue would misstate.
	Time(f func() error) (time.Duration, error)
	// Close frees the weights, and any device still open. Devices must not
	// be used afterwards.
	Close() error
}

// Device runs one session's prompt: a KV cache and every residual stream
// row for the positions it has run, and the buffers of a step.
//
// A Device is used by one goroutine at a time (the Session serialises its
// calls). Cancelling ctx makes a call return ctx.Err() promptly, between
// blocks or lens chunks; the device then still holds a consistent prefix
// (Forward's p0 may be anything up to the positions completed).
type Device interface {
	// Chunk is the most positions one Forward call should take: the
	// session runs a long prompt in chunks of this many, so that each
	// chunk's columns reach the user while the rest computes. 0 means no
	// limit (a GPU wants few, large calls).
	Chunk() int
	// Forward runs GPT-2 on ids at positions p0..p0+len(ids)−1, reading
	// the cached keys and values of positions 0..p0−1 and replacing
	// whatever was cached from p0 on. It stores every residual stream row
	// of those positions for Lens.
	Forward(ctx context.Context, ids []int, p0 int) error
	// Lens decodes the stored rows req.Rows at positions req.From..req.To−1
	// into cells: out[r][t−req.From] is row req.Rows[r] at position t.
	// A field of req the device cannot honour gets ErrUnsupported, never
	// a cell computed without it.
	Lens(ctx context.Context, req LensRequest, out [][]Cell) error
	// Residual copies the stored residual stream of row at positions
	// from..to−1 back to the host: [to−from, C], row-major.
	Residual(row Row, from, to int) ([]float32, error)
	// Logits decodes the stored rows req.Rows at positions req.From..
	// req.To−1 as Lens does (ln_f, the unembedding, req.Tuned's
	// translators) and copies their logits to the host, reduced to
	// nothing: out[(r·n + t−req.From)·V + v], n = req.To−req.From, V the
	// vocabulary. Comparing two runs needs both runs' whole distributions
	// of a cell at once (KL over the vocabulary), and two runs may live on
	// two devices of two models, so they meet on the host. The other
	// fields of req are ignored.
	Logits(ctx context.Context, req LensRequest, out []float32) error
	// Close frees what the device allocated. It may be called more than
	// once.
	Close() error
}

// LensRequest asks a Device for the cells of some stored rows at some
// positions. Every statistic follows the conventions of the package doc.
//
// A tuned lens (Belrose et al. 2023) adds per-row affine translators applied
// to the gathered rows before ln_f, logits_l = ln_f(h_l + h_l·W_lᵀ + b_l)·W_U
// for the rows h[0..L−1] (the final row has none); a device without them
// refuses the request with ErrUnsupported.
type LensRequest struct {
	// Rows to decode. They include the final row (Kind BlockOut, Layer
	// n_layer), whose distribution KL(P_final ‖ P_row) and the final top-1
	// need.
	Rows     []Row
	From, To int // positions, all run through Forward
	TopK     int // 1..MaxTopK
	Target   int // a pinned token whose probability and rank every cell reports; −1 for none
	// Next, when not nil, holds the token each position predicts, the
	// prompt's next token: Next[t−From] = ids[t+1], or −1 at the prompt's
	// last position. Every cell then reports its probability and rank.
	Next []int
	// Tuned, when not nil, decodes each block row h[i] with i < n_layer
	// (the embedding is h[0]) through the tuned lens's translator i before
	// ln_f; the final row stays as it is. Sublayer rows have no translator:
	// requesting one with Tuned is an error.
	Tuned *tunedlens.Lens
	// LogitsOnly runs ln_f and the unembedding but no statistics, and
	// fills no cell: benchmarks time the statistics against it.
	LogitsOnly bool
}

// ErrUnsupported is wrapped by a Device's error for a request it cannot
// compute (e.g. a statistic its kernels lack).
var ErrUnsupported = errors.New("not supported on this device")

// ErrSublayersTuned is wrapped by the error for sublayer rows requested with
// a tuned lens: translators exist only for the block outputs h[0..L−1].
var ErrSublayersTuned = errors.New("the tuned lens has translators only for block outputs, not for sublayer (resid_mid) rows")

// checkTuned checks a request's tuned lens against the model: its shape,
// and no sublayer rows.
func checkTuned(nEmbd, nLayer int, req LensRequest) error {
	if req.Tuned == nil {
		return nil
	}
	if err := req.Tuned.Config.Check(nEmbd, nLayer); err != nil {
		return fmt.Errorf("inference: tuned lens: %w", err)
	}
	if len(req.Tuned.Translators) != nLayer {
		return fmt.Errorf("inference: tuned lens of %d translators for %d layers", len(req.Tuned.Translators), nLayer)
	}
	for _, r := range req.Rows {
		if r.Kind == AttnMid {
			return fmt.Errorf("inference: row %s: %w", r.Name, ErrSublayersTuned)
		}
	}
	return nil
}

// translatorOf returns the translator that decodes row under req's tuned
// lens: translator i for h[i], i < L; nil for the final row or without a
// tuned lens.
func translatorOf(req LensRequest, row Row, L int) *tunedlens.Translator {
	if req.Tuned == nil || row.Kind == AttnMid {
		return nil
	}
	if i := row.stream() / 2; i < L {
		return &req.Tuned.Translators[i]
	}
	return nil
}
