// Command logitlens shows the logit lens of GPT-2 checkpoints: every
// layer's residual stream decoded into next-token probabilities, live in the
// terminal (the explorer) or as text, CSV or JSON (the lens command).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights/hub"

	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/bench"
	"github.com/logitlens/logitlens/theme"
	"github.com/logitlens/logitlens/tui"
	"github.com/logitlens/logitlens/tui/serve"
)

// Set by the release build (-ldflags -X).
var (
	version = "dev"
	commit  = ""
)

const usage = `logitlens — watch GPT-2 think: the logit lens in your terminal.

Usage:
  logitlens [flags]                 open the explorer (live prompt, lens grid, top-k)
  logitlens lens --prompt TEXT      print the lens (text, csv or json)
  logitlens serve [flags]           serve the explorer over SSH (public keys only)
  logitlens bench [flags]           time the full lens and a one-token append
  logitlens download MODEL          fetch a model into the Hugging Face cache
  logitlens models                  list the models in the cache
  logitlens version                 print version, Go and BLAS

Run 'logitlens COMMAND -h' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "logitlens:", err)
		os.Exit(1)
	}
}

// run dispatches a command line; it is main without the process around it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "lens":
			return lensCmd(ctx, args[1:], stdout, stderr)
		case "download":
			return downloadCmd(ctx, args[1:], stdout, stderr)
		case "serve":
			return serveCmd(ctx, args[1:], stderr)
		case "bench":
			return benchCmd(ctx, args[1:], stdout, stderr)
		case "models":
			return modelsCmd(ctx, args[1:], stdout, stderr)
		case "version":
			return versionCmd(stdout)
		case "help":
			fmt.Fprint(stdout, usage)
			return nil
		}
		return fmt.Errorf("unknown command %q\n\n%s", args[0], usage)
	}
	return exploreCmd(ctx, args, stderr)
}

// modelFlags are the flags shared by the commands that load a model.
type modelFlags struct {
	model, device string
	fs            *flag.FlagSet
}

func (f *modelFlags) register(fs *flag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.model, "model", "gpt2", `Hugging Face repo id (optionally @revision), local directory, or "demo" (built in)`)
	fs.StringVar(&f.device, "device", "auto", "auto, cpu or cuda")
}

// loadOptions builds the model's load options. Only the default model falls
// back to the built-in one when the hub is out of reach: a model the user
// named is that model or an error.
func (f *modelFlags) loadOptions(progress func(hub.Progress)) inference.LoadOptions {
	named := false
	f.fs.Visit(func(fl *flag.Flag) { named = named || fl.Name == "model" })
	opt := inference.LoadOptions{Hub: hub.OptionsFromEnv(), Device: f.device, Fallback: !named}
	opt.Hub.Progress = progress
	return opt
}

// checkTopK rejects a --top-k outside 1..inference.MaxTopK before any
// model loads; prefix names the command ("" for the explorer).
func checkTopK(prefix string, k int) error {
	if k < 1 || k > inference.MaxTopK {
		return fmt.Errorf("%s--top-k %d is outside 1..%d", prefix, k, inference.MaxTopK)
	}
	return nil
}

// lensFlags are the flags of a lens request.
type lensFlags struct {
	prompt, target     string
	topK               int
	bos, sublayers     bool
	format, outputPath string
	metric, palette    string
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func lensCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var mf modelFlags
	var lf lensFlags
	fs := newFlagSet("lens", "logitlens lens --prompt TEXT [flags]", stderr)
	mf.register(fs)
	fs.StringVar(&lf.prompt, "prompt", "", "the prompt (required)")
	fs.IntVar(&lf.topK, "top-k", 10, "predictions per cell, 1..50")
	fs.StringVar(&lf.target, "target", "", "a token to track in every cell (its first token if it has several)")
	fs.BoolVar(&lf.sublayers, "sublayers", false, "add each block's resid_mid row (after attention)")
	fs.BoolVar(&lf.bos, "bos", false, "prepend <|endoftext|>")
	fs.StringVar(&lf.format, "format", "", "text, csv, json, svg or html (default: from -o's extension, else text)")
	fs.StringVar(&lf.metric, "metric", export.MetricProb.String(), "svg/html colour: "+strings.Join(export.MetricNames(), ", "))
	fs.StringVar(&lf.palette, "palette", "viridis", "svg/html palette: "+strings.Join(theme.Names(), ", "))
	fs.StringVar(&lf.outputPath, "o", "", "write to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("lens: unexpected argument %q (quote the prompt: --prompt \"...\")", fs.Arg(0))
	}
	if lf.prompt == "" && !lf.bos {
		return errors.New("lens: --prompt is required (or --bos for the empty prompt)")
	}
	if err := checkTopK("lens: ", lf.topK); err != nil {
		return err
	}
	format, err := export.FormatOf(lf.format, lf.outputPath)
	if err != nil {
		return err
	}
	metric, err := export.ParseMetric(lf.metric)
	if err != nil {
		return err
	}
	fopt := export.Options{Metric: metric, Palette: lf.palette}
	if err := fopt.Validate(lf.target != ""); err != nil {
		return err
	}
	m, err := loadModel(ctx, mf, stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	req, err := buildRequest(m, lf, stderr)
	if err != nil {
		return err
	}
	sess := m.NewSession()
	defer sess.Close()
	l, err := sess.Lens(ctx, req, nil)
	if err != nil {
		return err
	}
	doc := export.NewDocument(l, m, lf.prompt, lf.bos, lf.topK)
	if lf.outputPath == "" || lf.outputPath == "-" {
		return export.Write(stdout, format, doc, fopt)
	}
	if err := export.WriteFile(lf.outputPath, format, doc, fopt); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s\n", display.Safe(lf.outputPath))
	return nil
}

// buildRequest tokenizes the prompt and the target.
func buildRequest(m *inference.Model, lf lensFlags, stderr io.Writer) (inference.Request, error) {
	req := inference.Request{TopK: lf.topK, Target: -1, Sublayers: lf.sublayers}
	for _, t := range m.Encode(lf.prompt) {
		req.IDs = append(req.IDs, t.ID)
	}
	if lf.bos {
		if m.EOT() < 0 {
			return req, errors.New("lens: --bos: the tokenizer has no <|endoftext|> token")
		}
		req.IDs = append([]int{m.EOT()}, req.IDs...)
	}
	if lf.target != "" {
		toks := m.Encode(lf.target)
		if len(toks) == 0 {
			return req, fmt.Errorf("lens: --target %q has no tokens", lf.target)
		}
		req.Target = toks[0].ID
		if len(toks) > 1 {
			fmt.Fprintf(stderr, "target %q is %d tokens; tracking its first, %s\n", lf.target, len(toks), m.TokenText(req.Target))
		}
	}
	return req, m.Validate(req)
}

// loadModel loads the model named by the flags, reporting downloads and
// any fallback on stderr.
func loadModel(ctx context.Context, mf modelFlags, stderr io.Writer) (*inference.Model, error) {
	m, err := inference.Load(ctx, mf.model, mf.loadOptions(progressLine(stderr)))
	if err == nil && m.Info().Note != "" {
		fmt.Fprintln(stderr, "note:", m.Info().Note)
	}
	return m, err
}

// progressLine renders download progress as one line on stderr: redrawn in
// place on a terminal, one line per file otherwise.
func progressLine(w io.Writer) func(hub.Progress) {
	tty := isTerminal(w)
	return func(p hub.Progress) {
		switch {
		case p.Finished:
			fmt.Fprintf(w, "\r\033[Kdownloaded %s (%s)\n", p.File, display.Bytes(p.Done))
		case tty:
			eta := "?"
			if p.ETA > 0 {
				eta = p.ETA.Round(time.Second).String()
			}
			fmt.Fprintf(w, "\r\033[Kdownloading %s: %s / %s, %s/s, ETA %s", p.File, display.Bytes(p.Done), display.Bytes(p.Total), display.Bytes(int64(p.BytesPerSec)), eta)
		case p.Done == 0:
			fmt.Fprintf(w, "downloading %s (%s)\n", p.File, display.Bytes(p.Total))
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var mf modelFlags
	var tokens, format string
	var opt bench.Options
	fs := newFlagSet("bench", "logitlens bench [--model M] [--tokens 16,64,128] [--runs 7] [--format text|json]", stderr)
	mf.register(fs)
	fs.StringVar(&tokens, "tokens", "16,64,128", "prompt lengths to time, comma-separated")
	fs.IntVar(&opt.Runs, "runs", 7, "timed runs per measurement, after one warm-up")
	fs.IntVar(&opt.TopK, "top-k", 10, "predictions per cell, 1..50")
	fs.BoolVar(&opt.Sublayers, "sublayers", false, "add each block's resid_mid row")
	fs.StringVar(&format, "format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if format != "text" && format != "json" {
		return fmt.Errorf("bench: unknown format %q (want text or json)", format)
	}
	if err := checkTopK("bench: ", opt.TopK); err != nil {
		return err
	}
	if opt.Runs < 1 {
		// bench.Run reads 0 as its default; a user who typed it
		// meant something else.
		return fmt.Errorf("bench: --runs %d is not a positive number", opt.Runs)
	}
	for f := range strings.SplitSeq(tokens, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bench: --tokens: %q is not a positive number", f)
		}
		opt.Tokens = append(opt.Tokens, n)
	}
	// Load to first lens: what a user waits for before the first screen.
	start := time.Now()
	m, err := loadModel(ctx, mf, stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	first := m.NewSession()
	_, err = first.Lens(ctx, inference.Request{IDs: []int{0}, TopK: 10, Target: -1}, nil)
	first.Close()
	if err != nil {
		return err
	}
	opt.LoadTime = time.Since(start)
	if n := m.Config().NPositions; slices.Max(opt.Tokens) > n {
		return fmt.Errorf("bench: --tokens %d exceeds the model's n_positions %d", slices.Max(opt.Tokens), n)
	}
	rep, err := bench.Run(ctx, m, opt)
	if err != nil {
		return err
	}
	if format == "json" {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteText(stdout)
}

func downloadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("download", "logitlens download MODEL", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("download: name one model, e.g. gpt2 or openai-community/gpt2-medium")
	}
	opt := hub.OptionsFromEnv()
	opt.Progress = progressLine(stderr)
	opt.Downloading = true
	snap, err := hub.Resolve(ctx, fs.Arg(0), opt)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, snap.Dir)
	return nil
}

func modelsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("models", "logitlens models [--verify [--repair]]", stderr)
	verify := fs.Bool("verify", false, "re-hash every cached file and report corrupt ones")
	repair := fs.Bool("repair", false, "download corrupt files again (implies --verify)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opt := hub.OptionsFromEnv()
	if *verify || *repair {
		return verifyCache(ctx, opt, *repair, stdout, stderr)
	}
	models, err := hub.ListCached(opt.CacheDir)
	if err != nil {
		return err
	}
	if len(models) == 0 {
		fmt.Fprintf(stderr, "no models in %s; fetch one with: logitlens download gpt2\n", opt.CacheDir)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tREVISION\tCOMMIT\tSIZE\tSTATUS")
	for _, m := range models {
		status := "complete"
		if !m.Complete {
			status = "partial"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.12s\t%s\t%s\n", m.Repo, m.Revision, m.Commit, display.Bytes(m.Size), status)
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
				where = fmt.Sprintf("%s@%.12s", display.Safe(c.Files[0].File), c.Files[0].Commit)
			}
			fmt.Fprintf(stdout, "corrupt: %s %s (blob %s): %s\n", display.Safe(c.Repo), where, display.Safe(c.ETag), display.Safe(c.Problem))
			if !repair {
				corrupt++
				continue
			}
			if err := hub.Repair(ctx, opt, c); err != nil {
				corrupt++
				fmt.Fprintf(stdout, "  not repaired: %v\n", err)
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

func versionCmd(stdout io.Writer) error {
	v, c, goVersion := version, commit, "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok { // go install …@v1.2.3 and plain go build stamp these
		goVersion = bi.GoVersion
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && (c == "" || c == "none") {
				c = s.Value
			}
		}
	}
	if c == "" || c == "none" {
		c = "unknown"
	}
	fmt.Fprintf(stdout, "logitlens %s\ncommit: %s\ngo: %s\nblas: %s\n", v, c, goVersion, inference.BLASName())
	if note := inference.BLASNote(); note != "" {
		fmt.Fprintf(stdout, "blas note: %s\n", note)
	}
	fmt.Fprintf(stdout, "cuda: %s\n", inference.CUDAStatus())
	return nil
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

func (l *loadedModel) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.m != nil {
		l.m.Close()
	}
}

func exploreCmd(ctx context.Context, args []string, stderr io.Writer) error {
	var mf modelFlags
	var loaded loadedModel
	var lf lensFlags
	var palette string
	fs := newFlagSet("logitlens", "logitlens [flags]   (the explorer; see 'logitlens help' for commands)", stderr)
	mf.register(fs)
	fs.StringVar(&lf.prompt, "prompt", "The Eiffel Tower is in the city of", "initial prompt")
	fs.IntVar(&lf.topK, "top-k", 10, "predictions in the cursor panel, 1..50")
	fs.StringVar(&lf.target, "target", "", "a token to track (its first token if it has several)")
	fs.BoolVar(&lf.sublayers, "sublayers", false, "show each block's resid_mid row")
	fs.BoolVar(&lf.bos, "bos", false, "prepend <|endoftext|>")
	fs.StringVar(&palette, "palette", "viridis", "colour scale: "+strings.Join(theme.Names(), ", "))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unknown command %q\n\n%s", fs.Arg(0), usage)
	}
	if err := checkTopK("", lf.topK); err != nil {
		return err
	}
	opts := tui.Options{
		ModelID: mf.model, Prompt: lf.prompt, TopK: lf.topK, Target: lf.target,
		BOS: lf.bos, Sublayers: lf.sublayers, Palette: palette,
		Load: func(ctx context.Context, progress func(inference.Progress)) (tui.Backend, error) {
			m, err := inference.Load(ctx, mf.model, mf.loadOptions(progress))
			if err != nil {
				return nil, err
			}
			if !loaded.keep(m) {
				return nil, errors.New("the explorer ended while the model loaded")
			}
			return m.NewSession(), nil
		},
	}
	defer loaded.close()
	return tui.Run(ctx, opts)
}

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	var mf modelFlags
	opts := serve.Options{Logger: slog.New(slog.NewTextHandler(stderr, nil))}
	fs := newFlagSet("serve", "logitlens serve [flags]   (the explorer over SSH; see README, Serving over SSH)", stderr)
	mf.register(fs)
	fs.StringVar(&opts.Listen, "listen", serve.DefaultListen, "host:port to listen on (keep it off the internet)")
	fs.StringVar(&opts.AuthorizedKeys, "authorized-keys", "~/.ssh/authorized_keys", `OpenSSH authorized_keys file of the keys that may connect ("" to use only --trusted-ca)`)
	fs.StringVar(&opts.TrustedCA, "trusted-ca", "", "file of trusted user CA public keys, for SSH certificates")
	fs.StringVar(&opts.HostKey, "host-key", serve.DefaultHostKeyPath(), "host private key; an ed25519 key is created there (0600) when missing")
	fs.StringVar(&opts.Prompt, "prompt", "The Eiffel Tower is in the city of", "every session's initial prompt")
	fs.IntVar(&opts.TopK, "top-k", 10, "predictions in the cursor panel, 1..50")
	fs.StringVar(&opts.Palette, "palette", "viridis", "colour scale: "+strings.Join(theme.Names(), ", "))
	fs.DurationVar(&opts.IdleTimeout, "idle-timeout", serve.DefaultIdleTimeout, "end a session after this long without input; 0 for never")
	fs.DurationVar(&opts.MaxSession, "max-session", serve.DefaultMaxSession, "end a session after this long; 0 for never")
	fs.IntVar(&opts.MaxConns, "max-conns", serve.DefaultMaxConns, "open connections (and sessions) at most")
	fs.Float64Var(&opts.RatePerSec, "rate", serve.DefaultRatePerSec, "new connections per second per source address, after a burst of 8")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	// On the command line 0 means never; in serve.Options a negative value does.
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = -1
	}
	if opts.MaxSession == 0 {
		opts.MaxSession = -1
	}
	// Keys and host key first: no model download for a server that cannot start.
	if err := serve.Check(opts); err != nil {
		return err
	}
	m, err := loadModel(ctx, mf, stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	srv, err := serve.New(opts, m)
	if err != nil {
		return err
	}
	return srv.ListenAndServe(ctx)
}
