package inference

import (
	"context"
	"errors"
	"fmt"

	"github.com/logitlens/logitlens/weights/hub"
	"github.com/logitlens/logitlens/weights/tokenizer"

	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/builtin"
)

// LoadOptions say where a model comes from and what runs it.
type LoadOptions struct {
	Hub    hub.Options
	Device string // "auto" (default), "cpu" or "cuda"
	// Fallback opens the built-in demo model when the hub can be neither
	// reached nor answered from the cache (offline, unreachable). Set it
	// when the user did not name a model; Info.Note then says why.
	Fallback bool
}

// ErrNoCUDA is returned for --device cuda on a machine or build without a
// usable CUDA engine.
var ErrNoCUDA = errors.New("CUDA is not available")

// Load resolves spec (a Hugging Face repo id, optionally @revision, or a
// local directory), downloading what the cache lacks, and opens the model
// on the chosen device.
func Load(ctx context.Context, spec string, opt LoadOptions) (*Model, error) {
	engine, note, err := chooseEngine(opt.Device)
	if err != nil {
		return nil, err
	}
	if builtin.IsName(spec) {
		return openBuiltin(engine, note)
	}
	snap, err := hub.Resolve(ctx, spec, opt.Hub)
	if err != nil {
		if opt.Fallback && (errors.Is(err, hub.ErrOffline) || errors.Is(err, hub.ErrUnreachable)) {
			return openBuiltin(engine, fmt.Sprintf("%s: not cached and the hub is unreachable, so this is the built-in demo model (small; 1960s American English). `logitlens download %s` gets %s.", spec, spec, spec))
		}
		return nil, err
	}
	m, err := OpenDir(snap.Dir, spec, engine)
	if err != nil {
		return nil, err
	}
	m.info.Note = note
	return m, nil
}

// openBuiltin opens the demo model embedded in the binary through the
// ordinary loader.
func openBuiltin(engine Engine, note string) (*Model, error) {
	dir, err := builtin.Dir()
	if err != nil {
		return nil, err
	}
	m, err := OpenDir(dir, builtin.Name, engine)
	if err != nil {
		return nil, err
	}
	m.info.Note = note
	return m, nil
}

// OpenDir opens the model in a local directory (config.json, safetensors,
// tokenizer files) on an engine; id names it in Info.
func OpenDir(dir, id string, engine Engine) (*Model, error) {
	ck, err := weights.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		ck.Close()
		return nil, err
	}
	m, err := NewModel(ck, tok, engine, id)
	if err != nil {
		ck.Close()
		return nil, err
	}
	return m, nil
}

// chooseEngine picks the engine for a --device value, with a note saying
// why when auto falls back to the CPU.
func chooseEngine(device string) (Engine, string, error) {
	switch device {
	case "cpu":
		return CPU{}, "", nil
	case "", "auto", "cuda":
		e, err := openCUDA()
		if err == nil {
			return e, "", nil
		}
		if device == "cuda" {
			return nil, "", fmt.Errorf("inference: --device cuda: %w: %w", ErrNoCUDA, err)
		}
		return CPU{}, "no GPU, running on the CPU: " + err.Error(), nil
	}
	return nil, "", fmt.Errorf("inference: unknown device %q (want auto, cpu or cuda)", device)
}
