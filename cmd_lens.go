package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/inference"
)

// lensOptions are a lens command line, parsed and checked.
type lensOptions struct {
	model  modelFlags
	prompt string
	lens   lensFlags
	tuned  lensChoice // --lens
	format export.Format
	output string         // -o; "" or "-" is stdout
	figure export.Options // metric and palette, for svg and html
	// compare is run B, when one of the --compare-* flags is given.
	compare compareFlags
}

// newLensCmd is `logitlens lens`. run replaces the lens in tests of the flags.
func newLensCmd(a *app, run func(context.Context, *lensOptions) error) *cobra.Command {
	if run == nil {
		run = func(ctx context.Context, o *lensOptions) error { return runLens(ctx, a, o) }
	}
	o := &lensOptions{}
	var pf promptFlags
	var format, metric, palette, scale string
	cmd := &cobra.Command{
		Use:   "lens",
		Short: "Compute one lens and print it as text, CSV, JSON, SVG or HTML",
		Long: `Compute the logit lens of one prompt and write it without a terminal UI.

Every layer's residual stream is decoded through ln_f and the unembedding
(with --lens tuned, through a tuned lens's translator first: see tune);
each cell (layer, position) gets its top-k, entropy and KL(P_final ‖ P_row)
in nats, and the rank and probability of the output's top-1, of the next
prompt token (csv, json) and of --target. Position t predicts token t+1.

The format is --format, else -o's extension (.txt .csv .json .svg .html, in
any case), else text. -o writes through a temporary file and a rename: a
failed run leaves no partial file. --metric and --palette colour the svg and
html figures (--kl-scale fixed puts kl and ce on 0..ln V, so figures of
different prompts compare) and are refused with the other formats.

--compare-prompt TEXT, --compare-model M and --compare-lens L add a run B
that changes one thing (the prompt; the checkpoint, which must have the
same tokenizer and number of layers; the lens, as --lens takes it) and, per
cell, compare A with B: KL(P_A ‖ P_B) in nats,
B's top-1, B's probability of A's top-1 and, with --target, the target's
Δp. Columns are right-aligned: with n = min(T_A, T_B), column j pairs A's
position T_A−n+j with B's T_B−n+j, so the last tokens face each other; the
longer prompt's extra positions keep their own top-1, uncompared. The
JSON gains a "compare" block, the CSV compare columns, the text a compare
grid; the figures draw the comparison on a diverging palette, --metric
kl-ab (the default there), delta-top1 or delta-target.`,
		Example: `  logitlens lens -m demo -p "The man said that"
  logitlens lens -m gpt2 -p "The Eiffel Tower is in the city of" --target " Paris" --format csv
  logitlens lens -m gpt2 --prompt-file essay.txt -o lens.html --metric kl
  logitlens lens -m gpt2 --lens tuned -p "The Eiffel Tower is in the city of"
  cat prompt.txt | logitlens lens -m gpt2 --prompt-file - --format json
  logitlens lens -m gpt2 -p "Paris is the capital of" --compare-prompt "Rome is the capital of" -o cmp.svg`,
		Args: noArgs(` (give the prompt with --prompt "..." or --prompt-file FILE)`),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			if err := o.model.check(cmd); err != nil {
				return err
			}
			if err := o.lens.check(); err != nil {
				return err
			}
			if err := o.tuned.check(); err != nil {
				return err
			}
			if o.tuned.tuned && o.lens.sublayers {
				return usagef("--sublayers: the tuned lens has translators only for block outputs; sublayer rows need --lens logit")
			}
			var err error
			if o.format, err = export.FormatOf(format, o.output); err != nil {
				if format == "" {
					return flagError("-o", err)
				}
				return flagError("--format", err)
			}
			if err := o.compare.check(cmd); err != nil {
				return err
			}
			if o.compare.lensSet && o.compare.lens.tuned && o.lens.sublayers {
				return usagef("--sublayers: the tuned lens has translators only for block outputs; sublayer rows need --compare-lens logit")
			}
			if !fs.Changed("metric") && o.compare.on() {
				metric = export.MetricKLAB.String()
			}
			if o.figure.Metric, err = export.ParseMetric(metric); err != nil {
				return flagError("--metric", err)
			}
			switch m := o.figure.Metric; {
			case m.Pairwise() && !o.compare.on():
				return usagef("--metric %s colours a comparison: give --compare-prompt, --compare-model or --compare-lens", m)
			case !m.Pairwise() && o.compare.on() && o.format.Figure():
				return usagef("--metric %s colours one lens; a comparison's figure is coloured by %s", m, strings.Join(metricNames(export.CompareMetrics()), ", "))
			}
			if err := checkPalette(palette); err != nil {
				return err
			}
			o.figure.Palette = palette
			if o.figure.FixedScale, err = parseScale(scale); err != nil {
				return err
			}
			if o.figure.Metric.NeedsTarget() && o.lens.target == "" {
				return usagef("--metric %s needs a token to track: give --target", o.figure.Metric)
			}
			if !o.format.Figure() {
				for _, name := range []string{"metric", "palette", "kl-scale"} {
					if fs.Changed(name) {
						return usagef("--%s colours the svg and html figures; the %s format has no colours", name, o.format)
					}
				}
			}
			if o.prompt, err = pf.read(cmd, cmd.InOrStdin()); err != nil {
				return err
			}
			if o.prompt == "" && !o.lens.bos {
				return usagef("lens needs a prompt: --prompt TEXT, --prompt-file FILE, or --bos for the empty prompt")
			}
			if o.compare.promptSet && o.compare.prompt == "" && !o.lens.bos {
				return usagef("--compare-prompt is empty: give run B's prompt, or --bos for the empty prompt")
			}
			return run(cmd.Context(), o)
		},
	}
	o.model.register(cmd)
	pf.register(cmd, "", "the prompt")
	o.lens.register(cmd, "predictions per cell")
	o.tuned.register(cmd)
	o.compare.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&format, "format", "", "output format: text, csv, json, svg or html (default: from -o's extension, else text)")
	fs.StringVarP(&o.output, "output", "o", "", `write to FILE instead of stdout ("-" for stdout)`)
	fs.StringVar(&metric, "metric", export.MetricProb.String(), "colour of the svg and html figures: "+strings.Join(metricNames(export.Metrics()), ", ")+
		"; of a comparison's: "+strings.Join(metricNames(export.CompareMetrics()), ", ")+" (kl-ab by default)")
	registerPalette(cmd, &palette, "palette of the svg and html figures")
	registerScale(cmd, &scale, "scale of the kl and ce colours in the figures")
	cmd.RegisterFlagCompletionFunc("format", completeFixed(export.FormatNames()))
	cmd.RegisterFlagCompletionFunc("metric", completeFixed(export.MetricNames()))
	cmd.MarkFlagFilename("output", "txt", "csv", "json", "svg", "html", "htm")
	sortFlagsAsRegistered(cmd)
	return cmd
}

// runLens loads the model, computes the lens and writes it.
func runLens(ctx context.Context, a *app, o *lensOptions) error {
	m, err := o.model.load(ctx, a)
	if err != nil {
		return err
	}
	defer m.Close()
	req, err := lensRequest(m, o, a)
	if err != nil {
		return err
	}
	warn := func(msg string) { fmt.Fprintln(a.stderr, "warning:", msg) }
	if req.Tuned, err = o.tuned.load(ctx, m, o.model.loadOptions(progressPrinter(a.stderr, a.stderrTTY)).Hub, warn); err != nil {
		return err
	}
	sess := m.NewSession()
	defer sess.Close()
	var doc *export.Document
	if o.compare.on() {
		if doc, err = runCompare(ctx, a, o, m, sess, req); err != nil {
			return err
		}
	} else {
		l, err := sess.Lens(ctx, req, nil)
		if err != nil {
			return err
		}
		doc = export.NewDocument(l, m, o.prompt, o.lens.bos, o.lens.topK)
	}
	if o.output == "" || o.output == "-" {
		return export.Write(a.out, o.format, doc, o.figure)
	}
	return export.WriteFile(o.output, o.format, doc, o.figure)
}

// runCompare computes run A (req on sess) and run B, which changes the
// prompt or the model, and returns A's document with the comparison.
func runCompare(ctx context.Context, a *app, o *lensOptions, m *inference.Model, sess *inference.Session, req inference.Request) (*export.Document, error) {
	mb := m
	b := export.RunB{Differs: o.compare.differs(), Prompt: o.prompt}
	reqB := req
	hubOpt := o.model.loadOptions(progressPrinter(a.stderr, a.stderrTTY)).Hub
	warn := func(msg string) { fmt.Fprintln(a.stderr, "warning:", msg) }
	if o.compare.promptSet {
		b.Prompt = o.compare.prompt
		reqB.IDs = promptIDs(m, b.Prompt, o.lens.bos)
		if err := m.Validate(reqB); err != nil {
			return nil, fmt.Errorf("--compare-prompt: %w", err)
		}
	}
	if o.compare.model != "" {
		mf := modelFlags{spec: o.compare.model, device: o.model.device, named: true}
		var err error
		if mb, err = mf.load(ctx, a); err != nil {
			return nil, fmt.Errorf("--compare-model: %w", err)
		}
		defer mb.Close()
		// B reads the prompt through the same kind of lens: its own
		// tuned lens when A's is tuned.
		var err2 error
		if reqB.Tuned, err2 = o.tuned.load(ctx, mb, hubOpt, warn); err2 != nil {
			return nil, fmt.Errorf("--compare-model %s: %w", display.Safe(o.compare.model), err2)
		}
		if err := mb.Validate(reqB); err != nil {
			return nil, fmt.Errorf("--compare-model %s: %w", display.Safe(o.compare.model), err)
		}
	}
	if o.compare.lensSet {
		var err error
		if reqB.Tuned, err = o.compare.lens.load(ctx, m, hubOpt, warn); err != nil {
			return nil, fmt.Errorf("--compare-lens: %w", renamedFlag{err, "--lens", "--compare-lens"})
		}
		if err := m.Validate(reqB); err != nil {
			return nil, fmt.Errorf("--compare-lens: %w", err)
		}
	}
	sessB := mb.NewSession()
	defer sessB.Close()
	pair, err := inference.NewPair(sess, sessB)
	if err != nil {
		return nil, err
	}
	c, err := pair.Compare(ctx, req, reqB, nil)
	if err != nil {
		return nil, err
	}
	doc := export.NewDocument(c.A, m, o.prompt, o.lens.bos, o.lens.topK)
	doc.AddComparison(c, mb, b)
	return doc, nil
}

// promptIDs tokenizes a prompt, after <|endoftext|> with bos.
func promptIDs(m *inference.Model, prompt string, bos bool) []int {
	var ids []int
	if bos {
		ids = append(ids, m.EOT())
	}
	for _, t := range m.Encode(prompt) {
		ids = append(ids, t.ID)
	}
	return ids
}

// metricNames are the names of some metrics.
func metricNames(ms []export.Metric) []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.String()
	}
	return names
}

// lensRequest tokenizes the prompt and the target.
func lensRequest(m *inference.Model, o *lensOptions, a *app) (inference.Request, error) {
	// NextToken: the exports give every cell the rank and probability of
	// the token that actually follows, the lens's most asked-for number.
	req := inference.Request{TopK: o.lens.topK, Target: -1, Sublayers: o.lens.sublayers, NextToken: true}
	for _, t := range m.Encode(o.prompt) {
		req.IDs = append(req.IDs, t.ID)
	}
	if o.lens.bos {
		if m.EOT() < 0 {
			return req, errors.New("--bos: the tokenizer has no <|endoftext|> token")
		}
		req.IDs = append([]int{m.EOT()}, req.IDs...)
	}
	if o.lens.target != "" {
		toks := m.Encode(o.lens.target)
		if len(toks) == 0 {
			return req, fmt.Errorf("--target %q has no tokens", display.Safe(o.lens.target))
		}
		req.Target = toks[0].ID
		if len(toks) > 1 {
			fmt.Fprintf(a.stderr, "note: --target %s is %d tokens; tracking its first, %s\n",
				display.Safe(o.lens.target), len(toks), m.TokenText(req.Target))
		}
	}
	return req, m.Validate(req)
}

// renamedFlag is an error whose advice names the flag from (the tuned
// lens's loader says "give --lens tuned:DIR") where the user gave the flag
// to: run B's lens is --compare-lens.
type renamedFlag struct {
	err      error
	from, to string
}

func (e renamedFlag) Error() string { return strings.Replace(e.err.Error(), e.from, e.to, 1) }
func (e renamedFlag) Unwrap() error { return e.err }
