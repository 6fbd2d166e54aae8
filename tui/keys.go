package tui

import (
	"charm.land/bubbles/v2/key"
)

// KeyMap holds every binding of the explorer with its help text, grouped by
// the focus in which it applies. Update and the prompt editor match keys
// only through it, so the help overlay cannot drift from what the keys do.
type KeyMap struct {
	// Anywhere.
	Quit     key.Binding // ctrl+c
	Focus    key.Binding // tab: prompt → grid → prompt
	FocusRev key.Binding // shift+tab: the other way round
	Help     key.Binding // f1 anywhere (? in the grid: GridHelp)

	// Prompt editor. Enter inserts a line break: the prompt is text the
	// model reads, and nothing needs submitting (the lens follows each
	// edit); tab, shift+tab or esc leave for the grid.
	Leave             key.Binding
	Newline           key.Binding
	InsertTab         key.Binding
	CharLeft          key.Binding
	CharRight         key.Binding
	WordLeft          key.Binding
	WordRight         key.Binding
	LineUp            key.Binding
	LineDown          key.Binding
	LineStart         key.Binding
	LineEnd           key.Binding
	TextStart         key.Binding
	TextEnd           key.Binding
	DeleteBack        key.Binding
	DeleteForward     key.Binding
	DeleteWordBack    key.Binding
	DeleteWordForward key.Binding
	DeleteToStart     key.Binding
	DeleteToEnd       key.Binding
	Undo              key.Binding
	Redo              key.Binding
	HistPrev          key.Binding
	HistNext          key.Binding
	Paste             key.Binding

	// Grid.
	GridHelp  key.Binding
	Up        key.Binding
	Down      key.Binding
	Left      key.Binding
	Right     key.Binding
	Top       key.Binding
	Bottom    key.Binding
	Home      key.Binding
	End       key.Binding
	PageUp    key.Binding
	PageDown  key.Binding
	Fit       key.Binding
	Metric    key.Binding
	Numbers   key.Binding
	Scale     key.Binding
	LockIn    key.Binding
	Target    key.Binding
	Sublayers key.Binding
	Lens      key.Binding
	BOS       key.Binding
	Search    key.Binding
	NextMatch key.Binding
	PrevMatch key.Binding
	Jump      key.Binding
	TopKUp    key.Binding
	TopKDown  key.Binding
	Copy      key.Binding
	CopyJSON  key.Binding
	Export    key.Binding
	QuitGrid  key.Binding

	// Compare mode (grid).
	Compare      key.Binding
	Swap         key.Binding
	LeaveCompare key.Binding

	// One-line inputs (target).
	Accept key.Binding
	Cancel key.Binding

	// Help overlay.
	HelpUp   key.Binding
	HelpDown key.Binding
	HelpPgUp key.Binding
	HelpPgDn key.Binding
	HelpExit key.Binding
}

// DefaultKeyMap returns the explorer's bindings.
func DefaultKeyMap() KeyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	ks := func(k ...string) []string { return k }
	return KeyMap{
		Quit:     b(ks("ctrl+c"), "ctrl+c", "quit"),
		Focus:    b(ks("tab"), "tab", "prompt ⇄ grid"),
		FocusRev: b(ks("shift+tab"), "shift+tab", "grid ⇄ prompt"),
		Help:     b(ks("f1"), "f1", "this help"),

		Leave:             b(ks("esc"), "esc", "to the grid"),
		Newline:           b(ks("enter"), "enter", "new line"),
		InsertTab:         b(ks("ctrl+t"), "ctrl+t", "insert a tab"),
		CharLeft:          b(ks("left", "ctrl+b"), "←/ctrl+b", "character left"),
		CharRight:         b(ks("right", "ctrl+f"), "→/ctrl+f", "character right"),
		WordLeft:          b(ks("alt+left", "ctrl+left", "alt+b"), "alt+←/alt+b", "word left"),
		WordRight:         b(ks("alt+right", "ctrl+right", "alt+f"), "alt+→/alt+f", "word right"),
		LineUp:            b(ks("up"), "↑", "line up"),
		LineDown:          b(ks("down"), "↓", "line down"),
		LineStart:         b(ks("home", "ctrl+a"), "home/ctrl+a", "start of line"),
		LineEnd:           b(ks("end", "ctrl+e"), "end/ctrl+e", "end of line"),
		TextStart:         b(ks("ctrl+home", "alt+<"), "ctrl+home", "start of prompt"),
		TextEnd:           b(ks("ctrl+end", "alt+>"), "ctrl+end", "end of prompt"),
		DeleteBack:        b(ks("backspace", "ctrl+h"), "backspace", "delete left"),
		DeleteForward:     b(ks("delete", "ctrl+d"), "delete/ctrl+d", "delete right"),
		DeleteWordBack:    b(ks("alt+backspace", "ctrl+w"), "ctrl+w", "delete word left"),
		DeleteWordForward: b(ks("alt+delete", "alt+d"), "alt+d", "delete word right"),
		DeleteToStart:     b(ks("ctrl+u"), "ctrl+u", "delete to line start"),
		DeleteToEnd:       b(ks("ctrl+k"), "ctrl+k", "delete to line end"),
		Undo:              b(ks("ctrl+z", "ctrl+_"), "ctrl+z", "undo"),
		Redo:              b(ks("ctrl+y"), "ctrl+y", "redo"),
		HistPrev:          b(ks("ctrl+p"), "ctrl+p", "older prompt (history)"),
		HistNext:          b(ks("ctrl+n"), "ctrl+n", "newer prompt"),
		Paste:             b(ks("ctrl+v"), "ctrl+v", "paste the clipboard"),

		GridHelp:  b(ks("?"), "?", "this help"),
		Up:        b(ks("up", "k"), "↑/k", "layer up"),
		Down:      b(ks("down", "j"), "↓/j", "layer down"),
		Left:      b(ks("left", "h"), "←/h", "token left"),
		Right:     b(ks("right"), "→", "token right"), // not l: l switches the lens (the key)
		Top:       b(ks("g"), "g", "output row"),
		Bottom:    b(ks("G"), "G", "embedding row"),
		Home:      b(ks("home"), "home", "first token"),
		End:       b(ks("end"), "end", "last token"),
		PageUp:    b(ks("pgup"), "pgup", "page up"),
		PageDown:  b(ks("pgdown"), "pgdn", "page down"),
		Fit:       b(ks("f"), "f", "fit height"),
		Metric:    b(ks("m"), "m", "colour metric"),
		Numbers:   b(ks("v"), "v", "tokens/values"),
		Scale:     b(ks("K"), "K", "kl/ce scale"),
		LockIn:    b(ks("L"), "L", "mark lock-in ▲"),
		Target:    b(ks("t"), "t", "pin target"),
		Sublayers: b(ks("s"), "s", "sublayers"),
		Lens:      b(ks("l"), "l", "logit ⇄ tuned lens"),
		BOS:       b(ks("b"), "b", "BOS"),
		Search:    b(ks("/"), "/", "find a top-1 token"),
		NextMatch: b(ks("n"), "n", "next match"),
		PrevMatch: b(ks("N"), "N", "previous match"),
		Jump:      b(ks(":"), ":", "go to layer/position"),
		TopKUp:    b(ks("["), "[", "scroll top-k up"),
		TopKDown:  b(ks("]"), "]", "scroll top-k down"),
		Copy:      b(ks("y"), "y", "copy top-1's text"),
		CopyJSON:  b(ks("Y"), "Y", "copy cell as JSON"),
		Export:    b(ks("e"), "e", "snapshot"),
		QuitGrid:  b(ks("q"), "q", "quit"),

		Compare:      b(ks("c"), "c", "compare"),
		Swap:         b(ks("x"), "x", "swap A and B"),
		LeaveCompare: b(ks("C"), "C", "leave compare"),

		Accept: b(ks("enter"), "enter", "accept"),
		Cancel: b(ks("esc"), "esc", "cancel"),

		HelpUp:   b(ks("up", "k"), "↑/k", "scroll help"),
		HelpDown: b(ks("down", "j"), "↓/j", "scroll help"),
		HelpPgUp: b(ks("pgup"), "pgup", "page up"),
		HelpPgDn: b(ks("pgdown", "space"), "pgdn", "page down"),
		HelpExit: b(ks("esc", "?", "q", "f1"), "esc/?/q", "close help"),
	}
}

// keyGroup is a titled list of bindings for the help overlay.
type keyGroup struct {
	title string
	keys  []key.Binding
}

// groups returns the help overlay's sections: global keys, the prompt,
// the grid, the one-line inputs, and the help overlay itself.
func (k KeyMap) groups() []keyGroup {
	return []keyGroup{
		{"anywhere", []key.Binding{k.Focus, k.FocusRev, k.Help, k.Quit}},
		{"prompt", []key.Binding{k.Leave, k.Newline, k.InsertTab, k.CharLeft, k.CharRight, k.WordLeft, k.WordRight,
			k.LineUp, k.LineDown, k.LineStart, k.LineEnd, k.TextStart, k.TextEnd, k.DeleteBack, k.DeleteForward,
			k.DeleteWordBack, k.DeleteWordForward, k.DeleteToStart, k.DeleteToEnd, k.Undo, k.Redo,
			k.HistPrev, k.HistNext, k.Paste}},
		{"grid: move", []key.Binding{k.Up, k.Down, k.Left, k.Right, k.Top, k.Bottom, k.Home, k.End, k.PageUp, k.PageDown}},
		{"grid: show", []key.Binding{k.GridHelp, k.Metric, k.Numbers, k.Scale, k.LockIn, k.Fit, k.Target, k.Sublayers, k.Lens, k.BOS, k.TopKUp, k.TopKDown}},
		{"grid: find", []key.Binding{k.Search, k.NextMatch, k.PrevMatch, k.Jump}},
		{"grid: act", []key.Binding{k.Copy, k.CopyJSON, k.Export, k.QuitGrid}},
		{"grid: compare", []key.Binding{k.Compare, k.Swap, k.LeaveCompare}},
		{"target, find, go to", []key.Binding{k.Accept, k.Cancel}},
		{"this help", []key.Binding{k.HelpUp, k.HelpDown, k.HelpPgUp, k.HelpPgDn, k.HelpExit}},
	}
}

// shortHelp returns the bindings of the status bar's hint for a focus.
func (k KeyMap) shortHelp(f focus) []key.Binding {
	switch f {
	case focusPrompt:
		return []key.Binding{k.Leave, k.Newline, k.HistPrev, k.Undo, k.Help}
	case focusInput:
		return []key.Binding{k.Accept, k.Cancel}
	case focusCompare:
		return []key.Binding{k.Leave, k.Undo, k.Help}
	}
	return []key.Binding{k.GridHelp, k.Metric, k.Target, k.Compare, k.QuitGrid}
}
