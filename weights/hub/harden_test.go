package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDownloadVerifiesGitBlobs: a non-LFS file whose bytes do not match
// its git blob id (same size, so the size check alone passes) is refused
// and never linked into the snapshot.
func TestDownloadVerifiesGitBlobs(t *testing.T) {
	h := newFakeHub(t)
	files := fakeModelFiles(40)
	commit := h.addCommit("org/gitblob", "main", files)
	h.corruptFile = "tokenizer.json"
	opt := testOptions(t, h)
	_, err := Resolve(testCtx(t), "org/gitblob", opt)
	if !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), "tokenizer.json: download corrupt (git blob sha1 ") {
		t.Fatalf("err = %v, want a git blob sha1 mismatch", err)
	}
	repoDir := filepath.Join(opt.CacheDir, "models--org--gitblob")
	for _, p := range []string{
		filepath.Join(repoDir, "snapshots", commit, "tokenizer.json"),
		filepath.Join(repoDir, "blobs", gitOID(files["tokenizer.json"])),
		filepath.Join(repoDir, "blobs", gitOID(files["tokenizer.json"])+".incomplete"),
	} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	// The sound files before it were kept and verified.
	checkLinked(t, repoDir, commit, "config.json", files["config.json"])
}

// TestHeadRetries5xx: a 503 on the first metadata request is retried (as
// the server's Retry-After asks), not reported as an unreachable hub.
func TestHeadRetries5xx(t *testing.T) {
	for _, after := range []string{"", "0"} {
		h := newFakeHub(t)
		h.addCommit("org/flaky", "main", fakeModelFiles(41))
		h.unavailable, h.retryAfter = 2, after
		if _, err := Resolve(testCtx(t), "org/flaky", testOptions(t, h)); err != nil {
			t.Fatalf("Retry-After %q: %v", after, err)
		}
	}
	// A hub that stays down is reported after headAttempts tries.
	h := newFakeHub(t)
	h.addCommit("org/down", "main", fakeModelFiles(42))
	h.unavailable = 100
	_, err := Resolve(testCtx(t), "org/down", testOptions(t, h))
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("err = %v", err)
	}
	if n := h.count("hub", "HEAD"); n != headAttempts {
		t.Errorf("%d HEADs, want %d", n, headAttempts)
	}
}

// TestDownloadingHint: the download command's own errors do not tell the
// user to run the download command.
func TestDownloadingHint(t *testing.T) {
	opt := Options{Endpoint: closedEndpoint(t), CacheDir: t.TempDir()}
	_, err := Resolve(testCtx(t), "gpt2", opt)
	if !strings.Contains(err.Error(), "run `logitlens download gpt2`") {
		t.Errorf("lens: %v", err)
	}
	opt.Downloading = true
	_, err = Resolve(testCtx(t), "gpt2", opt)
	if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "logitlens download") || !strings.Contains(err.Error(), "try again when the hub is reachable") {
		t.Errorf("download: %v", err)
	}
	opt.Offline = true
	_, err = Resolve(testCtx(t), "gpt2", opt)
	if !errors.Is(err, ErrOffline) || strings.Contains(err.Error(), "logitlens download") || !strings.Contains(err.Error(), "unset HF_HUB_OFFLINE") {
		t.Errorf("download offline: %v", err)
	}
}

// TestDownloadWaitsForLockWithProgress: while another process holds a
// blob's lock, Resolve says it is waiting (once), then reports the file
// finished when the other process has put it in place.
func TestDownloadWaitsForLockWithProgress(t *testing.T) {
	h := newFakeHub(t)
	files := fakeModelFiles(43)
	h.addCommit("org/locked", "main", files)
	opt := testOptions(t, h)
	etag := sha256Hex(files["model.safetensors"])
	r := newHubResolver(opt, "org/locked", "main")
	unlock, err := cacheLock(testCtx(t), r.lockPath(etag), nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reports []Progress
	waiting := make(chan struct{})
	opt.Progress = func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if p.File == "model.safetensors" {
			reports = append(reports, p)
			if p.Waiting {
				close(waiting)
			}
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := Resolve(testCtx(t), "org/locked", opt)
		done <- err
	}()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("Resolve returned while the lock was held: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no Waiting report")
	}
	// The "other process" finishes the blob, then lets go.
	blob := filepath.Join(r.repoDir, "blobs", etag)
	if err := os.MkdirAll(filepath.Dir(blob), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blob, files["model.safetensors"], 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(120 * time.Millisecond) // at least one more poll while held
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 2 || !reports[0].Waiting || !reports[1].Finished || reports[1].Done != int64(len(files["model.safetensors"])) {
		t.Errorf("reports = %+v, want one Waiting then one Finished", reports)
	}
	if n := h.count("cdn", "GET"); n != 0 {
		t.Errorf("%d CDN GETs: the blob the other process wrote was downloaded again", n)
	}
}

// TestVerifyAndRepair: Verify finds blobs damaged after download, LFS and
// git ones alike, and tells apart blobs it cannot check; Repair fetches the
// damaged ones again, and deletes one that nothing links to.
func TestVerifyAndRepair(t *testing.T) {
	h := newFakeHub(t)
	files := fakeModelFiles(44)
	commit := h.addCommit("org/verify", "main", files)
	opt := testOptions(t, h)
	if _, err := Resolve(testCtx(t), "org/verify", opt); err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(opt.CacheDir, "models--org--verify")
	blobs := filepath.Join(repoDir, "blobs")
	flip := func(name string) {
		p := filepath.Join(blobs, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	weightsTag, tokTag := sha256Hex(files["model.safetensors"]), gitOID(files["tokenizer.json"])
	flip(weightsTag)
	flip(tokTag)
	orphan := gitOID([]byte("orphan"))
	if err := os.WriteFile(filepath.Join(blobs, orphan), []byte("0rphan"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(blobs, "not-a-hash"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(blobs, "half.incomplete"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	var progress []VerifyProgress
	checks, err := Verify(testCtx(t), opt.CacheDir, func(p VerifyProgress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]BlobState{}
	for _, c := range checks {
		states[c.ETag] = c.State
		if c.Repo != "org/verify" {
			t.Errorf("%s: repo %q", c.ETag, c.Repo)
		}
		switch c.ETag {
		case weightsTag:
			if len(c.Files) != 1 || c.Files[0] != (SnapshotFile{commit, "model.safetensors"}) || !strings.HasPrefix(c.Problem, "sha256 ") {
				t.Errorf("weights: %+v", c)
			}
		case tokTag:
			if !strings.HasPrefix(c.Problem, "git blob sha1 ") {
				t.Errorf("tokenizer: %+v", c)
			}
		}
	}
	want := map[string]BlobState{
		weightsTag: BlobCorrupt, tokTag: BlobCorrupt, orphan: BlobCorrupt, "not-a-hash": BlobUnverifiable,
		gitOID(files["config.json"]): BlobOK,
	}
	if len(states) != len(want) {
		t.Errorf("checked %v, want %v", states, want)
	}
	for etag, s := range want {
		if states[etag] != s {
			t.Errorf("%s: %v, want %v", etag, states[etag], s)
		}
	}
	if last := progress[len(progress)-1]; len(progress) < len(checks) || last.Total == 0 || last.Done > last.Total {
		t.Errorf("progress %+v", progress)
	}

	// Offline, nothing can be fetched.
	offline := opt
	offline.Offline = true
	for _, c := range checks {
		if c.ETag == weightsTag {
			if err := Repair(testCtx(t), offline, c); !errors.Is(err, ErrOffline) {
				t.Errorf("offline repair: %v", err)
			}
		}
	}
	for _, c := range checks {
		if err := Repair(testCtx(t), opt, c); err != nil {
			t.Errorf("repair %s: %v", c.ETag, err)
		}
	}
	checkLinked(t, repoDir, commit, "model.safetensors", files["model.safetensors"])
	checkLinked(t, repoDir, commit, "tokenizer.json", files["tokenizer.json"])
	if _, err := os.Stat(filepath.Join(blobs, orphan)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan blob kept: %v", err)
	}
	checks, err = Verify(testCtx(t), opt.CacheDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.State == BlobCorrupt {
			t.Errorf("still corrupt after repair: %+v", c)
		}
	}

	// Cancelled, Verify stops with ctx's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(ctx, opt.CacheDir, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Verify: %v", err)
	}
}

// FuzzIndexShards: any model.safetensors.index.json gives shard names
// that stay inside the snapshot, or one short error line.
func FuzzIndexShards(f *testing.F) {
	f.Add([]byte(`{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"../../etc/passwd"}}`))
	f.Add([]byte(`{"weight_map":{"a":"sub/dir/x.safetensors","b":"sub//x"}}`))
	f.Add([]byte(`{"weight_map":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		shards, err := parseIndexShards(data)
		if err != nil {
			if msg := err.Error(); len(msg) > 1000 || strings.ContainsAny(msg, "\n\x1b") {
				t.Fatalf("error of %d bytes: %.200q", len(msg), msg)
			}
			return
		}
		if len(shards) == 0 {
			t.Fatal("no shards and no error")
		}
		for _, s := range shards {
			if !cacheSafeRelPath(s) || filepath.IsAbs(s) || strings.Contains("/"+s+"/", "/../") {
				t.Fatalf("unsafe shard %q accepted", s)
			}
		}
	})
}
