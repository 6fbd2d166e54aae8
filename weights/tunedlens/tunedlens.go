// Package tunedlens reads and writes tuned lenses (Belrose et al. 2023,
// "Eliciting Latent Predictions from Transformers with the Tuned Lens") in
// the layout of the tuned-lens package (github.com/AlignmentResearch/tuned-lens):
// a folder with
//
//   - config.json: TunedLensConfig — base_model_name_or_path, d_model,
//     num_hidden_layers, bias, base_model_revision, unembed_hash, lens_type
//     ("linear_tuned_lens");
//   - params.pt: torch.save of the translators' state dict, "<i>.weight"
//     [d,d] and "<i>.bias" [d] for i = 0..num_hidden_layers-1 (keys may carry
//     a "layer_translators." prefix; other keys, such as the unembed.* of
//     older files, are ignored). F32, F16, BF16 and F64 storages; the zip
//     and the legacy layout of torch.save.
//
// The lens of layer l < L decodes ln_f(h + h·W_lᵀ + b_l) instead of
// ln_f(h): the translator is added residually, as the package does, so a
// zero translator is the logit lens. The output row L has no translator.
//
// A params.pt is a pickle, which in Python can run arbitrary code; here it
// is read as hostile data (see pickle.go): only the names a state dict of
// tensors needs are allowed, every size is checked against the file, and
// only the tensors of the translators are read. Write produces files that
// torch.load and the package's TunedLens.from_unembed_and_pretrained read.
package tunedlens

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights"
)

// LensType is the only lens_type this package reads and writes: an affine
// translator per layer.
const LensType = "linear_tuned_lens"

// Config is config.json of a tuned lens, the package's TunedLensConfig.
type Config struct {
	BaseModel         string  `json:"base_model_name_or_path"`
	DModel            int     `json:"d_model"`
	NumHiddenLayers   int     `json:"num_hidden_layers"`
	Bias              bool    `json:"bias"`
	BaseModelRevision *string `json:"base_model_revision"`
	UnembedHash       *string `json:"unembed_hash"` // see UnembedHash; nil when unknown
	LensType          string  `json:"lens_type"`
}

// Translator is one layer's affine map, applied as h + h·Weightᵀ + Bias
// (torch.nn.Linear's layout: Weight is [out, in] = [d, d], row-major).
type Translator struct {
	Weight []float32 // [d,d]
	Bias   []float32 // [d]; nil for a lens without bias
}

// Lens is a tuned lens: one translator per layer 0..L-1.
type Lens struct {
	Config      Config
	Translators []Translator
	// Source says where the lens came from, for status lines and exports
	// (Source.String: "published", a folder, REPO/FOLDER, "built-in");
	// set by whoever loaded it.
	Source string
	// Note is a warning about the lens for whoever shows it (HashWarning's,
	// for one); set by whoever loaded it.
	Note string
}

// ParseConfig parses config.json as TunedLensConfig.from_dict does: unknown
// fields are ignored, bias defaults to true and lens_type to
// "linear_tuned_lens"; base_model_name_or_path, d_model and
// num_hidden_layers are required, and another lens_type is refused.
func ParseConfig(data []byte) (Config, error) {
	var raw struct {
		Config
		Bias     *bool   `json:"bias"`
		LensType *string `json:"lens_type"`
		DModel   *int    `json:"d_model"`
		Layers   *int    `json:"num_hidden_layers"`
		Base     *string `json:"base_model_name_or_path"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("config.json: %s", display.Safe(err.Error()))
	}
	c := raw.Config
	switch {
	case raw.Base == nil:
		return Config{}, errors.New("config.json: no base_model_name_or_path")
	case raw.DModel == nil:
		return Config{}, errors.New("config.json: no d_model")
	case raw.Layers == nil:
		return Config{}, errors.New("config.json: no num_hidden_layers")
	case *raw.DModel < 1 || *raw.DModel > 1<<16:
		return Config{}, fmt.Errorf("config.json: d_model %d is outside 1..65536", *raw.DModel)
	case *raw.Layers < 1 || *raw.Layers > 1<<12:
		return Config{}, fmt.Errorf("config.json: num_hidden_layers %d is outside 1..4096", *raw.Layers)
	}
	c.BaseModel, c.DModel, c.NumHiddenLayers = *raw.Base, *raw.DModel, *raw.Layers
	c.Bias = raw.Bias == nil || *raw.Bias
	c.LensType = LensType
	if raw.LensType != nil && *raw.LensType != LensType {
		return Config{}, fmt.Errorf("config.json: lens_type %q: only %q lenses can be read", display.Safe(*raw.LensType), LensType)
	}
	return c, nil
}

// MismatchError says that a lens was made for a model of another shape.
type MismatchError struct {
	LensDModel, LensLayers   int
	ModelDModel, ModelLayers int
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("the lens is for a model with d_model %d and %d layers, but this model has d_model %d and %d layers",
		e.LensDModel, e.LensLayers, e.ModelDModel, e.ModelLayers)
}

// Check refuses a lens whose d_model or num_hidden_layers differ from the
// model's.
func (c Config) Check(dModel, nLayer int) error {
	if c.DModel != dModel || c.NumHiddenLayers != nLayer {
		return &MismatchError{c.DModel, c.NumHiddenLayers, dModel, nLayer}
	}
	return nil
}

// Load reads the tuned lens in dir (config.json and params.pt) for a model
// of width dModel with nLayer layers: the lens must match both. Files are
// opened as weights.OpenFile does (regular files only, never blocking).
func Load(dir string, dModel, nLayer int) (*Lens, error) {
	data, err := weights.ReadFile(filepath.Join(dir, "config.json"), weights.MaxConfigFile)
	if err != nil {
		return nil, fmt.Errorf("tunedlens: %w", err)
	}
	path := filepath.Join(dir, "params.pt")
	return parse(dir, path, data, func() (io.ReaderAt, int64, func() error, error) {
		f, st, err := weights.OpenFile(path)
		if err != nil {
			return nil, 0, nil, err
		}
		return f, st.Size(), f.Close, nil
	}, dModel, nLayer)
}

// LoadFS reads a tuned lens from the root of fsys (config.json and
// params.pt), as Load does: for a lens embedded in the binary. name names
// the lens in errors.
func LoadFS(fsys fs.FS, name string, dModel, nLayer int) (*Lens, error) {
	cf, err := fsys.Open("config.json")
	if err != nil {
		return nil, fmt.Errorf("tunedlens: %s: %w", display.Safe(name), err)
	}
	data, err := io.ReadAll(io.LimitReader(cf, weights.MaxConfigFile+1))
	cf.Close()
	switch {
	case err != nil:
		return nil, fmt.Errorf("tunedlens: %s: config.json: %w", display.Safe(name), err)
	case len(data) > weights.MaxConfigFile:
		return nil, fmt.Errorf("tunedlens: %s: config.json is over %d bytes", display.Safe(name), weights.MaxConfigFile)
	}
	return parse(name, name+"/params.pt", data, func() (io.ReaderAt, int64, func() error, error) {
		f, err := fsys.Open("params.pt")
		if err != nil {
			return nil, 0, nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, nil, err
		}
		if r, ok := f.(io.ReaderAt); ok { // embed's and os's files
			return r, st.Size(), f.Close, nil
		}
		f.Close()
		return nil, 0, nil, fmt.Errorf("params.pt: %T cannot be read at offsets", f)
	}, dModel, nLayer)
}

// parse checks config.json (named by dir in errors) against the model's
// shape before opening params.pt (named by path), then reads the
// translators.
func parse(dir, path string, config []byte, open func() (io.ReaderAt, int64, func() error, error), dModel, nLayer int) (*Lens, error) {
	fail := func(err error) (*Lens, error) {
		return nil, fmt.Errorf("tunedlens: %w", err)
	}
	cfg, err := ParseConfig(config)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", display.Safe(dir), err))
	}
	if err := cfg.Check(dModel, nLayer); err != nil {
		return fail(fmt.Errorf("%s: %w", display.Safe(dir), err))
	}
	r, size, done, err := open()
	if err != nil {
		return fail(err)
	}
	defer done()
	ts, err := readParams(r, size, dModel, nLayer, cfg.Bias)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", display.Safe(path), err))
	}
	return &Lens{Config: cfg, Translators: ts}, nil
}

// Identity returns a lens of zero translators for a model of width d with
// nLayer layers: the logit lens, and where training starts.
func Identity(baseModel string, d, nLayer int, bias bool) *Lens {
	l := &Lens{Config: Config{BaseModel: baseModel, DModel: d, NumHiddenLayers: nLayer, Bias: bias, LensType: LensType}}
	l.Translators = make([]Translator, nLayer)
	for i := range l.Translators {
		l.Translators[i].Weight = make([]float32, d*d)
		if bias {
			l.Translators[i].Bias = make([]float32, d)
		}
	}
	return l
}

// Validate checks that the lens's translators have the shapes its config
// announces and hold finite numbers.
func (l *Lens) Validate() error {
	d, L := l.Config.DModel, l.Config.NumHiddenLayers
	if len(l.Translators) != L {
		return fmt.Errorf("tunedlens: %d translators for %d layers", len(l.Translators), L)
	}
	for i, t := range l.Translators {
		if len(t.Weight) != d*d {
			return fmt.Errorf("tunedlens: translator %d: weight has %d values, want %d×%d", i, len(t.Weight), d, d)
		}
		if want := map[bool]int{true: d, false: 0}[l.Config.Bias]; len(t.Bias) != want {
			return fmt.Errorf("tunedlens: translator %d: bias has %d values, want %d", i, len(t.Bias), want)
		}
		if j := firstNonFinite(t.Weight); j >= 0 {
			return fmt.Errorf("tunedlens: translator %d: weight holds %v", i, t.Weight[j])
		}
		if j := firstNonFinite(t.Bias); j >= 0 {
			return fmt.Errorf("tunedlens: translator %d: bias holds %v", i, t.Bias[j])
		}
	}
	return nil
}

// firstNonFinite returns the index of the first NaN or ±Inf in x, or -1.
func firstNonFinite(x []float32) int {
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return i
		}
	}
	return -1
}
