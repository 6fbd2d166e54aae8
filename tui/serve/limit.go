package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Admission of new TCP connections, before any SSH work. Three limits act
// before the handshake, so that neither a flood nor a crowd costs key
// exchanges:
//
//   - a token bucket per source (connections per second, after a burst);
//   - the open connections: at most MaxConns in all, and at most
//     MaxConnsPerSource from one source, fewer than MaxConns, so that one
//     address cannot fill the server;
//   - the unauthenticated ones: at most MaxPendingPerSource per source.
//     A connection is unauthenticated from its accept until its public key
//     is verified, and the handshake deadline (HandshakeTimeout, seconds)
//     closes it if that takes too long. Someone without a key can thus
//     hold only a few slots, briefly, however patiently they send nothing.
//
// A source is an IPv4 address, or an IPv6 /64 (one host usually has a
// whole /64 to pick addresses from).

// sourceKey names the source of addr for the limits.
func sourceKey(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if ip4 := tcp.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return (&net.IPNet{IP: tcp.IP.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}

// Reasons a connection is refused, as logged.
const (
	refusedRate    = "rate limit"
	refusedFull    = "connection limit"
	refusedSource  = "per-source connection limit"
	refusedPending = "per-source unauthenticated limit"
)

// refusalMessages are what a refused client reads, by reason.
var refusalMessages = map[string]string{
	refusedRate:    "too many new connections from your address; try again later",
	refusedFull:    "the server is full; try again later",
	refusedSource:  "too many connections from your address; try again later",
	refusedPending: "too many unauthenticated connections from your address; try again later",
}

// admission counts the open connections, in all and per source, and the
// unauthenticated ones per source.
type admission struct {
	maxTotal, maxPerSource, maxPending int

	mu      sync.Mutex
	total   int
	sources map[string]*sourceCount // dropped when a source has none open
}

type sourceCount struct{ open, pending int }

func newAdmission(maxTotal, maxPerSource, maxPending int) *admission {
	return &admission{maxTotal: maxTotal, maxPerSource: maxPerSource, maxPending: maxPending, sources: map[string]*sourceCount{}}
}

// admit counts a new, unauthenticated connection from src, or returns the
// reason it is refused (and counts nothing).
func (a *admission) admit(src string) (refused string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.sources[src]
	if c == nil {
		c = &sourceCount{}
	}
	switch {
	case a.total >= a.maxTotal:
		return refusedFull
	case c.open >= a.maxPerSource:
		return refusedSource
	case c.pending >= a.maxPending:
		return refusedPending
	}
	a.sources[src] = c
	a.total++
	c.open++
	c.pending++
	return ""
}

// authenticated moves one connection of src out of the unauthenticated.
func (a *admission) authenticated(src string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.sources[src]; c != nil && c.pending > 0 {
		c.pending--
	}
}

// closed gives back a connection's slot; pending says whether it never
// authenticated.
func (a *admission) closed(src string, pending bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.sources[src]
	if c == nil {
		return
	}
	a.total--
	c.open--
	if pending {
		c.pending--
	}
	if c.open <= 0 {
		delete(a.sources, src)
	}
}

// counts returns the open connections in all, and the open and
// unauthenticated ones of src.
func (a *admission) counts(src string) (total, open, pending int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.sources[src]; c != nil {
		open, pending = c.open, c.pending
	}
	return a.total, open, pending
}

// trackedConn is an admitted connection: it leaves the unauthenticated
// count once its key is verified, and gives its slot back on the first
// Close.
type trackedConn struct {
	net.Conn
	adm *admission
	src string

	mu      sync.Mutex
	pending bool
	closed  bool
}

// authenticated records that the connection's public key was verified.
func (c *trackedConn) authenticated() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending && !c.closed {
		c.pending = false
		c.adm.authenticated(c.src)
	}
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.adm.closed(c.src, c.pending)
	}
	return err
}

// rateLimiter is a token bucket per source: burst connections at once,
// then rate per second.
type rateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the memory the limiter spends on distinct sources;
// full buckets are forgotten first, since they equal a new one.
const maxBuckets = 10000

func newRateLimiter(rate float64, burst int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(max(1, burst)), now: time.Now, buckets: map[string]*bucket{}}
}

// allow takes a token for a connection from addr.
func (r *rateLimiter) allow(addr net.Addr) bool {
	key := sourceKey(addr)
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.buckets[key]
	if !ok {
		if len(r.buckets) >= maxBuckets {
			r.prune(now)
		}
		b = &bucket{tokens: r.burst, at: now}
		r.buckets[key] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.at).Seconds()*r.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune forgets buckets that have refilled; if none has, it forgets all
// (a source then gets a fresh burst, which is the lesser evil).
func (r *rateLimiter) prune(now time.Time) {
	for k, b := range r.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*r.rate >= r.burst {
			delete(r.buckets, k)
		}
	}
	if len(r.buckets) >= maxBuckets {
		clear(r.buckets)
	}
}

// logThrottle lets through one log line per key (a source and a reason)
// per period, and says how many it held back since: a flood of refused
// connections must not become a flood of log lines.
type logThrottle struct {
	period time.Duration
	now    func() time.Time

	mu   sync.Mutex
	keys map[string]*throttled
}

type throttled struct {
	last       time.Time
	suppressed int
}

// refusalLogPeriod is how often one source's refusals of one kind are
// logged.
const refusalLogPeriod = 10 * time.Second

func newLogThrottle(period time.Duration) *logThrottle {
	return &logThrottle{period: period, now: time.Now, keys: map[string]*throttled{}}
}

// log writes msg with attrs at level unless key was logged within the
// period; the line says how many were held back before it.
func (l *logThrottle) log(log *slog.Logger, level slog.Level, key, msg string, attrs ...any) {
	now := l.now()
	l.mu.Lock()
	t := l.keys[key]
	if t != nil && now.Sub(t.last) < l.period {
		t.suppressed++
		l.mu.Unlock()
		return
	}
	if t == nil {
		if len(l.keys) >= maxBuckets {
			for k, v := range l.keys {
				if now.Sub(v.last) >= l.period {
					delete(l.keys, k)
				}
			}
			if len(l.keys) >= maxBuckets {
				clear(l.keys)
			}
		}
		t = &throttled{}
		l.keys[key] = t
	}
	held := t.suppressed
	t.last, t.suppressed = now, 0
	l.mu.Unlock()
	if held > 0 {
		attrs = append(attrs, "not_logged_before", fmt.Sprintf("%d more in %s", held, l.period))
	}
	log.Log(context.Background(), level, msg, attrs...)
}
