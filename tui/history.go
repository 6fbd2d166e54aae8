package tui

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	tea "charm.land/bubbletea/v2"

	"github.com/logitlens/logitlens/weights"
)

// The prompt history is kept in a file of JSON strings, one per line (a
// prompt may hold line breaks and any byte), oldest first, so ctrl+p finds
// last session's prompts. Only the explorer on the user's own terminal keeps
// one: over SSH every session shares the server's account, and one user's
// prompts must not show up in another's history.
const (
	historyMax      = 500     // entries kept
	historyMaxBytes = 2 << 20 // bytes of the file at most, oldest entries dropped first
)

// DefaultHistoryFile is where the explorer keeps its prompt history:
// $XDG_STATE_HOME/logitlens/history, else ~/.local/state/logitlens/history;
// "" when neither directory is known.
func DefaultHistoryFile() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(dir) { // the XDG spec says to ignore a relative path
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "logitlens", "history")
}

// historyMsg carries the history read from disk at start.
type historyMsg struct {
	entries []string
	err     error
}

// historySavedMsg reports a failed save; nil err is not sent.
type historySavedMsg struct{ err error }

// loadHistory reads the history file off the UI goroutine.
func loadHistory(path string) tea.Cmd {
	return func() tea.Msg {
		entries, err := readHistory(path)
		return historyMsg{entries, err}
	}
}

// readHistory returns the entries of a history file; a missing file is an
// empty history, and lines that do not parse (or are over the prompt
// limit) are skipped.
func readHistory(path string) ([]string, error) {
	b, err := weights.ReadFile(path, 2*historyMaxBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		var s string
		if len(line) == 0 || json.Unmarshal(line, &s) != nil || s == "" || len(s) > MaxPromptBytes {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// saveHistory adds entry to the history file: it reads the file again (so
// another explorer's entries survive), appends, drops the oldest entries
// beyond the bounds, and replaces the file through a temporary file and a
// rename, readable by the user only.
func saveHistory(path, entry string) tea.Cmd {
	return func() tea.Msg {
		if err := writeHistory(path, entry); err != nil {
			return historySavedMsg{err}
		}
		return nil
	}
}

func writeHistory(path, entry string) error {
	entries, err := readHistory(path)
	if err != nil && !errors.Is(err, weights.ErrTooLarge) {
		return err
	}
	if len(entries) == 0 || entries[len(entries)-1] != entry {
		entries = append(entries, entry)
	}
	lines := make([][]byte, len(entries))
	size := 0
	for i, e := range entries {
		lines[i], _ = json.Marshal(e)
		size += len(lines[i]) + 1
	}
	first := max(0, len(lines)-historyMax)
	for ; first < len(lines)-1 && size > historyMaxBytes; first++ {
		size -= len(lines[first]) + 1
	}
	var b bytes.Buffer
	for _, l := range lines[first:] {
		b.Write(l)
		b.WriteByte('\n')
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".history-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing to remove
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
