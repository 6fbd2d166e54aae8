package tunedlens

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/logitlens/logitlens/display"
	"github.com/nlpodyssey/gopickle/types"
	"github.com/x448/float16"
)

// A params.pt comes in the two layouts torch.save writes:
//
//   - zip (torch ≥ 1.6, the default): ARCHIVE/data.pkl is the pickle,
//     ARCHIVE/data/<key> the raw bytes of each storage, ARCHIVE/byteorder
//     "little" or "big" (absent: little);
//   - legacy (_use_new_zipfile_serialization=False): five things back to
//     back — a pickled magic number, a pickled protocol version (1001), a
//     pickled sys_info dict, the state dict's pickle, a pickled list of
//     storage keys — then, for each key in that order, an 8-byte element
//     count and the storage's bytes.
//
// Either way the pickle only describes tensors (a storage key, an offset,
// sizes and strides); the numbers are read afterwards, only for the keys a
// lens needs, and only as many as each tensor covers.

// maxSpanFactor bounds how many storage elements a tensor's view may span
// per element it holds: a transposed or offset view spans about as many as
// it holds; a hostile stride could make it span the whole file.
const maxSpanFactor = 4

// maxEntries bounds the zip's file count and the legacy storage-key list.
const maxEntries = 1 << 16

// translatorKey matches the state-dict keys of a translator: "<i>.weight"
// and "<i>.bias", optionally under "layer_translators." (a whole TunedLens's
// state dict). Other keys (unembed.*, written by older versions) are ignored.
var translatorKey = regexp.MustCompile(`^(?:layer_translators\.)?(0|[1-9][0-9]{0,5})\.(weight|bias)$`)

// storageSource returns the raw bytes of elements [from, from+n) of a storage.
type storageSource interface {
	read(s *storageRef, from, n int) ([]byte, error)
}

// readParams reads the translators of a params.pt of the given size for a
// model with nLayer layers of width d: weights [d,d], and biases [d] when
// bias is set (else none may be present).
func readParams(r io.ReaderAt, size int64, d, nLayer int, bias bool) ([]Translator, error) {
	var head [4]byte
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return nil, errors.New("too short to be a PyTorch checkpoint")
	}
	var (
		state any
		src   storageSource
		err   error
	)
	if string(head[:]) == "PK\x03\x04" {
		state, src, err = openZip(r, size)
	} else {
		state, src, err = openLegacy(r, size)
	}
	if err != nil {
		return nil, err
	}
	return translators(state, src, d, nLayer, bias)
}

// translators picks the translator tensors out of an unpickled state dict
// and reads their numbers.
func translators(state any, src storageSource, d, nLayer int, bias bool) ([]Translator, error) {
	type entry struct {
		key string
		val any
	}
	var entries []entry
	switch m := state.(type) {
	case *types.OrderedDict:
		for e := m.List.Front(); e != nil; e = e.Next() {
			oe := e.Value.(*types.OrderedDictEntry)
			k, ok := oe.Key.(string)
			if !ok {
				return nil, fmt.Errorf("state dict key is %s, not a string", typeName(oe.Key))
			}
			entries = append(entries, entry{k, oe.Value})
		}
	case *types.Dict:
		for _, e := range *m {
			k, ok := e.Key.(string)
			if !ok {
				return nil, fmt.Errorf("state dict key is %s, not a string", typeName(e.Key))
			}
			entries = append(entries, entry{k, e.Value})
		}
	default:
		return nil, fmt.Errorf("the pickle holds %s, not a state dict", typeName(state))
	}

	weights := make([]*tensorRef, nLayer)
	biases := make([]*tensorRef, nLayer)
	names := make(map[string]string) // canonical "<i>.weight" -> key as stored
	for _, e := range entries {
		m := translatorKey.FindStringSubmatch(e.key)
		if m == nil {
			continue
		}
		canon := m[1] + "." + m[2]
		if prev, dup := names[canon]; dup {
			return nil, fmt.Errorf("both %q and %q hold translator %s", prev, e.key, canon)
		}
		names[canon] = e.key
		i, _ := strconv.Atoi(m[1])
		if i >= nLayer {
			return nil, fmt.Errorf("%s: translator %d, but the lens has %d layers (0..%d)", e.key, i, nLayer, nLayer-1)
		}
		t, ok := e.val.(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("%s is %s, not a tensor", e.key, typeName(e.val))
		}
		if m[2] == "weight" {
			weights[i] = t
		} else {
			biases[i] = t
		}
	}

	out := make([]Translator, nLayer)
	for i := range nLayer {
		if weights[i] == nil {
			return nil, fmt.Errorf("no %d.weight: the file holds no translator for layer %d", i, i)
		}
		w, err := readTensor(src, names[fmt.Sprintf("%d.weight", i)], weights[i], d, d)
		if err != nil {
			return nil, err
		}
		out[i].Weight = w
		key := fmt.Sprintf("%d.bias", i)
		switch {
		case biases[i] == nil && bias:
			return nil, fmt.Errorf("no %s, but config.json says bias: true", key)
		case biases[i] != nil && !bias:
			return nil, fmt.Errorf("%s present, but config.json says bias: false", names[key])
		case biases[i] != nil:
			if out[i].Bias, err = readTensor(src, names[key], biases[i], d); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// readTensor reads the tensor t, which must have the given shape, as
// row-major float32.
func readTensor(src storageSource, key string, t *tensorRef, shape ...int) ([]float32, error) {
	if !slices.Equal(t.shape, shape) {
		return nil, fmt.Errorf("%s has shape %v, want %v", key, t.shape, shape)
	}
	count, last := 1, t.offset // elements, highest storage index used
	for k, n := range shape {
		count *= n
		last += (n - 1) * t.stride[k]
	}
	if count == 0 {
		return []float32{}, nil
	}
	if last >= t.storage.numel {
		return nil, fmt.Errorf("%s: view reaches element %d of a %d-element storage", key, last, t.storage.numel)
	}
	span := last - t.offset + 1
	if span > maxSpanFactor*count {
		return nil, fmt.Errorf("%s: view spans %d storage elements for %d values", key, span, count)
	}
	raw, err := src.read(t.storage, t.offset, span)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	vals := decode(raw, t.storage.dtype)
	out := make([]float32, count)
	if len(shape) == 1 {
		for i := range out {
			out[i] = vals[i*t.stride[0]]
		}
	} else {
		cols := shape[1]
		for i := range shape[0] {
			for j := range cols {
				out[i*cols+j] = vals[i*t.stride[0]+j*t.stride[1]]
			}
		}
	}
	if i := firstNonFinite(out); i >= 0 {
		return nil, fmt.Errorf("%s: element %d is %v (%s storage)", key, i, out[i], t.storage.dtype)
	}
	return out, nil
}

// decode converts little-endian raw storage bytes to float32; every F16
// and BF16 value converts exactly, F64 rounds.
func decode(raw []byte, dt dtype) []float32 {
	n := len(raw) / dt.size()
	out := make([]float32, n)
	le := binary.LittleEndian
	for i := range out {
		switch dt {
		case f32:
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		case f16:
			out[i] = float16.Frombits(le.Uint16(raw[2*i:])).Float32()
		case bf16:
			out[i] = math.Float32frombits(uint32(le.Uint16(raw[2*i:])) << 16)
		case f64:
			out[i] = float32(math.Float64frombits(le.Uint64(raw[8*i:])))
		}
	}
	return out
}

// swapBytes reverses every size-byte element of b in place (big-endian
// storages).
func swapBytes(b []byte, size int) {
	for i := 0; i+size <= len(b); i += size {
		slices.Reverse(b[i : i+size])
	}
}

// storages collects the storages a pickle names, so one key always means
// one storage with one type and size.
type storages map[string]*storageRef

func (s storages) resolve(pid *types.Tuple) (*storageRef, error) {
	ref, err := storageFields(pid)
	if err != nil {
		return nil, err
	}
	if prev, ok := s[ref.key]; ok {
		if *prev != *ref {
			return nil, fmt.Errorf("storage %s named twice with different types or sizes", display.Safe(ref.key))
		}
		return prev, nil
	}
	if len(s) >= maxEntries {
		return nil, fmt.Errorf("more than %d storages", maxEntries)
	}
	s[ref.key] = ref
	return ref, nil
}

// zipSource reads storages from a torch zip archive.
type zipSource struct {
	files     map[string]*zip.File // storage key -> ARCHIVE/data/<key>
	r         io.ReaderAt
	bigEndian bool
}

func openZip(r io.ReaderAt, size int64) (any, storageSource, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, nil, fmt.Errorf("zip: %w", err)
	}
	if len(zr.File) > maxEntries {
		return nil, nil, fmt.Errorf("zip: %d files, more than a state dict has", len(zr.File))
	}
	var pkl *zip.File
	for _, f := range zr.File {
		dir, base := path.Split(f.Name)
		if strings.Count(dir, "/") != 1 {
			continue
		}
		switch base {
		case "data.pkl":
			if pkl != nil {
				return nil, nil, errors.New("zip: more than one data.pkl")
			}
			pkl = f
		case "constants.pkl":
			return nil, nil, errors.New("a TorchScript archive, not a state dict saved with torch.save")
		}
	}
	if pkl == nil {
		return nil, nil, errors.New("zip: no ARCHIVE/data.pkl: not a file torch.save wrote")
	}
	prefix := path.Dir(pkl.Name) + "/"
	src := &zipSource{files: map[string]*zip.File{}, r: r}
	for _, f := range zr.File {
		if key, ok := strings.CutPrefix(f.Name, prefix+"data/"); ok {
			src.files[key] = f
		}
		if f.Name == prefix+"byteorder" {
			b, err := readEntry(f, 16)
			if err != nil {
				return nil, nil, err
			}
			switch string(b) {
			case "little":
			case "big":
				src.bigEndian = true
			default:
				return nil, nil, fmt.Errorf("zip: byteorder %q", display.Safe(string(b)))
			}
		}
	}
	b, err := readEntry(pkl, maxPickleSize)
	if err != nil {
		return nil, nil, err
	}
	n, err := scanPickle(b)
	if err != nil {
		return nil, nil, err
	}
	st := storages{}
	state, err := unpickle(b[:n], st.resolve)
	if err != nil {
		return nil, nil, err
	}
	return state, src, nil
}

// readEntry reads a whole zip entry of at most limit bytes.
func readEntry(f *zip.File, limit int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("zip: %s is %d bytes, more than %d", display.Safe(f.Name), f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("zip: %s: %w", display.Safe(f.Name), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("zip: %s: %w", display.Safe(f.Name), err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("zip: %s is longer than %d bytes", display.Safe(f.Name), limit)
	}
	return b, nil
}

func (z *zipSource) read(s *storageRef, from, n int) ([]byte, error) {
	f, ok := z.files[s.key]
	if !ok {
		return nil, fmt.Errorf("storage %s is missing from the archive", display.Safe(s.key))
	}
	es := s.dtype.size()
	if f.UncompressedSize64 < uint64(s.numel)*uint64(es) {
		return nil, fmt.Errorf("storage %s holds %d bytes, but its %d %s elements need %d", display.Safe(s.key), f.UncompressedSize64, s.numel, s.dtype, s.numel*es)
	}
	buf := make([]byte, n*es)
	if f.Method == zip.Store { // torch stores storages uncompressed: read the range in place
		off, err := f.DataOffset()
		if err != nil {
			return nil, err
		}
		if _, err := z.r.ReadAt(buf, off+int64(from*es)); err != nil {
			return nil, fmt.Errorf("storage %s: %w", display.Safe(s.key), err)
		}
	} else {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		if _, err := io.CopyN(io.Discard, rc, int64(from*es)); err != nil {
			return nil, fmt.Errorf("storage %s: %w", display.Safe(s.key), err)
		}
		if _, err := io.ReadFull(rc, buf); err != nil {
			return nil, fmt.Errorf("storage %s: %w", display.Safe(s.key), err)
		}
	}
	if z.bigEndian {
		swapBytes(buf, es)
	}
	return buf, nil
}

// legacyMagic is the number torch's legacy format starts with.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// legacySource reads storages laid out after the pickles of the legacy format.
type legacySource struct {
	r         io.ReaderAt
	at        map[string]int64 // storage key -> offset of its first byte
	bigEndian bool
}

func openLegacy(r io.ReaderAt, size int64) (any, storageSource, error) {
	head := make([]byte, min(size, maxPickleSize))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, nil, err
	}
	pos := 0
	next := func(st storages) (any, error) { // the next pickle of the header
		n, err := scanPickle(head[pos:])
		if err != nil {
			return nil, err
		}
		resolve := func(*types.Tuple) (*storageRef, error) { return nil, errors.New("storage outside the state dict") }
		if st != nil {
			resolve = st.resolve
		}
		v, err := unpickle(head[pos:pos+n], resolve)
		pos += n
		return v, err
	}
	notTorch := errors.New("neither a zip archive nor torch's legacy format: not a file torch.save wrote")
	magic, err := next(nil)
	if n, ok := magic.(*big.Int); err != nil || !ok || n.Cmp(legacyMagic) != 0 {
		return nil, nil, notTorch
	}
	if v, err := next(nil); err != nil || v != 1001 {
		return nil, nil, errors.New("legacy format: protocol version is not 1001")
	}
	sysInfo, err := next(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("legacy format: sys_info: %w", err)
	}
	src := &legacySource{r: r, at: map[string]int64{}}
	if info, ok := sysInfo.(*types.Dict); ok {
		if le, ok := info.Get("little_endian"); ok && le == false {
			src.bigEndian = true
		}
	}
	st := storages{}
	state, err := next(st)
	if err != nil {
		return nil, nil, err
	}
	keysObj, err := next(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("legacy format: storage keys: %w", err)
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return nil, nil, errors.New("legacy format: storage keys are not a list")
	}
	off := int64(pos)
	for _, k := range *keys {
		key, ok := k.(string)
		if !ok {
			return nil, nil, errors.New("legacy format: a storage key is not a string")
		}
		ref, ok := st[key]
		if !ok {
			return nil, nil, fmt.Errorf("legacy format: storage %s is not used by the state dict", display.Safe(key))
		}
		var nb [8]byte
		if _, err := r.ReadAt(nb[:], off); err != nil {
			return nil, nil, fmt.Errorf("legacy format: storage %s: truncated", display.Safe(key))
		}
		numel := binary.LittleEndian.Uint64(nb[:])
		if src.bigEndian {
			numel = binary.BigEndian.Uint64(nb[:])
		}
		if numel != uint64(ref.numel) {
			return nil, nil, fmt.Errorf("legacy format: storage %s has %d elements, the pickle says %d", display.Safe(key), numel, ref.numel)
		}
		off += 8
		src.at[key] = off
		off += int64(ref.numel) * int64(ref.dtype.size())
		if off > size {
			return nil, nil, fmt.Errorf("legacy format: storage %s runs past the end of the file", display.Safe(key))
		}
	}
	return state, src, nil
}

func (l *legacySource) read(s *storageRef, from, n int) ([]byte, error) {
	at, ok := l.at[s.key]
	if !ok {
		return nil, fmt.Errorf("storage %s is not in the file", display.Safe(s.key))
	}
	es := s.dtype.size()
	buf := make([]byte, n*es)
	if _, err := l.r.ReadAt(buf, at+int64(from*es)); err != nil {
		return nil, fmt.Errorf("storage %s: %w", display.Safe(s.key), err)
	}
	if l.bigEndian {
		swapBytes(buf, es)
	}
	return buf, nil
}
