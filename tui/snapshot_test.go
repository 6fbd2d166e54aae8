package tui

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"
)

// snapshotBase finds the snapshot base path a notice names.
var snapshotBase = regexp.MustCompile(`(\S*logitlens-[0-9-]+)\.txt`)

// TestSnapshotWaitsForLens: e while the lens computes writes the text at
// once and the JSON, SVG and HTML of the prompt's lens when it completes;
// e and then an edit before the lens completes writes the text only, and
// the status bar says so, through the keys typed next.
func TestSnapshotWaitsForLens(t *testing.T) {
	b := &fakeBackend{layers: 2}
	opts := fakeOptions(b, "The cat")
	opts.SnapshotDir = t.TempDir()
	m := newModel(opts)
	x := newTerm(t, m, 120, 30, colorprofile.ASCII)
	x.waitFor(t, "the first lens", func(s string) bool {
		return b.lensFor(b.ids("The cat", false)) != nil && !strings.Contains(s, "computing")
	})
	exists := func(path string) bool { _, err := os.Stat(path); return err == nil }
	slow := func(d time.Duration) {
		b.mu.Lock()
		b.delay = d
		b.mu.Unlock()
	}
	// Collapse the notice's line breaks (a long notice wraps).
	flat := func(s string) string { return strings.Join(strings.Fields(s), " ") }

	// Completed later: the lens files follow.
	slow(time.Second) // long enough that the keys below come before the lens completes, on a loaded machine too
	x.tm.Type(" sat")
	x.waitFor(t, "the edit computing", func(s string) bool { return strings.Contains(s, "computing") })
	x.keys("tab", "e")
	s := x.waitFor(t, "the promise", func(s string) bool { return strings.Contains(flat(s), "follow when the lens is complete") })
	base := snapshotBase.FindStringSubmatch(flat(s))
	if base == nil {
		t.Fatalf("no snapshot path in:\n%s", s)
	}
	if !exists(base[1]+".txt") || exists(base[1]+".json") {
		t.Fatalf("while computing: the text should be written, the JSON not yet")
	}
	slow(0)
	x.waitFor(t, "the lens files", func(s string) bool { return strings.Contains(flat(s), base[1]+".json") })
	for _, ext := range []string{".json", ".svg", ".html"} {
		if !exists(base[1] + ext) {
			t.Errorf("%s%s not written", base[1], ext)
		}
	}
	var doc struct {
		Prompt string `json:"prompt"`
		Tokens []any  `json:"tokens"`
	}
	if body, err := os.ReadFile(base[1] + ".json"); err != nil || json.Unmarshal(body, &doc) != nil ||
		doc.Prompt != "The cat sat" || len(doc.Tokens) != len(b.ids("The cat sat", false)) {
		t.Errorf("JSON snapshot %v: %+v", err, doc)
	}

	// Superseded: the prompt changes before the lens completes.
	slow(time.Second) // long enough that the keys below come before the lens completes, on a loaded machine too
	x.keys("tab")
	x.tm.Type(" on")
	x.waitFor(t, "the edit computing", func(s string) bool { return strings.Contains(s, "computing") })
	x.keys("tab", "e")
	s = x.waitFor(t, "the promise", func(s string) bool { return strings.Contains(flat(s), "follow when the lens is complete") })
	second := snapshotBase.FindStringSubmatch(flat(s))
	if second == nil || second[1] == base[1] {
		t.Fatalf("no new snapshot path in:\n%s", s)
	}
	x.keys("tab")
	x.tm.Type(" the")
	want := "only " + second[1] + ".txt written, no JSON, SVG or HTML: the prompt or a setting changed"
	x.waitFor(t, "the notice that the lens files will not come", func(s string) bool { return strings.Contains(flat(s), want) })
	x.tm.Type(" mat") // more keys: the notice stays
	time.Sleep(300 * time.Millisecond)
	if s := x.screen(); !strings.Contains(flat(s), want) {
		t.Errorf("the notice went with the next keys:\n%s", s)
	}
	slow(0)
	x.waitFor(t, "the new lens", func(s string) bool {
		return b.lensFor(b.ids("The cat sat on the mat", false)) != nil && !strings.Contains(s, "computing")
	})
	time.Sleep(100 * time.Millisecond)
	if files, _ := filepath.Glob(second[1] + ".*"); len(files) != 1 {
		t.Errorf("the superseded snapshot wrote %v, want its .txt alone", files)
	}

	// Quitting while a snapshot waits asks once, then quits.
	slow(time.Second)   // long enough that the keys below come before the lens completes, on a loaded machine too
	x.tm.Type(" again") // the prompt has the keys
	x.waitFor(t, "the edit computing", func(s string) bool { return strings.Contains(s, "computing") })
	x.keys("tab", "e")
	x.waitFor(t, "the promise", func(s string) bool { return strings.Contains(flat(s), "follow when the lens is complete") })
	x.keys("q")
	x.waitFor(t, "the question", func(s string) bool { return strings.Contains(flat(s), "q or ctrl+c again quits without them") })
	x.keys("ctrl+c")
	x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}
