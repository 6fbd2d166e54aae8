package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// statusBar is the bottom of the screen: model, device and BLAS, token
// count, last compute time, a spinner while computing, then a notice or an
// error, or else the key hint. A notice or error that does not fit beside
// the model line gets lines of its own (up to maxStatusLines), so nothing
// the user is told is cut; the model line gives way first.
type statusBar struct {
	styles    Styles
	model     string
	lens      string // which lens the grid shows
	device    string
	tokens    int  // columns shown
	total     int  // tokens of the whole prompt when more than shown; 0 otherwise
	capped    bool // total stops at the explorer's token limit
	elapsed   time.Duration
	reused    int
	computing bool
	spinner   string
	err       string
	notice    string
	lasting   time.Time              // the notice outlives keys until then (setLasting)
	hint      func(width int) string // key hint fitted to the room left
}

// maxStatusLines bounds the status bar's height.
const maxStatusLines = 3

// setError shows an error until the next successful lens.
func (s *statusBar) setError(e string) { s.err = e }

// clearError removes the error.
func (s *statusBar) clearError() { s.err = "" }

// setNotice shows a message until the next key.
func (s *statusBar) setNotice(n string) { s.notice, s.lasting = n, time.Time{} }

// setLasting shows a message that the keys of the next d do not clear, for
// news the user did not ask for and must not miss while typing (a snapshot
// that lost its lens files).
func (s *statusBar) setLasting(n string, d time.Duration) {
	s.notice, s.lasting = n, time.Now().Add(d)
}

// keyPressed clears the notice unless it is lasting.
func (s *statusBar) keyPressed() {
	if time.Now().After(s.lasting) {
		s.notice = ""
	}
}

// left is the model line: model, device, tokens, time.
func (s statusBar) left(width int) string {
	st := s.styles
	sep := st.Muted.Render(" │ ")
	name := s.model
	if w := lipgloss.Width(name); w > 24 {
		name = ansi.TruncateLeft(name, w-23, "…")
	}
	var toks string
	switch {
	case s.total > s.tokens && s.capped:
		toks = st.Warn.Render(fmt.Sprintf("%d of over %d tok", s.tokens, s.total))
	case s.total > s.tokens:
		toks = st.Warn.Render(fmt.Sprintf("%d of %d tok", s.tokens, s.total))
	default:
		toks = fmt.Sprintf("%d tok", s.tokens)
	}
	var run string
	switch {
	case s.computing:
		run = st.Accent.Render(s.spinner) + " computing"
	case s.elapsed > 0:
		run = formatDuration(s.elapsed)
		if s.reused > 0 {
			run += st.Muted.Render(fmt.Sprintf(" (%d reused)", s.reused))
		}
	}
	// Drop parts from the least needed until the line fits: the device,
	// then the model name, then the reuse count.
	for _, parts := range [][]string{
		{st.Accent.Render(name), s.lens, s.device, toks, run},
		{st.Accent.Render(name), s.lens, toks, run},
		{s.lens, toks, run},
		{toks, run},
	} {
		var kept []string
		for _, p := range parts {
			if p != "" {
				kept = append(kept, p)
			}
		}
		if line := strings.Join(kept, sep); lipgloss.Width(line) <= width {
			return line
		}
	}
	return fitStyled(toks, width)
}

// Lines draws the bar in width cells: one line, or more when a notice or
// error needs them.
func (s statusBar) Lines(width int) []string {
	if width <= 0 {
		return []string{""}
	}
	st := s.styles
	msg := ""
	switch {
	case s.err != "":
		msg = st.Error.Render(s.err)
	case s.notice != "":
		msg = st.Warn.Render(s.notice)
	}
	left := s.left(width)
	lw := lipgloss.Width(left)
	if msg == "" {
		right := ""
		if room := width - lw - 2; s.hint != nil && room > 0 {
			// The help's short view may overrun the width it is given
			// (its ellipsis): cut it, so two cells always part it from
			// the model line.
			right = s.hint(room)
			if lipgloss.Width(right) > room {
				right = fitStyled(right, room)
			}
			if strings.TrimSpace(ansi.Strip(right)) == "…" { // no key fits: say nothing
				right = ""
			}
		}
		gap := max(0, width-lw-lipgloss.Width(right))
		return []string{fitStyled(left+strings.Repeat(" ", gap)+right, width)}
	}
	if lw+2+lipgloss.Width(msg) <= width {
		gap := width - lw - lipgloss.Width(msg)
		return []string{left + strings.Repeat(" ", gap) + msg}
	}
	// The message on lines of its own, wrapped; the model line above it
	// unless the message needs every line.
	wrapped := strings.Split(lipgloss.Wrap(msg, width, " "), "\n")
	if len(wrapped) > maxStatusLines {
		wrapped = wrapped[:maxStatusLines]
		last := len(wrapped) - 1
		wrapped[last] = fitStyled(wrapped[last], width-1) + "…"
	}
	var lines []string
	if len(wrapped) < maxStatusLines {
		lines = append(lines, fitStyled(left, width))
	}
	for _, l := range wrapped {
		lines = append(lines, fitStyled(l, width))
	}
	return lines
}

// View draws the bar in width×height cells (its last height lines).
func (s statusBar) View(width, height int) string {
	lines := s.Lines(width)
	if len(lines) > height {
		lines = lines[len(lines)-height:]
	}
	return strings.Join(lines, "\n")
}

// formatDuration prints a compute time with a sensible unit.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%dµs", d.Microseconds())
}
