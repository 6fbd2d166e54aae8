package tunedlens

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// torchZip wraps a data.pkl and storage files ("data/0": bytes) in the zip
// layout torch.save writes.
func torchZip(t testing.TB, pkl []byte, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	add := func(name string, data []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	add("data.pkl", pkl)
	for name, data := range files {
		add(name, data)
	}
	add("version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// statePickle is a state dict pickle whose entries the caller writes with p.
func statePickle(entries func(p *pickler)) []byte {
	var p pickler
	p.proto()
	p.global("collections", "OrderedDict")
	p.op(opEmptyTuple, opReduce, opMark)
	entries(&p)
	p.op(opSetItems, opStop)
	return p.Bytes()
}

// tensorEntry writes key: _rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict()).
func tensorEntry(p *pickler, key, storageType, storage string, numel, offset int, shape, stride []int) {
	p.str(key)
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op(opMark, opMark)
	p.str("storage")
	p.global("torch", storageType)
	p.str(storage)
	p.str("cpu")
	p.int(numel)
	p.op(opTuple, opBinPersID)
	p.int(offset)
	p.ints(shape...)
	p.ints(stride...)
	p.op(opFalse)
	p.global("collections", "OrderedDict")
	p.op(opEmptyTuple, opReduce, opTuple, opReduce)
}

func f32Bytes(n int, v float32) []byte {
	b := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func readBytes(data []byte, d, layers int, bias bool) ([]Translator, error) {
	return readParams(bytes.NewReader(data), int64(len(data)), d, layers, bias)
}

// TestHostile feeds files that are not what they claim; each must give an
// error that says what is wrong (and nothing may run, allocate more than
// the file, or panic).
func TestHostile(t *testing.T) {
	const d = 4
	good := func(p *pickler) { // one layer, no bias
		tensorEntry(p, "0.weight", "FloatStorage", "0", d*d, 0, []int{d, d}, []int{d, 1})
	}
	storage := map[string][]byte{"data/0": f32Bytes(d*d, 0.5)}
	if ts, err := readBytes(torchZip(t, statePickle(good), storage), d, 1, false); err != nil || ts[0].Weight[d*d-1] != 0.5 {
		t.Fatalf("the well-formed base case fails: %v", err)
	}

	raw := func(ops string) []byte { return []byte("\x80\x02" + ops) }
	huge := func(op byte, lenBytes int) []byte {
		b := []byte{0x80, 2, op}
		b = append(b, bytes.Repeat([]byte{0xff}, lenBytes-1)...)
		b = append(b, 0x7f, 'x', '.')
		return b
	}
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"os.system", torchZip(t, raw("cos\nsystem\nX\x02\x00\x00\x00id\x85R."), nil), `refusing to load os.system`},
		{"builtins.eval via STACK_GLOBAL", torchZip(t, raw("\x8c\x08builtins\x8c\x04eval\x93X\x01\x00\x00\x001\x85R."), nil), `refusing to load builtins.eval`},
		{"a module class", torchZip(t, raw("ctorch.nn.modules.linear\nLinear\n)\x81."), nil), `refusing to load torch.nn.modules.linear.Linear`},
		{"escape codes in a name", torchZip(t, raw("c\x1b[31mevil\nx\n."), nil), `refusing to load \x1b[31mevil.x`},
		{"BINUNICODE8 of 2^63 bytes", torchZip(t, huge(0x8d, 8), nil), "announces"},
		{"BINBYTES of 2^31 bytes", torchZip(t, huge('B', 4), nil), "announces"},
		{"FRAME of 2^63 bytes", torchZip(t, huge(0x95, 8), nil), "announces"},
		{"negative BINSTRING", torchZip(t, raw("T\xff\xff\xff\xffx."), nil), "negative length"},
		{"no STOP", torchZip(t, raw("}"), nil), "truncated"},
		{"EXT1", torchZip(t, raw("\x82\x01."), nil), "refusing opcode EXT1"},
		{"unknown opcode", torchZip(t, raw("\xff."), nil), "unknown opcode 0xff"},
		{"odd SETITEMS", torchZip(t, raw("}(X\x01\x00\x00\x00au."), nil), "pickle: malformed"},
		{"a list, not a dict", torchZip(t, raw("]."), nil), "not a state dict"},
		{"a non-string key", torchZip(t, raw("}(K\x01K\x02u."), nil), "not a string"},
		{"view past the storage", torchZip(t, statePickle(func(p *pickler) {
			tensorEntry(p, "0.weight", "FloatStorage", "0", 10, 0, []int{d, d}, []int{d, 1})
		}), map[string][]byte{"data/0": f32Bytes(10, 1)}), "reaches element 15 of a 10-element storage"},
		{"stride spanning the file", torchZip(t, statePickle(func(p *pickler) {
			tensorEntry(p, "0.weight", "FloatStorage", "0", 1<<20, 0, []int{d, d}, []int{1 << 16, 1})
		}), map[string][]byte{"data/0": f32Bytes(1, 1)}), "spans"},
		{"storage smaller than announced", torchZip(t, statePickle(good), map[string][]byte{"data/0": f32Bytes(3, 1)}), "holds 12 bytes"},
		{"storage missing", torchZip(t, statePickle(good), nil), "missing from the archive"},
		{"NaN", torchZip(t, statePickle(good), map[string][]byte{"data/0": f32Bytes(d*d, float32(math.NaN()))}), "element 0 is NaN"},
		{"Inf from F64", torchZip(t, statePickle(func(p *pickler) {
			tensorEntry(p, "0.weight", "DoubleStorage", "0", d*d, 0, []int{d, d}, []int{d, 1})
		}), map[string][]byte{"data/0": bytes.Repeat(binary.LittleEndian.AppendUint64(nil, math.Float64bits(1e300)), d*d)}), "+Inf"},
		{"int storage", torchZip(t, statePickle(func(p *pickler) {
			tensorEntry(p, "0.weight", "LongStorage", "0", d*d, 0, []int{d, d}, []int{d, 1})
		}), nil), "refusing to load torch.LongStorage"},
		{"wrong shape", torchZip(t, statePickle(func(p *pickler) {
			tensorEntry(p, "0.weight", "FloatStorage", "0", d*d, 0, []int{d * d}, []int{1})
		}), storage), "0.weight has shape [16], want [4 4]"},
		{"a translator past the last layer", torchZip(t, statePickle(func(p *pickler) {
			good(p)
			tensorEntry(p, "1.weight", "FloatStorage", "0", d*d, 0, []int{d, d}, []int{d, 1})
		}), storage), "translator 1, but the lens has 1 layers"},
		{"prefixed and plain keys", torchZip(t, statePickle(func(p *pickler) {
			good(p)
			tensorEntry(p, "layer_translators.0.weight", "FloatStorage", "0", d*d, 0, []int{d, d}, []int{d, 1})
		}), storage), `both "0.weight" and "layer_translators.0.weight"`},
		{"a weight that is not a tensor", torchZip(t, raw("}(X\x08\x00\x00\x000.weightK\x01u."), nil), "0.weight is an int, not a tensor"},
		{"no weight", torchZip(t, statePickle(func(*pickler) {}), nil), "no 0.weight"},
		{"TorchScript", func() []byte {
			b := torchZip(t, statePickle(good), map[string][]byte{"constants.pkl": raw(".")})
			return b
		}(), "TorchScript"},
		{"zip without data.pkl", func() []byte {
			var b bytes.Buffer
			zw := zip.NewWriter(&b)
			w, _ := zw.Create("archive/other")
			w.Write([]byte("x"))
			zw.Close()
			return b.Bytes()
		}(), "no ARCHIVE/data.pkl"},
		{"not torch at all", []byte("this is a text file\n"), "not a file torch.save wrote"},
		{"empty", nil, "too short"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readBytes(c.file, d, 1, false)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want it to contain %q", err, c.want)
			}
		})
	}

	var refused *RefusedError
	_, err := readBytes(cases[0].file, d, 1, false)
	if !errors.As(err, &refused) || refused.Name != "os.system" {
		t.Errorf("os.system: %v is not a RefusedError", err)
	}
}

// TestBiasMismatch: config.json's bias must agree with the keys present.
func TestBiasMismatch(t *testing.T) {
	data, err := os.ReadFile("testdata/lenses/f32/params.pt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readBytes(data, tinyD, tinyLayers, false); err == nil || !strings.Contains(err.Error(), "0.bias present, but config.json says bias: false") {
		t.Errorf("bias keys with bias false: %v", err)
	}
	data, err = os.ReadFile("testdata/lenses/nobias/params.pt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readBytes(data, tinyD, tinyLayers, true); err == nil || !strings.Contains(err.Error(), "no 0.bias, but config.json says bias: true") {
		t.Errorf("no bias keys with bias true: %v", err)
	}
}

// TestTruncated cuts the reference files at every length: each prefix is
// an error, never a panic.
func TestTruncated(t *testing.T) {
	for _, name := range []string{"f32", "legacy-f32", "bf16-prefixed"} {
		data, err := os.ReadFile(filepath.Join("testdata/lenses", name, "params.pt"))
		if err != nil {
			t.Fatal(err)
		}
		step := func(n int) int { // every cut in the headers and the pickle, a sample in the numbers
			if n < 2048 {
				return 1
			}
			return 61
		}
		for n := 0; n < len(data); n += step(n) {
			if _, err := readBytes(data[:n], tinyD, tinyLayers, true); err == nil {
				t.Fatalf("%s cut to %d of %d bytes reads without error", name, n, len(data))
			}
		}
	}
}

// FuzzReadParams: any bytes give translators of the asked shape or an
// error; seeds are the reference files in both layouts.
func FuzzReadParams(f *testing.F) {
	for _, name := range []string{"f32", "legacy-f32", "bf16-prefixed", "nobias", "f16"} {
		data, err := os.ReadFile(filepath.Join("testdata/lenses", name, "params.pt"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, bias := range []bool{true, false} {
			ts, err := readBytes(data, tinyD, tinyLayers, bias)
			if err != nil {
				continue
			}
			if len(ts) != tinyLayers {
				t.Fatalf("%d translators", len(ts))
			}
			for _, tr := range ts {
				if len(tr.Weight) != tinyD*tinyD || (bias && len(tr.Bias) != tinyD) || (!bias && tr.Bias != nil) {
					t.Fatalf("shapes %d, %d", len(tr.Weight), len(tr.Bias))
				}
			}
		}
	})
}

// FuzzPickle mutates a state dict's pickle alone (inside a valid zip), where
// the unpickler's input is reached without first breaking the zip.
func FuzzPickle(f *testing.F) {
	data, err := os.ReadFile("testdata/lenses/f32/params.pt")
	if err != nil {
		f.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		f.Fatal(err)
	}
	files := map[string][]byte{}
	var pkl []byte
	for _, zf := range zr.File {
		b, err := readEntry(zf, 1<<20)
		if err != nil {
			f.Fatal(err)
		}
		name := strings.TrimPrefix(zf.Name, "params/")
		if name == "data.pkl" {
			pkl = b
		} else if strings.HasPrefix(name, "data/") {
			files[name] = b
		}
	}
	f.Add(pkl)
	f.Fuzz(func(t *testing.T, pkl []byte) {
		readBytes(torchZip(t, pkl, files), tinyD, tinyLayers, true)
	})
}
