package tui

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/logitlens/logitlens/display"
)

// fidelityPrompts are texts whose bytes the model must read exactly: CR LF,
// tabs, trailing spaces, emoji (with a ZWJ sequence and a skin tone), CJK,
// combining marks, a control character, a bidi override and a byte that is
// not UTF-8.
var fidelityPrompts = []string{
	"def f(x):\r\n\treturn x  \r\n",
	"def f(x):\n\treturn x",
	"trailing spaces   ",
	"emoji 👍🏽 and 👨‍👩‍👧 family",
	"日本語です。東京\tタブ",
	"cafe\u0301 nai\u0308ve",
	"esc \x1b[31m red \u202e evil",
	"bad \xff byte",
	"\n\nleading newlines",
}

// TestPromptKeepsBytes starts the explorer with each prompt and checks that
// the editor holds it byte for byte and that the lens is computed on
// exactly the backend's tokens of those bytes.
func TestPromptKeepsBytes(t *testing.T) {
	for _, p := range fidelityPrompts {
		b := &fakeBackend{layers: 2}
		m := loaded(t, b, fakeOptions(b, p), 80, 24)
		if got := m.prompt.Value(); got != p {
			t.Errorf("prompt %q became %q", p, got)
		}
		if got, want := m.data.ids, b.ids(p, false); !equalInts(got, want) {
			t.Errorf("%q: ids %v, want %v", p, got, want)
		}
	}
}

// TestPasteKeepsBytes pastes text with tabs, trailing spaces and line breaks
// as terminals send them (CR, or CR LF): tabs and spaces stay, each line
// break arrives as LF.
func TestPasteKeepsBytes(t *testing.T) {
	b := &fakeBackend{layers: 2}
	m := loaded(t, b, fakeOptions(b, ""), 80, 24)
	_, cmd := m.Update(tea.PasteMsg{Content: "def f(x):\r\treturn x  \r\n# 日本 👍🏽\r"})
	settle(t, m, cmd)
	want := "def f(x):\n\treturn x  \n# 日本 👍🏽\n"
	if got := m.prompt.Value(); got != want {
		t.Errorf("pasted %q, want %q", got, want)
	}
	if got := m.data.ids; !equalInts(got, b.ids(want, false)) {
		t.Errorf("ids %v, want %v", got, b.ids(want, false))
	}
	// Typing: enter is a line break, ctrl+t a tab.
	m = loaded(t, b, fakeOptions(b, ""), 80, 24)
	typeText(t, m, "a")
	press(t, m, "enter", "ctrl+t")
	typeText(t, m, "b ")
	if got := m.prompt.Value(); got != "a\n\tb " {
		t.Errorf("typed %q", got)
	}
}

// TestPromptLimits: a paste past the byte limit is refused whole with a
// notice, and the undo history stays within its byte bound however large
// the prompt and however many the edits.
func TestPromptLimits(t *testing.T) {
	b := &fakeBackend{layers: 2}
	m := loaded(t, b, fakeOptions(b, "The cat"), 80, 24)
	huge := strings.Repeat("x", MaxPromptBytes)
	_, cmd := m.Update(tea.PasteMsg{Content: huge})
	settle(t, m, cmd)
	if got := m.prompt.Value(); got != "The cat" {
		t.Fatalf("an over-limit paste changed the prompt to %d bytes", len(got))
	}
	if s := screen(m); !strings.Contains(s, "paste refused") || !strings.Contains(s, display.Bytes(MaxPromptBytes)+" prompt limit") {
		t.Errorf("no notice for the refused paste:\n%s", s)
	}
	p := newPrompt("› ", strings.Repeat("y", MaxPromptBytes-1000), DefaultKeyMap(), m.styles)
	p.Focus()
	for i := range 300 {
		p.Update(tea.PasteMsg{Content: "z"})
		if i%2 == 0 {
			p.Update(keyMsg("backspace"))
		}
	}
	held := 0
	for _, s := range append(p.undo, p.redo...) {
		held += len(s.text)
	}
	if held > undoBytes || held != p.held {
		t.Errorf("undo holds %d bytes (counted %d), bound %d", held, p.held, undoBytes)
	}
	if len(p.undo) == 0 {
		t.Error("no undo step kept at all")
	}
}

// TestPromptShowsInvisibles draws control characters, a bidi override, a
// zero-width space, a byte that is not UTF-8, tabs, CR and trailing spaces
// visibly, and never sends them to the terminal raw.
func TestPromptShowsInvisibles(t *testing.T) {
	b := &fakeBackend{layers: 2}
	text := "a\x1b[2Jb\u202ec\u200bd\xffe\tf\rg  "
	m := loaded(t, b, fakeOptions(b, text), 120, 24)
	raw, _ := m.render()
	promptLine := strings.Split(ansi.Strip(raw), "\n")[0]
	for _, w := range []string{`a\x1b[2Jb`, `b\u202ec`, `c\u200bd`, `d\xffe`, "e⇥", "f␍g··"} {
		if !strings.Contains(promptLine, w) {
			t.Errorf("prompt line %q lacks %q", promptLine, w)
		}
	}
	plain := ansi.Strip(raw)
	for _, bad := range []string{"\x1b", "\u202e", "\u200b", "\xff", "\r", "\t"} {
		if strings.Contains(plain, bad) {
			t.Errorf("screen text holds %q raw", bad)
		}
	}
	if !utf8.ValidString(raw) {
		t.Error("the frame is not valid UTF-8")
	}
}

// TestPromptCursorWide checks the cursor against a terminal emulator: after
// typing wide, combining and emoji text, the terminal cursor sits right
// after the last character the emulator drew. The emulator measures
// grapheme clusters; so does the program once the terminal reports mode
// 2027, which the cases with emoji modifiers and ZWJ sequences need (without
// it a terminal and the renderer count 👍🏽 as two characters).
func TestPromptCursorWide(t *testing.T) {
	for _, c := range []struct {
		text      string
		graphemes bool
	}{
		{"日本語です", false}, {"cafe\u0301 👍 東京", false}, {"ab\tc", false},
		{"ok 👍🏽 👨‍👩‍👧 end", true},
	} {
		text := c.text
		b := &fakeBackend{layers: 2}
		m := newModel(fakeOptions(b, ""))
		x := newTerm(t, m, 80, 24, colorprofile.ANSI256)
		x.waitFor(t, "the placeholder", func(s string) bool { return strings.Contains(s, "type a prompt") })
		if c.graphemes {
			x.tm.Send(tea.ModeReportMsg{Mode: ansi.ModeUnicodeCore, Value: ansi.ModeSet})
		}
		x.tm.Send(tea.PasteMsg{Content: text})
		r := []rune(text)
		tail := string(r[len(r)-1:])
		// The placeholder goes with the paste: its letters are not the
		// text's last character.
		x.waitFor(t, "the typed text", func(s string) bool {
			line := strings.Split(s, "\n")[0]
			return !strings.Contains(line, "type a prompt") && strings.Contains(line, tail)
		})
		// The last drawn cell of the prompt line, as the emulator laid
		// the text out; the cursor follows in the same frame or the next.
		last, pos := -1, x.emu.CursorPosition()
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			last = -1
			for col := range 80 {
				if c := x.emu.CellAt(col, 0); c != nil && c.Content != "" && c.Content != " " {
					last = col + max(c.Width, 1) - 1
				}
			}
			pos = x.emu.CursorPosition()
			if (pos.Y == 0 && pos.X == last+1) || time.Now().After(deadline) {
				break
			}
		}
		if pos.Y != 0 || pos.X != last+1 {
			t.Errorf("%q: cursor at (%d,%d), want (%d,0) right after the text:\n%s", text, pos.X, pos.Y, last+1, x.screen())
		}
		x.keys("ctrl+c")
		x.tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	}
}

// TestPromptMovesByCharacter: left and backspace step over a whole
// character (a wide one, a combining sequence, an emoji with modifiers),
// up and down keep the column across lines.
func TestPromptMovesByCharacter(t *testing.T) {
	p := newPrompt("› ", "e\u0301👍🏽日", DefaultKeyMap(), newStyles(nil, 0))
	p.Focus()
	p.SetWidth(40)
	for _, want := range []int{len("e\u0301👍🏽"), len("e\u0301"), 0} {
		p.Update(keyMsg("left"))
		if p.cursor != want {
			t.Fatalf("left: cursor %d, want %d", p.cursor, want)
		}
	}
	p.Update(keyMsg("ctrl+e"))
	p.Update(keyMsg("backspace"))
	p.Update(keyMsg("backspace"))
	if got := p.Value(); got != "e\u0301" {
		t.Errorf("two backspaces left %q", got)
	}
	p.set("abcdef\nxy\nlonger line", 3)
	p.Update(keyMsg("down"))
	if p.cursor != len("abcdef\nxy") {
		t.Errorf("down onto a short line: cursor %d", p.cursor)
	}
	p.Update(keyMsg("down"))
	if want := len("abcdef\nxy\nlon"); p.cursor != want {
		t.Errorf("down again keeps column 3: cursor %d, want %d", p.cursor, want)
	}
}

// TestPasteClipboardNotices: over SSH ctrl+v says to paste with the
// terminal; locally a clipboard that cannot be read says so too, and the
// prompt is unchanged either way.
func TestPasteClipboardNotices(t *testing.T) {
	b := &fakeBackend{layers: 2}
	opts := fakeOptions(b, "The cat")
	opts.Remote = true
	m := loaded(t, b, opts, 120, 24)
	press(t, m, "ctrl+v")
	if s := screen(m); !strings.Contains(s, "over SSH") || m.prompt.Value() != "The cat" {
		t.Errorf("remote ctrl+v:\n%s", s)
	}
	m = loaded(t, b, fakeOptions(b, "The cat"), 120, 24)
	m.Update(clipboardMsg{err: errors.New("no clipboard utilities available")})
	if s := screen(m); !strings.Contains(s, "no clipboard to read") || m.prompt.Value() != "The cat" {
		t.Errorf("no clipboard:\n%s", s)
	}
	_, cmd := m.Update(clipboardMsg{text: "\tsat\r"})
	settle(t, m, cmd)
	if got := m.prompt.Value(); got != "The cat\tsat\n" {
		t.Errorf("clipboard paste: %q", got)
	}
}

// TestTypingWhileLoading: what is typed or pasted while the model loads is
// kept, and the first lens is of that text.
func TestTypingWhileLoading(t *testing.T) {
	b := &fakeBackend{layers: 2}
	m := newModel(fakeOptions(b, "The"))
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	typeText(t, m, " cat")
	m.Update(tea.PasteMsg{Content: " sat\r"})
	if s := screen(m); !strings.Contains(s, "The cat sat") {
		t.Errorf("the prompt is not shown while loading:\n%s", s)
	}
	_, cmd := m.Update(loadDoneMsg{backend: b})
	settle(t, m, cmd)
	if got, want := m.data.ids, b.ids("The cat sat\n", false); !equalInts(got, want) {
		t.Errorf("first lens of %v, want %v", got, want)
	}
}

// TestPromptWrapsAtWords: a long line wraps at its spaces, so words are
// not cut across lines (a word longer than the line is cut); every byte is
// on exactly one line, in order, and the cursor at the end of the text
// sits right after the last line's text.
func TestPromptWrapsAtWords(t *testing.T) {
	text := "The quick brown fox jumps over the lazy dog. " + strings.Repeat("x", 40) + " end\tof\tline"
	for _, width := range []int{12, 20, 33, 80} {
		p := newPrompt("› ", text, DefaultKeyMap(), newStyles(nil, 0))
		p.SetWidth(width)
		lay := p.layout()
		next := 0
		for i, r := range lay.rows {
			if r.start != next {
				t.Fatalf("width %d: line %d starts at byte %d, want %d", width, i, r.start, next)
			}
			next = r.end
			if r.xs[len(r.xs)-1] > lay.textW {
				t.Errorf("width %d: line %d is %d cells, more than %d", width, i, r.xs[len(r.xs)-1], lay.textW)
			}
			// Cut inside a word only where the word fills a whole line.
			if i+1 < len(lay.rows) && r.end > 0 && !strings.ContainsAny(text[r.end-1:r.end+1], " \t") {
				word := len(strings.Fields(text[:r.end+1][strings.LastIndexAny(text[:r.end], " \t")+1:])[0])
				if word < lay.textW {
					t.Errorf("width %d: line %d ends inside a word: %q", width, i, text[r.start:r.end])
				}
			}
		}
		if next != len(text) {
			t.Errorf("width %d: the lines end at byte %d of %d", width, next, len(text))
		}
		row, x := lay.locate(len(text))
		last := lay.rows[len(lay.rows)-1]
		if row != len(lay.rows)-1 || x != last.xs[len(last.xs)-1] {
			t.Errorf("width %d: the end of the text is at line %d column %d, want %d, %d", width, row, x, len(lay.rows)-1, last.xs[len(last.xs)-1])
		}
		if width == 20 {
			v, _ := p.View(20, 10)
			if lines := strings.Split(ansi.Strip(v), "\n"); len(lines) < 2 || strings.TrimRight(lines[0], " ") != "› The quick brown" ||
				!strings.HasPrefix(lines[1], "  fox jumps over") {
				t.Errorf("width 20:\n%s", ansi.Strip(v))
			}
		}
	}
}
