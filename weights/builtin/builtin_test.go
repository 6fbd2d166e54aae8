package builtin

import (
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// isolate points the cache and temp directories at fresh test directories.
func isolate(t *testing.T) (cache string) {
	t.Helper()
	cache = t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("TMPDIR", t.TempDir())
	return cache
}

func TestIsName(t *testing.T) {
	for spec, want := range map[string]bool{"demo": true, "builtin": true, "gpt2": false, "": false, "Demo": false, "./demo": false} {
		if got := IsName(spec); got != want {
			t.Errorf("IsName(%q) = %v, want %v", spec, got, want)
		}
	}
}

func TestPayloadSize(t *testing.T) {
	var total int64
	for _, fsys := range []fs.FS{payload, weightsFS, lensFiles} {
		err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			total += info.Size()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if total > 16<<20 {
		t.Errorf("embedded payload is %d bytes, over the 16 MiB budget", total)
	}
	t.Logf("embedded payload: %d bytes", total)
}

func TestDirExtractsOnce(t *testing.T) {
	cache := isolate(t)
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "logitlens", "builtin-"+Version()); dir != want {
		t.Errorf("Dir() = %s, want %s", dir, want)
	}
	before := stat(t, filepath.Join(dir, "model.safetensors"))
	again, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if again != dir {
		t.Errorf("second Dir() = %s, first %s", again, dir)
	}
	if after := stat(t, filepath.Join(dir, "model.safetensors")); !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("second Dir() rewrote model.safetensors")
	}
	entries, err := os.ReadDir(filepath.Join(cache, "logitlens"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("cache holds %d entries, want only builtin-%s (temporary dirs left behind?)", len(entries), Version())
	}
}

func stat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestDirConcurrent(t *testing.T) {
	isolate(t)
	var wg sync.WaitGroup
	dirs := make([]string, 2)
	errs := make([]error, 2)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = Dir()
		}()
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
	}
	if dirs[0] != dirs[1] {
		t.Errorf("goroutines got %s and %s", dirs[0], dirs[1])
	}
}

// TestEnsureRaces stands in for another process: a good copy that appears
// between our check and our rename is kept, and a half-written one is replaced.
func TestEnsureRaces(t *testing.T) {
	isolate(t)
	sums, err := readSums()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dir, err := ensure(root, sums)
	if err != nil {
		t.Fatal(err)
	}
	// A partial copy (as if a process died before rename; rename never exposes
	// one, but a user might copy a directory by hand).
	if err := os.Remove(filepath.Join(dir, "vocab.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := ensure(root, sums); err != nil {
		t.Fatal(err)
	}
	if err := verify(dir, sums); err != nil {
		t.Errorf("after repair: %v", err)
	}
}

func TestDirRepairsCorruption(t *testing.T) {
	isolate(t)
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model.safetensors", "config.json"} {
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{0xff, 0xfe}, stat(t, path).Size()/2); err != nil {
			t.Fatal(err)
		}
		f.Close()
		sums, _ := readSums()
		if err := verify(dir, sums); err == nil || !strings.Contains(err.Error(), "sha256") {
			t.Fatalf("verify after corrupting %s: %v, want a sha256 mismatch", name, err)
		}
		again, err := Dir()
		if err != nil {
			t.Fatal(err)
		}
		if again != dir {
			t.Errorf("Dir() after corruption = %s, want %s", again, dir)
		}
		if err := verify(dir, sums); err != nil {
			t.Errorf("Dir() did not repair %s: %v", name, err)
		}
	}
}

func TestDirFallsBackToTemp(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", notDir) // MkdirAll under a regular file fails
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dir, tmp+string(filepath.Separator)) {
		t.Errorf("Dir() = %s, want a directory under TMPDIR %s", dir, tmp)
	}
}

// TestFilesParse checks the extracted files by hand: config fields, the
// safetensors header (F16, GPT-2 names and shapes), GPT-2's vocabulary.
func TestFilesParse(t *testing.T) {
	isolate(t)
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ModelType  string   `json:"model_type"`
		Arch       []string `json:"architectures"`
		NLayer     int      `json:"n_layer"`
		NEmbd      int      `json:"n_embd"`
		NHead      int      `json:"n_head"`
		NPositions int      `json:"n_positions"`
		VocabSize  int      `json:"vocab_size"`
		Activation string   `json:"activation_function"`
		Tied       bool     `json:"tie_word_embeddings"`
	}
	readJSON(t, filepath.Join(dir, "config.json"), &cfg)
	if cfg.ModelType != "gpt2" || len(cfg.Arch) != 1 || cfg.Arch[0] != "GPT2LMHeadModel" || cfg.VocabSize != 50257 ||
		cfg.NLayer < 1 || cfg.NEmbd%cfg.NHead != 0 || cfg.NPositions < 128 || cfg.Activation != "gelu_new" || !cfg.Tied {
		t.Fatalf("config.json: %+v", cfg)
	}

	raw, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	C, V, P := cfg.NEmbd, cfg.VocabSize, cfg.NPositions
	want := map[string][]int{"wte.weight": {V, C}, "wpe.weight": {P, C}, "ln_f.weight": {C}, "ln_f.bias": {C}}
	for l := range cfg.NLayer {
		p := "h." + strconv.Itoa(l) + "."
		want[p+"ln_1.weight"], want[p+"ln_1.bias"] = []int{C}, []int{C}
		want[p+"ln_2.weight"], want[p+"ln_2.bias"] = []int{C}, []int{C}
		want[p+"attn.c_attn.weight"], want[p+"attn.c_attn.bias"] = []int{C, 3 * C}, []int{3 * C}
		want[p+"attn.c_proj.weight"], want[p+"attn.c_proj.bias"] = []int{C, C}, []int{C}
		want[p+"mlp.c_fc.weight"], want[p+"mlp.c_fc.bias"] = []int{C, 4 * C}, []int{4 * C}
		want[p+"mlp.c_proj.weight"], want[p+"mlp.c_proj.bias"] = []int{4 * C, C}, []int{C}
	}
	end := 0
	for name, shape := range want {
		var e struct {
			DType   string `json:"dtype"`
			Shape   []int  `json:"shape"`
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(header[name], &e); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if e.DType != "F16" || !equal(e.Shape, shape) || e.Offsets[1]-e.Offsets[0] != 2*prod(shape) {
			t.Errorf("%s: %+v, want F16 %v", name, e, shape)
		}
		end = max(end, e.Offsets[1])
	}
	if len(header) != len(want)+1 { // + __metadata__
		t.Errorf("safetensors has %d entries, want %d tensors + __metadata__", len(header), len(want))
	}
	if got := len(raw) - 8 - int(n); got != end {
		t.Errorf("safetensors data is %d bytes, tensors end at %d", got, end)
	}

	var vocab map[string]int
	readJSON(t, filepath.Join(dir, "vocab.json"), &vocab)
	if len(vocab) != 50257 || vocab["<|endoftext|>"] != 50256 {
		t.Errorf("vocab.json: %d entries, <|endoftext|> = %d", len(vocab), vocab["<|endoftext|>"])
	}
	merges, err := os.ReadFile(filepath.Join(dir, "merges.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(merges), "#version") || strings.Count(string(merges), "\n") != 50001 {
		t.Errorf("merges.txt: %d lines", strings.Count(string(merges), "\n"))
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func prod(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}
