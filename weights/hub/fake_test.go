package hub

// A fake Hugging Face hub for tests: the resolve protocol as the real hub
// speaks it (HEAD/GET on /<repo>/resolve/<revision>/<file>, X-Repo-Commit,
// ETag, X-Linked-Etag/X-Linked-Size and a 302 to a CDN on a second server
// for LFS files, X-Error-Code on 401/404, relative 307 for renamed repos,
// Range), plus fault modes: cut a body, block mid-body, ignore Range,
// serve wrong bytes, announce a wrong size.

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func init() {
	// Retries in tests need not wait a second.
	retryBackoff = 10 * time.Millisecond
}

type fakeRepo struct {
	refs    map[string]string            // branch/tag -> commit
	commits map[string]map[string][]byte // commit -> file -> contents
	private bool
}

type fakeReq struct {
	Server, Method, Path, Range, Auth string
}

type fakeHub struct {
	t        *testing.T
	hub, cdn *httptest.Server
	token    string // accepted token for private repos

	mu          sync.Mutex
	repos       map[string]*fakeRepo
	renames     map[string]string // old repo id -> new
	blobs       map[string]string // sha256 -> "repo\x00commit\x00file"
	reqs        []fakeReq
	cut         map[string]int // file -> close the connection after n body bytes (once)
	block       map[string]int // file -> send n bytes then hang until the client leaves (once)
	blocked     chan string    // receives the file name when a block starts
	ignoreRange bool
	corrupt     bool
	sizeDelta   int64         // added to the announced size
	headDelay   time.Duration // HEADs hang this long (an endpoint that accepts but never answers)
	unavailable int           // answer this many HEADs with 503 first
	retryAfter  string        // the Retry-After of those 503s
	corruptFile string        // serve wrong bytes for this file only
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{t: t, repos: map[string]*fakeRepo{}, renames: map[string]string{}, blobs: map[string]string{},
		cut: map[string]int{}, block: map[string]int{}, blocked: make(chan string, 8)}
	h.hub = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serveHub(w, r) }))
	h.cdn = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serveCDN(w, r) }))
	t.Cleanup(func() {
		h.hub.CloseClientConnections()
		h.cdn.CloseClientConnections()
		h.hub.Close()
		h.cdn.Close()
	})
	return h
}

// hubFakeCommit is a deterministic 40-hex commit hash.
func fakeCommit(seed string) string {
	s := sha1.Sum([]byte(seed))
	return hex.EncodeToString(s[:])
}

// hubGitOID is git's blob id, the ETag the hub gives non-LFS files.
func gitOID(data []byte) string {
	s := sha1.Sum(append([]byte(fmt.Sprintf("blob %d\x00", len(data))), data...))
	return hex.EncodeToString(s[:])
}

func sha256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// hubFakeIsLFS: the hub stores weights in LFS.
func fakeIsLFS(file string) bool {
	return strings.HasSuffix(file, ".safetensors") || strings.HasSuffix(file, ".pt")
}

// hubFakeEtag is the blob name huggingface_hub would use for file.
func fakeEtag(file string, data []byte) string {
	if fakeIsLFS(file) {
		return sha256Hex(data)
	}
	return gitOID(data)
}

// addCommit adds a commit with files to repo and points ref at it.
func (h *fakeHub) addCommit(repo, ref string, files map[string][]byte) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	rp := h.repos[repo]
	if rp == nil {
		rp = &fakeRepo{refs: map[string]string{}, commits: map[string]map[string][]byte{}}
		h.repos[repo] = rp
	}
	commit := fakeCommit(repo + "@" + ref + strconv.Itoa(len(rp.commits)))
	rp.commits[commit] = files
	if ref != "" {
		rp.refs[ref] = commit
	}
	return commit
}

func (h *fakeHub) record(server string, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, fakeReq{Server: server, Method: r.Method, Path: r.URL.EscapedPath(),
		Range: r.Header.Get("Range"), Auth: r.Header.Get("Authorization")})
}

func (h *fakeHub) requests() []fakeReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]fakeReq(nil), h.reqs...)
}

func (h *fakeHub) resetRequests() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = nil
}

// count counts requests with the method (any server when server is "").
func (h *fakeHub) count(server, method string) int {
	n := 0
	for _, r := range h.requests() {
		if (server == "" || r.Server == server) && r.Method == method {
			n++
		}
	}
	return n
}

func (h *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	h.record("hub", r)
	h.mu.Lock()
	delay := h.headDelay
	h.mu.Unlock()
	if r.Method == http.MethodHead {
		if ok, after := h.take503(); ok {
			if after != "" {
				w.Header().Set("Retry-After", after)
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
	}
	if delay > 0 && r.Method == http.MethodHead {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	p := r.URL.EscapedPath()
	i := strings.Index(p, "/resolve/")
	if i < 0 {
		http.NotFound(w, r)
		return
	}
	repo := p[1:i]
	revEsc, fileEsc, _ := strings.Cut(p[i+len("/resolve/"):], "/")
	rev, _ := url.PathUnescape(revEsc)
	file, _ := url.PathUnescape(fileEsc)

	h.mu.Lock()
	if to, ok := h.renames[repo]; ok {
		h.mu.Unlock()
		w.Header().Set("Location", "/"+to+"/resolve/"+revEsc+"/"+fileEsc)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	rp := h.repos[repo]
	authed := h.token != "" && r.Header.Get("Authorization") == "Bearer "+h.token
	var commit string
	var data []byte
	var found bool
	if rp != nil {
		commit = rp.refs[rev]
		if _, ok := rp.commits[rev]; ok {
			commit = rev
		}
		data, found = rp.commits[commit][file]
	}
	sizeDelta := h.sizeDelta
	h.mu.Unlock()

	switch {
	case rp == nil && r.Header.Get("Authorization") == "":
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.WriteHeader(http.StatusUnauthorized)
		return
	case rp == nil:
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	case rp.private && !authed:
		w.WriteHeader(http.StatusUnauthorized)
		return
	case commit == "":
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if !found {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if fakeIsLFS(file) {
		sum := sha256Hex(data)
		h.mu.Lock()
		h.blobs[sum] = repo + "\x00" + commit + "\x00" + file
		h.mu.Unlock()
		w.Header().Set("ETag", `"`+gitOID([]byte(sum))+`"`)
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", strconv.FormatInt(int64(len(data))+sizeDelta, 10))
		w.Header().Set("Location", h.cdn.URL+"/repos/"+sum[:2]+"/"+sum+"?X-Amz-Signature=abc")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `W/"`+gitOID(data)+`"`)
	h.serveBytes(w, r, file, data, sizeDelta)
}

// take503 reports whether to answer this request 503 (counting it), and
// with which Retry-After.
func (h *fakeHub) take503() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.unavailable > 0 {
		h.unavailable--
		return true, h.retryAfter
	}
	return false, ""
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	h.record("cdn", r)
	sum := filepath.Base(r.URL.Path)
	h.mu.Lock()
	key, ok := h.blobs[sum]
	var data []byte
	var file string
	if ok {
		parts := strings.SplitN(key, "\x00", 3)
		file = parts[2]
		data = h.repos[parts[0]].commits[parts[1]][file]
	}
	h.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	h.serveBytes(w, r, file, data, 0)
}

// serveBytes serves data with Range support and the fault modes.
func (h *fakeHub) serveBytes(w http.ResponseWriter, r *http.Request, file string, data []byte, sizeDelta int64) {
	h.mu.Lock()
	ignoreRange, corrupt := h.ignoreRange, h.corrupt || h.corruptFile == file
	cut, hasCut := h.cut[file]
	block, hasBlock := h.block[file]
	if r.Method == http.MethodGet {
		delete(h.cut, file)
		delete(h.block, file)
	} else {
		hasCut, hasBlock = false, false
	}
	h.mu.Unlock()

	status, start := http.StatusOK, 0
	if rg := r.Header.Get("Range"); rg != "" && !ignoreRange {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		if err != nil || n >= len(data) {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start, status = n, http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", n, len(data)-1, len(data)))
	}
	body := data[start:]
	if corrupt && len(body) > 0 {
		body = append([]byte(nil), body...)
		body[len(body)/2] ^= 0xff
	}
	n := int64(len(body))
	if r.Method == http.MethodHead {
		n += sizeDelta // a wrong announced size; GET sends the real bytes
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	switch {
	case hasCut && cut < len(body):
		w.Write(body[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	case hasBlock && block < len(body):
		w.Write(body[:block])
		w.(http.Flusher).Flush()
		h.blocked <- file
		<-r.Context().Done()
		panic(http.ErrAbortHandler)
	}
	w.Write(body)
}

// hubFakeBytes is deterministic pseudo-random content.
func fakeBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// hubFakeModelFiles is a small model repo: config, one LFS weights file of
// about 600 KB, tokenizer.json and (like gpt2) vocab.json + merges.txt.
func fakeModelFiles(seed uint64) map[string][]byte {
	return map[string][]byte{
		"config.json":       []byte(fmt.Sprintf(`{"n_layer": 2, "n_embd": 8, "n_head": 2, "n_positions": 16, "vocab_size": 32, "seed": %d}`, seed)),
		"model.safetensors": fakeBytes(seed, 600_000+int(seed)),
		"tokenizer.json":    []byte(`{"model": {"type": "BPE"}}`),
		"vocab.json":        []byte(`{"a": 0}`),
		"merges.txt":        []byte("#version: 0.2\na b\n"),
	}
}

// testOptions points at the fake hub with an empty cache.
func testOptions(t *testing.T, h *fakeHub) Options {
	return Options{Endpoint: h.hub.URL, CacheDir: t.TempDir()}
}

// hubClosedEndpoint is an http URL on a port nothing listens on.
func closedEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// testCtx is a test context that cannot hang the suite.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
