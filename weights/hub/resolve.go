package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights"
)

// resolver resolves one repo@revision against the hub and the cache.
type resolver struct {
	opt       Options
	kind      RepoType
	repo, rev string
	repoDir   string // <cache>/models--ORG--NAME (spaces--, datasets--)
	client    *http.Client
	commit    string // pinned by the first HEAD, or the revision itself when it is a commit
}

func newHubResolver(opt Options, repo, rev string) *resolver {
	return newResolver(opt, Model, repo, rev)
}

func newResolver(opt Options, kind RepoType, repo, rev string) *resolver {
	r := &resolver{opt: opt, kind: kind, repo: repo, rev: rev, repoDir: filepath.Join(opt.CacheDir, cacheRepoFolder(kind, repo))}
	r.client = noRedirectClient(opt.Client)
	if isCommit(rev) {
		r.commit = rev
	}
	return r
}

// spec is the model as the user named it, fit for a message (the
// revision may hold any printable character).
func (r *resolver) spec() string {
	s := r.kind.urlPrefix() + r.repo
	if r.rev == "main" {
		return s
	}
	return s + "@" + display.SafeN(r.rev, 0)
}

// fetchAll makes sure the snapshot holds every file the model needs.
func (r *resolver) fetchAll(ctx context.Context) (Snapshot, error) {
	if _, err := r.fetch(ctx, "config.json"); err != nil {
		if errors.Is(err, ErrEntryNotFound) && !errors.Is(err, ErrRepoNotFound) && !errors.Is(err, ErrRevisionNotFound) {
			return Snapshot{}, r.wrapMissing(err, "config.json", "is it a model repository?")
		}
		return Snapshot{}, err
	}
	if _, err := r.fetch(ctx, "model.safetensors"); errors.Is(err, ErrEntryNotFound) {
		idx, err := r.fetch(ctx, "model.safetensors.index.json")
		if errors.Is(err, ErrEntryNotFound) {
			return Snapshot{}, r.wrapMissing(err, "model.safetensors or model.safetensors.index.json",
				"only safetensors checkpoints are supported")
		}
		if err != nil {
			return Snapshot{}, err
		}
		shards, err := cacheIndexShards(idx)
		if err != nil {
			return Snapshot{}, err
		}
		for _, s := range shards {
			if _, err := r.fetch(ctx, s); err != nil {
				return Snapshot{}, err
			}
		}
	} else if err != nil {
		return Snapshot{}, err
	}
	if _, err := r.fetch(ctx, "tokenizer.json"); errors.Is(err, ErrEntryNotFound) {
		for _, f := range []string{"vocab.json", "merges.txt"} {
			if _, err := r.fetch(ctx, f); err != nil {
				if errors.Is(err, ErrEntryNotFound) {
					return Snapshot{}, r.wrapMissing(err, "tokenizer.json or vocab.json + merges.txt", "")
				}
				return Snapshot{}, err
			}
		}
	} else if err != nil {
		return Snapshot{}, err
	}
	if r.rev != r.commit {
		if err := cacheWriteRef(r.repoDir, r.rev, r.commit); err != nil {
			return Snapshot{}, r.fsErr("refs/"+r.rev, err)
		}
	}
	return Snapshot{Repo: r.repo, Revision: r.rev, Commit: r.commit, Dir: cacheSnapshotDir(r.repoDir, r.commit)}, nil
}

// fetch makes sure file is in snapshots/<commit>/ and returns its path.
func (r *resolver) fetch(ctx context.Context, file string) (string, error) {
	if r.commit != "" {
		p := filepath.Join(cacheSnapshotDir(r.repoDir, r.commit), filepath.FromSlash(file))
		if cacheIsFile(p) {
			return p, nil
		}
		if cacheIsFile(filepath.Join(r.repoDir, ".no_exist", r.commit, filepath.FromSlash(file))) {
			return "", r.notFoundErr(http.StatusNotFound, "EntryNotFound", file)
		}
	}
	meta, err := r.head(ctx, file)
	if err != nil {
		if errors.Is(err, ErrEntryNotFound) && !errors.Is(err, ErrRevisionNotFound) && !errors.Is(err, ErrRepoNotFound) {
			commit := meta.commit
			if commit == "" {
				commit = r.commit
			}
			if isCommit(commit) {
				_ = cacheMarkNoExist(r.repoDir, commit, file) // best effort, as huggingface_hub
			}
		}
		return "", err
	}
	if r.commit == "" {
		r.commit = meta.commit
	} else if meta.commit != r.commit {
		return "", &Error{Repo: r.repo, Revision: r.rev, File: file, kinds: []error{ErrUnreachable},
			msg: fmt.Sprintf("hub: %s: %s: the hub answered for commit %s while %s was expected", r.spec(), file, meta.commit, r.commit)}
	}
	p := filepath.Join(cacheSnapshotDir(r.repoDir, r.commit), filepath.FromSlash(file))
	if cacheIsFile(p) {
		return p, nil
	}
	if err := r.download(ctx, meta, file, p); err != nil {
		return "", err
	}
	return p, nil
}

// fromCache resolves the revision from refs/ and snapshots/ only and
// checks that the snapshot holds a complete model.
func (r *resolver) fromCache() (Snapshot, error) {
	commit, err := cacheReadRef(r.repoDir, r.rev)
	if err != nil {
		return Snapshot{}, err
	}
	dir := cacheSnapshotDir(r.repoDir, commit)
	if missing := cacheMissing(dir); len(missing) > 0 {
		return Snapshot{}, fmt.Errorf("snapshot %s lacks %s", commit, strings.Join(missing, ", "))
	}
	return Snapshot{Repo: r.repo, Revision: r.rev, Commit: commit, Dir: dir}, nil
}

func (r *resolver) offlineErr(cause error) error {
	hint := fmt.Sprintf("run `logitlens download %s` while online", r.spec())
	if r.opt.Downloading || r.kind != Model {
		hint = "unset HF_HUB_OFFLINE to download"
	}
	return &Error{Repo: r.repo, Revision: r.rev, kinds: []error{ErrOffline}, err: cause,
		msg: fmt.Sprintf("hub: %s is not fully cached in %s (%v) and offline mode is on (HF_HUB_OFFLINE): %s",
			r.spec(), r.opt.CacheDir, cause, hint)}
}

func (r *resolver) unreachableErr(cause error) error {
	var he *Error
	status := 0
	if errors.As(cause, &he) {
		status = he.Status
	}
	hint := fmt.Sprintf("run `logitlens download %s` when the hub is reachable", r.spec())
	if r.opt.Downloading || r.kind != Model {
		hint = "try again when the hub is reachable"
	}
	return &Error{Repo: r.repo, Revision: r.rev, Status: status, kinds: []error{ErrUnreachable}, err: cause,
		msg: fmt.Sprintf("%v; %s is not fully cached: %s", cause, r.spec(), hint)}
}

// wrapMissing turns a missing required file into a clear not-found error.
func (r *resolver) wrapMissing(cause error, what, hint string) error {
	msg := fmt.Sprintf("hub: %s has no %s", r.spec(), what)
	if hint != "" {
		msg += " (" + hint + ")"
	}
	return &Error{Repo: r.repo, Revision: r.rev, File: what, Status: http.StatusNotFound,
		kinds: []error{ErrNotFound, ErrEntryNotFound}, err: cause, msg: msg}
}

// fileMeta is what a HEAD on the resolve URL says about one file.
type fileMeta struct {
	url    string // resolve URL after relative redirects
	commit string
	etag   string // normalized: no W/, no quotes
	size   int64
}

// headTimeout bounds the metadata request, like huggingface_hub's
// HF_HUB_ETAG_TIMEOUT, so a hub that accepts connections but never answers
// falls back to the cache quickly.
var headTimeout = 10 * time.Second

// headAttempts bounds the metadata requests for one file: a 429 or a
// 5xx (the hub restarting, a proxy in trouble) is retried, within
// headTimeout.
const headAttempts = 3

// head fetches a file's metadata. Like huggingface_hub it follows only
// relative redirects (renamed repos) and reads the headers of the redirect
// to the CDN itself.
func (r *resolver) head(ctx context.Context, file string) (fileMeta, error) {
	rev := r.rev
	if r.commit != "" {
		rev = r.commit
	}
	u := r.opt.Endpoint + "/" + r.kind.urlPrefix() + r.repo + "/resolve/" + escapeSegment(rev) + "/" + escapePath(file)
	hctx, cancel := context.WithTimeout(ctx, headTimeout)
	defer cancel()
	var resp *http.Response
	for attempt := 1; ; attempt++ {
		var err error
		resp, u, err = r.headOnce(ctx, hctx, u, file)
		if err != nil {
			return fileMeta{}, err
		}
		if !retryable(resp.StatusCode) || attempt >= headAttempts {
			break
		}
		select {
		case <-hctx.Done():
			return fileMeta{}, r.statusErr(resp, file)
		case <-time.After(retryWait(resp, attempt)):
		}
	}
	meta := fileMeta{url: u, commit: resp.Header.Get("X-Repo-Commit")}
	if resp.StatusCode >= 400 {
		return meta, r.statusErr(resp, file)
	}
	meta.etag = normalizeEtag(resp.Header.Get("X-Linked-Etag"))
	if meta.etag == "" {
		meta.etag = normalizeEtag(resp.Header.Get("ETag"))
	}
	meta.size = -1
	for _, h := range []string{"X-Linked-Size", "Content-Length"} {
		if v := resp.Header.Get(h); v != "" {
			if _, err := fmt.Sscan(v, &meta.size); err == nil {
				break
			}
		}
	}
	if meta.commit == "" || meta.etag == "" || meta.size < 0 {
		return meta, &Error{Repo: r.repo, Revision: r.rev, File: file, Status: resp.StatusCode, kinds: []error{ErrUnreachable},
			msg: fmt.Sprintf("hub: %s: %s: the server's answer lacks X-Repo-Commit, ETag or size: is %s a Hugging Face hub (HF_ENDPOINT)?",
				r.spec(), file, r.opt.Endpoint)}
	}
	if !cacheSafeName(meta.etag) || !cacheSafeName(meta.commit) {
		return meta, &Error{Repo: r.repo, Revision: r.rev, File: file, kinds: []error{ErrIntegrity},
			msg: fmt.Sprintf("hub: %s: %s: refusing unsafe commit \"%s\" or etag \"%s\" from the server", r.spec(), file,
				display.Safe(meta.commit), display.Safe(meta.etag))}
	}
	return meta, nil
}

// headOnce sends one HEAD for u under hctx, following relative redirects,
// and returns the last answer (its body closed) and its URL. ctx is the
// caller's, to tell its cancellation from hctx's timeout.
func (r *resolver) headOnce(ctx, hctx context.Context, u, file string) (*http.Response, string, error) {
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(hctx, http.MethodHead, u, nil)
		if err != nil {
			return nil, u, fmt.Errorf("hub: %s: %w", display.Safe(u), err)
		}
		r.setHeaders(req)
		resp, err := r.client.Do(req)
		if err != nil {
			return nil, u, r.netErr(ctx, err, file)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode >= 400 || loc == "" {
			return resp, u, nil
		}
		lu, err := url.Parse(loc)
		if err != nil || lu.Scheme != "" || lu.Host != "" {
			return resp, u, nil // absolute: the CDN; the metadata is on this response
		}
		if hop >= 10 {
			return nil, u, r.statusErr(resp, file)
		}
		u = req.URL.ResolveReference(lu).String()
	}
}

// retryable reports whether an HTTP status may clear up on its own.
func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// maxRetryAfter caps the wait a server may ask for with Retry-After.
const maxRetryAfter = 5 * time.Second

// retryWait is how long to wait before attempt+1: the server's
// Retry-After in seconds (capped), else a backoff growing with attempt.
func retryWait(resp *http.Response, attempt int) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, maxRetryAfter)
	}
	return time.Duration(attempt) * retryBackoff
}

// normalizeEtag mirrors huggingface_hub's _normalize_etag.
func normalizeEtag(e string) string {
	return strings.Trim(strings.TrimPrefix(strings.TrimSpace(e), "W/"), `"`)
}

// setHeaders adds the headers of every hub request; Authorization only
// when the request goes to the endpoint's own host.
func (r *resolver) setHeaders(req *http.Request) {
	req.Header.Set("User-Agent", "logitlens (huggingface_hub-compatible)")
	req.Header.Set("Accept-Encoding", "identity")
	if r.opt.Token != "" && sameHost(req.URL.String(), r.opt.Endpoint) {
		req.Header.Set("Authorization", "Bearer "+r.opt.Token)
	}
}

// statusErr maps an HTTP error answer to a typed error, reading the hub's
// X-Error-Code header like huggingface_hub's hf_raise_for_status.
func (r *resolver) statusErr(resp *http.Response, file string) error {
	code := resp.Header.Get("X-Error-Code")
	st := resp.StatusCode
	switch {
	case code == "RepoNotFound" || code == "RevisionNotFound" || code == "EntryNotFound" || st == http.StatusNotFound:
		return r.notFoundErr(st, code, file)
	case st == http.StatusUnauthorized || st == http.StatusForbidden || code == "GatedRepo":
		msg := fmt.Sprintf("hub: %s: access denied (HTTP %d): set HF_TOKEN or run huggingface-cli login", r.spec(), st)
		if r.opt.Token != "" {
			msg += " (a token was sent: check that it is valid and, for a gated repo, that its terms were accepted on the hub)"
		}
		return &Error{Repo: r.repo, Revision: r.rev, File: file, Status: st, kinds: []error{ErrAuthRequired}, msg: msg}
	case st == http.StatusTooManyRequests || st >= 500:
		return &Error{Repo: r.repo, Revision: r.rev, File: file, Status: st, kinds: []error{ErrUnreachable},
			msg: fmt.Sprintf("hub: %s: %s: %s answered HTTP %d", r.spec(), file, r.opt.Endpoint, st)}
	}
	return &Error{Repo: r.repo, Revision: r.rev, File: file, Status: st,
		msg: fmt.Sprintf("hub: %s: %s: unexpected HTTP %d from %s", r.spec(), file, st, resp.Request.URL.Host)}
}

func (r *resolver) notFoundErr(status int, code, file string) error {
	e := &Error{Repo: r.repo, Revision: r.rev, File: file, Status: status, kinds: []error{ErrNotFound}}
	switch code {
	case "RepoNotFound":
		e.kinds = append(e.kinds, ErrRepoNotFound)
		e.msg = fmt.Sprintf("hub: repository %q not found on %s", r.repo, r.opt.Endpoint)
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			e.kinds = append(e.kinds, ErrAuthRequired)
			e.msg += " (if it is private or gated: set HF_TOKEN or run huggingface-cli login)"
		}
	case "RevisionNotFound":
		e.kinds = append(e.kinds, ErrRevisionNotFound)
		e.msg = fmt.Sprintf("hub: revision %s not found in repository %q", quote(r.rev), r.repo)
	default:
		e.kinds = append(e.kinds, ErrEntryNotFound)
		e.msg = fmt.Sprintf("hub: %s: %s not found (unknown repo, revision or file)", r.spec(), file)
	}
	return e
}

// netErr maps a transport error: the caller's cancellation stays a
// context error, anything else means the hub is unreachable.
func (r *resolver) netErr(ctx context.Context, err error, file string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("hub: %s: %s: %w", r.spec(), file, ctx.Err())
	}
	return &Error{Repo: r.repo, Revision: r.rev, File: file, kinds: []error{ErrUnreachable}, err: err,
		msg: fmt.Sprintf("hub: cannot reach %s (%v)", r.opt.Endpoint, shortNetErr(err))}
}

// shortNetErr drops the "Head \"url\": " prefix of *url.Error.
func shortNetErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// cacheIndexShards lists the distinct shard files of a
// model.safetensors.index.json, rejecting names that would leave the
// snapshot directory.
func cacheIndexShards(path string) ([]string, error) {
	b, err := weights.ReadFile(path, weights.MaxIndexFile)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	return parseIndexShards(b)
}

// parseIndexShards is cacheIndexShards on the file's bytes.
func parseIndexShards(b []byte) ([]string, error) {
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("hub: model.safetensors.index.json: %w", err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, errors.New("hub: model.safetensors.index.json: empty weight_map")
	}
	seen := map[string]bool{}
	var shards []string
	for _, s := range idx.WeightMap {
		if seen[s] {
			continue
		}
		if !cacheSafeRelPath(s) {
			return nil, fmt.Errorf("hub: model.safetensors.index.json: unsafe shard name \"%s\"", display.Safe(s))
		}
		seen[s] = true
		shards = append(shards, s)
	}
	sort.Strings(shards)
	return shards, nil
}
