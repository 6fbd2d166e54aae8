package tunedlens

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// The fixtures in testdata/lenses were written by the reference's
// make_tuned.py for the tiny-f32 checkpoint (d_model 64, 2 layers); see
// testdata/lenses.sh. tensors.json holds each tensor as torch.load reads it.
const (
	tinyD      = 64
	tinyLayers = 2
)

type tensorGolden struct {
	Shape  []int
	SHA256 string
}

func loadTensorGoldens(t *testing.T) map[string]map[string]tensorGolden {
	t.Helper()
	data, err := os.ReadFile("testdata/lenses/tensors.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Lenses map[string]map[string]tensorGolden
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Lenses
}

func sha(x []float32) string {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestLoadReference reads every reference lens, from a folder (Load) and
// from an fs.FS (LoadFS, as the built-in lens is read), and compares each
// translator with what torch.load reads, bit for bit.
func TestLoadReference(t *testing.T) {
	goldens := loadTensorGoldens(t)
	cases := []struct {
		name string
		bias bool
	}{{"f32", true}, {"f16", true}, {"bf16-prefixed", true}, {"nobias", false}, {"legacy-f32", true}, {"wronghash", true}}
	loaders := map[string]func(dir string) (*Lens, error){
		"Load":   func(dir string) (*Lens, error) { return Load(dir, tinyD, tinyLayers) },
		"LoadFS": func(dir string) (*Lens, error) { return LoadFS(os.DirFS(dir), dir, tinyD, tinyLayers) },
	}
	for _, c := range cases {
		for name, load := range loaders {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				l, err := load(filepath.Join("testdata/lenses", c.name))
				if err != nil {
					t.Fatal(err)
				}
				if l.Config.Bias != c.bias || l.Config.BaseModel != "tiny-f32" || l.Config.LensType != LensType {
					t.Errorf("config %+v", l.Config)
				}
				want := goldens[c.name]
				seen := 0
				key := regexp.MustCompile(`^(?:layer_translators\.)?(\d+)\.(weight|bias)$`)
				for k, g := range want {
					m := key.FindStringSubmatch(k)
					if m == nil {
						continue // unembed.*: ignored
					}
					tr := l.Translators[int(m[1][0]-'0')]
					x := tr.Weight
					if m[2] == "bias" {
						x = tr.Bias
					}
					if got := sha(x); got != g.SHA256 {
						t.Errorf("%s: sha256 %s, torch reads %s", k, got, g.SHA256)
					}
					seen++
				}
				if wantN := map[bool]int{true: 4, false: 2}[c.bias]; seen != wantN {
					t.Errorf("compared %d tensors, want %d", seen, wantN)
				}
				for i, tr := range l.Translators {
					if !c.bias && tr.Bias != nil {
						t.Errorf("translator %d has a bias", i)
					}
				}
			})
		}
	}
}

// TestUnembedHashOfModel: the reference wrote the package's unembed_hash of
// tiny-f32's unembedding (wte, [50257, 64]) into the f32 lens's config.
func TestUnembedHashOfModel(t *testing.T) {
	ck, err := weights.OpenCheckpoint(testmodel.Dir(t, "tiny-f32"))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	l, err := Load("testdata/lenses/f32", tinyD, tinyLayers)
	if err != nil {
		t.Fatal(err)
	}
	wte := ck.Tensor("wte.weight")
	if got := UnembedHash(wte.Data, wte.Shape[0], wte.Shape[1]); l.Config.UnembedHash == nil || got != *l.Config.UnembedHash {
		t.Errorf("UnembedHash(wte) = %s, the reference wrote %v (for another tiny-f32? recompute with tools/goldens/regen.sh)", got, *l.Config.UnembedHash)
	}
}

// TestUnembedHashConfig: the reference writes unembed_hash only for the f32
// lens; the wronghash lens carries one that cannot match.
func TestUnembedHashConfig(t *testing.T) {
	l, err := Load("testdata/lenses/f32", tinyD, tinyLayers)
	if err != nil {
		t.Fatal(err)
	}
	if l.Config.UnembedHash == nil || len(*l.Config.UnembedHash) != 64 {
		t.Fatalf("unembed_hash %v", l.Config.UnembedHash)
	}
	w, err := Load("testdata/lenses/wronghash", tinyD, tinyLayers)
	if err != nil {
		t.Fatal(err)
	}
	if w.Config.UnembedHash == nil || *w.Config.UnembedHash == *l.Config.UnembedHash {
		t.Fatalf("wronghash's unembed_hash %v", w.Config.UnembedHash)
	}
}

func TestMismatch(t *testing.T) {
	for _, c := range []struct{ d, layers int }{{32, 2}, {64, 3}, {768, 12}} {
		_, err := Load("testdata/lenses/f32", c.d, c.layers)
		var me *MismatchError
		if !errors.As(err, &me) {
			t.Fatalf("d %d, %d layers: err %v", c.d, c.layers, err)
		}
		msg := err.Error()
		for _, want := range []string{"d_model 64 and 2 layers", "this model has d_model " + strconv.Itoa(c.d) + " and " + strconv.Itoa(c.layers) + " layers"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q lacks %q", msg, want)
			}
		}
	}
}

func TestParseConfig(t *testing.T) {
	good := `{"base_model_name_or_path": "gpt2", "d_model": 768, "num_hidden_layers": 12, "extra": 1}`
	c, err := ParseConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Bias || c.LensType != LensType || c.DModel != 768 || c.NumHiddenLayers != 12 || c.BaseModel != "gpt2" {
		t.Errorf("defaults: %+v", c)
	}
	bad := map[string]string{
		`{"d_model": 768, "num_hidden_layers": 12}`:                                                    "base_model_name_or_path",
		`{"base_model_name_or_path": "x", "num_hidden_layers": 12}`:                                    "d_model",
		`{"base_model_name_or_path": "x", "d_model": 768}`:                                             "num_hidden_layers",
		`{"base_model_name_or_path": "x", "d_model": 0, "num_hidden_layers": 12}`:                      "d_model 0",
		`{"base_model_name_or_path": "x", "d_model": 8, "num_hidden_layers": -1}`:                      "num_hidden_layers -1",
		`{"base_model_name_or_path": "x", "d_model": 8, "num_hidden_layers": 1, "lens_type": "other"}`: "lens_type",
		`{"base_model_name_or_path": "x", "d_model": "8", "num_hidden_layers": 1}`:                     "d_model",
		`[1]`: "config.json",
	}
	for in, want := range bad {
		if _, err := ParseConfig([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want it to mention %q", in, err, want)
		}
	}
}

// TestRoundTrip: what Save writes, Load reads back exactly; the bytes are
// deterministic and every storage starts on a 64-byte boundary, as torch's
// writer aligns them.
func TestRoundTrip(t *testing.T) {
	for _, bias := range []bool{true, false} {
		l := Identity("m", 5, 3, bias)
		for i := range l.Translators {
			for j := range l.Translators[i].Weight {
				l.Translators[i].Weight[j] = float32(i*100+j) / 7
			}
			for j := range l.Translators[i].Bias {
				l.Translators[i].Bias[j] = -float32(i*10+j) / 3
			}
		}
		h := "abc"
		l.Config.UnembedHash = &h
		dir := t.TempDir()
		if err := Save(dir, l); err != nil {
			t.Fatal(err)
		}
		got, err := Load(dir, 5, 3)
		if err != nil {
			t.Fatal(err)
		}
		if got.Config.UnembedHash == nil || *got.Config.UnembedHash != h || got.Config.Bias != bias {
			t.Errorf("config %+v", got.Config)
		}
		for i := range l.Translators {
			if sha(got.Translators[i].Weight) != sha(l.Translators[i].Weight) || sha(got.Translators[i].Bias) != sha(l.Translators[i].Bias) {
				t.Errorf("bias %v: translator %d differs", bias, i)
			}
		}
		a, _ := os.ReadFile(filepath.Join(dir, "params.pt"))
		var b bytes.Buffer
		if err := WriteParams(&b, l.Translators); err != nil || !bytes.Equal(a, b.Bytes()) {
			t.Errorf("second write differs (err %v)", err)
		}
		zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			off, _ := f.DataOffset()
			if off%64 != 0 || f.Method != zip.Store {
				t.Errorf("%s: data at %d, method %d", f.Name, off, f.Method)
			}
		}
	}
}
