package inference

import (
	"fmt"

	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/weights"
)

// CUDA runs the model on an NVIDIA GPU through package cuda. The forward
// pass and the lens run as whole steps on the device (a Session holds a
// cuda.State: weights, KV cache and residual streams stay resident, and only
// token ids go in and lens statistics come out), so the per-op Engine
// methods are the CPU's, kept for code that runs ops on host tensors.
type CUDA struct {
	CPU
	dev   *cuda.Device
	model *cuda.Model // set by NewModel
}

// Name implements Engine, e.g. "cuda: NVIDIA H100 80GB HBM3 (sm_90, …)".
func (e *CUDA) Name() string { return "cuda: " + e.dev.String() }

// openCUDA opens the first GPU, with the library paths from the environment.
func openCUDA() (*CUDA, error) {
	dev, err := cuda.Open(cuda.OptionsFromEnv())
	if err != nil {
		return nil, err
	}
	return &CUDA{dev: dev}, nil
}

// CUDAStatus says whether the CUDA engine can run here: the GPU it would
// use, or why not.
func CUDAStatus() string {
	e, err := openCUDA()
	if err != nil {
		return "not available: " + err.Error()
	}
	defer e.dev.Close()
	return "available: " + e.dev.String()
}

// upload copies a checkpoint's weights to the device, once per model.
func (e *CUDA) upload(ck *weights.Checkpoint) error {
	cfg, w := cuda.FromCheckpoint(ck)
	m, err := e.dev.Upload(cfg, w)
	if err != nil {
		return fmt.Errorf("inference: %w", err)
	}
	e.model = m
	return nil
}

// close frees the weights and the device.
func (e *CUDA) close() error {
	if e.model != nil {
		e.model.Close()
	}
	return e.dev.Close()
}

// deviceLens fills the cells of streams at positions lo..hi-1 from the
// session's device state.
func (s *Session) deviceLens(lo, hi int, streams []int, req Request) error {
	cells, err := s.dev.Lens(cuda.LensRequest{Streams: streams, From: lo, To: hi, TopK: req.TopK, Target: req.Target})
	if err != nil {
		return err
	}
	for r, st := range streams {
		if len(s.cells[st]) < hi {
			s.cells[st] = append(s.cells[st], make([]Cell, hi-len(s.cells[st]))...)
		}
		for t, c := range cells[r] {
			top := make([]Prediction, len(c.Top))
			for j, p := range c.Top {
				top[j] = Prediction{ID: p.ID, Prob: p.Prob}
			}
			s.cells[st][lo+t] = Cell{Top: top, Entropy: c.Entropy, KLToFinal: c.KLToFinal,
				FinalTop1Rank: c.FinalTop1Rank, FinalTop1Prob: c.FinalTop1Prob,
				TargetRank: c.TargetRank, TargetProb: c.TargetProb}
		}
		s.valid[st] = max(s.valid[st], hi)
	}
	return nil
}
