package tui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/logitlens/logitlens/display"

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
		text, err := readClipboard()
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
	if r := m.layout(); msg.X >= r.panelX && msg.Y >= r.panelY && msg.Y < r.panelY+r.panelH && msg.X < r.panelX+r.panelW {
		// Over the panel: the wheel scrolls the top-k list.
		switch msg.Button {
		case tea.MouseWheelUp:
			m.scrollTopK(-1)
		case tea.MouseWheelDown:
			m.scrollTopK(1)
		}
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

// The system clipboard, a variable so that tests need not touch the
// machine's.
var (
	readClipboard  = clipboard.ReadAll
	writeClipboard = clipboard.WriteAll
)

// copyTop1 puts the raw text of the cursor cell's top-1 token on the
// clipboard: its bytes, not the display form (a space, not ␣).
func (m *Model) copyTop1() tea.Cmd {
	c, ok := m.data.cell(m.grid.row, m.grid.col)
	if !ok {
		m.status.setNotice("nothing to copy yet")
		return nil
	}
	id := c.Top[0].ID
	return m.copyText(fmt.Sprintf("the top-1's text (%s, %d bytes)", m.tokenText(id), len(m.tokenRaw(id))), m.tokenRaw(id))
}

// copyCellJSON puts the cursor cell on the clipboard as JSON: its
// statistics as the lens command writes them, with where it is.
func (m *Model) copyCellJSON() tea.Cmd {
	d, g := m.data, m.grid
	c, ok := d.cell(g.row, g.col)
	if !ok {
		m.status.setNotice("nothing to copy yet")
		return nil
	}
	var lock *inference.Row
	if r := d.lockIn(g.col); r >= 0 {
		lock = &d.rows[r]
	}
	var b []byte
	err := protect(func() error {
		var err error
		b, err = export.NewCellDoc(m.backend, d.rows[g.row], g.col, d.ids[g.col], d.nextID(g.col), c, d.req.target, lock).JSON()
		return err
	})
	if err != nil {
		m.status.setError("copy: " + err.Error())
		return nil
	}
	return m.copyText("the cell as JSON", string(b))
}

// copiedMsg reports a write to the system clipboard.
type copiedMsg struct {
	what, text string
	err        error
}

// copyText puts text on the clipboard. Locally the system clipboard is
// tried first, off the UI goroutine; over SSH, or where there is none
// (no xclip, xsel or wl-copy), the terminal's clipboard through OSC 52,
// which a terminal may refuse without telling: the notice says so.
func (m *Model) copyText(what, text string) tea.Cmd {
	if m.opts.Remote {
		m.status.setNotice("copied " + what + " with OSC 52: your terminal must allow it")
		return tea.SetClipboard(text)
	}
	return func() tea.Msg { return copiedMsg{what, text, writeClipboard(text)} }
}

// handleCopied says what was copied, falling back to OSC 52.
func (m *Model) handleCopied(msg copiedMsg) tea.Cmd {
	if msg.err == nil {
		m.status.setNotice("copied " + msg.what)
		return nil
	}
	m.status.setNotice("no system clipboard: sent " + msg.what + " with OSC 52 (if nothing arrives, the terminal refused it)")
	return tea.SetClipboard(msg.text)
}

// snapshotMsg reports the files a snapshot wrote.
type snapshotMsg struct {
	paths []string
	err   error
	// base is the snapshot's path without extension; when wait is set the
	// lens of req was not complete, and its JSON, SVG and HTML are still
	// to be written under base.
	base string
	wait bool
	req  lensRequest
}

// lastingNotice is how long a dropped snapshot's notice outlives keys.
const lastingNotice = 5 * time.Second

// waitingSnapshot is a snapshot whose lens files are written when the lens
// of req completes.
type waitingSnapshot struct {
	base string
	req  lensRequest
}

// snapshot writes the current screen as plain text at once, and the lens
// of the prompt as the `lens` command writes it (JSON, SVG and HTML) when
// that lens is complete: at once, or when its computation finishes. If the
// prompt or a setting changes first, or the lens fails, the status bar
// says that only the text was written: no file is promised and then lost.
func (m *Model) snapshot() tea.Cmd {
	if m.opts.NoSnapshots != "" {
		m.status.setNotice(m.opts.NoSnapshots)
		return nil
	}
	var text strings.Builder
	fmt.Fprintf(&text, "logitlens snapshot %s\nmodel %s\nlens %s\nprompt %q\ncolour %s\n\n",
		time.Now().Format(time.RFC3339), m.status.model, m.lensName(), m.prompt.Value(), m.metric)
	screen, _ := m.render()
	text.WriteString(stripRight(ansi.Strip(screen)))
	text.WriteString("\n")
	var lens *inference.Lens
	var req lensRequest
	wait := false
	switch {
	case m.computing:
		req, wait = m.pending, true
	case m.data != nil && m.data.lens != nil:
		lens, req = m.data.lens, m.data.req
	}
	dir, write := m.opts.SnapshotDir, m.lensFiles(lens, req)
	return func() tea.Msg {
		msg := snapshotMsg{wait: wait, req: req}
		msg.err = protect(func() error {
			base, err := freeName(dir, "logitlens-"+time.Now().Format("20060102-150405"))
			if err != nil {
				return err
			}
			msg.base = base
			if err := os.WriteFile(base+".txt", []byte(text.String()), 0o644); err != nil {
				return err
			}
			msg.paths = append(msg.paths, base+".txt")
			if lens == nil {
				return nil
			}
			paths, err := write(base)
			msg.paths = append(msg.paths, paths...)
			return err
		})
		return msg
	}
}

// lensFiles returns a function that writes lens (of req) as JSON, SVG and
// HTML beside a snapshot's text, returning the paths it wrote. It reads no
// model state when called, so it runs off the UI goroutine.
func (m *Model) lensFiles(lens *inference.Lens, req lensRequest) func(base string) ([]string, error) {
	b := m.backend
	fopt := export.Options{Metric: m.metric, Palette: m.opts.Palette}
	return func(base string) ([]string, error) {
		var paths []string
		doc := export.NewDocument(lens, b, req.text, req.bos, req.topK)
		for _, f := range []export.Format{export.JSON, export.SVG, export.HTML} {
			if err := export.WriteFile(base+f.Ext(), f, doc, fopt); err != nil {
				return paths, err
			}
			paths = append(paths, base+f.Ext())
		}
		return paths, nil
	}
}

// sameLens reports whether a and b ask for the same lens: the same text and
// settings, whichever columns come first.
func sameLens(a, b lensRequest) bool { return a.text == b.text && a.sameSettings(b) }

// finishSnapshots writes the lens files of the waiting snapshots whose lens
// is the one just completed.
func (m *Model) finishSnapshots(d *lensData) tea.Cmd {
	var cmds []tea.Cmd
	keep := m.snaps[:0]
	for _, s := range m.snaps {
		if !sameLens(s.req, d.req) {
			keep = append(keep, s)
			continue
		}
		write, base := m.lensFiles(d.lens, d.req), s.base
		cmds = append(cmds, func() tea.Msg {
			var msg snapshotMsg
			msg.err = protect(func() error {
				var err error
				msg.paths, err = write(base)
				return err
			})
			return msg
		})
	}
	m.snaps = keep
	return tea.Batch(cmds...)
}

// dropSnapshots gives up the waiting snapshots whose lens will not come
// (why says why), saying so in the status bar; with keep, those still
// asking for the lens of keep stay.
func (m *Model) dropSnapshots(why string, keep *lensRequest) {
	var left []waitingSnapshot
	var dropped []string
	for _, s := range m.snaps {
		if keep != nil && sameLens(s.req, *keep) {
			left = append(left, s)
			continue
		}
		dropped = append(dropped, s.base+".txt")
	}
	m.snaps = left
	if len(dropped) > 0 {
		m.status.setLasting("snapshot: only "+strings.Join(dropped, ", ")+" written, no JSON, SVG or HTML: "+why, lastingNotice)
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

// handleSnapshot says where the snapshot went, and keeps a snapshot
// whose lens is still computing until it completes.
func (m *Model) handleSnapshot(msg snapshotMsg) tea.Cmd {
	switch {
	case msg.err != nil:
		m.status.setError("snapshot: " + msg.err.Error())
	case msg.wait && m.data != nil && m.data.lens != nil && !m.computing && sameLens(m.data.req, msg.req):
		// The lens completed while the text was written.
		m.snaps, m.quitArmed = append(m.snaps, waitingSnapshot{msg.base, msg.req}), false
		m.status.setNotice("wrote " + msg.base + ".txt")
		return m.finishSnapshots(m.data)
	case msg.wait && m.computing && sameLens(m.pending, msg.req):
		m.snaps, m.quitArmed = append(m.snaps, waitingSnapshot{msg.base, msg.req}), false
		m.status.setNotice("wrote " + msg.base + ".txt; its .json, .svg and .html follow when the lens is complete")
	case msg.wait:
		m.status.setLasting("wrote "+msg.base+".txt only, no JSON, SVG or HTML: the prompt changed before its lens was complete", lastingNotice)
	case len(msg.paths) == 1:
		m.status.setNotice("wrote " + msg.paths[0] + " only: no lens is shown (the prompt is empty, or its lens failed)")
	default:
		m.status.setNotice("wrote " + strings.Join(msg.paths, ", "))
	}
	return nil
}
