package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"charm.land/fang/v2"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/display"
)

// Exit statuses: 2 for a command line that cannot run (a flag, an argument),
// 130 for an interrupt (128 + SIGINT, as shells report it), 1 otherwise.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// app is what the commands take from the process: its streams, and whether
// stderr is a terminal (download progress redraws in place, errors are
// styled) — they never touch os.Stdin, os.Stdout or os.Stderr themselves.
type app struct {
	in          io.Reader
	out, stderr io.Writer
	stderrTTY   bool
}

// usageError is a command line that cannot run: an unknown flag or command,
// a bad flag value, a wrong number of arguments. It exits with status 2, and
// its message points at the help of the command it came from.
type usageError struct {
	err error
	cmd string // e.g. "logitlens lens"; set by annotateUsage
}

func (e usageError) Error() string { return e.err.Error() }

// Unwrap returns the error the usage error wraps.
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return usageError{err: fmt.Errorf(format, args...)}
}

// execute runs one command line and returns the process's exit status,
// having printed any error once, on stderr.
func execute(ctx context.Context, args []string, a *app) int {
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(a.in)
	root.SetOut(a.out)
	root.SetErr(a.stderr)
	v, c, _ := buildInfo()
	err := fang.Execute(ctx, root,
		fang.WithVersion(v), fang.WithCommit(c),
		fang.WithErrorHandler(errorHandler(a.stderrTTY)))
	return exitCode(err)
}

// newRootCmd builds the command tree: the explorer at the root, one
// subcommand per file cmd_*.go.
func newRootCmd(a *app) *cobra.Command {
	root := newExploreCmd(a, nil)
	root.AddCommand(
		newLensCmd(a, nil),
		newServeCmd(a, nil),
		newBenchCmd(a, nil),
		newTuneCmd(a, nil),
		newDownloadCmd(a, nil),
		newModelsCmd(a, nil),
		newVersionCmd(a),
	)
	root.SuggestionsMinimumDistance = 2 // "lenz" suggests lens
	// A bad flag anywhere is a usage error.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err: err, cmd: c.CommandPath()}
	})
	annotateUsage(root)
	return root
}

// annotateUsage makes the usage errors of cmd and its subcommands name the
// command, so the error can point at its help.
func annotateUsage(cmd *cobra.Command) {
	tag := func(err error) error {
		var ue usageError
		if errors.As(err, &ue) && ue.cmd == "" {
			ue.cmd = cmd.CommandPath()
			return ue
		}
		return err
	}
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error { return tag(args(c, a)) }
	}
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, a []string) error { return tag(run(c, a)) }
	}
	for _, sub := range cmd.Commands() {
		annotateUsage(sub)
	}
}

// exitCode maps an error to the exit status.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	}
	return exitError
}

// errorHandler prints an error: styled by fang on a terminal, as one plain
// "logitlens: …" line otherwise (logs, pipes, tests). Either way the text is
// cleaned of terminal controls, since errors quote user input and files.
func errorHandler(tty bool) fang.ErrorHandler {
	return func(w io.Writer, styles fang.Styles, err error) {
		msg := terminalSafe(err.Error())
		var ue usageError
		isUsage := errors.As(err, &ue)
		if errors.Is(err, context.Canceled) {
			msg = "interrupted"
		}
		if tty { // fang's look, without its capitalising of our first word
			text := styles.ErrorText.UnsetTransform()
			fmt.Fprintln(w, styles.ErrorHeader.String())
			fmt.Fprintln(w, text.Render(msg))
			fmt.Fprintln(w)
			if isUsage {
				fmt.Fprintln(w, text.Render("Run '"+ue.cmd+" --help' for usage."))
				fmt.Fprintln(w)
			}
			return
		}
		fmt.Fprintln(w, "logitlens: "+msg)
		if isUsage {
			fmt.Fprintf(w, "Run '%s --help' for usage.\n", ue.cmd)
		}
	}
}

// terminalSafe escapes, by display.Safe's rules, whatever in an error message
// a terminal would act on, keeping its line breaks and backslashes (errors
// are multi-line and may name Windows paths) and its length.
func terminalSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		_, n := utf8.DecodeRuneInString(s[i:])
		if piece := s[i : i+n]; piece == "\n" || piece == `\` {
			b.WriteString(piece)
		} else {
			b.WriteString(display.Safe(piece))
		}
		i += n
	}
	return b.String()
}

// noArgs rejects positional arguments, naming the first: a usage error.
func noArgs(hint string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		if cmd.HasSubCommands() {
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				return usagef("unknown command %q; did you mean %s?", display.Safe(args[0]), strings.Join(s, " or "))
			}
			return usagef("unknown command %q", display.Safe(args[0]))
		}
		return usagef("%s: unexpected argument %q%s", cmd.Name(), display.Safe(args[0]), hint)
	}
}

// sortFlagsAsRegistered lists a command's flags in help in the order they
// were registered (the shared sets first), not alphabetically.
func sortFlagsAsRegistered(cmd *cobra.Command) {
	cmd.Flags().SortFlags = false
}

// completeFixed completes a flag's value from a fixed list.
func completeFixed(values []string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// buildInfo returns the version, the commit and the Go version: stamped by
// the release build (-ldflags -X), else from the module's build info
// (go install …@v1.2.3, a go build in a checkout).
func buildInfo() (ver, rev, goVersion string) {
	ver, rev, goVersion = version, commit, "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if ver == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && (rev == "" || rev == "none") {
				rev = s.Value
			}
		}
	}
	if rev == "none" {
		rev = ""
	}
	return ver, rev, goVersion
}

// isTerminal reports whether f is a terminal (not merely a character
// device: /dev/null is one too).
func isTerminal(f *os.File) bool { return term.IsTerminal(f.Fd()) }
