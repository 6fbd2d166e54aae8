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
	format export.Format
	output string         // -o; "" or "-" is stdout
	figure export.Options // metric and palette, for svg and html
}

// newLensCmd is `logitlens lens`. run replaces the lens in tests of the flags.
func newLensCmd(a *app, run func(context.Context, *lensOptions) error) *cobra.Command {
	if run == nil {
		run = func(ctx context.Context, o *lensOptions) error { return runLens(ctx, a, o) }
	}
	o := &lensOptions{}
	var pf promptFlags
	var format, metric, palette string
	cmd := &cobra.Command{
		Use:   "lens",
		Short: "Compute one lens and print it as text, CSV, JSON, SVG or HTML",
		Long: `Compute the logit lens of one prompt and write it without a terminal UI.

Every layer's residual stream is decoded through ln_f and the unembedding;
each cell (layer, position) gets its top-k, entropy and KL(P_final ‖ P_row)
in nats, and the rank and probability of the output's top-1, of the next
prompt token (csv, json) and of --target. Position t predicts token t+1.

The format is --format, else -o's extension (.txt .csv .json .svg .html, in
any case), else text. -o writes through a temporary file and a rename: a
failed run leaves no partial file. --metric and --palette colour the svg and
html figures and are refused with the other formats.`,
		Example: `  logitlens lens -m demo -p "The man said that"
  logitlens lens -m gpt2 -p "The Eiffel Tower is in the city of" --target " Paris" --format csv
  logitlens lens -m gpt2 --prompt-file essay.txt -o lens.html --metric kl
  cat prompt.txt | logitlens lens -m gpt2 --prompt-file - --format json`,
		Args: noArgs(` (give the prompt with --prompt "..." or --prompt-file FILE)`),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			if err := o.model.check(cmd); err != nil {
				return err
			}
			if err := o.lens.check(); err != nil {
				return err
			}
			var err error
			if o.format, err = export.FormatOf(format, o.output); err != nil {
				if format == "" {
					return flagError("-o", err)
				}
				return flagError("--format", err)
			}
			if o.figure.Metric, err = export.ParseMetric(metric); err != nil {
				return flagError("--metric", err)
			}
			if err := checkPalette(palette); err != nil {
				return err
			}
			o.figure.Palette = palette
			if o.figure.Metric == export.MetricTarget && o.lens.target == "" {
				return usagef("--metric target needs a token to track: give --target")
			}
			if !o.format.Figure() {
				for _, name := range []string{"metric", "palette"} {
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
			return run(cmd.Context(), o)
		},
	}
	o.model.register(cmd)
	pf.register(cmd, "", "the prompt")
	o.lens.register(cmd, "predictions per cell")
	fs := cmd.Flags()
	fs.StringVar(&format, "format", "", "output format: text, csv, json, svg or html (default: from -o's extension, else text)")
	fs.StringVarP(&o.output, "output", "o", "", `write to FILE instead of stdout ("-" for stdout)`)
	fs.StringVar(&metric, "metric", export.MetricProb.String(), "colour of the svg and html figures: "+strings.Join(export.MetricNames(), ", "))
	registerPalette(cmd, &palette, "palette of the svg and html figures")
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
	sess := m.NewSession()
	defer sess.Close()
	l, err := sess.Lens(ctx, req, nil)
	if err != nil {
		return err
	}
	doc := export.NewDocument(l, m, o.prompt, o.lens.bos, o.lens.topK)
	if o.output == "" || o.output == "-" {
		return export.Write(a.out, o.format, doc, o.figure)
	}
	return export.WriteFile(o.output, o.format, doc, o.figure)
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
