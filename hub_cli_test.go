package main

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logitlens/logitlens/weights/testmodel"
)

// serveRepo is a minimal Hugging Face hub serving one repo from a local
// directory over the resolve protocol (X-Repo-Commit, ETag, X-Linked-Etag
// with the sha256 of LFS files, 404 + X-Error-Code for absent files). The
// protocol's corners are tested in weights/hub; this drives the commands.
func serveRepo(t *testing.T, repo, dir string) *httptest.Server {
	const commit = "0123456789abcdef0123456789abcdef01234567"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prefix := "/" + repo + "/resolve/"
		if !strings.HasPrefix(r.URL.Path, prefix) {
			w.Header().Set("X-Error-Code", "RepoNotFound")
			w.WriteHeader(http.StatusNotFound)
			return
		}
		file := r.URL.Path[strings.Index(r.URL.Path[len(prefix):], "/")+len(prefix)+1:]
		w.Header().Set("X-Repo-Commit", commit)
		data, err := os.ReadFile(filepath.Join(dir, filepath.Base(file)))
		if err != nil || file != filepath.Base(file) {
			w.Header().Set("X-Error-Code", "EntryNotFound")
			w.WriteHeader(http.StatusNotFound)
			return
		}
		sum := sha256.Sum256(data)
		if strings.HasSuffix(file, ".safetensors") {
			w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(sum[:])+`"`)
			w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
		}
		// The hub's ETag of a file stored in git is its git blob id.
		oid := sha1.Sum(append(fmt.Appendf(nil, "blob %d\x00", len(data)), data...))
		w.Header().Set("ETag", `"`+hex.EncodeToString(oid[:])+`"`)
		http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// download fills the cache in huggingface_hub's layout, models lists it,
// and lens then runs offline from the cache.
func TestDownloadModelsLensOffline(t *testing.T) {
	dir := testmodel.Dir(t, "tiny-f32")
	srv := serveRepo(t, "acme/tiny-gpt2", dir)
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_OFFLINE", "")
	out, errOut, err := execArgs(t, "", "download", "acme/tiny-gpt2")
	if err != nil {
		t.Fatal(err)
	}
	snap := strings.TrimSpace(out)
	if link, err := os.Readlink(filepath.Join(snap, "model.safetensors")); err != nil || !strings.HasPrefix(link, "../../blobs/") {
		t.Errorf("snapshot link %q (%v), want ../../blobs/<etag>", link, err)
	}
	// Not a terminal: plain lines, no carriage returns or erase-line codes.
	if !strings.Contains(errOut, "downloading model.safetensors (") || !strings.Contains(errOut, "downloaded model.safetensors") || strings.ContainsAny(errOut, "\r\x1b") {
		t.Errorf("progress on stderr: %q", errOut)
	}
	out, _, err = execArgs(t, "", "models")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "acme/tiny-gpt2") || !strings.Contains(out, "main") || !strings.Contains(out, "complete") {
		t.Errorf("models:\n%s", out)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	out, _, err = execArgs(t, "", "lens", "--model", "acme/tiny-gpt2", "--prompt", "Hello world")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "acme/tiny-gpt2 · 2 layers") {
		t.Errorf("lens from the cache:\n%s", out)
	}
}

// models --verify finds a cached file damaged after download and fails;
// --repair downloads it again; --verify then passes.
func TestModelsVerifyRepair(t *testing.T) {
	dir := testmodel.Dir(t, "tiny-f32")
	srv := serveRepo(t, "acme/tiny-gpt2", dir)
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_OFFLINE", "")
	out, _, err := execArgs(t, "", "download", "acme/tiny-gpt2")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(strings.TrimSpace(out), "config.json")
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(good, []byte("gpt2"), []byte("gpt3"), 1)
	if err := os.WriteFile(cfg, bad, 0o644); err != nil { // through the link: the blob
		t.Fatal(err)
	}
	out, _, err = execArgs(t, "", "models", "--verify")
	if err == nil || !strings.Contains(err.Error(), "1 corrupt files: run `logitlens models --repair`") ||
		!strings.Contains(out, "corrupt: acme/tiny-gpt2 config.json@0123456789ab (blob ") || !strings.Contains(out, "git blob sha1 ") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if out, _, err := execArgs(t, "", "models", "--repair"); err != nil || !strings.Contains(out, "downloaded again") {
		t.Fatalf("repair: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(cfg); err != nil || !bytes.Equal(got, good) {
		t.Errorf("config.json after repair: %q, %v", got, err)
	}
	if out, _, err := execArgs(t, "", "models", "--verify"); err != nil || strings.Contains(out, "corrupt") {
		t.Errorf("verify after repair: %v\n%s", err, out)
	}
}
