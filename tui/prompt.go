package tui

import (
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// prompt is a one-line editor: bubbles textinput (cursor movement, word
// jumps, kill keys, bracketed paste) plus an undo stack and a history of
// earlier entries. It is the only component with its own Update; the target
// editor is a second prompt.
type prompt struct {
	input   textinput.Model
	keys    KeyMap
	undo    []string // values before each edit, most recent last
	lastOp  editOp
	history []string // submitted entries, oldest first
	histPos int      // index into history while browsing; len(history) when not
	draft   string   // the unsubmitted text saved while browsing history
}

// editOp classifies an edit so that a run of typed characters undoes as
// one step.
type editOp int

const (
	opNone editOp = iota
	opInsert
	opDelete
	opOther
)

// undoDepth bounds the undo stack.
const undoDepth = 100

// newPrompt returns an editor with the label shown before the text.
func newPrompt(label, value string, keys KeyMap, st Styles) prompt {
	in := textinput.New()
	in.Prompt = label
	in.SetVirtualCursor(false)
	in.SetStyles(st.Input)
	in.SetValue(value)
	in.CursorEnd()
	return prompt{input: in, keys: keys}
}

// Value is the current text.
func (p prompt) Value() string { return p.input.Value() }

// SetValue replaces the text, keeping the old one for undo.
func (p *prompt) SetValue(s string) {
	p.pushUndo(opOther)
	p.input.SetValue(s)
	p.input.CursorEnd()
}

// Focus gives the editor the keyboard.
func (p *prompt) Focus() { p.input.Focus() }

// Blur takes the keyboard away.
func (p *prompt) Blur() { p.input.Blur() }

// Focused reports whether the editor has the keyboard.
func (p prompt) Focused() bool { return p.input.Focused() }

// Submit records the current text in the history.
func (p *prompt) Submit() {
	v := p.input.Value()
	if v != "" && (len(p.history) == 0 || p.history[len(p.history)-1] != v) {
		p.history = append(p.history, v)
	}
	p.histPos = len(p.history)
}

func (p *prompt) pushUndo(op editOp) {
	if op == opInsert && p.lastOp == opInsert {
		return
	}
	p.lastOp = op
	p.undo = append(p.undo, p.input.Value())
	if len(p.undo) > undoDepth {
		p.undo = p.undo[1:]
	}
}

// Update handles a key or paste while focused: undo and history here, the
// rest in textinput. changed reports whether the text changed.
func (p prompt) Update(msg tea.Msg) (prompt, tea.Cmd, bool) {
	before := p.input.Value()
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch {
		case key.Matches(k, p.keys.Undo):
			if n := len(p.undo); n > 0 {
				p.input.SetValue(p.undo[n-1])
				p.input.CursorEnd()
				p.undo = p.undo[:n-1]
				p.lastOp = opNone
			}
			return p, nil, p.input.Value() != before
		case key.Matches(k, p.keys.HistPrev):
			p.browse(-1)
			return p, nil, p.input.Value() != before
		case key.Matches(k, p.keys.HistNext):
			p.browse(+1)
			return p, nil, p.input.Value() != before
		}
	}
	var cmd tea.Cmd
	next, cmd := p.input.Update(msg)
	if after := next.Value(); after != before {
		op := opOther
		switch {
		case isTyping(msg) && len(after) > len(before):
			op = opInsert
		case len(after) < len(before):
			op = opDelete
		}
		p.pushUndo(op)
		if k, ok := msg.(tea.KeyPressMsg); ok && k.Text == " " {
			p.lastOp = opOther // a space closes the word: the next word undoes separately
		}
		p.histPos = len(p.history)
	}
	p.input = next
	return p, cmd, p.input.Value() != before
}

// isTyping reports whether msg is a printable key press.
func isTyping(msg tea.Msg) bool {
	k, ok := msg.(tea.KeyPressMsg)
	return ok && k.Text != ""
}

// browse moves through the history: -1 older, +1 newer; past the newest
// entry it restores the draft.
func (p *prompt) browse(dir int) {
	if len(p.history) == 0 {
		return
	}
	if p.histPos == len(p.history) {
		p.draft = p.input.Value()
	}
	p.histPos = min(max(p.histPos+dir, 0), len(p.history))
	v := p.draft
	if p.histPos < len(p.history) {
		v = p.history[p.histPos]
	}
	p.pushUndo(opOther)
	p.input.SetValue(v)
	p.input.CursorEnd()
}

// SetWidth fits the editor into a line of w cells, scrolling the text so
// the cursor stays visible.
func (p *prompt) SetWidth(w int) {
	pos := p.input.Position()
	p.input.SetWidth(max(1, w-lipgloss.Width(p.input.Prompt)-1))
	p.input.CursorStart()
	p.input.SetCursor(pos)
}

// View draws the editor in a line of the given width and returns the
// terminal cursor position within it (nil when blurred).
func (p prompt) View(width int) (string, *tea.Cursor) {
	return lipgloss.NewStyle().MaxWidth(width).Render(p.input.View()), p.input.Cursor()
}
