package serve

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
	gossh "golang.org/x/crypto/ssh"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/testmodel"
)

var (
	modelOnce sync.Once
	model     *inference.Model
	modelErr  error
)

// tinyModel is the tiny-f32 checkpoint, loaded once for all tests.
func tinyModel(t *testing.T) *inference.Model {
	t.Helper()
	dir := testmodel.Dir(t, "tiny-f32")
	modelOnce.Do(func() { model, modelErr = inference.OpenDir(dir, "tiny-f32", inference.NewCPUBackend) })
	if modelErr != nil {
		t.Fatal(modelErr)
	}
	return model
}

// newSigner returns a fresh ed25519 client key.
func newSigner(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeFile writes data with the given mode (umask notwithstanding).
func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// authorizedKeys writes an authorized_keys file listing the signers' keys.
func authorizedKeys(t *testing.T, signers ...gossh.Signer) string {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("# test keys\n\n")
	for _, s := range signers {
		b.Write(gossh.MarshalAuthorizedKey(s.PublicKey()))
	}
	path := filepath.Join(t.TempDir(), "authorized_keys")
	writeFile(t, path, b.Bytes(), 0o600)
	return path
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testServer is a running server and its log.
type testServer struct {
	*Server
	log  *syncBuffer
	stop func()
}

// startServer starts a server on a loopback port with a tiny model; the
// options' empty key paths are filled with temporary ones. It stops at
// cleanup and fails the test if ListenAndServe did not return cleanly.
func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	return startServerOn(t, opts, tinyModel(t))
}

// startServerOn is startServer with the model m.
func startServerOn(t *testing.T, opts Options, m SharedModel) *testServer {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.HostKey == "" {
		opts.HostKey = filepath.Join(t.TempDir(), "host_key")
	}
	logs := &syncBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(opts, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx) }()
	ts := &testServer{Server: srv, log: logs}
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("ListenAndServe: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("ListenAndServe did not return after cancel")
			}
		})
	}
	t.Cleanup(func() {
		ts.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return ts
}

// dial connects as user with the given auth methods, checking the host key.
func (ts *testServer) dial(user string, auth ...gossh.AuthMethod) (*gossh.Client, error) {
	cfg := &gossh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: gossh.FixedHostKey(ts.signer.PublicKey()),
		Timeout:         5 * time.Second,
	}
	return gossh.Dial("tcp", ts.Addr().String(), cfg)
}

// screen is an SSH session with a PTY whose output feeds a virtual
// terminal, which answers the program's queries like a real one.
type screen struct {
	sess  *gossh.Session
	stdin io.WriteCloser
	emu   *vt.Emulator
	mu    sync.Mutex // guards emu
	out   chan struct{}
	done  chan struct{} // closed when the output ends
	raw   bytes.Buffer  // everything received, for messages after exit
}

// openScreen starts the explorer over client at w×h.
func openScreen(t *testing.T, client *gossh.Client, w, h int) *screen {
	t.Helper()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm-256color", h, w, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	x := &screen{sess: sess, stdin: stdin, emu: vt.NewEmulator(w, h), done: make(chan struct{})}
	// The emulator's replies to terminal queries go back to the server,
	// as a terminal's would.
	go func() { _, _ = io.Copy(stdin, x.emu) }()
	t.Cleanup(func() { _ = x.emu.InputPipe().(io.Closer).Close() })
	go func() {
		defer close(x.done)
		buf := make([]byte, 32<<10)
		for {
			n, err := stdout.Read(buf)
			if n > 0 {
				x.mu.Lock()
				x.raw.Write(buf[:n])
				_, _ = x.emu.Write(buf[:n])
				x.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { sess.Close() })
	return x
}

// text returns the screen's plain text.
func (x *screen) text() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.emu.String()
}

// all returns every byte received so far, escapes included.
func (x *screen) all() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.raw.String()
}

// waitFor polls the screen until cond holds, failing after d.
func (x *screen) waitFor(t *testing.T, what string, d time.Duration, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := x.text()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s; screen:\n%s", what, s)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// send types raw bytes.
func (x *screen) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(x.stdin, s); err != nil {
		t.Fatal(err)
	}
}

// paste sends text as a bracketed paste, one message for the program
// rather than a key per character.
func (x *screen) paste(t *testing.T, s string) {
	t.Helper()
	x.send(t, "\x1b[200~"+s+"\x1b[201~")
}

// waitExit waits for the session to end and returns its exit error.
func (x *screen) waitExit(t *testing.T, d time.Duration) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- x.sess.Wait() }()
	select {
	case err := <-errc:
		return err
	case <-time.After(d):
		t.Fatalf("session did not end; screen:\n%s", x.text())
	}
	return nil
}

// expected is what the panel shows for the cursor cell on the output row at
// the last token of prompt, computed by an independent session.
type expected struct {
	final, entropy string
}

func expect(t *testing.T, m *inference.Model, prompt string) expected {
	t.Helper()
	var ids []int
	for _, tok := range m.Encode(prompt) {
		ids = append(ids, tok.ID)
	}
	l, err := m.NewSession().Lens(context.Background(), inference.Request{IDs: ids, TopK: 10, Target: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := l.Cells[len(l.Rows)-1][len(ids)-1]
	return expected{
		final:   "final  " + m.TokenText(c.Top[0].ID) + " rank 0",
		entropy: "entropy " + fmtFloat2(c.Entropy) + " nats",
	}
}

func (e expected) in(s string) bool {
	return strings.Contains(s, e.final) && strings.Contains(s, e.entropy)
}

// isRefused reports whether err is an SSH authentication failure.
func isRefused(err error) bool {
	var se *gossh.ServerAuthError
	return err != nil && (errors.As(err, &se) || strings.Contains(err.Error(), "unable to authenticate"))
}
