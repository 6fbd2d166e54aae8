package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// The tuned lens in the explorer. `l` switches between the logit lens and a
// tuned lens (Options.LoadTuned: the model's published lens, the demo
// model's built-in one, or --lens tuned:SOURCE). The lens loads on first
// use, off the UI goroutine, with its download progress in the status bar;
// the prompt stays editable meanwhile, and the grid shows the logit lens
// until the tuned one is there. With a tuned lens loaded, a second request
// computes the other lens after each finished one (the session caches both:
// inference.Session keeps two sets of cells), so the panel gives the cursor
// cell's top-1 under both lenses. Sublayer rows have no translators: with
// the tuned lens they are hidden, and `s` says why.

// tunedState is the explorer's tuned lens.
type tunedState struct {
	lens     *tunedlens.Lens // nil until loaded
	on       bool            // the grid shows the tuned lens (once loaded)
	loading  bool
	progress string // the load's latest download report, for the status bar

	other       *inference.Lens // the other lens of the shown prompt, for the panel; nil while computing
	otherGen    uint64          // the lens generation other belongs to
	cancelOther context.CancelFunc
}

// tunedLoadedMsg ends loading the tuned lens.
type tunedLoadedMsg struct {
	lens *tunedlens.Lens
	err  error
}

// tunedProgressMsg reports the tuned lens's download, and the channel to
// keep reading.
type tunedProgressMsg struct {
	p  inference.Progress
	ch chan tea.Msg
}

// otherLensMsg carries the other lens of lens generation gen.
type otherLensMsg struct {
	gen  uint64
	lens *inference.Lens
}

// active is the tuned lens the grid shows, or nil for the logit lens.
func (t *tunedState) active() *tunedlens.Lens {
	if t.on {
		return t.lens
	}
	return nil
}

// lensName names the lens the grid shows, for the status bar.
func (m *Model) lensName() string {
	switch {
	case m.tl.on && m.tl.loading:
		return "logit lens (tuned loading)"
	case m.tl.on && m.tl.lens != nil:
		if m.tl.lens.Source == "" {
			return "tuned lens"
		}
		return "tuned lens (" + display.Safe(m.tl.lens.Source) + ")"
	}
	return "logit lens"
}

// toggleLens is `l`: switch between the logit and the tuned lens, loading
// the tuned one first if needed.
func (m *Model) toggleLens() tea.Cmd {
	switch {
	case m.opts.LoadTuned == nil:
		m.status.setNotice("no tuned lens for this model here (--lens tuned:DIR names one)")
		return nil
	case m.tl.loading:
		m.tl.on = !m.tl.on
		m.status.setNotice(map[bool]string{true: "the tuned lens is loading", false: "logit lens (the tuned lens keeps loading)"}[m.tl.on])
		return nil
	case m.tl.lens == nil:
		m.tl.on = true
		return m.loadTuned()
	}
	m.tl.on = !m.tl.on
	if m.tl.on && m.sublayers {
		m.status.setNotice("tuned lens: sublayer rows hidden (it has translators only for block outputs)")
	} else {
		m.status.setNotice(m.lensName())
	}
	return m.requestLens()
}

// loadTuned starts loading the tuned lens on its own goroutine; progress
// and the result come back as messages.
func (m *Model) loadTuned() tea.Cmd {
	if m.backend == nil || m.opts.LoadTuned == nil {
		return nil
	}
	m.tl.loading = true
	m.status.setNotice("loading the tuned lens…")
	ch := make(chan tea.Msg, 1)
	var mu sync.Mutex
	var last time.Time
	go func() {
		var l *tunedlens.Lens
		err := protect(func() error {
			var err error
			l, err = m.opts.LoadTuned(m.ctx, func(p inference.Progress) {
				mu.Lock()
				defer mu.Unlock()
				if !p.Finished && time.Since(last) < 100*time.Millisecond {
					return // a progress line ten times a second is enough
				}
				last = time.Now()
				select {
				case ch <- tunedProgressMsg{p: p, ch: ch}:
				default: // the UI has not read the last one: skip this
				}
			})
			return err
		})
		mu.Lock()
		defer mu.Unlock()
		// Block for the result: it must not be dropped like a progress report.
		for {
			select {
			case ch <- tunedLoadedMsg{lens: l, err: err}:
				return
			case <-ch: // a stale progress report in the slot: replace it
			}
		}
	}()
	return func() tea.Msg { return <-ch }
}

// handleTunedProgress shows the download and keeps listening.
func (m *Model) handleTunedProgress(msg tunedProgressMsg) tea.Cmd {
	p := msg.p
	if p.Total > 0 {
		m.tl.progress = fmt.Sprintf("tuned lens: %s %s of %s", display.Safe(p.File), display.Bytes(p.Done), display.Bytes(p.Total))
		m.status.setNotice(m.tl.progress)
	}
	return func() tea.Msg { return <-msg.ch }
}

// handleTunedLoaded keeps the lens (or says why there is none) and, when
// the user still wants it, shows it.
func (m *Model) handleTunedLoaded(msg tunedLoadedMsg) tea.Cmd {
	m.tl.loading = false
	switch {
	case errors.Is(msg.err, context.Canceled):
		return nil
	case msg.err != nil || msg.lens == nil:
		m.tl.on = false
		err := msg.err
		if err == nil {
			err = errors.New("no lens")
		}
		m.status.setError("tuned lens: " + err.Error())
		return nil
	}
	m.tl.lens = msg.lens
	if !m.tl.on {
		m.status.setNotice("the tuned lens is loaded: l shows it")
		return m.requestOther()
	}
	m.status.setNotice(m.lensName())
	if m.sublayers {
		m.status.setNotice(m.lensName() + ": sublayer rows hidden (it has translators only for block outputs)")
	}
	if msg.lens.Note != "" {
		m.status.setNotice(display.Safe(msg.lens.Note))
	}
	return m.requestLens()
}

// requestOther computes, once the shown lens is complete, the other lens of
// the same prompt and settings, for the panel's comparison of top-1s.
func (m *Model) requestOther() tea.Cmd {
	m.tl.stopOther()
	d := m.data
	if m.tl.lens == nil || d == nil || d.lens == nil || m.backend == nil {
		return nil
	}
	// The settings switching to the other lens would ask for, so that it
	// finds its cells in the session's cache.
	req := inference.Request{IDs: d.lens.IDs, TopK: d.req.topK, Target: d.req.target, NextToken: !d.req.noNext, Tuned: m.tl.lens}
	if d.lens.Tuned != nil {
		req.Tuned, req.Sublayers = nil, m.sublayers
	}
	ctx, cancel := context.WithCancel(m.ctx)
	m.tl.cancelOther = cancel
	gen, b := m.gen, m.backend
	return func() tea.Msg {
		var l *inference.Lens
		err := protect(func() error {
			var err error
			l, err = b.Lens(ctx, req, nil)
			return err
		})
		if err != nil {
			return nil // the panel goes without the comparison
		}
		return otherLensMsg{gen: gen, lens: l}
	}
}

// stopOther cancels the other lens's computation, if any, and forgets the
// other lens: a new request for the shown lens makes it stale, and the
// session computes one request at a time.
func (t *tunedState) stopOther() {
	if t.cancelOther != nil {
		t.cancelOther()
		t.cancelOther = nil
	}
	t.other = nil
}

// handleOtherLens keeps the other lens when it belongs to the shown one.
func (m *Model) handleOtherLens(msg otherLensMsg) {
	if msg.gen == m.gen && m.data != nil && m.data.lens != nil {
		m.tl.other, m.tl.otherGen = msg.lens, msg.gen
		m.tl.cancelOther = nil
	}
}

// otherLine is the panel's comparison for the cursor cell: its top-1 under
// the logit and the tuned lens, or "" when there is no tuned lens or the
// other lens is still computing.
func (m *Model) otherLine(row, col int) string {
	d, o := m.data, m.tl.other
	if m.tl.lens == nil || d == nil || d.lens == nil || o == nil || m.tl.otherGen != m.gen ||
		row < 0 || col < 0 || row >= len(d.lens.Cells) || col >= len(d.lens.Cells[row]) || !slices.Equal(o.IDs, d.lens.IDs) {
		return ""
	}
	// The other lens has no sublayer rows when one of the two is tuned:
	// rows pair by name.
	name := d.lens.Rows[row].Name
	orow := -1
	for r, or := range o.Rows {
		if or.Name == name {
			orow = r
		}
	}
	if orow < 0 {
		return ""
	}
	here, there := d.lens.Cells[row][col], o.Cells[orow][col]
	if len(here.Top) == 0 || len(there.Top) == 0 {
		return ""
	}
	logit, tuned := there, here
	if d.lens.Tuned == nil {
		logit, tuned = here, there
	}
	top := func(c inference.Cell) string {
		return m.tokenText(c.Top[0].ID) + " " + display.Prob(c.Top[0].Prob)
	}
	return "top-1  logit " + top(logit) + " · tuned " + top(tuned)
}
