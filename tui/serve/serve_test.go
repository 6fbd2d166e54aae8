package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/logitlens/logitlens/tui"
)

func fmtFloat2(f float64) string { return fmt.Sprintf("%.2f", f) }

const firstPrompt = "The Eiffel Tower is in"

// TestExplorerOverSSH: an authorised key gets the explorer, whose grid and
// panel show the lens an independent session computes; ctrl+c ends the
// session cleanly; the log says who connected, from where, with which key,
// and for how long.
func TestExplorerOverSSH(t *testing.T) {
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key), Session: tui.Options{Prompt: firstPrompt}})
	c, err := ts.dial("alice", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x := openScreen(t, c, 100, 30)
	want := expect(t, tinyModel(t), firstPrompt)
	s := x.waitFor(t, "the lens of the initial prompt", 20*time.Second, want.in)
	for _, tok := range []string{"layer", "out", "emb", "␣Tower", "tiny-f32"} {
		if !strings.Contains(s, tok) {
			t.Errorf("screen lacks %q:\n%s", tok, s)
		}
	}
	// xterm-256color and no COLORTERM: 256 colours, no true colour.
	if raw := x.all(); !strings.Contains(raw, "38;5;") && !strings.Contains(raw, "48;5;") {
		t.Errorf("no 256-colour sequences in the output")
	} else if strings.Contains(raw, "38;2;") || strings.Contains(raw, "48;2;") {
		t.Errorf("true-colour sequences sent to a 256-colour terminal")
	}
	x.send(t, "\x03") // ctrl+c
	if err := x.waitExit(t, 10*time.Second); err != nil {
		t.Errorf("exit after ctrl+c: %v", err)
	}
	waitLog(t, ts, "session end")
	log := ts.log.String()
	fp := gossh.FingerprintSHA256(key.PublicKey())
	for _, want := range []string{"msg=\"session start\"", "user=alice", "remote=127.0.0.1:", "key=" + fp, "colour=ANSI256", "reason=quit", "duration="} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "Eiffel") {
		t.Errorf("log records the prompt:\n%s", log)
	}
}

// waitLog waits until the server log contains s.
func waitLog(t *testing.T, ts *testServer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(ts.log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", s, ts.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTrueColourWhenSent: COLORTERM=truecolor, when the client sends it,
// gives the session 24-bit colour.
func TestTrueColourWhenSent(t *testing.T) {
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key), Session: tui.Options{Prompt: firstPrompt}})
	c, err := ts.dial("alice", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Setenv("COLORTERM", "truecolor"); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	sess.Stdout = &out
	if err := sess.RequestPty("xterm-256color", 30, 100, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "48;2;") {
		if time.Now().After(deadline) {
			t.Fatalf("no true-colour sequences; log:\n%s", ts.log.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	waitLog(t, ts, "colour=TrueColor")
}

// TestRefusedLogins: an unknown key, a password, keyboard-interactive and
// no authentication at all are refused; the password is never logged.
func TestRefusedLogins(t *testing.T) {
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key)})
	const secret = "hunter2-secret"
	cases := []struct {
		name string
		auth []gossh.AuthMethod
	}{
		{"unknown key", []gossh.AuthMethod{gossh.PublicKeys(newSigner(t))}},
		{"password", []gossh.AuthMethod{gossh.Password(secret)}},
		{"keyboard-interactive", []gossh.AuthMethod{gossh.KeyboardInteractive(
			func(string, string, []string, []bool) ([]string, error) { return []string{secret}, nil })}},
		{"none", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ts.dial("alice", tc.auth...)
			if err == nil {
				c.Close()
				t.Fatal("logged in")
			}
			if !isRefused(err) {
				t.Fatalf("want an authentication failure, got %v", err)
			}
		})
	}
	// Clients never even try a password: the server offers public keys only.
	waitLog(t, ts, "public key refused")
	log := ts.log.String()
	if strings.Contains(log, secret) {
		t.Errorf("log records the password:\n%s", log)
	}
	if !strings.Contains(log, "public key refused") || !strings.Contains(log, "reason=\"unknown key\"") {
		t.Errorf("log lacks the refused key:\n%s", log)
	}
	// The authorised key still works afterwards.
	c, err := ts.dial("alice", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestNoPTYRefused: a session without a PTY gets a message and exit 1; so
// does a command, with a PTY.
func TestNoPTYRefused(t *testing.T) {
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key)})
	c, err := ts.dial("alice", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput("")
	var exit *gossh.ExitError
	if !errors.As(err, &exit) || exit.ExitStatus() != 1 {
		t.Errorf("no-PTY session: want exit status 1, got %v", err)
	}
	if !strings.Contains(string(out), "needs a terminal") {
		t.Errorf("no-PTY session: message %q", out)
	}

	sess, err = c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	sess.Stdout, sess.Stderr = &buf, &buf
	if err := sess.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	err = sess.Run("cat /etc/passwd")
	if !errors.As(err, &exit) || exit.ExitStatus() != 1 || !strings.Contains(buf.String(), "only the explorer") {
		t.Errorf("command: got %v, %q", err, buf.String())
	}
	waitLog(t, ts, "reason=command")
	if !strings.Contains(ts.log.String(), "reason=\"no pty\"") {
		t.Errorf("log:\n%s", ts.log.String())
	}
}

// TestForwardingRefused: no local or remote port forwarding.
func TestForwardingRefused(t *testing.T) {
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key)})
	c, err := ts.dial("alice", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if conn, err := c.Dial("tcp", ts.Addr().String()); err == nil {
		conn.Close()
		t.Error("local forwarding (ssh -L) allowed")
	}
	if ln, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
		t.Error("remote forwarding (ssh -R) allowed")
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestSubsystem("sftp"); err == nil {
		t.Error("sftp subsystem allowed")
	}
}

// TestConcurrentSessions: 8 sessions each type their own prompt and each
// sees its own lens.
func TestConcurrentSessions(t *testing.T) {
	const n = 8
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key), Burst: 2 * n})
	m := tinyModel(t)
	var wg sync.WaitGroup
	for i := range n {
		prompt := fmt.Sprintf("Session %d asks about %d", i, 7*i+3)
		want := expect(t, m, prompt)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ts.dial(fmt.Sprintf("user%d", i), gossh.PublicKeys(key))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			x := openScreen(t, c, 100, 30)
			x.waitFor(t, "the explorer", 30*time.Second, func(s string) bool { return strings.Contains(s, "type a prompt") })
			x.paste(t, prompt)
			x.waitFor(t, fmt.Sprintf("session %d's lens", i), 30*time.Second, func(s string) bool {
				return strings.Contains(s, "› "+prompt) && want.in(s)
			})
			x.send(t, "\x03")
			if err := x.waitExit(t, 10*time.Second); err != nil {
				t.Errorf("session %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
}

// TestClientKilledMidComputation: a client whose lens request is waiting
// for the model disconnects abruptly; its pending work is cancelled and the
// server goes on serving the next client.
func TestClientKilledMidComputation(t *testing.T) {
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key), Session: tui.Options{Prompt: firstPrompt}})

	c, err := ts.dial("victim", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	x := openScreen(t, c, 100, 30)
	x.waitFor(t, "the first lens", 20*time.Second, expect(t, tinyModel(t), firstPrompt).in)

	// Hold the model, so the next request queues; then type and vanish.
	if err := ts.sched.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	x.paste(t, " the middle of a sentence that will never finish")
	deadline := time.Now().Add(10 * time.Second)
	for ts.sched.waiting() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the edit never queued a computation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Close() // the TCP connection goes; no goodbye
	for ts.sched.waiting() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the disconnected session's work stayed queued")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.sched.release()
	waitLog(t, ts, "reason=disconnected")

	// A longer prompt than one turn, cut off while computing.
	c2, err := ts.dial("victim2", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	x2 := openScreen(t, c2, 100, 30)
	x2.waitFor(t, "the explorer", 20*time.Second, func(s string) bool { return strings.Contains(s, "out") })
	x2.paste(t, strings.Repeat(" and then", 40))
	time.Sleep(5 * time.Millisecond)
	c2.Close()

	c3, err := ts.dial("next", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	next := "A healthy server answers"
	y := openScreen(t, c3, 100, 30)
	y.waitFor(t, "the explorer", 20*time.Second, func(s string) bool { return strings.Contains(s, "out") })
	y.send(t, "\x15")
	y.paste(t, next)
	y.waitFor(t, "the next client's lens", 20*time.Second, expect(t, tinyModel(t), next).in)
}

// TestIdleAndMaxSession: sessions end with a message after the idle timeout
// and after the maximum session time.
func TestIdleAndMaxSession(t *testing.T) {
	key := newSigner(t)
	for _, tc := range []struct {
		name string
		opts Options
		msg  string
	}{
		{"idle", Options{IdleTimeout: 1500 * time.Millisecond, MaxSession: -1}, "without input"},
		{"max", Options{IdleTimeout: -1, MaxSession: 1500 * time.Millisecond}, "session time limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.AuthorizedKeys = authorizedKeys(t, key)
			ts := startServer(t, tc.opts)
			c, err := ts.dial("alice", gossh.PublicKeys(key))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			x := openScreen(t, c, 80, 24)
			start := time.Now()
			if err := x.waitExit(t, 15*time.Second); err != nil {
				t.Errorf("exit: %v", err)
			}
			<-x.done
			if d := time.Since(start); d < time.Second {
				t.Errorf("ended after %v", d)
			}
			if !strings.Contains(x.all(), tc.msg) {
				t.Errorf("no %q message; screen:\n%s", tc.msg, x.text())
			}
		})
	}
}

// TestShutdown: cancelling ListenAndServe's context ends open sessions with
// a notice and returns promptly.
func TestShutdown(t *testing.T) {
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key), Session: tui.Options{Prompt: firstPrompt}})
	c, err := ts.dial("alice", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x := openScreen(t, c, 80, 24)
	x.waitFor(t, "the explorer", 20*time.Second, func(s string) bool { return strings.Contains(s, "out") })
	start := time.Now()
	ts.stop()
	if d := time.Since(start); d > 2*shutdownGrace {
		t.Errorf("shutdown took %v", d)
	}
	<-x.done
	if !strings.Contains(x.all(), "shutting down") {
		t.Errorf("no shutdown notice; screen:\n%s", x.text())
	}
	if _, err := ts.dial("alice", gossh.PublicKeys(key)); err == nil {
		t.Error("connected after shutdown")
	}
}

// TestConnectionLimit: connections beyond MaxConns are refused before the
// handshake, and admitted again once one closes.
func TestConnectionLimit(t *testing.T) {
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key), MaxConns: 1})
	c, err := ts.dial("alice", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	if c2, err := ts.dial("bob", gossh.PublicKeys(key)); err == nil {
		c2.Close()
		t.Fatal("second connection admitted")
	}
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := ts.dial("bob", gossh.PublicKeys(key))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never admitted again: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(ts.log.String(), "reason=\"connection limit\"") {
		t.Errorf("log:\n%s", ts.log.String())
	}
}

// TestRateLimit: a source opening connections faster than the rate is
// refused before the handshake.
func TestRateLimit(t *testing.T) {
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key), RatePerSec: 0.01, Burst: 2})
	for i := range 2 {
		c, err := ts.dial("alice", gossh.PublicKeys(key))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		c.Close()
	}
	conn, err := net.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 200)
	n, _ := conn.Read(buf)
	if !strings.Contains(string(buf[:n]), "too many new connections") {
		t.Errorf("third connection got %q", buf[:n])
	}
}

// TestHostKeyPersisted: the host key is created 0600 (its directory 0700)
// and reused on restart; a key readable by others is refused.
func TestHostKeyPersisted(t *testing.T) {
	key := newSigner(t)
	ak := authorizedKeys(t, key)
	path := filepath.Join(t.TempDir(), "state", "logitlens", "ssh_host_ed25519_key")
	open := func() (*Server, error) {
		return New(Options{Listen: "127.0.0.1:0", AuthorizedKeys: ak, HostKey: path}, tinyModel(t))
	}
	s1, err := open()
	if err != nil {
		t.Fatal(err)
	}
	fp := s1.HostKeyFingerprint()
	s1.Close()
	if !strings.HasPrefix(fp, "SHA256:") {
		t.Errorf("fingerprint %q", fp)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("host key mode: %v %v", st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("host key directory mode: %v %v", st.Mode(), err)
	}
	if s1.signer.PublicKey().Type() != gossh.KeyAlgoED25519 {
		t.Errorf("host key type %s", s1.signer.PublicKey().Type())
	}
	s2, err := open()
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if s2.HostKeyFingerprint() != fp {
		t.Errorf("fingerprint changed on restart: %s then %s", fp, s2.HostKeyFingerprint())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := open(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable host key: %v", err)
	}
}

// TestNewRefusesNoKeys: without a usable key New fails with a clear error
// and binds nothing.
func TestNewRefusesNoKeys(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, []byte("# nobody yet\n\n"), 0o600)
	garbage := filepath.Join(dir, "garbage")
	writeFile(t, garbage, []byte("not a key\n"), 0o600)
	restricted := filepath.Join(dir, "restricted")
	writeFile(t, restricted, append([]byte(`from="10.0.0.1" `), gossh.MarshalAuthorizedKey(newSigner(t).PublicKey())...), 0o600)
	writable := filepath.Join(dir, "writable")
	writeFile(t, writable, gossh.MarshalAuthorizedKey(newSigner(t).PublicKey()), 0o666)
	for _, tc := range []struct {
		name, ak, ca, want string
	}{
		{"no files", "", "", "no authorized keys"},
		{"missing", filepath.Join(dir, "missing"), "", "no such file"},
		{"empty", empty, "", "no usable public key"},
		{"garbage", garbage, "", "no usable public key"},
		{"unsupported option", restricted, "", "no usable public key"},
		{"writable by others", writable, "", "writable by group or others"},
		{"empty CA file", "", empty, "no usable public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Listen: "127.0.0.1:0", AuthorizedKeys: tc.ak, TrustedCA: tc.ca,
				HostKey: filepath.Join(t.TempDir(), "hk"), Logger: testLogger(&syncBuffer{})}
			if err := Check(opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check: %v, want it to mention %q", err, tc.want)
			}
			s, err := New(opts, tinyModel(t))
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "serve: ") {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestSessionStartsAsConfigured: every session starts with the server's
// explorer options (here sublayer rows and a pinned target), not the
// explorer's defaults.
func TestSessionStartsAsConfigured(t *testing.T) {
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key), Session: tui.Options{Prompt: firstPrompt, Sublayers: true, Target: " Paris"}})
	c, err := ts.dial("alice", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x := openScreen(t, c, 120, 35)
	s := x.waitFor(t, "the sublayer rows", 20*time.Second, func(s string) bool { return strings.Contains(s, "1.attn") })
	for _, want := range []string{"2.attn", "target"} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
}
