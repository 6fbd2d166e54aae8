package weights

// Safe file opening. Every file logitlens reads from a model folder, the
// Hugging Face cache or a key file comes through OpenFile or ReadFile, so
// that a hostile or careless path cannot make us block or eat memory:
//
//   - Only regular files are read (a symlink is followed to what it names).
//     A FIFO would block open(2) forever, where no signal can interrupt it;
//     /dev/zero or /dev/urandom would be read until the kernel kills us.
//   - The file is looked at with stat before it is opened, so a device is
//     never opened at all (opening some has effects: a tape rewinds), and
//     opened with O_NONBLOCK, so that a FIFO swapped in between the two
//     calls cannot block the open either; fstat then checks what was
//     actually opened, and O_NONBLOCK is cleared again.
//   - ReadFile reads at most a limit that fits the kind of file: config and
//     tokenizer files are megabytes, never gigabytes.
//   - A symlink loop is named as such rather than as a missing file.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/logitlens/logitlens/display"
)

// Read limits of the files a checkpoint folder holds, by kind. Real ones
// are far smaller: GPT-2's config.json is 1 KB, its tokenizer.json 1.4 MB,
// the index of a 100-shard model 200 KB.
const (
	MaxConfigFile    = 1 << 20  // config.json
	MaxIndexFile     = 16 << 20 // model.safetensors.index.json
	MaxTokenizerFile = 64 << 20 // tokenizer.json, vocab.json, merges.txt
)

// Errors wrapped by OpenFile and ReadFile, for errors.Is.
var (
	// ErrNotRegular: the path names a directory, FIFO, device or socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file is larger than the limit for its kind.
	ErrTooLarge = errors.New("file too large")
	// ErrSymlinkLoop: following the path's symbolic links never ends.
	ErrSymlinkLoop = errors.New("symbolic link loop (too many levels of symbolic links)")
	// ErrBrokenLink: the path is a symbolic link to nothing (in the
	// Hugging Face cache: a snapshot entry whose blob was deleted). It does
	// not match fs.ErrNotExist: the file is there, broken, not absent.
	ErrBrokenLink = errors.New("broken symbolic link")
)

// OpenFile opens path for reading if it is a regular file, or a symbolic
// link to one, without ever blocking on a FIFO or opening a device. The
// returned info describes the opened file. Errors name the path and say
// what is wrong; errors.Is matches fs.ErrNotExist, ErrNotRegular,
// ErrSymlinkLoop and ErrBrokenLink.
func OpenFile(path string) (*os.File, fs.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, pathErr(path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, notRegular(path, st.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openNoBlock, 0)
	if err != nil {
		return nil, nil, pathErr(path, err)
	}
	if st, err = f.Stat(); err != nil {
		f.Close()
		return nil, nil, pathErr(path, err)
	}
	if !st.Mode().IsRegular() { // swapped in after the first stat
		f.Close()
		return nil, nil, notRegular(path, st.Mode())
	}
	if err := clearNoBlock(f); err != nil {
		f.Close()
		return nil, nil, pathErr(path, err)
	}
	return f, st, nil
}

// ReadFile reads the whole of the regular file path (see OpenFile),
// refusing one larger than limit bytes before reading it; a file that
// grows past the limit while being read is refused too (errors.Is
// ErrTooLarge).
func ReadFile(path string, limit int64) ([]byte, error) {
	f, st, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > limit {
		return nil, tooLarge(path, st.Size(), limit)
	}
	var b bytes.Buffer
	b.Grow(int(st.Size()) + 1) // +1: EOF is seen without growing
	n, err := b.ReadFrom(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, pathErr(path, err)
	}
	if n > limit {
		return nil, tooLarge(path, n, limit)
	}
	return b.Bytes(), nil
}

// IsRegular reports whether path is a regular file or a symlink to one; a
// path that does not exist is (false, nil), any other failure to look
// (a symlink loop or a broken one, a permission) is an error from
// OpenFile's family.
func IsRegular(path string) (bool, error) {
	st, err := os.Stat(path)
	if err != nil {
		err = pathErr(path, err)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return st.Mode().IsRegular(), nil
}

// safePath is a path fit for one line of an error: control and bidi
// characters escaped, never cut (the system bounds a path's length).
func safePath(p string) string { return display.SafeN(p, 0) }

// pathErr rewords an *fs.PathError as "path: cause", naming a symlink loop
// and a broken symlink.
func pathErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("%s: %w", safePath(path), ErrSymlinkLoop)
	}
	if errors.Is(err, fs.ErrNotExist) {
		if target, lerr := os.Readlink(path); lerr == nil {
			return fmt.Errorf("%s: %w (to %s)", safePath(path), ErrBrokenLink, safePath(target))
		}
	}
	return fmt.Errorf("%s: %w", safePath(path), err)
}

func notRegular(path string, mode fs.FileMode) error {
	return fmt.Errorf("%s: %w (%s)", safePath(path), ErrNotRegular, fileKind(mode))
}

func tooLarge(path string, size, limit int64) error {
	return fmt.Errorf("%s: %w: %s, more than the %s such a file may be", safePath(path), ErrTooLarge,
		display.Bytes(size), display.Bytes(limit))
}

// fileKind names what a non-regular file is.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "mode " + m.String()
}

// quote is an untrusted name from a file (a tensor, a shard, a dtype) in
// quotes, escaped and cut by display.Safe: a 5 MB tensor name must not
// become a 5 MB error line.
func quote(s string) string { return `"` + display.Safe(s) + `"` }

// maxShownDims is how many dimensions of a shape an error shows.
const maxShownDims = 8

// fmtShape formats a shape like %v, eliding dimensions past maxShownDims
// (a hostile header may give a million).
func fmtShape[T int | int64](shape []T) string {
	if len(shape) <= maxShownDims {
		return fmt.Sprint(shape)
	}
	return fmt.Sprintf("%v… (%d dimensions)]", strings.TrimSuffix(fmt.Sprint(shape[:maxShownDims]), "]"), len(shape))
}
