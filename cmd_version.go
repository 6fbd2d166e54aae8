package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/inference"
)

// Set by the release build (-ldflags -X).
var (
	version = "dev"
	commit  = ""
)

// newVersionCmd is `logitlens version`: more than --version, which prints
// the version alone.
func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version, BLAS and CUDA status",
		Args:  noArgs(""),
		RunE: func(*cobra.Command, []string) error {
			v, c, goVersion := buildInfo()
			if c == "" {
				c = "unknown"
			}
			fmt.Fprintf(a.out, "logitlens %s\ncommit: %s\ngo: %s\nblas: %s\n", v, c, goVersion, inference.BLASName())
			if note := inference.BLASNote(); note != "" {
				fmt.Fprintf(a.out, "blas note: %s\n", note)
			}
			fmt.Fprintf(a.out, "cuda: %s\n", inference.CUDAStatus())
			return nil
		},
	}
}
