package tunedlens

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/logitlens/logitlens/display"
	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// A params.pt is a Python pickle, and unpickling is running a program: a
// pickle names Python callables (GLOBAL) and calls them (REDUCE). This file
// reads one without running anything, in two passes:
//
//  1. scanPickle walks the opcodes as bytes and checks every length the
//     pickle announces against the bytes that are really there, so no later
//     allocation can be larger than the file; it also finds where the pickle
//     ends (the legacy format puts several pickles back to back).
//  2. gopickle's unpickler then builds Go values, with a FindClass that
//     knows only what a state dict of tensors needs — the torch storage
//     types and the tensor rebuilders, each a Go function that records its
//     arguments — and refuses every other name. gopickle itself maps a few
//     plain containers (list, dict, collections.OrderedDict, object) to Go
//     data before asking FindClass; none of them runs code.

// maxPickleSize bounds a state dict's pickle (data.pkl). Tensor data lives
// outside it; the pickle of gpt2-xl's 48 translators is ~10 KB.
const maxPickleSize = 16 << 20

// Opcodes whose argument is a length-prefixed payload: the size in bytes of
// the length and whether it is signed.
var lengthPrefixed = map[byte]struct {
	size   int
	signed bool
}{
	'T':    {4, true},  // BINSTRING
	'U':    {1, false}, // SHORT_BINSTRING
	'X':    {4, false}, // BINUNICODE
	'B':    {4, false}, // BINBYTES
	'C':    {1, false}, // SHORT_BINBYTES
	'\x8a': {1, false}, // LONG1
	'\x8b': {4, true},  // LONG4
	'\x8c': {1, false}, // SHORT_BINUNICODE
	'\x8d': {8, false}, // BINUNICODE8
	'\x8e': {8, false}, // BINBYTES8
	'\x96': {8, false}, // BYTEARRAY8
}

// Opcodes with a fixed-size argument, and its size.
var fixedArg = map[byte]int{
	'K': 1, 'M': 2, 'J': 4, // BININT1, BININT2, BININT
	'G': 8,         // BINFLOAT
	'h': 1, 'j': 4, // BINGET, LONG_BINGET
	'q': 1, 'r': 4, // BINPUT, LONG_BINPUT
	'\x80': 1, // PROTO
}

// Opcodes whose argument is text ending in a newline, and how many lines.
var lineArgs = map[byte]int{
	'F': 1, 'I': 1, 'L': 1, 'S': 1, 'V': 1, // FLOAT, INT, LONG, STRING, UNICODE
	'P': 1, 'g': 1, 'p': 1, // PERSID, GET, PUT
	'c': 2, 'i': 2, // GLOBAL, INST
}

// Opcodes without an argument that a state dict may use.
var noArg = []byte("(.012NQRabd}el]ost)u\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94")

// Opcodes refused outright: the extension registry and out-of-band buffers
// name objects outside the file.
var refused = map[byte]string{
	'\x82': "EXT1", '\x83': "EXT2", '\x84': "EXT4",
	'\x97': "NEXT_BUFFER", '\x98': "READONLY_BUFFER",
}

// scanPickle checks the pickle at the start of b opcode by opcode, without
// building anything, and returns its length through the STOP opcode.
func scanPickle(b []byte) (int, error) {
	i := 0
	need := func(n uint64) error {
		if n > uint64(len(b)-i) {
			return fmt.Errorf("pickle: opcode at byte %d announces %d bytes, but only %d remain", i, n, len(b)-i)
		}
		return nil
	}
	for i < len(b) {
		op := b[i]
		at := i
		i++
		if name, ok := refused[op]; ok {
			return 0, fmt.Errorf("pickle: refusing opcode %s at byte %d", name, at)
		}
		if op == '.' {
			return i, nil
		}
		if op == '\x95' { // FRAME: an 8-byte length; the framed opcodes follow inline
			if err := need(8); err != nil {
				return 0, err
			}
			n := binary.LittleEndian.Uint64(b[i:])
			i += 8
			if err := need(n); err != nil {
				return 0, err
			}
			continue
		}
		if lp, ok := lengthPrefixed[op]; ok {
			if err := need(uint64(lp.size)); err != nil {
				return 0, err
			}
			var n uint64
			switch lp.size {
			case 1:
				n = uint64(b[i])
			case 4:
				u := binary.LittleEndian.Uint32(b[i:])
				if lp.signed && int32(u) < 0 {
					return 0, fmt.Errorf("pickle: negative length at byte %d", at)
				}
				n = uint64(u)
			case 8:
				n = binary.LittleEndian.Uint64(b[i:])
			}
			i += lp.size
			if err := need(n); err != nil {
				return 0, err
			}
			i += int(n)
			continue
		}
		if n, ok := fixedArg[op]; ok {
			if err := need(uint64(n)); err != nil {
				return 0, err
			}
			i += n
			continue
		}
		if lines, ok := lineArgs[op]; ok {
			for range lines {
				nl := bytes.IndexByte(b[i:], '\n')
				if nl < 0 {
					return 0, fmt.Errorf("pickle: unterminated text argument at byte %d", at)
				}
				i += nl + 1
			}
			continue
		}
		if bytes.IndexByte(noArg, op) < 0 {
			return 0, fmt.Errorf("pickle: unknown opcode 0x%02x at byte %d", op, at)
		}
	}
	return 0, errors.New("pickle: no STOP opcode: the pickle is truncated")
}

// dtype is the element type of a torch storage.
type dtype int

const (
	f32 dtype = iota
	f16
	bf16
	f64
)

// size is the bytes of one element.
func (d dtype) size() int {
	switch d {
	case f16, bf16:
		return 2
	case f64:
		return 8
	}
	return 4
}

func (d dtype) String() string {
	return [...]string{"F32", "F16", "BF16", "F64"}[d]
}

// storageTypes are the torch storage classes a lens may use.
var storageTypes = map[string]dtype{
	"torch.FloatStorage":    f32,
	"torch.HalfStorage":     f16,
	"torch.BFloat16Storage": bf16,
	"torch.DoubleStorage":   f64,
}

// storageType stands for a torch storage class named by the pickle.
type storageType struct{ dtype dtype }

// storageRef is a persistent id resolved: a storage whose bytes live
// outside the pickle, under key.
type storageRef struct {
	key   string
	dtype dtype
	numel int // elements
}

// tensorRef is a tensor as _rebuild_tensor_v2 describes it: a strided view
// of a storage.
type tensorRef struct {
	storage *storageRef
	offset  int   // in elements
	shape   []int // sizes
	stride  []int // in elements
}

// rebuildTensor stands for torch._utils._rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata]):
// it records the view and ignores the rest.
type rebuildTensor struct{}

func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments, want 6 or 7", len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: argument 1 is %s, not a storage", typeName(args[0]))
	}
	off, ok := smallInt(args[1])
	if !ok || off < 0 {
		return nil, errors.New("_rebuild_tensor_v2: bad storage offset")
	}
	shape, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size: %w", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: stride: %w", err)
	}
	if len(shape) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d sizes but %d strides", len(shape), len(stride))
	}
	return &tensorRef{storage: st, offset: off, shape: shape, stride: stride}, nil
}

// rebuildParameter stands for torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks): an nn.Parameter is its tensor here.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("_rebuild_parameter: %d arguments, want 3", len(args))
	}
	t, ok := args[0].(*tensorRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter: argument 1 is %s, not a tensor", typeName(args[0]))
	}
	return t, nil
}

// findClass resolves the names a pickle may use; every other name is an
// error that names it.
func findClass(module, name string) (any, error) {
	full := module + "." + name
	if dt, ok := storageTypes[full]; ok {
		return &storageType{dt}, nil
	}
	switch full {
	case "torch._utils._rebuild_tensor_v2":
		return rebuildTensor{}, nil
	case "torch._utils._rebuild_parameter":
		return rebuildParameter{}, nil
	}
	return nil, &RefusedError{Name: full}
}

// RefusedError is the error for a pickle that names a Python callable the
// reader does not allow.
type RefusedError struct {
	Name string // module.name as the pickle spells it (untrusted)
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refusing to load %s: a tuned lens holds only tensors (allowed: collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and float storages)", display.Safe(e.Name))
}

// unpickle builds the object of the pickle b (already scanned), resolving
// each persistent id with storage. Panics inside gopickle (v0.3.0 indexes
// past its stack on some malformed input) come back as errors.
func unpickle(b []byte, storage func(pid *types.Tuple) (*storageRef, error)) (obj any, err error) {
	defer func() {
		if r := recover(); r != nil {
			obj, err = nil, fmt.Errorf("pickle: malformed (%s)", display.Safe(fmt.Sprint(r)))
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(b))
	u.FindClass = findClass
	u.PersistentLoad = func(pid any) (any, error) {
		t, ok := pid.(*types.Tuple)
		if !ok || t.Len() == 0 {
			return nil, fmt.Errorf("persistent id is %s, not a tuple", typeName(pid))
		}
		if s, _ := t.Get(0).(string); s != "storage" {
			return nil, fmt.Errorf("persistent id of kind %v, want \"storage\"", t.Get(0))
		}
		return storage(t)
	}
	obj, err = u.Load()
	var refused *RefusedError
	if errors.As(err, &refused) {
		return nil, refused
	}
	if err != nil { // gopickle's messages may quote pickled strings: make them safe to print
		return nil, fmt.Errorf("pickle: %s", display.Safe(err.Error()))
	}
	return obj, nil
}

// storageFields reads ('storage', type, key, location, numel, ...) into a
// storageRef.
func storageFields(t *types.Tuple) (*storageRef, error) {
	if t.Len() < 5 {
		return nil, fmt.Errorf("storage id has %d fields, want at least 5", t.Len())
	}
	st, ok := t.Get(1).(*storageType)
	if !ok {
		return nil, fmt.Errorf("storage id: %s is not a storage type", typeName(t.Get(1)))
	}
	key, ok := t.Get(2).(string)
	if !ok {
		return nil, errors.New("storage id: key is not a string")
	}
	numel, ok := smallInt(t.Get(4))
	if !ok || numel < 0 {
		return nil, errors.New("storage id: bad element count")
	}
	return &storageRef{key: key, dtype: st.dtype, numel: numel}, nil
}

// maxDim bounds every size and stride, so products of two stay in an int64.
const maxDim = 1 << 30

// smallInt returns v as an int in 0..maxDim or ok=false.
func smallInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, n >= 0 && n <= maxDim
	case *big.Int:
		if n.IsInt64() && n.Int64() >= 0 && n.Int64() <= maxDim {
			return int(n.Int64()), true
		}
	}
	return 0, false
}

func intTuple(v any) ([]int, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("%s, not a tuple", typeName(v))
	}
	if t.Len() > 8 {
		return nil, fmt.Errorf("%d dimensions", t.Len())
	}
	out := make([]int, t.Len())
	for i := range out {
		n, ok := smallInt(t.Get(i))
		if !ok {
			return nil, fmt.Errorf("dimension %d is not an int in 0..%d", i, maxDim)
		}
		out[i] = n
	}
	return out, nil
}

// typeName names a pickled value's Go type for messages, without printing
// its content (which may be large or cyclic).
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case string:
		return "a string"
	case int, *big.Int:
		return "an int"
	case *types.Tuple:
		return "a tuple"
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	case *types.List:
		return "a list"
	case *tensorRef:
		return "a tensor"
	case *storageRef:
		return "a storage"
	}
	return fmt.Sprintf("%T", v)
}
