package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logitlens/logitlens/weights/testmodel"
)

// tmuxSession drives the real binary in a detached tmux session of its own
// server (its own socket), as a user's terminal would.
type tmuxSession struct {
	t    *testing.T
	sock string
}

func (s tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", s.sock}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

// screen is the pane's text.
func (s tmuxSession) screen() string { return s.run("capture-pane", "-p") }

// waitFor polls the pane until cond holds.
func (s tmuxSession) waitFor(what string, cond func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		sc := s.screen()
		if cond(sc) {
			return sc
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting for %s; screen:\n%s", what, sc)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// buildBinary builds logitlens into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "logitlens")
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var tokCount = regexp.MustCompile(`│ (\d+) tok │`)

// TestTmuxMultiLinePrompt types a multi-line prompt into the real explorer
// in tmux (enter for line breaks, ctrl+t for a tab), then pastes one with
// the terminal's bracketed paste, and compares the token count in the
// status bar with the tokens `lens` reads from the same text.
func TestTmuxMultiLinePrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and drives it in tmux; skipped with -short")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	dir := testmodel.Dir(t, "tiny-f32")
	bin := buildBinary(t)
	state := t.TempDir()
	s := tmuxSession{t: t, sock: filepath.Join(t.TempDir(), "tmux.sock")}
	s.run("-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "35",
		"env", "XDG_STATE_HOME="+state, "HF_HUB_OFFLINE=1", bin, "-m", dir, "--device", "cpu", "-p", "")
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", s.sock, "kill-server").Run() })
	s.waitFor("the explorer", func(sc string) bool { return strings.Contains(sc, "type a prompt") })

	countAfter := func(what string) int {
		sc := s.waitFor(what, func(sc string) bool {
			return tokCount.MatchString(sc) && !strings.Contains(sc, "computing")
		})
		n, _ := strconv.Atoi(tokCount.FindStringSubmatch(sc)[1])
		return n
	}

	// Typed: "def f(x):" enter, tab, "return x  " enter, "# 日本語 👍".
	s.run("send-keys", "-l", "def f(x):")
	s.run("send-keys", "Enter", "C-t")
	s.run("send-keys", "-l", "return x  ")
	s.run("send-keys", "Enter")
	s.run("send-keys", "-l", "# 日本語 👍")
	typed := "def f(x):\n\treturn x  \n# 日本語 👍"
	s.waitFor("the last typed line", func(sc string) bool { return strings.Contains(sc, "# 日本語") })
	if got, want := countAfter("the typed prompt's lens"), len(lensIDsOf(t, dir, typed)); got != want {
		t.Errorf("typed: the explorer shows %d tokens, lens reads %d\n%s", got, want, s.screen())
	}

	// Pasted, replacing the prompt: tmux sends line breaks as CR inside
	// bracketed paste, as terminals do.
	s.run("send-keys", "C-Home")
	for range 3 {
		s.run("send-keys", "C-k", "C-k")
	}
	pasted := "class A:\n\tdef g(self):\n\t\treturn 'é'  \n"
	s.run("set-buffer", "--", pasted)
	s.run("paste-buffer", "-p")
	s.waitFor("the pasted text", func(sc string) bool { return strings.Contains(sc, "class A:") && !strings.Contains(sc, "def f") })
	if got, want := countAfter("the pasted prompt's lens"), len(lensIDsOf(t, dir, pasted)); got != want {
		t.Errorf("pasted: the explorer shows %d tokens, lens reads %d\n%s", got, want, s.screen())
	}
	// The line breaks reached the model as LF (↵ in the grid's header),
	// not as the CR the terminal sent (<0x0D>).
	if sc := s.screen(); !strings.Contains(sc, "↵") || strings.Contains(sc, "<0x0D>") {
		t.Errorf("pasted line breaks are not LF:\n%s", sc)
	}
	s.run("send-keys", "C-c")
	// Leaving recorded the prompt in the history under XDG_STATE_HOME.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(state, "logitlens", "history"))
		if err == nil && strings.Contains(string(b), "class A:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history not written: %v %q", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
