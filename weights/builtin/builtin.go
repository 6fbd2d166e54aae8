// Package builtin embeds a small GPT-2 trained for logitlens, so the tool opens
// a real model with no network and no Hugging Face cache.
//
// The model is a GPT2LMHeadModel in Hugging Face layout (config.json,
// model.safetensors in F16, GPT-2's own vocab.json and merges.txt): 4 layers,
// 128 wide, 4 heads, 256 positions, tied embeddings, trained on the Brown
// corpus (American English printed in 1961) and WordNet glosses by
// tools/train. docs/BUILTIN.md is its model card.
//
// The files are embedded gzip-compressed, in the leaf package
// weights/builtin/model. Dir extracts them once into a per-version cache
// directory, verified by sha256, so the ordinary loader opens (and mmaps)
// them like any downloaded checkpoint.
package builtin

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/builtin/model"
)

// Name is the model id users type to select the built-in model.
const Name = "demo"

// Alias is the other accepted spelling of Name.
const Alias = "builtin"

// Description says in one line what the built-in model is, for status bars
// and notices.
const Description = "built-in demo model: a 4-layer GPT-2 (7.3 M parameters) trained on the Brown corpus, 1960s American English"

// payload holds the model's text files, gzip-compressed with a ".gz"
// suffix, and SHA256SUMS; weightsFS holds model.safetensors as is (apart,
// so that GPT2Vocabulary does not link the weights: see package model).
var (
	payload   = model.Text
	weightsFS = model.Weights
)

// sumsFile lists "<sha256>  <name>" of the extracted (decompressed) files,
// as sha256sum(1) writes it.
const sumsFile = model.SumsFile

// mu serialises extraction within this process; across processes the final
// rename is the commit point.
var mu sync.Mutex

// IsName reports whether spec names the built-in model ("demo" or "builtin").
func IsName(spec string) bool {
	return spec == Name || spec == Alias
}

// Version is a short hex id of the embedded files (a prefix of the sha256 of
// their checksum list); the extraction directory is named after it.
func Version() string {
	sums, err := payload.ReadFile(sumsFile)
	if err != nil {
		panic("builtin: embedded " + sumsFile + " missing") // a broken build, not bad input
	}
	h := sha256.Sum256(sums)
	return hex.EncodeToString(h[:6])
}

// Dir returns a directory holding the built-in checkpoint in Hugging Face
// layout (config.json, model.safetensors, vocab.json, merges.txt). The first
// call extracts the embedded files into
// $XDG_CACHE_HOME/logitlens/builtin-<version> (os.UserCacheDir; os.TempDir
// when that is not writable), writing a temporary directory and renaming it
// into place. Every call verifies the files' sha256 and re-extracts a
// directory that is incomplete or corrupted. Safe for concurrent use, also
// across processes.
func Dir() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	sums, err := readSums()
	if err != nil {
		return "", err
	}
	var errs []error
	for _, root := range cacheRoots() {
		dir, err := ensure(root, sums)
		if err == nil {
			return dir, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("builtin: cannot extract the built-in model: %w", errors.Join(errs...))
}

// cacheRoots lists the parent directories to try, best first.
func cacheRoots() []string {
	var roots []string
	if c, err := os.UserCacheDir(); err == nil {
		roots = append(roots, filepath.Join(c, "logitlens"))
	}
	return append(roots, filepath.Join(os.TempDir(), fmt.Sprintf("logitlens-%d", os.Getuid())))
}

// readSums parses the embedded SHA256SUMS into file name -> hex digest.
func readSums() (map[string]string, error) {
	data, err := payload.ReadFile(sumsFile)
	if err != nil {
		return nil, fmt.Errorf("builtin: embedded %s: %w", sumsFile, err)
	}
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 || name == "" || strings.ContainsAny(name, `/\`) {
			return nil, fmt.Errorf("builtin: embedded %s: malformed line %q", sumsFile, sc.Text())
		}
		sums[name] = sum
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("builtin: embedded %s is empty", sumsFile)
	}
	return sums, nil
}

// ensure returns root/builtin-<version> after making sure it holds exactly
// the verified files, extracting them when it does not.
func ensure(root string, sums map[string]string) (string, error) {
	dir := filepath.Join(root, "builtin-"+Version())
	if verify(dir, sums) == nil {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(root, ".builtin-tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := extract(tmp, sums); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process may have just put a good copy in place.
		if verify(dir, sums) == nil {
			return dir, nil
		}
		// A stale or corrupted copy: move it aside (rename is atomic) and retry.
		old, err2 := os.MkdirTemp(root, ".builtin-old-")
		if err2 != nil {
			return "", err2
		}
		defer os.RemoveAll(old)
		if err2 := os.Rename(dir, filepath.Join(old, "d")); err2 != nil && !errors.Is(err2, fs.ErrNotExist) {
			return "", fmt.Errorf("%s is corrupted and cannot be replaced: %w", dir, err2)
		}
		if err := os.Rename(tmp, dir); err != nil {
			if verify(dir, sums) == nil {
				return dir, nil
			}
			return "", err
		}
	}
	if err := verify(dir, sums); err != nil {
		return "", err
	}
	return dir, nil
}

// GPT2Vocabulary returns GPT-2's vocab.json and merges.txt as the built-in
// model embeds them: byte for byte OpenAI's encoder.json and vocab.bpe (see
// model.GPT2Vocabulary, which packages that must not import weights use).
func GPT2Vocabulary() (vocabJSON, mergesTXT []byte, err error) {
	return model.GPT2Vocabulary()
}

// extract decompresses every embedded file into dir and checks its digest.
func extract(dir string, sums map[string]string) error {
	for name, want := range sums {
		if err := extractFile(dir, name, want); err != nil {
			return err
		}
	}
	return nil
}

func extractFile(dir, name, want string) error {
	src, err := openEmbedded(name)
	if err != nil {
		return fmt.Errorf("embedded %s: %w", name, err)
	}
	defer src.Close()
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), src)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("embedded %s: sha256 %s, want %s", name, got, want)
	}
	return nil
}

// openEmbedded opens the embedded file name: the weights, or a text file.
func openEmbedded(name string) (io.ReadCloser, error) {
	if name == model.WeightsFile {
		return weightsFS.Open(name)
	}
	return openText(name)
}

// openText opens the embedded text file name, decompressing name.gz.
func openText(name string) (io.ReadCloser, error) {
	f, err := payload.Open(name + ".gz")
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return gzipFile{zr, f}, nil
}

// gzipFile closes both the decompressor and the embedded file under it.
type gzipFile struct {
	*gzip.Reader
	f fs.File
}

func (g gzipFile) Close() error {
	g.Reader.Close()
	return g.f.Close()
}

// verify checks that dir holds every file with its digest.
func verify(dir string, sums map[string]string) error {
	for name, want := range sums {
		got, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s: sha256 %s, want %s", filepath.Join(dir, name), got, want)
		}
	}
	return nil
}

// fileSHA256 hashes a regular file: a FIFO or a device put in the cache
// fails at once (and the directory is extracted again) instead of blocking
// or hashing forever.
func fileSHA256(path string) (string, error) {
	f, _, err := weights.OpenFile(path)
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
