package hub

// Downloading one blob: GET the resolve URL (following redirects to the
// CDN by hand, so Authorization is sent to the endpoint's host only) into
// blobs/<etag>.incomplete under a per-blob lock, resuming with Range from
// whatever a previous attempt (ours or huggingface_hub's) left there. The
// file is renamed to blobs/<etag> only after its size and its hash check
// out: sha256 for LFS files (64-hex etag), and for the others (40-hex etag,
// git's blob id) the SHA-1 of "blob <size>\x00" + content, which Python's
// huggingface_hub does not check. Cancellation leaves the .incomplete file
// for the next run; a failed check deletes it.
//
// Time goes to the body copy; the hash runs on the same pass (a resumed
// file hashes its existing prefix first, one read of the page cache).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

var (
	// stallTimeout ends a transfer that delivers no byte for this long;
	// the download then resumes with Range. There is no total timeout.
	stallTimeout = 30 * time.Second
	// maxAttempts bounds the requests for one blob within one Resolve.
	maxAttempts = 5
	// retryBackoff is the wait before the second attempt, growing linearly.
	retryBackoff = time.Second
	// progressEvery throttles the Progress callback.
	progressEvery = 100 * time.Millisecond
)

// errStalled is the cancel cause set by the stall detector.
var errStalled = errors.New("no data received for too long")

// defaultTransport fails fast on a dead endpoint (dial 5 s, headers
// 15 s) without limiting how long a healthy body may take.
var defaultTransport = &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	TLSHandshakeTimeout:   10 * time.Second,
	ResponseHeaderTimeout: 15 * time.Second,
	IdleConnTimeout:       90 * time.Second,
	MaxIdleConns:          8,
	ForceAttemptHTTP2:     true,
}

// noRedirectClient copies c (nil: the default) with redirects turned
// off, so head and get can follow them with the right headers.
func noRedirectClient(c *http.Client) *http.Client {
	var cc http.Client
	if c != nil {
		cc = *c
	} else {
		cc.Transport = defaultTransport
	}
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// sameHost reports whether u is on the endpoint's host and port, the
// test requests applies before keeping Authorization on a redirect.
func sameHost(u, endpoint string) bool {
	a, err1 := url.Parse(u)
	b, err2 := url.Parse(endpoint)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(a.Hostname(), b.Hostname()) && hostPort(a) == hostPort(b)
}

func hostPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}

// escapeSegment escapes a revision like quote(revision, safe=""):
// "refs/pr/1" becomes "refs%2Fpr%2F1".
func escapeSegment(s string) string { return url.PathEscape(s) }

// escapePath escapes a file path, keeping its slashes.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// download puts the blob for meta in place (unless another process just
// did) and links snapPath to it.
func (r *resolver) download(ctx context.Context, meta fileMeta, file, snapPath string) error {
	if !cacheSafeRelPath(file) {
		return fmt.Errorf("hub: %s: unsafe file name %s", r.spec(), quote(file))
	}
	blobs := filepath.Join(r.repoDir, "blobs")
	blob := filepath.Join(blobs, meta.etag)
	if err := os.MkdirAll(blobs, 0o777); err != nil {
		return r.fsErr(file, err)
	}
	waited := false
	onWait := func() {
		waited = true
		if r.opt.Progress != nil {
			r.opt.Progress(Progress{File: file, Total: meta.size, Waiting: true})
		}
	}
	unlock, err := cacheLock(ctx, r.lockPath(meta.etag), onWait)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("hub: %s: %s: %w", r.spec(), file, ctx.Err())
		}
		return r.fsErr(file, err)
	}
	defer unlock()
	switch {
	case !cacheIsFile(blob):
		if err := r.downloadBlob(ctx, meta, file, blob); err != nil {
			return err
		}
	case waited && r.opt.Progress != nil: // the other process got it
		r.opt.Progress(Progress{File: file, Done: meta.size, Total: meta.size, Finished: true})
	}
	if err := cacheLink(snapPath, blob); err != nil {
		return r.fsErr(file, err)
	}
	return nil
}

// lockPath is the lock file of a blob, where huggingface_hub puts it.
func (r *resolver) lockPath(etag string) string {
	return filepath.Join(r.opt.CacheDir, ".locks", cacheRepoFolder(r.kind, r.repo), etag+".lock")
}

// blobDownload is the state of one blob's transfer across attempts.
type blobDownload struct {
	r    *resolver
	meta fileMeta
	file string
	f    *os.File
	off  int64     // bytes of the .incomplete file that are good
	sum  *blobHash // hash of f[:off]; nil when the etag is no known hash
	prog progressReporter
}

func (r *resolver) downloadBlob(ctx context.Context, meta fileMeta, file, blob string) error {
	inc := blob + ".incomplete"
	f, err := os.OpenFile(inc, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return r.fsErr(file, err)
	}
	d := &blobDownload{r: r, meta: meta, file: file, f: f, sum: newBlobHash(meta.etag, meta.size)}
	if err := d.loadPartial(); err != nil {
		f.Close()
		return r.fsErr(file, err)
	}
	d.prog = progressReporter{fn: r.opt.Progress, file: file, total: meta.size, start: time.Now(), startDone: d.off}
	d.prog.report(d.off, false, true)
	for attempt := 1; d.off < meta.size; attempt++ {
		err := d.once(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			f.Close()
			return fmt.Errorf("hub: %s: %s: download interrupted, %d of %d bytes kept in %s to resume: %w",
				r.spec(), file, d.off, meta.size, inc, ctx.Err())
		}
		if errors.Is(err, ErrIntegrity) {
			f.Close()
			os.Remove(inc)
			return err
		}
		if !errors.Is(err, ErrUnreachable) || attempt >= maxAttempts {
			f.Close()
			return err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return fmt.Errorf("hub: %s: %s: download interrupted, %d of %d bytes kept in %s to resume: %w",
				r.spec(), file, d.off, meta.size, inc, ctx.Err())
		case <-time.After(time.Duration(attempt) * retryBackoff):
		}
	}
	if d.sum != nil {
		if got := d.sum.hex(); got != meta.etag {
			f.Close()
			os.Remove(inc)
			return d.integrityErr(fmt.Sprintf("%s %s, expected %s", d.sum.name, got, meta.etag))
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return r.fsErr(file, err)
	}
	if err := f.Close(); err != nil {
		return r.fsErr(file, err)
	}
	if err := os.Rename(inc, blob); err != nil {
		return r.fsErr(file, err)
	}
	d.prog.report(d.off, true, true)
	return nil
}

// loadPartial adopts what a previous attempt left: hashes it, or drops it
// if it is longer than the file can be.
func (d *blobDownload) loadPartial() error {
	st, err := d.f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return nil // e.g. a device; nothing to resume
	}
	if st.Size() > d.meta.size {
		return d.restart()
	}
	d.off = st.Size()
	if d.sum != nil && d.off > 0 {
		if _, err := io.Copy(d.sum, io.NewSectionReader(d.f, 0, d.off)); err != nil {
			return err
		}
	}
	return nil
}

// restart empties the .incomplete file.
func (d *blobDownload) restart() error {
	d.off = 0
	if d.sum != nil {
		d.sum.reset()
	}
	if st, err := d.f.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil
	}
	return d.f.Truncate(0)
}

// once makes one GET from d.off and copies the body; nil means the file
// is complete.
func (d *blobDownload) once(ctx context.Context) error {
	r := d.r
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	resp, err := r.get(rctx, d.meta.url, d.off)
	if err != nil {
		return r.netErr(ctx, err, d.file)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		if d.off > 0 { // the server ignored Range: start over
			if err := d.restart(); err != nil {
				return r.fsErr(d.file, err)
			}
		}
	case http.StatusPartialContent:
		var start int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &start); err != nil || start != d.off {
			if err := d.restart(); err != nil {
				return r.fsErr(d.file, err)
			}
			return d.transient(fmt.Sprintf("server resumed at %s instead of byte %d", quote(resp.Header.Get("Content-Range")), d.off))
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if err := d.restart(); err != nil {
			return r.fsErr(d.file, err)
		}
		return d.transient("server refused to resume (HTTP 416)")
	default:
		return r.statusErr(resp, d.file)
	}
	if _, err := d.f.Seek(d.off, io.SeekStart); err != nil {
		return r.fsErr(d.file, err)
	}
	stall := time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()
	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			stall.Reset(stallTimeout)
			if d.off+int64(n) > d.meta.size {
				return d.integrityErr(fmt.Sprintf("server sent more than the %d bytes announced", d.meta.size))
			}
			if _, err := d.f.Write(buf[:n]); err != nil {
				return r.fsErr(d.file, err)
			}
			if d.sum != nil {
				d.sum.Write(buf[:n])
			}
			d.off += int64(n)
			d.prog.report(d.off, false, false)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if errors.Is(context.Cause(rctx), errStalled) && ctx.Err() == nil {
				return d.transient(fmt.Sprintf("%v after %d of %d bytes", errStalled, d.off, d.meta.size))
			}
			return r.netErr(ctx, rerr, d.file)
		}
	}
	if d.off < d.meta.size {
		// The body ended cleanly (a cut connection is io.ErrUnexpectedEOF,
		// handled above): the server's file is shorter than announced.
		return d.integrityErr(fmt.Sprintf("server sent %d of the %d bytes announced", d.off, d.meta.size))
	}
	return nil
}

// get sends GET url (with Range from off), following redirects by hand:
// Authorization goes only to the endpoint's host, Range to every hop.
func (r *resolver) get(ctx context.Context, u string, off int64) (*http.Response, error) {
	for hop := 0; hop < 10; hop++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		r.setHeaders(req)
		if off > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		}
		resp, err := r.client.Do(req)
		if err != nil {
			return nil, err
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode >= 400 || loc == "" {
			return resp, nil
		}
		resp.Body.Close()
		next, err := req.URL.Parse(loc)
		if err != nil {
			return nil, fmt.Errorf("bad redirect %s: %w", quote(loc), err)
		}
		u = next.String()
	}
	return nil, errors.New("too many redirects")
}

func (d *blobDownload) transient(why string) error {
	return &Error{Repo: d.r.repo, Revision: d.r.rev, File: d.file, kinds: []error{ErrUnreachable},
		msg: fmt.Sprintf("hub: %s: %s: %s", d.r.spec(), d.file, why)}
}

func (d *blobDownload) integrityErr(why string) error {
	return &Error{Repo: d.r.repo, Revision: d.r.rev, File: d.file, kinds: []error{ErrIntegrity},
		msg: fmt.Sprintf("hub: %s: %s: download corrupt (%s); the partial file was deleted, run again to retry", d.r.spec(), d.file, why)}
}

// fsErr wraps a local file-system error, calling out a full disk.
func (r *resolver) fsErr(file string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return &Error{Repo: r.repo, Revision: r.rev, File: file, kinds: []error{ErrDiskFull}, err: err,
			msg: fmt.Sprintf("hub: %s: %s: disk full writing to %s (free some space or set HF_HUB_CACHE to another disk; the partial download is kept and resumes): %v",
				r.spec(), file, r.opt.CacheDir, err)}
	}
	return &Error{Repo: r.repo, Revision: r.rev, File: file, err: err,
		msg: fmt.Sprintf("hub: %s: %s: %v", r.spec(), file, err)}
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// progressReporter throttles and fills in Progress reports for one file.
type progressReporter struct {
	fn               func(Progress)
	file             string
	total, startDone int64
	start, last      time.Time
}

// report calls fn with done bytes; forced reports (start, end) bypass the
// throttle.
func (p *progressReporter) report(done int64, finished, force bool) {
	if p.fn == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	pr := Progress{File: p.file, Done: done, Total: p.total, Finished: finished}
	if el := now.Sub(p.start).Seconds(); el > 0 && done > p.startDone {
		pr.BytesPerSec = float64(done-p.startDone) / el
		if !finished && p.total > done {
			pr.ETA = time.Duration(float64(p.total-done) / pr.BytesPerSec * float64(time.Second))
		}
	}
	p.fn(pr)
}
