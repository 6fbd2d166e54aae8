//go:build unix

package builtin

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestDirReplacesFIFO: a FIFO or a /dev/zero link put in place of an
// extracted file neither blocks nor hashes forever: Dir extracts again.
func TestDirReplacesFIFO(t *testing.T) {
	isolate(t)
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model.safetensors", "config.json"} {
		path := filepath.Join(dir, name)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if name == "config.json" {
			err = os.Symlink("/dev/zero", path)
		} else {
			err = syscall.Mkfifo(path, 0o644)
		}
		if err != nil {
			t.Skipf("%s: %v", name, err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := Dir()
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("Dir() blocked on %s", name)
		}
		sums, _ := readSums()
		if err := verify(dir, sums); err != nil {
			t.Errorf("not repaired: %v", err)
		}
	}
}
