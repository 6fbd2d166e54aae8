package hub

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFilesFromSpace: files of a Space come from /spaces/ORG/NAME/resolve/…
// into spaces--ORG--NAME, as huggingface_hub's hf_hub_download(repo_type=
// "space") puts them; afterwards they resolve offline with no request.
func TestFilesFromSpace(t *testing.T) {
	h := newFakeHub(t)
	params := []byte("PK\x03\x04 not really a zip, but bytes")
	commit := h.addCommit("spaces/AlignmentResearch/tuned-lens", "main", map[string][]byte{
		"lens/gpt2/config.json": []byte(`{"d_model": 768}`),
		"lens/gpt2/params.pt":   params,
	})
	opt := testOptions(t, h)
	var progress []string
	opt.Progress = func(p Progress) {
		if p.Finished {
			progress = append(progress, p.File)
		}
	}
	repo := Repo{Type: Space, ID: "AlignmentResearch/tuned-lens"}
	files := []string{"lens/gpt2/config.json", "lens/gpt2/params.pt"}
	snap, err := Files(testCtx(t), repo, files, opt)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(opt.CacheDir, "spaces--AlignmentResearch--tuned-lens", "snapshots", commit)
	if snap.Dir != want || snap.Commit != commit {
		t.Errorf("snapshot %+v, want dir %s", snap, want)
	}
	got, err := os.ReadFile(filepath.Join(snap.Dir, "lens", "gpt2", "params.pt"))
	if err != nil || string(got) != string(params) {
		t.Errorf("params.pt: %q, %v", got, err)
	}
	ref, err := os.ReadFile(filepath.Join(opt.CacheDir, "spaces--AlignmentResearch--tuned-lens", "refs", "main"))
	if err != nil || string(ref) != commit {
		t.Errorf("refs/main: %q, %v", ref, err)
	}
	for _, r := range h.requests() {
		if r.Server == "hub" && (!strings.HasPrefix(r.Path, "/spaces/AlignmentResearch/tuned-lens/resolve/") || !strings.Contains(r.Path, "/lens/gpt2/")) {
			t.Errorf("request %s %s", r.Method, r.Path)
		}
	}
	if len(progress) != 2 {
		t.Errorf("finished downloads reported: %v", progress)
	}

	h.resetRequests()
	opt.Offline = true
	off, err := Files(testCtx(t), repo, files, opt)
	if err != nil || off.Dir != snap.Dir {
		t.Fatalf("offline: %+v, %v", off, err)
	}
	if n := len(h.requests()); n != 0 {
		t.Errorf("offline made %d requests", n)
	}
	// a file never downloaded is an offline error that names the Space
	_, err = Files(testCtx(t), repo, []string{"lens/gpt2-xl/params.pt"}, opt)
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "spaces/AlignmentResearch/tuned-lens") {
		t.Errorf("offline, not cached: %v", err)
	}

	// online, a missing file is EntryNotFound
	opt.Offline = false
	_, err = Files(testCtx(t), repo, []string{"lens/gpt2-medium/params.pt"}, opt)
	if !errors.Is(err, ErrEntryNotFound) {
		t.Errorf("missing file: %v", err)
	}
	// the same repo id as a model is another repository
	_, err = Files(testCtx(t), Repo{ID: "AlignmentResearch/tuned-lens"}, files, opt)
	if !errors.Is(err, ErrRepoNotFound) {
		t.Errorf("as a model repo: %v", err)
	}
	// the hub unreachable: the cached snapshot answers
	opt.Endpoint = closedEndpoint(t)
	if s, err := Files(testCtx(t), repo, files, opt); err != nil || s.Dir != snap.Dir {
		t.Errorf("unreachable: %+v, %v", s, err)
	}
	for _, bad := range []string{"../x", "/abs", ""} {
		if _, err := Files(testCtx(t), repo, []string{bad}, opt); err == nil {
			t.Errorf("file %q accepted", bad)
		}
	}
}
