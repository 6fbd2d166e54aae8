package devicetest

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/logitlens/logitlens/weights/testmodel"
)

// copyCheckpoint copies the checkpoint in dir (testmodel's copies are
// read-only) into a temporary directory the test may change.
func copyCheckpoint(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// OverflowCheckpoint returns a copy of testmodel's tiny-f32 whose first
// value of tensor is 3e38: finite weights whose activations overflow.
// "h.0.attn.c_attn.weight" sends the queries of some positions to ±Inf and
// their residual to NaN from block 1's attention on; "ln_f.weight" leaves
// every residual finite and overflows the logits.
func OverflowCheckpoint(t *testing.T, tensor string) string {
	t.Helper()
	dir := copyCheckpoint(t, testmodel.Dir(t, "tiny-f32"))
	setValues(t, dir, tensor, 0, []float32{3e38})
	return dir
}

// tensorSpan finds a float32 tensor's bytes in dir's model.safetensors: its
// offset in the file and its length.
func tensorSpan(t *testing.T, file []byte, name string) (off, n int) {
	t.Helper()
	hl := int(binary.LittleEndian.Uint64(file))
	var header map[string]json.RawMessage
	if err := json.Unmarshal(file[8:8+hl], &header); err != nil {
		t.Fatal(err)
	}
	var info struct {
		Dtype   string `json:"dtype"`
		Offsets [2]int `json:"data_offsets"`
	}
	if err := json.Unmarshal(header[name], &info); err != nil || info.Dtype != "F32" {
		t.Fatalf("tensor %s: %s (%v)", name, info.Dtype, err)
	}
	return 8 + hl + info.Offsets[0], info.Offsets[1] - info.Offsets[0]
}

// tensorValues returns a float32 tensor of dir's checkpoint.
func tensorValues(t *testing.T, dir, name string) []float32 {
	t.Helper()
	file, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	off, n := tensorSpan(t, file, name)
	v := make([]float32, n/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(file[off+4*i:]))
	}
	return v
}

// setValues overwrites elements at..at+len(v)-1 of a float32 tensor of
// dir's checkpoint.
func setValues(t *testing.T, dir, name string, at int, v []float32) {
	t.Helper()
	path := filepath.Join(dir, "model.safetensors")
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off, n := tensorSpan(t, file, name)
	if 4*(at+len(v)) > n {
		t.Fatalf("tensor %s has %d values, not %d", name, n/4, at+len(v))
	}
	for i, x := range v {
		binary.LittleEndian.PutUint32(file[off+4*(at+i):], math.Float32bits(x))
	}
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
}
