package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights/hub"
)

// newModelsCmd is `logitlens models`.
func newModelsCmd(a *app, run func() error) *cobra.Command {
	if run == nil {
		run = func() error { return runModels(a) }
	}
	return &cobra.Command{
		Use:   "models",
		Short: "List the models in the Hugging Face cache",
		Long: `List the models in the Hugging Face cache (shared with Python's
huggingface_hub): repo, revision, commit, size on disk, and whether every
file logitlens needs is there.`,
		Args: noArgs(""),
		RunE: func(*cobra.Command, []string) error { return run() },
	}
}

// runModels prints the cache's models as a table. Folder and ref names are
// whatever is on disk, so they are shown through display.Safe.
func runModels(a *app) error {
	opt := hub.OptionsFromEnv()
	models, err := hub.ListCached(opt.CacheDir)
	if err != nil {
		return err
	}
	if len(models) == 0 {
		fmt.Fprintf(a.stderr, "no models in %s; fetch one with: logitlens download gpt2\n", display.Safe(opt.CacheDir))
		return nil
	}
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tREVISION\tCOMMIT\tSIZE\tSTATUS")
	for _, m := range models {
		status := "complete"
		if !m.Complete {
			status = "partial"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", display.Safe(m.Repo), display.Safe(m.Revision),
			display.Safe(m.Commit[:min(len(m.Commit), 12)]), display.Bytes(m.Size), status)
	}
	return tw.Flush()
}
