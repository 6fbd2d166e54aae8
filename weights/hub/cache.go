package hub

// The on-disk cache, laid out exactly as huggingface_hub lays it out (see
// hub.go for the tree). Everything here is local: no network.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights"
)

// CachedModel is one revision of a repo found in the cache.
type CachedModel struct {
	Repo     string // repo id, "openai-community/gpt2"
	Revision string // ref name ("main", a tag, "refs/pr/1"), or the commit for a snapshot no ref names
	Commit   string // 40-hex commit hash
	Dir      string // snapshots/<commit>
	Size     int64  // bytes of the repo's complete blobs (blobs/*, not *.incomplete), shared by all its revisions
	Complete bool   // the snapshot holds config.json, the weights and a tokenizer
}

// ListCached lists every model repo/ref in the cache directory (empty:
// OptionsFromEnv's), sorted by repo and revision. A missing cache
// directory is an empty list.
func ListCached(cacheDir string) ([]CachedModel, error) {
	if cacheDir == "" {
		cacheDir = OptionsFromEnv().CacheDir
	}
	entries, err := os.ReadDir(cacheDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hub: hub cache: %w", err)
	}
	var out []CachedModel
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, "models--") {
			continue
		}
		repo := strings.ReplaceAll(strings.TrimPrefix(name, "models--"), "--", "/")
		out = append(out, cacheListRepo(filepath.Join(cacheDir, name), repo)...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Repo != out[j].Repo {
			return out[i].Repo < out[j].Repo
		}
		return out[i].Revision < out[j].Revision
	})
	return out, nil
}

// cacheListRepo lists one repo folder: every ref, then every snapshot no
// ref points at (downloaded by commit hash).
func cacheListRepo(repoDir, repo string) []CachedModel {
	size := cacheBlobsSize(filepath.Join(repoDir, "blobs"))
	var out []CachedModel
	named := map[string]bool{}
	refs := filepath.Join(repoDir, "refs")
	_ = filepath.WalkDir(refs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(refs, p)
		rev := filepath.ToSlash(rel)
		commit, err := cacheReadRef(repoDir, rev)
		if err != nil {
			return nil
		}
		named[commit] = true
		dir := cacheSnapshotDir(repoDir, commit)
		out = append(out, CachedModel{Repo: repo, Revision: rev, Commit: commit, Dir: dir, Size: size,
			Complete: len(cacheMissing(dir)) == 0})
		return nil
	})
	snaps, _ := os.ReadDir(filepath.Join(repoDir, "snapshots"))
	for _, s := range snaps {
		if !s.IsDir() || named[s.Name()] {
			continue
		}
		dir := cacheSnapshotDir(repoDir, s.Name())
		out = append(out, CachedModel{Repo: repo, Revision: s.Name(), Commit: s.Name(), Dir: dir, Size: size,
			Complete: len(cacheMissing(dir)) == 0})
	}
	return out
}

func cacheBlobsSize(blobs string) int64 {
	entries, _ := os.ReadDir(blobs)
	var n int64
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".incomplete") {
			continue
		}
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

// cacheRepoFolder is huggingface_hub's repo_folder_name:
// "<type>s--ORG--NAME", e.g. models--openai-community--gpt2 or
// spaces--AlignmentResearch--tuned-lens.
func cacheRepoFolder(kind RepoType, repo string) string {
	return string(kind) + "s--" + strings.ReplaceAll(repo, "/", "--")
}

func cacheSnapshotDir(repoDir, commit string) string {
	return filepath.Join(repoDir, "snapshots", commit)
}

// cacheIsFile reports whether p is (or links to) a regular file.
func cacheIsFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// cacheMissing lists what a snapshot lacks to be a loadable model, empty
// when complete.
func cacheMissing(dir string) []string {
	has := func(f string) bool { return cacheIsFile(filepath.Join(dir, filepath.FromSlash(f))) }
	var missing []string
	if !has("config.json") {
		missing = append(missing, "config.json")
	}
	switch {
	case has("model.safetensors"):
	case has("model.safetensors.index.json"):
		shards, err := cacheIndexShards(filepath.Join(dir, "model.safetensors.index.json"))
		if err != nil {
			missing = append(missing, "a valid model.safetensors.index.json")
		}
		for _, s := range shards {
			if !has(s) {
				missing = append(missing, s)
			}
		}
	default:
		missing = append(missing, "model.safetensors")
	}
	if !has("tokenizer.json") && !(has("vocab.json") && has("merges.txt")) {
		missing = append(missing, "tokenizer.json (or vocab.json + merges.txt)")
	}
	return missing
}

// cacheReadRef returns the commit a revision names: the revision itself
// when it is a commit hash with a snapshot, else the content of
// refs/<revision>.
func cacheReadRef(repoDir, rev string) (string, error) {
	if isCommit(rev) {
		if st, err := os.Stat(cacheSnapshotDir(repoDir, rev)); err == nil && st.IsDir() {
			return rev, nil
		}
		return "", fmt.Errorf("no snapshot %s", rev)
	}
	b, err := weights.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(rev)), maxRefFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("no refs/%s", rev)
		}
		return "", err
	}
	commit := strings.TrimSpace(string(b))
	if !cacheSafeName(commit) {
		return "", fmt.Errorf("refs/%s holds \"%s\", not a commit", rev, display.Safe(commit))
	}
	return commit, nil
}

// maxRefFile bounds a refs/<revision> file, which holds a 40-hex commit.
const maxRefFile = 4096

// cacheWriteRef records which commit a revision points at, replacing the
// file atomically, and only when it changes (as huggingface_hub does).
func cacheWriteRef(repoDir, rev, commit string) error {
	p := filepath.Join(repoDir, "refs", filepath.FromSlash(rev))
	if b, err := weights.ReadFile(p, maxRefFile); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".ref-*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(commit)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// cacheMarkNoExist records that file is absent from commit, like
// huggingface_hub's .no_exist/<commit>/<file>.
func cacheMarkNoExist(repoDir, commit, file string) error {
	if !cacheSafeRelPath(file) {
		return fmt.Errorf("unsafe file name %s", quote(file))
	}
	p := filepath.Join(repoDir, ".no_exist", commit, filepath.FromSlash(file))
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		return err
	}
	return f.Close()
}

// cacheLink points snapshots/<commit>/<file> at blob with a relative
// symlink ("../../blobs/<etag>", deeper for nested files), replacing any
// previous entry atomically. Where symlinks are not available the blob is
// copied, as huggingface_hub does.
func cacheLink(snapPath, blob string) error {
	if err := os.MkdirAll(filepath.Dir(snapPath), 0o777); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(snapPath), blob)
	if err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.%d.linktmp", snapPath, os.Getpid())
	os.Remove(tmp)
	if err := os.Symlink(rel, tmp); err != nil {
		if err := cacheCopyFile(blob, tmp); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, snapPath); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func cacheCopyFile(src, dst string) error {
	in, _, err := weights.OpenFile(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o666)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// cacheSafeName reports whether s can be used as one path component taken
// from the network (an etag or a commit): [A-Za-z0-9._-], not starting
// with ".", not ending with ".incomplete".
func cacheSafeName(s string) bool {
	if s == "" || len(s) > 200 || s[0] == '.' || strings.HasSuffix(s, ".incomplete") {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// maxRepoPath bounds the length of a repo file name taken from a file.
const maxRepoPath = 1024

// cacheSafeRelPath reports whether a repo file name stays inside the
// snapshot: relative, "/"-separated, no empty, "." or ".." segments, at
// most maxRepoPath bytes.
func cacheSafeRelPath(p string) bool {
	if p == "" || len(p) > maxRepoPath || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// quote is an untrusted string (a file name from an index, a header, a
// spec) in quotes, escaped and cut by display.Safe.
func quote(s string) string { return `"` + display.Safe(s) + `"` }
