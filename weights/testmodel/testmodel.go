// Package testmodel writes deterministic random GPT-2 checkpoints in Hugging
// Face layout, for tests, benchmarks and the GPU check: config.json,
// model.safetensors and GPT-2's tokenizer files (vocab.json, merges.txt,
// tokenizer.json, tokenizer_config.json, special_tokens_map.json), plus
// testmodel.json recording the Spec.
//
// The same Spec gives the same bytes on every platform and Go version, so
// golden files computed by the independent reference over a generated
// checkpoint can pin it by sha256. To that end:
//
//   - every run of 65,536 values of a tensor draws from its own PCG-DXSM
//     stream (math/rand/v2's PCG, a fixed algorithm), seeded from the Spec's
//     seed, the tensor's name and the run's index, so tensors can be drawn in
//     parallel, in any order;
//   - a value is mean + std·z, where z is the sum of four uniform 32-bit
//     integers centred and scaled to unit variance (the Irwin–Hall
//     distribution: a bell curve with |z| ≤ 2√3). It needs integer sums, two
//     roundings and no transcendental function, whose last bit differs
//     between Go's assembly and pure-Go implementations;
//   - F16 and BF16 tensors round those float32 values to nearest even.
//
// The layout and the initialisation follow the reference generator
// (shared/reference/make_model.py) without reproducing numpy's random
// numbers: names as in Hugging Face's gpt2 checkpoints, Conv1D weights
// stored [in, out], lm_head tied to wte and not stored unless asked; c_attn
// and c_fc weights N(0, Std), both c_proj weights N(0, Std/√(2·n_layer))
// (GPT-2's rule), wte N(0, WteStd), wpe N(0, WpeStd), linear biases
// N(0, BiasStd), layer-norm gains 1 + N(0, 0.2) and biases N(0, 0.2).
//
// GPT-2's vocabulary and merges are the copy the built-in model embeds
// (weights/builtin), so vocab.json and merges.txt of a full-vocabulary
// checkpoint are byte for byte GPT-2's files.
package testmodel

import (
	"fmt"
	"math"
	"slices"
)

// Spec describes one checkpoint. Named gives the ones the tests use.
type Spec struct {
	Layers    int `json:"n_layer"`
	Embd      int `json:"n_embd"`
	Heads     int `json:"n_head"`
	Positions int `json:"n_positions"` // also n_ctx
	// Vocab is vocab_size. GPTVocab is GPT-2's whole vocabulary; a smaller
	// one keeps GPT-2's 256 byte tokens and its first Vocab−257 merges (ids
	// 256.. in merge order, as in GPT-2), with <|endoftext|> as the last id.
	Vocab int    `json:"vocab_size"`
	Init  Init   `json:"init"`
	Seed  uint64 `json:"seed"`
	Dtype Dtype  `json:"dtype"`
	// Prefix is prepended to every stored tensor name except
	// lm_head.weight, e.g. "transformer." as in some GPT2LMHeadModel exports.
	Prefix string `json:"prefix"`
	// AttnBiasBuffers adds h.N.attn.bias, the [1,1,P,P] F32 lower-triangular
	// causal mask that real Hugging Face gpt2 checkpoints carry.
	AttnBiasBuffers bool `json:"attn_bias_buffers"`
	// MaskedBias adds h.N.attn.masked_bias, a 0-d F32 tensor (−1e4).
	MaskedBias bool `json:"masked_bias"`
	// StoreLMHead also stores lm_head.weight, equal to wte, in wte's dtype.
	StoreLMHead bool           `json:"store_lm_head"`
	Merges      MergesFormat   `json:"merges_format"`
	Tokenizer   TokenizerFiles `json:"tokenizer_files"`
}

// Init gives the standard deviations of the random weights.
type Init struct {
	Std     float64 `json:"std"`      // c_attn and c_fc weights; both c_proj weights get Std/√(2·Layers)
	WteStd  float64 `json:"wte_std"`  // token embedding
	WpeStd  float64 `json:"wpe_std"`  // position embedding
	BiasStd float64 `json:"bias_std"` // every linear layer's bias
}

// Dtype is how tensors are stored.
type Dtype string

// The storage dtypes.
const (
	F32  Dtype = "f32"
	F16  Dtype = "f16"
	BF16 Dtype = "bf16"
	// Mixed cycles F32, F16, BF16 over the weights in file order, with wte
	// in BF16; the causal-mask buffers stay F32.
	Mixed Dtype = "mixed"
)

// MergesFormat is how tokenizer.json lists the merges.
type MergesFormat string

// The merge formats of tokenizer.json.
const (
	MergeStrings MergesFormat = "strings" // "Ġ t", as older tokenizers write them
	MergePairs   MergesFormat = "pairs"   // ["Ġ", "t"], as tokenizers ≥ 0.20 write them
)

// TokenizerFiles says which tokenizer files a checkpoint carries.
type TokenizerFiles string

// The tokenizer file sets.
const (
	// AllTokenizerFiles: vocab.json, merges.txt, tokenizer.json,
	// tokenizer_config.json, special_tokens_map.json.
	AllTokenizerFiles TokenizerFiles = "all"
	// VocabMerges: only vocab.json and merges.txt, as older checkpoints.
	VocabMerges TokenizerFiles = "vocab-merges"
	// NoTokenizer: no tokenizer file at all.
	NoTokenizer TokenizerFiles = "none"
)

// GPTVocab is the size of GPT-2's vocabulary: 256 byte tokens, 50,000
// merges and <|endoftext|>.
const GPTVocab = 50257

// minVocab holds the 256 byte tokens and <|endoftext|>.
const minVocab = 257

var (
	// peaked is the reference's tiny init: far larger than GPT-2's so that
	// attention is far from uniform and lens distributions are peaked; at
	// GPT-2's 0.02 and 64 wide every softmax is nearly flat and layout or
	// scale bugs hide in the noise.
	peaked = Init{Std: 0.2, WteStd: 0.35, WpeStd: 0.2, BiasStd: 0.1}
	// gpt2Init is GPT-2's init rule (0.02), for speed-shaped checkpoints.
	gpt2Init = Init{Std: 0.02, WteStd: 0.1, WpeStd: 0.05, BiasStd: 0.05}
	// peakedXL is peaked scaled by √(64/1600) to GPT-2 xl's width, so
	// pre-activations and logits have the tiny model's scale (|x|·√C·std)
	// and its lens stays as peaked. Biases do not scale with the width.
	peakedXL = Init{Std: 0.04, WteStd: 0.07, WpeStd: 0.04, BiasStd: 0.1}
)

// tiny is the reference's tiny size with the peaked init and every
// tokenizer file.
func tiny(seed uint64) Spec {
	return Spec{Layers: 2, Embd: 64, Heads: 4, Positions: 128, Vocab: GPTVocab, Init: peaked, Seed: seed,
		Dtype: F32, Merges: MergeStrings, Tokenizer: AllTokenizerFiles}
}

// with returns s changed by f.
func with(s Spec, f func(*Spec)) Spec { f(&s); return s }

// named are the checkpoints the tests use, by name.
var named = map[string]Spec{
	"tiny-f32":    tiny(7),
	"tiny-seed11": tiny(11),
	"tiny-f16":    with(tiny(7), func(s *Spec) { s.Dtype = F16 }),
	"tiny-bf16":   with(tiny(7), func(s *Spec) { s.Dtype = BF16 }),
	"tiny-mixed":  with(tiny(7), func(s *Spec) { s.Dtype = Mixed }),
	"tiny-prefix": with(tiny(7), func(s *Spec) {
		s.Prefix, s.AttnBiasBuffers, s.MaskedBias = "transformer.", true, true
	}),
	"tiny-lmhead":      with(tiny(7), func(s *Spec) { s.StoreLMHead = true }),
	"tiny-pairs":       with(tiny(7), func(s *Spec) { s.Merges = MergePairs }),
	"tiny-vocabmerges": with(tiny(7), func(s *Spec) { s.Tokenizer = VocabMerges }),
	// GPT-2 small's shape with GPT-2's init: for speed, and for loading a
	// full-size file.
	"small-shape": {Layers: 12, Embd: 768, Heads: 12, Positions: 1024, Vocab: GPTVocab, Init: gpt2Init, Seed: 1,
		Dtype: F32, Merges: MergeStrings, Tokenizer: AllTokenizerFiles},
	// GPT-2 xl's geometry (1600 wide, 25 heads of 64, 1024 positions) in
	// one layer, with a vocabulary of 999 ids: odd like GPT-2's 50257, so no
	// kernel can lean on a power of two, and small enough that the file is
	// ~130 MB.
	"xl-1layer": {Layers: 1, Embd: 1600, Heads: 25, Positions: 1024, Vocab: 999, Init: peakedXL, Seed: 7,
		Dtype: F32, Merges: MergeStrings, Tokenizer: AllTokenizerFiles},
}

// Named returns the spec of a named test checkpoint (see Names).
func Named(name string) (Spec, bool) {
	s, ok := named[name]
	return s, ok
}

// Names lists the named test checkpoints, sorted.
func Names() []string {
	names := make([]string, 0, len(named))
	for n := range named {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// validate reports a spec that cannot make a loadable checkpoint.
func (s Spec) validate() error {
	switch {
	case s.Layers < 1 || s.Embd < 1 || s.Heads < 1 || s.Positions < 1:
		return fmt.Errorf("testmodel: layers, width, heads and positions must be positive: %+v", s)
	case s.Embd%s.Heads != 0:
		return fmt.Errorf("testmodel: width %d is not a multiple of %d heads", s.Embd, s.Heads)
	case s.Vocab < minVocab || s.Vocab > GPTVocab:
		return fmt.Errorf("testmodel: vocabulary of %d: want %d..%d", s.Vocab, minVocab, GPTVocab)
	case !slices.Contains([]Dtype{F32, F16, BF16, Mixed}, s.Dtype):
		return fmt.Errorf("testmodel: unknown dtype %q", s.Dtype)
	case !slices.Contains([]MergesFormat{MergeStrings, MergePairs}, s.Merges):
		return fmt.Errorf("testmodel: unknown merges format %q", s.Merges)
	case !slices.Contains([]TokenizerFiles{AllTokenizerFiles, VocabMerges, NoTokenizer}, s.Tokenizer):
		return fmt.Errorf("testmodel: unknown tokenizer file set %q", s.Tokenizer)
	}
	for _, v := range []float64{s.Init.Std, s.Init.WteStd, s.Init.WpeStd, s.Init.BiasStd} {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("testmodel: init %+v: standard deviations must be finite and ≥ 0", s.Init)
		}
	}
	return nil
}
