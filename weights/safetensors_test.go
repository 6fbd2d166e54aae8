package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

// stTensor is one tensor for the test writer: raw holds its little-endian bytes.
type stTensor struct {
	name, dtype string
	shape       []int
	raw         []byte
}

// stFile frames header JSON and data as a safetensors file.
func stFile(header string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

// stBuild writes tensors back to back with consistent offsets, the header
// padded with spaces to pad bytes (1 = no padding).
func stBuild(pad int, ts ...stTensor) []byte {
	var h bytes.Buffer
	var data []byte
	h.WriteString(`{"__metadata__":{"format":"pt"}`)
	for _, t := range ts {
		shape, _ := json.Marshal(t.shape)
		fmt.Fprintf(&h, `,%q:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, t.name, t.dtype, shape, len(data), len(data)+len(t.raw))
		data = append(data, t.raw...)
	}
	h.WriteString("}")
	for h.Len()%pad != 0 {
		h.WriteByte(' ')
	}
	return stFile(h.String(), data)
}

func f32Bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func u16Bytes(v ...uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	file := stBuild(8,
		stTensor{"a", "F32", []int{2, 2}, f32Bytes(1, -2, 3.5, 0)},
		stTensor{"b", "F16", []int{3}, u16Bytes(0x3c00, 0xc000, 0x3555)}, // 1, -2, 0.33325195
		stTensor{"c", "BF16", []int{2}, u16Bytes(0x3f80, 0xc0a0)},        // 1, -5
		stTensor{"s", "F32", []int{}, f32Bytes(7)},
		stTensor{"z", "F32", []int{0, 5}, nil},
		stTensor{"i", "I32", []int{1}, []byte{1, 0, 0, 0}},
	)
	path := filepath.Join(t.TempDir(), "x.safetensors")
	writeFile(t, path, file)
	f, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata = %v", f.Metadata)
	}
	want := map[string][]float32{
		"a": {1, -2, 3.5, 0}, "b": {1, -2, 0.33325195}, "c": {1, -5}, "s": {7}, "z": {},
	}
	for name, w := range want {
		e, ok := f.Entry(name)
		if !ok {
			t.Fatalf("no entry %q", name)
		}
		got, err := f.Float32(e)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != e.Len() || fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s = %v (len %d), want %v", name, got, e.Len(), w)
		}
	}
	e, _ := f.Entry("i")
	if _, err := f.Float32(e); err == nil || !strings.Contains(err.Error(), "unsupported dtype I32") {
		t.Errorf("I32 conversion: err = %v", err)
	}
	if e.Begin != 4*4+2*3+2*2+4 || e.End != e.Begin+4 || fmt.Sprint(e.Shape) != "[1]" {
		t.Errorf("entry i = %+v", e)
	}
	a, _ := f.Entry("a")
	ad, _ := f.Float32(a)
	if !f.contains(unsafe.Pointer(&ad[0])) {
		t.Error("aligned F32 tensor was copied, want a view of the mapping")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// An F32 tensor at an offset that is not a multiple of 4 must be copied and
// still read correctly.
func TestSafetensorsUnalignedF32(t *testing.T) {
	file := stBuild(1,
		stTensor{"h", "F16", []int{1}, u16Bytes(0x3c00)},
		stTensor{"x", "F32", []int{3}, f32Bytes(1.5, -0.25, 1e-30)},
	)
	f, err := ParseSafetensors("mem", file)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := f.Entry("x")
	if (f.start+int(e.Begin))%4 == 0 {
		t.Fatalf("test file is aligned (start %d, begin %d); adjust it", f.start, e.Begin)
	}
	got, err := f.Float32(e)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint([]float32{1.5, -0.25, 1e-30}) {
		t.Errorf("got %v", got)
	}
	if f.contains(unsafe.Pointer(&got[0])) {
		t.Error("unaligned F32 data aliases the file")
	}
}

// Every kind of bad file gets one error naming the problem and the file.
func TestSafetensorsCorrupt(t *testing.T) {
	good := f32Bytes(1, 2)
	hdr := func(entries string) string { return "{" + entries + "}" }
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"short", []byte{1, 2, 3}, "truncated"},
		{"header past end", []byte{1, 0, 0, 0, 0, 0, 0, 0}, "exceeds file size"}, // 1 header byte promised, none there
		{"absurd header", func() []byte {
			b := make([]byte, 16)
			binary.LittleEndian.PutUint64(b, 1<<40)
			return b
		}(), "too large"},
		{"header exceeds file", func() []byte {
			b := stFile(hdr(""), nil)
			binary.LittleEndian.PutUint64(b, 1000)
			return b
		}(), "exceeds file size"},
		{"truncated data", func() []byte { b := stBuild(8, stTensor{"a", "F32", []int{2}, good}); return b[:len(b)-1] }(), "out of range"},
		{"invalid json", stFile(`{"a":`, nil), "invalid header JSON"},
		{"not an object", stFile(`[1,2]`, nil), "invalid header JSON"},
		{"trailing json", stFile(`{}{}`, nil), "trailing"},
		{"entry not object", stFile(hdr(`"a":3`), nil), "invalid header entry"},
		{"missing dtype", stFile(hdr(`"a":{"shape":[2],"data_offsets":[0,8]}`), good), "missing dtype"},
		{"missing shape", stFile(hdr(`"a":{"dtype":"F32","data_offsets":[0,8]}`), good), "missing shape"},
		{"missing offsets", stFile(hdr(`"a":{"dtype":"F32","shape":[2]}`), good), "data_offsets must be"},
		{"three offsets", stFile(hdr(`"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}`), good), "data_offsets must be"},
		{"unknown dtype", stFile(hdr(`"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}`), good), `unknown dtype "F33"`},
		{"negative dim", stFile(hdr(`"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}`), good), "negative dimension"},
		{"fractional dim", stFile(hdr(`"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}`), good), "invalid header entry"},
		{"overflow", stFile(hdr(`"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}`), good), "overflows"},
		{"overflow bytes", stFile(hdr(`"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}`), good), "overflows"},
		{"byte count", stFile(hdr(`"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}`), good), "byte count mismatch"},
		{"dtype size", stFile(hdr(`"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}`), good), "byte count mismatch"},
		{"negative offset", stFile(hdr(`"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}`), good), "negative data_offsets"},
		{"end before begin", stFile(hdr(`"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}`), good), "end before begin"},
		{"out of range", stFile(hdr(`"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}`), good), "out of range"},
		{"overlap", stFile(hdr(`"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}`), good), "overlap"},
		{"gap", stFile(hdr(`"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}`), good), "gap"},
		{"trailing bytes", stFile(hdr(`"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`), good), "cover it exactly"},
		{"no tensors but data", stFile(hdr(``), good), "cover it exactly"},
		{"duplicate", stFile(hdr(`"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}`), good), `duplicate tensor "a"`},
		{"bad metadata", stFile(hdr(`"__metadata__":{"x":1}`), nil), "__metadata__"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "model.safetensors")
			writeFile(t, path, c.file)
			f, err := OpenSafetensors(path)
			if err == nil {
				f.Close()
				t.Fatalf("no error, want one containing %q", c.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "weights: model.safetensors: ") || !strings.Contains(msg, c.want) {
				t.Errorf("error %q, want prefix \"weights: model.safetensors: \" and %q", msg, c.want)
			}
		})
	}
}

func TestSafetensorsNotFound(t *testing.T) {
	_, err := OpenSafetensors(filepath.Join(t.TempDir(), "nope.safetensors"))
	if err == nil || !strings.HasPrefix(err.Error(), "weights: ") || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("err = %v", err)
	}
	_, err = OpenSafetensors(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("dir: err = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// FuzzSafetensorsHeader feeds arbitrary bytes to the parser as a whole file.
// Accepted files must satisfy the format's invariants, and converting every
// float tensor must not panic.
func FuzzSafetensorsHeader(f *testing.F) {
	f.Add(stBuild(8,
		stTensor{"wte.weight", "F32", []int{2, 2}, f32Bytes(1, 2, 3, 4)},
		stTensor{"b", "F16", []int{1}, u16Bytes(0x7c00)},
		stTensor{"c", "BF16", []int{}, u16Bytes(0x3f80)},
	))
	f.Add(stBuild(1, stTensor{"h", "F16", []int{1}, u16Bytes(1)}, stTensor{"x", "F32", []int{1, 1}, f32Bytes(-1)}))
	f.Add(stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32Bytes(1)))
	f.Add(stFile(`{"a":{"dtype":"F32","shape":[0,9223372036854775807],"data_offsets":[0,0]}}`, nil))
	f.Add(stFile(`{"__metadata__":{"a":"b"}}`, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := ParseSafetensors("fuzz", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "weights: fuzz: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			if msg := err.Error(); len(msg) > 1000 || strings.ContainsAny(msg, "\n\x1b\x07") {
				t.Fatalf("error is not one short line: %.300q (%d bytes)", msg, len(msg))
			}
			return
		}
		at := int64(0)
		for i, e := range sf.Entries {
			if e.Begin != at || e.End < e.Begin {
				t.Fatalf("entry %d %+v does not follow %d", i, e, at)
			}
			at = e.End
			if g, ok := sf.Entry(e.Name); !ok || g.Begin != e.Begin {
				t.Fatalf("Entry(%q) = %+v, %v", e.Name, g, ok)
			}
			if int64(e.Len())*dtypeSizes[e.Dtype] != e.End-e.Begin {
				t.Fatalf("entry %+v: %d elements", e, e.Len())
			}
			switch e.Dtype {
			case "F32", "F16", "BF16":
				x, err := sf.Float32(e)
				if err != nil || len(x) != e.Len() {
					t.Fatalf("Float32(%+v) = len %d, %v", e, len(x), err)
				}
				nonFinite(x)
			}
		}
		if at != int64(len(data)-sf.start) {
			t.Fatalf("entries cover %d of %d data bytes", at, len(data)-sf.start)
		}
	})
}

// nonFinite's branch-free bit scan must agree with the plain definition.
func TestNonFinite(t *testing.T) {
	ref := func(x []float32) int {
		for i, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return i
			}
		}
		return -1
	}
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7f800001), math.Float32frombits(0xffc00000)}
	finite := []float32{0, float32(math.Copysign(0, -1)), math.MaxFloat32, -math.MaxFloat32,
		math.SmallestNonzeroFloat32, 1, -1, math.Float32frombits(0x7f7fffff), math.Float32frombits(0x807fffff)}
	for _, n := range []int{0, 1, 3, 4, 5, 1023, 1024, 1025, 4099} {
		x := make([]float32, n)
		for i := range x {
			x[i] = finite[i%len(finite)]
		}
		if got := nonFinite(x); got != -1 {
			t.Fatalf("n=%d all finite: got %d", n, got)
		}
		for _, pos := range []int{0, 1, 2, 3, n / 2, 1023, 1024, n - 1} {
			if pos < 0 || pos >= n {
				continue
			}
			for _, s := range specials {
				y := append([]float32(nil), x...)
				y[pos] = s
				if n > 1 && pos+1 < n {
					y[n-1] = s // a later one must not win
				}
				if got, want := nonFinite(y), ref(y); got != want || got != pos {
					t.Fatalf("n=%d special %v at %d: got %d, want %d", n, s, pos, got, want)
				}
			}
		}
	}
}
