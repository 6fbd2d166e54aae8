package hub

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCacheListCached(t *testing.T) {
	if got, err := ListCached(filepath.Join(t.TempDir(), "none")); err != nil || len(got) != 0 {
		t.Fatalf("missing cache dir: %v, %v", got, err)
	}
	h := newFakeHub(t)
	mainFiles, tagFiles, pinFiles := fakeModelFiles(30), fakeModelFiles(31), fakeModelFiles(32)
	mainC := h.addCommit("openai-community/gpt2", "main", mainFiles)
	tagC := h.addCommit("openai-community/gpt2", "v1", tagFiles)
	pinC := h.addCommit("openai-community/gpt2", "", pinFiles)
	otherFiles := fakeModelFiles(33)
	otherC := h.addCommit("distilgpt2", "main", otherFiles)
	opt := testOptions(t, h)
	for _, spec := range []string{"openai-community/gpt2", "openai-community/gpt2@v1", "openai-community/gpt2@" + pinC, "distilgpt2"} {
		if _, err := Resolve(testCtx(t), spec, opt); err != nil {
			t.Fatal(err)
		}
	}
	// An interrupted download of distilgpt2@v2: a ref (as huggingface_hub
	// writes it early), config only, and a partial blob.
	dRepo := filepath.Join(opt.CacheDir, "models--distilgpt2")
	partC := fakeCommit("partial")
	os.MkdirAll(filepath.Join(dRepo, "snapshots", partC), 0o777)
	if err := os.Symlink("../../blobs/"+fakeEtag("config.json", otherFiles["config.json"]), filepath.Join(dRepo, "snapshots", partC, "config.json")); err != nil {
		t.Fatal(err)
	}
	if err := cacheWriteRef(dRepo, "v2", partC); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dRepo, "blobs", "abc.incomplete"), make([]byte, 999), 0o644)
	os.MkdirAll(filepath.Join(opt.CacheDir, "datasets--x--y", "refs"), 0o777) // not a model

	size := func(files ...map[string][]byte) int64 {
		seen := map[string]bool{}
		var n int64
		for _, fs := range files {
			for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
				if e := fakeEtag(f, fs[f]); !seen[e] {
					seen[e] = true
					n += int64(len(fs[f]))
				}
			}
		}
		return n
	}
	gRepo := filepath.Join(opt.CacheDir, "models--openai-community--gpt2")
	gSize := size(mainFiles, tagFiles, pinFiles)
	dSize := size(otherFiles)
	want := []CachedModel{
		{"distilgpt2", "main", otherC, filepath.Join(dRepo, "snapshots", otherC), dSize, true},
		{"distilgpt2", "v2", partC, filepath.Join(dRepo, "snapshots", partC), dSize, false},
		{"openai-community/gpt2", pinC, pinC, filepath.Join(gRepo, "snapshots", pinC), gSize, true},
		{"openai-community/gpt2", "main", mainC, filepath.Join(gRepo, "snapshots", mainC), gSize, true},
		{"openai-community/gpt2", "v1", tagC, filepath.Join(gRepo, "snapshots", tagC), gSize, true},
	}
	got, err := ListCached(opt.CacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListCached:\n got %+v\nwant %+v", got, want)
	}
}

func TestCacheSafeNames(t *testing.T) {
	for s, want := range map[string]bool{
		"0123abcdef": true, "a-b_c.d": true, "": false, "..": false, ".hidden": false,
		"a/b": false, `a\b`: false, "x.incomplete": false, "a b": false,
	} {
		if got := cacheSafeName(s); got != want {
			t.Errorf("cacheSafeName(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{
		"model.safetensors": true, "onnx/model.onnx": true, "../x": false, "/etc/passwd": false,
		"a//b": false, "a/./b": false, "": false,
	} {
		if got := cacheSafeRelPath(s); got != want {
			t.Errorf("cacheSafeRelPath(%q) = %v", s, got)
		}
	}
}
