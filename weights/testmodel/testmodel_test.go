package testmodel_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/x448/float16"

	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/builtin/model"
	"github.com/logitlens/logitlens/weights/testmodel"
	"github.com/logitlens/logitlens/weights/tokenizer"
)

// spec returns a named spec, failing the test for an unknown name.
func spec(t *testing.T, name string) testmodel.Spec {
	t.Helper()
	s, ok := testmodel.Named(name)
	if !ok {
		t.Fatalf("no spec %q", name)
	}
	return s
}

// readDir returns every file of dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// Two writes of a spec give the same bytes: one spec with every option
// (a narrow vocabulary keeps it small), and tiny-f32, whose copy from Dir
// is the same too.
func TestWriteIsDeterministic(t *testing.T) {
	every := spec(t, "tiny-f32")
	every.Vocab, every.Dtype, every.Prefix, every.Merges = 1000, testmodel.Mixed, "transformer.", testmodel.MergePairs
	every.AttnBiasBuffers, every.MaskedBias, every.StoreLMHead = true, true, true
	for _, s := range []testmodel.Spec{every, spec(t, "tiny-f32")} {
		a, b := t.TempDir(), t.TempDir()
		for _, d := range []string{a, b} {
			if err := testmodel.Write(d, s); err != nil {
				t.Fatal(err)
			}
		}
		fa, fb := readDir(t, a), readDir(t, b)
		if len(fa) != 8 || len(fa) != len(fb) {
			t.Fatalf("%d and %d files, want 8", len(fa), len(fb))
		}
		for f, data := range fa {
			if !bytes.Equal(data, fb[f]) {
				t.Errorf("%s differs between writes of %+v", f, s)
			}
		}
		if s.Vocab == testmodel.GPTVocab {
			for f, data := range readDir(t, testmodel.Dir(t, "tiny-f32")) {
				if !bytes.Equal(data, fa[f]) {
					t.Errorf("%s of Dir's tiny-f32 differs from a write", f)
				}
			}
		}
	}
}

// Every named checkpoint loads through the checkpoint and tokenizer
// loaders with the spec's shape.
func TestNamedLoad(t *testing.T) {
	names := testmodel.Names()
	for _, want := range []string{"tiny-f32", "tiny-seed11", "tiny-f16", "tiny-bf16", "tiny-mixed", "tiny-prefix",
		"tiny-lmhead", "tiny-pairs", "tiny-vocabmerges", "small-shape", "xl-1layer"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() lacks %s", want)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s := spec(t, name)
			dir := testmodel.Dir(t, name)
			ck, err := weights.OpenCheckpoint(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			c := ck.Config
			if c.NLayer != s.Layers || c.NEmbd != s.Embd || c.NHead != s.Heads || c.NPositions != s.Positions || c.VocabSize != s.Vocab {
				t.Errorf("config %+v, spec %+v", c, s)
			}
			if s.Tokenizer == testmodel.NoTokenizer {
				return
			}
			tok, err := tokenizer.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tok.VocabSize() != s.Vocab {
				t.Errorf("tokenizer has %d ids, spec %d", tok.VocabSize(), s.Vocab)
			}
			if id, ok := tok.EOT(); !ok || id != s.Vocab-1 {
				t.Errorf("EOT() = %d, %v; want %d", id, ok, s.Vocab-1)
			}
			const text = "The Eiffel Tower is in the city of Paris.\n\tÜber 東京 <|endoftext|>"
			ids := tok.EncodeIDs(text)
			if got := tok.Decode(ids); got != text {
				t.Errorf("round trip %q", got)
			}
			if ids[len(ids)-1] != s.Vocab-1 {
				t.Errorf("<|endoftext|> encodes to %d", ids[len(ids)-1])
			}
		})
	}
}

// A full vocabulary is GPT-2's files byte for byte, whichever tokenizer
// files the checkpoint carries.
func TestGPT2Vocabulary(t *testing.T) {
	vocab, merges, err := model.GPT2Vocabulary()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tiny-f32", "tiny-vocabmerges"} {
		f := readDir(t, testmodel.Dir(t, name))
		if !bytes.Equal(f["vocab.json"], vocab) || !bytes.Equal(f["merges.txt"], merges) {
			t.Errorf("%s: vocab.json or merges.txt is not GPT-2's", name)
		}
	}
}

// The narrow vocabulary of xl-1layer is GPT-2's first merges: it encodes
// like GPT-2 wherever GPT-2's tokens are among its ids.
func TestNarrowVocabulary(t *testing.T) {
	full, err := tokenizer.Load(testmodel.Dir(t, "tiny-f32"))
	if err != nil {
		t.Fatal(err)
	}
	dir := testmodel.Dir(t, "xl-1layer")
	narrow, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := spec(t, "xl-1layer")
	for id := range s.Vocab - 1 {
		if !bytes.Equal(narrow.TokenBytes(id), full.TokenBytes(id)) {
			t.Fatalf("id %d is %q, GPT-2's %q", id, narrow.TokenBytes(id), full.TokenBytes(id))
		}
	}
	merges, err := os.ReadFile(filepath.Join(dir, "merges.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(merges), "\n"); n != s.Vocab-257+1 {
		t.Errorf("merges.txt has %d lines, want the version line and %d merges", n, s.Vocab-257)
	}
	for _, text := range []string{" the", " in the", "the and of", " t", "\n\n"} {
		got, want := narrow.EncodeIDs(text), full.EncodeIDs(text)
		if slices.Max(want) < s.Vocab-1 && !slices.Equal(got, want) {
			t.Errorf("%q: %v, GPT-2 %v", text, got, want)
		}
	}
	// Words beyond the first merges fall back to shorter tokens.
	if ids := narrow.EncodeIDs(" Eiffel"); len(ids) < 2 || narrow.Decode(ids) != " Eiffel" {
		t.Errorf("\" Eiffel\" → %v", ids)
	}
}

// header reads a safetensors file's entries.
func header(t *testing.T, dir string) *weights.SafetensorsFile {
	t.Helper()
	f, err := weights.OpenSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func values(t *testing.T, f *weights.SafetensorsFile, name string) []float32 {
	t.Helper()
	e, ok := f.Entry(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	v, err := f.Float32(e)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The dtype options store every weight as they say, with tiny-f32's values
// rounded to nearest even.
func TestDtypes(t *testing.T) {
	ref := header(t, testmodel.Dir(t, "tiny-f32"))
	toF16 := func(x float32) float32 { return float16.Fromfloat32(x).Float32() }
	toBF16 := func(x float32) float32 {
		u := math.Float32bits(x)
		return math.Float32frombits((u + 0x7fff + (u >> 16 & 1)) &^ 0xffff)
	}
	round := map[string]func(float32) float32{"F32": func(x float32) float32 { return x }, "F16": toF16, "BF16": toBF16}
	for _, tc := range []struct {
		name  string
		dtype func(i int, name string) string
	}{
		{"tiny-f32", func(int, string) string { return "F32" }},
		{"tiny-f16", func(int, string) string { return "F16" }},
		{"tiny-bf16", func(int, string) string { return "BF16" }},
		{"tiny-mixed", func(i int, name string) string {
			if name == "wte.weight" {
				return "BF16"
			}
			return [3]string{"F32", "F16", "BF16"}[i%3]
		}},
	} {
		f := header(t, testmodel.Dir(t, tc.name))
		if len(f.Entries) != len(ref.Entries) {
			t.Fatalf("%s: %d tensors, tiny-f32 %d", tc.name, len(f.Entries), len(ref.Entries))
		}
		for i, e := range f.Entries {
			if want := tc.dtype(i, e.Name); e.Dtype != want {
				t.Errorf("%s: %s is %s, want %s", tc.name, e.Name, e.Dtype, want)
				continue
			}
			got, want := values(t, f, e.Name), values(t, ref, e.Name)
			for j := range want {
				if r := round[e.Dtype](want[j]); got[j] != r {
					t.Fatalf("%s: %s[%d] = %v, tiny-f32's %v rounds to %v", tc.name, e.Name, j, got[j], want[j], r)
				}
			}
		}
	}
}

// tiny-prefix prefixes every name and adds the causal-mask buffers;
// tiny-lmhead stores lm_head.weight equal to wte.
func TestBuffersPrefixAndLMHead(t *testing.T) {
	ref := header(t, testmodel.Dir(t, "tiny-f32"))
	s := spec(t, "tiny-prefix")
	f := header(t, testmodel.Dir(t, "tiny-prefix"))
	if len(f.Entries) != len(ref.Entries)+2*s.Layers {
		t.Errorf("%d tensors, want tiny-f32's %d and 2 buffers per block", len(f.Entries), len(ref.Entries))
	}
	for _, e := range ref.Entries {
		if !slices.Equal(values(t, f, "transformer."+e.Name), values(t, ref, e.Name)) {
			t.Errorf("transformer.%s differs from tiny-f32's %s", e.Name, e.Name)
		}
	}
	P := s.Positions
	for i := range s.Layers {
		h := "transformer.h." + string(rune('0'+i)) + "."
		mask := values(t, f, h+"attn.bias")
		if e, _ := f.Entry(h + "attn.bias"); !slices.Equal(e.Shape, []int{1, 1, P, P}) || e.Dtype != "F32" {
			t.Errorf("%sattn.bias: %s %v", h, e.Dtype, e.Shape)
		}
		for q := range P {
			for k := range P {
				if want := float32(map[bool]int{true: 1}[k <= q]); mask[q*P+k] != want {
					t.Fatalf("%sattn.bias[%d,%d] = %v, want %v", h, q, k, mask[q*P+k], want)
				}
			}
		}
		if e, _ := f.Entry(h + "attn.masked_bias"); len(e.Shape) != 0 || e.Dtype != "F32" || values(t, f, e.Name)[0] != -1e4 {
			t.Errorf("%sattn.masked_bias: %s %v", h, e.Dtype, e.Shape)
		}
	}
	lm := header(t, testmodel.Dir(t, "tiny-lmhead"))
	if _, ok := ref.Entry("lm_head.weight"); ok {
		t.Error("tiny-f32 stores lm_head.weight")
	}
	if e, _ := lm.Entry("lm_head.weight"); !slices.Equal(e.Shape, []int{50257, 64}) || !slices.Equal(values(t, lm, e.Name), values(t, ref, "wte.weight")) {
		t.Errorf("lm_head.weight %v is not wte", e.Shape)
	}
}

// The tokenizer options write the files they name, with merges in the
// format they name.
func TestTokenizerFiles(t *testing.T) {
	all := []string{"config.json", "merges.txt", "model.safetensors", "special_tokens_map.json", "testmodel.json",
		"tokenizer.json", "tokenizer_config.json", "vocab.json"}
	for _, tc := range []struct {
		name   string
		files  []string
		pairs  bool
		tokCfg bool
	}{
		{"tiny-f32", all, false, true},
		{"tiny-pairs", all, true, true},
		{"tiny-vocabmerges", []string{"config.json", "merges.txt", "model.safetensors", "testmodel.json", "vocab.json"}, false, false},
	} {
		files := readDir(t, testmodel.Dir(t, tc.name))
		var names []string
		for n := range files {
			names = append(names, n)
		}
		slices.Sort(names)
		if !slices.Equal(names, tc.files) {
			t.Errorf("%s: files %v, want %v", tc.name, names, tc.files)
		}
		if !tc.tokCfg {
			continue
		}
		var doc struct {
			Model struct {
				Merges []json.RawMessage
				Vocab  map[string]int
			}
		}
		if err := json.Unmarshal(files["tokenizer.json"], &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Model.Merges) != 50000 || len(doc.Model.Vocab) != 50257 {
			t.Errorf("%s: %d merges and %d vocabulary entries", tc.name, len(doc.Model.Merges), len(doc.Model.Vocab))
			continue
		}
		first := string(doc.Model.Merges[0])
		if want := map[bool]string{false: `"Ġ t"`, true: `["Ġ","t"]`}[tc.pairs]; first != want {
			t.Errorf("%s: first merge %s, want %s", tc.name, first, want)
		}
	}
}

// The weights have the init's scale: standard deviations within 2% of the
// spec's, means near the spec's (0, or 1 for layer-norm gains).
func TestInitScale(t *testing.T) {
	for _, name := range []string{"tiny-f32", "xl-1layer"} {
		s := spec(t, name)
		f := header(t, testmodel.Dir(t, name))
		proj := s.Init.Std / math.Sqrt(float64(2*s.Layers))
		for _, tc := range []struct {
			tensor    string
			mean, std float64
		}{
			{"wte.weight", 0, s.Init.WteStd},
			{"wpe.weight", 0, s.Init.WpeStd},
			{"h.0.attn.c_attn.weight", 0, s.Init.Std},
			{"h.0.mlp.c_fc.weight", 0, s.Init.Std},
			{"h.0.attn.c_proj.weight", 0, proj},
			{"h.0.mlp.c_proj.weight", 0, proj},
			{"h.0.mlp.c_fc.bias", 0, s.Init.BiasStd},
			{"h.0.ln_1.weight", 1, 0.2},
		} {
			v := values(t, f, tc.tensor)
			var sum, sumsq float64
			for _, x := range v {
				sum += float64(x)
			}
			mean := sum / float64(len(v))
			for _, x := range v {
				sumsq += (float64(x) - mean) * (float64(x) - mean)
			}
			std := math.Sqrt(sumsq / float64(len(v)))
			// The sample mean's standard error is std/√n; allow 5 of them.
			if math.Abs(mean-tc.mean) > 5*tc.std/math.Sqrt(float64(len(v))) || math.Abs(std/tc.std-1) > 0.02+5/math.Sqrt(float64(len(v))) {
				t.Errorf("%s %s: mean %.4g, std %.4g; want %g, %g", name, tc.tensor, mean, std, tc.mean, tc.std)
			}
		}
	}
}

func TestWriteRefusesBadSpecs(t *testing.T) {
	base := spec(t, "tiny-f32")
	for name, change := range map[string]func(*testmodel.Spec){
		"heads":     func(s *testmodel.Spec) { s.Heads = 5 },
		"no layers": func(s *testmodel.Spec) { s.Layers = 0 },
		"vocab":     func(s *testmodel.Spec) { s.Vocab = 100 },
		"big vocab": func(s *testmodel.Spec) { s.Vocab = 50258 },
		"dtype":     func(s *testmodel.Spec) { s.Dtype = "f8" },
		"init":      func(s *testmodel.Spec) { s.Init.Std = math.NaN() },
		"files":     func(s *testmodel.Spec) { s.Tokenizer = "some" },
	} {
		s := base
		change(&s)
		dir := t.TempDir()
		if err := testmodel.Write(dir, s); err == nil {
			t.Errorf("%s: no error", name)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: wrote %d files", name, len(entries))
		}
	}
}

func BenchmarkWriteTiny(b *testing.B) {
	s, _ := testmodel.Named("tiny-f32")
	dir := b.TempDir()
	for b.Loop() {
		if err := testmodel.Write(dir, s); err != nil {
			b.Fatal(err)
		}
	}
}

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.msg = fmt.Sprintf(format, args...) }

// CheckPin passes the generated checkpoint's own sha256 and fails any other
// with the golden's name and the command that recomputes it.
func TestCheckPin(t *testing.T) {
	sha := testmodel.SHA256(t, "tiny-lmhead")
	r := &fatalRecorder{TB: t}
	testmodel.CheckPin(r, "tiny-lmhead", "x.json", sha)
	if r.msg != "" {
		t.Errorf("own sha256 %s refused: %s", sha, r.msg)
	}
	testmodel.CheckPin(r, "tiny-lmhead", "x.json", strings.Repeat("0", 64))
	if !strings.Contains(r.msg, "x.json") || !strings.Contains(r.msg, sha) || !strings.Contains(r.msg, "tools/goldens/regen.sh") {
		t.Errorf("stale pin: %q", r.msg)
	}
}
