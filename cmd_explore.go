package main

import (
	"context"
	"errors"
	"sync"

	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/tui"
	"github.com/logitlens/logitlens/weights/hub"
)

// exploreOptions are the explorer's settings, parsed and checked.
type exploreOptions struct {
	model    modelFlags
	prompt   string
	explorer explorerFlags
	compare  compareFlags // run B, fixed by --compare-prompt, --compare-model or --compare-lens; none lets c open compare with B's prompt editable
}

// newExploreCmd is the root command: the explorer. run replaces the
// explorer in tests of the flags.
func newExploreCmd(a *app, run func(context.Context, *exploreOptions) error) *cobra.Command {
	if run == nil {
		run = func(ctx context.Context, o *exploreOptions) error { return runExplore(ctx, o) }
	}
	o := &exploreOptions{}
	var pf promptFlags
	cmd := &cobra.Command{
		Use:   "logitlens",
		Short: "Watch GPT-2 think: the logit lens in your terminal",
		Long: `Watch GPT-2 think: the logit lens in your terminal.

Without a command, logitlens opens the explorer: a prompt you edit live, and
a grid of every layer's residual stream decoded through ln_f and the
unembedding, one cell per (layer, position), coloured by a metric (m cycles),
with the cursor cell's top-k in a side panel. f1 (or ? in the grid) lists
the keys.

The model is any GPT-2 checkpoint in Hugging Face layout: a hub id (fetched
into the Hugging Face cache), a local directory, or "demo", the small model
built into the binary. Without --model, gpt2 is used, or the demo model when
gpt2 is neither cached nor reachable.`,
		Example: `  # the explorer on the built-in model, no download
  logitlens --model demo
  # gpt2-medium, prompt from a file, tracking " Paris"
  logitlens -m gpt2-medium --prompt-file prompt.txt --target " Paris"`,
		Args: noArgs(""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.model.check(cmd); err != nil {
				return err
			}
			if err := o.explorer.check(); err != nil {
				return err
			}
			if err := o.compare.check(cmd); err != nil {
				return err
			}
			if o.compare.promptSet && o.compare.prompt == "" {
				return usagef("--compare-prompt is empty: give run B's prompt (or press c in the explorer to type it)")
			}
			prompt, err := pf.read(cmd, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if err := checkExplorerPrompt(prompt); err != nil {
				return err
			}
			o.prompt = prompt
			return run(cmd.Context(), o)
		},
	}
	o.model.register(cmd)
	pf.register(cmd, defaultPrompt, "the first prompt; edit it live")
	o.explorer.register(cmd)
	o.compare.register(cmd)
	sortFlagsAsRegistered(cmd)
	return cmd
}

// runExplore runs the explorer until the user quits; the model loads inside
// it, with its download progress on screen.
func runExplore(ctx context.Context, o *exploreOptions) error {
	var loaded, loadedB loadedModel
	defer loaded.close()
	defer loadedB.close()
	opts := o.explorer.options()
	opts.ModelID, opts.Prompt, opts.HistoryFile = o.model.spec, o.prompt, tui.DefaultHistoryFile()
	opts.LoadTuned = o.explorer.tuned.loader(loaded.model, func(p func(hub.Progress)) hub.Options { return o.model.loadOptions(p).Hub })
	opts.ComparePrompt, opts.CompareWith = o.compare.prompt, o.compareWith()
	opts.Load = func(ctx context.Context, progress func(inference.Progress)) (tui.Backend, error) {
		m, err := inference.Load(ctx, o.model.spec, o.model.loadOptions(progress))
		if err != nil {
			return nil, err
		}
		if !loaded.keep(m) {
			return nil, errors.New("the explorer ended while the model loaded")
		}
		return o.backendB(ctx, m, m.NewSession(), &loadedB, progress)
	}
	return tui.Run(ctx, opts)
}

// loadedModel is the model the explorer's loader opened, closed (with its
// sessions) when the explorer ends, even if it ends while loading.
type loadedModel struct {
	mu     sync.Mutex
	m      *inference.Model
	closed bool
}

// keep records m, or closes it and returns false when the explorer has ended.
func (l *loadedModel) keep(m *inference.Model) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		m.Close()
		return false
	}
	l.m = m
	return true
}

// model returns the loaded model, or nil.
func (l *loadedModel) model() *inference.Model {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m
}

func (l *loadedModel) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.m != nil {
		l.m.Close()
	}
}

// checkExplorerPrompt refuses a first prompt longer than the explorer
// edits; `lens` takes longer ones.
func checkExplorerPrompt(prompt string) error {
	if len(prompt) > tui.MaxPromptBytes {
		return usagef("the prompt is %s; the explorer edits at most %s (logitlens lens reads up to %s)",
			display.Bytes(int64(len(prompt))), display.Bytes(tui.MaxPromptBytes), display.Bytes(maxPromptFile))
	}
	return nil
}
