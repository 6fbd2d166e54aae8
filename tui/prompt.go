package tui

// The prompt editor. It is written here rather than taken from bubbles
// textarea, which sanitises what it is given (a tab becomes four spaces, CR
// becomes LF, other control characters and bytes that are not UTF-8 are
// dropped) and measures the cursor in runes, so the lens saw another text
// than the one typed and the cursor drifted after wide characters. Here the
// text is a byte string kept exactly; the cursor is a byte offset; the
// screen is laid out in terminal cells by the same grapheme segmentation
// and width method as the renderer (ansi.FirstGraphemeCluster), so the
// terminal cursor lands where the text is. What a terminal would act on or
// hide is drawn visibly instead: a tab as "⇥" to the next tab stop, CR as
// "␍", controls, bidirectional overrides and other zero-width characters as
// escapes (\x1b, \u202e, \u200b), bytes that are not UTF-8 as \xff, and
// spaces at the end of a line as "·". Long lines wrap after a space or a
// tab, cutting a word only when it is longer than a line.

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/logitlens/logitlens/display"
)

// Prompt size limits. GPT-2 reads at most 1024 tokens, about 4 KiB of
// English; the limits are far above that and small enough that a pasted
// megabyte (over SSH, say) cannot make every key slow or memory grow.
const (
	// MaxPromptBytes bounds the prompt's text: a longer paste is refused
	// with a notice (never cut), a longer initial prompt cut with one.
	MaxPromptBytes = 64 << 10
	// maxPromptTokens bounds how many tokens of a prompt the explorer
	// keeps (the grid shows at most n_positions of them; the rest are
	// counted).
	maxPromptTokens = 16 << 10
	// undoBytes bounds the text the undo and redo stacks hold together;
	// undoDepth bounds their entries.
	undoBytes = 1 << 20
	undoDepth = 200
	// tabWidth is the distance between tab stops when a tab is drawn.
	tabWidth = 4
)

// prompt is a multi-line editor of exact bytes with undo, redo and a
// history of earlier prompts. It is the only component with its own Update;
// the target, search and jump inputs are one-line prompts.
type prompt struct {
	keys        KeyMap
	label       string // drawn before the first line, e.g. "› "
	placeholder string
	single      bool // one line: enter is left to the caller
	limit       int  // most bytes of text

	text    string
	cursor  int // byte offset into text, at a character boundary
	goalX   int // column kept by vertical moves; -1 for none
	focused bool
	method  ansi.Method // how the terminal measures characters
	// overflow is the byte offset from which the text lies past what the
	// model reads (n_positions); -1 when it all fits.
	overflow int

	width int // cells of a line, label included
	top   int // first visual line shown

	undo, redo []snapshot
	held       int    // bytes held by undo and redo
	lastOp     editOp // the kind of the last edit, to merge typing into one step

	history []string // earlier prompts, oldest first
	histPos int      // index into history while browsing; len(history) when not
	draft   string   // the text being written, kept while browsing

	styles Styles
	lay    *promptLayout // cached; nil when stale
}

// snapshot is a text and its cursor, for undo.
type snapshot struct {
	text   string
	cursor int
}

// editOp classifies an edit so that a run of typed characters, or of
// deletions, undoes as one step.
type editOp int

const (
	opNone editOp = iota
	opInsert
	opDelete
	opOther
)

// newPrompt returns an editor with the label drawn before the text.
func newPrompt(label, value string, keys KeyMap, st Styles) prompt {
	p := prompt{keys: keys, label: label, limit: MaxPromptBytes, goalX: -1, overflow: -1, styles: st, width: 80}
	p.text = value
	p.cursor = len(value)
	return p
}

// Value is the current text, exactly.
func (p *prompt) Value() string { return p.text }

// SetValue replaces the text, keeping the old one for undo, and puts the
// cursor at the end.
func (p *prompt) SetValue(s string) {
	if s == p.text {
		return
	}
	p.pushUndo(opOther)
	p.set(s, len(s))
}

// set replaces text and cursor without touching undo.
func (p *prompt) set(s string, cursor int) {
	p.text, p.cursor = s, min(max(cursor, 0), len(s))
	p.goalX = -1
	p.lay = nil
}

// Focus gives the editor the keyboard.
func (p *prompt) Focus() { p.focused = true; p.lay = nil }

// Blur takes the keyboard away.
func (p *prompt) Blur() { p.focused = false; p.lay = nil }

// SetWidth sets the width in cells, label included.
func (p *prompt) SetWidth(w int) {
	if w != p.width {
		p.width = w
		p.lay = nil
	}
}

// SetMethod sets how characters are measured, as the renderer does.
func (p *prompt) SetMethod(m ansi.Method) {
	if m != p.method {
		p.method = m
		p.lay = nil
	}
}

// SetStyles sets the styles the editor draws with.
func (p *prompt) SetStyles(st Styles) { p.styles = st; p.lay = nil }

// SetOverflow marks the text from byte off on as past what the model reads
// (-1: none).
func (p *prompt) SetOverflow(off int) {
	if off != p.overflow {
		p.overflow = off
		p.lay = nil
	}
}

// Record adds the current text to the history unless it is empty or the
// newest entry, and reports whether it did.
func (p *prompt) Record() bool {
	v := p.text
	p.histPos = len(p.history)
	if v == "" || len(p.history) > 0 && p.history[len(p.history)-1] == v {
		return false
	}
	p.history = append(p.history, v)
	if len(p.history) > historyMax {
		p.history = p.history[len(p.history)-historyMax:]
	}
	p.histPos = len(p.history)
	return true
}

// SetHistory replaces the history (loaded from disk), keeping entries
// recorded meanwhile after it.
func (p *prompt) SetHistory(h []string) {
	p.history = append(h, p.history...)
	if len(p.history) > historyMax {
		p.history = p.history[len(p.history)-historyMax:]
	}
	p.histPos = len(p.history)
}

// pushUndo saves the text before an edit of kind op; typing or deleting
// character after character saves once.
func (p *prompt) pushUndo(op editOp) {
	p.dropRedo()
	if op != opOther && op == p.lastOp {
		return
	}
	p.lastOp = op
	p.undo = append(p.undo, snapshot{p.text, p.cursor})
	p.held += len(p.text)
	p.trimUndo()
}

func (p *prompt) dropRedo() {
	for _, s := range p.redo {
		p.held -= len(s.text)
	}
	p.redo = nil
}

// trimUndo drops the oldest undo steps beyond the depth or byte bounds.
func (p *prompt) trimUndo() {
	for len(p.undo) > 0 && (len(p.undo) > undoDepth || p.held > undoBytes) {
		p.held -= len(p.undo[0].text)
		p.undo = p.undo[1:]
	}
}

// undoStep moves one step back (or forward, redo) in the edit history.
func (p *prompt) undoStep(redo bool) {
	from, to := &p.undo, &p.redo
	if redo {
		from, to = to, from
	}
	n := len(*from)
	if n == 0 {
		return
	}
	s := (*from)[n-1]
	*from = (*from)[:n-1]
	*to = append(*to, snapshot{p.text, p.cursor})
	p.held += len(p.text) - len(s.text)
	p.set(s.text, s.cursor)
	p.lastOp = opNone
	p.trimUndo()
}

// editResult says what a message did to the editor.
type editResult struct {
	changed bool   // the text changed
	notice  string // something to tell the user (a refused paste); "" for nothing
}

// Update handles a key or a paste while focused. Keys it does not know are
// ignored.
func (p *prompt) Update(msg tea.Msg) editResult {
	before := p.text
	var notice string
	switch msg := msg.(type) {
	case tea.PasteMsg:
		notice = p.insert(pastedText(msg.Content), opOther)
	case tea.KeyPressMsg:
		notice = p.key(msg)
	}
	if p.text != before {
		p.lay = nil
	}
	return editResult{changed: p.text != before, notice: notice}
}

// pastedText undoes the terminal's paste convention: terminals send each
// line break of pasted text as CR (as if Enter were typed), so CR LF and a
// lone CR become LF. Everything else is kept byte for byte; a file's exact
// bytes, CR LF included, go through --prompt-file.
func pastedText(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// key applies one key press.
func (p *prompt) key(k tea.KeyPressMsg) string {
	km := p.keys
	keepGoal := false
	defer func() {
		if !keepGoal {
			p.goalX = -1
		}
	}()
	switch {
	case !p.single && key.Matches(k, km.Newline):
		return p.insert("\n", opOther)
	case key.Matches(k, km.InsertTab):
		return p.insert("\t", opInsert)
	case key.Matches(k, km.Undo):
		p.undoStep(false)
	case key.Matches(k, km.Redo):
		p.undoStep(true)
	case key.Matches(k, km.HistPrev):
		p.browse(-1)
	case key.Matches(k, km.HistNext):
		p.browse(+1)
	case key.Matches(k, km.WordLeft):
		p.cursor = wordLeft(p.text, p.cursor)
	case key.Matches(k, km.WordRight):
		p.cursor = wordRight(p.text, p.cursor)
	case key.Matches(k, km.CharLeft):
		p.cursor = p.prevBoundary(p.cursor)
	case key.Matches(k, km.CharRight):
		p.cursor = p.nextBoundary(p.cursor)
	case key.Matches(k, km.TextStart):
		p.cursor = 0
	case key.Matches(k, km.TextEnd):
		p.cursor = len(p.text)
	case key.Matches(k, km.LineStart):
		p.cursor = lineStart(p.text, p.cursor)
	case key.Matches(k, km.LineEnd):
		p.cursor = lineEnd(p.text, p.cursor)
	case !p.single && key.Matches(k, km.LineUp):
		keepGoal = true
		p.vertical(-1)
	case !p.single && key.Matches(k, km.LineDown):
		keepGoal = true
		p.vertical(+1)
	case key.Matches(k, km.DeleteWordBack):
		p.remove(wordLeft(p.text, p.cursor), p.cursor, opOther)
	case key.Matches(k, km.DeleteWordForward):
		p.remove(p.cursor, wordRight(p.text, p.cursor), opOther)
	case key.Matches(k, km.DeleteBack):
		p.remove(p.prevBoundary(p.cursor), p.cursor, opDelete)
	case key.Matches(k, km.DeleteForward):
		p.remove(p.cursor, p.nextBoundary(p.cursor), opDelete)
	case key.Matches(k, km.DeleteToStart):
		p.remove(lineStart(p.text, p.cursor), p.cursor, opOther)
	case key.Matches(k, km.DeleteToEnd):
		end := lineEnd(p.text, p.cursor)
		if end == p.cursor && end < len(p.text) {
			end++ // at the end of a line: join the next one, as readline does
		}
		p.remove(p.cursor, end, opOther)
	case k.Text != "" && k.Mod&^tea.ModShift == 0:
		notice := p.insert(k.Text, opInsert)
		if k.Text == " " {
			p.lastOp = opNone // a space ends a word: the next word undoes separately
		}
		return notice
	}
	return ""
}

// insert puts s at the cursor, or refuses it with a notice when the text
// would exceed the limit (a paste is refused whole, never cut: a silently
// shortened prompt is a wrong lens).
func (p *prompt) insert(s string, op editOp) string {
	if s == "" {
		return ""
	}
	if len(p.text)+len(s) > p.limit {
		what := "paste refused"
		if len(s) == 1 || op == opInsert {
			what = "not typed"
		}
		return fmt.Sprintf("%s: over the %s prompt limit", what, display.Bytes(int64(p.limit)))
	}
	p.pushUndo(op)
	p.set(p.text[:p.cursor]+s+p.text[p.cursor:], p.cursor+len(s))
	return ""
}

// remove deletes text[a:b].
func (p *prompt) remove(a, b int, op editOp) {
	if a >= b {
		return
	}
	p.pushUndo(op)
	p.set(p.text[:a]+p.text[b:], a)
}

// browse moves through the history: -1 older, +1 newer; past the newest
// entry it restores the draft.
func (p *prompt) browse(dir int) {
	if len(p.history) == 0 {
		return
	}
	if p.histPos == len(p.history) {
		p.draft = p.text
	}
	p.histPos = min(max(p.histPos+dir, 0), len(p.history))
	v := p.draft
	if p.histPos < len(p.history) {
		v = p.history[p.histPos]
	}
	if v != p.text {
		p.pushUndo(opOther)
		p.set(v, len(v))
	}
}

// unitAt returns the length of the character unit at text[i]: a grapheme
// cluster, a single byte that is not UTF-8, or CR and LF each on their own
// (a CR LF cluster would hide the CR from the cursor).
func unitAt(text string, i int, m ansi.Method) (n, width int) {
	switch c := text[i]; {
	case c == '\r' || c == '\n' || c == '\t':
		return 1, 0
	case c < utf8.RuneSelf && (i+1 == len(text) || text[i+1] < utf8.RuneSelf):
		// ASCII followed by ASCII: a cluster of one (the common case,
		// without the segmenter's cost).
		if c < 0x20 || c == 0x7f {
			return 1, 0
		}
		return 1, 1
	}
	if r, size := utf8.DecodeRuneInString(text[i:]); r == utf8.RuneError && size == 1 {
		return 1, 0
	}
	cluster, w := ansi.FirstGraphemeCluster(text[i:], m)
	n = len(cluster)
	// A cluster never swallows bytes that are not UTF-8, or a CR or LF.
	for j := 0; j < n; {
		r, size := utf8.DecodeRuneInString(cluster[j:])
		if r == utf8.RuneError && size == 1 || r == '\r' || r == '\n' {
			if j == 0 {
				return 1, 0
			}
			return j, m.StringWidth(cluster[:j])
		}
		j += size
	}
	return max(n, 1), w
}

// prevBoundary is the start of the unit before offset i.
func (p *prompt) prevBoundary(i int) int {
	if i <= 0 {
		return 0
	}
	ls := lineStart(p.text, i)
	if ls == i {
		return i - 1 // the line break before
	}
	prev := ls
	for j := ls; j < i; {
		prev = j
		n, _ := unitAt(p.text, j, p.method)
		j += n
	}
	return prev
}

// nextBoundary is the end of the unit at offset i.
func (p *prompt) nextBoundary(i int) int {
	if i >= len(p.text) {
		return len(p.text)
	}
	n, _ := unitAt(p.text, i, p.method)
	return i + n
}

// lineStart is the offset of the first byte of i's line.
func lineStart(text string, i int) int { return strings.LastIndexByte(text[:i], '\n') + 1 }

// lineEnd is the offset of the line break ending i's line, or len(text).
func lineEnd(text string, i int) int {
	if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
		return i + j
	}
	return len(text)
}

// wordLeft skips spaces, then a word, leftwards from i.
func wordLeft(text string, i int) int {
	for i > 0 {
		r, n := utf8.DecodeLastRuneInString(text[:i])
		if !unicode.IsSpace(r) {
			break
		}
		i -= n
	}
	for i > 0 {
		r, n := utf8.DecodeLastRuneInString(text[:i])
		if unicode.IsSpace(r) {
			break
		}
		i -= n
	}
	return i
}

// wordRight skips spaces, then a word, rightwards from i.
func wordRight(text string, i int) int {
	for i < len(text) {
		r, n := utf8.DecodeRuneInString(text[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	for i < len(text) {
		r, n := utf8.DecodeRuneInString(text[i:])
		if unicode.IsSpace(r) {
			break
		}
		i += n
	}
	return i
}

// vertical moves the cursor dir visual lines, keeping its column.
func (p *prompt) vertical(dir int) {
	lay := p.layout()
	row, x := lay.locate(p.cursor)
	if p.goalX < 0 {
		p.goalX = x
	}
	to := row + dir
	switch {
	case to < 0:
		p.cursor = 0
	case to >= len(lay.rows):
		p.cursor = len(p.text)
	default:
		p.cursor = lay.rows[to].offsetAt(p.goalX)
	}
}

// Layout: the text cut into visual lines of the editor's width.

// promptLayout is the text laid out in visual lines.
type promptLayout struct {
	rows  []visualRow
	textW int // cells a line's text may use
}

// visualRow is one screen line of the editor: a run of units with their
// offsets and columns.
type visualRow struct {
	start, end int      // byte range of its units (a line break is not in it)
	offs       []int    // each unit's offset, then end
	xs         []int    // each unit's first column, then the column after the last
	draws      []string // each unit as drawn
	special    []bool   // drawn in the escape style (not the text itself)
}

// offsetAt returns the offset of the unit boundary nearest column x, not
// past the row's end.
func (r visualRow) offsetAt(x int) int {
	for i := len(r.xs) - 1; i >= 0; i-- {
		if r.xs[i] <= x {
			return r.offs[i]
		}
	}
	return r.start
}

// locate returns the visual line and column of offset off: the line whose
// range holds it (the later line where a wrap makes it both lines' edge).
func (l *promptLayout) locate(off int) (row, x int) {
	for i := len(l.rows) - 1; i >= 0; i-- {
		r := l.rows[i]
		if off >= r.start && off <= r.end {
			for j := len(r.offs) - 1; j >= 0; j-- {
				if r.offs[j] <= off {
					return i, r.xs[j]
				}
			}
			return i, 0
		}
	}
	return 0, 0
}

// labelWidth is the width of the label column.
func (p *prompt) labelWidth() int { return lipgloss.Width(p.label) }

// layout returns the cached layout, computing it when stale.
func (p *prompt) layout() *promptLayout {
	if p.lay != nil {
		return p.lay
	}
	// One cell stays free at the end of each line for the cursor.
	textW := max(1, p.width-p.labelWidth()-1)
	lay := &promptLayout{textW: textW}
	for start := 0; ; {
		end := lineEnd(p.text, start)
		lay.rows = layoutLine(lay.rows, p.text, start, end, textW, p.method)
		if end == len(p.text) {
			break
		}
		start = end + 1
	}
	p.lay = lay
	return lay
}

// layoutLine appends the visual lines of text[start:end], one logical line.
func layoutLine(rows []visualRow, text string, start, end, textW int, m ansi.Method) []visualRow {
	trail := start + len(strings.TrimRight(text[start:end], " ")) // trailing spaces from here
	row := visualRow{start: start}
	x, col := 0, 0 // column in the visual row; column in the logical line (for tab stops)
	// wordStart indexes the unit after the row's last space or tab, where
	// the row may wrap; 0 when a word fills the row so far. Lines wrap at
	// words, as a reader expects; the space stays at the end of its line,
	// so every byte is on one line and the cursor moves over it.
	wordStart := 0
	for i := start; i < end; {
		n, w := unitAt(text, i, m)
		u := text[i : i+n]
		draw, special := u, false
		switch {
		case u == "\t":
			w = tabWidth - col%tabWidth
			draw, special = "⇥"+strings.Repeat(" ", w-1), true
		case u == "\r":
			draw, special, w = "␍", true, 1
		case u == " " && i >= trail:
			draw, special = "·", true
		case w == 0:
			draw, special = escapeUnit(u), true
			w = len(draw)
		}
		if x > 0 && x+w > textW && wordStart > 0 && wordStart < len(row.draws) {
			// Wrap at the last space: the word moves to a new line.
			var next visualRow
			next, x = row.split(wordStart), x-row.xs[wordStart]
			rows = append(rows, row)
			row, wordStart = next, 0
		}
		if x > 0 && x+w > textW { // a word longer than the line
			row.end = i
			row.offs, row.xs = append(row.offs, i), append(row.xs, x)
			rows = append(rows, row)
			row, wordStart = visualRow{start: i}, 0
			x = 0
		}
		row.offs, row.xs = append(row.offs, i), append(row.xs, x)
		row.draws, row.special = append(row.draws, draw), append(row.special, special)
		x += w
		col += w
		i += n
		if u == " " || u == "\t" {
			wordStart = len(row.draws) // the unit after this space
		}
	}
	row.end = end
	row.offs, row.xs = append(row.offs, end), append(row.xs, x)
	return append(rows, row)
}

// split cuts the row before its unit k, returning the units from k on as
// a new row starting at column 0.
func (r *visualRow) split(k int) visualRow {
	next := visualRow{start: r.offs[k]}
	shift := r.xs[k]
	for j := k; j < len(r.draws); j++ {
		next.offs = append(next.offs, r.offs[j])
		next.xs = append(next.xs, r.xs[j]-shift)
		next.draws = append(next.draws, r.draws[j])
		next.special = append(next.special, r.special[j])
	}
	r.end = next.start
	r.offs, r.xs = append(r.offs[:k], next.start), append(r.xs[:k], shift)
	r.draws, r.special = r.draws[:k], r.special[:k]
	return next
}

// escapeUnit writes a unit that draws as nothing (a control, a
// bidirectional override, a zero-width character, a byte that is not
// UTF-8) as Go escapes.
func escapeUnit(u string) string {
	var b strings.Builder
	for i := 0; i < len(u); {
		r, n := utf8.DecodeRuneInString(u[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, u[i])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}

// Rows returns how many visual lines the text takes.
func (p *prompt) Rows() int { return len(p.layout().rows) }

// View draws the editor in width×height cells and returns where the
// terminal cursor goes (nil when blurred). Every line is exactly width
// cells as the terminal measures them.
func (p *prompt) View(width, height int) (string, *tea.Cursor) {
	if width <= 0 || height <= 0 {
		return "", nil
	}
	p.SetWidth(width)
	lay := p.layout()
	st := p.styles
	lw := p.labelWidth()
	crow, cx := lay.locate(p.cursor)
	// Scroll so that the cursor's line shows.
	p.top = clampInt(p.top, crow-height+1, crow)
	p.top = clampInt(p.top, 0, max(0, len(lay.rows)-height))

	labelStyle := st.PromptLabel
	if !p.focused {
		labelStyle = st.PromptLabelBlurred
	}
	lines := make([]string, 0, height)
	for i := p.top; i < p.top+height; i++ {
		var label string
		switch {
		case i == 0:
			label = labelStyle.Render(p.label)
		case i == p.top && p.top > 0:
			label = st.Muted.Render(fitLeft("▴ ", lw))
		case i == p.top+height-1 && i < len(lay.rows)-1:
			label = st.Muted.Render(fitLeft("▾ ", lw))
		default:
			label = strings.Repeat(" ", lw)
		}
		if i >= len(lay.rows) {
			lines = append(lines, strings.Repeat(" ", width))
			continue
		}
		body, used := p.drawRow(lay.rows[i], i == 0)
		if used > width-lw {
			// One unit wider than the line (a long escape on a narrow terminal).
			body, used = p.method.Truncate(body, width-lw, ""), width-lw
		}
		lines = append(lines, label+body+strings.Repeat(" ", max(0, width-lw-used)))
	}
	var cur *tea.Cursor
	if p.focused && crow >= p.top && crow < p.top+height {
		cur = tea.NewCursor(lw+cx, crow-p.top)
		cur.Blink = false
	}
	return strings.Join(lines, "\n"), cur
}

// drawRow draws one visual line and returns it with its width in cells.
func (p *prompt) drawRow(r visualRow, first bool) (string, int) {
	st := p.styles
	if p.text == "" && first && p.placeholder != "" {
		s := ansi.Truncate(p.placeholder, p.width-p.labelWidth()-1, "…")
		return st.Muted.Render(s), ansi.StringWidth(s)
	}
	var b strings.Builder
	for j, d := range r.draws {
		over := p.overflow >= 0 && r.offs[j] >= p.overflow
		switch {
		case over:
			b.WriteString(st.PromptOverflow.Render(d))
		case r.special[j]:
			b.WriteString(st.PromptEscape.Render(d))
		default:
			b.WriteString(d)
		}
	}
	return b.String(), r.xs[len(r.xs)-1]
}
