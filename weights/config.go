package weights

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Defaults GPT2Config uses when config.json omits a field.
const (
	DefaultLayerNormEpsilon   = 1e-5
	DefaultActivationFunction = "gelu_new"
)

// maxConfigSize bounds every size in config.json so that products such as
// 4·n_embd or vocab_size·n_embd cannot overflow an int.
const maxConfigSize = 1 << 24

// rawConfig is config.json as decoded; pointers tell absent from zero.
type rawConfig struct {
	ModelType                  *string  `json:"model_type"`
	Architectures              []string `json:"architectures"`
	NLayer                     *int     `json:"n_layer"`
	NEmbd                      *int     `json:"n_embd"`
	NHead                      *int     `json:"n_head"`
	NPositions                 *int     `json:"n_positions"`
	NCtx                       *int     `json:"n_ctx"`
	NInner                     *int     `json:"n_inner"`
	VocabSize                  *int     `json:"vocab_size"`
	LayerNormEpsilon           *float64 `json:"layer_norm_epsilon"`
	ActivationFunction         *string  `json:"activation_function"`
	ScaleAttnWeights           *bool    `json:"scale_attn_weights"`
	ScaleAttnByInverseLayerIdx *bool    `json:"scale_attn_by_inverse_layer_idx"`
	ReorderAndUpcastAttn       *bool    `json:"reorder_and_upcast_attn"`
	AddCrossAttention          *bool    `json:"add_cross_attention"`
}

// ParseConfig parses a Hugging Face config.json for GPT-2 (GPT2Config).
//
// Missing layer_norm_epsilon means 1e-5 and missing activation_function means
// "gelu_new". n_ctx is accepted for n_positions when the latter is absent.
// ActivationFunction is normalised to "gelu_new": "gelu_pytorch_tanh" is the
// same tanh approximation. Plain "gelu" (the exact erf form) is refused, as is
// anything else the forward pass does not implement: model_type other than
// gpt2, architectures other than GPT2LMHeadModel/GPT2Model, n_embd not a
// multiple of n_head, non-positive sizes, n_inner other than 4·n_embd,
// scale_attn_weights=false, scale_attn_by_inverse_layer_idx=true and
// add_cross_attention=true. reorder_and_upcast_attn only changes precision and
// is ignored. Errors name the field.
func ParseConfig(data []byte) (Config, error) {
	return parseConfig("config.json", data)
}

// LoadConfig reads and parses dir/config.json, which must be a regular
// file of at most MaxConfigFile bytes (see ReadFile).
func LoadConfig(dir string) (Config, error) {
	data, err := ReadFile(filepath.Join(dir, ConfigFile), MaxConfigFile)
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, fmt.Errorf("weights: %s: no config.json", safePath(dir))
	}
	if err != nil {
		return Config{}, fmt.Errorf("weights: %w", err)
	}
	return ParseConfig(data)
}

func parseConfig(name string, data []byte) (Config, error) {
	fail := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("weights: %s: "+format, append([]any{name}, args...)...)
	}
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fail("field %s: want %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return fail("invalid JSON: %v", err)
	}
	if r.ModelType == nil && r.Architectures == nil {
		return fail("model_type missing (want \"gpt2\")")
	}
	if r.ModelType != nil && *r.ModelType != "gpt2" {
		return fail("model_type %s is not supported (want \"gpt2\")", quote(*r.ModelType))
	}
	for _, a := range r.Architectures {
		if a != "GPT2LMHeadModel" && a != "GPT2Model" {
			return fail("architectures: %s is not supported (want GPT2LMHeadModel or GPT2Model)", quote(a))
		}
	}

	c := Config{LayerNormEpsilon: DefaultLayerNormEpsilon, ActivationFunction: DefaultActivationFunction}
	if r.NPositions == nil {
		r.NPositions = r.NCtx
	}
	for _, f := range []struct {
		name string
		src  *int
		dst  *int
	}{
		{"n_layer", r.NLayer, &c.NLayer},
		{"n_embd", r.NEmbd, &c.NEmbd},
		{"n_head", r.NHead, &c.NHead},
		{"n_positions", r.NPositions, &c.NPositions},
		{"vocab_size", r.VocabSize, &c.VocabSize},
	} {
		switch {
		case f.src == nil && f.name == "n_positions":
			return fail("n_positions missing (nor n_ctx)")
		case f.src == nil:
			return fail("%s missing", f.name)
		case *f.src <= 0:
			return fail("%s = %d, must be positive", f.name, *f.src)
		case *f.src > maxConfigSize:
			return fail("%s = %d is too large (limit %d)", f.name, *f.src, maxConfigSize)
		}
		*f.dst = *f.src
	}
	if c.NEmbd%c.NHead != 0 {
		return fail("n_embd %d is not a multiple of n_head %d", c.NEmbd, c.NHead)
	}
	if r.NInner != nil && *r.NInner != 4*c.NEmbd {
		return fail("n_inner = %d is not supported (want null or 4·n_embd = %d)", *r.NInner, 4*c.NEmbd)
	}
	if e := r.LayerNormEpsilon; e != nil {
		if !(*e > 0) || math.IsInf(*e, 0) {
			return fail("layer_norm_epsilon = %g, must be positive", *e)
		}
		c.LayerNormEpsilon = *e
	}
	if a := r.ActivationFunction; a != nil {
		switch *a {
		case "gelu_new", "gelu_pytorch_tanh":
		case "gelu":
			return fail("activation_function \"gelu\" (exact erf GELU) is not supported (want gelu_new or gelu_pytorch_tanh, the tanh form)")
		default:
			return fail("activation_function %s is not supported (want gelu_new or gelu_pytorch_tanh)", quote(*a))
		}
	}
	if r.ScaleAttnWeights != nil && !*r.ScaleAttnWeights {
		return fail("scale_attn_weights = false is not supported")
	}
	if r.ScaleAttnByInverseLayerIdx != nil && *r.ScaleAttnByInverseLayerIdx {
		return fail("scale_attn_by_inverse_layer_idx = true is not supported")
	}
	if r.AddCrossAttention != nil && *r.AddCrossAttention {
		return fail("add_cross_attention = true is not supported")
	}
	return c, nil
}

// HeadDim returns n_embd / n_head.
func (c Config) HeadDim() int { return c.NEmbd / c.NHead }

// CheckVocab reports whether a tokenizer with tokenizerSize ids fits the
// model: every id must index a row of wte, so tokenizerSize ≤ vocab_size
// (checkpoints may pad the vocabulary, never shrink it).
func (c Config) CheckVocab(tokenizerSize int) error {
	if tokenizerSize > c.VocabSize {
		return fmt.Errorf("weights: tokenizer has %d tokens but the model's vocab_size is %d", tokenizerSize, c.VocabSize)
	}
	return nil
}
