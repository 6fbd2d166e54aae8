package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// statusBar is the bottom line: model, device and BLAS, token count, last
// compute time, a spinner while computing, then a notice or error and the
// key hint.
type statusBar struct {
	styles    Styles
	model     string
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
	hint      func(width int) string // key hint fitted to the room left
}

// setError shows an error until the next successful lens.
func (s *statusBar) setError(e string) { s.err = e }

// clearError removes the error.
func (s *statusBar) clearError() { s.err = "" }

// setNotice shows a message until the next key.
func (s *statusBar) setNotice(n string) { s.notice = n }

// View draws the bar in width cells; height is always one line.
func (s statusBar) View(width, height int) string {
	if width <= 0 || height <= 0 {
		return ""
	}
	st := s.styles
	sep := st.Muted.Render(" │ ")
	name := s.model
	if w := lipgloss.Width(name); w > 24 {
		name = ansi.TruncateLeft(name, w-23, "…")
	}
	parts := []string{st.Accent.Render(name)}
	if s.device != "" {
		parts = append(parts, s.device)
	}
	switch {
	case s.total > s.tokens && s.capped:
		parts = append(parts, st.Warn.Render(fmt.Sprintf("%d of over %d tok", s.tokens, s.total)))
	case s.total > s.tokens:
		parts = append(parts, st.Warn.Render(fmt.Sprintf("%d of %d tok", s.tokens, s.total)))
	default:
		parts = append(parts, fmt.Sprintf("%d tok", s.tokens))
	}
	switch {
	case s.computing:
		parts = append(parts, st.Accent.Render(s.spinner)+" computing")
	case s.elapsed > 0:
		t := formatDuration(s.elapsed)
		if s.reused > 0 {
			t += st.Muted.Render(fmt.Sprintf(" (%d reused)", s.reused))
		}
		parts = append(parts, t)
	}
	left := strings.Join(parts, sep)
	var right string
	switch {
	case s.err != "":
		right = st.Error.Render(s.err)
	case s.notice != "":
		right = st.Warn.Render(s.notice)
	case s.hint != nil:
		right = s.hint(max(0, width-lipgloss.Width(left)-2))
	}
	lw, rw := lipgloss.Width(left), lipgloss.Width(right)
	if lw+2+rw > width {
		switch {
		case s.err != "":
			// An error matters more than the model line.
			left = fitStyled(left, max(0, width-rw-2))
		case s.notice != "":
			// A notice may take up to 60% of the line.
			left = fitStyled(left, min(lw, max(width*2/5, width-rw-2)))
		}
		right = fitStyled(right, max(0, width-lipgloss.Width(left)-2))
	}
	gap := max(0, width-lipgloss.Width(left)-lipgloss.Width(right))
	return fitStyled(left+strings.Repeat(" ", gap)+right, width)
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
