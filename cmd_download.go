package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights/hub"
)

// newDownloadCmd is `logitlens download MODEL`. run replaces the download in
// tests of the arguments.
func newDownloadCmd(a *app, run func(ctx context.Context, model string) error) *cobra.Command {
	if run == nil {
		run = func(ctx context.Context, model string) error { return runDownload(ctx, a, model) }
	}
	return &cobra.Command{
		Use:   "download MODEL",
		Short: "Fetch a model into the Hugging Face cache",
		Long: `Fetch a model's config, weights and tokenizer into the Hugging Face cache,
in the layout Python's huggingface_hub uses (the two share it), and print the
snapshot directory. An interrupted download resumes; every weights file is
checked against its sha256. The cache is HF_HUB_CACHE, else HF_HOME/hub,
else ~/.cache/huggingface/hub; HF_TOKEN is sent for gated and private repos.`,
		Example: `  logitlens download gpt2
  logitlens download openai-community/gpt2-medium@main`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("download: name one model, e.g. gpt2 or openai-community/gpt2-medium")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), args[0]) },
	}
}

// runDownload resolves the model, downloading what the cache lacks.
func runDownload(ctx context.Context, a *app, model string) error {
	opt := hub.OptionsFromEnv()
	opt.Progress = progressPrinter(a.stderr, a.stderrTTY)
	opt.Downloading = true // errors need not say "run logitlens download"
	snap, err := hub.Resolve(ctx, model, opt)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.out, display.Safe(snap.Dir))
	return nil
}
