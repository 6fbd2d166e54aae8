//go:build unix

package tokenizer

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

// TestTokenizerHostileFiles: tokenizer.json, vocab.json or merges.txt as a
// FIFO, /dev/zero, a symlink loop or a huge file fail at once with one line.
func TestTokenizerHostileFiles(t *testing.T) {
	fifo := func(t *testing.T, p string) {
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
	}
	link := func(target string) func(*testing.T, string) {
		return func(t *testing.T, p string) {
			if target == "" {
				target = filepath.Base(p)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	huge := func(t *testing.T, p string) {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, weights.MaxTokenizerFile+1); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, file string
		make       func(*testing.T, string)
		target     error
		want       string
	}{
		{"tokenizer.json fifo", "tokenizer.json", fifo, weights.ErrNotRegular, "tokenizer.json: not a regular file (a named pipe)"},
		{"tokenizer.json /dev/zero", "tokenizer.json", link("/dev/zero"), weights.ErrNotRegular, "a character device"},
		{"tokenizer.json loop", "tokenizer.json", link(""), weights.ErrSymlinkLoop, "tokenizer.json: symbolic link loop"},
		{"tokenizer.json huge", "tokenizer.json", huge, weights.ErrTooLarge, "tokenizer.json: file too large: 64.0 MiB"},
		{"vocab.json fifo", "vocab.json", fifo, weights.ErrNotRegular, "vocab.json: not a regular file (a named pipe)"},
		{"vocab.json broken link", "vocab.json", link("../../blobs/gone"), weights.ErrBrokenLink, "vocab.json: broken symbolic link (to ../../blobs/gone)"},
		{"merges.txt /dev/zero", "merges.txt", link("/dev/zero"), weights.ErrNotRegular, "merges.txt: not a regular file (a character device)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.file != "tokenizer.json" {
				writeFile(t, filepath.Join(dir, "vocab.json"), []byte("{}"))
				writeFile(t, filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\n"))
				os.Remove(filepath.Join(dir, tc.file))
			}
			tc.make(t, filepath.Join(dir, tc.file))
			done := make(chan error, 1)
			go func() {
				_, err := Load(dir)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, tc.target) || !strings.HasPrefix(err.Error(), "tokenizer: ") || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("err = %v\nwant %q", err, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Load blocked")
			}
		})
	}
}
