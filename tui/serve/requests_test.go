package serve

import (
	"fmt"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/logitlens/logitlens/tui"
)

// TestEnvAndTermCapped: a client sending 10,000 environment variables of
// 30 KB gets maxEnvVars small ones accepted and the rest refused, logged in
// two lines; a 30 KB TERM is logged cut; the session then works.
func TestEnvAndTermCapped(t *testing.T) {
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
	if err := sess.Setenv("BIG", strings.Repeat("x", 30_000)); err == nil {
		t.Error("a 30 KB variable was accepted")
	}
	accepted := 0
	for i := range 10_000 {
		value := "1"
		if i%2 == 1 {
			value = strings.Repeat("y", 30_000)
		}
		if sess.Setenv(fmt.Sprintf("V%d", i), value) == nil {
			accepted++
		}
	}
	if accepted != maxEnvVars {
		t.Errorf("%d variables accepted, want %d", accepted, maxEnvVars)
	}
	if err := sess.Setenv("COLORTERM", "truecolor"); err == nil {
		t.Error("a variable past the cap was accepted")
	}
	var out syncBuffer
	sess.Stdout = &out
	term := "xterm-256color" + strings.Repeat("\x1b]0;pwned\x07", 3000)
	if err := sess.RequestPty(term, 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, ts, "session start")
	sess.Close()
	waitLog(t, ts, "env requests refused")
	log := ts.log.String()
	if len(log) > 20_000 || strings.Contains(log, "\x1b") || strings.Contains(log, "pwned\x07") {
		t.Errorf("log of %d bytes holds what the client sent:\n%.2000s", len(log), log)
	}
	if !strings.Contains(log, `term="xterm-256color\\x1b]0;pwned\\x07`) || !strings.Contains(log, "(30014 bytes)") {
		t.Errorf("log lacks the cut TERM:\n%.3000s", log)
	}
	// BIG, then 10,000 − 32 past the caps, then COLORTERM.
	if n := strings.Count(log, `request="env `); n != 1 || !strings.Contains(log, `request="env BIG"`) || !strings.Contains(log, "env requests refused") || !strings.Contains(log, "count=9970") {
		t.Errorf("env refusals logged %d times; log:\n%.3000s", n, log)
	}
}

// TestRefusalsLogged: port forwarding both ways, sftp, X11 and agent
// forwarding are refused and logged, a few lines per connection however
// many are asked for.
func TestRefusalsLogged(t *testing.T) {
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key)})
	c, err := ts.dial("alice", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if conn, err := c.Dial("tcp", "127.0.0.1:22"); err == nil {
		conn.Close()
		t.Error("ssh -L allowed")
	}
	if ln, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
		t.Error("ssh -R allowed")
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if ok, err := sess.SendRequest("auth-agent-req@openssh.com", true, nil); ok || err != nil {
		t.Errorf("agent forwarding: %v, %v", ok, err)
	}
	x11 := gossh.Marshal(struct {
		Single          bool
		Protocol, Token string
		Screen          uint32
	}{false, "MIT-MAGIC-COOKIE-1", "00", 0})
	if ok, err := sess.SendRequest("x11-req", true, x11); ok || err != nil {
		t.Errorf("x11: %v, %v", ok, err)
	}
	if err := sess.RequestSubsystem("sftp"); err == nil {
		t.Error("sftp allowed")
	}
	waitLog(t, ts, "subsystem sftp")
	log := ts.log.String()
	for _, want := range []string{
		`request="channel direct-tcpip"`, "request=tcpip-forward", "request=auth-agent-req@openssh.com",
		"request=x11-req", `request="subsystem sftp"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	if strings.Count(log, `msg="request refused"`) != maxRefusalLogs {
		t.Errorf("want %d refusals logged:\n%s", maxRefusalLogs, log)
	}
	// A flood of forwarding attempts: one more line, then silence.
	for range 50 {
		if conn, err := c.Dial("tcp", "127.0.0.1:22"); err == nil {
			conn.Close()
		}
	}
	waitLog(t, ts, "further refusals on this connection are not logged")
	time.Sleep(100 * time.Millisecond)
	if n := strings.Count(ts.log.String(), "request refused"); n != maxRefusalLogs+1 {
		t.Errorf("%d refusal lines after a flood, want %d", n, maxRefusalLogs+1)
	}
}
