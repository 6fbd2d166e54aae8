package weights

// Safetensors reader.
//
// A .safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON mapping tensor names to {dtype, shape, data_offsets}, then the data
// region. Offsets are relative to the data region, [begin, end). The file is
// mapped read-only and whole: F32 tensors whose bytes are 4-byte aligned are
// returned as []float32 views of the mapping (no heap, RSS only for touched
// pages); F16/BF16 and unaligned F32 are converted into fresh slices.
//
// Validation follows the reference implementation (huggingface/safetensors):
// the header is at most 100 MB, names are unique, every entry's byte count
// equals its element count times its dtype size, and the entries, sorted by
// offset, tile the data region exactly: no gap, no overlap, no trailing bytes.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"path/filepath"
	"sort"
	"unsafe"

	"github.com/x448/float16"
)

// MaxSafetensorsHeader is the largest header accepted, in bytes (the limit of
// the reference implementation).
const MaxSafetensorsHeader = 100_000_000

// dtypeSizes gives the element size in bytes of every dtype the format
// defines with whole-byte elements. Only F32, F16 and BF16 convert to float32.
var dtypeSizes = map[string]int64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8, "C64": 8,
}

// SafetensorsEntry describes one tensor of a safetensors header.
type SafetensorsEntry struct {
	Name  string // as stored, e.g. "transformer.h.0.ln_1.weight"
	Dtype string // e.g. "F32", "F16", "BF16"
	Shape []int  // empty for a 0-d tensor
	Begin int64  // byte offset of the first byte, relative to the data region
	End   int64  // byte offset one past the last byte, relative to the data region
}

// Len returns the number of elements (1 for a 0-d tensor).
func (e SafetensorsEntry) Len() int {
	n := 1
	for _, d := range e.Shape {
		n *= d
	}
	return n
}

// SafetensorsFile is an opened, validated safetensors file.
type SafetensorsFile struct {
	Path     string             // as given to OpenSafetensors
	Metadata map[string]string  // the optional "__metadata__" object
	Entries  []SafetensorsEntry // sorted by Begin
	byName   map[string]int     // index into Entries
	data     []byte             // the whole file: mmap, or caller's bytes
	start    int                // offset of the data region in data
	mapped   bool               // data is an mmap to undo in Close
}

// OpenSafetensors maps path read-only (on systems without mmap it reads the
// file into memory) and validates its header. Errors read
// "weights: <base name>: ...". Close unmaps it.
func OpenSafetensors(path string) (*SafetensorsFile, error) {
	name := filepath.Base(path)
	fd, st, err := OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer fd.Close()
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("weights: %s: truncated: %d bytes, need at least 8 for the header length", name, size)
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("weights: %s: file too large to map (%d bytes)", name, size)
	}
	data, err := mapFile(fd, int(size))
	if err != nil {
		return nil, fmt.Errorf("weights: %s: %w", name, err)
	}
	f, err := parseSafetensors(name, data)
	if err != nil {
		unmapFile(data)
		return nil, err
	}
	f.Path = path
	f.mapped = true
	return f, nil
}

// ParseSafetensors validates a whole safetensors file held in memory; the
// result's tensors alias data. name is used in errors only.
func ParseSafetensors(name string, data []byte) (*SafetensorsFile, error) {
	f, err := parseSafetensors(name, data)
	if err != nil {
		return nil, err
	}
	f.Path = name
	return f, nil
}

// rawEntry is a header entry as decoded; int64 so that negative values are
// reported as such rather than as JSON type errors.
type rawEntry struct {
	Dtype       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

func parseSafetensors(name string, data []byte) (*SafetensorsFile, error) {
	fail := func(format string, args ...any) (*SafetensorsFile, error) {
		return nil, fmt.Errorf("weights: %s: "+format, append([]any{name}, args...)...)
	}
	if len(data) < 8 {
		return fail("truncated: %d bytes, need at least 8 for the header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data[:8])
	if n > MaxSafetensorsHeader {
		return fail("header length %d is too large (limit %d bytes)", n, MaxSafetensorsHeader)
	}
	if n > uint64(len(data)-8) {
		return fail("header length %d exceeds file size %d (truncated file?)", n, len(data))
	}
	start := 8 + int(n)
	dataLen := int64(len(data) - start)

	dec := json.NewDecoder(bytes.NewReader(data[8:start]))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fail("invalid header JSON: want an object")
	}
	f := &SafetensorsFile{byName: map[string]int{}, data: data, start: start}
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail("invalid header JSON: %v", err)
		}
		key := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fail("invalid header JSON: %v", err)
		}
		if key == "__metadata__" {
			if seenMeta {
				return fail("duplicate __metadata__ in header")
			}
			seenMeta = true
			if err := json.Unmarshal(raw, &f.Metadata); err != nil {
				return fail("__metadata__ must map strings to strings: %v", err)
			}
			continue
		}
		if _, dup := f.byName[key]; dup {
			return fail("duplicate tensor %s in header", quote(key))
		}
		e, err := parseEntry(key, raw, dataLen)
		if err != nil {
			return fail("%v", err)
		}
		f.byName[key] = len(f.Entries)
		f.Entries = append(f.Entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return fail("invalid header JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail("invalid header JSON: trailing data after the object")
	}
	if err := f.checkTiling(dataLen); err != nil {
		return fail("%v", err)
	}
	return f, nil
}

// parseEntry checks one header entry on its own: known dtype, non-negative
// dims, no overflow, offsets in range, byte count = elements × dtype size.
func parseEntry(key string, raw json.RawMessage, dataLen int64) (SafetensorsEntry, error) {
	var r rawEntry
	if err := json.Unmarshal(raw, &r); err != nil {
		return SafetensorsEntry{}, fmt.Errorf("tensor %s: invalid header entry: %v", quote(key), err)
	}
	switch {
	case r.Dtype == nil:
		return SafetensorsEntry{}, fmt.Errorf("tensor %s: missing dtype", quote(key))
	case r.Shape == nil:
		return SafetensorsEntry{}, fmt.Errorf("tensor %s: missing shape", quote(key))
	case r.DataOffsets == nil || len(*r.DataOffsets) != 2:
		return SafetensorsEntry{}, fmt.Errorf("tensor %s: data_offsets must be [begin, end]", quote(key))
	}
	size, ok := dtypeSizes[*r.Dtype]
	if !ok {
		return SafetensorsEntry{}, fmt.Errorf("tensor %s: unknown dtype %s", quote(key), quote(*r.Dtype))
	}
	e := SafetensorsEntry{Name: key, Dtype: *r.Dtype, Shape: make([]int, len(*r.Shape))}
	elems := uint64(1)
	for i, d := range *r.Shape {
		if d < 0 {
			return SafetensorsEntry{}, fmt.Errorf("tensor %s: negative dimension %d in shape %s", quote(key), d, fmtShape(*r.Shape))
		}
		hi, lo := bits.Mul64(elems, uint64(d))
		if hi != 0 || lo > math.MaxInt64/8 {
			return SafetensorsEntry{}, fmt.Errorf("tensor %s: shape %s overflows", quote(key), fmtShape(*r.Shape))
		}
		elems = lo
		e.Shape[i] = int(d)
	}
	want := elems * uint64(size) // ≤ MaxInt64: elems ≤ MaxInt64/8
	e.Begin, e.End = (*r.DataOffsets)[0], (*r.DataOffsets)[1]
	switch {
	case e.Begin < 0 || e.End < 0:
		return SafetensorsEntry{}, fmt.Errorf("tensor %s: negative data_offsets [%d, %d]", quote(key), e.Begin, e.End)
	case e.End < e.Begin:
		return SafetensorsEntry{}, fmt.Errorf("tensor %s: invalid data_offsets [%d, %d]: end before begin", quote(key), e.Begin, e.End)
	case e.End > dataLen:
		return SafetensorsEntry{}, fmt.Errorf("tensor %s: data_offsets [%d, %d] out of range: data region is %d bytes (truncated file?)", quote(key), e.Begin, e.End, dataLen)
	case uint64(e.End-e.Begin) != want:
		return SafetensorsEntry{}, fmt.Errorf("tensor %s: byte count mismatch: %s shape %s needs %d bytes, data_offsets [%d, %d] hold %d", quote(key), e.Dtype, fmtShape(e.Shape), want, e.Begin, e.End, e.End-e.Begin)
	}
	return e, nil
}

// checkTiling sorts the entries by offset and checks that they cover the data
// region exactly, one after the other.
func (f *SafetensorsFile) checkTiling(dataLen int64) error {
	sort.SliceStable(f.Entries, func(i, j int) bool {
		a, b := f.Entries[i], f.Entries[j]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		return a.End < b.End
	})
	at := int64(0)
	for i, e := range f.Entries {
		f.byName[e.Name] = i
		if e.Begin < at {
			return fmt.Errorf("tensor %s: data_offsets [%d, %d] overlap the previous tensor %s (ends at %d)", quote(e.Name), e.Begin, e.End, quote(f.Entries[i-1].Name), at)
		}
		if e.Begin > at {
			return fmt.Errorf("tensor %s: data_offsets [%d, %d] leave a gap of %d bytes before it: offsets must cover the data region contiguously", quote(e.Name), e.Begin, e.End, e.Begin-at)
		}
		at = e.End
	}
	if at != dataLen {
		return fmt.Errorf("data region is %d bytes but the tensors cover %d: offsets must cover it exactly", dataLen, at)
	}
	return nil
}

// Entry returns the header entry of the tensor stored under name.
func (f *SafetensorsFile) Entry(name string) (SafetensorsEntry, bool) {
	i, ok := f.byName[name]
	if !ok {
		return SafetensorsEntry{}, false
	}
	return f.Entries[i], true
}

// Bytes returns the raw little-endian bytes of e, aliasing the file.
func (f *SafetensorsFile) Bytes(e SafetensorsEntry) []byte {
	return f.data[f.start+int(e.Begin) : f.start+int(e.End) : f.start+int(e.End)]
}

// Float32 returns the values of e as float32. Aligned F32 data aliases the
// file (read-only: never write to it); F16, BF16 and unaligned F32 are
// converted into a new slice. Other dtypes are an error.
func (f *SafetensorsFile) Float32(e SafetensorsEntry) ([]float32, error) {
	b := f.Bytes(e)
	n := len(b)
	switch e.Dtype {
	case "F32":
		n /= 4
		if n == 0 {
			return []float32{}, nil
		}
		if littleEndian && uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
			return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n), nil
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	case "F16":
		out := make([]float32, n/2)
		for i := range out {
			out[i] = float16.Frombits(binary.LittleEndian.Uint16(b[2*i:])).Float32()
		}
		return out, nil
	case "BF16":
		out := make([]float32, n/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
		return out, nil
	}
	return nil, fmt.Errorf("weights: %s: tensor %s: unsupported dtype %s (want F32, F16 or BF16)", filepath.Base(f.Path), quote(e.Name), e.Dtype)
}

// Close unmaps the file; slices returned by Float32 and Bytes must not be
// used afterwards. Closing twice is a no-op.
func (f *SafetensorsFile) Close() error {
	data := f.data
	f.data, f.Entries, f.byName = nil, nil, nil
	if !f.mapped || data == nil {
		return nil
	}
	f.mapped = false
	if err := unmapFile(data); err != nil {
		return fmt.Errorf("weights: %s: %w", filepath.Base(f.Path), err)
	}
	return nil
}

// contains reports whether p points into the file's bytes.
func (f *SafetensorsFile) contains(p unsafe.Pointer) bool {
	if len(f.data) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(&f.data[0]))
	return uintptr(p) >= lo && uintptr(p) < lo+uintptr(len(f.data))
}

// littleEndian is true on hosts whose float32 memory layout matches the file's.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// nonFinite returns the index of the first NaN or ±Inf in x, or -1.
//
// This scan is most of OpenCheckpoint's time (GPT-2 small: 124M values), so
// it works on the bits, branch-free over blocks of 1024: an exponent of all
// ones, the mark of NaN and Inf, is the only one for which
// (u&0x7f800000)+0x00800000 sets bit 31. One unsafe cast per call rather than
// math.Float32bits per value also keeps -race's checkptr overhead away.
func nonFinite(x []float32) int {
	if len(x) == 0 {
		return -1
	}
	u := unsafe.Slice((*uint32)(unsafe.Pointer(&x[0])), len(x))
	const exp, carry = 0x7f800000, 0x00800000
	for lo := 0; lo < len(u); lo += 1024 {
		block := u[lo:min(lo+1024, len(u))]
		var a, b, c, d uint32
		i := 0
		for ; i+4 <= len(block); i += 4 {
			a |= block[i]&exp + carry
			b |= block[i+1]&exp + carry
			c |= block[i+2]&exp + carry
			d |= block[i+3]&exp + carry
		}
		for ; i < len(block); i++ {
			a |= block[i]&exp + carry
		}
		if (a|b|c|d)&0x80000000 == 0 {
			continue
		}
		for i, v := range block {
			if v&exp == exp {
				return lo + i
			}
		}
	}
	return -1
}
