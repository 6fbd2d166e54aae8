package serve

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// from returns a dialer whose connections come from the loopback address
// ip (127.0.0.2 is a second source on Linux), skipping the test where that
// address cannot be bound.
func from(t *testing.T, ip string) *net.Dialer {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("no loopback address %s here: %v", ip, err)
	}
	l.Close()
	return d
}

// dialFrom connects as user from the dialer's address.
func (ts *testServer) dialFrom(d *net.Dialer, user string, key gossh.Signer) (*gossh.Client, error) {
	conn, err := d.Dial("tcp", ts.Addr().String())
	if err != nil {
		return nil, err
	}
	cfg := &gossh.ClientConfig{User: user, Auth: []gossh.AuthMethod{gossh.PublicKeys(key)},
		HostKeyCallback: gossh.FixedHostKey(ts.signer.PublicKey()), Timeout: 5 * time.Second}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	c, chans, reqs, err := gossh.NewClientConn(conn, ts.Addr().String(), cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return gossh.NewClient(c, chans, reqs), nil
}

// firstLine reads what the server says first on a raw connection: its
// SSH version, or the line of a refusal.
func firstLine(t *testing.T, conn net.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && line == "" {
		t.Fatalf("nothing from the server: %v", err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return strings.TrimSpace(line)
}

// TestIdleClientsCannotLockOut drives the server on loopback: one address
// opens connections that never authenticate, some idle, one trickling a
// byte at a time. It gets only MaxPendingPerSource of them (the rest are
// refused before any SSH work, in one log line), another address logs in
// meanwhile, and the server drops the held ones at the handshake deadline
// whatever they send.
func TestIdleClientsCannotLockOut(t *testing.T) {
	attacker, user := from(t, "127.0.0.2"), from(t, "127.0.0.1")
	key := newSigner(t)
	const timeout = 3 * time.Second
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key), MaxConns: 6, Burst: 100, HandshakeTimeout: timeout})
	if ts.opts.MaxPendingPerSource != 3 || ts.opts.MaxConnsPerSource != 5 {
		t.Fatalf("per-source limits %d pending, %d open; want the defaults for 6: 3, 5", ts.opts.MaxPendingPerSource, ts.opts.MaxConnsPerSource)
	}

	start := time.Now()
	var held []net.Conn
	refused := 0
	for range 12 {
		conn, err := attacker.Dial("tcp", ts.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		switch line := firstLine(t, conn); {
		case strings.HasPrefix(line, "SSH-2.0-"):
			held = append(held, conn)
		case line == "logitlens: too many unauthenticated connections from your address; try again later":
			refused++
		default:
			t.Fatalf("connection %d: %q", len(held)+refused, line)
		}
	}
	if len(held) != 3 || refused != 9 {
		t.Fatalf("%d held, %d refused; want 3 and 9", len(held), refused)
	}
	// Watch for the server dropping them (at the handshake deadline).
	var wg sync.WaitGroup
	dropped := make([]time.Duration, len(held))
	for i, conn := range held {
		wg.Go(func() {
			_ = conn.SetReadDeadline(start.Add(4 * timeout))
			buf := make([]byte, 4096)
			for {
				if _, err := conn.Read(buf); err != nil {
					dropped[i] = time.Since(start)
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Errorf("held connection %d still open after %v", i, dropped[i])
					}
					return
				}
			}
		})
	}
	// One of them is slow rather than idle: a version string, then a
	// byte now and then, which must not extend its deadline.
	trickle := make(chan struct{})
	go func() {
		defer close(trickle)
		if _, err := held[0].Write([]byte("SSH-2.0-slow\r\n")); err != nil {
			return
		}
		for range 20 {
			time.Sleep(200 * time.Millisecond)
			if _, err := held[0].Write([]byte{0}); err != nil {
				return
			}
		}
	}()

	// Another address logs in and opens the explorer meanwhile.
	c, err := ts.dialFrom(user, "alice", key)
	if err != nil {
		t.Fatalf("locked out while another address holds its connections: %v", err)
	}
	defer c.Close()
	if _, open, pending := ts.adm.counts("127.0.0.2"); open != 3 || pending != 3 {
		t.Fatalf("the other address held %d connections (%d unauthenticated) when this one logged in, want 3", open, pending)
	}
	x := openScreen(t, c, 80, 24)
	x.waitFor(t, "the explorer", 20*time.Second, func(s string) bool { return strings.Contains(s, "tiny-f32") })

	// The server drops the held connections at the handshake deadline.
	wg.Wait()
	<-trickle
	for i, d := range dropped {
		if d > timeout+timeout/2 {
			t.Errorf("held connection %d dropped after %v, deadline %v", i, d, timeout)
		}
	}
	// The attacker's slots are free again.
	conn, err := attacker.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if line := firstLine(t, conn); !strings.HasPrefix(line, "SSH-2.0-") {
		t.Errorf("after the deadline: %q", line)
	}

	log := ts.log.String()
	if n := strings.Count(log, `msg="connection refused"`); n != 1 {
		t.Errorf("%d refusal lines for one source and reason, want 1 (throttled):\n%s", n, log)
	}
	if !strings.Contains(log, `source=127.0.0.2 reason="per-source unauthenticated limit"`) {
		t.Errorf("log lacks the refusal:\n%s", log)
	}
}

// TestOneSourceCannotFillServer: authenticated connections from one address
// fill at most MaxConnsPerSource of MaxConns; another address gets the
// rest. Authentication frees the connection's unauthenticated slot, so an
// address holds more connections than MaxPendingPerSource once logged in.
func TestOneSourceCannotFillServer(t *testing.T) {
	one, other := from(t, "127.0.0.2"), from(t, "127.0.0.1")
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key), MaxConns: 4, Burst: 100, MaxPendingPerSource: 1})
	for i := range 3 {
		c, err := ts.dialFrom(one, "alice", key)
		if err != nil {
			t.Fatalf("connection %d of the first address: %v", i, err)
		}
		defer c.Close()
	}
	if c, err := ts.dialFrom(one, "alice", key); err == nil {
		c.Close()
		t.Fatal("a fourth connection from one address filled the server")
	}
	c, err := ts.dialFrom(other, "bob", key)
	if err != nil {
		t.Fatalf("the other address: %v", err)
	}
	defer c.Close()
	conn, err := other.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if line := firstLine(t, conn); line != "logitlens: the server is full; try again later" {
		t.Errorf("fifth connection: %q", line)
	}
	log := ts.log.String()
	for _, want := range []string{`reason="per-source connection limit"`, `reason="connection limit"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

// TestSourceKey: IPv4 addresses are sources on their own (IPv4-mapped
// IPv6 too); IPv6 addresses count by /64.
func TestSourceKey(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:22":                "192.0.2.7",
		"[::ffff:192.0.2.7]:22":       "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:22":   "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:2222": "2001:db8:1:2::/64",
		"[::1]:22":                    "::/64",
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := sourceKey(a); got != want {
			t.Errorf("sourceKey(%s) = %s, want %s", addr, got, want)
		}
	}
}

// TestAdmissionCounts: the counts follow admissions, authentications and
// closes, whatever their order, and never go negative.
func TestAdmissionCounts(t *testing.T) {
	a := newAdmission(3, 2, 1)
	if why := a.admit("x"); why != "" {
		t.Fatal(why)
	}
	if why := a.admit("x"); why != refusedPending {
		t.Fatalf("second pending: %q", why)
	}
	c := &trackedConn{Conn: nopConn{}, adm: a, src: "x", pending: true}
	c.authenticated()
	c.authenticated() // twice: counted once
	if why := a.admit("x"); why != "" {
		t.Fatal(why)
	}
	if why := a.admit("x"); why != refusedSource {
		t.Fatalf("third from x: %q", why)
	}
	if why := a.admit("y"); why != "" {
		t.Fatal(why)
	}
	if why := a.admit("z"); why != refusedFull {
		t.Fatalf("fourth: %q", why)
	}
	c.Close()
	c.Close() // twice: given back once
	if total, open, pending := a.counts("x"); total != 2 || open != 1 || pending != 1 {
		t.Errorf("counts %d %d %d", total, open, pending)
	}
	a.closed("x", true)
	a.closed("y", true)
	a.closed("y", true) // already gone: ignored
	if total, open, pending := a.counts("x"); total != 0 || open != 0 || pending != 0 || len(a.sources) != 0 {
		t.Errorf("counts %d %d %d, %d sources", total, open, pending, len(a.sources))
	}
}

// nopConn is a net.Conn that does nothing.
type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }
