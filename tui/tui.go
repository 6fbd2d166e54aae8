// Package tui is the logitlens explorer: a Bubble Tea program that shows the
// logit lens of a prompt as a heatmap while the prompt is edited.
//
// Design. One root Model owns the message loop, the focus and the layout.
// The prompt, grid, panel, status bar and help overlay are one type each in
// their own file, changed through methods and drawn by View(width, height);
// only the prompt editor has its own Update. The root Update dispatches each
// message type to one handler.
//
// Update never computes. An edit bumps a generation number, cancels the
// previous request's context and schedules a lens command after a short
// debounce; the command tokenises and runs Backend.Lens on its own goroutine
// and streams each finished column back through a channel, one message per
// column, so columns appear as they finish. Messages of an older generation
// are dropped. The model loads the same way, behind a progress view.
//
// The prompt. A multi-line editor of exact bytes (prompt.go): enter inserts
// a line break, ctrl+t a tab; tab, shift+tab or esc leave for the grid;
// pasted text is kept as the terminal sends it (its CR line breaks become
// LF). What a terminal would act on or hide (controls, bidi overrides,
// zero-width characters, bytes that are not UTF-8) is drawn as escapes.
// The prompt is limited to MaxPromptBytes; a prompt longer than the model's
// n_positions is read up to it, and the rest is marked.
//
// Layout. The prompt takes the top lines (as many as it needs, up to about
// a quarter of the screen) and the status bar the bottom line.
// Between them the grid has one row per lens row, the model output at the top
// (marked "out") and the embedding at the bottom ("emb"), like a plot with
// layers up the y axis; one column per prompt token. Row labels and column
// headers stay put while the grid scrolls. The panel for the cursor cell sits
// to the right on wide terminals and below the grid on narrow ones.
//
// The package sees inference only through the narrow Backend interface, so
// tests drive it with a fake.
package tui

import (
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"

	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/theme"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// Backend is what the explorer needs from a loaded model.
// *inference.Session implements it.
type Backend interface {
	// Info describes the model for the status bar and exports.
	Info() inference.Info
	// Encode tokenises the prompt: ids with the byte spans they came from.
	// A backend that also has Reencode (see reencoder) tokenises an edited
	// prompt from where it changed.
	Encode(text string) []inference.Token
	// TokenBytes returns the raw bytes of a token (shown with display.Token).
	TokenBytes(id int) []byte
	// EOT is the <|endoftext|> id, prepended when BOS is on.
	EOT() int
	// Lens computes with prefix reuse; calls are serialised inside; ctx
	// cancels (returns ctx.Err()); onColumn is called from the computing
	// goroutine once per finished position (may be nil).
	Lens(ctx context.Context, req inference.Request, onColumn func(inference.Column)) (*inference.Lens, error)
}

// reencoder is implemented by backends that re-tokenise an edited prompt
// from where it changed rather than whole (*inference.Session does):
// Reencode(prevText, prev, text) equals Encode(text) when prev is
// Encode(prevText).
type reencoder interface {
	Reencode(prevText string, prev []inference.Token, text string) []inference.Token
}

// Options configure the explorer. Load runs off the UI goroutine; progress
// reports downloads (may be called often).
type Options struct {
	ModelID     string        // shown while loading and in the status bar
	Prompt      string        // initial prompt
	TopK        int           // predictions per cell, 1..inference.MaxTopK; 0 means 10
	Target      string        // initial pinned target text; "" for none
	BOS         bool          // prepend <|endoftext|>
	Sublayers   bool          // add a resid_mid row after each block's attention
	Palette     string        // theme scale name; "" for viridis
	Metric      export.Metric // the first colour metric (MetricTarget needs Target)
	FixedScale  bool          // kl and ce on 0..ln V rather than up to the lens's largest value
	CellWidth   int           // grid column width, MinCellWidth..MaxCellWidth; 0 fits the space
	SnapshotDir string        // where `e` writes snapshots; "" for the working directory
	NoSnapshots string        // when set, `e` writes nothing and shows this notice (e.g. over SSH)
	// HistoryFile keeps the prompt history between runs (see
	// DefaultHistoryFile); "" keeps it for the session only.
	HistoryFile string
	// ComparePrompt, when not empty, opens compare mode with run B on this
	// prompt, fixed (the command line's --compare-prompt); else `c` opens
	// it with B's prompt editable.
	ComparePrompt string
	// CompareWith, when not empty, names a run B that reads A's prompt
	// through another model or lens (--compare-model, --compare-lens):
	// compare mode opens with B following every edit of A, and the
	// backend's Compare makes B differ (it receives B's request equal to
	// A's).
	CompareWith string
	// Remote is set when the explorer runs for a terminal elsewhere (over
	// SSH): this machine's clipboard is not the user's.
	Remote bool

	// Load loads the model; progress reports downloads.
	Load func(ctx context.Context, progress func(inference.Progress)) (Backend, error)
	// LoadTuned loads the tuned lens `l` switches to, for the loaded model
	// (the published one, the demo model's built-in one, or --lens
	// tuned:SOURCE); nil when there is none. It runs off the UI goroutine,
	// after Load; progress reports downloads.
	LoadTuned func(ctx context.Context, progress func(inference.Progress)) (*tunedlens.Lens, error)
	// Tuned starts with the tuned lens (loading it as soon as the model is).
	Tuned bool
}

// New returns the root model of one explorer session; teatest and an SSH
// server use it directly, one per session. An unknown palette falls back to
// viridis with a notice (Run rejects it up front).
func New(opts Options) tea.Model { return newModel(opts) }

// Run runs the explorer on the terminal with the alternate screen and mouse
// cell motion until the user quits or ctx is cancelled. Errors are shown
// inside the program; Run returns what prevented it from running (prefixed
// "tui: "), or, after the user quits the error screen, the load error.
func Run(ctx context.Context, opts Options) error {
	if _, err := theme.Lookup(opts.Palette); err != nil {
		return fmt.Errorf("tui: %w", err)
	}
	if opts.Load == nil {
		return errors.New("tui: Options.Load is nil")
	}
	m := newModel(opts)
	defer m.stop()
	_, err := tea.NewProgram(m, tea.WithContext(ctx)).Run()
	switch {
	case err == nil && m.loadErr != nil:
		// Shown in the program already; returned so the exit status says
		// the model did not load.
		return m.loadErr
	case err == nil:
		return nil
	case errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil:
		return nil
	}
	return fmt.Errorf("tui: %w", err)
}
