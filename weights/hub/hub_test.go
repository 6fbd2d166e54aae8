package hub

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logitlens/logitlens/weights/testmodel"
)

// hubCheckLinked asserts the huggingface_hub layout of one snapshot file:
// a relative symlink to ../../blobs/<etag> whose blob holds want.
func checkLinked(t *testing.T, repoDir, commit, file string, want []byte) {
	t.Helper()
	p := filepath.Join(repoDir, "snapshots", commit, filepath.FromSlash(file))
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("%s: not a symlink (mode %v)", file, st.Mode())
	}
	target, err := os.Readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", strings.Count(file, "/")+2)
	if wantT := up + "blobs/" + fakeEtag(file, want); target != wantT {
		t.Errorf("%s -> %q, want %q", file, target, wantT)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: contents differ (%d bytes, want %d)", file, len(got), len(want))
	}
}

func readRef(t *testing.T, repoDir, rev string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(rev)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHubFreshDownloadLayout(t *testing.T) {
	h := newFakeHub(t)
	h.token = "hf_secret"
	files := fakeModelFiles(1)
	commit := h.addCommit("openai-community/gpt2", "main", files)
	opt := testOptions(t, h)
	opt.Token = h.token
	var reports []Progress
	opt.Progress = func(p Progress) { reports = append(reports, p) }

	snap, err := Resolve(testCtx(t), "openai-community/gpt2", opt)
	if err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(opt.CacheDir, "models--openai-community--gpt2")
	want := Snapshot{Repo: "openai-community/gpt2", Revision: "main", Commit: commit, Dir: filepath.Join(repoDir, "snapshots", commit)}
	if snap != want {
		t.Fatalf("snapshot %+v, want %+v", snap, want)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		checkLinked(t, repoDir, commit, f, files[f])
	}
	for _, f := range []string{"vocab.json", "merges.txt"} {
		if _, err := os.Lstat(filepath.Join(snap.Dir, f)); err == nil {
			t.Errorf("%s fetched although tokenizer.json exists", f)
		}
	}
	if got := readRef(t, repoDir, "main"); got != commit {
		t.Errorf("refs/main = %q, want %q (no newline)", got, commit)
	}
	blobs, _ := os.ReadDir(filepath.Join(repoDir, "blobs"))
	if len(blobs) != 3 {
		t.Errorf("%d blobs, want 3: %v", len(blobs), blobs)
	}
	for _, b := range blobs {
		if strings.HasSuffix(b.Name(), ".incomplete") {
			t.Errorf("leftover %s", b.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(opt.CacheDir, ".locks", "models--openai-community--gpt2")); err != nil {
		t.Errorf("no lock dir where huggingface_hub puts it: %v", err)
	}

	// The token goes to the hub, never to the CDN host.
	cdnGets := 0
	for _, r := range h.requests() {
		switch r.Server {
		case "hub":
			if r.Auth != "Bearer "+h.token {
				t.Errorf("hub %s %s: Authorization %q", r.Method, r.Path, r.Auth)
			}
		case "cdn":
			cdnGets++
			if r.Auth != "" {
				t.Errorf("Authorization leaked to the CDN: %s %s", r.Method, r.Path)
			}
		}
	}
	if cdnGets != 1 {
		t.Errorf("%d CDN requests, want 1", cdnGets)
	}

	var last Progress
	for _, p := range reports {
		if p.File == "model.safetensors" {
			last = p
		}
		if p.File == "" || p.Total <= 0 || p.Done > p.Total {
			t.Errorf("bad report %+v", p)
		}
	}
	n := int64(len(files["model.safetensors"]))
	if !last.Finished || last.Done != n || last.Total != n || last.ETA != 0 {
		t.Errorf("last model report %+v, want finished %d/%d", last, n, n)
	}
}

func TestHubSecondResolveUsesCache(t *testing.T) {
	h := newFakeHub(t)
	h.addCommit("gpt2", "main", fakeModelFiles(2))
	opt := testOptions(t, h)
	first, err := Resolve(testCtx(t), "gpt2", opt)
	if err != nil {
		t.Fatal(err)
	}
	h.resetRequests()
	second, err := Resolve(testCtx(t), "gpt2", opt)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("second resolve %+v, first %+v", second, first)
	}
	if g, hd := h.count("", "GET"), h.count("", "HEAD"); g != 0 || hd != 1 {
		t.Errorf("warm resolve made %d GETs and %d HEADs, want 0 and 1: %+v", g, hd, h.requests())
	}
}

func TestHubOffline(t *testing.T) {
	h := newFakeHub(t)
	h.addCommit("distilgpt2", "main", fakeModelFiles(3))
	opt := testOptions(t, h)

	cold := opt
	cold.Offline = true
	_, err := Resolve(testCtx(t), "distilgpt2", cold)
	if !errors.Is(err, ErrOffline) {
		t.Fatalf("cold offline: %v, want ErrOffline", err)
	}
	if !strings.Contains(err.Error(), "logitlens download distilgpt2") {
		t.Errorf("cold offline error does not name the command: %v", err)
	}
	if n := len(h.requests()); n != 0 {
		t.Errorf("offline made %d requests", n)
	}

	warm, err := Resolve(testCtx(t), "distilgpt2", opt)
	if err != nil {
		t.Fatal(err)
	}
	h.resetRequests()
	got, err := Resolve(testCtx(t), "distilgpt2", cold)
	if err != nil || got != warm {
		t.Fatalf("warm offline: %+v, %v; want %+v", got, err, warm)
	}
	if n := len(h.requests()); n != 0 {
		t.Errorf("offline made %d requests", n)
	}
	if _, err := Resolve(testCtx(t), "distilgpt2@v2", cold); !errors.Is(err, ErrOffline) {
		t.Errorf("offline, uncached revision: %v, want ErrOffline", err)
	}
}

func TestHubUnreachableFailsFast(t *testing.T) {
	h := newFakeHub(t)
	h.addCommit("gpt2-xl", "main", fakeModelFiles(4))
	opt := testOptions(t, h)
	dead := opt
	dead.Endpoint = closedEndpoint(t)

	start := time.Now()
	_, err := Resolve(testCtx(t), "gpt2-xl", dead)
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %v to fail", el)
	}
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("%v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), "logitlens download gpt2-xl") {
		t.Errorf("error does not say what to run: %v", err)
	}

	warm, err := Resolve(testCtx(t), "gpt2-xl", opt)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Resolve(testCtx(t), "gpt2-xl", dead)
	if err != nil || got != warm {
		t.Errorf("unreachable with warm cache: %+v, %v; want %+v", got, err, warm)
	}
}

func TestHubShardedIndexAndVocabMerges(t *testing.T) {
	h := newFakeHub(t)
	s1, s2 := fakeBytes(5, 300_000), fakeBytes(6, 200_000)
	files := map[string][]byte{
		"config.json": []byte(`{"n_layer": 1}`),
		"model.safetensors.index.json": []byte(`{"metadata": {"total_size": 500000}, "weight_map": {
			"wte.weight": "model-00001-of-00002.safetensors",
			"wpe.weight": "model-00001-of-00002.safetensors",
			"h.0.ln_1.weight": "model-00002-of-00002.safetensors"}}`),
		"model-00001-of-00002.safetensors": s1,
		"model-00002-of-00002.safetensors": s2,
		"vocab.json":                       []byte(`{"x": 0}`),
		"merges.txt":                       []byte("#version: 0.2\n"),
	}
	commit := h.addCommit("ComCom/gpt2-small", "main", files)
	opt := testOptions(t, h)
	snap, err := Resolve(testCtx(t), "ComCom/gpt2-small", opt)
	if err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(opt.CacheDir, "models--ComCom--gpt2-small")
	for f, data := range files {
		checkLinked(t, repoDir, commit, f, data)
	}
	for _, f := range []string{"tokenizer.json", "model.safetensors"} {
		if _, err := os.Stat(filepath.Join(repoDir, ".no_exist", commit, f)); err != nil {
			t.Errorf(".no_exist marker for %s: %v", f, err)
		}
	}
	h.resetRequests()
	again, err := Resolve(testCtx(t), "ComCom/gpt2-small", opt)
	if err != nil || again != snap {
		t.Fatalf("second resolve %+v, %v", again, err)
	}
	if g, hd := h.count("", "GET"), h.count("", "HEAD"); g != 0 || hd != 1 {
		t.Errorf("warm resolve made %d GETs and %d HEADs, want 0 and 1", g, hd)
	}
	opt.Offline = true
	if _, err := Resolve(testCtx(t), "ComCom/gpt2-small", opt); err != nil {
		t.Errorf("offline sharded: %v", err)
	}
}

func TestHubMissingFiles(t *testing.T) {
	h := newFakeHub(t)
	full := fakeModelFiles(7)
	noTok := map[string][]byte{"config.json": full["config.json"], "model.safetensors": full["model.safetensors"], "vocab.json": full["vocab.json"]}
	h.addCommit("org/notok", "main", noTok)
	h.addCommit("org/binonly", "main", map[string][]byte{"config.json": full["config.json"], "pytorch_model.bin": []byte("x")})
	h.addCommit("org/noconfig", "main", map[string][]byte{"model.safetensors": full["model.safetensors"]})
	opt := testOptions(t, h)
	for _, tc := range []struct{ repo, want string }{
		{"org/notok", "tokenizer.json or vocab.json + merges.txt"},
		{"org/binonly", "model.safetensors or model.safetensors.index.json"},
		{"org/noconfig", "config.json"},
	} {
		_, err := Resolve(testCtx(t), tc.repo, opt)
		if !errors.Is(err, ErrEntryNotFound) || !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), tc.want) ||
			!strings.Contains(err.Error(), tc.repo) {
			t.Errorf("%s: %v, want ErrEntryNotFound naming %q", tc.repo, err, tc.want)
		}
		if _, err := os.Stat(filepath.Join(opt.CacheDir, cacheRepoFolder(Model, tc.repo), "refs", "main")); err == nil {
			t.Errorf("%s: refs/main written for an incomplete model", tc.repo)
		}
	}
}

func TestHubAuthAndNotFound(t *testing.T) {
	h := newFakeHub(t)
	h.token = "hf_ok"
	h.addCommit("org/private", "main", fakeModelFiles(8))
	h.repos["org/private"].private = true
	opt := testOptions(t, h)

	_, err := Resolve(testCtx(t), "org/private", opt)
	if !errors.Is(err, ErrAuthRequired) || !strings.Contains(err.Error(), "set HF_TOKEN or run huggingface-cli login") {
		t.Errorf("private without token: %v", err)
	}
	var he *Error
	if !errors.As(err, &he) || he.Status != 401 || he.Repo != "org/private" {
		t.Errorf("errors.As Error: %+v", he)
	}
	opt.Token = "hf_wrong"
	if _, err := Resolve(testCtx(t), "org/private", opt); !errors.Is(err, ErrAuthRequired) || !strings.Contains(err.Error(), "token was sent") {
		t.Errorf("private with a wrong token: %v", err)
	}
	opt.Token = h.token
	if _, err := Resolve(testCtx(t), "org/private", opt); err != nil {
		t.Errorf("private with token: %v", err)
	}

	_, err = Resolve(testCtx(t), "org/nosuch", opt)
	if !errors.Is(err, ErrRepoNotFound) || !errors.Is(err, ErrNotFound) || errors.Is(err, ErrAuthRequired) || !strings.Contains(err.Error(), `"org/nosuch"`) {
		t.Errorf("unknown repo with token: %v", err)
	}
	opt.Token = ""
	_, err = Resolve(testCtx(t), "org/nosuch", opt)
	if !errors.Is(err, ErrRepoNotFound) || !errors.Is(err, ErrAuthRequired) || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Errorf("unknown repo without token (hub answers 401): %v", err)
	}
	_, err = Resolve(testCtx(t), "org/private@nope", Options{Endpoint: opt.Endpoint, CacheDir: opt.CacheDir, Token: h.token})
	if !errors.Is(err, ErrRevisionNotFound) || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "org/private") {
		t.Errorf("unknown revision: %v", err)
	}
}

func TestHubRevisionsAndCommits(t *testing.T) {
	h := newFakeHub(t)
	mainFiles, tagFiles, prFiles := fakeModelFiles(9), fakeModelFiles(10), fakeModelFiles(11)
	mainC := h.addCommit("org/rev", "main", mainFiles)
	tagC := h.addCommit("org/rev", "v1.0", tagFiles)
	prC := h.addCommit("org/rev", "refs/pr/1", prFiles)
	opt := testOptions(t, h)
	repoDir := filepath.Join(opt.CacheDir, "models--org--rev")

	snap, err := Resolve(testCtx(t), "org/rev@v1.0", opt)
	if err != nil || snap.Commit != tagC || snap.Revision != "v1.0" {
		t.Fatalf("tag: %+v, %v", snap, err)
	}
	checkLinked(t, repoDir, tagC, "config.json", tagFiles["config.json"])
	if got := readRef(t, repoDir, "v1.0"); got != tagC {
		t.Errorf("refs/v1.0 = %q", got)
	}
	if _, err := os.Stat(filepath.Join(repoDir, "refs", "main")); err == nil {
		t.Error("refs/main written for a tag")
	}

	snap, err = Resolve(testCtx(t), "org/rev@refs/pr/1", opt)
	if err != nil || snap.Commit != prC {
		t.Fatalf("refs/pr/1: %+v, %v", snap, err)
	}
	if got := readRef(t, repoDir, "refs/pr/1"); got != prC {
		t.Errorf("refs/refs/pr/1 = %q", got)
	}
	for _, r := range h.requests() {
		if strings.Contains(r.Path, "/resolve/refs/") {
			t.Errorf("revision not escaped in %s", r.Path)
			break
		}
	}

	snap, err = Resolve(testCtx(t), "org/rev@"+mainC, opt)
	if err != nil || snap.Commit != mainC || snap.Revision != mainC || snap.Dir != filepath.Join(repoDir, "snapshots", mainC) {
		t.Fatalf("commit: %+v, %v", snap, err)
	}
	if _, err := os.Stat(filepath.Join(repoDir, "refs", mainC)); err == nil {
		t.Error("a refs file was written for a commit hash")
	}
	// A cached commit needs no network at all.
	h.resetRequests()
	dead := opt
	dead.Endpoint = closedEndpoint(t)
	if again, err := Resolve(testCtx(t), "org/rev@"+mainC, dead); err != nil || again != snap {
		t.Errorf("cached commit: %+v, %v", again, err)
	}
	dead.Offline = true
	if again, err := Resolve(testCtx(t), "org/rev@"+mainC, dead); err != nil || again != snap {
		t.Errorf("cached commit offline: %+v, %v", again, err)
	}
}

func TestHubRenamedRepo(t *testing.T) {
	h := newFakeHub(t)
	files := fakeModelFiles(12)
	commit := h.addCommit("openai-community/gpt2", "main", files)
	h.renames["gpt2"] = "openai-community/gpt2"
	opt := testOptions(t, h)
	snap, err := Resolve(testCtx(t), "gpt2", opt)
	if err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(opt.CacheDir, "models--gpt2") // huggingface_hub keys the cache by the id asked for
	if snap.Repo != "gpt2" || snap.Commit != commit || snap.Dir != filepath.Join(repoDir, "snapshots", commit) {
		t.Fatalf("%+v", snap)
	}
	checkLinked(t, repoDir, commit, "model.safetensors", files["model.safetensors"])
}

func TestHubLocalDirectory(t *testing.T) {
	dir := t.TempDir()
	snap, err := Resolve(testCtx(t), dir, Options{Endpoint: closedEndpoint(t)})
	if err != nil || !snap.Local || snap.Dir != dir {
		t.Fatalf("%+v, %v", snap, err)
	}
	if _, err := Resolve(testCtx(t), "./definitely-not-here", Options{}); err == nil || !strings.Contains(err.Error(), "definitely-not-here") {
		t.Errorf("missing ./dir: %v", err)
	}
}

func TestHubParseSpec(t *testing.T) {
	for _, tc := range []struct {
		spec, repo, rev string
		bad             bool
	}{
		{"gpt2", "gpt2", "main", false},
		{"openai-community/gpt2", "openai-community/gpt2", "main", false},
		{"distilgpt2", "distilgpt2", "main", false},
		{"gpt2-xl", "gpt2-xl", "main", false},
		{"ComCom/gpt2-small", "ComCom/gpt2-small", "main", false},
		{"gpt2@v1.0", "gpt2", "v1.0", false},
		{"org/m@refs/pr/3", "org/m", "refs/pr/3", false},
		{"gpt2@607a30d783dfa663caf39e06633721c8d4cfcd7e", "gpt2", "607a30d783dfa663caf39e06633721c8d4cfcd7e", false},
		{"", "", "", true},
		{"gpt2@", "", "", true},
		{"a/b/c", "", "", true},
		{"org--x/m", "", "", true},
		{"org/m..x", "", "", true},
		{"-org/m", "", "", true},
		{"org/m.", "", "", true},
		{"org/m x", "", "", true},
		{"gpt2@../../etc", "", "", true},
		{"gpt2@/abs", "", "", true},
		{strings.Repeat("a", 97), "", "", true},
	} {
		ps, err := parseSpec(tc.spec)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted as %+v", tc.spec, ps)
			}
			continue
		}
		if err != nil || ps.repo != tc.repo || ps.revision != tc.rev || ps.local != "" {
			t.Errorf("%q: %+v, %v; want %s@%s", tc.spec, ps, err, tc.repo, tc.rev)
		}
	}
}

func TestHubOptionsFromEnv(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	hfHome := t.TempDir()
	if err := os.WriteFile(filepath.Join(hfHome, "token"), []byte("hf_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want Options
	}{
		{"defaults", nil, Options{Endpoint: DefaultEndpoint, CacheDir: filepath.Join(home, ".cache", "huggingface", "hub")}},
		{"xdg", map[string]string{"XDG_CACHE_HOME": "/x"}, Options{Endpoint: DefaultEndpoint, CacheDir: "/x/huggingface/hub"}},
		{"hf_home + token file", map[string]string{"HF_HOME": hfHome, "XDG_CACHE_HOME": "/x"},
			Options{Endpoint: DefaultEndpoint, CacheDir: filepath.Join(hfHome, "hub"), Token: "hf_file"}},
		{"HF_TOKEN wins", map[string]string{"HF_HOME": hfHome, "HF_TOKEN": " hf_env "},
			Options{Endpoint: DefaultEndpoint, CacheDir: filepath.Join(hfHome, "hub"), Token: "hf_env"}},
		{"HUGGINGFACE_HUB_CACHE", map[string]string{"HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/old"},
			Options{Endpoint: DefaultEndpoint, CacheDir: "/old"}},
		{"HF_HUB_CACHE wins", map[string]string{"HF_HUB_CACHE": "~/c", "HUGGINGFACE_HUB_CACHE": "/old"},
			Options{Endpoint: DefaultEndpoint, CacheDir: filepath.Join(home, "c")}},
		{"endpoint, offline", map[string]string{"HF_ENDPOINT": "https://hf-mirror.com/", "HF_HUB_OFFLINE": "1", "HF_HOME": "/h"},
			Options{Endpoint: "https://hf-mirror.com", CacheDir: "/h/hub", Offline: true}},
		{"offline yes", map[string]string{"HF_HUB_OFFLINE": "Yes", "HF_HOME": "/h"}, Options{Endpoint: DefaultEndpoint, CacheDir: "/h/hub", Offline: true}},
		{"offline on", map[string]string{"HF_HUB_OFFLINE": "on", "HF_HOME": "/h"}, Options{Endpoint: DefaultEndpoint, CacheDir: "/h/hub", Offline: true}},
		{"offline true", map[string]string{"HF_HUB_OFFLINE": "TRUE", "HF_HOME": "/h"}, Options{Endpoint: DefaultEndpoint, CacheDir: "/h/hub", Offline: true}},
		{"offline 0", map[string]string{"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": "/h"}, Options{Endpoint: DefaultEndpoint, CacheDir: "/h/hub"}},
		{"transformers offline", map[string]string{"TRANSFORMERS_OFFLINE": "1", "HF_HOME": "/h"}, Options{Endpoint: DefaultEndpoint, CacheDir: "/h/hub", Offline: true}},
	} {
		got := optionsFrom(func(k string) string { return tc.env[k] })
		if got.Endpoint != tc.want.Endpoint || got.CacheDir != tc.want.CacheDir || got.Token != tc.want.Token || got.Offline != tc.want.Offline {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestHubServesFixture downloads a real generated checkpoint through the
// fake hub and checks every byte arrives.
func TestHubServesFixture(t *testing.T) {
	dir := testmodel.Dir(t, "tiny-f32")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[e.Name()] = b
		}
	}
	h := newFakeHub(t)
	commit := h.addCommit("logitlens/tiny-f32", "main", files)
	opt := testOptions(t, h)
	snap, err := Resolve(testCtx(t), "logitlens/tiny-f32", opt)
	if err != nil {
		t.Fatal(err)
	}
	if m := cacheMissing(snap.Dir); len(m) > 0 {
		t.Fatalf("snapshot lacks %v", m)
	}
	for _, f := range []string{"config.json", "model.safetensors"} {
		checkLinked(t, filepath.Join(opt.CacheDir, "models--logitlens--tiny-f32"), commit, f, files[f])
	}
}

func TestHubSlowHeadFallsBackToCache(t *testing.T) {
	old := headTimeout
	headTimeout = 200 * time.Millisecond
	t.Cleanup(func() { headTimeout = old })
	h := newFakeHub(t)
	h.addCommit("org/slow", "main", fakeModelFiles(13))
	opt := testOptions(t, h)
	warm, err := Resolve(testCtx(t), "org/slow", opt)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.headDelay = 10 * time.Second
	h.mu.Unlock()
	start := time.Now()
	got, err := Resolve(testCtx(t), "org/slow", opt)
	if err != nil || got != warm {
		t.Fatalf("%+v, %v; want the cached %+v", got, err, warm)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("fallback took %v", el)
	}
	if _, err := Resolve(testCtx(t), "org/slow@v9", opt); !errors.Is(err, ErrUnreachable) {
		t.Errorf("uncached revision on a hung hub: %v, want ErrUnreachable", err)
	}
}
