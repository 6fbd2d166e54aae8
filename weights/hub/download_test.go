package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// modelPaths returns the blob, .incomplete and snapshot paths of the
// fake model's weights.
func modelPaths(opt Options, repo, commit string, data []byte) (blob, inc, link string) {
	repoDir := filepath.Join(opt.CacheDir, cacheRepoFolder(Model, repo))
	blob = filepath.Join(repoDir, "blobs", sha256Hex(data))
	return blob, blob + ".incomplete", filepath.Join(repoDir, "snapshots", commit, "model.safetensors")
}

// rangesSeen lists the Range headers of GETs that reached the CDN
// (the hub's redirect saw the same header).
func rangesSeen(h *fakeHub) []string {
	var out []string
	for _, r := range h.requests() {
		if r.Server == "cdn" && r.Method == "GET" && r.Range != "" {
			out = append(out, r.Range)
		}
	}
	return out
}

func TestDownloadResumesAfterCutConnection(t *testing.T) {
	h := newFakeHub(t)
	files := fakeModelFiles(20)
	commit := h.addCommit("org/flaky", "main", files)
	h.cut["model.safetensors"] = 100_000
	opt := testOptions(t, h)
	if _, err := Resolve(testCtx(t), "org/flaky", opt); err != nil {
		t.Fatal(err)
	}
	if got := rangesSeen(h); len(got) != 1 || got[0] != "bytes=100000-" {
		t.Errorf("Range headers %v, want [bytes=100000-]", got)
	}
	checkLinked(t, filepath.Join(opt.CacheDir, "models--org--flaky"), commit, "model.safetensors", files["model.safetensors"])
}

func TestDownloadResumesPartialFile(t *testing.T) {
	h := newFakeHub(t)
	files := fakeModelFiles(21)
	data := files["model.safetensors"]
	commit := h.addCommit("org/partial", "main", files)
	opt := testOptions(t, h)
	_, inc, _ := modelPaths(opt, "org/partial", commit, data)
	if err := os.MkdirAll(filepath.Dir(inc), 0o777); err != nil {
		t.Fatal(err)
	}
	// As left by an interrupted run (ours or huggingface_hub's).
	if err := os.WriteFile(inc, data[:123_456], 0o644); err != nil {
		t.Fatal(err)
	}
	var first Progress
	opt.Progress = func(p Progress) {
		if p.File == "model.safetensors" && first.File == "" {
			first = p
		}
	}
	if _, err := Resolve(testCtx(t), "org/partial", opt); err != nil {
		t.Fatal(err)
	}
	if got := rangesSeen(h); len(got) != 1 || got[0] != "bytes=123456-" {
		t.Errorf("Range headers %v, want [bytes=123456-]", got)
	}
	if first.Done != 123_456 {
		t.Errorf("first progress %+v, want Done=123456", first)
	}
	checkLinked(t, filepath.Join(opt.CacheDir, "models--org--partial"), commit, "model.safetensors", data)
}

func TestDownloadServerIgnoresRange(t *testing.T) {
	h := newFakeHub(t)
	files := fakeModelFiles(22)
	data := files["model.safetensors"]
	commit := h.addCommit("org/norange", "main", files)
	h.ignoreRange = true
	opt := testOptions(t, h)
	_, inc, _ := modelPaths(opt, "org/norange", commit, data)
	os.MkdirAll(filepath.Dir(inc), 0o777)
	// A wrong prefix: kept, it would fail the sha256; the 200 must restart.
	if err := os.WriteFile(inc, make([]byte, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(testCtx(t), "org/norange", opt); err != nil {
		t.Fatal(err)
	}
	if got := rangesSeen(h); len(got) != 1 {
		t.Errorf("Range headers %v, want one", got)
	}
	checkLinked(t, filepath.Join(opt.CacheDir, "models--org--norange"), commit, "model.safetensors", data)
}

func TestDownloadStallResumes(t *testing.T) {
	old := stallTimeout
	stallTimeout = 300 * time.Millisecond
	t.Cleanup(func() { stallTimeout = old })
	h := newFakeHub(t)
	files := fakeModelFiles(23)
	commit := h.addCommit("org/stall", "main", files)
	h.block["model.safetensors"] = 200_000
	opt := testOptions(t, h)
	if _, err := Resolve(testCtx(t), "org/stall", opt); err != nil {
		t.Fatal(err)
	}
	if got := rangesSeen(h); len(got) != 1 || !strings.HasPrefix(got[0], "bytes=") {
		t.Errorf("Range headers %v, want one resume", got)
	}
	checkLinked(t, filepath.Join(opt.CacheDir, "models--org--stall"), commit, "model.safetensors", files["model.safetensors"])
}

func TestDownloadIntegrity(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(h *fakeHub)
	}{
		{"wrong bytes", func(h *fakeHub) { h.corrupt = true }},
		{"announced size too small", func(h *fakeHub) { h.sizeDelta = -10 }},
		{"announced size too large", func(h *fakeHub) { h.sizeDelta = 10 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHub(t)
			files := fakeModelFiles(24)
			commit := h.addCommit("org/bad", "main", files)
			tc.set(h)
			opt := testOptions(t, h)
			_, err := Resolve(testCtx(t), "org/bad", opt)
			if !errors.Is(err, ErrIntegrity) {
				t.Fatalf("%v, want ErrIntegrity", err)
			}
			blob, inc, link := modelPaths(opt, "org/bad", commit, files["model.safetensors"])
			for _, p := range []string{blob, inc, link, filepath.Join(opt.CacheDir, "models--org--bad", "refs", "main")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s left behind", p)
				}
			}
		})
	}
}

func TestDownloadCancelLeavesOnlyIncomplete(t *testing.T) {
	h := newFakeHub(t)
	files := fakeModelFiles(25)
	data := files["model.safetensors"]
	commit := h.addCommit("org/cancel", "main", files)
	h.block["model.safetensors"] = 150_000
	opt := testOptions(t, h)
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		<-h.blocked
		time.Sleep(50 * time.Millisecond) // let the client read what was sent
		cancel()
	}()
	start := time.Now()
	_, err := Resolve(ctx, "org/cancel", opt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v, want context.Canceled", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("cancel took %v", el)
	}
	blob, inc, link := modelPaths(opt, "org/cancel", commit, data)
	st, err := os.Stat(inc)
	if err != nil {
		t.Fatalf("no .incomplete kept: %v", err)
	}
	for _, p := range []string{blob, link, filepath.Join(opt.CacheDir, "models--org--cancel", "refs", "main")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists after cancel", p)
		}
	}
	// The next run resumes from what was kept.
	h.resetRequests()
	if _, err := Resolve(testCtx(t), "org/cancel", opt); err != nil {
		t.Fatal(err)
	}
	ranges := rangesSeen(h)
	if st.Size() > 0 && (len(ranges) != 1 || ranges[0] != fmt.Sprintf("bytes=%d-", st.Size())) {
		t.Errorf("kept %d bytes, Range headers %v", st.Size(), ranges)
	}
	checkLinked(t, filepath.Join(opt.CacheDir, "models--org--cancel"), commit, "model.safetensors", data)
}

func TestDownloadDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	h := newFakeHub(t)
	files := fakeModelFiles(26)
	commit := h.addCommit("org/full", "main", files)
	opt := testOptions(t, h)
	_, inc, _ := modelPaths(opt, "org/full", commit, files["model.safetensors"])
	os.MkdirAll(filepath.Dir(inc), 0o777)
	// Writes through this link fail with ENOSPC, as on a full disk.
	if err := os.Symlink("/dev/full", inc); err != nil {
		t.Fatal(err)
	}
	_, err := Resolve(testCtx(t), "org/full", opt)
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("%v, want ErrDiskFull", err)
	}
}

func TestDownloadConcurrentResolvesShareOneDownload(t *testing.T) {
	h := newFakeHub(t)
	files := fakeModelFiles(27)
	h.addCommit("org/twice", "main", files)
	opt := testOptions(t, h)
	var wg sync.WaitGroup
	snaps := make([]Snapshot, 3)
	errs := make([]error, 3)
	for i := range snaps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snaps[i], errs[i] = Resolve(testCtx(t), "org/twice", opt)
		}()
	}
	wg.Wait()
	for i := range snaps {
		if errs[i] != nil || snaps[i] != snaps[0] {
			t.Errorf("resolve %d: %+v, %v", i, snaps[i], errs[i])
		}
	}
	if n := h.count("cdn", "GET"); n != 1 {
		t.Errorf("weights downloaded %d times, want once", n)
	}
}

func TestDownloadProgressThrottled(t *testing.T) {
	h := newFakeHub(t)
	files := fakeModelFiles(28)
	files["model.safetensors"] = fakeBytes(28, 8<<20)
	h.addCommit("org/progress", "main", files)
	opt := testOptions(t, h)
	var reports []Progress
	var at []time.Time
	opt.Progress = func(p Progress) {
		if p.File == "model.safetensors" {
			reports = append(reports, p)
			at = append(at, time.Now())
		}
	}
	if _, err := Resolve(testCtx(t), "org/progress", opt); err != nil {
		t.Fatal(err)
	}
	if len(reports) < 2 || reports[0].Done != 0 || !reports[len(reports)-1].Finished {
		t.Fatalf("reports %+v", reports)
	}
	// Between the forced first and last report, at most one per 100 ms.
	for i := 2; i < len(reports)-1; i++ {
		if d := at[i].Sub(at[i-1]); d < 90*time.Millisecond {
			t.Errorf("reports %d and %d only %v apart", i-1, i, d)
		}
	}
	for i := 1; i < len(reports); i++ {
		if reports[i].Done < reports[i-1].Done {
			t.Errorf("Done went backwards: %+v", reports)
		}
	}
}
