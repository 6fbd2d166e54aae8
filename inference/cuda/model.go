package cuda

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/logitlens/logitlens/weights"
)

// Config is the part of a GPT-2 configuration the engine needs.
type Config struct {
	NLayer, NHead, NEmbd int     // L, H, C
	VocabSize            int     // V
	NPositions           int     // the longest prompt
	LayerNormEpsilon     float32 // ln eps
}

// Block is one transformer block's weights, row-major, named after the
// checkpoint keys. Conv1D weights are stored [in, out].
type Block struct {
	Ln1G, Ln1B         []float32 // [C]
	CAttnW, CAttnB     []float32 // [C,3C], [3C]
	AttnProjW          []float32 // [C,C]
	AttnProjB          []float32 // [C]
	Ln2G, Ln2B         []float32 // [C]
	FcW, FcB           []float32 // [C,4C], [4C]
	MlpProjW, MlpProjB []float32 // [4C,C], [C]
}

// Weights are a GPT-2 checkpoint's tensors, as float32 host slices (they
// may alias a mapped file: Upload only reads them).
type Weights struct {
	WTE        []float32 // [V,C]
	WPE        []float32 // [P,C]
	LnFG, LnFB []float32 // [C]
	LMHead     []float32 // [V,C] when untied; nil when W_U = wteᵀ
	Blocks     []Block   // L
}

// FromCheckpoint maps a validated checkpoint's tensors to the engine's
// configuration and weights, aliasing its float32 data.
func FromCheckpoint(ck *weights.Checkpoint) (Config, Weights) {
	c := ck.Config
	cfg := Config{NLayer: c.NLayer, NHead: c.NHead, NEmbd: c.NEmbd, VocabSize: c.VocabSize,
		NPositions: c.NPositions, LayerNormEpsilon: float32(c.LayerNormEpsilon)}
	get := func(n string) []float32 { return ck.Tensor(n).Data }
	w := Weights{WTE: get("wte.weight"), WPE: get("wpe.weight"), LnFG: get("ln_f.weight"), LnFB: get("ln_f.bias")}
	if t := ck.Tensor("lm_head.weight"); t != nil {
		w.LMHead = t.Data
	}
	for i := range c.NLayer {
		p := fmt.Sprintf("h.%d.", i)
		w.Blocks = append(w.Blocks, Block{
			Ln1G: get(p + "ln_1.weight"), Ln1B: get(p + "ln_1.bias"),
			CAttnW: get(p + "attn.c_attn.weight"), CAttnB: get(p + "attn.c_attn.bias"),
			AttnProjW: get(p + "attn.c_proj.weight"), AttnProjB: get(p + "attn.c_proj.bias"),
			Ln2G: get(p + "ln_2.weight"), Ln2B: get(p + "ln_2.bias"),
			FcW: get(p + "mlp.c_fc.weight"), FcB: get(p + "mlp.c_fc.bias"),
			MlpProjW: get(p + "mlp.c_proj.weight"), MlpProjB: get(p + "mlp.c_proj.bias"),
		})
	}
	return cfg, w
}

// buffer is a device allocation of float32s (or int32s).
type buffer struct {
	p DevicePtr
	n int // elements
}

// at returns the address of element i.
func (b buffer) at(i int) DevicePtr { return b.p + DevicePtr(4*i) }

// devBlock is a Block on the device.
type devBlock struct {
	ln1G, ln1B, cAttnW, cAttnB, attnProjW, attnProjB buffer
	ln2G, ln2B, fcW, fcB, mlpProjW, mlpProjB         buffer
}

// Model is a GPT-2's weights resident on a device, uploaded once. It is
// read-only and shared by the States (prompts) that run on it.
type Model struct {
	dev    *Device
	cfg    Config
	wte    buffer // [V,C]
	wpe    buffer // [P,C]
	lnFG   buffer // [C]
	lnFB   buffer // [C]
	unemb  buffer // [V,C]: W_Uᵀ, wte itself when tied
	blocks []devBlock
	allocs []DevicePtr
	bytes  int64
}

// checkConfig rejects shapes the kernels cannot run.
func checkConfig(cfg Config) error {
	switch {
	case cfg.NLayer < 1 || cfg.NHead < 1 || cfg.NEmbd < 1 || cfg.VocabSize < 1 || cfg.NPositions < 1:
		return fmt.Errorf("cuda: config %+v has a non-positive size", cfg)
	case cfg.NEmbd%cfg.NHead != 0:
		return fmt.Errorf("cuda: n_embd %d is not a multiple of n_head %d", cfg.NEmbd, cfg.NHead)
	case cfg.NEmbd/cfg.NHead > blockThreads:
		return fmt.Errorf("cuda: head size %d exceeds %d (the attention kernel's block)", cfg.NEmbd/cfg.NHead, blockThreads)
	case cfg.VocabSize < maxTopK:
		return fmt.Errorf("cuda: vocabulary of %d is smaller than the top-k bound %d", cfg.VocabSize, maxTopK)
	}
	return nil
}

// Upload copies the weights to the device. The slices are checked against
// cfg's shapes.
func (d *Device) Upload(cfg Config, w Weights) (*Model, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if len(w.Blocks) != cfg.NLayer {
		return nil, fmt.Errorf("cuda: %d blocks for n_layer %d", len(w.Blocks), cfg.NLayer)
	}
	m := &Model{dev: d, cfg: cfg}
	err := d.do(func() error {
		C, V, P := cfg.NEmbd, cfg.VocabSize, cfg.NPositions
		var err error
		up := func(name string, s []float32, n int) buffer {
			if err != nil {
				return buffer{}
			}
			if len(s) != n {
				err = fmt.Errorf("cuda: %s has %d values, want %d", name, len(s), n)
				return buffer{}
			}
			var b buffer
			b, err = m.upload(s)
			if err != nil {
				err = fmt.Errorf("cuda: uploading %s: %w", name, err)
			}
			return b
		}
		m.wte = up("wte", w.WTE, V*C)
		m.wpe = up("wpe", w.WPE, P*C)
		m.lnFG, m.lnFB = up("ln_f.weight", w.LnFG, C), up("ln_f.bias", w.LnFB, C)
		m.unemb = m.wte
		if w.LMHead != nil {
			m.unemb = up("lm_head", w.LMHead, V*C)
		}
		for i, b := range w.Blocks {
			p := fmt.Sprintf("h.%d.", i)
			m.blocks = append(m.blocks, devBlock{
				ln1G: up(p+"ln_1.weight", b.Ln1G, C), ln1B: up(p+"ln_1.bias", b.Ln1B, C),
				cAttnW: up(p+"attn.c_attn.weight", b.CAttnW, C*3*C), cAttnB: up(p+"attn.c_attn.bias", b.CAttnB, 3*C),
				attnProjW: up(p+"attn.c_proj.weight", b.AttnProjW, C*C), attnProjB: up(p+"attn.c_proj.bias", b.AttnProjB, C),
				ln2G: up(p+"ln_2.weight", b.Ln2G, C), ln2B: up(p+"ln_2.bias", b.Ln2B, C),
				fcW: up(p+"mlp.c_fc.weight", b.FcW, C*4*C), fcB: up(p+"mlp.c_fc.bias", b.FcB, 4*C),
				mlpProjW: up(p+"mlp.c_proj.weight", b.MlpProjW, 4*C*C), mlpProjB: up(p+"mlp.c_proj.bias", b.MlpProjB, C),
			})
		}
		return err
	})
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// upload allocates and fills one buffer; the device lock is held.
func (m *Model) upload(s []float32) (buffer, error) {
	p, err := m.dev.drv.Alloc(4 * len(s))
	if err != nil {
		return buffer{}, err
	}
	m.allocs = append(m.allocs, p)
	m.bytes += int64(4 * len(s))
	return buffer{p, len(s)}, m.dev.drv.HtoD(p, f32Bytes(s))
}

// Bytes is the device memory the weights take.
func (m *Model) Bytes() int64 { return m.bytes }

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Close frees the weights.
func (m *Model) Close() error {
	var errs []error
	m.dev.do(func() error { //nolint:errcheck // errors are collected
		for _, p := range m.allocs {
			errs = append(errs, m.dev.drv.Free(p))
		}
		return nil
	})
	m.allocs = nil
	return errors.Join(errs...)
}

// f32Bytes views a float32 slice as bytes, without copying.
func f32Bytes(s []float32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 4*len(s))
}

// i32Bytes views an int32 slice as bytes, without copying.
func i32Bytes(s []int32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 4*len(s))
}
