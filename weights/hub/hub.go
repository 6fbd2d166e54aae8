// Package hub is a Hugging Face hub client: it resolves a model spec to a
// local folder through the cache that Python's huggingface_hub uses,
// downloading what the cache lacks.
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
package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/logitlens/logitlens/weights"
)

// DefaultEndpoint is the hub used when HF_ENDPOINT is unset.
const DefaultEndpoint = "https://huggingface.co"

// Options configures Resolve. The zero value is usable: empty Endpoint
// and CacheDir take the defaults of OptionsFromEnv's rules (without
// reading a token or the offline flag).
type Options struct {
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
	// between, and once when a file waits for another process's download
	// (Waiting). It is called from the goroutine running Resolve.
	Progress func(Progress)
	// Downloading is set by a caller whose job is downloading (the
	// download command): errors then do not tell the user to run it.
	Downloading bool
}

// Progress reports the download of one file.
type Progress struct {
	File        string        // path inside the repo, e.g. "model.safetensors"
	Done, Total int64         // bytes on disk so far (resumed bytes included) and expected size
	BytesPerSec float64       // average rate of this download so far
	ETA         time.Duration // estimated time left; 0 when unknown or finished
	Finished    bool          // the file is complete and verified
	// Waiting: another process (logitlens or huggingface_hub) holds this
	// file's download lock, and Resolve waits for it to finish. Sent once,
	// when the wait starts; a report with Finished (by whichever process
	// downloaded it) or the usual download reports follow.
	Waiting bool
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
	ErrNotFound = errors.New("hub: not found")
	// ErrRepoNotFound: the hub does not know the repository.
	ErrRepoNotFound = errors.New("hub: repository not found")
	// ErrRevisionNotFound: the repository has no such branch, tag or commit.
	ErrRevisionNotFound = errors.New("hub: revision not found")
	// ErrEntryNotFound: the revision has no such file.
	ErrEntryNotFound = errors.New("hub: file not found in repository")
	// ErrAuthRequired: the hub answered 401 or 403.
	ErrAuthRequired = errors.New("hub: authentication required")
	// ErrOffline: offline mode is on and the cache lacks what was asked.
	ErrOffline = errors.New("hub: offline and not cached")
	// ErrUnreachable: the endpoint could not be reached (DNS, refused,
	// timeout, stalled transfer, 5xx) and the cache could not stand in.
	ErrUnreachable = errors.New("hub: unreachable")
	// ErrIntegrity: a download's size or sha256 did not match; the partial
	// file was deleted.
	ErrIntegrity = errors.New("hub: download integrity check failed")
	// ErrDiskFull: writing to the cache failed with ENOSPC.
	ErrDiskFull = errors.New("hub: disk full")
)

// Error is the typed error of a failed hub operation. Match it with
// errors.As for the details, or errors.Is with the sentinels above.
type Error struct {
	Repo, Revision, File string
	Status               int // HTTP status, 0 when no response was involved
	msg                  string
	kinds                []error // sentinels this error matches
	err                  error   // underlying cause, may be nil
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the sentinels this error matches and its cause.
func (e *Error) Unwrap() []error {
	errs := append([]error(nil), e.kinds...)
	if e.err != nil {
		errs = append(errs, e.err)
	}
	return errs
}

// OptionsFromEnv reads the settings huggingface_hub reads: HF_ENDPOINT,
// HF_HUB_CACHE / HUGGINGFACE_HUB_CACHE / HF_HOME / XDG_CACHE_HOME, HF_TOKEN
// (else HUGGING_FACE_HUB_TOKEN, else the file HF_TOKEN_PATH or
// $HF_HOME/token) and HF_HUB_OFFLINE (else TRANSFORMERS_OFFLINE; "1", "true",
// "yes", "on").
func OptionsFromEnv() Options {
	return optionsFrom(os.Getenv)
}

func optionsFrom(getenv func(string) string) Options {
	home := hfHome(getenv)
	opt := Options{
		Endpoint: strings.TrimRight(strings.TrimSpace(getenv("HF_ENDPOINT")), "/"),
		CacheDir: defaultCacheDir(getenv, home),
		Offline:  isTrue(getenv("HF_HUB_OFFLINE")) || (getenv("HF_HUB_OFFLINE") == "" && isTrue(getenv("TRANSFORMERS_OFFLINE"))),
	}
	if opt.Endpoint == "" {
		opt.Endpoint = DefaultEndpoint
	}
	opt.Token = strings.TrimSpace(getenv("HF_TOKEN"))
	if opt.Token == "" {
		opt.Token = strings.TrimSpace(getenv("HUGGING_FACE_HUB_TOKEN"))
	}
	if opt.Token == "" {
		path := expandHome(getenv("HF_TOKEN_PATH"))
		if path == "" {
			path = filepath.Join(home, "token")
		}
		if b, err := weights.ReadFile(path, maxTokenFile); err == nil {
			opt.Token = strings.TrimSpace(string(b))
		}
	}
	return opt
}

// maxTokenFile bounds the token file (a token is some 40 bytes).
const maxTokenFile = 64 << 10

// hfHome is $HF_HOME, else $XDG_CACHE_HOME/huggingface, else
// ~/.cache/huggingface.
func hfHome(getenv func(string) string) string {
	if h := getenv("HF_HOME"); h != "" {
		return expandHome(h)
	}
	xdg := getenv("XDG_CACHE_HOME")
	if xdg == "" {
		home, _ := os.UserHomeDir()
		xdg = filepath.Join(home, ".cache")
	}
	return filepath.Join(expandHome(xdg), "huggingface")
}

func defaultCacheDir(getenv func(string) string, home string) string {
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if v := getenv(k); v != "" {
			return expandHome(v)
		}
	}
	return filepath.Join(home, "hub")
}

// isTrue mirrors huggingface_hub's _is_true.
func isTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// expandHome expands a leading "~" or "~/".
func expandHome(p string) string {
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
func Resolve(ctx context.Context, spec string, opt Options) (Snapshot, error) {
	ps, err := parseSpec(spec)
	if err != nil {
		return Snapshot{}, err
	}
	if ps.local != "" {
		return Snapshot{Repo: ps.local, Dir: ps.local, Local: true}, nil
	}
	opt = withDefaults(opt)
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

// repoSpec is a parsed Resolve spec: either local or repo(+revision).
type repoSpec struct {
	local          string // absolute directory
	repo, revision string
}

func parseSpec(spec string) (repoSpec, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return repoSpec{}, errors.New("hub: empty model name")
	}
	pathLike := s == "." || s == ".." || s == "~" || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") ||
		strings.HasPrefix(s, "~/") || filepath.IsAbs(s)
	if st, err := os.Stat(expandHome(s)); err == nil && st.IsDir() {
		pathLike = true
	}
	if pathLike {
		dir, err := filepath.Abs(expandHome(s))
		if err != nil {
			return repoSpec{}, fmt.Errorf("hub: %s: %w", s, err)
		}
		st, err := os.Stat(dir)
		if err != nil {
			return repoSpec{}, fmt.Errorf("hub: model directory %s: %w", s, err)
		}
		if !st.IsDir() {
			return repoSpec{}, fmt.Errorf("hub: model directory %s: not a directory", s)
		}
		return repoSpec{local: dir}, nil
	}
	repo, rev, hasRev := strings.Cut(s, "@")
	if hasRev && rev == "" {
		return repoSpec{}, fmt.Errorf("hub: %s: empty revision after @", quote(s))
	}
	if !hasRev {
		rev = "main"
	}
	if err := validRepoID(repo); err != nil {
		return repoSpec{}, err
	}
	if err := validRevision(rev); err != nil {
		return repoSpec{}, err
	}
	return repoSpec{repo: repo, revision: rev}, nil
}

// validRepoID applies huggingface_hub's validate_repo_id: at most one
// "/", parts of [A-Za-z0-9_.-] not starting or ending with "-" or ".", no
// "--" or "..", at most 96 characters.
func validRepoID(id string) error {
	bad := func(why string) error {
		return fmt.Errorf("hub: %s is not a valid repo id (%s); use NAME, ORG/NAME or a directory path", quote(id), why)
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

// validRevision rejects revisions that would escape refs/ when used as a
// path (huggingface_hub allows "refs/pr/1", so "/" is kept), and segments
// longer than a file name may be.
func validRevision(rev string) error {
	if strings.HasPrefix(rev, "/") || strings.HasSuffix(rev, "/") || strings.ContainsAny(rev, "\\\x00") {
		return fmt.Errorf("hub: %s is not a valid revision", quote(rev))
	}
	for _, seg := range strings.Split(rev, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > 255 {
			return fmt.Errorf("hub: %s is not a valid revision", quote(rev))
		}
		for _, c := range seg {
			if c < 0x20 || c == 0x7f {
				return fmt.Errorf("hub: %s is not a valid revision", quote(rev))
			}
		}
	}
	return nil
}

// isCommit reports whether s is a full 40-hex commit hash.
func isCommit(s string) bool {
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
