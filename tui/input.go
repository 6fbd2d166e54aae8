package tui

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/export"
)

// The one-line input at the bottom of the screen, in place of the status
// bar: a target to pin (t), a token to find (/), or a layer or position to
// go to (:). It is a prompt editor in one-line mode; enter accepts, esc
// cancels.

// inputKind says what the one-line input is for.
type inputKind int

const (
	inputTarget inputKind = iota
	inputSearch
	inputJump
)

// inputLabels are the labels drawn before the input's text.
var inputLabels = [...]string{
	inputTarget: "target › ",
	inputSearch: "find top-1 › ",
	inputJump:   "go to (12 = position, L5 = layer) › ",
}

// openInput shows the one-line input for kind, holding value.
func (m *Model) openInput(kind inputKind, value string) tea.Cmd {
	m.inputKind = kind
	m.input.label = inputLabels[kind]
	m.input.set(value, len(value))
	m.input.lay = nil
	return m.setFocus(focusInput)
}

// inputKey handles a key in the one-line input.
func (m *Model) inputKey(k tea.KeyPressMsg) tea.Cmd {
	switch {
	case key.Matches(k, m.keys.Accept):
		text := m.input.Value()
		m.input.Record()
		m.setFocus(focusGrid)
		switch m.inputKind {
		case inputSearch:
			m.search(text)
			return nil
		case inputJump:
			m.jump(text)
			return nil
		}
		return m.acceptTarget(text)
	case key.Matches(k, m.keys.Cancel):
		m.setFocus(focusGrid)
		return nil
	}
	if res := m.input.Update(k); res.notice != "" {
		m.status.setNotice(res.notice)
	}
	return nil
}

// acceptTarget pins the typed target (tokenised off the UI goroutine), or
// clears it when empty.
func (m *Model) acceptTarget(text string) tea.Cmd {
	if text != "" {
		return resolveTarget(m.backend, text)
	}
	m.opts.Target = ""
	m.targetID, m.targetText = -1, ""
	if m.metric == export.MetricTarget {
		m.metric = export.MetricProb
	}
	m.status.setNotice("target cleared")
	return m.requestLens()
}

// targetMsg is a tokenised target string.
type targetMsg struct {
	text   string // what the user typed
	id     int    // its first token
	tokens int    // how many tokens it has
	shown  string // printable form of the first token
	// spaced is the printable form of " "+text when that is a single
	// token and text does not start with a space: mid-sentence the model
	// predicts that one. "" otherwise.
	spaced string
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
			msg.spaced = spacedVariant(b, text)
			return nil
		})
		return msg
	}
}

// spacedVariant returns the printable form of " "+text when that is a
// single token and text itself does not start with whitespace; "" otherwise.
func spacedVariant(b Backend, text string) string {
	if text == "" || strings.TrimLeft(text, " \t\n") != text {
		return ""
	}
	if toks := b.Encode(" " + text); len(toks) == 1 {
		return display.Token(b.TokenBytes(toks[0].ID))
	}
	return ""
}

// handleTarget pins a resolved target, colours by it and recomputes. It
// warns when the target has a leading-space variant that is one token:
// after a word GPT-2 predicts " Paris", not "Paris".
func (m *Model) handleTarget(msg targetMsg) tea.Cmd {
	if msg.err != nil {
		m.status.setError("target: " + msg.err.Error())
		return nil
	}
	m.opts.Target = msg.text
	m.targetID, m.targetText = msg.id, msg.shown
	m.metric = export.MetricTarget
	quoted := strconv.Quote(display.Safe(msg.text))
	switch {
	case msg.tokens > 1 && msg.spaced != "":
		// "Tokyo" is several tokens where " Tokyo" is one: the user
		// almost surely meant that one.
		m.status.setNotice(fmt.Sprintf("%s is %d tokens; tracking the first, %s; after a word the token is %s, one token with its space: t to change",
			quoted, msg.tokens, msg.shown, msg.spaced))
	case msg.tokens > 1:
		m.status.setNotice(fmt.Sprintf("%s is %d tokens; tracking the first, %s", quoted, msg.tokens, msg.shown))
	case msg.spaced != "":
		m.status.setNotice(fmt.Sprintf("target %s; after a word the token is %s (with its space): t to change", msg.shown, msg.spaced))
	default:
		m.status.setNotice("target " + msg.shown)
	}
	return m.requestLens()
}

// search finds the cells whose top-1 is the typed token and moves the
// cursor to the first (lowest row, then leftmost); n and N step through
// the others.
func (m *Model) search(query string) {
	if query == "" {
		m.query = ""
		return
	}
	m.query = query
	matches := m.matches()
	if len(matches) == 0 {
		msg := "no cell's top-1 is " + strconv.Quote(display.Safe(query))
		if v := spacedVariant(m.backend, query); v != "" {
			msg += "; try " + strconv.Quote(" "+display.Safe(query)) + " (with a space: " + v + ")"
		}
		m.status.setNotice(msg)
		return
	}
	m.grid.moveTo(matches[0][0], matches[0][1])
	m.status.setNotice(fmt.Sprintf("match 1 of %d (n next, N previous)", len(matches)))
}

// matches lists the cells whose top-1's text is the query, lowest row
// first, then leftmost. A query may be typed as the grid shows tokens
// (␣ for a space, ↵ for a line break, ⇥ for a tab).
func (m *Model) matches() [][2]int {
	d := m.data
	if d == nil || m.query == "" {
		return nil
	}
	q := strings.NewReplacer("␣", " ", "↵", "\n", "⇥", "\t").Replace(m.query)
	var out [][2]int
	for r := range d.rows {
		for p := range d.ids {
			if c, ok := d.cell(r, p); ok && m.tokenRaw(c.Top[0].ID) == q {
				out = append(out, [2]int{r, p})
			}
		}
	}
	return out
}

// stepMatch moves the cursor to the next (dir +1) or previous (-1) match
// in search order, wrapping around.
func (m *Model) stepMatch(dir int) {
	matches := m.matches()
	if len(matches) == 0 {
		if m.query == "" {
			m.status.setNotice("/ finds a token first")
		} else {
			m.status.setNotice("no cell's top-1 is " + strconv.Quote(display.Safe(m.query)))
		}
		return
	}
	cur := [2]int{m.grid.row, m.grid.col}
	before := func(a, b [2]int) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }
	i := -1
	if dir > 0 {
		for j, x := range matches {
			if before(cur, x) {
				i = j
				break
			}
		}
		if i < 0 {
			i = 0
		}
	} else {
		for j := len(matches) - 1; j >= 0; j-- {
			if before(matches[j], cur) {
				i = j
				break
			}
		}
		if i < 0 {
			i = len(matches) - 1
		}
	}
	m.grid.moveTo(matches[i][0], matches[i][1])
	m.status.setNotice(fmt.Sprintf("match %d of %d", i+1, len(matches)))
}

// jump moves the cursor to a position (a number, 1-based as on screen), a
// layer ("L5", "layer 5", "emb", "out"), or both ("L5 12").
func (m *Model) jump(spec string) {
	d := m.data
	if d == nil {
		return
	}
	row, col := m.grid.row, m.grid.col
	for _, f := range strings.Fields(strings.ToLower(spec)) {
		switch {
		case f == "emb" || f == "embed" || f == "embedding":
			row = 0
		case f == "out" || f == "output":
			row = len(d.rows) - 1
		case f == "layer" || f == "pos" || f == "position":
		case strings.HasPrefix(f, "l") || strings.HasPrefix(f, "layer"):
			name := strings.TrimPrefix(strings.TrimPrefix(f, "layer"), "l")
			r := rowNamed(d, name)
			if r < 0 {
				m.status.setNotice(fmt.Sprintf("no layer %s: layers run 0 (emb) to %d", display.Safe(name), d.rows[len(d.rows)-1].Layer))
				return
			}
			row = r
		default:
			n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(f, "pos"), "p"))
			if err != nil || n < 1 || n > d.columns() {
				m.status.setNotice(fmt.Sprintf("go to %s? positions run 1 to %d, layers L0 to L%d", strconv.Quote(display.Safe(spec)), d.columns(), d.rows[len(d.rows)-1].Layer))
				return
			}
			col = n - 1
		}
	}
	m.grid.moveTo(row, col)
}

// rowNamed returns the index of the row named name ("0" is the
// embedding, "5" block 5's output, "5.attn" its resid_mid), or -1.
func rowNamed(d *lensData, name string) int {
	if name == "0" {
		return 0
	}
	for i, r := range d.rows {
		if r.Name == name {
			return i
		}
	}
	return -1
}
