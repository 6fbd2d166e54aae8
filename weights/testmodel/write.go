package testmodel

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/x448/float16"
)

// Write writes the checkpoint spec describes into dir, creating dir when
// needed and replacing files of the same names: same spec, same bytes.
func Write(dir string, spec Spec) error {
	if err := spec.validate(); err != nil {
		return err
	}
	vocab, err := vocabularyOf(spec.Vocab)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testmodel: %w", err)
	}
	if err := writeSafetensors(filepath.Join(dir, "model.safetensors"), layout(spec), spec.Seed); err != nil {
		return fmt.Errorf("testmodel: %w", err)
	}
	files := map[string][]byte{"config.json": configJSON(spec)}
	if spec.Tokenizer != NoTokenizer {
		files["vocab.json"], files["merges.txt"] = vocab.vocabJSON, vocab.mergesTXT
	}
	if spec.Tokenizer == AllTokenizerFiles {
		files["tokenizer.json"] = tokenizerJSON(vocab, spec.Merges)
		files["tokenizer_config.json"] = indentJSON(map[string]any{
			"add_prefix_space": false, "bos_token": eotText, "eos_token": eotText, "unk_token": eotText,
			"model_max_length": spec.Positions, "tokenizer_class": "GPT2Tokenizer"})
		files["special_tokens_map.json"] = indentJSON(map[string]any{
			"bos_token": eotText, "eos_token": eotText, "unk_token": eotText})
	}
	files["testmodel.json"] = indentJSON(struct {
		Generator string `json:"generator"`
		Spec      Spec   `json:"spec"`
	}{"github.com/logitlens/logitlens/weights/testmodel", spec})
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("testmodel: %w", err)
		}
	}
	return nil
}

// fileNames lists the files Write writes for spec.
func fileNames(spec Spec) []string {
	names := []string{"config.json", "model.safetensors", "testmodel.json"}
	switch spec.Tokenizer {
	case AllTokenizerFiles:
		names = append(names, "merges.txt", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.json")
	case VocabMerges:
		names = append(names, "merges.txt", "vocab.json")
	}
	return names
}

// tensor is one stored tensor: its name in the file, shape, dtype and
// values. Random values come from the streams of key (lm_head.weight reuses
// wte's); fill gives the values of the buffers.
type tensor struct {
	name      string
	shape     []int
	dtype     string // F32, F16 or BF16
	key       string
	mean, std float64
	fill      func(i int) float32
	offset    int // of its data, from the end of the header
}

func (t *tensor) len() int {
	n := 1
	for _, d := range t.shape {
		n *= d
	}
	return n
}

func (t *tensor) size() int {
	if t.dtype == "F32" {
		return 4 * t.len()
	}
	return 2 * t.len()
}

// layout lists the tensors of spec in file order, which is the order of
// Hugging Face's gpt2 checkpoints (the reference generator's): wte, wpe,
// each block's twelve tensors (its buffers after attn.c_proj.bias), ln_f,
// then lm_head.
func layout(spec Spec) []*tensor {
	L, C, P, V := spec.Layers, spec.Embd, spec.Positions, spec.Vocab
	in := spec.Init
	proj := in.Std / math.Sqrt(float64(2*L))
	random := func(name string, mean, std float64, shape ...int) *tensor {
		return &tensor{name: name, shape: shape, key: name, mean: mean, std: std}
	}
	weights := []*tensor{random("wte.weight", 0, in.WteStd, V, C), random("wpe.weight", 0, in.WpeStd, P, C)}
	for i := range L {
		h := "h." + strconv.Itoa(i) + "."
		weights = append(weights,
			random(h+"ln_1.weight", 1, 0.2, C),
			random(h+"ln_1.bias", 0, 0.2, C),
			random(h+"attn.c_attn.weight", 0, in.Std, C, 3*C),
			random(h+"attn.c_attn.bias", 0, in.BiasStd, 3*C),
			random(h+"attn.c_proj.weight", 0, proj, C, C),
			random(h+"attn.c_proj.bias", 0, in.BiasStd, C),
			random(h+"ln_2.weight", 1, 0.2, C),
			random(h+"ln_2.bias", 0, 0.2, C),
			random(h+"mlp.c_fc.weight", 0, in.Std, C, 4*C),
			random(h+"mlp.c_fc.bias", 0, in.BiasStd, 4*C),
			random(h+"mlp.c_proj.weight", 0, proj, 4*C, C),
			random(h+"mlp.c_proj.bias", 0, in.BiasStd, C),
		)
	}
	weights = append(weights, random("ln_f.weight", 1, 0.2, C), random("ln_f.bias", 0, 0.2, C))

	cycle := [3]string{"F32", "F16", "BF16"}
	var out []*tensor
	for i, w := range weights {
		switch {
		case spec.Dtype == F16:
			w.dtype = "F16"
		case spec.Dtype == BF16:
			w.dtype = "BF16"
		case spec.Dtype == Mixed && w.name == "wte.weight":
			w.dtype = "BF16"
		case spec.Dtype == Mixed:
			w.dtype = cycle[i%3]
		default:
			w.dtype = "F32"
		}
		block, isAttnOut := strings.CutSuffix(w.name, "attn.c_proj.bias")
		w.name = spec.Prefix + w.name
		out = append(out, w)
		if !isAttnOut {
			continue
		}
		if spec.AttnBiasBuffers {
			out = append(out, &tensor{name: spec.Prefix + block + "attn.bias", shape: []int{1, 1, P, P}, dtype: "F32",
				fill: func(i int) float32 { return float32(b2i(i%P <= i/P)) }})
		}
		if spec.MaskedBias {
			out = append(out, &tensor{name: spec.Prefix + block + "attn.masked_bias", shape: []int{}, dtype: "F32",
				fill: func(int) float32 { return -1e4 }})
		}
	}
	if spec.StoreLMHead {
		wte := out[0]
		out = append(out, &tensor{name: "lm_head.weight", shape: wte.shape, dtype: wte.dtype, key: wte.key, std: wte.std})
	}
	off := 0
	for _, t := range out {
		t.offset = off
		off += t.size()
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// header is the safetensors header: its JSON (compact, tensors in data
// order, padded with spaces to a multiple of 8 so the data is aligned)
// after its little-endian u64 length.
func header(tensors []*tensor) []byte {
	var b bytes.Buffer
	b.WriteString(`{"__metadata__":{"format":"pt"}`)
	for _, t := range tensors {
		shape, _ := json.Marshal(t.shape)
		fmt.Fprintf(&b, `,%q:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, t.name, t.dtype, shape, t.offset, t.offset+t.size())
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(b.Len()))
	return append(out, b.Bytes()...)
}

// runLen is the number of values drawn from one random stream: the unit
// of parallel work.
const runLen = 1 << 16

// writeSafetensors writes the tensors to path, drawing and encoding runs of
// values on every CPU; each run lands at its own offset, so the bytes do not
// depend on the order the runs finish in.
func writeSafetensors(path string, tensors []*tensor, seed uint64) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	head := header(tensors)
	if _, err := f.Write(head); err != nil {
		return err
	}
	type run struct {
		t     *tensor
		index int
	}
	var runs []run
	for _, t := range tensors {
		for i := 0; i*runLen < t.len(); i++ {
			runs = append(runs, run{t, i})
		}
	}
	work := make(chan run)
	errs := make([]error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			values := make([]float32, runLen)
			buf := make([]byte, 4*runLen)
			for r := range work {
				if errs[w] != nil {
					continue
				}
				start := r.index * runLen
				v := values[:min(runLen, r.t.len()-start)]
				if r.t.fill != nil {
					for i := range v {
						v[i] = r.t.fill(start + i)
					}
				} else {
					draw(v, seed, r.t.key, r.index, r.t.mean, r.t.std)
				}
				at := len(head) + r.t.offset + start*(r.t.size()/r.t.len())
				_, errs[w] = f.WriteAt(encode(buf, v, r.t.dtype), int64(at))
			}
		})
	}
	for _, r := range runs {
		work <- r
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// zScale turns a centred sum of four uniform 32-bit integers into a
// variable of unit variance: each has variance (2⁶⁴−1)/12, so the sum's
// standard deviation is √((2⁶⁴−1)/3) ≈ 2³²/√3.
var zScale = math.Sqrt(3) / (1 << 32)

// draw fills v with mean + std·z, z of unit variance drawn from the stream
// of (seed, key, run). Each float64 step rounds once and explicitly (the
// conversions forbid fused multiply-adds), so every platform gets the same
// float32s.
func draw(v []float32, seed uint64, key string, run int, mean, std float64) {
	src := rand.NewPCG(streamSeeds(seed, key, run))
	const centre = 2 * (1<<32 - 1)
	for i := range v {
		a, b := src.Uint64(), src.Uint64()
		s := int64(a>>32) + int64(a&math.MaxUint32) + int64(b>>32) + int64(b&math.MaxUint32) - centre
		z := float64(s) * zScale
		v[i] = float32(mean + float64(std*z))
	}
}

// streamSeeds derives the two PCG seeds of one run of a tensor's values
// through splitmix64's finaliser, so that neighbouring seeds and runs give
// unrelated streams.
func streamSeeds(seed uint64, key string, run int) (uint64, uint64) {
	h := fnv.New64a()
	h.Write([]byte(key))
	k := mix(h.Sum64())
	return mix(seed ^ k), mix(k ^ mix(uint64(run)+0x9e3779b97f4a7c15))
}

func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// encode writes v into buf as little-endian dtype values and returns the
// bytes written. F16 and BF16 round to nearest even.
func encode(buf []byte, v []float32, dtype string) []byte {
	switch dtype {
	case "F16":
		for i, x := range v {
			binary.LittleEndian.PutUint16(buf[2*i:], float16.Fromfloat32(x).Bits())
		}
		return buf[:2*len(v)]
	case "BF16":
		for i, x := range v {
			binary.LittleEndian.PutUint16(buf[2*i:], bf16(x))
		}
		return buf[:2*len(v)]
	default:
		for i, x := range v {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
		}
		return buf[:4*len(v)]
	}
}

// bf16 rounds a finite float32 to bfloat16, to nearest even.
func bf16(x float32) uint16 {
	u := math.Float32bits(x)
	return uint16((uint64(u) + 0x7fff + uint64(u>>16&1)) >> 16)
}

// configJSON is the Hugging Face config.json of a gpt2 model of spec's
// shape, as transformers writes it.
func configJSON(spec Spec) []byte {
	eot := spec.Vocab - 1
	torchDtype := map[Dtype]string{F32: "float32", F16: "float16", BF16: "bfloat16", Mixed: "float32"}[spec.Dtype]
	return indentJSON(struct {
		ActivationFunction  string                    `json:"activation_function"`
		Architectures       []string                  `json:"architectures"`
		AttnPdrop           float64                   `json:"attn_pdrop"`
		BOSTokenID          int                       `json:"bos_token_id"`
		EmbdPdrop           float64                   `json:"embd_pdrop"`
		EOSTokenID          int                       `json:"eos_token_id"`
		InitializerRange    float64                   `json:"initializer_range"`
		LayerNormEpsilon    float64                   `json:"layer_norm_epsilon"`
		ModelType           string                    `json:"model_type"`
		NCtx                int                       `json:"n_ctx"`
		NEmbd               int                       `json:"n_embd"`
		NHead               int                       `json:"n_head"`
		NLayer              int                       `json:"n_layer"`
		NPositions          int                       `json:"n_positions"`
		ResidPdrop          float64                   `json:"resid_pdrop"`
		SummaryActivation   *string                   `json:"summary_activation"`
		SummaryFirstDropout float64                   `json:"summary_first_dropout"`
		SummaryProjToLabels bool                      `json:"summary_proj_to_labels"`
		SummaryType         string                    `json:"summary_type"`
		SummaryUseProj      bool                      `json:"summary_use_proj"`
		TaskSpecificParams  map[string]map[string]any `json:"task_specific_params"`
		TorchDtype          string                    `json:"torch_dtype"`
		VocabSize           int                       `json:"vocab_size"`
	}{
		"gelu_new", []string{"GPT2LMHeadModel"}, 0.1, eot, 0.1, eot, 0.02, 1e-5, "gpt2",
		spec.Positions, spec.Embd, spec.Heads, spec.Layers, spec.Positions, 0.1, nil, 0.1, true, "cls_index", true,
		map[string]map[string]any{"text-generation": {"do_sample": true, "max_length": 50}},
		torchDtype, spec.Vocab,
	})
}

// indentJSON encodes v with two-space indents, non-ASCII and <, >, & as
// they are, and a final newline.
func indentJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		panic("testmodel: " + err.Error()) // only our own fixed types are encoded
	}
	return b.Bytes()
}
