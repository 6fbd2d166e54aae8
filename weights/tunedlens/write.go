package tunedlens

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// archiveName is the folder inside the zip; torch.save names it after the
// file (params.pt -> params), and torch.load accepts any name.
const archiveName = "params"

// zipAlign is where torch's writer starts each record's data: storages on
// 64-byte boundaries so they can be memory-mapped.
const zipAlign = 64

// WriteParams writes the translators' state dict ("<i>.weight" [d,d] and,
// when present, "<i>.bias" [d]) as torch.save does: a zip archive with the
// pickle in data.pkl and one uncompressed, 64-byte-aligned F32 storage per
// tensor. torch.load reads it back into an OrderedDict of tensors that
// TunedLens.layer_translators.load_state_dict accepts.
func WriteParams(w io.Writer, ts []Translator) error {
	type record struct {
		name string
		data []byte
	}
	var (
		records []record
		pkl     pickler
		key     int
	)
	pkl.proto()
	pkl.global("collections", "OrderedDict")
	pkl.op(opEmptyTuple, opReduce, opMark)
	tensor := func(name string, x []float32, shape ...int) {
		storage := strconv.Itoa(key)
		key++
		pkl.str(name)
		pkl.global("torch._utils", "_rebuild_tensor_v2")
		pkl.op(opMark, opMark)
		pkl.str("storage")
		pkl.global("torch", "FloatStorage")
		pkl.str(storage)
		pkl.str("cpu")
		pkl.int(len(x))
		pkl.op(opTuple, opBinPersID)
		pkl.int(0) // storage offset
		pkl.ints(shape...)
		if len(shape) == 2 {
			pkl.ints(shape[1], 1)
		} else {
			pkl.ints(1)
		}
		pkl.op(opFalse) // requires_grad
		pkl.global("collections", "OrderedDict")
		pkl.op(opEmptyTuple, opReduce, opTuple, opReduce) // backward_hooks; _rebuild_tensor_v2(...)
		b := make([]byte, 4*len(x))
		for i, v := range x {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		records = append(records, record{"data/" + storage, b})
	}
	for i, t := range ts {
		d := int(math.Sqrt(float64(len(t.Weight))))
		if d*d != len(t.Weight) || (t.Bias != nil && len(t.Bias) != d) {
			panic(fmt.Sprintf("tunedlens: translator %d: weight of %d values, bias of %d", i, len(t.Weight), len(t.Bias)))
		}
		tensor(fmt.Sprintf("%d.weight", i), t.Weight, d, d)
		if t.Bias != nil {
			tensor(fmt.Sprintf("%d.bias", i), t.Bias, d)
		}
	}
	pkl.op(opSetItems, opStop)

	all := append([]record{{"data.pkl", pkl.Bytes()}, {"byteorder", []byte("little")}}, records...)
	all = append(all, record{"version", []byte("3\n")})
	zw := zip.NewWriter(w)
	offset := 0
	for _, r := range all {
		name := archiveName + "/" + r.name
		hdr := &zip.FileHeader{
			Name:               name,
			Method:             zip.Store,
			CRC32:              crc32.ChecksumIEEE(r.data),
			CompressedSize64:   uint64(len(r.data)),
			UncompressedSize64: uint64(len(r.data)),
			Extra:              alignPadding(offset + 30 + len(name)),
		}
		fw, err := zw.CreateRaw(hdr)
		if err != nil {
			return err
		}
		if _, err := fw.Write(r.data); err != nil {
			return err
		}
		offset += 30 + len(name) + len(hdr.Extra) + len(r.data)
	}
	return zw.Close()
}

// alignPadding returns a zip extra field ("FB", as torch's writer uses)
// that moves data starting at offset+len(extra) onto a zipAlign boundary.
func alignPadding(offset int) []byte {
	pad := (zipAlign - offset%zipAlign) % zipAlign
	if pad == 0 {
		return nil
	}
	if pad < 4 { // an extra field needs 4 bytes of header
		pad += zipAlign
	}
	b := make([]byte, pad)
	copy(b, "FB")
	binary.LittleEndian.PutUint16(b[2:], uint16(pad-4))
	return b
}

// Save writes dir/config.json and dir/params.pt (creating dir), each
// through a temporary file renamed into place.
func Save(dir string, l *Lens) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tunedlens: %w", err)
	}
	var params bytes.Buffer
	if err := WriteParams(&params, l.Translators); err != nil {
		return fmt.Errorf("tunedlens: params.pt: %w", err)
	}
	cfg := l.Config
	cfg.LensType = LensType
	js, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("tunedlens: config.json: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "params.pt"), params.Bytes()); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "config.json"), append(js, '\n'))
}

// writeFile writes data to path through a temporary file in the same
// folder, so a reader never sees half a file.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("tunedlens: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("tunedlens: %w", err)
	}
	return nil
}

// Pickle opcodes the writer uses (protocol 2).
const (
	opMark       = '('
	opStop       = '.'
	opBinPersID  = 'Q'
	opReduce     = 'R'
	opTuple      = 't'
	opEmptyTuple = ')'
	opSetItems   = 'u'
	opFalse      = '\x89'
)

// pickler emits the few pickle opcodes a state dict of tensors needs.
type pickler struct{ bytes.Buffer }

func (p *pickler) proto()         { p.Write([]byte{0x80, 2}) }
func (p *pickler) op(ops ...byte) { p.Write(ops) }

// global pushes module.name (GLOBAL).
func (p *pickler) global(module, name string) {
	p.WriteByte('c')
	p.WriteString(module + "\n" + name + "\n")
}

// str pushes a string (BINUNICODE).
func (p *pickler) str(s string) {
	p.WriteByte('X')
	p.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(s))))
	p.WriteString(s)
}

// int pushes a non-negative int below 2³¹ (BININT1, BININT2 or BININT).
func (p *pickler) int(n int) {
	switch {
	case n < 0 || n > math.MaxInt32:
		panic(fmt.Sprintf("tunedlens: pickler: int %d out of range", n))
	case n < 1<<8:
		p.Write([]byte{'K', byte(n)})
	case n < 1<<16:
		p.WriteByte('M')
		p.Write(binary.LittleEndian.AppendUint16(nil, uint16(n)))
	default:
		p.WriteByte('J')
		p.Write(binary.LittleEndian.AppendUint32(nil, uint32(n)))
	}
}

// ints pushes a tuple of ints.
func (p *pickler) ints(ns ...int) {
	p.WriteByte(opMark)
	for _, n := range ns {
		p.int(n)
	}
	p.WriteByte(opTuple)
}
