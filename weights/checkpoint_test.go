package weights

// The golden files under testdata/golden/ are computed independently of this
// package by weights/testdata/safetensors_stats.py (json + numpy only) over
// the checkpoints weights/testmodel generates; tools/goldens/regen.sh
// rewrites them. Each names the sha256 of the model.safetensors it was
// computed on, so a changed generator fails with that hint instead of a
// confusing numeric difference.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"unsafe"

	"github.com/x448/float16"

	"github.com/logitlens/logitlens/weights/testmodel"
)

type goldenTensor struct {
	Name, Dtype        string
	Shape              []int
	Sum, Sumsq, Sumabs float64
	Samples            [][2]float64 // [flat index, value]
}

type golden struct {
	Command string
	SHA256  string `json:"model.safetensors_sha256"`
	Tensors []goldenTensor
}

func readGolden(t *testing.T, fixture string) golden {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden", fixture+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// stats returns Σx, Σx², Σ|x| in float64 with Neumaier compensation, so the
// result is within a few ulps of Python's exactly rounded math.fsum.
func stats(x []float32) (sum, sumsq, sumabs float64) {
	var s, c neumaier
	var q, cq, a, ca neumaier
	for _, v := range x {
		f := float64(v)
		s, c = s.add(c, f)
		q, cq = q.add(cq, f*f)
		a, ca = a.add(ca, abs(f))
	}
	return float64(s + c), float64(q + cq), float64(a + ca)
}

// abs is math.Abs without its unsafe bit cast, which -race's checkptr
// instrumentation makes 20× slower over GPT-2 small's 124M values.
func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

type neumaier float64

// add returns s+x and the updated compensation c.
func (s neumaier) add(c neumaier, x float64) (neumaier, neumaier) {
	t := float64(s) + x
	if abs(float64(s)) >= abs(x) {
		c += neumaier((float64(s) - t) + x)
	} else {
		c += neumaier((x - t) + float64(s))
	}
	return neumaier(t), c
}

// checkGolden compares data with g: shape, exact samples, sums to 1e-12
// relative to Σ|x| (Σx² to 1e-12 of itself).
func checkGolden(t *testing.T, g goldenTensor, shape []int, data []float32) {
	t.Helper()
	if fmt.Sprint(shape) != fmt.Sprint(g.Shape) {
		t.Errorf("%s: shape %v, golden %v", g.Name, shape, g.Shape)
		return
	}
	n := 1
	for _, d := range g.Shape {
		n *= d
	}
	if len(data) != n {
		t.Errorf("%s: %d values, golden shape needs %d", g.Name, len(data), n)
		return
	}
	for _, s := range g.Samples {
		i := int(s[0])
		if float64(data[i]) != s[1] {
			t.Errorf("%s[%d] = %v, golden %v", g.Name, i, data[i], s[1])
		}
	}
	sum, sumsq, sumabs := stats(data)
	tol := 1e-12 * (g.Sumabs + 1e-30)
	if math.Abs(sum-g.Sum) > tol || math.Abs(sumabs-g.Sumabs) > tol || math.Abs(sumsq-g.Sumsq) > 1e-12*(g.Sumsq+1e-30) {
		t.Errorf("%s: sums %v %v %v, golden %v %v %v (max diff %.3g)", g.Name, sum, sumsq, sumabs, g.Sum, g.Sumsq, g.Sumabs,
			math.Max(math.Abs(sum-g.Sum), math.Max(math.Abs(sumsq-g.Sumsq), math.Abs(sumabs-g.Sumabs))))
	}
}

// TestGoldens checks every fixture variant against the independent numpy
// reading: the raw file through OpenSafetensors (every stored tensor, the
// skipped buffers included), and the canonical tensors of OpenCheckpoint.
func TestGoldens(t *testing.T) {
	for _, fixture := range []string{"tiny-f32", "tiny-f16", "tiny-bf16", "tiny-mixed", "tiny-prefix", "tiny-lmhead", "small-shape"} {
		t.Run(fixture, func(t *testing.T) {
			dir := testmodel.Dir(t, fixture)
			g := readGolden(t, fixture)
			testmodel.CheckPin(t, fixture, "weights/testdata/golden/"+fixture+".json", g.SHA256)
			path := filepath.Join(dir, "model.safetensors")
			f, err := OpenSafetensors(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if len(f.Entries) != len(g.Tensors) {
				t.Errorf("%d tensors, golden %d", len(f.Entries), len(g.Tensors))
			}
			c, err := OpenCheckpoint(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			canonical := 0
			for _, gt := range g.Tensors {
				e, ok := f.Entry(gt.Name)
				if !ok {
					t.Errorf("no tensor %q", gt.Name)
					continue
				}
				if e.Dtype != gt.Dtype {
					t.Errorf("%s: dtype %s, golden %s", gt.Name, e.Dtype, gt.Dtype)
				}
				name := strings.TrimPrefix(gt.Name, "transformer.")
				if strings.HasSuffix(name, "attn.bias") && !strings.HasSuffix(name, "c_attn.bias") || strings.HasSuffix(name, "masked_bias") {
					// Skipped by the checkpoint: check the raw reader on it.
					data, err := f.Float32(e)
					if err != nil {
						t.Fatal(err)
					}
					checkGolden(t, gt, e.Shape, data)
					if c.Tensor(name) != nil {
						t.Errorf("buffer %s was loaded", name)
					}
					continue
				}
				if name == "lm_head.weight" { // stored equal to wte: tied
					if c.Tensor(name) != nil || c.LMHead() != c.Tensor("wte.weight") {
						t.Errorf("lm_head equal to wte is not treated as tied")
					}
					checkGolden(t, gt, c.LMHead().Shape, c.LMHead().Data)
					continue
				}
				canonical++
				ct := c.Tensor(name)
				if ct == nil || ct.Name != name {
					t.Errorf("checkpoint has no tensor %q", name)
					continue
				}
				checkGolden(t, gt, ct.Shape, ct.Data)
			}
			if len(c.Names()) != canonical || canonical != 4+12*c.Config.NLayer {
				t.Errorf("checkpoint has %d tensors, golden %d canonical, GPT-2 needs %d", len(c.Names()), canonical, 4+12*c.Config.NLayer)
			}
		})
	}
}

// The shape of small-shape is GPT-2 small's, written out here by hand.
func TestSmallShape(t *testing.T) {
	c, err := OpenCheckpoint(testmodel.Dir(t, "small-shape"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := Config{NLayer: 12, NEmbd: 768, NHead: 12, NPositions: 1024, VocabSize: 50257, LayerNormEpsilon: 1e-5, ActivationFunction: "gelu_new"}
	if c.Config != want {
		t.Errorf("config %+v", c.Config)
	}
	for name, shape := range map[string]string{
		"wte.weight": "[50257 768]", "wpe.weight": "[1024 768]", "h.11.attn.c_attn.weight": "[768 2304]",
		"h.0.attn.c_attn.bias": "[2304]", "h.5.mlp.c_fc.weight": "[768 3072]", "h.5.mlp.c_proj.weight": "[3072 768]",
		"h.11.ln_2.bias": "[768]", "ln_f.weight": "[768]",
	} {
		if tt := c.Tensor(name); tt == nil || fmt.Sprint(tt.Shape) != shape || len(tt.Data) != numel(tt.Shape) {
			t.Errorf("%s: %+v, want shape %s", name, tt, shape)
		}
	}
	if c.Tensor("h.12.ln_1.weight") != nil || c.Tensor("lm_head.weight") != nil {
		t.Error("unexpected tensor")
	}
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// roundBF16 rounds to bfloat16, nearest even, as the generator does.
func roundBF16(x float32) float32 {
	u := math.Float32bits(x)
	u = (u + 0x7fff + (u>>16)&1) &^ 0xffff
	return math.Float32frombits(u)
}

// The variants are one model stored differently: their canonical tensors must
// match tiny-f32 exactly, after the same rounding for F16/BF16.
func TestFixtureVariantsAgree(t *testing.T) {
	ref, err := OpenCheckpoint(testmodel.Dir(t, "tiny-f32"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	round := map[string]func(float32) float32{
		"F32":  func(x float32) float32 { return x },
		"F16":  func(x float32) float32 { return float16.Fromfloat32(x).Float32() },
		"BF16": roundBF16,
	}
	for _, variant := range []string{"tiny-f16", "tiny-bf16", "tiny-mixed", "tiny-prefix", "tiny-lmhead"} {
		t.Run(variant, func(t *testing.T) {
			dir := testmodel.Dir(t, variant)
			raw, err := OpenSafetensors(filepath.Join(dir, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			c, err := OpenCheckpoint(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Config != ref.Config {
				t.Errorf("config %+v, want %+v", c.Config, ref.Config)
			}
			if fmt.Sprint(c.Names()) != fmt.Sprint(ref.Names()) {
				t.Fatalf("names %v, want %v", c.Names(), ref.Names())
			}
			for _, name := range ref.Names() {
				e, ok := raw.Entry(name)
				if !ok {
					e, ok = raw.Entry("transformer." + name)
				}
				if !ok {
					t.Fatalf("%s not stored", name)
				}
				r, got := ref.Tensor(name).Data, c.Tensor(name).Data
				if len(got) != len(r) {
					t.Fatalf("%s: len %d, want %d", name, len(got), len(r))
				}
				for i := range r {
					if want := round[e.Dtype](r[i]); got[i] != want {
						t.Fatalf("%s (%s)[%d] = %v, want %v", name, e.Dtype, i, got[i], want)
					}
				}
			}
		})
	}
}

// miniTensors is a complete GPT-2 with n_layer 1, n_embd 4, n_head 2,
// n_positions 3, vocab_size 5, shapes written out by hand.
const miniConfig = `{"model_type":"gpt2","n_layer":1,"n_embd":4,"n_head":2,"n_positions":3,"vocab_size":5}`

func miniTensors() []stTensor {
	shapes := []struct {
		name  string
		shape []int
	}{
		{"wte.weight", []int{5, 4}}, {"wpe.weight", []int{3, 4}},
		{"h.0.ln_1.weight", []int{4}}, {"h.0.ln_1.bias", []int{4}},
		{"h.0.attn.c_attn.weight", []int{4, 12}}, {"h.0.attn.c_attn.bias", []int{12}},
		{"h.0.attn.c_proj.weight", []int{4, 4}}, {"h.0.attn.c_proj.bias", []int{4}},
		{"h.0.ln_2.weight", []int{4}}, {"h.0.ln_2.bias", []int{4}},
		{"h.0.mlp.c_fc.weight", []int{4, 16}}, {"h.0.mlp.c_fc.bias", []int{16}},
		{"h.0.mlp.c_proj.weight", []int{16, 4}}, {"h.0.mlp.c_proj.bias", []int{4}},
		{"ln_f.weight", []int{4}}, {"ln_f.bias", []int{4}},
	}
	var ts []stTensor
	k := 0
	for _, s := range shapes {
		n := 1
		for _, d := range s.shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			k++
			v[i] = float32(k) / 64
		}
		ts = append(ts, stTensor{s.name, "F32", s.shape, f32Bytes(v...)})
	}
	return ts
}

func writeMini(t *testing.T, config string, ts []stTensor) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config.json"), []byte(config))
	writeFile(t, filepath.Join(dir, "model.safetensors"), stBuild(8, ts...))
	return dir
}

func TestMiniCheckpoint(t *testing.T) {
	ts := miniTensors()
	c, err := OpenCheckpoint(writeMini(t, miniConfig, ts))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Tensor("h.0.mlp.c_fc.bias"); got == nil || got.Data[0] != 193.0/64 /* 192 values precede it */ {
		t.Errorf("c_fc.bias = %+v", got)
	}
	if c.LMHead() != c.Tensor("wte.weight") {
		t.Error("LMHead is not wte")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A stored lm_head that differs from wte is the unembedding.
func TestUntiedLMHead(t *testing.T) {
	ts := miniTensors()
	head := make([]float32, 20)
	for i := range head {
		head[i] = -float32(i)
	}
	ts = append(ts, stTensor{"lm_head.weight", "BF16", []int{5, 4}, bf16Of(head)})
	c, err := OpenCheckpoint(writeMini(t, miniConfig, ts))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if h := c.LMHead(); h == nil || h.Name != "lm_head.weight" || h != c.Tensor("lm_head.weight") || fmt.Sprint(h.Data) != fmt.Sprint(head) {
		t.Errorf("LMHead = %+v", h)
	}
}

func bf16Of(v []float32) []byte {
	u := make([]uint16, len(v))
	for i, x := range v {
		u[i] = uint16(math.Float32bits(x) >> 16)
	}
	return u16Bytes(u...)
}

func TestCheckpointErrors(t *testing.T) {
	edit := func(f func([]stTensor) []stTensor) []stTensor { return f(miniTensors()) }
	set := func(name string, f func(*stTensor)) []stTensor {
		return edit(func(ts []stTensor) []stTensor {
			for i := range ts {
				if ts[i].name == name {
					f(&ts[i])
				}
			}
			return ts
		})
	}
	cases := []struct {
		name    string
		config  string
		tensors []stTensor
		want    string
	}{
		{"missing tensor", miniConfig, edit(func(ts []stTensor) []stTensor { return ts[1:] }), `missing tensor "wte.weight"`},
		{"missing several", miniConfig, edit(func(ts []stTensor) []stTensor { return ts[:2] }), "and 13 more"},
		{"shape vs config", miniConfig, set("h.0.attn.c_attn.weight", func(s *stTensor) { s.shape = []int{12, 4} }), `"h.0.attn.c_attn.weight" has shape [12 4], config.json implies [4 12]`},
		{"rank vs config", miniConfig, set("ln_f.bias", func(s *stTensor) { s.shape = []int{1, 4} }), `"ln_f.bias" has shape [1 4]`},
		{"vocab vs config", strings.Replace(miniConfig, `"vocab_size":5`, `"vocab_size":6`, 1), miniTensors(), `"wte.weight" has shape [5 4], config.json implies [6 4]`},
		{"NaN", miniConfig, set("h.0.ln_2.bias", func(s *stTensor) { s.raw = f32Bytes(1, 2, float32(math.NaN()), 4) }), `tensor "h.0.ln_2.bias": element 2 is NaN`},
		{"Inf in F16", miniConfig, set("ln_f.weight", func(s *stTensor) { s.dtype, s.raw = "F16", u16Bytes(0, 0x7c00, 0, 0) }), `tensor "ln_f.weight": element 1 is +Inf`},
		{"-Inf in BF16", miniConfig, set("wpe.weight", func(s *stTensor) {
			s.dtype, s.raw = "BF16", u16Bytes(make([]uint16, 11)...)
			s.raw = append(s.raw, u16Bytes(0xff80)...)
		}), `tensor "wpe.weight": element 11 is -Inf`},
		{"unsupported dtype", miniConfig, set("ln_f.bias", func(s *stTensor) { s.dtype = "I32" }), "unsupported dtype I32"},
		{"unexpected tensor", miniConfig, append(miniTensors(), stTensor{"h.1.ln_1.weight", "F32", []int{4}, f32Bytes(1, 1, 1, 1)}), `unexpected tensor "h.1.ln_1.weight"`},
		{"duplicate after prefix", miniConfig, append(miniTensors(), stTensor{"transformer.ln_f.bias", "F32", []int{4}, f32Bytes(1, 1, 1, 1)}), "duplicates"},
		{"lm_head shape", miniConfig, append(miniTensors(), stTensor{"lm_head.weight", "F32", []int{4, 5}, f32Bytes(make([]float32, 20)...)}), `"lm_head.weight" has shape [4 5]`},
		{"bad config", `{"model_type":"bert"}`, miniTensors(), `config.json: model_type "bert"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := OpenCheckpoint(writeMini(t, tc.config, tc.tensors))
			if err == nil {
				c.Close()
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), "weights: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// Buffers are recognised by whole name components: h.N.attn.bias and
// h.N.attn.masked_bias go, c_attn.bias stays.
func TestIsMaskBuffer(t *testing.T) {
	for name, want := range map[string]bool{
		"h.0.attn.bias": true, "h.11.attn.masked_bias": true,
		"h.0.attn.c_attn.bias": false, "h.0.attn.c_proj.bias": false, "h.x.attn.bias": false,
		"attn.bias": false, "transformer.h.0.attn.bias": false, "h.0.crossattention.bias": false,
	} {
		if isMaskBuffer(name) != want {
			t.Errorf("isMaskBuffer(%q) = %v", name, !want)
		}
	}
}

func TestCheckpointMissingFiles(t *testing.T) {
	empty := t.TempDir()
	_, err := OpenCheckpoint(empty)
	if !errors.Is(err, ErrNoCheckpoint) || !strings.Contains(err.Error(), "expected config.json and model.safetensors (or model.safetensors.index.json") {
		t.Errorf("empty dir: %v", err)
	}
	writeFile(t, filepath.Join(empty, "pytorch_model.bin"), []byte("x"))
	if _, err := OpenCheckpoint(empty); err == nil || !strings.Contains(err.Error(), "pytorch_model.bin is not supported") {
		t.Errorf("pytorch only: %v", err)
	}
	noConfig := t.TempDir()
	writeFile(t, filepath.Join(noConfig, "model.safetensors"), stBuild(8, miniTensors()...))
	if _, err := OpenCheckpoint(noConfig); err == nil || !strings.Contains(err.Error(), "no config.json") {
		t.Errorf("no config: %v", err)
	}
	if _, err := OpenCheckpoint(filepath.Join(empty, "nope")); err == nil || !strings.HasPrefix(err.Error(), "weights: ") {
		t.Errorf("no dir: %v", err)
	}
	if _, err := OpenCheckpoint(filepath.Join(empty, "pytorch_model.bin")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file: %v", err)
	}
}

// writeShards splits the tensors of src into two shard files plus an index in
// a new directory, copying config.json.
func writeShards(t *testing.T, src string, mutate func(weightMap map[string]string)) string {
	t.Helper()
	f, err := OpenSafetensors(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "config.json"), cfg)
	names := [2]string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
	var parts [2][]stTensor
	weightMap := map[string]string{}
	for i, e := range f.Entries {
		k := 0
		if i >= len(f.Entries)/2 {
			k = 1
		}
		parts[k] = append(parts[k], stTensor{e.Name, e.Dtype, e.Shape, f.Bytes(e)})
		weightMap[e.Name] = names[k]
	}
	for k := range parts {
		writeFile(t, filepath.Join(dir, names[k]), stBuild(8, parts[k]...))
	}
	if mutate != nil {
		mutate(weightMap)
	}
	index, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	writeFile(t, filepath.Join(dir, "model.safetensors.index.json"), index)
	return dir
}

func TestSharded(t *testing.T) {
	src := testmodel.Dir(t, "tiny-mixed")
	ref, err := OpenCheckpoint(src)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	c, err := OpenCheckpoint(writeShards(t, src, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.files) != 2 {
		t.Errorf("opened %d files, want 2 shards", len(c.files))
	}
	if c.Config != ref.Config || fmt.Sprint(c.Names()) != fmt.Sprint(ref.Names()) {
		t.Fatalf("sharded load differs: %+v %v", c.Config, c.Names())
	}
	for _, name := range ref.Names() {
		a, b := ref.Tensor(name), c.Tensor(name)
		if fmt.Sprint(a.Shape) != fmt.Sprint(b.Shape) || !equalBits(a.Data, b.Data) {
			t.Errorf("%s differs between sharded and unsharded load", name)
		}
	}

	for _, bad := range []struct {
		name   string
		mutate func(map[string]string)
		want   string
	}{
		{"escaping shard", func(m map[string]string) { m["wte.weight"] = "../model.safetensors" }, "not a plain file name"},
		{"missing shard", func(m map[string]string) { m["extra.weight"] = "model-00003-of-00002.safetensors" }, "no such file"},
		{"tensor not in shard", func(m map[string]string) { m["extra.weight"] = "model-00001-of-00002.safetensors" }, `"extra.weight" listed for model-00001-of-00002.safetensors is not in it`},
		{"wrong shard", func(m map[string]string) { m["wte.weight"] = "model-00002-of-00002.safetensors" }, "not listed for this shard"},
		{"empty map", func(m map[string]string) { clear(m) }, "weight_map is missing or empty"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			c, err := OpenCheckpoint(writeShards(t, src, bad.mutate))
			if err == nil {
				c.Close()
				t.Fatalf("no error, want %q", bad.want)
			}
			if !strings.Contains(err.Error(), bad.want) {
				t.Errorf("err = %v, want %q", err, bad.want)
			}
		})
	}
}

func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// Aligned F32 tensors are views of the mapping; converted ones are not.
func TestZeroCopy(t *testing.T) {
	for _, fixture := range []string{"tiny-f32", "tiny-mixed"} {
		t.Run(fixture, func(t *testing.T) {
			dir := testmodel.Dir(t, fixture)
			c, err := OpenCheckpoint(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			f := c.files[0]
			aliased := 0
			for _, name := range c.Names() {
				e, _ := f.Entry(name)
				p := unsafe.Pointer(&c.Tensor(name).Data[0])
				aligned := e.Dtype == "F32" && (f.start+int(e.Begin))%4 == 0
				if f.contains(p) != aligned {
					t.Errorf("%s (%s at %d): aliases the mapping = %v, want %v", name, e.Dtype, f.start+int(e.Begin), !aligned, aligned)
				}
				if aligned {
					aliased++
				}
			}
			if fixture == "tiny-f32" && aliased != len(c.Names()) {
				t.Errorf("only %d of %d F32 tensors aliased", aliased, len(c.Names()))
			}
		})
	}
}

// Loading GPT-2 small's shape (~500 MB of F32) must cost almost no heap.
func TestSmallShapeHeap(t *testing.T) {
	dir := testmodel.Dir(t, "small-shape")
	if runtime.GOOS == "windows" {
		t.Skip("no mmap on windows: the file is read into the heap")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap growth %d bytes", growth)
	if growth > 10<<20 {
		t.Errorf("heap grew by %d bytes loading small-shape, want < 10 MB (zero-copy)", growth)
	}
	if wte := c.Tensor("wte.weight"); !c.files[0].contains(unsafe.Pointer(&wte.Data[len(wte.Data)-1])) {
		t.Error("wte is not a view of the mapping")
	}
	runtime.KeepAlive(c)
}

func BenchmarkLoadSmallShape(b *testing.B) {
	dir := testmodel.Dir(b, "small-shape")
	for b.Loop() {
		c, err := OpenCheckpoint(dir)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// checkFinite cuts big tensors into chunks scanned in parallel; it must still
// report the first bad value in file order.
func TestCheckFiniteOrder(t *testing.T) {
	big := make([]float32, 3<<20+5)
	big[3<<20+2] = float32(math.Inf(1))
	big[1<<20+7] = float32(math.NaN())
	small := []float32{1, float32(math.Inf(-1))}
	err := checkFinite([]scan{{"a.safetensors", "ok", make([]float32, 10)}, {"a.safetensors", "big", big}, {"b.safetensors", "small", small}})
	if err == nil || err.Error() != `weights: a.safetensors: tensor "big": element 1048583 is NaN` {
		t.Errorf("err = %v", err)
	}
	if err := checkFinite([]scan{{"a", "x", big[:1<<20]}, {"a", "y", nil}}); err != nil {
		t.Errorf("finite: %v", err)
	}
}

// A config.json whose n_layer is huge but within ParseConfig's limit (a
// corrupt or hostile file) must fail as a missing tensor at once, not try to
// list 12·n_layer expected names first (16M layers: ~200M map entries, an
// out-of-memory crash).
func TestCheckpointHugeNLayer(t *testing.T) {
	cfg := strings.Replace(miniConfig, `"n_layer":1`, `"n_layer":16777216`, 1)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c, err := OpenCheckpoint(writeMini(t, cfg, miniTensors()))
	runtime.ReadMemStats(&after)
	if err == nil {
		c.Close()
		t.Fatal("no error")
	}
	if want := `missing tensor "h.1.attn.c_attn.bias" (and 201326579 more)`; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v\nwant it to contain %q", err, want)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("allocated %d bytes to report a missing tensor", n)
	}
}

// firstMissing walks the needed names in sort order: with every name before
// x present, x is the one it reports. Checked against a sorted full list.
func TestFirstMissingOrder(t *testing.T) {
	for _, L := range []int{1, 2, 9, 10, 11, 23, 101} {
		cfg := Config{NLayer: L, NEmbd: 4, NHead: 2, NPositions: 3, VocabSize: 5}
		all := append([]string(nil), topTensors...)
		for i := 0; i < L; i++ {
			for _, lt := range layerTensors {
				all = append(all, fmt.Sprintf("h.%d.%s", i, lt.suffix))
			}
		}
		sort.Strings(all)
		for _, x := range all {
			if _, ok := expectedShape(cfg, x); !ok {
				t.Fatalf("L=%d: expectedShape(%q) not ok", L, x)
			}
			if got, ok := firstMissing(cfg, func(n string) bool { return n < x }); !ok || got != x {
				t.Fatalf("L=%d: firstMissing = %q, %v; want %q", L, got, ok, x)
			}
		}
		if got, ok := firstMissing(cfg, func(string) bool { return true }); ok {
			t.Fatalf("L=%d: firstMissing with all present = %q", L, got)
		}
	}
}
