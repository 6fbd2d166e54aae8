package tui

import (
	"context"
	"strings"
	"time"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/export"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/theme"
)

// Smallest usable terminal; below it the explorer shows a notice instead.
const (
	minWidth  = 40
	minHeight = 10
)

// focus says which component receives the keyboard.
type focus int

const (
	focusPrompt focus = iota
	focusGrid
	focusTarget
)

// Model is the root model: it owns the message loop, the focus, the layout
// and the lens state, and hands each component what it draws.
type Model struct {
	opts Options
	ctx  context.Context // cancelled on quit: stops loading and lenses
	stop context.CancelFunc

	keys    KeyMap
	scale   *theme.Scale
	profile theme.Profile
	styles  Styles
	width   int
	height  int

	load      *loader
	downloads []inference.Progress
	loadErr   error
	backend   Backend
	info      inference.Info

	focus    focus
	prompt   prompt
	target   prompt
	grid     grid
	panel    panel
	status   statusBar
	help     helpView
	showHelp bool
	spin     spinner.Model

	bos        bool
	sublayers  bool
	topK       int
	targetID   int    // -1 for none
	targetText string // printable form of the pinned token
	metric     export.Metric

	gen         uint64             // generation of the newest lens request
	cancelLens  context.CancelFunc // cancels the running request
	pending     lensRequest        // the newest request's settings
	computing   bool
	data        *lensData
	lastElapsed time.Duration
	lastReused  int
	lensErr     string // why the newest lens failed; "" if it did not

	tokText map[int]string // printable token text, memoised
}

// newModel builds the root model; loading starts in Init.
func newModel(opts Options) *Model {
	ctx, stop := context.WithCancel(context.Background())
	m := &Model{
		opts: opts, ctx: ctx, stop: stop,
		keys:      DefaultKeyMap(),
		profile:   theme.TrueColor,
		bos:       opts.BOS,
		sublayers: opts.Sublayers,
		topK:      opts.TopK,
		targetID:  -1,
		tokText:   map[int]string{},
	}
	if m.topK <= 0 {
		m.topK = 10
	}
	m.topK = min(m.topK, inference.MaxTopK)
	scale, err := theme.Lookup(opts.Palette)
	if err != nil {
		scale = theme.Viridis
		m.status.setNotice(err.Error())
	}
	m.scale = scale
	m.styles = newStyles(m.scale, m.profile)
	m.prompt = newPrompt("› ", opts.Prompt, m.keys, m.styles)
	m.prompt.input.Placeholder = "type a prompt"
	m.prompt.Focus()
	m.target = newPrompt("target › ", "", m.keys, m.styles)
	m.spin = spinner.New(spinner.WithSpinner(spinner.Dot))
	m.help = newHelpView(m.keys, m.styles)
	m.status.model = opts.ModelID
	m.sync()
	return m
}

// Init starts loading the model.
func (m *Model) Init() tea.Cmd {
	l, cmd := startLoad(m.ctx, m.opts.Load)
	m.load = l
	return tea.Batch(cmd, m.spin.Tick)
}

// Update dispatches each message to its handler, then hands the components
// their new state. It never computes: work runs in commands.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.ColorProfileMsg:
		m.setProfile(theme.ProfileOf(msg.Profile))
	case tea.KeyPressMsg:
		cmd = m.handleKey(msg)
	case tea.PasteMsg:
		cmd = m.handlePaste(msg)
	case tea.MouseClickMsg:
		m.handleClick(msg)
	case tea.MouseWheelMsg:
		m.handleWheel(msg)
	case spinner.TickMsg:
		cmd = m.handleSpin(msg)
	case loadProgressMsg:
		cmd = m.handleLoadProgress(msg)
	case loadDoneMsg:
		cmd = m.handleLoadDone(msg)
	case lensDebounceMsg:
		cmd = m.handleLensDebounce(msg)
	case lensStreamMsg:
		cmd = m.handleLensStream(msg)
	case lensDoneMsg:
		cmd = m.handleLensDone(msg)
	case targetMsg:
		cmd = m.handleTarget(msg)
	case snapshotMsg:
		m.handleSnapshot(msg)
	}
	m.sync()
	return m, cmd
}

// setProfile rebuilds the styles for the terminal's colour profile.
func (m *Model) setProfile(p theme.Profile) {
	m.profile = p
	m.styles = newStyles(m.scale, p)
	m.prompt.input.SetStyles(m.styles.Input)
	m.target.input.SetStyles(m.styles.Input)
	m.help = newHelpView(m.keys, m.styles)
}

// handleSpin advances the spinner while something runs, and lets it stop
// otherwise so an idle explorer does not redraw.
func (m *Model) handleSpin(msg spinner.TickMsg) tea.Cmd {
	if !m.computing && (m.backend != nil || m.loadErr != nil) {
		return nil
	}
	var cmd tea.Cmd
	m.spin, cmd = m.spin.Update(msg)
	return cmd
}

// quit stops all work and ends the program.
func (m *Model) quit() tea.Cmd {
	m.stop()
	return tea.Quit
}

// handleKey routes a key by focus; ctrl+c quits from anywhere.
func (m *Model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	m.status.notice = ""
	if key.Matches(k, m.keys.Quit) {
		return m.quit()
	}
	if m.backend == nil {
		if m.loadErr != nil && key.Matches(k, m.keys.QuitGrid, m.keys.Cancel) {
			return m.quit()
		}
		return nil
	}
	if m.showHelp {
		if key.Matches(k, m.keys.Help, m.keys.Cancel, m.keys.QuitGrid) {
			m.showHelp = false
		}
		return nil
	}
	switch m.focus {
	case focusTarget:
		return m.targetKey(k)
	case focusPrompt:
		return m.promptKey(k)
	}
	return m.gridKey(k)
}

// promptKey handles a key while the prompt has focus: tab and enter go to
// the grid, f1 opens help, everything else edits.
func (m *Model) promptKey(k tea.KeyPressMsg) tea.Cmd {
	switch {
	case key.Matches(k, m.keys.Focus):
		m.setFocus(focusGrid)
		return nil
	case key.Matches(k, m.keys.Submit):
		m.prompt.Submit()
		m.setFocus(focusGrid)
		return nil
	case key.Matches(k, m.keys.Help) && k.Text == "":
		// "?" is text in the prompt; only f1 opens help here.
		m.showHelp = true
		return nil
	}
	return m.editPrompt(k)
}

// editPrompt passes a message to the prompt editor and recomputes on change.
func (m *Model) editPrompt(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	var changed bool
	m.prompt, cmd, changed = m.prompt.Update(msg)
	if changed {
		return tea.Batch(cmd, m.requestLens())
	}
	return cmd
}

// handlePaste inserts pasted text into the focused editor.
func (m *Model) handlePaste(msg tea.PasteMsg) tea.Cmd {
	switch m.focus {
	case focusPrompt:
		if m.backend != nil {
			return m.editPrompt(msg)
		}
	case focusTarget:
		var cmd tea.Cmd
		m.target, cmd, _ = m.target.Update(msg)
		return cmd
	}
	return nil
}

// gridKey handles navigation and actions while the grid has focus.
func (m *Model) gridKey(k tea.KeyPressMsg) tea.Cmd {
	g := &m.grid
	km := m.keys
	switch {
	case key.Matches(k, km.Focus):
		m.setFocus(focusPrompt)
	case key.Matches(k, km.Help):
		m.showHelp = true
	case key.Matches(k, km.QuitGrid):
		return m.quit()
	case key.Matches(k, km.Up):
		g.move(-1, 0)
	case key.Matches(k, km.Down):
		g.move(1, 0)
	case key.Matches(k, km.Left):
		g.move(0, -1)
	case key.Matches(k, km.Right):
		g.move(0, 1)
	case key.Matches(k, km.Top):
		g.moveTo(g.rows-1, g.col)
	case key.Matches(k, km.Bottom):
		g.moveTo(0, g.col)
	case key.Matches(k, km.Home):
		g.moveTo(g.row, 0)
	case key.Matches(k, km.End):
		g.moveTo(g.row, g.cols-1)
	case key.Matches(k, km.PageUp):
		g.move(-g.bodyHeight(), 0)
	case key.Matches(k, km.PageDown):
		g.move(g.bodyHeight(), 0)
	case key.Matches(k, km.Fit):
		g.fit = !g.fit
		g.ensureVisible()
		if g.fit {
			m.status.setNotice("fit height: rows strided, output row kept")
		}
	case key.Matches(k, km.Metric):
		m.metric = m.metric.Next(m.targetID >= 0)
		m.status.setNotice("colour: " + m.metric.Label())
	case key.Matches(k, km.Numbers):
		g.numbers = !g.numbers
	case key.Matches(k, km.Target):
		m.target.SetValue(m.opts.Target)
		m.setFocus(focusTarget)
	case key.Matches(k, km.Sublayers):
		m.sublayers = !m.sublayers
		m.status.setNotice(onOff("sublayer rows", m.sublayers))
		return m.requestLens()
	case key.Matches(k, km.BOS):
		m.bos = !m.bos
		m.status.setNotice(onOff("BOS <|endoftext|>", m.bos))
		return m.requestLens()
	case key.Matches(k, km.Copy):
		return m.copyCell()
	case key.Matches(k, km.Export):
		return m.snapshot()
	}
	return nil
}

func onOff(what string, on bool) string {
	if on {
		return what + " on"
	}
	return what + " off"
}

// setFocus moves the keyboard to a component.
func (m *Model) setFocus(f focus) {
	m.focus = f
	m.prompt.Blur()
	m.target.Blur()
	switch f {
	case focusPrompt:
		m.prompt.Focus()
	case focusTarget:
		m.target.Focus()
	}
}

// regions is where each component sits on the screen.
type regions struct {
	gridX, gridY, gridW, gridH     int
	panelX, panelY, panelW, panelH int
	side                           bool
}

// layout places the grid and the panel between the prompt line and the
// status line: the panel to the right from 100 columns, else below the grid,
// taking what the grid does not need.
func (m *Model) layout() regions {
	body := max(0, m.height-2)
	if m.width >= 100 {
		pw := clampInt(m.width*3/10, 34, 48)
		return regions{gridX: 0, gridY: 1, gridW: m.width - pw - 1, gridH: body,
			panelX: m.width - pw, panelY: 1, panelW: pw, panelH: body, side: true}
	}
	need := m.grid.rows + 1
	ph := clampInt(body-need-1, min(8, body/2), 12)
	ph = clampInt(ph, 0, max(0, body-3))
	gh := body - ph
	return regions{gridX: 0, gridY: 1, gridW: m.width, gridH: gh,
		panelX: 0, panelY: 1 + gh, panelW: m.width, panelH: ph}
}

// sync hands every component the state it draws.
func (m *Model) sync() {
	r := m.layout()
	m.prompt.SetWidth(m.width)
	m.target.SetWidth(m.width)
	m.grid.data, m.grid.styles, m.grid.metric, m.grid.text = m.data, m.styles, m.metric, m.tokenText
	m.grid.resize(r.gridW, r.gridH)
	m.panel = panel{data: m.data, styles: m.styles, metric: m.metric, text: m.tokenText,
		row: m.grid.row, col: m.grid.col, targetText: m.targetText, side: r.side, note: m.info.Note}
	if !m.computing {
		m.panel.err = m.lensErr
	}
	m.status.styles = m.styles
	m.status.computing = m.computing
	m.status.spinner = m.spin.View()
	m.status.tokens = 0
	if m.data != nil {
		m.status.tokens = m.data.columns()
	}
	m.status.elapsed, m.status.reused = m.lastElapsed, m.lastReused
	h, f := m.help, m.focus
	m.status.hint = func(w int) string { return h.short(f, w) }
}

// tokenText returns the printable text of a token id.
func (m *Model) tokenText(id int) string {
	if s, ok := m.tokText[id]; ok {
		return s
	}
	var s string
	if m.backend != nil {
		_ = protect(func() error { s = display.Token(m.backend.TokenBytes(id)); return nil })
	}
	m.tokText[id] = s
	return s
}

// View draws the whole screen.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "logitlens · " + m.status.model
	if m.backend != nil && !m.showHelp && m.width >= minWidth && m.height >= minHeight {
		switch m.focus {
		case focusPrompt:
			_, v.Cursor = m.prompt.View(m.width)
		case focusTarget:
			_, v.Cursor = m.target.View(m.width)
			if v.Cursor != nil {
				v.Cursor.Y = m.height - 1
			}
		}
	}
	return v
}

// render draws the screen's text.
func (m *Model) render() string {
	w, h := m.width, m.height
	switch {
	case w <= 0 || h <= 0:
		return ""
	case w < minWidth || h < minHeight:
		msg := m.styles.Warn.Render("terminal too small") + "\n" +
			m.styles.Muted.Render("needs 40×10")
		return block(lipgloss.Place(w, h, lipgloss.Center, lipgloss.Center, msg), w, h)
	case m.backend == nil:
		return block(m.loadingView(w, h), w, h)
	}
	r := m.layout()
	promptLine, _ := m.prompt.View(w)
	var body string
	switch {
	case m.showHelp:
		body = m.help.View(w, h-2)
	case r.side:
		gridBlock := block(m.gridView(r.gridW, r.gridH), r.gridW, r.gridH)
		rule := strings.TrimSuffix(strings.Repeat(m.styles.Muted.Render("│")+"\n", r.gridH), "\n")
		body = lipgloss.JoinHorizontal(lipgloss.Top, gridBlock, rule, block(m.panel.View(r.panelW, r.panelH), r.panelW, r.panelH))
	default:
		body = block(m.gridView(r.gridW, r.gridH), w, r.gridH)
		if r.panelH > 0 {
			body += "\n" + m.styles.Muted.Render(strings.Repeat("─", w))
			if r.panelH > 1 {
				body += "\n" + block(m.panel.View(w, r.panelH-1), w, r.panelH-1)
			}
		}
	}
	bottom := m.status.View(w, 1)
	if m.focus == focusTarget {
		bottom, _ = m.target.View(w)
	}
	return block(promptLine, w, 1) + "\n" + block(body, w, h-2) + "\n" + block(bottom, w, 1)
}

// gridView draws the grid, or a hint while there is nothing to show.
func (m *Model) gridView(w, h int) string {
	if m.data == nil || m.data.columns() == 0 {
		if m.computing {
			return m.styles.Muted.Render("  computing…")
		}
		return m.styles.Muted.Render("  type a prompt above; tab moves to the grid, ? shows the keys")
	}
	return m.grid.View(w, h)
}

// block pads or cuts s to exactly w×h cells.
func block(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	for i, l := range lines {
		lines[i] = fitStyled(l, w)
	}
	return strings.Join(lines, "\n")
}
