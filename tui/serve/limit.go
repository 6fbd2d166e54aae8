package serve

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Admission of new TCP connections, before any SSH work: a cap on open
// connections and a token bucket per source address. Both act before the
// handshake so that neither a flood nor a crowd costs key exchanges.

// connLimiter caps the open connections.
type connLimiter struct {
	max  int
	open atomic.Int64
}

// take counts a new connection, reporting false (and not counting it) when
// the cap is reached.
func (l *connLimiter) take() bool {
	if l.open.Add(1) > int64(l.max) {
		l.open.Add(-1)
		return false
	}
	return true
}

func (l *connLimiter) done() { l.open.Add(-1) }

// countedConn gives its slot back once, on the first Close.
type countedConn struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.done)
	return err
}

// rateLimiter is a token bucket per source IP: burst connections at once,
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
	key := addr.String()
	if tcp, ok := addr.(*net.TCPAddr); ok {
		key = tcp.IP.String()
	}
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
