//go:build unix

package weights

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// within runs f and fails the test if it has not returned after d: a read
// that blocks on a FIFO would otherwise hang the whole test binary.
func within[T any](t *testing.T, d time.Duration, f func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(d):
		t.Fatalf("still running after %s (blocked?)", d)
		panic("unreachable")
	}
}

// mkfifo makes a named pipe nobody writes to.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// TestReadFile: regular files (and links to them) are read; FIFOs, devices,
// directories, symlink loops and files over the limit fail at once with
// one line saying which.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	writeFile(t, p("small"), []byte("hello"))
	symlink(t, "small", p("link"))
	mkfifo(t, p("fifo"))
	symlink(t, "fifo", p("link-to-fifo"))
	symlink(t, "/dev/zero", p("zero"))
	symlink(t, "loop-b", p("loop-a"))
	symlink(t, "../../blobs/gone", p("broken"))
	symlink(t, "loop-a", p("loop-b"))
	if err := os.Mkdir(p("dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p("big"), bytes.Repeat([]byte("x"), 101))
	// A sparse 3 GiB file: refused from its size, never read.
	sparse, err := os.Create(p("sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sparse.Truncate(3 << 30); err != nil {
		t.Skipf("sparse file: %v", err)
	}
	sparse.Close()

	for _, name := range []string{"small", "link"} {
		got, err := within(t, 5*time.Second, func() ([]byte, error) { return ReadFile(p(name), 100) })
		if err != nil || string(got) != "hello" {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	for _, tc := range []struct {
		name   string
		target error
		want   string
	}{
		{"fifo", ErrNotRegular, "not a regular file (a named pipe)"},
		{"link-to-fifo", ErrNotRegular, "not a regular file (a named pipe)"},
		{"zero", ErrNotRegular, "not a regular file (a character device)"},
		{"dir", ErrNotRegular, "not a regular file (a directory)"},
		{"loop-a", ErrSymlinkLoop, "symbolic link loop"},
		{"big", ErrTooLarge, "file too large: 101 B, more than the 100 B"},
		{"sparse", ErrTooLarge, "file too large: 3.0 GiB"},
		{"missing", fs.ErrNotExist, "no such file"},
		{"broken", ErrBrokenLink, "broken symbolic link (to ../../blobs/gone)"},
	} {
		_, err := within(t, 5*time.Second, func() ([]byte, error) { return ReadFile(p(tc.name), 100) })
		if !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p(tc.name)+": ") {
			t.Errorf("%s: %v\nwant %q, matching %v", tc.name, err, tc.want, tc.target)
		}
	}
	if ok, err := IsRegular(p("loop-a")); ok || !errors.Is(err, ErrSymlinkLoop) {
		t.Errorf("IsRegular(loop) = %v, %v", ok, err)
	}
	if _, err := ReadFile(p("broken"), 100); errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a broken link reads as absent: %v", err)
	}
	if ok, err := IsRegular(p("broken")); ok || !errors.Is(err, ErrBrokenLink) {
		t.Errorf("IsRegular(broken) = %v, %v", ok, err)
	}
	if ok, err := IsRegular(p("missing")); ok || err != nil {
		t.Errorf("IsRegular(missing) = %v, %v", ok, err)
	}
	if ok, err := IsRegular(p("link")); !ok || err != nil {
		t.Errorf("IsRegular(link) = %v, %v", ok, err)
	}
}

// TestReadFileSwap: a path swapped between a regular file and a FIFO while
// it is read never blocks: each read returns the file or refuses the FIFO.
func TestReadFileSwap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	reg, fifo := filepath.Join(dir, "reg"), filepath.Join(dir, "fifo")
	var stop atomic.Bool
	swapped := make(chan struct{})
	go func() {
		defer close(swapped)
		for i := 0; !stop.Load(); i++ {
			if i%2 == 0 {
				_ = os.WriteFile(reg, []byte("{}"), 0o644)
				_ = os.Rename(reg, path)
			} else {
				_ = syscall.Mkfifo(fifo, 0o644)
				_ = os.Rename(fifo, path)
			}
		}
	}()
	defer func() { stop.Store(true); <-swapped }()
	var read, refused int
	for range 2000 {
		got, err := within(t, 5*time.Second, func() ([]byte, error) { return ReadFile(path, MaxConfigFile) })
		switch {
		case err == nil && string(got) == "{}":
			read++
		case errors.Is(err, ErrNotRegular), errors.Is(err, fs.ErrNotExist):
			refused++
		default:
			t.Fatalf("got %q, %v", got, err)
		}
	}
	t.Logf("%d read, %d refused", read, refused)
}

// hostileDir returns a mini checkpoint (see writeMini) in which the named
// file is replaced by what make creates there.
func hostileDir(t *testing.T, file string, make func(path string)) string {
	t.Helper()
	dir := writeMini(t, miniConfig, miniTensors())
	path := filepath.Join(dir, file)
	os.Remove(path)
	make(path)
	return dir
}

// TestCheckpointHostileFiles: config.json, model.safetensors or the index
// as a FIFO, a device, a symlink loop or an oversized file fail at once,
// each with one line naming the file and what is wrong with it.
func TestCheckpointHostileFiles(t *testing.T) {
	fifo := func(p string) { mkfifo(t, p) }
	zero := func(p string) { symlink(t, "/dev/zero", p) }
	loop := func(p string) { symlink(t, filepath.Base(p), p) }
	huge := func(p string) {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(MaxConfigFile + 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, file string
		make       func(string)
		want       string
	}{
		{"config fifo", ConfigFile, fifo, "config.json: not a regular file (a named pipe)"},
		{"config /dev/zero", ConfigFile, zero, "config.json: not a regular file (a character device)"},
		{"config loop", ConfigFile, loop, "config.json: symbolic link loop"},
		{"config huge", ConfigFile, huge, "config.json: file too large: 1.0 MiB"},
		{"weights fifo", SafetensorsFileName, fifo, "model.safetensors: not a regular file (a named pipe)"},
		{"weights /dev/zero", SafetensorsFileName, zero, "model.safetensors: not a regular file (a character device)"},
		{"weights loop", SafetensorsFileName, loop, "model.safetensors: symbolic link loop"},
		{"weights broken link", SafetensorsFileName, func(p string) { symlink(t, "../../blobs/deleted", p) }, "model.safetensors: broken symbolic link (to ../../blobs/deleted)"},
		{"config broken link", ConfigFile, func(p string) { symlink(t, "../../blobs/deleted", p) }, "config.json: broken symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := hostileDir(t, tc.file, tc.make)
			c, err := within(t, 5*time.Second, func() (*Checkpoint, error) { return OpenCheckpoint(dir) })
			if err == nil {
				c.Close()
				t.Fatal("opened")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "weights: ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") || errors.Is(err, ErrNoCheckpoint) {
				t.Errorf("err = %v\nwant one line containing %q", err, tc.want)
			}
		})
	}
	t.Run("index fifo", func(t *testing.T) {
		dir := hostileDir(t, SafetensorsFileName, func(string) {})
		mkfifo(t, filepath.Join(dir, SafetensorsIndex))
		_, err := within(t, 5*time.Second, func() (*Checkpoint, error) { return OpenCheckpoint(dir) })
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), SafetensorsIndex+": not a regular file") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestHostileNamesCut: a 5 MB tensor name, dtype or shape comes back in
// an error line of a few hundred bytes that states the full length.
func TestHostileNamesCut(t *testing.T) {
	long := strings.Repeat("\x1b]0;pwned\x07", 500_000) // 5 MB of terminal escapes
	for _, tc := range []struct {
		name, header string
	}{
		{"tensor name", `{"` + long + `":{"dtype":"F32","shape":[1],"data_offsets":[0,3]}}`},
		{"dtype", `{"x":{"dtype":"` + long + `","shape":[1],"data_offsets":[0,4]}}`},
		{"shape", `{"x":{"dtype":"F32","shape":[` + strings.Repeat("1,", 1_000_000) + `-1],"data_offsets":[0,4]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSafetensors("model.safetensors", stFile(tc.header, make([]byte, 4)))
			if err == nil {
				t.Fatal("parsed")
			}
			msg := err.Error()
			if len(msg) > 1000 || strings.ContainsAny(msg, "\x1b\x07\n") {
				t.Errorf("error of %d bytes: %.300q", len(msg), msg)
			}
		})
	}
	// Through a checkpoint: an unexpected tensor with a long name.
	ts := append(miniTensors(), stTensor{strings.Repeat("h", 1<<20), "F32", []int{1}, f32Bytes(1)})
	_, err := OpenCheckpoint(writeMini(t, miniConfig, ts))
	if err == nil || len(err.Error()) > 1000 || !strings.Contains(err.Error(), "(1048576 bytes)") {
		t.Errorf("long tensor name: %.300v", err)
	}
}
