package testmodel

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// Concurrent generators of one checkpoint (other test binaries, here
// goroutines that bypass the per-process once) all get the same complete
// directory, and no temporary directory stays behind.
func TestEnsureConcurrent(t *testing.T) {
	root := t.TempDir()
	spec := named["tiny-vocabmerges"]
	spec.Vocab = 300 // small and quick
	dirs := make([]string, 4)
	var wg sync.WaitGroup
	for i := range dirs {
		wg.Go(func() {
			d, err := ensure(root, "tiny-vocabmerges", spec)
			if err != nil {
				t.Error(err)
			}
			dirs[i] = d
		})
	}
	wg.Wait()
	for _, d := range dirs[1:] {
		if d != dirs[0] {
			t.Fatalf("directories %v differ", dirs)
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("root holds %d entries, want only %s", len(entries), filepath.Base(dirs[0]))
	}
	files, err := os.ReadDir(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Errorf("%d files, want 5", len(files))
	}
	for _, f := range files {
		info, err := f.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o222 != 0 {
			t.Errorf("%s is writable (%v)", f.Name(), info.Mode())
		}
	}
}

// Generating a checkpoint removes the temporary directories older than
// staleTemp and the other versions unused for staleCopy; younger ones (maybe
// another process's work in progress, or a version another worktree uses),
// and other names, stay. Using a copy marks it used.
func TestStaleRemoved(t *testing.T) {
	root := t.TempDir()
	spec := named["tiny-vocabmerges"]
	spec.Vocab = 300
	current := filepath.Join(root, "tiny-vocabmerges-"+key(spec))
	dirs := []struct {
		name    string
		age     time.Duration
		removed bool
	}{
		{".tiny-vocabmerges-1", 2 * staleTemp, true},
		{".tiny-vocabmerges-2", 0, false},
		{"tiny-vocabmerges-0123456789abcdef", 2 * staleCopy, true},
		{"tiny-vocabmerges-fedcba9876543210", staleCopy / 2, false},
		{"tiny-f32-0123456789abcdef", 2 * staleCopy, false},
	}
	for _, d := range dirs {
		if err := os.Mkdir(filepath.Join(root, d.name), 0o755); err != nil {
			t.Fatal(err)
		}
		past := time.Now().Add(-d.age)
		if err := os.Chtimes(filepath.Join(root, d.name), past, past); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ensure(root, "tiny-vocabmerges", spec); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(root, d.name)); os.IsNotExist(err) != d.removed {
			t.Errorf("%s (age %v): removed %v, want %v", d.name, d.age, os.IsNotExist(err), d.removed)
		}
	}
	past := time.Now().Add(-2 * staleCopy)
	if err := os.Chtimes(current, past, past); err != nil {
		t.Fatal(err)
	}
	if _, err := ensure(root, "tiny-vocabmerges", spec); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(current); err != nil || time.Since(info.ModTime()) > staleTemp {
		t.Errorf("using %s did not mark it used (%v)", current, err)
	}
}

// Different specs and different seeds get different cache keys.
func TestKeys(t *testing.T) {
	seen := map[string]string{}
	for _, name := range Names() {
		k := key(named[name])
		if other, ok := seen[k]; ok {
			t.Errorf("%s and %s share key %s", name, other, k)
		}
		seen[k] = name
	}
}

// draw's values have mean 0 and variance 1 (Irwin–Hall of four uniforms:
// kurtosis 3 − 6/20 = 2.7, |z| ≤ 2√3), and different runs and keys give
// different streams.
func TestDrawMoments(t *testing.T) {
	const n = 1 << 20
	v := make([]float32, n)
	draw(v, 1, "x", 0, 0, 1)
	var m1, m2, m4, top float64
	for _, x := range v {
		z := float64(x)
		m1 += z
		m2 += z * z
		m4 += z * z * z * z
		top = max(top, math.Abs(z))
	}
	m1, m2, m4 = m1/n, m2/n, m4/n
	if math.Abs(m1) > 5/math.Sqrt(n) || math.Abs(m2-1) > 0.01 || math.Abs(m4/(m2*m2)-2.7) > 0.03 || top > 2*math.Sqrt(3) {
		t.Errorf("mean %.4g, variance %.4g, kurtosis %.4g, max |z| %.4g", m1, m2, m4/(m2*m2), top)
	}
	w := make([]float32, 8)
	for _, other := range []struct {
		seed uint64
		key  string
		run  int
	}{{2, "x", 0}, {1, "y", 0}, {1, "x", 1}} {
		draw(w, other.seed, other.key, other.run, 0, 1)
		if w[0] == v[0] && w[1] == v[1] {
			t.Errorf("stream %+v repeats stream {1 x 0}", other)
		}
	}
}

// The first values of a stream are fixed: a change here (a new
// math/rand/v2 PCG, a different rounding) changes every checkpoint and
// stales every golden file.
func TestDrawIsStable(t *testing.T) {
	v := make([]float32, 4)
	draw(v, 7, "wte.weight", 0, 0, 0.35)
	want := [4]uint32{0x3eaed3dd, 0x3f458f3a, 0x3e50dd8a, 0x3f41942c}
	for i, x := range v {
		if math.Float32bits(x) != want[i] {
			t.Fatalf("value %d: %#x, want %#x: the generator's output changed; recompute the goldens with tools/goldens/regen.sh", i, math.Float32bits(x), want[i])
		}
	}
}

// Write writes exactly fileNames, and a copy missing one of them is made
// again.
func TestIncompleteCopyReplaced(t *testing.T) {
	root := t.TempDir()
	spec := named["tiny-f32"]
	spec.Vocab = 300
	dir, err := ensure(root, "tiny-f32", spec)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := fileNames(spec)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, fileNames %v", names, want)
	}
	if err := os.Remove(filepath.Join(dir, "merges.txt")); err != nil {
		t.Fatal(err)
	}
	again, err := ensure(root, "tiny-f32", spec)
	if err != nil || again != dir || !complete(dir, spec) {
		t.Errorf("ensure after a lost file: %s, %v; complete %v", again, err, complete(dir, spec))
	}
	if left, _ := filepath.Glob(filepath.Join(root, ".*")); len(left) != 0 {
		t.Errorf("left behind %v", left)
	}
}
