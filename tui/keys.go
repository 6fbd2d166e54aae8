package tui

import (
	"charm.land/bubbles/v2/key"
)

// KeyMap holds every binding of the explorer with its help text, grouped by
// the focus in which it applies. Update matches keys only through it, so the
// help overlay cannot drift from what the keys do.
type KeyMap struct {
	// Anywhere.
	Quit  key.Binding // ctrl+c
	Focus key.Binding // tab: prompt ⇄ grid
	Help  key.Binding // ? in the grid, f1 anywhere

	// Prompt editor. The editing keys themselves belong to bubbles
	// textinput; these entries document them for the help overlay.
	Submit   key.Binding
	HistPrev key.Binding
	HistNext key.Binding
	Undo     key.Binding
	WordJump key.Binding
	Paste    key.Binding

	// Grid.
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
	Target    key.Binding
	Sublayers key.Binding
	BOS       key.Binding
	Copy      key.Binding
	Export    key.Binding
	QuitGrid  key.Binding

	// Target editor.
	Accept key.Binding
	Cancel key.Binding
}

// DefaultKeyMap returns the explorer's bindings.
func DefaultKeyMap() KeyMap {
	return KeyMap{
		Quit:  key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
		Focus: key.NewBinding(key.WithKeys("tab", "shift+tab"), key.WithHelp("tab", "prompt/grid")),
		Help:  key.NewBinding(key.WithKeys("?", "f1"), key.WithHelp("?", "help")),

		Submit:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "to grid")),
		HistPrev: key.NewBinding(key.WithKeys("up", "ctrl+p"), key.WithHelp("↑", "older prompt")),
		HistNext: key.NewBinding(key.WithKeys("down", "ctrl+n"), key.WithHelp("↓", "newer prompt")),
		Undo:     key.NewBinding(key.WithKeys("ctrl+z", "ctrl+_"), key.WithHelp("ctrl+z", "undo edit")),
		WordJump: key.NewBinding(key.WithKeys("alt+left", "alt+right"), key.WithHelp("alt+←/→", "word jump")),
		Paste:    key.NewBinding(key.WithKeys("ctrl+v"), key.WithHelp("ctrl+v", "paste")),

		Up:        key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "layer up")),
		Down:      key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "layer down")),
		Left:      key.NewBinding(key.WithKeys("left", "h"), key.WithHelp("←/h", "token left")),
		Right:     key.NewBinding(key.WithKeys("right", "l"), key.WithHelp("→/l", "token right")),
		Top:       key.NewBinding(key.WithKeys("g"), key.WithHelp("g", "output row")),
		Bottom:    key.NewBinding(key.WithKeys("G"), key.WithHelp("G", "embedding row")),
		Home:      key.NewBinding(key.WithKeys("home"), key.WithHelp("home", "first token")),
		End:       key.NewBinding(key.WithKeys("end"), key.WithHelp("end", "last token")),
		PageUp:    key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up")),
		PageDown:  key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "page down")),
		Fit:       key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "fit height")),
		Metric:    key.NewBinding(key.WithKeys("m"), key.WithHelp("m", "colour metric")),
		Numbers:   key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "tokens/numbers")),
		Target:    key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "pin target")),
		Sublayers: key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sublayers")),
		BOS:       key.NewBinding(key.WithKeys("b"), key.WithHelp("b", "BOS")),
		Copy:      key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "copy cell")),
		Export:    key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "snapshot")),
		QuitGrid:  key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),

		Accept: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "pin (empty clears)")),
		Cancel: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
	}
}

// focusedKeys presents the bindings of one focus to bubbles help.
type focusedKeys struct {
	k     KeyMap
	focus focus
}

// ShortHelp returns the bindings shown in the status bar hint.
func (f focusedKeys) ShortHelp() []key.Binding {
	k := f.k
	switch f.focus {
	case focusPrompt:
		return []key.Binding{k.Focus, k.Submit, k.HistPrev, k.Undo, k.Quit}
	case focusTarget:
		return []key.Binding{k.Accept, k.Cancel}
	}
	return []key.Binding{k.Help, k.Metric, k.Target, k.QuitGrid}
}

// FullHelp returns the help overlay's columns: grid navigation, grid
// actions, then prompt editing with the global keys. Three columns fit an
// 80-column terminal.
func (f focusedKeys) FullHelp() [][]key.Binding {
	k := f.k
	return [][]key.Binding{
		{k.Up, k.Down, k.Left, k.Right, k.Top, k.Bottom, k.Home, k.End, k.PageUp, k.PageDown},
		{k.Metric, k.Numbers, k.Fit, k.Target, k.Sublayers, k.BOS, k.Copy, k.Export, k.QuitGrid},
		{k.Focus, k.Help, k.Quit, k.Cancel, k.Submit, k.HistPrev, k.HistNext, k.Undo, k.WordJump, k.Paste},
	}
}
