package testmodel

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// source is the generator's code (every file whose code decides the
// bytes Write writes: list a new one here): it is part of every cache key,
// so a changed generator never finds the checkpoints of the old one.
//
//go:embed testmodel.go write.go vocab.go
var source embed.FS

// fixture is the state of one named checkpoint in this process.
type fixture struct {
	dirOnce sync.Once
	dir     string
	err     error
	shaOnce sync.Once
	sha     string
	shaErr  error
}

var (
	mu       sync.Mutex
	fixtures = map[string]*fixture{}
)

func lookup(name string) (*fixture, Spec, error) {
	spec, ok := named[name]
	if !ok {
		return nil, Spec{}, fmt.Errorf("testmodel: no checkpoint named %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	mu.Lock()
	defer mu.Unlock()
	f := fixtures[name]
	if f == nil {
		f = &fixture{}
		fixtures[name] = f
	}
	return f, spec, nil
}

// Dir returns a directory holding the named checkpoint (see Names),
// generating it on first use. Checkpoints live in
// $TMPDIR/logitlens-testmodel-<uid>/<name>-<key>, where the key hashes the
// spec and the generator's source; each is written into a temporary
// directory and renamed into place, so test binaries running in parallel
// share one copy and never see a partial one. The files are read-only:
// tests that change a checkpoint copy it first. Generating a checkpoint
// removes the copies of the same name that no process has used for a day
// (other generator versions). Removing the whole directory is always safe.
func Dir(t testing.TB, name string) string {
	t.Helper()
	f, spec, err := lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	f.dirOnce.Do(func() { f.dir, f.err = ensure(cacheRoot(), name, spec) })
	if f.err != nil {
		t.Fatalf("testmodel: generating %s: %v", name, f.err)
	}
	return f.dir
}

// SHA256 returns the hex sha256 of the named checkpoint's
// model.safetensors, hashed once per process.
func SHA256(t testing.TB, name string) string {
	t.Helper()
	dir := Dir(t, name)
	f, _, _ := lookup(name)
	f.shaOnce.Do(func() { f.sha, f.shaErr = fileSHA256(filepath.Join(dir, "model.safetensors")) })
	if f.shaErr != nil {
		t.Fatal(f.shaErr)
	}
	return f.sha
}

// CheckPin fails t unless the named checkpoint's model.safetensors has the
// sha256 want, the one the golden file was computed on by the reference.
// Another sha256 means the generator changed since: the goldens must be
// recomputed, never edited.
func CheckPin(t testing.TB, name, golden, want string) {
	t.Helper()
	if got := SHA256(t, name); got != want {
		t.Fatalf("%s was computed on another %s (model.safetensors sha256 %s; the generator now writes %s): "+
			"recompute the goldens with tools/goldens/regen.sh (needs the reference, ../shared/reference)",
			golden, name, want, got)
	}
}

func cacheRoot() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("logitlens-testmodel-%d", os.Getuid()))
}

// key identifies what a generator writes for spec: the hash of this
// package's source and of the spec.
func key(spec Spec) string {
	h := sha256.New()
	err := fs.WalkDir(source, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := source.ReadFile(path)
		fmt.Fprintf(h, "%s %d\n", path, len(data))
		h.Write(data)
		return err
	})
	if err != nil {
		panic("testmodel: embedded source: " + err.Error()) // a broken build
	}
	js, _ := json.Marshal(spec)
	h.Write(js)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

const (
	// staleTemp is the age past which a temporary directory is left over
	// by a killed process: no checkpoint takes that long to write.
	staleTemp = time.Hour
	// staleCopy is how long a checkpoint of another generator version is
	// kept unused: a test binary marks its copy used when it starts using
	// it, so only one running for a day could lose it.
	staleCopy = 24 * time.Hour
)

// ensure returns root/<name>-<key>, generating it when it does not exist,
// and marks it used. A copy that lacks a file (cleaners of old files in
// /tmp delete them one by one) is replaced.
func ensure(root, name string, spec Spec) (string, error) {
	dir := filepath.Join(root, name+"-"+key(spec))
	if _, err := os.Stat(dir); err == nil {
		if complete(dir, spec) {
			now := time.Now()
			os.Chtimes(dir, now, now) // best effort: only ages the copy for removeStale
			return dir, nil
		}
		if err := removeDir(root, name, dir); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	removeStale(root, name)
	tmp, err := os.MkdirTemp(root, "."+name+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := Write(tmp, spec); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if err := os.Chmod(filepath.Join(tmp, e.Name()), 0o444); err != nil {
			return "", err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process renamed its copy into place first.
		if _, serr := os.Stat(dir); serr == nil {
			return dir, nil
		}
		return "", err
	}
	return dir, nil
}

// complete reports whether dir holds every file of spec.
func complete(dir string, spec Spec) bool {
	for _, f := range fileNames(spec) {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// removeDir removes dir, a copy of name, by first renaming it into a
// temporary directory of root (which removeStale would find), so that no
// other process finds it half removed.
func removeDir(root, name, dir string) error {
	aside, err := os.MkdirTemp(root, "."+name+"-removed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(aside)
	if err := os.Rename(dir, filepath.Join(aside, "d")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// removeStale removes from root the copies of name unused for staleCopy
// and its temporary directories that a killed process left behind.
func removeStale(root, name string) {
	for pattern, age := range map[string]time.Duration{name + "-" + strings.Repeat("[0-9a-f]", 16): staleCopy, "." + name + "-*": staleTemp} {
		old, _ := filepath.Glob(filepath.Join(root, pattern))
		for _, d := range old {
			if info, err := os.Stat(d); err == nil && time.Since(info.ModTime()) > age {
				os.RemoveAll(d)
			}
		}
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
