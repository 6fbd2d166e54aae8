package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights/hub"
)

// modelsOptions are a models command line.
type modelsOptions struct {
	verify bool // re-hash every cached file
	repair bool // download corrupt files again (implies verify)
}

// newModelsCmd is `logitlens models`. run replaces the listing in tests of
// the flags.
func newModelsCmd(a *app, run func(context.Context, *modelsOptions) error) *cobra.Command {
	if run == nil {
		run = func(ctx context.Context, o *modelsOptions) error { return runModels(ctx, a, o) }
	}
	o := &modelsOptions{}
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List the models in the Hugging Face cache; verify and repair them",
		Long: `List the models in the Hugging Face cache (shared with Python's
huggingface_hub): repo, revision, commit, size on disk, and whether every
file logitlens needs is there.

--verify re-hashes every cached file against the hash it is stored under
(sha256 for weights, the git blob id for the others) and fails when one is
corrupt; --repair downloads corrupt files again.`,
		Example: `  logitlens models
  logitlens models --verify`,
		Args: noArgs(""),
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), o) },
	}
	cmd.Flags().BoolVar(&o.verify, "verify", false, "re-hash every cached file and report corrupt ones")
	cmd.Flags().BoolVar(&o.repair, "repair", false, "download corrupt files again (implies --verify)")
	sortFlagsAsRegistered(cmd)
	return cmd
}

// runModels prints the cache's models as a table, or verifies them. Folder
// and ref names are whatever is on disk, so they are shown through
// display.Safe.
func runModels(ctx context.Context, a *app, o *modelsOptions) error {
	opt := hub.OptionsFromEnv()
	if o.verify || o.repair {
		return verifyCache(ctx, opt, o.repair, a.out, a.stderr)
	}
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

// verifyCache re-hashes the cache's blobs (hub.Verify), reports the
// corrupt ones and, with repair, downloads them again (hub.Repair). It
// fails when corrupt blobs remain, so scripts can check.
func verifyCache(ctx context.Context, opt hub.Options, repair bool, stdout, stderr io.Writer) error {
	announced := false
	checks, err := hub.Verify(ctx, opt.CacheDir, func(p hub.VerifyProgress) {
		if !announced {
			announced = true
			fmt.Fprintf(stderr, "verifying %s of cached files in %s\n", display.Bytes(p.Total), display.Safe(opt.CacheDir))
		}
	})
	if err != nil {
		return err
	}
	var size int64
	corrupt, unverifiable := 0, 0
	for _, c := range checks {
		size += c.Size
		switch c.State {
		case hub.BlobUnverifiable:
			unverifiable++
		case hub.BlobCorrupt:
			where := "no snapshot uses it"
			if len(c.Files) > 0 {
				where = fmt.Sprintf("%s@%s", display.Safe(c.Files[0].File), display.Safe(c.Files[0].Commit[:min(len(c.Files[0].Commit), 12)]))
			}
			fmt.Fprintf(stdout, "corrupt: %s %s (blob %s): %s\n", display.Safe(c.Repo), where, display.Safe(c.ETag), display.Safe(c.Problem))
			if !repair {
				corrupt++
				continue
			}
			if err := hub.Repair(ctx, opt, c); err != nil {
				corrupt++
				fmt.Fprintf(stdout, "  not repaired: %s\n", terminalSafe(err.Error()))
			} else if len(c.Files) == 0 {
				fmt.Fprintln(stdout, "  deleted")
			} else {
				fmt.Fprintln(stdout, "  downloaded again")
			}
		}
	}
	fmt.Fprintf(stdout, "verified %d files (%s)", len(checks)-unverifiable, display.Bytes(size))
	if unverifiable > 0 {
		fmt.Fprintf(stdout, "; %d not named by a hash, not checked", unverifiable)
	}
	fmt.Fprintln(stdout)
	switch {
	case corrupt > 0 && repair:
		return fmt.Errorf("models: %d corrupt files could not be repaired", corrupt)
	case corrupt > 0:
		return fmt.Errorf("models: %d corrupt files: run `logitlens models --repair` to download them again", corrupt)
	}
	return nil
}
