package tui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/logitlens/logitlens/display"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/atotto/clipboard"
	"github.com/charmbracelet/x/ansi"

	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/inference"
)

// handleClick selects the clicked cell, or focuses the prompt when its line
// is clicked.
func (m *Model) handleClick(msg tea.MouseClickMsg) tea.Cmd {
	if m.backend == nil || m.showHelp || msg.Button != tea.MouseLeft {
		return nil
	}
	r := m.layout()
	if msg.Y < r.promptH {
		m.setFocus(focusPrompt)
		return nil
	}
	if row, col, ok := m.grid.hit(msg.X-r.gridX, msg.Y-r.gridY); ok && msg.X < r.gridX+r.gridW {
		m.grid.moveTo(row, col)
		return m.setFocus(focusGrid)
	}
	return nil
}

// clipboardMsg carries the clipboard's text for ctrl+v, or why it could not
// be read.
type clipboardMsg struct {
	text string
	err  error
}

// pasteClipboard reads the system clipboard off the UI goroutine. Over SSH
// this machine's clipboard is not the user's: the notice says to paste with
// the terminal, which sends the text itself (bracketed paste).
func (m *Model) pasteClipboard() tea.Cmd {
	if m.opts.Remote {
		m.status.setNotice("ctrl+v cannot reach your clipboard over SSH: paste with your terminal (ctrl+shift+v, cmd+v or shift+insert)")
		return nil
	}
	return func() tea.Msg {
		text, err := clipboard.ReadAll()
		return clipboardMsg{text, err}
	}
}

// handleClipboard inserts the clipboard's text as a paste, or says plainly
// that there is no clipboard to read.
func (m *Model) handleClipboard(msg clipboardMsg) tea.Cmd {
	switch {
	case msg.err != nil:
		m.status.setNotice("no clipboard to read (" + display.Safe(msg.err.Error()) + "): paste with your terminal (ctrl+shift+v or cmd+v)")
		return nil
	case m.focus != focusPrompt:
		return nil
	}
	return m.editPrompt(tea.PasteMsg{Content: msg.text})
}

// handleWheel scrolls the grid: the wheel moves rows, shift or a horizontal
// wheel moves positions.
func (m *Model) handleWheel(msg tea.MouseWheelMsg) {
	if m.backend == nil || m.showHelp {
		return
	}
	horizontal := msg.Mod&tea.ModShift != 0
	switch msg.Button {
	case tea.MouseWheelUp:
		if horizontal {
			m.grid.scroll(0, -1)
		} else {
			m.grid.scroll(-1, 0)
		}
	case tea.MouseWheelDown:
		if horizontal {
			m.grid.scroll(0, 1)
		} else {
			m.grid.scroll(1, 0)
		}
	case tea.MouseWheelLeft:
		m.grid.scroll(0, -1)
	case tea.MouseWheelRight:
		m.grid.scroll(0, 1)
	}
}

// targetKey handles the target editor: enter pins (empty clears), esc
// cancels.
func (m *Model) targetKey(k tea.KeyPressMsg) tea.Cmd {
	switch {
	case key.Matches(k, m.keys.Accept):
		text := m.target.Value()
		m.target.Record()
		m.setFocus(focusGrid)
		if text == "" {
			m.opts.Target = ""
			m.targetID, m.targetText = -1, ""
			if m.metric == export.MetricTarget {
				m.metric = export.MetricProb
			}
			m.status.setNotice("target cleared")
			return m.requestLens()
		}
		return resolveTarget(m.backend, text)
	case key.Matches(k, m.keys.Cancel):
		m.setFocus(focusGrid)
		return nil
	}
	if res := m.target.Update(k); res.notice != "" {
		m.status.setNotice(res.notice)
	}
	return nil
}

// targetMsg is a tokenised target string.
type targetMsg struct {
	text   string // what the user typed
	id     int    // its first token
	tokens int    // how many tokens it has
	shown  string // printable form of the first token
	err    error
}

// resolveTarget tokenises the target text off the UI goroutine.
func resolveTarget(b Backend, text string) tea.Cmd {
	return func() tea.Msg {
		msg := targetMsg{text: text}
		msg.err = protect(func() error {
			toks := b.Encode(text)
			if len(toks) == 0 {
				return errors.New("target is empty after tokenising")
			}
			msg.id, msg.tokens = toks[0].ID, len(toks)
			msg.shown = display.Token(b.TokenBytes(msg.id))
			return nil
		})
		return msg
	}
}

// handleTarget pins a resolved target, colours by it and recomputes.
func (m *Model) handleTarget(msg targetMsg) tea.Cmd {
	if msg.err != nil {
		m.status.setError("target: " + msg.err.Error())
		return nil
	}
	m.opts.Target = msg.text
	m.targetID, m.targetText = msg.id, msg.shown
	m.metric = export.MetricTarget
	if msg.tokens > 1 {
		m.status.setNotice(fmt.Sprintf("%q is %d tokens; using the first, %s", msg.text, msg.tokens, msg.shown))
	} else {
		m.status.setNotice("target " + msg.shown)
	}
	return m.requestLens()
}

// cellText describes the cursor cell in plain text for the clipboard.
func (m *Model) cellText() string {
	d := m.data
	c, ok := d.cell(m.grid.row, m.grid.col)
	if !ok {
		return ""
	}
	var b strings.Builder
	row := d.rows[m.grid.row]
	fmt.Fprintf(&b, "layer %s pos %d input %s", rowLabel(row, m.grid.row == len(d.rows)-1), m.grid.col, d.headers[m.grid.col])
	if m.grid.col+1 < d.columns() {
		fmt.Fprintf(&b, " next %s", d.headers[m.grid.col+1])
	}
	b.WriteString("\ntop:")
	for _, p := range c.Top {
		fmt.Fprintf(&b, " %s %s", m.tokenText(p.ID), display.Prob(p.Prob))
	}
	fmt.Fprintf(&b, "\nentropy %.4f nats, KL to final %.4f nats, final top-1 rank %d p %.4g",
		c.Entropy, c.KLToFinal, c.FinalTop1Rank, c.FinalTop1Prob)
	if m.targetID >= 0 && c.TargetRank >= 0 {
		fmt.Fprintf(&b, ", target %s rank %d p %.4g", m.targetText, c.TargetRank, c.TargetProb)
	}
	return b.String()
}

// copyCell puts the cursor cell on the clipboard with OSC 52, which the
// terminal (also at the far end of SSH) applies.
func (m *Model) copyCell() tea.Cmd {
	t := m.cellText()
	if t == "" {
		m.status.setNotice("nothing to copy yet")
		return nil
	}
	m.status.setNotice("copied the cell (OSC 52)")
	return tea.SetClipboard(t)
}

// snapshotMsg reports the files a snapshot wrote.
type snapshotMsg struct {
	paths []string
	err   error
}

// snapshot writes the current screen as plain text, and the lens as the
// `lens` command's JSON when complete, on a command goroutine.
func (m *Model) snapshot() tea.Cmd {
	if m.opts.NoSnapshots != "" {
		m.status.setNotice(m.opts.NoSnapshots)
		return nil
	}
	var text strings.Builder
	fmt.Fprintf(&text, "logitlens snapshot %s\nmodel %s\nprompt %q\ncolour %s\n\n",
		time.Now().Format(time.RFC3339), m.status.model, m.prompt.Value(), m.metric)
	screen, _ := m.render()
	text.WriteString(stripRight(ansi.Strip(screen)))
	text.WriteString("\n")
	var lens *inference.Lens
	var req lensRequest
	if m.data != nil {
		lens, req = m.data.lens, m.data.req
	}
	dir, b := m.opts.SnapshotDir, m.backend
	fopt := export.Options{Metric: m.metric, Palette: m.opts.Palette}
	return func() tea.Msg {
		var msg snapshotMsg
		msg.err = protect(func() error {
			base, err := freeName(dir, "logitlens-"+time.Now().Format("20060102-150405"))
			if err != nil {
				return err
			}
			if err := os.WriteFile(base+".txt", []byte(text.String()), 0o644); err != nil {
				return err
			}
			msg.paths = append(msg.paths, base+".txt")
			if lens == nil {
				return nil
			}
			doc := export.NewDocument(lens, b, req.text, req.bos, req.topK)
			for _, f := range []export.Format{export.JSON, export.SVG, export.HTML} {
				if err := export.WriteFile(base+f.Ext(), f, doc, fopt); err != nil {
					return err
				}
				msg.paths = append(msg.paths, base+f.Ext())
			}
			return nil
		})
		return msg
	}
}

// freeName returns dir/prefix, or dir/prefix-N, naming no existing snapshot.
func freeName(dir, prefix string) (string, error) {
	if dir == "" {
		dir = "."
	}
	for i := 1; i < 1000; i++ {
		base := filepath.Join(dir, prefix)
		if i > 1 {
			base = fmt.Sprintf("%s-%d", base, i)
		}
		if _, err := os.Stat(base + ".txt"); errors.Is(err, os.ErrNotExist) {
			return base, nil
		}
	}
	return "", fmt.Errorf("no free snapshot name in %s", dir)
}

// stripRight removes trailing spaces from every line.
func stripRight(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// handleSnapshot says where the snapshot went.
func (m *Model) handleSnapshot(msg snapshotMsg) {
	switch {
	case msg.err != nil:
		m.status.setError("snapshot: " + msg.err.Error())
	case len(msg.paths) == 1:
		m.status.setNotice("wrote " + msg.paths[0] + " (JSON, SVG and HTML after the lens finishes)")
	default:
		m.status.setNotice("wrote " + strings.Join(msg.paths, ", "))
	}
}
