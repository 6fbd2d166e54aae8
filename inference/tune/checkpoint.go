package tune

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// A checkpoint is a folder DIR/checkpoint with state.json (the step reached
// and everything the rest of the run depends on) and, in the tuned-lens
// layout that torch.load reads, params.pt (the translators) and one
// <buffer>.pt per optimiser buffer (momentum_buffer, or exp_avg,
// exp_avg_sq and max_exp_avg_sq), each laid out like the translators.

// checkpointState is state.json.
type checkpointState struct {
	Step          int     `json:"step"`
	Steps         int     `json:"steps"`
	TokensPerStep int     `json:"tokens_per_step"`
	LR            float64 `json:"lr"`
	Optimizer     string  `json:"optimizer"`
	Seed          uint64  `json:"seed"`
	Window        int     `json:"window"`
	Corpus        string  `json:"corpus"` // Corpus.Fingerprint
	DModel        int     `json:"d_model"`
	Layers        int     `json:"num_hidden_layers"`
}

func checkpointDir(dir string) string { return filepath.Join(dir, "checkpoint") }

func (t *trainer) state() checkpointState {
	return checkpointState{Step: t.step, Steps: t.opts.Steps, TokensPerStep: t.opts.TokensPerStep, LR: t.opts.LR,
		Optimizer: t.opts.Optimizer, Seed: t.opts.Seed, Window: t.corpus.Window, Corpus: t.corpus.Fingerprint(),
		DModel: t.C, Layers: t.L}
}

// asLens lays out tensors shaped like t.params (Wt, b per layer) as a lens,
// transposing each Wt to the package's [out, in].
func (t *trainer) asLens(tensors [][]float32) *tunedlens.Lens {
	l := tunedlens.Identity("", t.C, t.L, true)
	for i := range t.L {
		transpose(l.Translators[i].Weight, tensors[2*i], t.C)
		copy(l.Translators[i].Bias, tensors[2*i+1])
	}
	return l
}

// fromLens copies a lens's translators back into tensors shaped like t.params.
func (t *trainer) fromLens(l *tunedlens.Lens, tensors [][]float32) {
	for i := range t.L {
		transpose(tensors[2*i], l.Translators[i].Weight, t.C)
		copy(tensors[2*i+1], l.Translators[i].Bias)
	}
}

// save writes the checkpoint: into a fresh folder, renamed over the old one,
// so an interrupted save leaves the previous checkpoint whole.
func (t *trainer) save() error {
	final := checkpointDir(t.opts.Dir)
	if err := os.MkdirAll(t.opts.Dir, 0o755); err != nil {
		return fmt.Errorf("tune: checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(t.opts.Dir, ".checkpoint-*")
	if err != nil {
		return fmt.Errorf("tune: checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp)
	files := map[string][][]float32{"params": t.params}
	for name, buf := range t.opt.state() {
		files[name] = buf
	}
	for name, tensors := range files {
		if err := tunedlens.Save(filepath.Join(tmp, name), t.asLens(tensors)); err != nil {
			return fmt.Errorf("tune: checkpoint: %w", err)
		}
	}
	js, err := json.MarshalIndent(t.state(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "state.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("tune: checkpoint: %w", err)
	}
	old := final + ".old"
	os.RemoveAll(old)
	if err := os.Rename(final, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tune: checkpoint: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("tune: checkpoint: %w", err)
	}
	return os.RemoveAll(old)
}

// resume loads DIR/checkpoint when there is one, after checking that it was
// made by the same run (options, model shape and corpus). It returns the
// step resumed at, 0 when starting afresh.
func (t *trainer) resume() (int, error) {
	if t.opts.Dir == "" {
		return 0, nil
	}
	dir := checkpointDir(t.opts.Dir)
	data, err := weights.ReadFile(filepath.Join(dir, "state.json"), weights.MaxConfigFile)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("tune: checkpoint: %w", err)
	}
	var st checkpointState
	if err := json.Unmarshal(data, &st); err != nil {
		return 0, fmt.Errorf("tune: checkpoint %s: state.json: %v", dir, err)
	}
	want := t.state()
	want.Step = st.Step
	if st != want {
		return 0, fmt.Errorf("tune: %s holds a checkpoint of another run (%+v; this run: %+v): use the same options and data to resume it, or remove it to start afresh", dir, st, want)
	}
	if st.Step < 0 || st.Step > st.Steps {
		return 0, fmt.Errorf("tune: checkpoint %s: step %d of %d", dir, st.Step, st.Steps)
	}
	files := map[string][][]float32{"params": t.params}
	for name, buf := range t.opt.state() {
		files[name] = buf
	}
	for name, tensors := range files {
		l, err := tunedlens.Load(filepath.Join(dir, name), t.C, t.L)
		if err != nil {
			return 0, fmt.Errorf("tune: checkpoint: %w", err)
		}
		t.fromLens(l, tensors)
	}
	t.step = st.Step
	return st.Step, nil
}

// RemoveCheckpoint deletes dir/checkpoint: call it once the trained lens is
// saved.
func RemoveCheckpoint(dir string) error {
	if err := os.RemoveAll(checkpointDir(dir)); err != nil {
		return fmt.Errorf("tune: %w", err)
	}
	return nil
}
