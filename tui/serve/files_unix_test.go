//go:build unix

package serve

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

// TestKeyFilesNotRegular: an authorized_keys, CA or host key file that is
// a FIFO or a device fails Check at once, naming the file and what it is.
func TestKeyFilesNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	good := authorizedKeys(t, newSigner(t))
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"authorized_keys fifo", Options{AuthorizedKeys: fifo}, "not a regular file (a named pipe)"},
		{"authorized_keys /dev/zero", Options{AuthorizedKeys: "/dev/zero"}, "not a regular file (a character device)"},
		{"trusted CA fifo", Options{TrustedCA: fifo}, "not a regular file (a named pipe)"},
		{"host key fifo", Options{AuthorizedKeys: good, HostKey: fifo}, "not a regular file (a named pipe)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.HostKey == "" {
				tc.opts.HostKey = filepath.Join(t.TempDir(), "host_key")
			}
			done := make(chan error, 1)
			go func() { done <- Check(tc.opts) }()
			select {
			case err := <-done:
				if !errors.Is(err, weights.ErrNotRegular) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "serve: ") {
					t.Errorf("err = %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Check blocked")
			}
		})
	}
	_ = os.Remove(fifo)
}
