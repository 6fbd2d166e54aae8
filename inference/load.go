package inference

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
// usable CUDA device, or when the GPU fails its self-check.
var ErrNoCUDA = errors.New("CUDA is not available")

// Load resolves spec (a Hugging Face repo id, optionally @revision, or a
// local directory), downloading what the cache lacks, and opens the model
// on the chosen device (see OpenOn).
func Load(ctx context.Context, spec string, opt LoadOptions) (*Model, error) {
	if err := checkDevice(opt.Device); err != nil {
		return nil, err
	}
	dir, id, note := "", spec, ""
	if !builtin.IsName(spec) {
		snap, err := hub.Resolve(ctx, spec, opt.Hub)
		switch {
		case err == nil:
			dir = snap.Dir
		case opt.Fallback && (errors.Is(err, hub.ErrOffline) || errors.Is(err, hub.ErrUnreachable)):
			note = fmt.Sprintf("%s: not cached and the hub is unreachable, so this is the built-in demo model (small; 1960s American English). `logitlens download %s` gets %s.", spec, spec, spec)
		default:
			return nil, err
		}
	}
	if dir == "" {
		d, err := builtin.Dir()
		if err != nil {
			return nil, err
		}
		dir, id = d, builtin.Name
	}
	m, err := OpenOn(ctx, dir, id, opt.Device)
	if err != nil {
		return nil, err
	}
	if note != "" {
		m.info.Note = strings.TrimSpace(note + " " + m.info.Note)
	}
	return m, nil
}

// OpenDir opens the model in a local directory (config.json, safetensors,
// tokenizer files) with its weights placed by newBackend; id names it in
// Info.
func OpenDir(dir, id string, newBackend NewBackend) (*Model, error) {
	ck, err := weights.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		ck.Close()
		return nil, err
	}
	m, err := NewModel(ck, tok, newBackend, id)
	if err != nil {
		ck.Close()
		return nil, err
	}
	return m, nil
}

// checkDevice rejects an unknown --device value before anything loads.
func checkDevice(device string) error {
	switch device {
	case "", "auto", "cpu", "cuda":
		return nil
	}
	return fmt.Errorf("inference: unknown device %q (want auto, cpu or cuda)", device)
}

// OpenOn opens the model in dir on the device a --device value names:
//
//   - "cpu": the CPU.
//   - "cuda": the first GPU, after a self-check (SelfCheck); an error says
//     why CUDA is unavailable or how the GPU's lens differed from the CPU's.
//   - "auto" or "": the GPU when there is one and it passes the self-check,
//     else the CPU. A machine without an NVIDIA driver or GPU gets the CPU
//     in silence; a GPU that cannot be used or fails the check gets the CPU
//     and one line in Info.Note saying why.
func OpenOn(ctx context.Context, dir, id, device string) (*Model, error) {
	if err := checkDevice(device); err != nil {
		return nil, err
	}
	if device == "cpu" {
		return OpenDir(dir, id, NewCPUBackend)
	}
	ck, err := weights.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err == nil {
		err = ck.Config.CheckVocab(tok.VocabSize())
	}
	if err != nil {
		ck.Close()
		return nil, err
	}
	onCPU := func(note string) (*Model, error) {
		m, err := NewModel(ck, tok, NewCPUBackend, id)
		if err != nil {
			ck.Close()
			return nil, err
		}
		m.info.Note = note
		return m, nil
	}
	strict := device == "cuda"
	dev, err := openCUDA()
	if err != nil {
		if strict {
			ck.Close()
			return nil, fmt.Errorf("inference: --device cuda: %w: %w", ErrNoCUDA, err)
		}
		if noGPU(err) {
			return onCPU("")
		}
		return onCPU("the GPU cannot be used, so this runs on the CPU: " + err.Error())
	}
	m, err := NewModel(ck, tok, func(ck *weights.Checkpoint) (Backend, error) { return newCUDABackend(dev, ck, true) }, id)
	if err != nil { // the upload failed: the GPU's memory is full, or its kernels cannot run this shape
		dev.Close()
		if strict {
			ck.Close()
			return nil, fmt.Errorf("inference: --device cuda: %w", err)
		}
		return onCPU("the GPU cannot run this model, so it runs on the CPU: " + err.Error())
	}
	cpu, err := NewCPUBackend(m.ckpt)
	if err != nil {
		m.Close()
		return nil, err
	}
	diff := SelfCheck(ctx, m, cpu)
	if diff == nil {
		cpu.Close()
		return m, nil
	}
	if err := ctx.Err(); err != nil {
		cpu.Close()
		m.Close()
		return nil, err
	}
	if strict {
		cpu.Close()
		m.Close()
		return nil, fmt.Errorf("inference: --device cuda: %w", diff)
	}
	m.backend.Close() //nolint:errcheck // the GPU is abandoned; its error changes nothing
	m.backend = cpu
	m.info.Device = cpu.Name()
	m.info.Note = diff.Error() + "; running on the CPU"
	return m, nil
}
