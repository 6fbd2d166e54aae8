package main

// The flag sets shared by several commands. Each is registered by one
// method and checked by one, which every command calls before it loads
// anything, so a typo fails at once rather than after a download.

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/theme"
	"github.com/logitlens/logitlens/tui"
	"github.com/logitlens/logitlens/weights/builtin"
	"github.com/logitlens/logitlens/weights/hub"
)

// defaultPrompt is the explorer's and the server's first prompt.
const defaultPrompt = "The Eiffel Tower is in the city of"

// maxPromptFile bounds --prompt-file: far above any model's context (GPT-2
// reads 1024 tokens, a few KiB), small enough that /dev/zero or a wrong
// file fails at once instead of filling memory.
const maxPromptFile = 1 << 20

// modelFlags choose the model and the device that runs it.
type modelFlags struct {
	spec   string // --model
	device string // --device
	named  bool   // --model was given: that model or an error, no fallback
}

func (f *modelFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&f.spec, "model", "m", "gpt2", `Hugging Face repo id (optionally @revision), local directory, or "demo" (built in)`)
	fs.StringVar(&f.device, "device", "auto", "where to run: auto (a GPU when one works, else the CPU), cpu or cuda")
	cmd.RegisterFlagCompletionFunc("model", completeModels)
}

// check records whether --model was given; the device is checked by
// inference.Load before anything is resolved or downloaded.
func (f *modelFlags) check(cmd *cobra.Command) error {
	f.named = cmd.Flags().Changed("model")
	if strings.TrimSpace(f.spec) == "" {
		return usagef("--model is empty")
	}
	return nil
}

// load loads the model, reporting downloads on stderr. Only the default
// model falls back to the built-in one when the hub is out of reach: a model
// the user named is that model or an error.
func (f *modelFlags) load(ctx context.Context, a *app) (*inference.Model, error) {
	m, err := inference.Load(ctx, f.spec, f.loadOptions(progressPrinter(a.stderr, a.stderrTTY)))
	if err == nil && m.Info().Note != "" {
		fmt.Fprintln(a.stderr, "note:", m.Info().Note)
	}
	return m, err
}

func (f *modelFlags) loadOptions(progress func(hub.Progress)) inference.LoadOptions {
	opt := inference.LoadOptions{Hub: hub.OptionsFromEnv(), Device: f.device, Fallback: !f.named}
	opt.Hub.Progress = progress
	return opt
}

// completeModels offers the models in the cache and the built-in one.
func completeModels(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	names := []string{builtin.Name}
	if models, err := hub.ListCached(hub.OptionsFromEnv().CacheDir); err == nil {
		for _, m := range models {
			names = append(names, m.Repo)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// promptFlags give the prompt as text or as a file's exact bytes.
type promptFlags struct {
	text string // --prompt
	file string // --prompt-file; "-" is stdin
}

func (f *promptFlags) register(cmd *cobra.Command, def, usage string) {
	fs := cmd.Flags()
	fs.StringVarP(&f.text, "prompt", "p", def, usage)
	fs.StringVar(&f.file, "prompt-file", "", `read the prompt from FILE ("-" for stdin), byte for byte: newlines, tabs and CRLF are kept`)
	cmd.MarkFlagFilename("prompt-file")
}

// read returns the prompt: --prompt's text, or the bytes of --prompt-file
// unchanged (a final newline included: it is part of what the model reads).
func (f *promptFlags) read(cmd *cobra.Command, stdin io.Reader) (string, error) {
	if f.file == "" {
		return f.text, nil
	}
	if cmd.Flags().Changed("prompt") {
		return "", usagef("give --prompt or --prompt-file, not both")
	}
	r := stdin
	name := "stdin"
	if f.file != "-" {
		file, err := os.Open(f.file)
		if err != nil {
			return "", fmt.Errorf("--prompt-file: %w", err)
		}
		defer file.Close()
		if st, err := file.Stat(); err == nil && st.IsDir() {
			return "", fmt.Errorf("--prompt-file: %s is a directory", display.Safe(f.file))
		}
		r, name = file, display.Safe(f.file)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPromptFile+1))
	if err != nil {
		return "", fmt.Errorf("--prompt-file: %s: %w", name, err)
	}
	if len(b) > maxPromptFile {
		return "", fmt.Errorf("--prompt-file: %s is larger than %s: no model reads a prompt that long", name, display.Bytes(maxPromptFile))
	}
	return string(b), nil
}

// lensFlags are what a lens request asks for besides the prompt.
type lensFlags struct {
	topK      int    // --top-k
	target    string // --target
	sublayers bool   // --sublayers
	bos       bool   // --bos
}

func (f *lensFlags) register(cmd *cobra.Command, topKUsage string) {
	fs := cmd.Flags()
	registerTopK(cmd, &f.topK, topKUsage)
	fs.StringVar(&f.target, "target", "", "a token to track in every cell (its first token if it has several)")
	fs.BoolVar(&f.sublayers, "sublayers", false, "add each block's resid_mid row (after attention)")
	fs.BoolVar(&f.bos, "bos", false, "prepend <|endoftext|>")
}

func (f *lensFlags) check() error { return checkTopK(f.topK) }

// registerTopK registers -k/--top-k, which four commands share.
func registerTopK(cmd *cobra.Command, k *int, usage string) {
	cmd.Flags().IntVarP(k, "top-k", "k", 10, fmt.Sprintf("%s, 1..%d", usage, inference.MaxTopK))
}

// checkTopK rejects a --top-k outside 1..inference.MaxTopK.
func checkTopK(k int) error {
	if k < 1 || k > inference.MaxTopK {
		return usagef("--top-k %d is outside 1..%d", k, inference.MaxTopK)
	}
	return nil
}

// registerPalette registers --palette, shared by the explorer, serve and lens.
func registerPalette(cmd *cobra.Command, p *string, usage string) {
	cmd.Flags().StringVar(p, "palette", "viridis", usage+": "+strings.Join(theme.Names(), ", "))
	cmd.RegisterFlagCompletionFunc("palette", completeFixed(theme.Names()))
}

// checkPalette rejects an unknown --palette.
func checkPalette(p string) error {
	if _, err := theme.Lookup(p); err != nil {
		return flagError("--palette", err)
	}
	return nil
}

// registerScale registers --kl-scale, shared by the explorer and lens.
func registerScale(cmd *cobra.Command, s *string, usage string) {
	cmd.Flags().StringVar(s, "kl-scale", "lens", usage+`: "lens" (0 to the lens's largest value) or "fixed" (0 to ln V, the same for every prompt)`)
	cmd.RegisterFlagCompletionFunc("kl-scale", completeFixed([]string{"lens", "fixed"}))
}

// parseScale reads --kl-scale: whether KL and cross-entropy are drawn on
// the fixed 0..ln V.
func parseScale(s string) (fixed bool, err error) {
	switch s {
	case "lens":
		return false, nil
	case "fixed":
		return true, nil
	}
	return false, usagef(`--kl-scale %q: want "lens" or "fixed"`, display.Safe(s))
}

// flagError is a usage error about a flag's value, from a package's error:
// "--metric: unknown metric …" rather than "export: unknown metric …".
func flagError(flag string, err error) error {
	msg := err.Error()
	if pkg, rest, ok := strings.Cut(msg, ": "); ok && !strings.ContainsAny(pkg, " -") {
		msg = rest
	}
	return usagef("%s: %s", flag, msg)
}

// explorerFlags are how an explorer starts, shared by the explorer and
// serve (whose every session starts with them): what the cells show and how
// they are coloured.
type explorerFlags struct {
	lens      lensFlags
	tuned     lensChoice    // --lens
	palette   string        // --palette
	metric    export.Metric // --metric, the first colour
	fixed     bool          // --kl-scale fixed
	cellWidth int           // --cell-width; 0 sizes columns to the space

	metricName, scale string // as given, parsed by check
}

func (f *explorerFlags) register(cmd *cobra.Command) {
	f.lens.register(cmd, "predictions in the cursor panel")
	f.tuned.register(cmd)
	registerPalette(cmd, &f.palette, "colour scale")
	fs := cmd.Flags()
	fs.StringVar(&f.metricName, "metric", export.MetricProb.String(), "the first colour metric (m cycles): "+strings.Join(lensMetricNames(), ", "))
	cmd.RegisterFlagCompletionFunc("metric", completeFixed(lensMetricNames()))
	registerScale(cmd, &f.scale, "scale of the kl and ce colours (K toggles)")
	fs.IntVar(&f.cellWidth, "cell-width", 0, fmt.Sprintf("grid column width in cells, %d..%d; 0 widens columns to fill the space", tui.MinCellWidth, tui.MaxCellWidth))
}

func (f *explorerFlags) check() error {
	if err := f.lens.check(); err != nil {
		return err
	}
	if err := f.tuned.check(); err != nil {
		return err
	}
	if err := checkPalette(f.palette); err != nil {
		return err
	}
	var err error
	if f.metric, err = export.ParseMetric(f.metricName); err != nil {
		return flagError("--metric", err)
	}
	if f.metric.Pairwise() {
		return usagef("--metric %s colours a comparison of two runs: c in the grid opens one, m then cycles its metrics; the grid of one lens takes %s", f.metric, strings.Join(lensMetricNames(), ", "))
	}
	if f.metric == export.MetricTarget && f.lens.target == "" {
		return usagef("--metric target needs a token to track: give --target")
	}
	if f.fixed, err = parseScale(f.scale); err != nil {
		return err
	}
	if f.cellWidth != 0 && (f.cellWidth < tui.MinCellWidth || f.cellWidth > tui.MaxCellWidth) {
		return usagef("--cell-width %d is outside %d..%d (or 0: fit the space)", f.cellWidth, tui.MinCellWidth, tui.MaxCellWidth)
	}
	return nil
}

// options are the explorer's options these flags set.
func (f *explorerFlags) options() tui.Options {
	return tui.Options{
		TopK: f.lens.topK, Target: f.lens.target, BOS: f.lens.bos, Sublayers: f.lens.sublayers,
		Tuned: f.tuned.tuned, Palette: f.palette, Metric: f.metric, FixedScale: f.fixed, CellWidth: f.cellWidth,
	}
}

// lensMetricNames names the metrics of one lens (not a comparison's).
func lensMetricNames() []string {
	var names []string
	for _, m := range export.Metrics() {
		names = append(names, m.String())
	}
	return names
}

// compareFlags name a run B that differs from the lens's run in one thing.
type compareFlags struct {
	prompt    string     // --compare-prompt
	promptSet bool       // --compare-prompt was given (it may be "", with --bos)
	model     string     // --compare-model
	lens      lensChoice // --compare-lens
	lensSet   bool
}

// compareNames are the flags that name a run B.
var compareNames = []string{"compare-prompt", "compare-model", "compare-lens"}

func (f *compareFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.prompt, "compare-prompt", "", "compare with this prompt (same model and lens): KL(P_A ‖ P_B) per cell, right-aligned")
	fs.StringVar(&f.model, "compare-model", "", "compare with this checkpoint (same tokenizer and number of layers), same prompt and lens")
	fs.StringVar(&f.lens.value, "compare-lens", "", "compare with this lens on the same run: logit, tuned, tuned:DIR or tuned:REPO[@REV]/FOLDER")
	cmd.RegisterFlagCompletionFunc("compare-model", completeModels)
	cmd.RegisterFlagCompletionFunc("compare-lens", completeFixed([]string{"logit", "tuned", "tuned:"}))
}

// check records which run B was asked for and refuses more than one.
func (f *compareFlags) check(cmd *cobra.Command) error {
	fs := cmd.Flags()
	f.promptSet, f.lensSet = fs.Changed("compare-prompt"), fs.Changed("compare-lens")
	given := 0
	for _, name := range compareNames {
		if fs.Changed(name) {
			given++
		}
	}
	switch {
	case given > 1:
		return usagef("run B changes one thing: give one of --compare-prompt, --compare-model and --compare-lens")
	case fs.Changed("compare-model") && strings.TrimSpace(f.model) == "":
		return usagef("--compare-model is empty")
	case f.lensSet:
		if err := f.lens.check(); err != nil {
			return usagef("%s", strings.Replace(err.Error(), "--lens", "--compare-lens", 1))
		}
	}
	return nil
}

// on reports whether a run B was asked for.
func (f *compareFlags) on() bool { return f.promptSet || f.model != "" || f.lensSet }

// differs names what run B changes, as the JSON's compare.b.differs.
func (f *compareFlags) differs() string {
	switch {
	case f.promptSet:
		return "prompt"
	case f.lensSet:
		return "lens"
	}
	return "model"
}
