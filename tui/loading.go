package tui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/hub"
)

// loader runs Options.Load on its own goroutine. Progress callbacks may come
// thousands of times a second, so they only record the latest report per file
// and poke a one-slot channel; the UI reads a snapshot per wake-up and never
// slows the download.
type loader struct {
	mu      sync.Mutex
	files   map[string]inference.Progress
	order   []string
	wake    chan struct{}
	done    chan loadDoneMsg
	started time.Time
}

// loadProgressMsg is a snapshot of the download reports, in arrival order.
type loadProgressMsg struct{ files []inference.Progress }

// loadDoneMsg ends loading with a backend or the error that stopped it.
type loadDoneMsg struct {
	backend Backend
	err     error
}

// startLoad begins loading and returns the command that reports on it.
func startLoad(ctx context.Context, load func(context.Context, func(inference.Progress)) (Backend, error)) (*loader, tea.Cmd) {
	l := &loader{
		files: map[string]inference.Progress{}, wake: make(chan struct{}, 1),
		done: make(chan loadDoneMsg, 1), started: time.Now(),
	}
	go func() {
		var b Backend
		err := protect(func() error {
			if load == nil {
				return errors.New("no model loader configured")
			}
			var err error
			b, err = load(ctx, l.report)
			if err == nil && b == nil {
				err = errors.New("loader returned no model")
			}
			return err
		})
		l.done <- loadDoneMsg{backend: b, err: err}
	}()
	return l, l.wait
}

// report records one progress report; it never blocks.
func (l *loader) report(p inference.Progress) {
	l.mu.Lock()
	if _, ok := l.files[p.File]; !ok {
		l.order = append(l.order, p.File)
	}
	l.files[p.File] = p
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// wait returns the next progress snapshot or the end of loading.
func (l *loader) wait() tea.Msg {
	select {
	case d := <-l.done:
		return d
	case <-l.wake:
		// At most ~20 snapshots a second: enough for a smooth bar.
		time.Sleep(50 * time.Millisecond)
		l.mu.Lock()
		defer l.mu.Unlock()
		files := make([]inference.Progress, 0, len(l.order))
		for _, f := range l.order {
			files = append(files, l.files[f])
		}
		return loadProgressMsg{files}
	}
}

// handleLoadProgress stores the snapshot and keeps listening.
func (m *Model) handleLoadProgress(msg loadProgressMsg) tea.Cmd {
	m.downloads = msg.files
	return m.load.wait
}

// handleLoadDone switches to the explorer, or to the error screen.
func (m *Model) handleLoadDone(msg loadDoneMsg) tea.Cmd {
	if msg.err != nil {
		if errors.Is(msg.err, context.Canceled) {
			return tea.Quit
		}
		m.loadErr = msg.err
		return nil
	}
	m.backend = msg.backend
	if err := protect(func() error { m.info = m.backend.Info(); return nil }); err != nil {
		m.loadErr = err
		m.backend = nil
		return nil
	}
	m.status.model = m.info.ID
	if m.status.model == "" {
		m.status.model = m.opts.ModelID
	}
	m.status.device = m.info.Device
	if m.info.BLAS != "" {
		m.status.device += "·" + m.info.BLAS
	}
	if m.info.Note != "" {
		m.status.setNotice(m.info.Note)
	}
	cmds := []tea.Cmd{m.requestLens()}
	if m.tl.on {
		cmds = append(cmds, m.loadTuned())
	}
	if m.opts.Target != "" {
		cmds = append(cmds, resolveTarget(m.backend, m.opts.Target))
	}
	return tea.Batch(cmds...)
}

// loadingView draws the progress screen: one bar per downloaded file, then
// a spinner while the weights load, or the error with what to do.
func (m *Model) loadingView(width, height int) string {
	st := m.styles
	var b strings.Builder
	b.WriteString(st.Title.Render("logitlens") + st.Muted.Render(" · ") + m.opts.ModelID + "\n\n")
	if m.loadErr != nil {
		b.WriteString(st.Error.Render("Could not load the model.") + "\n")
		b.WriteString(wrap(m.loadErr.Error(), min(width-4, 76)) + "\n\n")
		for _, h := range loadHints(m.loadErr, m.opts.ModelID) {
			b.WriteString(st.Muted.Render("• ") + wrap(h, min(width-6, 74)) + "\n")
		}
		b.WriteString("\n" + st.Muted.Render("q or ctrl+c quits"))
		return lipgloss.Place(width, height, lipgloss.Center, lipgloss.Center, b.String())
	}
	barW := clampInt(width-46, 10, 40)
	nameW := 0
	for _, f := range m.downloads {
		nameW = max(nameW, lipgloss.Width(f.File))
	}
	nameW = min(nameW, 28)
	allDone := true
	for _, f := range m.downloads {
		b.WriteString(fit(f.File, nameW) + " ")
		if f.Finished {
			b.WriteString(st.OK.Render("✓") + " " + display.Bytes(f.Total) + "\n")
			continue
		}
		allDone = false
		if f.Waiting {
			b.WriteString(st.Muted.Render("waiting for another process downloading it") + "\n")
			continue
		}
		frac := 0.0
		if f.Total > 0 {
			frac = float64(f.Done) / float64(f.Total)
		}
		b.WriteString(st.OK.Render(bar(frac, barW)) +
			fmt.Sprintf(" %3.0f%% %s", 100*frac, display.Bytes(f.Done)))
		if f.BytesPerSec > 0 {
			b.WriteString(st.Muted.Render(fmt.Sprintf(" %s/s", display.Bytes(int64(f.BytesPerSec)))))
		}
		if f.ETA > 0 {
			b.WriteString(st.Muted.Render(" ETA " + f.ETA.Round(time.Second).String()))
		}
		b.WriteString("\n")
	}
	if len(m.downloads) > 0 {
		b.WriteString("\n")
	}
	stage := "loading weights…"
	if !allDone {
		stage = "downloading…"
	}
	b.WriteString(st.Accent.Render(m.spin.View()) + " " + stage)
	return lipgloss.Place(width, height, lipgloss.Center, lipgloss.Center, b.String())
}

// loadHints says what to do about a failed load of modelID, fitted to the
// error: a missing local directory gets no advice about tokens or corrupt
// downloads, an offline miss no advice about model names.
func loadHints(err error, modelID string) []string {
	const (
		names   = "Check the model name: a Hugging Face id such as gpt2, gpt2-medium or openai-community/gpt2-xl (optionally @revision), a local directory, or demo."
		token   = "A gated or private repo needs a token: set HF_TOKEN (or log in with huggingface-cli)."
		layout  = "A model directory needs config.json, model.safetensors and the tokenizer files (vocab.json and merges.txt, or tokenizer.json)."
		offline = "Offline mode (HF_HUB_OFFLINE) uses only the local cache: run `logitlens download %s` while online, or unset HF_HUB_OFFLINE."
	)
	local := isLocalSpec(modelID)
	switch {
	case errors.Is(err, inference.ErrNoCUDA):
		return []string{"Run on the CPU with --device cpu, or use --device auto, which takes the GPU only when it works."}
	case local && errors.Is(err, fs.ErrNotExist):
		return []string{"Check the path: " + display.Safe(modelID) + " does not exist.", layout}
	case errors.Is(err, weights.ErrNoCheckpoint):
		return []string{layout}
	case errors.Is(err, hub.ErrOffline):
		return []string{fmt.Sprintf(offline, display.Safe(modelID))}
	case errors.Is(err, hub.ErrRepoNotFound), errors.Is(err, hub.ErrRevisionNotFound):
		if errors.Is(err, hub.ErrAuthRequired) {
			return []string{names, token}
		}
		return []string{names}
	case errors.Is(err, hub.ErrAuthRequired):
		return []string{token}
	case errors.Is(err, hub.ErrEntryNotFound):
		return []string{"The repository lacks a file logitlens reads: it may not be a GPT-2 checkpoint in safetensors.", layout}
	case errors.Is(err, hub.ErrUnreachable):
		return []string{"The hub could not be reached: check the network (or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to use only the local cache."}
	case errors.Is(err, hub.ErrIntegrity):
		return []string{"The download did not match its checksum and was deleted: run again to fetch it afresh."}
	case errors.Is(err, hub.ErrDiskFull):
		return []string{"The disk holding the cache is full: free space, or point HF_HUB_CACHE at another disk."}
	case local:
		return []string{layout}
	}
	// The files came from the cache and did not load.
	return []string{"If the cached download is damaged: delete the model's folder under " + display.Safe(hub.OptionsFromEnv().CacheDir) + " and run again."}
}

// isLocalSpec reports whether a --model value names a directory rather than
// a hub repo, by hub's rule: it looks like a path, or a directory of that
// name exists.
func isLocalSpec(spec string) bool {
	if spec == "." || spec == ".." || spec == "~" || filepath.IsAbs(spec) || strings.HasPrefix(spec, "./") ||
		strings.HasPrefix(spec, "../") || strings.HasPrefix(spec, "~/") {
		return true
	}
	st, err := os.Stat(spec)
	return err == nil && st.IsDir()
}

// wrap breaks text into lines of at most w cells.
func wrap(s string, w int) string {
	return lipgloss.NewStyle().Width(max(10, w)).Render(s)
}
