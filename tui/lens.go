package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/logitlens/logitlens/display"

	tea "charm.land/bubbletea/v2"

	"github.com/logitlens/logitlens/inference"
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
}

// sameSettings reports whether a and b differ at most in the prompt text.
func (a lensRequest) sameSettings(b lensRequest) bool {
	a.text = b.text
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
	lens    *inference.Lens    // the finished result; nil while computing
	vocab   int                // vocabulary size, for rank and entropy scales
	elapsed time.Duration
}

// columns is the number of positions.
func (d *lensData) columns() int { return len(d.ids) }

// cell returns the cell at (row, pos) and whether it has arrived.
func (d *lensData) cell(row, pos int) (inference.Cell, bool) {
	if d == nil || row < 0 || row >= len(d.cells) || pos < 0 || pos >= len(d.ids) || !d.done[pos] {
		return inference.Cell{}, false
	}
	c := d.cells[row][pos]
	return c, len(c.Top) > 0
}

// maxKL is the largest KL to final among arrived cells.
func (d *lensData) maxKL() float64 {
	m := 0.0
	for _, row := range d.cells {
		for p, c := range row {
			if d.done[p] {
				m = max(m, c.KLToFinal)
			}
		}
	}
	return m
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
	gen     uint64
	req     lensRequest
	tokens  []inference.Token
	ids     []int
	headers []string
}

// lensColumnMsg carries one finished position of request gen.
type lensColumnMsg struct {
	gen uint64
	col inference.Column
}

// lensDoneMsg ends request gen: the full lens, or the error that stopped it.
type lensDoneMsg struct {
	gen  uint64
	lens *inference.Lens
	err  error
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
	m.gen++
	m.pending = m.currentRequest()
	m.computing = true
	gen := m.gen
	return tea.Batch(
		tea.Tick(debounce, func(time.Time) tea.Msg { return lensDebounceMsg{gen} }),
		m.spin.Tick,
	)
}

// currentRequest collects the lens settings now in force.
func (m *Model) currentRequest() lensRequest {
	return lensRequest{
		text: m.prompt.Value(), bos: m.bos, sublayers: m.sublayers,
		topK: m.topK, target: m.targetID,
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
	s := lensStream{ctx: ctx, ch: make(chan tea.Msg, len(m.pending.text)+4)}
	go computeLens(s, msg.gen, m.backend, m.pending)
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

// computeLens runs on its own goroutine: tokenise, send the start, run the
// lens with a column callback, send the end. Panics in the backend become
// errors: the explorer must never die with a stack trace.
func computeLens(s lensStream, gen uint64, b Backend, req lensRequest) {
	send := func(msg tea.Msg) {
		select {
		case s.ch <- msg:
		case <-s.ctx.Done():
		}
	}
	var l *inference.Lens
	err := protect(func() error {
		tokens := b.Encode(req.text)
		ids := make([]int, 0, len(tokens)+1)
		if req.bos {
			ids = append(ids, b.EOT())
		}
		for _, t := range tokens {
			ids = append(ids, t.ID)
		}
		headers := make([]string, len(ids))
		for i, id := range ids {
			headers[i] = display.Token(b.TokenBytes(id))
		}
		send(lensStartMsg{gen: gen, req: req, tokens: tokens, ids: ids, headers: headers})
		if len(ids) == 0 {
			return nil
		}
		var err error
		l, err = b.Lens(s.ctx, inference.Request{IDs: ids, TopK: req.topK, Target: req.target, Sublayers: req.sublayers},
			func(c inference.Column) { send(lensColumnMsg{gen: gen, col: c}) })
		return err
	})
	send(lensDoneMsg{gen: gen, lens: l, err: err})
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
	d := &lensData{req: msg.req, tokens: msg.tokens, ids: msg.ids, headers: msg.headers, vocab: m.info.Config.VocabSize}
	d.rows = rowsFor(m.info.Config.NLayer, msg.req.sublayers)
	if old != nil && old.req.sameSettings(msg.req) && len(old.rows) > 0 {
		d.rows = old.rows
	}
	d.cells = make([][]inference.Cell, len(d.rows))
	for r := range d.cells {
		d.cells[r] = make([]inference.Cell, len(d.ids))
	}
	d.done = make([]bool, len(d.ids))
	if old != nil && old.req.sameSettings(msg.req) && len(old.rows) == len(d.rows) {
		for p := 0; p < len(d.ids) && p < len(old.ids) && old.ids[p] == d.ids[p]; p++ {
			if !old.done[p] {
				break
			}
			for r := range d.rows {
				d.cells[r][p] = old.cells[r][p]
			}
			d.done[p] = true
		}
	}
	followEnd := old == nil || m.grid.col >= old.columns()-1
	m.data = d
	m.grid.setShape(len(d.rows), d.columns(), followEnd)
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
		return nil
	}
	m.status.clearError()
	if msg.lens == nil || m.data == nil {
		return nil
	}
	l := msg.lens
	d := m.data
	if !slices.Equal(l.IDs, d.ids) || len(l.Cells) != len(l.Rows) {
		m.status.setError("lens: backend returned a lens for other ids")
		return nil
	}
	d.lens, d.rows, d.cells, d.elapsed = l, l.Rows, l.Cells, l.Elapsed
	for p := range d.done {
		d.done[p] = true
	}
	m.grid.setShape(len(d.rows), d.columns(), false)
	m.lastElapsed, m.lastReused = l.Elapsed, l.Reused
	return nil
}
