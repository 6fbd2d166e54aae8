package tui

import (
	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
)

// helpView is the overlay listing every key, generated from the KeyMap by
// bubbles help so that it always matches what Update does.
type helpView struct {
	model  help.Model
	keys   focusedKeys
	styles Styles
}

// newHelpView returns the overlay for a key map.
func newHelpView(keys KeyMap, st Styles) helpView {
	h := help.New()
	h.Styles = st.Help
	h.ShowAll = true
	return helpView{model: h, keys: focusedKeys{k: keys}, styles: st}
}

// short renders the one-line hint for the status bar.
func (h helpView) short(f focus, width int) string {
	h.model.SetWidth(width)
	return h.model.ShortHelpView(focusedKeys{k: h.keys.k, focus: f}.ShortHelp())
}

// View draws the overlay centred in width×height cells.
func (h helpView) View(width, height int) string {
	h.model.SetWidth(max(10, width-4))
	body := h.styles.Title.Render("logitlens keys") + "\n\n" +
		h.model.FullHelpView(h.keys.FullHelp()) + "\n\n" +
		h.styles.Muted.Render("? or esc closes this help")
	box := h.styles.Box.MaxWidth(width).MaxHeight(height).Render(body)
	return lipgloss.Place(width, height, lipgloss.Center, lipgloss.Center, box)
}
