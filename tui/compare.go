package tui

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/theme"
)

// Compare mode: run A is the prompt's lens, run B the same model on a
// second prompt, on a line of its own under A's (prefilled with A's text,
// or fixed by the command line). The grid then shows the two runs' aligned
// cells: one column per position of the longer prompt, right-aligned so the
// last tokens face each other, each paired cell coloured on the diverging
// palette by the comparison's metric (KL(P_A ‖ P_B), or the Δp of A's top-1
// or of the target) and, where the top-1s differ, showing B's top-1 after
// "≠", so the difference reads without colour; a column only one prompt
// has shows that run's own top-1, dimmed and uncoloured (nothing is
// dropped, nothing is compared there). The headers are A's tokens and B's where they
// differ; the panel puts A's and B's top-k side by side. B has its own
// session on the backend, so an edit of B recomputes B's changed positions
// only; a comparison runs off the UI goroutine after A's lens is complete,
// a newer edit cancels it.

// comparer is implemented by backends that compare the prompt's run with a
// run B (*inference.Session does, and serve's fair backend).
type comparer interface {
	Compare(ctx context.Context, ra, rb inference.Request, onColumn func(inference.CompareColumn)) (*inference.Comparison, error)
}

// compareState is compare mode's state; the zero value is off.
type compareState struct {
	on        bool
	fixed     bool   // B was given on the command line: its line is read-only
	follows   string // B is A's prompt through this other model or lens (Options.CompareWith)
	prompt    prompt // B's prompt
	styles    Styles // the diverging palette's
	metric    export.Metric
	gen       uint64
	cancel    context.CancelFunc
	computing bool
	data      *inference.Comparison
	headersB  []string // B's tokens, printable
	err       string
}

// compareDebounceMsg fires when comparison gen's debounce delay is over.
type compareDebounceMsg struct{ gen uint64 }

// compareDoneMsg ends comparison gen: the comparison and B's tokens, or the
// error that stopped it.
type compareDoneMsg struct {
	gen      uint64
	cmp      *inference.Comparison
	headersB []string
	err      error
}

// initCompare sets up compare mode's prompt, styles and metric; a prompt
// for B in the options opens compare mode with B fixed.
func (m *Model) initCompare() {
	c := &m.cmp
	c.prompt = newPrompt("B › ", m.opts.ComparePrompt, m.keys, m.styles)
	c.prompt.placeholder = "run B's prompt (esc: grid · x: swap A and B · C: leave compare)"
	c.metric = export.MetricKLAB
	c.styles = newStyles(theme.DivergingFor(m.opts.Palette), m.profile)
	if m.opts.ComparePrompt != "" {
		c.on, c.fixed = true, true
	}
	if w := m.opts.CompareWith; w != "" {
		c.on, c.fixed, c.follows = true, true, w
		c.prompt.placeholder = "A's prompt, through " + w + " (x: nothing to swap · C: leave compare)"
	}
}

// compareRows is how many lines B's prompt takes: none outside compare
// mode, else as many as its text needs up to half the prompt's room.
func (m *Model) compareRows() int {
	if !m.cmp.on {
		return 0
	}
	m.cmp.prompt.SetWidth(m.width)
	return clampInt(m.cmp.prompt.Rows(), 1, max(1, promptRows(m.height)/2))
}

// openCompare enters compare mode with B's prompt focused, prefilled with
// A's when empty.
func (m *Model) openCompare() tea.Cmd {
	if _, ok := m.backend.(comparer); !ok {
		m.status.setNotice("this backend cannot compare two runs")
		return nil
	}
	c := &m.cmp
	if !c.on && c.prompt.Value() == "" && c.follows == "" {
		c.prompt.SetValue(m.prompt.Value())
	}
	c.on = true
	m.status.setNotice("compare: " + c.metric.Label() + " · x swaps A and B · C leaves")
	var cmd tea.Cmd
	if !c.fixed {
		cmd = m.setFocus(focusCompare)
	}
	return tea.Batch(cmd, m.requestCompare())
}

// leaveCompare goes back to run A's lens.
func (m *Model) leaveCompare() tea.Cmd {
	c := &m.cmp
	if c.cancel != nil {
		c.cancel()
	}
	c.on, c.computing, c.data, c.err, c.cancel = false, false, nil, "", nil
	c.gen++
	if m.data != nil {
		m.grid.setShape(len(m.data.rows), m.data.columns(), false)
	}
	m.status.setNotice("compare off")
	return m.setFocus(focusGrid)
}

// swapCompare exchanges A's and B's prompts: each run's session keeps its
// cache, so each recomputes from where its new prompt differs.
func (m *Model) swapCompare() tea.Cmd {
	if m.cmp.follows != "" {
		m.status.setNotice("run B is A's prompt through " + m.cmp.follows + ": there are no prompts to swap")
		return nil
	}
	a, b := m.prompt.Value(), m.cmp.prompt.Value()
	m.prompt.SetValue(b)
	m.cmp.prompt.SetValue(a)
	m.status.setNotice("swapped A and B")
	return tea.Batch(m.requestLens(), m.requestCompare())
}

// compareGridKey handles the grid's keys that compare mode adds or
// changes; ok is false for the keys it leaves to the grid.
func (m *Model) compareGridKey(k tea.KeyPressMsg) (cmd tea.Cmd, ok bool) {
	km := m.keys
	c := &m.cmp
	switch {
	case key.Matches(k, km.Compare):
		return m.openCompare(), true
	case !c.on:
		return nil, false
	case key.Matches(k, km.LeaveCompare):
		return m.leaveCompare(), true
	case key.Matches(k, km.Swap):
		return m.swapCompare(), true
	case key.Matches(k, km.Metric):
		c.metric = c.metric.Next(m.targetID >= 0)
		m.status.setNotice("colour: " + c.metric.Label())
		return nil, true
	case key.Matches(k, km.Copy, km.Export):
		m.status.setNotice("copy and snapshot take run A's lens: leave compare (C) first")
		return nil, true
	}
	return nil, false
}

// compareKey handles a key while B's prompt has focus.
func (m *Model) compareKey(k tea.KeyPressMsg) tea.Cmd {
	switch {
	case key.Matches(k, m.keys.Focus, m.keys.FocusRev, m.keys.Leave):
		return m.setFocus(focusGrid)
	case m.cmp.follows != "":
		m.status.setNotice("run B reads A's prompt through " + m.cmp.follows)
		return m.setFocus(focusGrid)
	case m.cmp.fixed:
		m.status.setNotice("run B's prompt was given on the command line")
		return m.setFocus(focusGrid)
	}
	return m.editCompare(k)
}

// editCompare passes a message to B's prompt and recompares on change.
func (m *Model) editCompare(msg tea.Msg) tea.Cmd {
	res := m.cmp.prompt.Update(msg)
	if res.notice != "" {
		m.status.setNotice(res.notice)
	}
	if res.changed {
		return m.requestCompare()
	}
	return nil
}

// requestCompare cancels the running comparison and schedules a new one
// after the debounce.
func (m *Model) requestCompare() tea.Cmd {
	c := &m.cmp
	if !c.on || m.backend == nil {
		return nil
	}
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	c.gen++
	c.computing = true
	gen := c.gen
	return tea.Batch(tea.Tick(debounce, func(time.Time) tea.Msg { return compareDebounceMsg{gen} }), m.spin.Tick)
}

// handleCompareDebounce starts comparison gen once run A's lens is
// complete; until then A's end starts it (afterLens).
func (m *Model) handleCompareDebounce(msg compareDebounceMsg) tea.Cmd {
	c := &m.cmp
	cmpr, ok := m.backend.(comparer)
	if msg.gen != c.gen || !c.on || !ok {
		return nil
	}
	d := m.data
	if m.computing || d == nil || d.lens == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(m.ctx)
	c.cancel = cancel
	// B reads its prompt through A's lens, tuned or not, as the grid shows A.
	ra := inference.Request{IDs: d.ids, TopK: d.req.topK, Target: d.req.target, Sublayers: d.req.sublayers, NextToken: !d.req.noNext, Tuned: d.req.tuned}
	text, bos, nPos, b, gen, follows := c.prompt.Value(), d.req.bos, m.info.Config.NPositions, m.backend, msg.gen, c.follows != ""
	return func() tea.Msg {
		done := compareDoneMsg{gen: gen}
		done.err = protect(func() error {
			rb := ra
			rb.IDs = nil
			if bos {
				rb.IDs = append(rb.IDs, b.EOT())
			}
			for _, t := range b.Encode(text) {
				rb.IDs = append(rb.IDs, t.ID)
			}
			if follows { // the backend's Compare changes B's model or lens
				rb.IDs = slices.Clone(ra.IDs)
			}
			switch {
			case len(rb.IDs) == 0:
				return errors.New("run B's prompt is empty")
			case nPos > 0 && len(rb.IDs) > nPos:
				return fmt.Errorf("run B's prompt is %d tokens; the model reads %d", len(rb.IDs), nPos)
			}
			done.headersB = make([]string, len(rb.IDs))
			for i, id := range rb.IDs {
				done.headersB[i] = display.Token(b.TokenBytes(id))
			}
			var err error
			done.cmp, err = cmpr.Compare(ctx, ra, rb, nil)
			return err
		})
		return done
	}
}

// handleCompareDone shows comparison gen, or its error.
func (m *Model) handleCompareDone(msg compareDoneMsg) {
	c := &m.cmp
	if msg.gen != c.gen {
		return
	}
	c.computing, c.cancel = false, nil
	switch {
	case errors.Is(msg.err, context.Canceled):
	case msg.err != nil:
		c.err = "compare: " + msg.err.Error()
		m.status.setError(c.err)
	default:
		if c.err != "" {
			m.status.clearError()
		}
		c.err = ""
		c.data, c.headersB = msg.cmp, msg.headersB
	}
}

// afterLens starts a comparison when run A's lens gen has just completed.
func (m *Model) afterLens(msg lensDoneMsg) tea.Cmd {
	if !m.cmp.on || msg.gen != m.gen || msg.err != nil {
		return nil
	}
	return m.requestCompare()
}

// syncCompare gives the grid compare mode's shape: the longer prompt's
// columns.
func (m *Model) syncCompare() {
	c := &m.cmp
	c.styles = newStyles(theme.DivergingFor(m.opts.Palette), m.profile)
	if !c.on || c.data == nil {
		return
	}
	// The cursor stays at the last column when it was there, as typing
	// keeps it in the lens.
	m.grid.setShape(len(c.data.Cells), c.width(), m.grid.col >= m.grid.cols-1)
}

// width is the number of columns of the comparison shown.
func (c *compareState) width() int { return max(len(c.data.A.IDs), len(c.data.B.IDs)) }

// positions returns A's and B's positions at column x (-1 where a run has
// none) and the comparison's column j (-1 unless both have one).
func (c *compareState) positions(x int) (pa, pb, j int) {
	W := c.width()
	pa, pb, j = x-(W-len(c.data.A.IDs)), x-(W-len(c.data.B.IDs)), -1
	if pa >= 0 && pb >= 0 {
		j = c.data.ColumnOfA(pa)
	}
	return max(pa, -1), max(pb, -1), j
}

// scale is the comparison's colour scale for its metric.
func (c *compareState) scale(vocab int, fixed bool) export.Scale {
	maxKL := 0.0
	for _, row := range c.data.Cells {
		for _, p := range row {
			if !p.NonFinite && !math.IsInf(p.KL, 0) {
				maxKL = max(maxKL, p.KL)
			}
		}
	}
	return export.NewScale(c.metric, vocab, maxKL, fixed)
}

// compareGridView draws the comparison: A's tokens and, where they differ,
// B's above the rows; each paired cell coloured by the metric and showing
// A's top-1, or "≠" and B's top-1 where they differ; the cursor framed.
func (m *Model) compareGridView(w, h int) string {
	c := &m.cmp
	if c.data == nil {
		switch {
		case c.err != "": // wrapped: the whole reason, whatever the width
			lines := strings.Split(m.styles.Error.PaddingLeft(2).Width(max(w, 8)).Render(c.err), "\n")
			lines = append(lines, m.styles.Muted.Render("  C leaves compare"))
			return strings.Join(lines[:min(len(lines), max(h, 1))], "\n")
		case c.computing || m.computing:
			return m.styles.Muted.Render("  comparing…")
		}
		return m.styles.Muted.Render("  type run B's prompt above")
	}
	g := m.grid
	g.resize(w, h)
	st := c.styles
	lw, cw, n := g.labelWidth(), g.colWidth(), g.visibleCols()
	d := c.data
	var b strings.Builder
	header := func(label string, tok func(x int) (string, bool)) {
		corner := label
		if g.left > 0 {
			corner = "◂" + corner
		}
		b.WriteString(st.Muted.Render(fit(corner, lw)))
		for x := g.left; x < g.left+n && x < g.cols; x++ {
			text, strong := tok(x)
			hs := st.Muted
			switch {
			case x == g.col:
				hs = st.HeaderCursor
			case strong:
				hs = st.Header
			}
			b.WriteString(hs.Render(fit(" "+text, cw)))
		}
		if g.left+n < g.cols {
			b.WriteString(st.Muted.Render("▸"))
		}
	}
	header("A", func(x int) (string, bool) {
		if pa, _, _ := c.positions(x); pa >= 0 && m.data != nil && pa < len(m.data.headers) {
			return m.data.headers[pa], true
		}
		return "", false
	})
	if g.headerLines() > 1 {
		b.WriteByte('\n')
		header("B", func(x int) (string, bool) {
			pa, pb, _ := c.positions(x)
			switch {
			case pb < 0 || pb >= len(c.headersB):
				return "", false
			case pa >= 0 && d.A.IDs[pa] == d.B.IDs[pb]:
				return "=", false // the same token as A's
			}
			return c.headersB[pb], true
		})
	}
	scale := c.scale(m.info.Config.VocabSize, m.fixed)
	hasTarget := d.Target >= 0
	o := g.order()
	bh := g.bodyHeight()
	for i := g.top; i < len(o) && i < g.top+bh; i++ {
		row := o[i]
		g.writeRowLabel(&b, st, d.A.Rows[row], i, row, len(o), lw)
		for x := g.left; x < g.left+n && x < g.cols; x++ {
			cursor := row == g.row && x == g.col
			pa, pb, j := c.positions(x)
			if j < 0 {
				b.WriteString(unpairedCell(st, m.unpairedTop1(row, pa, pb), cw, cursor))
				continue
			}
			p := d.Cells[row][j]
			v := c.metric.PairValue(p, hasTarget)
			text := "—"
			switch {
			case g.numbers:
				text = c.metric.Format(v)
			case p.Top1Differs():
				text = "≠" + m.tokenText(p.Top1B)
			case p.Top1A >= 0:
				text = m.tokenText(p.Top1A)
			}
			b.WriteString(st.cell(scale.T(v), text, cw, cellMarks{cursor: cursor}))
		}
	}
	return b.String()
}

// unpairedTop1 is the top-1 of the one run that has a position at an
// unpaired column (A's at pa, else B's at pb), or "—" where it has none.
func (m *Model) unpairedTop1(row, pa, pb int) string {
	d := m.cmp.data
	var top []inference.Prediction
	switch {
	case pa >= 0:
		top = d.A.Cells[row][pa].Top
	case pb >= 0:
		top = d.B.Cells[row][pb].Top
	}
	if len(top) == 0 {
		return "—"
	}
	return m.tokenText(top[0].ID)
}

// unpairedCell draws a cell only one run has: its top-1 in the muted
// colour on no background, framed like any cell under the cursor.
func unpairedCell(st Styles, text string, w int, cursor bool) string {
	if cursor && w >= 3 {
		return st.Pending.Reverse(true).Render("[" + fit(text, w-2) + "]")
	}
	return st.Pending.Render(fit(" "+text, w))
}

// comparePanelView describes the cursor's aligned cell: where, both
// tokens, the metric's values, and A's and B's top-k side by side with the
// change of each of B's tokens from A's probability.
func (m *Model) comparePanelView(w, h int) string {
	c := &m.cmp
	st := m.styles
	if c.data == nil || w <= 0 || h <= 0 {
		return ""
	}
	d := c.data
	row, x := m.grid.row, m.grid.col
	if row < 0 || row >= len(d.Cells) {
		return ""
	}
	pa, pb, j := c.positions(x)
	last := row == len(d.Cells)-1
	where := "layer " + rowLabel(d.A.Rows[row], last)
	lines := []string{st.Title.Render(where) + st.Muted.Render(fmt.Sprintf(" · column %d of %d", x+1, c.width()))}
	tok := func(name string, p int, headers []string) string {
		if p < 0 || p >= len(headers) {
			return st.Muted.Render(name + " —")
		}
		return st.Muted.Render(name+" ") + headers[p] + st.Muted.Render(fmt.Sprintf(" pos %d", p+1))
	}
	var headersA []string
	if m.data != nil {
		headersA = m.data.headers
	}
	lines = append(lines, tok("A", pa, headersA)+"  "+tok("B", pb, c.headersB))
	if j < 0 {
		run, cell := "A", inference.Cell{}
		switch {
		case pa >= 0:
			cell = d.A.Cells[row][pa]
		case pb >= 0:
			run, cell = "B", d.B.Cells[row][pb]
		}
		lines = append(lines, st.Muted.Render("no partner: only "+run+" has this position"), "", st.Title.Render(run)+st.Muted.Render("'s top-k"))
		for i := 0; i < len(cell.Top) && len(lines) < h; i++ {
			lines = append(lines, topLine(m.tokenText(cell.Top[i].ID), display.Prob(cell.Top[i].Prob), "", min(w, 40)))
		}
		return m.panelBlock(m.withCompareLegend(lines, w, h), w, h)
	}
	p := d.Cells[row][j]
	if p.NonFinite {
		lines = append(lines, st.Warn.Render("not finite in A or B"))
		return m.panelBlock(m.withCompareLegend(lines, w, h), w, h)
	}
	differ := "same top-1"
	if p.Top1Differs() {
		differ = st.Accent.Render("top-1 differs")
	}
	lines = append(lines,
		st.Muted.Render("KL(A‖B) ")+fmt.Sprintf("%.3f nats", p.KL)+st.Muted.Render(" · ")+differ,
		st.Muted.Render("A's top-1 ")+m.tokenText(p.Top1A)+" "+display.Prob(p.ProbA)+st.Muted.Render(" → B ")+display.Prob(p.ProbB),
		st.Muted.Render(fmt.Sprintf("  Δp %+.3f · its rank in B %d", p.DeltaTop1(), p.RankB)))
	if d.Target >= 0 {
		lines = append(lines, st.Muted.Render("target ")+m.targetText+" "+display.Prob(p.TargetA)+st.Muted.Render(" → B ")+display.Prob(p.TargetB)+
			st.Muted.Render(fmt.Sprintf(" · Δp %+.3f", p.DeltaTarget())))
	}
	lines = append(lines, "")
	ca, cb := d.A.Cells[row][pa], d.B.Cells[row][pb]
	half := max(8, (w-1)/2)
	lines = append(lines, fitStyled(st.Title.Render("A"), half)+" "+st.Title.Render("B")+st.Muted.Render(" (Δ from A)"))
	probA := map[int]float64{}
	for _, t := range ca.Top {
		probA[t.ID] = t.Prob
	}
	for i := 0; i < max(len(ca.Top), len(cb.Top)) && len(lines) < h; i++ {
		var l, r string
		if i < len(ca.Top) {
			l = topLine(m.tokenText(ca.Top[i].ID), display.Prob(ca.Top[i].Prob), "", half)
		}
		if i < len(cb.Top) {
			t := cb.Top[i]
			delta := "new"
			if pA, ok := probA[t.ID]; ok {
				delta = fmt.Sprintf("%+.1f", 100*(t.Prob-pA))
			}
			// A fixed width for the change keeps B's probabilities in one column.
			r = topLine(m.tokenText(t.ID), display.Prob(t.Prob), st.Muted.Render(fmt.Sprintf(" %6s", delta)), w-half-1)
		}
		lines = append(lines, fitStyled(l, half)+" "+r)
	}
	return m.panelBlock(m.withCompareLegend(lines, w, h), w, h)
}

// withCompareLegend ends the panel's lines with the comparison's colour
// scale, when there is room for it.
func (m *Model) withCompareLegend(lines []string, w, h int) []string {
	if len(lines)+3 > h {
		return lines
	}
	c := &m.cmp
	scale := c.scale(m.info.Config.VocabSize, m.fixed)
	return append(lines, "", m.styles.Muted.Render("colour ")+c.metric.Label()+m.styles.Muted.Render(" (m)"), c.styles.compareLegend(scale, w))
}

// compareLegend draws a comparison's colour scale in about width cells:
// for kl-ab the diverging palette's half from its dark end (the largest
// KL) to its white centre (no difference), for the Δ metrics the whole
// palette from −1 through white (no change) to +1; without colour, the
// glyph ramp.
func (s Styles) compareLegend(scale export.Scale, width int) string {
	if s.glyphs() {
		return s.legend(scale, width)
	}
	dark, bright := scale.Ends()
	span := 1.0
	if scale.Metric == export.MetricKLAB {
		span = 0.5 // T(0) = 0.5: KL never goes past the centre
	}
	n := max(4, min(16, width-lipgloss.Width(dark)-lipgloss.Width(bright)-2))
	var b strings.Builder
	b.WriteString(dark + " ")
	for i := range n {
		t := span * (float64(i) + 0.5) / float64(n)
		b.WriteString(lipgloss.NewStyle().Background(s.scale.Color(t, s.profile)).Render(" "))
	}
	b.WriteString(" " + bright)
	return b.String()
}

// topLine is one entry of a top-k column: the token cut to the room left
// by its probability and suffix.
func topLine(tok, prob, suffix string, w int) string {
	room := w - len(prob) - 1 - lipgloss.Width(suffix)
	return fitStyled(fit(tok, max(1, room)), max(1, room)) + " " + prob + suffix
}

// panelBlock fits the panel's lines to w×h.
func (m *Model) panelBlock(lines []string, w, h int) string {
	if len(lines) > h {
		lines = lines[:h]
	}
	for i := range lines {
		lines[i] = fitStyled(lines[i], w)
	}
	return strings.Join(lines, "\n")
}
