package hub

// Re-verifying the cache. A blob is checked when it is downloaded; Verify
// checks it again later, against the hash its name states (sha256 for LFS
// files, git's blob id for the others; see hash.go), to find blobs that a
// disk, a copy or a careless edit damaged since. Repair fetches a damaged
// blob again for one of the snapshot files that point at it.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/logitlens/logitlens/weights"
)

// BlobState is what Verify found for one blob.
type BlobState int

// Blob states.
const (
	// BlobOK: the content hashes to the blob's name.
	BlobOK BlobState = iota
	// BlobCorrupt: the content does not hash to the blob's name, or the
	// blob cannot be read; Repair fetches it again.
	BlobCorrupt
	// BlobUnverifiable: the blob's name is no hash this package knows
	// (written by another tool), so there is nothing to check it against.
	BlobUnverifiable
)

// String names the state in lower case, as a report prints it.
func (s BlobState) String() string {
	switch s {
	case BlobOK:
		return "ok"
	case BlobCorrupt:
		return "corrupt"
	case BlobUnverifiable:
		return "unverifiable"
	}
	return fmt.Sprintf("BlobState(%d)", int(s))
}

// SnapshotFile is one file of one cached commit.
type SnapshotFile struct {
	Commit string // 40-hex commit hash
	File   string // path inside the repo, "/"-separated
}

// BlobCheck is Verify's verdict on one blob.
type BlobCheck struct {
	Repo    string         // repo id, "openai-community/gpt2"
	Path    string         // the blob file, <cache>/models--ORG--NAME/blobs/<etag>
	ETag    string         // its name: sha256 (LFS) or git blob id
	Size    int64          // bytes
	Files   []SnapshotFile // the snapshot entries that link to it, sorted
	State   BlobState
	Problem string // for BlobCorrupt: what is wrong ("sha256 …, expected …")
}

// VerifyProgress reports how far Verify has got.
type VerifyProgress struct {
	Repo, ETag  string // the blob being hashed
	Done, Total int64  // bytes hashed so far and in all, over every blob
}

// Verify hashes every complete blob of every model repo in the cache
// directory (empty: OptionsFromEnv's) and returns one BlobCheck per blob,
// sorted by repo and etag. progress, if not nil, is called before each blob
// and about 10 times a second while hashing. A missing cache is an empty
// list; cancelling ctx stops the work and returns ctx's error.
func Verify(ctx context.Context, cacheDir string, progress func(VerifyProgress)) ([]BlobCheck, error) {
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
	var checks []BlobCheck
	var total int64
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "models--") {
			continue
		}
		repoDir := filepath.Join(cacheDir, e.Name())
		repo := strings.ReplaceAll(strings.TrimPrefix(e.Name(), "models--"), "--", "/")
		links := snapshotLinks(repoDir)
		blobs, _ := os.ReadDir(filepath.Join(repoDir, "blobs"))
		for _, b := range blobs {
			if !b.Type().IsRegular() || strings.HasSuffix(b.Name(), ".incomplete") {
				continue
			}
			info, err := b.Info()
			if err != nil {
				continue
			}
			c := BlobCheck{Repo: repo, Path: filepath.Join(repoDir, "blobs", b.Name()), ETag: b.Name(), Size: info.Size(), Files: links[b.Name()]}
			total += c.Size
			checks = append(checks, c)
		}
	}
	sort.Slice(checks, func(i, j int) bool {
		if checks[i].Repo != checks[j].Repo {
			return checks[i].Repo < checks[j].Repo
		}
		return checks[i].ETag < checks[j].ETag
	})
	vp := &verifyProgress{fn: progress, total: total}
	for i := range checks {
		c := &checks[i]
		vp.start(c.Repo, c.ETag)
		sum := newBlobHash(c.ETag, c.Size)
		if sum == nil {
			c.State = BlobUnverifiable
			vp.done += c.Size
			continue
		}
		c.State, c.Problem, err = checkBlob(ctx, c.Path, c.ETag, c.Size, sum, vp)
		if err != nil {
			return nil, err
		}
	}
	return checks, nil
}

// checkBlob hashes the blob at path; err is only ctx's.
func checkBlob(ctx context.Context, path, etag string, size int64, sum *blobHash, vp *verifyProgress) (BlobState, string, error) {
	f, st, err := weights.OpenFile(path)
	if err != nil {
		vp.done += size
		return BlobCorrupt, fmt.Sprintf("unreadable: %v", err), nil
	}
	defer f.Close()
	if st.Size() != size { // changed since it was listed: hash what is there
		sum = newBlobHash(etag, st.Size())
	}
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return 0, "", err
		}
		n, rerr := f.Read(buf)
		sum.Write(buf[:n])
		vp.add(int64(n))
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return BlobCorrupt, fmt.Sprintf("unreadable: %v", rerr), nil
		}
	}
	if got := sum.hex(); got != etag {
		return BlobCorrupt, fmt.Sprintf("%s %s, expected %s", sum.name, got, etag), nil
	}
	return BlobOK, "", nil
}

// snapshotLinks maps each blob name to the snapshot files that link to it
// (symlinks only: where the cache holds copies, nothing links).
func snapshotLinks(repoDir string) map[string][]SnapshotFile {
	links := map[string][]SnapshotFile{}
	snaps := filepath.Join(repoDir, "snapshots")
	blobs := filepath.Join(repoDir, "blobs")
	_ = filepath.WalkDir(snaps, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, err := os.Readlink(p)
		if err != nil {
			return nil
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		if filepath.Dir(target) != blobs {
			return nil
		}
		rel, err := filepath.Rel(snaps, p)
		if err != nil {
			return nil
		}
		commit, file, ok := strings.Cut(filepath.ToSlash(rel), "/")
		if ok {
			name := filepath.Base(target)
			links[name] = append(links[name], SnapshotFile{Commit: commit, File: file})
		}
		return nil
	})
	for _, l := range links {
		sort.Slice(l, func(i, j int) bool {
			if l[i].Commit != l[j].Commit {
				return l[i].Commit < l[j].Commit
			}
			return l[i].File < l[j].File
		})
	}
	return links
}

// Repair fetches a corrupt blob again (c from Verify, opt as for Resolve):
// it deletes the blob and downloads it anew, verified, for the first
// snapshot file that links to it, so every snapshot entry that links to
// it is whole again. A blob no snapshot links to is only deleted: nothing
// needs it. A blob that has become sound meanwhile (another process
// repaired it) is left alone. Repair needs the network: offline it fails
// with ErrOffline. If the download fails, the blob stays deleted: the
// snapshot is then incomplete, and the next Resolve fetches what it lacks
// (a missing blob is better than a wrong one).
func Repair(ctx context.Context, opt Options, c BlobCheck) error {
	if c.State != BlobCorrupt {
		return nil
	}
	if opt.Endpoint == "" || opt.CacheDir == "" {
		def := OptionsFromEnv()
		if opt.Endpoint == "" {
			opt.Endpoint = def.Endpoint
		}
		if opt.CacheDir == "" {
			opt.CacheDir = def.CacheDir
		}
	}
	opt.Endpoint = strings.TrimRight(opt.Endpoint, "/")
	if !cacheSafeName(c.ETag) || validRepoID(c.Repo) != nil {
		return fmt.Errorf("hub: %s: not a blob of the cache", quote(c.Path))
	}
	if len(c.Files) > 0 && opt.Offline {
		return &Error{Repo: c.Repo, kinds: []error{ErrOffline},
			msg: fmt.Sprintf("hub: %s: cannot fetch blob %s again: offline mode is on (HF_HUB_OFFLINE)", c.Repo, c.ETag)}
	}
	sf := SnapshotFile{}
	if len(c.Files) > 0 {
		sf = c.Files[0]
	}
	r := newHubResolver(opt, c.Repo, sf.Commit)
	blob := filepath.Join(r.repoDir, "blobs", c.ETag)
	if err := r.removeCorrupt(ctx, blob, c); err != nil {
		return err
	}
	if len(c.Files) == 0 {
		return nil
	}
	if !isCommit(sf.Commit) || !cacheSafeRelPath(sf.File) {
		return fmt.Errorf("hub: %s: %s/%s is not a snapshot file", c.Repo, quote(sf.Commit), quote(sf.File))
	}
	meta, err := r.head(ctx, sf.File)
	if err != nil {
		return err
	}
	if meta.commit != sf.Commit {
		return &Error{Repo: c.Repo, Revision: sf.Commit, File: sf.File, kinds: []error{ErrUnreachable},
			msg: fmt.Sprintf("hub: %s@%s: %s: the hub answered for commit %s", c.Repo, sf.Commit, sf.File, meta.commit)}
	}
	if meta.etag != c.ETag {
		return &Error{Repo: c.Repo, Revision: sf.Commit, File: sf.File, kinds: []error{ErrIntegrity},
			msg: fmt.Sprintf("hub: %s@%s: %s: the hub names blob %s, not %s: remove the snapshot and download it again",
				c.Repo, sf.Commit, sf.File, meta.etag, c.ETag)}
	}
	return r.download(ctx, meta, sf.File, filepath.Join(cacheSnapshotDir(r.repoDir, sf.Commit), filepath.FromSlash(sf.File)))
}

// removeCorrupt deletes the blob under its lock if it is still corrupt.
func (r *resolver) removeCorrupt(ctx context.Context, blob string, c BlobCheck) error {
	unlock, err := cacheLock(ctx, r.lockPath(c.ETag), nil)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("hub: %s: %w", c.Repo, ctx.Err())
		}
		return r.fsErr(c.ETag, err)
	}
	defer unlock()
	st, err := os.Lstat(blob)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && st.Mode().IsRegular() {
		if sum := newBlobHash(c.ETag, st.Size()); sum != nil {
			state, _, err := checkBlob(ctx, blob, c.ETag, st.Size(), sum, &verifyProgress{})
			if err != nil {
				return err
			}
			if state == BlobOK {
				return nil
			}
		}
	}
	if err := os.Remove(blob); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return r.fsErr(c.ETag, err)
	}
	return nil
}

// verifyProgress throttles VerifyProgress reports.
type verifyProgress struct {
	fn          func(VerifyProgress)
	repo, etag  string
	done, total int64
	last        time.Time
}

func (v *verifyProgress) start(repo, etag string) {
	v.repo, v.etag = repo, etag
	v.report(true)
}

func (v *verifyProgress) add(n int64) {
	v.done += n
	v.report(false)
}

func (v *verifyProgress) report(force bool) {
	if v.fn == nil {
		return
	}
	if now := time.Now(); force || now.Sub(v.last) >= progressEvery {
		v.last = now
		v.fn(VerifyProgress{Repo: v.repo, ETag: v.etag, Done: v.done, Total: v.total})
	}
}
