package tui

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/export"
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
	focusInput
	focusCompare // run B's prompt (compare mode)
)

// Model is the root model: it owns the message loop, the focus and the
// layout and the lens state, and hands each component what it draws.
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

	focus     focus
	prompt    prompt
	input     prompt    // the one-line input (target, find, go to)
	inputKind inputKind // what the input is for
	query     string    // the last token searched for (/)
	topScroll int       // first top-k entry the panel shows
	grid      grid
	panel     panel
	status    statusBar
	help      helpView
	showHelp  bool
	spin      spinner.Model

	bos        bool
	sublayers  bool
	topK       int
	targetID   int    // -1 for none
	targetText string // printable form of the pinned token
	metric     export.Metric
	fixed      bool // kl and ce on 0..ln V
	noNext     bool // the backend computes no next-token statistics

	gen         uint64             // generation of the newest lens request
	cancelLens  context.CancelFunc // cancels the running request
	pending     lensRequest        // the newest request's settings
	settling    view               // a view waiting to rest before the lens restarts for it
	computing   bool
	data        *lensData
	lastElapsed time.Duration
	lastReused  int
	lensErr     string            // why the newest lens failed; "" if it did not
	snaps       []waitingSnapshot // snapshots waiting for their lens
	quitArmed   bool              // quit was asked once while snapshots waited

	tl tunedState // the tuned lens: l switches to it (tuned.go)

	tokText map[int]string // printable token text, memoised
	tokRaw  map[int]string // raw token bytes, memoised

	cmp compareState // compare mode (compare.go)
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
		tl:        tunedState{on: opts.Tuned},
		tokText:   map[int]string{},
		tokRaw:    map[int]string{},
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
	m.metric, m.fixed = opts.Metric, opts.FixedScale
	if m.metric == export.MetricTarget && opts.Target == "" {
		m.metric = export.MetricProb
	}
	if opts.CellWidth != 0 {
		m.grid.cellWidth = clampInt(opts.CellWidth, MinCellWidth, MaxCellWidth)
	}
	initial := opts.Prompt
	if len(initial) > MaxPromptBytes {
		initial = cutUTF8(initial, MaxPromptBytes)
		m.status.setNotice("the prompt was cut to " + display.Bytes(MaxPromptBytes) + ", the explorer's limit")
	}
	m.prompt = newPrompt("› ", initial, m.keys, m.styles)
	m.prompt.placeholder = "type a prompt (enter: new line · tab: grid · f1: keys)"
	m.prompt.Focus()
	m.input = newPrompt(inputLabels[inputTarget], "", m.keys, m.styles)
	m.input.single = true
	m.input.limit = 1 << 10
	m.spin = spinner.New(spinner.WithSpinner(spinner.Dot))
	m.help = helpView{keys: m.keys, styles: m.styles}
	m.status.model = display.Safe(opts.ModelID)
	m.initCompare()
	m.sync()
	return m
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Init starts loading the model and reading the prompt history.
func (m *Model) Init() tea.Cmd {
	l, cmd := startLoad(m.ctx, m.opts.Load)
	m.load = l
	cmds := []tea.Cmd{cmd, m.spin.Tick}
	if m.opts.HistoryFile != "" {
		cmds = append(cmds, loadHistory(m.opts.HistoryFile))
	}
	return tea.Batch(cmds...)
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
	case tea.ModeReportMsg:
		m.handleModeReport(msg)
	case tea.KeyPressMsg:
		cmd = m.handleKey(msg)
	case tea.PasteMsg:
		cmd = m.handlePaste(msg)
	case clipboardMsg:
		cmd = m.handleClipboard(msg)
	case copiedMsg:
		cmd = m.handleCopied(msg)
	case tea.MouseClickMsg:
		cmd = m.handleClick(msg)
	case tea.MouseWheelMsg:
		m.handleWheel(msg)
	case spinner.TickMsg:
		cmd = m.handleSpin(msg)
	case loadProgressMsg:
		cmd = m.handleLoadProgress(msg)
	case loadDoneMsg:
		cmd = m.handleLoadDone(msg)
	case historyMsg:
		m.handleHistory(msg)
	case historySavedMsg:
		m.status.setNotice("history not saved: " + msg.err.Error())
	case lensDebounceMsg:
		cmd = m.handleLensDebounce(msg)
	case viewSettledMsg:
		cmd = m.handleViewSettled(msg)
	case lensStreamMsg:
		cmd = m.handleLensStream(msg)
	case lensDoneMsg:
		cmd = tea.Batch(m.handleLensDone(msg), m.afterLens(msg))
	case compareDebounceMsg:
		cmd = m.handleCompareDebounce(msg)
	case compareDoneMsg:
		m.handleCompareDone(msg)
	case tunedProgressMsg:
		cmd = m.handleTunedProgress(msg)
	case tunedLoadedMsg:
		cmd = m.handleTunedLoaded(msg)
	case otherLensMsg:
		m.handleOtherLens(msg)
	case targetMsg:
		cmd = m.handleTarget(msg)
	case snapshotMsg:
		cmd = m.handleSnapshot(msg)
	}
	m.sync()
	if re := m.reprioritize(); re != nil {
		cmd = tea.Batch(cmd, re)
	}
	return m, cmd
}

// setProfile rebuilds the styles for the terminal's colour profile.
func (m *Model) setProfile(p theme.Profile) {
	m.profile = p
	m.styles = newStyles(m.scale, p)
	m.prompt.SetStyles(m.styles)
	m.input.SetStyles(m.styles)
	m.cmp.prompt.SetStyles(m.styles)
	m.help.styles = m.styles
}

// handleModeReport learns how the terminal measures characters: one that
// supports mode 2027 makes the renderer measure grapheme clusters, and the
// prompt editor must measure as the renderer does for the cursor to sit
// after wide and combining characters.
func (m *Model) handleModeReport(msg tea.ModeReportMsg) {
	if msg.Mode == ansi.ModeUnicodeCore && (msg.Value == ansi.ModeReset || msg.Value == ansi.ModeSet || msg.Value == ansi.ModePermanentlySet) {
		m.prompt.SetMethod(ansi.GraphemeWidth)
		m.input.SetMethod(ansi.GraphemeWidth)
		m.cmp.prompt.SetMethod(ansi.GraphemeWidth)
	}
}

// handleHistory adds the history read from disk before this session's
// entries.
func (m *Model) handleHistory(msg historyMsg) {
	if msg.err != nil {
		m.status.setNotice("history not read: " + msg.err.Error())
		return
	}
	m.prompt.SetHistory(msg.entries)
}

// handleSpin advances the spinner while something runs, and lets it stop
// otherwise so an idle explorer does not redraw.
func (m *Model) handleSpin(msg spinner.TickMsg) tea.Cmd {
	if !m.computing && !m.cmp.computing && (m.backend != nil || m.loadErr != nil) {
		return nil
	}
	var cmd tea.Cmd
	m.spin, cmd = m.spin.Update(msg)
	return cmd
}

// quit records the prompt in the history, stops all work and ends the
// program. The history is written before the program ends.
func (m *Model) quit() tea.Cmd {
	if len(m.snaps) > 0 && !m.quitArmed {
		// Quitting now would lose a snapshot's lens files: say so once.
		m.quitArmed = true
		m.status.setLasting("a snapshot waits for this lens to write "+m.snaps[0].base+".json, .svg and .html: q or ctrl+c again quits without them", lastingNotice)
		return nil
	}
	save := m.recordPrompt()
	m.stop()
	if save != nil {
		return tea.Sequence(func() tea.Msg { save(); return nil }, tea.Quit)
	}
	return tea.Quit
}

// recordPrompt adds the prompt to the history and returns the command that
// saves it, or nil.
func (m *Model) recordPrompt() tea.Cmd {
	if !m.prompt.Record() || m.opts.HistoryFile == "" {
		return nil
	}
	return saveHistory(m.opts.HistoryFile, m.prompt.Value())
}

// handleKey routes a key by focus; ctrl+c quits from anywhere.
func (m *Model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	m.status.keyPressed()
	if key.Matches(k, m.keys.Quit) {
		return m.quit()
	}
	if m.backend == nil {
		switch {
		case m.loadErr != nil && key.Matches(k, m.keys.QuitGrid, m.keys.Cancel):
			return m.quit()
		case m.loadErr == nil && m.focus == focusPrompt && !key.Matches(k, m.keys.Focus, m.keys.FocusRev, m.keys.Leave, m.keys.Help):
			// The prompt can be written while the model loads; its
			// lens starts when the model is ready.
			return m.editPrompt(k)
		}
		return nil
	}
	if m.showHelp {
		m.helpKey(k)
		return nil
	}
	if key.Matches(k, m.keys.Help) {
		m.openHelp()
		return nil
	}
	switch m.focus {
	case focusInput:
		return m.inputKey(k)
	case focusPrompt:
		return m.promptKey(k)
	case focusCompare:
		return m.compareKey(k)
	}
	return m.gridKey(k)
}

// openHelp shows the help overlay from its top.
func (m *Model) openHelp() {
	m.showHelp = true
	m.help.scroll = 0
}

// helpKey scrolls or closes the help overlay.
func (m *Model) helpKey(k tea.KeyPressMsg) {
	w, h := m.helpArea()
	page := m.help.pageLines(h)
	switch {
	case key.Matches(k, m.keys.HelpExit):
		m.showHelp = false
	case key.Matches(k, m.keys.HelpUp):
		m.help.scrollBy(-1, w, h)
	case key.Matches(k, m.keys.HelpDown):
		m.help.scrollBy(1, w, h)
	case key.Matches(k, m.keys.HelpPgUp):
		m.help.scrollBy(-page, w, h)
	case key.Matches(k, m.keys.HelpPgDn):
		m.help.scrollBy(page, w, h)
	}
}

// promptKey handles a key while the prompt has focus: tab, shift+tab and
// esc go to the grid, ctrl+v pastes the clipboard, everything else edits.
func (m *Model) promptKey(k tea.KeyPressMsg) tea.Cmd {
	switch {
	case key.Matches(k, m.keys.Focus, m.keys.FocusRev, m.keys.Leave):
		return m.setFocus(focusGrid)
	case key.Matches(k, m.keys.Paste):
		return m.pasteClipboard()
	}
	return m.editPrompt(k)
}

// editPrompt passes a message to the prompt editor and recomputes on change.
func (m *Model) editPrompt(msg tea.Msg) tea.Cmd {
	res := m.prompt.Update(msg)
	if res.notice != "" {
		m.status.setNotice(res.notice)
	}
	if res.changed {
		return m.requestLens()
	}
	return nil
}

// handlePaste inserts pasted text into the focused editor.
func (m *Model) handlePaste(msg tea.PasteMsg) tea.Cmd {
	switch m.focus {
	case focusPrompt:
		if m.loadErr == nil {
			return m.editPrompt(msg)
		}
	case focusInput:
		if res := m.input.Update(msg); res.notice != "" {
			m.status.setNotice(res.notice)
		}
	case focusCompare:
		return m.editCompare(msg)
	}
	return nil
}

// gridKey handles navigation and actions while the grid has focus.
func (m *Model) gridKey(k tea.KeyPressMsg) tea.Cmd {
	if cmd, ok := m.compareGridKey(k); ok {
		return cmd
	}
	g := &m.grid
	km := m.keys
	switch {
	case key.Matches(k, km.Focus, km.FocusRev):
		return m.setFocus(focusPrompt)
	case key.Matches(k, km.GridHelp):
		m.openHelp()
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
	case key.Matches(k, km.LockIn):
		g.locks = !g.locks
		if g.locks {
			m.status.setNotice("▲ marks each column's lock-in row (L hides them)")
		}
	case key.Matches(k, km.Scale):
		m.fixed = !m.fixed
		if m.fixed {
			m.status.setNotice("kl and ce on a fixed scale, 0 to ln V: lenses compare by eye")
		} else {
			m.status.setNotice("kl and ce scaled to this lens's largest value")
		}
	case key.Matches(k, km.Target):
		return m.openInput(inputTarget, m.opts.Target)
	case key.Matches(k, km.Search):
		return m.openInput(inputSearch, "")
	case key.Matches(k, km.NextMatch):
		m.stepMatch(+1)
	case key.Matches(k, km.PrevMatch):
		m.stepMatch(-1)
	case key.Matches(k, km.Jump):
		return m.openInput(inputJump, "")
	case key.Matches(k, km.CopyJSON):
		return m.copyCellJSON()
	case key.Matches(k, km.TopKUp):
		m.scrollTopK(-m.topKPage())
	case key.Matches(k, km.TopKDown):
		m.scrollTopK(m.topKPage())
	case key.Matches(k, km.Lens):
		return m.toggleLens()
	case key.Matches(k, km.Sublayers) && m.tl.active() != nil:
		m.status.setNotice("sublayer rows are hidden with the tuned lens: it has translators only for block outputs (l: logit lens)")
		return nil
	case key.Matches(k, km.Sublayers):
		m.sublayers = !m.sublayers
		m.status.setNotice(onOff("sublayer rows", m.sublayers))
		return m.requestLens()
	case key.Matches(k, km.BOS):
		m.bos = !m.bos
		m.status.setNotice(onOff("BOS <|endoftext|>", m.bos))
		return m.requestLens()
	case key.Matches(k, km.Copy):
		return m.copyTop1()
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

// setFocus moves the keyboard to a component. Leaving the prompt records
// it in the history; the returned command saves the history.
func (m *Model) setFocus(f focus) tea.Cmd {
	var cmd tea.Cmd
	if m.focus == focusPrompt && f != focusPrompt {
		cmd = m.recordPrompt()
	}
	m.focus = f
	m.prompt.Blur()
	m.input.Blur()
	m.cmp.prompt.Blur()
	switch f {
	case focusPrompt:
		m.prompt.Focus()
	case focusInput:
		m.input.Focus()
	case focusCompare:
		m.cmp.prompt.Focus()
	}
	return cmd
}

// topKPage is how far [ and ] scroll the top-k list: a few entries, fewer
// than the panel shows on the smallest screen, so none is skipped.
func (m *Model) topKPage() int { return 4 }

// scrollTopK moves the panel's top-k list by n entries.
func (m *Model) scrollTopK(n int) {
	m.topScroll = clampInt(m.topScroll+n, 0, max(0, m.topK-1))
}

// regions is where each component sits on the screen.
type regions struct {
	promptH, statusH               int
	compareH                       int // run B's prompt, under A's, in compare mode
	bodyY, bodyH                   int
	gridX, gridY, gridW, gridH     int
	panelX, panelY, panelW, panelH int
	side                           bool
}

// promptRows is how many lines the prompt may take at a screen height: it
// grows with its text up to about a quarter of the screen.
func promptRows(height int) int { return clampInt((height-2)/4, 1, 8) }

// layout places the prompt at the top (as many lines as its text needs, up
// to promptRows), the status line at the bottom, and the grid and the
// panel between them: the panel to the right from 100 columns, else below
// the grid, taking what the grid does not need (at least 8 lines, or half
// the height).
func (m *Model) layout() regions {
	m.prompt.SetWidth(m.width)
	ph := clampInt(m.prompt.Rows(), 1, promptRows(m.height))
	sh := 1
	if m.focus != focusInput {
		sh = len(m.status.Lines(m.width))
	}
	bh := m.compareRows()
	body := max(0, m.height-ph-bh-sh)
	r := regions{promptH: ph, statusH: sh, compareH: bh, bodyY: ph + bh, bodyH: body}
	ph += bh // the grid and the panel start under both prompts
	if m.width >= 100 {
		pw := clampInt(m.width*3/10, 34, 48)
		r.gridX, r.gridY, r.gridW, r.gridH = 0, ph, m.width-pw-1, body
		r.panelX, r.panelY, r.panelW, r.panelH, r.side = m.width-pw, ph, pw, body, true
		return r
	}
	need := m.grid.rows + 2 // the rows and the two header lines
	panelH := max(body-need-1, min(8, body/2))
	panelH = clampInt(panelH, 0, max(0, body-3))
	gh := body - panelH
	r.gridX, r.gridY, r.gridW, r.gridH = 0, ph, m.width, gh
	r.panelX, r.panelY, r.panelW, r.panelH = 0, ph+gh, m.width, panelH
	return r
}

// helpArea is the size of the region the help overlay covers.
func (m *Model) helpArea() (int, int) {
	r := m.layout()
	if helpCoversAll(r) {
		return m.width, m.height - r.statusH
	}
	return m.width, r.bodyH
}

// helpMinBody is the least height the help overlay takes over the grid
// and the panel alone; on a shorter screen it covers the prompts too.
const helpMinBody = 12

// helpCoversAll reports whether the help overlay covers the prompts as
// well as the body: when the body is too short to show a page of keys.
func helpCoversAll(r regions) bool { return r.bodyH < helpMinBody }

// sync hands every component the state it draws.
func (m *Model) sync() {
	m.syncStatus()
	r := m.layout()
	m.input.SetWidth(m.width)
	m.grid.data, m.grid.styles, m.grid.metric, m.grid.text, m.grid.fixed = m.data, m.styles, m.metric, m.tokenText, m.fixed
	m.grid.resize(r.gridW, r.gridH)
	m.panel = panel{data: m.data, styles: m.styles, metric: m.metric, fixed: m.fixed, text: m.tokenText,
		row: m.grid.row, col: m.grid.col, scroll: m.topScroll, targetText: m.targetText, side: r.side, note: display.Safe(m.info.Note),
		other: m.otherLine(m.grid.row, m.grid.col)}
	if !m.computing {
		m.panel.err = m.lensErr
	}
}

// syncStatus hands the status bar its state.
func (m *Model) syncStatus() {
	m.status.styles = m.styles
	m.status.lens = m.lensName()
	m.status.computing = m.computing || m.cmp.computing
	m.status.spinner = m.spin.View()
	m.status.tokens, m.status.total, m.status.capped = 0, 0, false
	if m.data != nil {
		m.status.tokens, m.status.total, m.status.capped = m.data.columns(), m.data.total, m.data.capped
	}
	m.status.elapsed, m.status.reused = m.lastElapsed, m.lastReused
	h, f := m.help, m.focus
	m.status.hint = func(w int) string { return h.short(f, w) }
	m.syncCompare()
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

// tokenRaw returns the raw bytes of a token id.
func (m *Model) tokenRaw(id int) string {
	if s, ok := m.tokRaw[id]; ok {
		return s
	}
	var s string
	if m.backend != nil {
		_ = protect(func() error { s = string(m.backend.TokenBytes(id)); return nil })
	}
	m.tokRaw[id] = s
	return s
}

// View draws the whole screen.
func (m *Model) View() tea.View {
	content, cursor := m.render()
	v := tea.NewView(content)
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "logitlens · " + m.status.model
	v.Cursor = cursor
	return v
}

// render draws the screen's text and says where the terminal cursor goes
// (nil for none).
func (m *Model) render() (string, *tea.Cursor) {
	w, h := m.width, m.height
	switch {
	case w <= 0 || h <= 0:
		return "", nil
	case w < minWidth || h < minHeight:
		msg := m.styles.Warn.Render("terminal too small") + "\n" +
			m.styles.Muted.Render("needs 40×10")
		return block(lipgloss.Place(w, h, lipgloss.Center, lipgloss.Center, msg), w, h), nil
	case m.backend == nil && m.loadErr != nil:
		return block(m.loadingView(w, h), w, h), nil
	}
	r := m.layout()
	// The prompt's lines are exactly w cells as the terminal measures
	// them: they are not padded again (lipgloss may measure differently).
	promptLines, cursor := m.prompt.View(w, r.promptH)
	if r.compareH > 0 {
		bLines, bCursor := m.cmp.prompt.View(w, r.compareH)
		promptLines += "\n" + bLines
		if m.focus == focusCompare && bCursor != nil {
			bCursor.Y += r.promptH
			cursor = bCursor
		}
	}
	if m.backend == nil {
		// Loading: the prompt can be written meanwhile.
		return promptLines + "\n" + block(m.loadingView(w, h-r.promptH), w, h-r.promptH), cursor
	}
	var body string
	if r.side {
		gridBlock := block(m.gridView(r.gridW, r.gridH), r.gridW, r.gridH)
		rule := strings.TrimSuffix(strings.Repeat(m.styles.Muted.Render("│")+"\n", r.gridH), "\n")
		body = lipgloss.JoinHorizontal(lipgloss.Top, gridBlock, rule, block(m.panelView(r.panelW, r.panelH), r.panelW, r.panelH))
	} else {
		body = block(m.gridView(r.gridW, r.gridH), w, r.gridH)
		if r.panelH > 0 {
			body += "\n" + m.styles.Muted.Render(strings.Repeat("─", w))
			if r.panelH > 1 {
				body += "\n" + block(m.panelView(w, r.panelH-1), w, r.panelH-1)
			}
		}
	}
	body = block(body, w, r.bodyH)
	if m.showHelp {
		cursor = nil
		if hw, hh := m.helpArea(); helpCoversAll(r) {
			all := strings.Split(overlay(promptLines+"\n"+body, m.help.View(hw, hh), hw, hh), "\n")
			n := r.promptH + r.compareH
			promptLines, body = strings.Join(all[:n], "\n"), strings.Join(all[n:], "\n")
		} else {
			body = overlay(body, m.help.View(w, r.bodyH), w, r.bodyH)
		}
	}
	bottom := m.status.View(w, r.statusH)
	if m.focus == focusInput {
		var tc *tea.Cursor
		bottom, tc = m.input.View(w, 1)
		if tc != nil && !m.showHelp {
			tc.Y = h - 1
			cursor = tc
		}
	} else if m.focus != focusPrompt && m.focus != focusCompare {
		cursor = nil
	}
	return promptLines + "\n" + body + "\n" + bottom, cursor
}

// panelView draws the panel: the cursor cell's, or in compare mode the
// aligned cell's.
func (m *Model) panelView(w, h int) string {
	if m.cmp.on {
		return m.comparePanelView(w, h)
	}
	return m.panel.View(w, h)
}

// gridView draws the grid, or a hint while there is nothing to show.
func (m *Model) gridView(w, h int) string {
	if m.cmp.on && m.data != nil && m.data.columns() > 0 {
		return m.compareGridView(w, h)
	}
	if m.data == nil || m.data.columns() == 0 {
		if m.computing {
			return m.styles.Muted.Render("  computing…")
		}
		if m.prompt.Value() == "" {
			return m.styles.Muted.Render("  type a prompt above (b in the grid prepends <|endoftext|>); f1 lists the keys")
		}
		return ""
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
