package tui

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/export"

	tea "charm.land/bubbletea/v2"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// debounce is how long an edit waits before its lens starts. Prefix reuse
// makes a restart cheap, so this only merges keys that arrive together (a
// paste, key repeat) rather than waiting for the user to stop typing.
const debounce = 30 * time.Millisecond

// lensRequest is everything a lens depends on; two equal requests give the
// same cells, which lets a new request keep the columns of an old one.
type lensRequest struct {
	text      string
	bos       bool
	sublayers bool
	topK      int
	target    int
	noNext    bool            // ask for no next-token statistics (the backend cannot compute them)
	tuned     *tunedlens.Lens // decode through a tuned lens; nil: the logit lens
	view      view            // the columns on screen, computed first; no effect on the cells
}

// view says which columns are on screen when a request starts: n columns
// from left, or, when the grid follows the end of the prompt (the cursor
// on its last column, as while typing), the last n of the new prompt,
// whose length is known only once it is tokenised.
type view struct {
	left, n int
	end     bool
}

// positions resolves the view for a prompt of T ids.
func (v view) positions(T int) []int {
	from := v.left
	if v.end {
		from = T - v.n
	}
	var out []int
	for p := max(0, from); p < min(T, from+v.n); p++ {
		out = append(out, p)
	}
	return out
}

// sameSettings reports whether a and b give the same cells for the same
// text: they differ at most in the prompt text and the view.
func (a lensRequest) sameSettings(b lensRequest) bool {
	a.text, a.view = b.text, b.view
	return a == b
}

// lensData is the lens being shown: complete, or filling in column by column.
type lensData struct {
	req     lensRequest
	tokens  []inference.Token // prompt tokens (BOS excluded)
	ids     []int             // ids sent to the backend (BOS included)
	headers []string          // printable input token per position
	rows    []inference.Row
	cells   [][]inference.Cell // [row][pos]; a cell with no Top is pending
	done    []bool             // per position: column received
	// stale marks positions whose cells are the previous lens's, shown
	// dimmed until the new column arrives; nil when none is.
	stale   []bool
	lens    *inference.Lens // the finished result; nil while computing
	vocab   int             // vocabulary size, for rank and entropy scales
	elapsed time.Duration
	// total counts the prompt's ids (BOS included) when more than the
	// model reads: ids holds the first n_positions of them. 0 when all fit.
	total      int
	capped     bool   // the prompt has more than maxPromptTokens tokens: total counts only those
	unread     string // printable first token past n_positions, the last column's next token; "" when all fit
	unreadID   int    // its id
	overflowAt int    // byte offset of the prompt where the unread tokens start; -1 when all fit
}

// columns is the number of positions.
func (d *lensData) columns() int { return len(d.ids) }

// staleCell returns the previous lens's cell at (row, pos), shown dimmed
// while the new one computes, and whether there is one.
func (d *lensData) staleCell(row, pos int) (inference.Cell, bool) {
	if d == nil || d.stale == nil || row < 0 || row >= len(d.cells) || pos < 0 || pos >= len(d.stale) || !d.stale[pos] {
		return inference.Cell{}, false
	}
	c := d.cells[row][pos]
	return c, len(c.Top) > 0
}

// cell returns the cell at (row, pos) and whether it has arrived.
func (d *lensData) cell(row, pos int) (inference.Cell, bool) {
	if d == nil || row < 0 || row >= len(d.cells) || pos < 0 || pos >= len(d.ids) || !d.done[pos] {
		return inference.Cell{}, false
	}
	c := d.cells[row][pos]
	return c, len(c.Top) > 0
}

// maxValue is the largest finite value of a metric among arrived cells
// (0 if none): the top of a relative metric's scale.
func (d *lensData) maxValue(m export.Metric) float64 {
	top := 0.0
	for _, row := range d.cells {
		for p, c := range row {
			if v := m.Value(c); d.done[p] && !math.IsNaN(v) && !math.IsInf(v, 0) {
				top = max(top, v)
			}
		}
	}
	return top
}

// lockIn is the row at which position p's prediction locks in (see
// inference.LockIn), or -1 while its column has not arrived or when its
// output row has no top-1.
func (d *lensData) lockIn(p int) int {
	if d == nil || p < 0 || p >= len(d.done) || !d.done[p] {
		return -1
	}
	column := make([]inference.Cell, len(d.cells))
	for r := range d.cells {
		column[r] = d.cells[r][p]
	}
	return inference.LockIn(column)
}

// nextID is the id of the token position p predicts: the next id of the
// prompt, the first unread one at the last column of a prompt past
// n_positions, or -1 at the end.
func (d *lensData) nextID(p int) int {
	switch {
	case p+1 < len(d.ids):
		return d.ids[p+1]
	case p+1 == len(d.ids) && d.unread != "":
		return d.unreadID
	}
	return -1
}

// rowsFor lists the rows the backend returns for a model of n blocks:
// embedding first, then per block an optional resid_mid row and its output.
// The finished Lens's own Rows replace this guess.
func rowsFor(n int, sublayers bool) []inference.Row {
	rows := []inference.Row{{Kind: inference.Embed, Name: "embed"}}
	for l := 1; l <= n; l++ {
		if sublayers {
			rows = append(rows, inference.Row{Kind: inference.AttnMid, Layer: l, Name: strconv.Itoa(l) + ".attn"})
		}
		rows = append(rows, inference.Row{Kind: inference.BlockOut, Layer: l, Name: strconv.Itoa(l)})
	}
	return rows
}

// lensStartMsg carries the tokenised prompt of a request, before any column.
type lensStartMsg struct {
	gen        uint64
	req        lensRequest
	tokens     []inference.Token // every token of the prompt, up to maxPromptTokens
	ids        []int             // the ids the model reads: BOS, then tokens, at most n_positions
	headers    []string          // printable form of each of ids
	total      int               // ids the whole prompt makes (BOS included); 0 when ids holds them all
	capped     bool              // tokens was cut at maxPromptTokens
	unread     string            // printable first id past n_positions; "" when none
	unreadID   int               // its id
	overflowAt int               // byte offset of the first unread token; -1 when none
}

// lensColumnMsg carries one finished position of request gen.
type lensColumnMsg struct {
	gen uint64
	col inference.Column
}

// lensDoneMsg ends request gen: the full lens, or the error that stopped it.
type lensDoneMsg struct {
	gen    uint64
	lens   *inference.Lens
	err    error
	noNext bool // the backend refused next-token statistics: the lens has none
}

// lensDebounceMsg fires when request gen's debounce delay is over.
type lensDebounceMsg struct{ gen uint64 }

// lensStream is one running request: its messages arrive on ch until ctx
// ends.
type lensStream struct {
	ctx context.Context
	ch  chan tea.Msg
}

// requestLens cancels the running request and schedules a new one for the
// current settings, after the debounce. The prompt is not tokenised here:
// the command does it.
func (m *Model) requestLens() tea.Cmd {
	if m.backend == nil {
		return nil
	}
	if m.cancelLens != nil {
		m.cancelLens()
	}
	m.tl.stopOther()
	m.gen++
	m.pending = m.currentRequest()
	m.computing = true
	m.dropSnapshots("the prompt or a setting changed before its lens was complete", &m.pending)
	gen := m.gen
	return tea.Batch(
		tea.Tick(debounce, func(time.Time) tea.Msg { return lensDebounceMsg{gen} }),
		m.spin.Tick,
	)
}

// view is the grid's view now: the columns on screen (as many as fit),
// following the end while the cursor is on the last column.
func (m *Model) view() view {
	g := m.grid
	if g.cols == 0 || g.col >= g.cols-1 {
		return view{n: g.capacity(), end: true}
	}
	return view{left: g.left, n: g.capacity()}
}

// viewSettle is how long the view must rest before a running lens
// restarts for it: scrolling with a key held moves the view every few
// tens of milliseconds, and restarting on each move would cancel the
// forward pass before it got anywhere.
const viewSettle = 150 * time.Millisecond

// viewSettledMsg fires viewSettle after the view became v during request
// gen.
type viewSettledMsg struct {
	gen uint64
	v   view
}

// reprioritize notes that the view moved while a lens computes, and
// schedules a check that it has come to rest (handleViewSettled).
func (m *Model) reprioritize() tea.Cmd {
	if !m.computing || m.cancelLens == nil || m.data == nil {
		return nil
	}
	v := m.view()
	if v == m.pending.view {
		m.settling = view{}
		return nil
	}
	if v == m.settling {
		return nil // a check is on its way
	}
	m.settling = v
	gen := m.gen
	return tea.Tick(viewSettle, func(time.Time) tea.Msg { return viewSettledMsg{gen, v} })
}

// handleViewSettled restarts the running lens when the view has rested on
// columns it has not computed yet, so that those come next; the session
// keeps what is done, so a restart costs little.
func (m *Model) handleViewSettled(msg viewSettledMsg) tea.Cmd {
	if msg.gen != m.gen || msg.v != m.view() || !m.computing || m.cancelLens == nil || m.data == nil {
		return nil
	}
	m.settling = view{}
	missing := false
	for _, p := range msg.v.positions(m.data.columns()) {
		missing = missing || !m.data.done[p]
	}
	if !missing {
		return nil
	}
	m.cancelLens()
	m.gen++
	m.pending.view = msg.v
	return m.handleLensDebounce(lensDebounceMsg{m.gen})
}

// currentRequest collects the lens settings now in force.
func (m *Model) currentRequest() lensRequest {
	return lensRequest{
		text: m.prompt.Value(), bos: m.bos, sublayers: m.sublayers && m.tl.active() == nil,
		topK: m.topK, target: m.targetID, noNext: m.noNext, tuned: m.tl.active(), view: m.view(),
	}
}

// handleLensDebounce starts request gen unless a newer edit superseded it.
func (m *Model) handleLensDebounce(msg lensDebounceMsg) tea.Cmd {
	if msg.gen != m.gen || m.backend == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(m.ctx)
	m.cancelLens = cancel
	// Each token covers at least one byte, so the channel holds every
	// message of the request and the computing goroutine never blocks on a
	// UI that stopped listening.
	nPos := m.info.Config.NPositions
	if nPos <= 0 {
		nPos = 1024
	}
	s := lensStream{ctx: ctx, ch: make(chan tea.Msg, min(len(m.pending.text)+1, nPos)+4)}
	var prev tokenization
	if m.data != nil {
		prev = tokenization{m.data.req.text, m.data.tokens}
	}
	go computeLens(s, msg.gen, m.backend, m.pending, prev, nPos)
	return s.wait
}

// wait returns the next message of the stream, or nothing once it is
// cancelled.
func (s lensStream) wait() tea.Msg {
	select {
	case msg := <-s.ch:
		if msg == nil {
			return nil
		}
		switch msg := msg.(type) {
		case lensStartMsg:
			return lensStreamMsg{msg, s}
		case lensColumnMsg:
			return lensStreamMsg{msg, s}
		}
		return msg
	case <-s.ctx.Done():
		return nil
	}
}

// lensStreamMsg wraps a start or column message with the stream to keep
// reading.
type lensStreamMsg struct {
	msg tea.Msg
	s   lensStream
}

// tokenization is a prompt and its tokens, kept so that the next edit's
// tokens can be computed from where the text changed.
type tokenization struct {
	text   string
	tokens []inference.Token
}

// encode tokenises text, from prev where the backend can.
func encode(b Backend, prev tokenization, text string) []inference.Token {
	if r, ok := b.(reencoder); ok && prev.tokens != nil {
		return r.Reencode(prev.text, prev.tokens, text)
	}
	return b.Encode(text)
}

// computeLens runs on its own goroutine: tokenise, send the start, run the
// lens with a column callback, send the end. A prompt longer than the
// model's n_positions is read up to it: the start message says how much
// was left out. Panics in the backend become errors: the explorer must
// never die with a stack trace.
func computeLens(s lensStream, gen uint64, b Backend, req lensRequest, prev tokenization, nPos int) {
	send := func(msg tea.Msg) {
		select {
		case s.ch <- msg:
		case <-s.ctx.Done():
		}
	}
	var l *inference.Lens
	noNext := false
	err := protect(func() error {
		start := lensStartMsg{gen: gen, req: req, overflowAt: -1}
		start.tokens = encode(b, prev, req.text)
		if len(start.tokens) > maxPromptTokens {
			start.tokens, start.capped = start.tokens[:maxPromptTokens], true
		}
		bos := 0
		if req.bos {
			bos = 1
		}
		all := len(start.tokens) + bos
		n := min(all, nPos)
		ids := make([]int, 0, n)
		if req.bos {
			ids = append(ids, b.EOT())
		}
		for _, t := range start.tokens[:n-bos] {
			ids = append(ids, t.ID)
		}
		if all > n {
			next := start.tokens[n-bos]
			start.total, start.overflowAt = all, next.Start
			start.unread, start.unreadID = display.Token(b.TokenBytes(next.ID)), next.ID
		}
		start.ids = ids
		start.headers = make([]string, len(ids))
		for i, id := range ids {
			start.headers[i] = display.Token(b.TokenBytes(id))
		}
		send(start)
		if len(ids) == 0 {
			return nil
		}
		lr := inference.Request{IDs: ids, TopK: req.topK, Target: req.target, Sublayers: req.sublayers, NextToken: !req.noNext, Tuned: req.tuned,
			Priority: req.view.positions(len(ids))}
		onColumn := func(c inference.Column) { send(lensColumnMsg{gen: gen, col: c}) }
		var err error
		l, err = b.Lens(s.ctx, lr, onColumn)
		if lr.NextToken && errors.Is(err, inference.ErrUnsupported) {
			// A device without next-token statistics (the GPU's, for
			// now): the lens without them beats no lens.
			noNext = true
			lr.NextToken = false
			l, err = b.Lens(s.ctx, lr, onColumn)
		}
		return err
	})
	send(lensDoneMsg{gen: gen, lens: l, err: err, noNext: noNext})
}

// protect runs f and turns a panic into an error.
func protect(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
		}
	}()
	return f()
}

// handleLensStream applies a start or column message of the current
// generation and keeps reading the stream.
func (m *Model) handleLensStream(msg lensStreamMsg) tea.Cmd {
	switch inner := msg.msg.(type) {
	case lensStartMsg:
		if inner.gen == m.gen {
			m.startData(inner)
		}
	case lensColumnMsg:
		if inner.gen == m.gen {
			m.addColumn(inner.col)
		}
	}
	return msg.s.wait
}

// startData replaces the shown lens with the new request's tokens, keeping
// the columns of the common prefix when nothing else changed.
func (m *Model) startData(msg lensStartMsg) {
	old := m.data
	d := &lensData{req: msg.req, tokens: msg.tokens, ids: msg.ids, headers: msg.headers, vocab: m.info.Config.VocabSize,
		total: msg.total, capped: msg.capped, unread: msg.unread, unreadID: msg.unreadID, overflowAt: msg.overflowAt}
	m.prompt.SetOverflow(msg.overflowAt)
	d.rows = rowsFor(m.info.Config.NLayer, msg.req.sublayers)
	if old != nil && old.req.sameSettings(msg.req) && len(old.rows) > 0 {
		d.rows = old.rows
	}
	d.cells = make([][]inference.Cell, len(d.rows))
	for r := range d.cells {
		d.cells[r] = make([]inference.Cell, len(d.ids))
	}
	d.done = make([]bool, len(d.ids))
	// Old columns map to new ones by the common prefix and the common
	// suffix of the ids: an edit (or BOS toggled) moves the columns after
	// it by delta, and their old cells, shown dimmed, move with them.
	var cp, cs, delta int
	if old != nil {
		cp = commonPrefix(old.ids, d.ids)
		cs = commonSuffix(old.ids, d.ids, min(len(old.ids), len(d.ids))-cp)
		delta = len(d.ids) - len(old.ids)
	}
	if old != nil && len(old.rows) == len(d.rows) {
		same := old.req.sameSettings(msg.req)
		for p := range d.ids {
			q := -1 // the same token's column in the old lens
			switch {
			case p < cp:
				q = p
			case p >= len(d.ids)-cs:
				q = p - delta
			}
			if q < 0 || !old.done[q] && (old.stale == nil || !old.stale[q]) {
				continue
			}
			// A column is the same if its prefix and the token it
			// predicts are; else its old cells stay, dimmed, until the
			// new ones come (a column still dimmed stays so).
			keep := old.done[q] && same && p == q && (p+1 < cp || cp == len(old.ids) && cp == len(d.ids))
			for r := range d.rows {
				d.cells[r][p] = old.cells[r][q]
			}
			d.done[p] = keep
			if !keep {
				if d.stale == nil {
					d.stale = make([]bool, len(d.ids))
				}
				d.stale[p] = true
			}
		}
	}
	followEnd := old == nil || m.grid.col >= old.columns()-1
	m.data = d
	g := &m.grid
	var cursorRow inference.Row
	col, left := g.col, g.left
	onOutput := old == nil || g.row >= len(old.rows)-1
	if !onOutput && g.row >= 0 {
		cursorRow = old.rows[g.row]
	}
	g.setShape(len(d.rows), d.columns(), followEnd)
	if old != nil {
		// The cursor stays on its token and its layer when tokens before
		// it (BOS, an edit) or the sublayer rows come or go.
		if delta != 0 && !followEnd && col >= old.columns()-cs {
			g.col = clampInt(col+delta, 0, g.cols-1)
			g.left = max(0, left+delta)
		}
		if len(old.rows) != len(d.rows) && !onOutput {
			g.row = sameRow(d.rows, cursorRow, g.row)
		}
		g.ensureVisible()
	}
}

// sameRow is the index in rows of the row r, or of r's block output when
// rows has no resid_mid rows; else def.
func sameRow(rows []inference.Row, r inference.Row, def int) int {
	for i, x := range rows {
		if x.Kind == r.Kind && x.Layer == r.Layer {
			return i
		}
	}
	for i, x := range rows {
		if x.Kind == inference.BlockOut && x.Layer == r.Layer {
			return i
		}
	}
	return def
}

// addColumn stores one streamed column.
func (m *Model) addColumn(c inference.Column) {
	d := m.data
	if d == nil || c.Pos < 0 || c.Pos >= d.columns() {
		return
	}
	if len(c.Cells) != len(d.rows) {
		// The guess of rowsFor was wrong: size the rows by the backend's.
		d.rows = genericRows(len(c.Cells))
		d.cells = make([][]inference.Cell, len(d.rows))
		for r := range d.cells {
			d.cells[r] = make([]inference.Cell, d.columns())
		}
		clear(d.done)
		m.grid.setShape(len(d.rows), d.columns(), false)
	}
	for r, cell := range c.Cells {
		d.cells[r][c.Pos] = cell
	}
	d.done[c.Pos] = true
	if d.stale != nil {
		d.stale[c.Pos] = false
	}
}

// genericRows names n rows when the backend's layout is not yet known.
func genericRows(n int) []inference.Row {
	rows := make([]inference.Row, n)
	for i := range rows {
		rows[i] = inference.Row{Kind: inference.BlockOut, Layer: i, Name: strconv.Itoa(i)}
	}
	if n > 0 {
		rows[0] = inference.Row{Kind: inference.Embed, Name: "embed"}
	}
	return rows
}

// handleLensDone finishes request gen: the complete lens replaces the
// streamed cells, or the error goes to the status bar.
func (m *Model) handleLensDone(msg lensDoneMsg) tea.Cmd {
	if msg.noNext && !m.noNext {
		m.noNext = true
		m.status.setNotice("this device computes no next-token statistics: next-prob, next-rank and ce stay blank (--device cpu has them)")
	}
	if msg.gen != m.gen {
		return nil
	}
	m.computing = false
	m.cancelLens = nil
	m.lensErr = ""
	switch {
	case errors.Is(msg.err, context.Canceled):
		return nil
	case msg.err != nil:
		m.lensErr = fmt.Sprintf("lens: %v", msg.err)
		m.status.setError(m.lensErr)
		m.dropSnapshots("the lens failed", nil)
		return nil
	}
	m.status.clearError()
	if msg.lens == nil || m.data == nil {
		m.dropSnapshots("the prompt has no tokens", nil)
		return nil
	}
	l := msg.lens
	d := m.data
	if !slices.Equal(l.IDs, d.ids) || len(l.Cells) != len(l.Rows) {
		m.status.setError("lens: backend returned a lens for other ids")
		m.dropSnapshots("the lens failed", nil)
		return nil
	}
	d.lens, d.rows, d.cells, d.elapsed = l, l.Rows, l.Cells, l.Elapsed
	for p := range d.done {
		d.done[p] = true
	}
	m.grid.setShape(len(d.rows), d.columns(), false)
	m.lastElapsed, m.lastReused = l.Elapsed, l.Reused
	return tea.Batch(m.requestOther(), m.finishSnapshots(d))
}

// commonSuffix is the length of the common suffix of a and b, at most n.
func commonSuffix(a, b []int, n int) int {
	s := 0
	for s < n && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	return s
}

// commonPrefix is the length of the common prefix of a and b.
func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
