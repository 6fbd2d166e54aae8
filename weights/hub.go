package weights

// Hugging Face hub resolution.
//
// Design: Resolve turns a spec ("gpt2", "org/name@rev", "./dir") into a
// directory holding config.json, the safetensors weights and the tokenizer
// files. Repo ids go through the same cache layout and HTTP protocol as
// Python's huggingface_hub (hf_hub_download), so a cache written by either is
// read by the other:
//
//	$HF_HUB_CACHE/models--ORG--NAME/
//	    blobs/<etag>                      file contents, named by ETag (sha256 for LFS)
//	    refs/<revision>                   the commit hash the revision pointed at
//	    snapshots/<commit>/<file>         -> ../../blobs/<etag> (relative symlink)
//	    .no_exist/<commit>/<file>         empty marker: the file is not in that commit
//	$HF_HUB_CACHE/.locks/models--ORG--NAME/<etag>.lock
//
// Online, the first file's HEAD pins the commit; later files are requested
// at that commit so one snapshot never mixes commits, and a file already in
// snapshots/<commit>/ is not requested again (a commit is immutable). So a
// warm cache costs one HEAD (with a short timeout) and no GET. Offline, or
// when the endpoint cannot be reached, refs/ and snapshots/ alone answer.
// refs/<revision> is written only once every file of the model is in the
// snapshot, so an interrupted download never points a ref at a partial
// snapshot.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultEndpoint is the hub used when HF_ENDPOINT is unset.
const DefaultEndpoint = "https://huggingface.co"

// HubOptions configures Resolve. The zero value is usable: empty Endpoint
// and CacheDir take the defaults of HubOptionsFromEnv's rules (without
// reading a token or the offline flag).
type HubOptions struct {
	Endpoint, CacheDir, Token string
	// Offline forbids any network access: models resolve from refs/ and
	// snapshots/ only (HF_HUB_OFFLINE).
	Offline bool
	// Client sends every request; nil means a client with a 5 s dial
	// timeout and a 15 s response-header timeout but no total timeout
	// (large bodies are watched by a stall detector instead). Its
	// CheckRedirect is not used: redirects are followed by this package so
	// that Authorization never reaches another host.
	Client *http.Client
	// Progress, if non-nil, receives download progress: at the start and
	// end of each downloaded file and at most about 10 times a second in
	// between. It is called from the goroutine running Resolve.
	Progress func(Progress)
}

// Progress reports the download of one file.
type Progress struct {
	File        string        // path inside the repo, e.g. "model.safetensors"
	Done, Total int64         // bytes on disk so far (resumed bytes included) and expected size
	BytesPerSec float64       // average rate of this download so far
	ETA         time.Duration // estimated time left; 0 when unknown or finished
	Finished    bool          // the file is complete and verified
}

// Snapshot is a resolved model directory.
type Snapshot struct {
	Repo     string // repo id ("openai-community/gpt2"), or the directory for a local spec
	Revision string // requested revision ("main" by default); empty for a local spec
	Commit   string // 40-hex commit hash; empty for a local spec
	Dir      string // absolute directory holding config.json, weights and tokenizer files
	Local    bool   // the spec named a local directory; nothing was downloaded
}

// Sentinel errors, usable with errors.Is on anything Resolve returns. One
// error may match several (an unknown repo queried without a token is
// answered 401 by the hub and matches ErrRepoNotFound and ErrAuthRequired).
var (
	// ErrNotFound matches every 404: repo, revision or file.
	ErrNotFound = errors.New("weights: not found")
	// ErrRepoNotFound: the hub does not know the repository.
	ErrRepoNotFound = errors.New("weights: repository not found")
	// ErrRevisionNotFound: the repository has no such branch, tag or commit.
	ErrRevisionNotFound = errors.New("weights: revision not found")
	// ErrEntryNotFound: the revision has no such file.
	ErrEntryNotFound = errors.New("weights: file not found in repository")
	// ErrAuthRequired: the hub answered 401 or 403.
	ErrAuthRequired = errors.New("weights: authentication required")
	// ErrOffline: offline mode is on and the cache lacks what was asked.
	ErrOffline = errors.New("weights: offline and not cached")
	// ErrUnreachable: the endpoint could not be reached (DNS, refused,
	// timeout, stalled transfer, 5xx) and the cache could not stand in.
	ErrUnreachable = errors.New("weights: hub unreachable")
	// ErrIntegrity: a download's size or sha256 did not match; the partial
	// file was deleted.
	ErrIntegrity = errors.New("weights: download integrity check failed")
	// ErrDiskFull: writing to the cache failed with ENOSPC.
	ErrDiskFull = errors.New("weights: disk full")
)

// HubError is the typed error of a failed hub operation. Match it with
// errors.As for the details, or errors.Is with the sentinels above.
type HubError struct {
	Repo, Revision, File string
	Status               int // HTTP status, 0 when no response was involved
	msg                  string
	kinds                []error // sentinels this error matches
	err                  error   // underlying cause, may be nil
}

func (e *HubError) Error() string { return e.msg }

// Unwrap returns the sentinels this error matches and its cause.
func (e *HubError) Unwrap() []error {
	errs := append([]error(nil), e.kinds...)
	if e.err != nil {
		errs = append(errs, e.err)
	}
	return errs
}

// HubOptionsFromEnv reads the settings huggingface_hub reads: HF_ENDPOINT,
// HF_HUB_CACHE / HUGGINGFACE_HUB_CACHE / HF_HOME / XDG_CACHE_HOME, HF_TOKEN
// (else HUGGING_FACE_HUB_TOKEN, else the file HF_TOKEN_PATH or
// $HF_HOME/token) and HF_HUB_OFFLINE (else TRANSFORMERS_OFFLINE; "1", "true",
// "yes", "on").
func HubOptionsFromEnv() HubOptions {
	return hubOptionsFrom(os.Getenv)
}

func hubOptionsFrom(getenv func(string) string) HubOptions {
	home := hubHFHome(getenv)
	opt := HubOptions{
		Endpoint: strings.TrimRight(strings.TrimSpace(getenv("HF_ENDPOINT")), "/"),
		CacheDir: hubCacheDir(getenv, home),
		Offline:  hubIsTrue(getenv("HF_HUB_OFFLINE")) || (getenv("HF_HUB_OFFLINE") == "" && hubIsTrue(getenv("TRANSFORMERS_OFFLINE"))),
	}
	if opt.Endpoint == "" {
		opt.Endpoint = DefaultEndpoint
	}
	opt.Token = strings.TrimSpace(getenv("HF_TOKEN"))
	if opt.Token == "" {
		opt.Token = strings.TrimSpace(getenv("HUGGING_FACE_HUB_TOKEN"))
	}
	if opt.Token == "" {
		path := hubExpandHome(getenv("HF_TOKEN_PATH"))
		if path == "" {
			path = filepath.Join(home, "token")
		}
		if b, err := os.ReadFile(path); err == nil {
			opt.Token = strings.TrimSpace(string(b))
		}
	}
	return opt
}

// hubHFHome is $HF_HOME, else $XDG_CACHE_HOME/huggingface, else
// ~/.cache/huggingface.
func hubHFHome(getenv func(string) string) string {
	if h := getenv("HF_HOME"); h != "" {
		return hubExpandHome(h)
	}
	xdg := getenv("XDG_CACHE_HOME")
	if xdg == "" {
		home, _ := os.UserHomeDir()
		xdg = filepath.Join(home, ".cache")
	}
	return filepath.Join(hubExpandHome(xdg), "huggingface")
}

func hubCacheDir(getenv func(string) string, home string) string {
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if v := getenv(k); v != "" {
			return hubExpandHome(v)
		}
	}
	return filepath.Join(home, "hub")
}

// hubIsTrue mirrors huggingface_hub's _is_true.
func hubIsTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// hubExpandHome expands a leading "~" or "~/".
func hubExpandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// Resolve returns the directory of the model named by spec, downloading
// into the cache whatever is missing: config.json; model.safetensors, or
// model.safetensors.index.json and every shard it lists; tokenizer.json, or
// else vocab.json and merges.txt.
//
// A spec that is an existing directory, or starts with "./", "../", "/" or
// "~", is used as is (nothing is checked or fetched). Otherwise it is a repo
// id with an optional "@revision" (branch, tag or 40-hex commit). When the
// hub cannot be reached (or opt.Offline is set) a complete cached snapshot
// of the revision is returned instead.
func Resolve(ctx context.Context, spec string, opt HubOptions) (Snapshot, error) {
	ps, err := hubParseSpec(spec)
	if err != nil {
		return Snapshot{}, err
	}
	if ps.local != "" {
		return Snapshot{Repo: ps.local, Dir: ps.local, Local: true}, nil
	}
	if opt.Endpoint == "" || opt.CacheDir == "" {
		def := hubOptionsFrom(func(k string) string {
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
	r := newHubResolver(opt, ps.repo, ps.revision)
	if opt.Offline {
		snap, err := r.fromCache()
		if err != nil {
			return Snapshot{}, r.offlineErr(err)
		}
		return snap, nil
	}
	snap, err := r.fetchAll(ctx)
	if err == nil {
		return snap, nil
	}
	if errors.Is(err, ErrUnreachable) && ctx.Err() == nil {
		if cached, cerr := r.fromCache(); cerr == nil {
			return cached, nil
		}
		return Snapshot{}, r.unreachableErr(err)
	}
	return Snapshot{}, err
}

// hubSpec is a parsed Resolve spec: either local or repo(+revision).
type hubSpec struct {
	local          string // absolute directory
	repo, revision string
}

func hubParseSpec(spec string) (hubSpec, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return hubSpec{}, errors.New("weights: empty model name")
	}
	pathLike := s == "." || s == ".." || s == "~" || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") ||
		strings.HasPrefix(s, "~/") || filepath.IsAbs(s)
	if st, err := os.Stat(hubExpandHome(s)); err == nil && st.IsDir() {
		pathLike = true
	}
	if pathLike {
		dir, err := filepath.Abs(hubExpandHome(s))
		if err != nil {
			return hubSpec{}, fmt.Errorf("weights: %s: %w", s, err)
		}
		st, err := os.Stat(dir)
		if err != nil {
			return hubSpec{}, fmt.Errorf("weights: model directory %s: %w", s, err)
		}
		if !st.IsDir() {
			return hubSpec{}, fmt.Errorf("weights: model directory %s: not a directory", s)
		}
		return hubSpec{local: dir}, nil
	}
	repo, rev, hasRev := strings.Cut(s, "@")
	if hasRev && rev == "" {
		return hubSpec{}, fmt.Errorf("weights: %q: empty revision after @", s)
	}
	if !hasRev {
		rev = "main"
	}
	if err := hubValidRepoID(repo); err != nil {
		return hubSpec{}, err
	}
	if err := hubValidRevision(rev); err != nil {
		return hubSpec{}, err
	}
	return hubSpec{repo: repo, revision: rev}, nil
}

// hubValidRepoID applies huggingface_hub's validate_repo_id: at most one
// "/", parts of [A-Za-z0-9_.-] not starting or ending with "-" or ".", no
// "--" or "..", at most 96 characters.
func hubValidRepoID(id string) error {
	bad := func(why string) error {
		return fmt.Errorf("weights: %q is not a valid repo id (%s); use NAME, ORG/NAME or a directory path", id, why)
	}
	if len(id) > 96 {
		return bad("longer than 96 characters")
	}
	parts := strings.Split(id, "/")
	if len(parts) > 2 {
		return bad("more than one /")
	}
	for _, p := range parts {
		if p == "" {
			return bad("empty part")
		}
		for _, c := range p {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return bad(fmt.Sprintf("character %q", c))
			}
		}
		if strings.ContainsAny(p[:1], "-.") || strings.ContainsAny(p[len(p)-1:], "-.") {
			return bad("a part starts or ends with - or .")
		}
	}
	if strings.Contains(id, "--") || strings.Contains(id, "..") {
		return bad("contains -- or ..")
	}
	return nil
}

// hubValidRevision rejects revisions that would escape refs/ when used as a
// path (huggingface_hub allows "refs/pr/1", so "/" is kept).
func hubValidRevision(rev string) error {
	if strings.HasPrefix(rev, "/") || strings.HasSuffix(rev, "/") || strings.ContainsAny(rev, "\\\x00") {
		return fmt.Errorf("weights: %q is not a valid revision", rev)
	}
	for _, seg := range strings.Split(rev, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("weights: %q is not a valid revision", rev)
		}
		for _, c := range seg {
			if c < 0x20 || c == 0x7f {
				return fmt.Errorf("weights: %q is not a valid revision", rev)
			}
		}
	}
	return nil
}

// hubIsCommit reports whether s is a full 40-hex commit hash.
func hubIsCommit(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
