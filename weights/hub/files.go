package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RepoType is the kind of a hub repository. It decides, as in
// huggingface_hub, the URL (/spaces/ORG/NAME/resolve/…, /datasets/…) and the
// cache folder (spaces--ORG--NAME, datasets--…).
type RepoType string

// Repository types.
const (
	Model   RepoType = "model"
	Space   RepoType = "space"
	Dataset RepoType = "dataset"
)

// urlPrefix is the path segment before the repo id in hub URLs.
func (t RepoType) urlPrefix() string {
	switch t {
	case Space:
		return "spaces/"
	case Dataset:
		return "datasets/"
	}
	return ""
}

// Repo names a hub repository at a revision.
type Repo struct {
	Type     RepoType // Model when empty
	ID       string   // "ORG/NAME" or "NAME"
	Revision string   // branch, tag or commit; "main" when empty
}

// String is the repository as the hub's URLs name it, with its revision
// when not main: "spaces/AlignmentResearch/tuned-lens@v2".
func (r Repo) String() string {
	s := r.Type.urlPrefix() + r.ID
	if r.Revision != "" && r.Revision != "main" {
		s += "@" + r.Revision
	}
	return s
}

// Files returns the snapshot of repo holding the named files (paths inside
// the repository, e.g. "lens/gpt2/params.pt"), downloading those the cache
// lacks, with Resolve's protocol, cache layout, progress, offline mode and
// fallback to the cache when the hub cannot be reached. The files lie at
// their paths under Snapshot.Dir. refs/<revision> is written once all of
// them are in the snapshot.
func Files(ctx context.Context, repo Repo, files []string, opt Options) (Snapshot, error) {
	if repo.Type == "" {
		repo.Type = Model
	}
	if repo.Type != Model && repo.Type != Space && repo.Type != Dataset {
		return Snapshot{}, fmt.Errorf("hub: unknown repository type %s", quote(string(repo.Type)))
	}
	if repo.Revision == "" {
		repo.Revision = "main"
	}
	if err := validRepoID(repo.ID); err != nil {
		return Snapshot{}, err
	}
	if err := validRevision(repo.Revision); err != nil {
		return Snapshot{}, err
	}
	for _, f := range files {
		if !cacheSafeRelPath(f) {
			return Snapshot{}, fmt.Errorf("hub: %s: unsafe file name %s", repo, quote(f))
		}
	}
	opt = withDefaults(opt)
	r := newResolver(opt, repo.Type, repo.ID, repo.Revision)
	fromCache := func() (Snapshot, error) {
		commit, err := cacheReadRef(r.repoDir, r.rev)
		if err != nil {
			return Snapshot{}, err
		}
		dir := cacheSnapshotDir(r.repoDir, commit)
		var missing []string
		for _, f := range files {
			if !cacheIsFile(filepath.Join(dir, filepath.FromSlash(f))) {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return Snapshot{}, fmt.Errorf("snapshot %s lacks %s", commit, strings.Join(missing, ", "))
		}
		return Snapshot{Repo: repo.ID, Revision: repo.Revision, Commit: commit, Dir: dir}, nil
	}
	if opt.Offline {
		snap, err := fromCache()
		if err != nil {
			return Snapshot{}, r.offlineErr(err)
		}
		return snap, nil
	}
	fetchAll := func() (Snapshot, error) {
		for _, f := range files {
			if _, err := r.fetch(ctx, f); err != nil {
				return Snapshot{}, err
			}
		}
		if r.rev != r.commit {
			if err := cacheWriteRef(r.repoDir, r.rev, r.commit); err != nil {
				return Snapshot{}, r.fsErr("refs/"+r.rev, err)
			}
		}
		return Snapshot{Repo: repo.ID, Revision: repo.Revision, Commit: r.commit, Dir: cacheSnapshotDir(r.repoDir, r.commit)}, nil
	}
	snap, err := fetchAll()
	if err == nil {
		return snap, nil
	}
	if errors.Is(err, ErrUnreachable) && ctx.Err() == nil {
		if cached, cerr := fromCache(); cerr == nil {
			return cached, nil
		}
		return Snapshot{}, r.unreachableErr(err)
	}
	return Snapshot{}, err
}

// withDefaults fills an empty Endpoint and CacheDir from the environment
// (without reading a token or the offline flag) and trims the endpoint.
func withDefaults(opt Options) Options {
	if opt.Endpoint == "" || opt.CacheDir == "" {
		def := optionsFrom(func(k string) string {
			if k == "HF_TOKEN" || k == "HUGGING_FACE_HUB_TOKEN" || k == "HF_TOKEN_PATH" {
				return ""
			}
			return os.Getenv(k)
		})
		if opt.Endpoint == "" {
			opt.Endpoint = def.Endpoint
		}
		if opt.CacheDir == "" {
			opt.CacheDir = def.CacheDir
		}
	}
	opt.Endpoint = strings.TrimRight(opt.Endpoint, "/")
	return opt
}
