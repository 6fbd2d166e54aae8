//go:build unix

package hub

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logitlens/logitlens/weights"
)

// TestCacheHostileFiles: a refs file or an index that is a FIFO or a
// device fails at once with one line, offline and online.
func TestCacheHostileFiles(t *testing.T) {
	h := newFakeHub(t)
	h.addCommit("org/hostile", "main", fakeModelFiles(45))
	opt := testOptions(t, h)
	snap, err := Resolve(testCtx(t), "org/hostile", opt)
	if err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(opt.CacheDir, "models--org--hostile", "refs", "main")
	os.Remove(ref)
	if err := syscall.Mkfifo(ref, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	offline := opt
	offline.Offline = true
	done := make(chan error, 1)
	go func() {
		_, err := Resolve(testCtx(t), "org/hostile", offline)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "not a regular file (a named pipe)") {
			t.Errorf("FIFO ref: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Resolve blocked on a FIFO ref")
	}

	if _, err := cacheIndexShards("/dev/zero"); !errors.Is(err, weights.ErrNotRegular) {
		t.Errorf("index /dev/zero: %v", err)
	}
	// The model files themselves are read by package weights; a snapshot
	// entry that is a FIFO makes the snapshot incomplete, so it is
	// fetched again rather than opened.
	cfg := filepath.Join(snap.Dir, "config.json")
	os.Remove(cfg)
	if err := syscall.Mkfifo(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := cacheMissing(snap.Dir); len(got) != 1 || got[0] != "config.json" {
		t.Errorf("missing = %v", got)
	}
}
