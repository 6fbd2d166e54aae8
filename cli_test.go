package main

// Flag parsing, tested apart from running (as cli/cli does): each command is
// built with a run function that records the options it would run with.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/export"
	"github.com/logitlens/logitlens/inference/bench"
	"github.com/logitlens/logitlens/tui"
	"github.com/logitlens/logitlens/tui/serve"
)

// parse runs cmd on args with stdin, returning the error; the command's own
// run function records what it got.
func parse(t *testing.T, cmd *cobra.Command, stdin string, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	return cmd.ExecuteContext(context.Background())
}

func testApp() *app {
	return &app{in: strings.NewReader(""), out: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
}

func parseLens(t *testing.T, stdin string, args ...string) (*lensOptions, error) {
	t.Helper()
	var got *lensOptions
	err := parse(t, newLensCmd(testApp(), func(_ context.Context, o *lensOptions) error { got = o; return nil }), stdin, args...)
	if err != nil && got != nil {
		t.Errorf("%v: ran despite %v", args, err)
	}
	return got, err
}

func TestLensFlags(t *testing.T) {
	o, err := parseLens(t, "", "-m", "demo", "-p", "x", "-k", "5", "--target", " Paris", "--sublayers", "--bos", "--device", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	if o.model.spec != "demo" || !o.model.named || o.model.device != "cpu" || o.prompt != "x" ||
		o.lens != (lensFlags{topK: 5, target: " Paris", sublayers: true, bos: true}) || o.format != export.Text || o.output != "" {
		t.Errorf("parsed %+v", o)
	}
	o, err = parseLens(t, "", "--prompt", "x")
	if err != nil || o.model.spec != "gpt2" || o.model.named || o.lens.topK != 10 || o.figure != (export.Options{Metric: export.MetricProb, Palette: "viridis"}) {
		t.Errorf("defaults %+v, %v", o, err)
	}
	// The format comes from --format, else from -o's extension, in any case.
	for _, c := range []struct {
		args []string
		want export.Format
	}{
		{[]string{"-o", "OUT.SVG"}, export.SVG},
		{[]string{"--output", "x.html"}, export.HTML},
		{[]string{"--format", "CSV"}, export.CSV},
		{[]string{"--format", "json", "-o", "x.svg"}, export.JSON},
		{[]string{"-o", "-"}, export.Text},
	} {
		o, err := parseLens(t, "", append([]string{"-p", "x"}, c.args...)...)
		if err != nil || o.format != c.want {
			t.Errorf("%v: format %v, %v; want %v", c.args, o, err, c.want)
		}
	}
	o, err = parseLens(t, "", "-p", "x", "--metric", "KL", "--palette", "cividis", "-o", "a.html")
	if err != nil || o.figure != (export.Options{Metric: export.MetricKL, Palette: "cividis"}) {
		t.Errorf("figure options %+v, %v", o, err)
	}
	o, err = parseLens(t, "", "-p", "x", "--metric", "ce", "--kl-scale", "fixed", "-o", "a.svg")
	if err != nil || o.figure != (export.Options{Metric: export.MetricCE, Palette: "viridis", FixedScale: true}) {
		t.Errorf("fixed scale: %+v, %v", o, err)
	}
	if o, err = parseLens(t, "", "--bos"); err != nil || o.prompt != "" || !o.lens.bos {
		t.Errorf("--bos alone: %+v, %v", o, err)
	}
}

// Every flag is checked for every format, before anything runs; each bad
// command line is a usage error (exit status 2).
func TestLensFlagErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.txt")
	if err := os.WriteFile(big, bytes.Repeat([]byte("a"), maxPromptFile+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", "x", "--metric", "foo", "--format", "json"}, `--metric: unknown metric "foo"`},
		{[]string{"-p", "x", "--palette", "foo", "--format", "json"}, `--palette: unknown palette "foo"`},
		{[]string{"-p", "x", "--palette", "foo", "-o", "x.csv"}, `unknown palette "foo"`},
		{[]string{"-p", "x", "--metric", "kl", "--format", "json"}, "--metric colours the svg and html figures"},
		{[]string{"-p", "x", "--palette", "gray"}, "--palette colours the svg and html figures; the text format"},
		{[]string{"-p", "x", "--kl-scale", "fixed", "--format", "csv"}, "--kl-scale colours the svg and html figures"},
		{[]string{"-p", "x", "--kl-scale", "log", "-o", "x.svg"}, `--kl-scale "log": want "lens" or "fixed"`},
		{[]string{"-p", "x", "--metric", "target", "-o", "x.svg"}, "give --target"},
		{[]string{"-p", "x", "--metric", "target", "--format", "csv"}, "give --target"},
		{[]string{"-p", "x", "--format", "xml"}, `--format: unknown format "xml"`},
		{[]string{"-p", "x", "-o", "x.png"}, `-o: no format writes ".png" files`},
		{[]string{"-p", "x", "-k", "0"}, "--top-k 0 is outside 1..50"},
		{[]string{"-p", "x", "--top-k", "51"}, "--top-k 51"},
		{[]string{}, "lens needs a prompt"},
		{[]string{"-p", ""}, "lens needs a prompt"},
		{[]string{"-p", "x", "--prompt-file", big}, "both"},
		{[]string{"the", "prompt"}, `unexpected argument "the"`},
		{[]string{"-m", " ", "-p", "x"}, "--model is empty"},
	} {
		_, err := parseLens(t, "", c.args...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &ue) {
			t.Errorf("%v: error %v, want a usage error containing %q", c.args, err, c.want)
		}
	}
	// Files that cannot be a prompt: errors, not usage errors, and nothing runs.
	for _, c := range []struct {
		file, want string
	}{
		{filepath.Join(dir, "missing.txt"), "no such file"},
		{dir, "is a directory"},
		{big, "larger than 1.0 MiB"},
	} {
		if _, err := parseLens(t, "", "--prompt-file", c.file); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--prompt-file %s: %v, want %q", c.file, err, c.want)
		}
	}
}

// --prompt-file keeps the text byte for byte: newlines, tabs, CRLF, a final
// newline, invalid UTF-8; "-" reads stdin.
func TestPromptFileBytes(t *testing.T) {
	text := "line one\r\n\ttabbed  \n\nlast line without newline \xff\u202e end\n"
	path := filepath.Join(t.TempDir(), "prompt.txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if o, err := parseLens(t, "", "--prompt-file", path); err != nil || o.prompt != text {
		t.Errorf("file: %+v, %v", o, err)
	}
	if o, err := parseLens(t, text, "--prompt-file", "-"); err != nil || o.prompt != text {
		t.Errorf("stdin: %+v, %v", o, err)
	}
	var got *exploreOptions
	cmd := newExploreCmd(testApp(), func(_ context.Context, o *exploreOptions) error { got = o; return nil })
	if err := parse(t, cmd, text, "--prompt-file", "-"); err != nil || got.prompt != text {
		t.Errorf("explorer: %+v, %v", got, err)
	}
	var srv *serveOptions
	cmd = newServeCmd(testApp(), func(_ context.Context, o *serveOptions) error { srv = o; return nil })
	if err := parse(t, cmd, "", "--prompt-file", path); err != nil || srv.serve.Session.Prompt != text {
		t.Errorf("serve: %+v, %v", srv, err)
	}
}

func TestExploreFlags(t *testing.T) {
	var got *exploreOptions
	run := func(_ context.Context, o *exploreOptions) error { got = o; return nil }
	if err := parse(t, newExploreCmd(testApp(), run), ""); err != nil {
		t.Fatal(err)
	}
	if got.model.spec != "gpt2" || got.model.named || got.prompt != defaultPrompt || got.explorer.lens.topK != 10 || got.explorer.palette != "viridis" {
		t.Errorf("defaults %+v", got)
	}
	got = nil
	if err := parse(t, newExploreCmd(testApp(), run), "", "-m", "demo", "-p", "hi", "-k", "3", "--palette", "gray", "--bos"); err != nil {
		t.Fatal(err)
	}
	if got.model.spec != "demo" || !got.model.named || got.prompt != "hi" || got.explorer.lens.topK != 3 || got.explorer.palette != "gray" || !got.explorer.lens.bos {
		t.Errorf("parsed %+v", got)
	}
	if err := parse(t, newExploreCmd(testApp(), run), "", "--metric", "ce", "--kl-scale", "fixed", "--cell-width", "12"); err != nil ||
		got.explorer.metric != export.MetricCE || !got.explorer.fixed || got.explorer.cellWidth != 12 {
		t.Errorf("colour flags: %v %+v", err, got)
	}
	// --prompt-file gives the explorer the file's exact bytes.
	exact := "def f(x):\r\n\treturn x  \r\n日本 👍🏽\n"
	if err := parse(t, newExploreCmd(testApp(), run), exact, "--prompt-file", "-"); err != nil || got.prompt != exact {
		t.Errorf("--prompt-file -: %v, prompt %q", err, got.prompt)
	}
	long := strings.Repeat("x", tui.MaxPromptBytes+1)
	for _, c := range []struct {
		stdin string
		args  []string
	}{{"", []string{"-k", "99"}}, {"", []string{"--palette", "jet"}}, {"", []string{"frobnicate"}}, {long, []string{"--prompt-file", "-"}},
		{"", []string{"--metric", "loss"}}, {"", []string{"--metric", "target"}}, {"", []string{"--metric", "kl-ab"}}, {"", []string{"--kl-scale", "log"}},
		{"", []string{"--cell-width", "2"}}, {"", []string{"--cell-width", "99"}}} {
		args := c.args
		got = nil
		err := parse(t, newExploreCmd(testApp(), run), c.stdin, args...)
		var ue usageError
		if !errors.As(err, &ue) || got != nil {
			t.Errorf("%v: %v (ran: %v), want a usage error", args, err, got != nil)
		}
	}
}

func TestServeFlags(t *testing.T) {
	var got *serveOptions
	run := func(_ context.Context, o *serveOptions) error { got = o; return nil }
	if err := parse(t, newServeCmd(testApp(), run), "", "-m", "demo", "-k", "7", "--idle-timeout", "0", "--max-session", "1h", "--listen", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	want := serve.Options{Listen: "127.0.0.1:0", AuthorizedKeys: "~/.ssh/authorized_keys", HostKey: serve.DefaultHostKeyPath(),
		Session:     tui.Options{Prompt: defaultPrompt, TopK: 7, Palette: "viridis", Metric: export.MetricProb},
		IdleTimeout: -1, MaxSession: time.Hour, MaxConns: serve.DefaultMaxConns, RatePerSec: serve.DefaultRatePerSec}
	got.serve.Session.LoadTuned = nil // a func: DeepEqual fails on any
	if !reflect.DeepEqual(got.serve, want) || got.model.spec != "demo" {
		t.Errorf("parsed %+v\nwant   %+v", got.serve, want)
	}
	// Every session starts as the explorer would with the same flags.
	if err := parse(t, newServeCmd(testApp(), run), "", "--target", " Paris", "--bos", "--sublayers", "--metric", "target", "--kl-scale", "fixed", "--cell-width", "9"); err != nil {
		t.Fatal(err)
	}
	if s := got.serve.Session; s.Target != " Paris" || !s.BOS || !s.Sublayers || s.Metric != export.MetricTarget || !s.FixedScale || s.CellWidth != 9 {
		t.Errorf("session options %+v", s)
	}
	for _, args := range [][]string{{"-k", "0"}, {"--palette", "jet"}, {"extra"}, {"--metric", "target"}, {"--metric", "kl-ab"}, {"--cell-width", "2"}, {"--kl-scale", "log"}} {
		var ue usageError
		if err := parse(t, newServeCmd(testApp(), run), "", args...); !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	var ue usageError
	long := strings.Repeat("x", tui.MaxPromptBytes+1)
	if err := parse(t, newServeCmd(testApp(), run), long, "--prompt-file", "-"); !errors.As(err, &ue) || !strings.Contains(err.Error(), "at most") {
		t.Errorf("serve with a %d-byte prompt: %v, want a usage error", len(long), err)
	}
	exact := "a\r\n\tb  "
	if err := parse(t, newServeCmd(testApp(), run), exact, "--prompt-file", "-"); err != nil || got.serve.Session.Prompt != exact {
		t.Errorf("serve --prompt-file: %v, %q", err, got.serve.Session.Prompt)
	}
}

func TestBenchFlags(t *testing.T) {
	var got *benchOptions
	run := func(_ context.Context, o *benchOptions) error { got = o; return nil }
	if err := parse(t, newBenchCmd(testApp(), run), "", "-m", "demo", "--tokens", "4, 8,16", "--runs", "2", "-k", "5", "--format", "json"); err != nil {
		t.Fatal(err)
	}
	if want := (bench.Options{Tokens: []int{4, 8, 16}, Runs: 2, TopK: 5}); got.bench.Runs != want.Runs || got.bench.TopK != want.TopK ||
		len(got.bench.Tokens) != 3 || got.bench.Tokens[1] != 8 || !got.json {
		t.Errorf("parsed %+v", got)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--runs", "0"}, "--runs 0"},
		{[]string{"--top-k", "51"}, "--top-k 51"},
		{[]string{"--tokens", "8,x"}, `"x" is not a positive number`},
		{[]string{"--tokens", "0"}, `"0" is not a positive number`},
		{[]string{"--format", "csv"}, `unknown format "csv"`},
	} {
		var ue usageError
		if err := parse(t, newBenchCmd(testApp(), run), "", c.args...); !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error containing %q", c.args, err, c.want)
		}
	}
}

func TestDownloadAndModelsArgs(t *testing.T) {
	var got []string
	run := func(_ context.Context, m string) error { got = append(got, m); return nil }
	if err := parse(t, newDownloadCmd(testApp(), run), "", "openai-community/gpt2-medium@main"); err != nil || len(got) != 1 || got[0] != "openai-community/gpt2-medium@main" {
		t.Errorf("download: %v, %v", got, err)
	}
	for _, args := range [][]string{{}, {"a", "b"}} {
		var ue usageError
		if err := parse(t, newDownloadCmd(testApp(), run), "", args...); !errors.As(err, &ue) || !strings.Contains(err.Error(), "name one model") {
			t.Errorf("download %v: %v", args, err)
		}
	}
	var gotModels *modelsOptions
	run2 := func(_ context.Context, o *modelsOptions) error { gotModels = o; return nil }
	var ue usageError
	if err := parse(t, newModelsCmd(testApp(), run2), "", "extra"); !errors.As(err, &ue) || gotModels != nil {
		t.Errorf("models extra: %v", err)
	}
	if err := parse(t, newModelsCmd(testApp(), run2), "", "--repair"); err != nil || *gotModels != (modelsOptions{repair: true}) {
		t.Errorf("models --repair: %+v, %v", gotModels, err)
	}
}

func TestTerminalSafe(t *testing.T) {
	in := "hub: \x1b]0;pwned\x07 not found\nhint: C:\\models\\gpt2 \u202eevil\r"
	want := `hub: \x1b]0;pwned\x07 not found` + "\n" + `hint: C:\models\gpt2 \u202eevil\r`
	if got := terminalSafe(in); got != want {
		t.Errorf("terminalSafe = %q, want %q", got, want)
	}
}

func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{errors.New("boom"), exitError},
		{usagef("bad flag"), exitUsage},
		{context.Canceled, exitInterrupted},
		{errors.Join(errors.New("hub: download interrupted"), context.Canceled), exitInterrupted},
	} {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestLensChoiceFlag(t *testing.T) {
	for _, c := range []struct {
		value  string
		tuned  bool
		source string
	}{
		{"logit", false, ""},
		{"tuned", true, "published"},
		{"tuned:me/lenses@v1/gpt2", true, "me/lenses@v1/gpt2"},
		{"tuned:spaces/AlignmentResearch/tuned-lens/lens/gpt2-xl", true, "spaces/AlignmentResearch/tuned-lens/lens/gpt2-xl"},
	} {
		o, err := parseLens(t, "", "-p", "x", "--lens", c.value)
		if err != nil || o.tuned.tuned != c.tuned || (c.tuned && o.tuned.src.String() != c.source) {
			t.Errorf("--lens %s: %+v, %v", c.value, o, err)
		}
	}
	o, err := parseLens(t, "", "-p", "x")
	if err != nil || o.tuned.tuned || o.tuned.value != "logit" {
		t.Errorf("default --lens: %+v, %v", o, err)
	}
	for _, c := range []struct{ args, want string }{
		{"--lens tuned --sublayers", "--sublayers: the tuned lens has translators only for block outputs"},
		{"--lens tuned:", "--lens tuned: needs a folder or REPO/FOLDER"},
		{"--lens tuned:gpt2", "is neither a folder nor ORG/NAME"},
		{"--lens logit:x", `--lens "logit:x": want logit, tuned`},
		{"--lens Tuned", `--lens "Tuned"`},
	} {
		_, err := parseLens(t, "", append([]string{"-p", "x"}, strings.Fields(c.args)...)...)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a usage error with %q", c.args, err, c.want)
		}
	}
}

func parseTune(t *testing.T, args ...string) (*tuneOptions, error) {
	t.Helper()
	var got *tuneOptions
	err := parse(t, newTuneCmd(testApp(), func(_ context.Context, o *tuneOptions) error { got = o; return nil }), "", args...)
	if err != nil && got != nil {
		t.Errorf("%v: ran despite %v", args, err)
	}
	return got, err
}

func TestTuneFlags(t *testing.T) {
	o, err := parseTune(t, "-m", "demo", "--data", "a.txt", "--data", "b.txt", "--out", "lens")
	if err != nil {
		t.Fatal(err)
	}
	if o.model.spec != "demo" || o.model.device != "cpu" || !slices.Equal(o.data, []string{"a.txt", "b.txt"}) || o.out != "lens" ||
		o.train.Steps != 250 || o.train.TokensPerStep != 1<<18 || o.train.LR != 1 || o.train.Optimizer != "sgd" || o.train.Seed != 42 {
		t.Errorf("defaults %+v", o)
	}
	o, err = parseTune(t, "--data", "a", "-o", "x", "--steps", "7", "--tokens-per-step", "512", "--lr", "0.5", "--optimizer", "adam", "--seed", "3")
	if err != nil || o.train.Steps != 7 || o.train.TokensPerStep != 512 || o.train.LR != 0.5 || o.train.Optimizer != "adam" || o.train.Seed != 3 {
		t.Errorf("%+v, %v", o, err)
	}
	for _, c := range []struct{ args, want string }{
		{"--out x", "tune needs training text: --data FILE"},
		{"--data a", "tune needs --out DIR"},
		{"--data a --out x --steps 0", "--steps 0"},
		{"--data a --out x --tokens-per-step -1", "--tokens-per-step -1"},
		{"--data a --out x --lr 0", "--lr 0"},
		{"--data a --out x --optimizer lion", `--optimizer "lion"`},
		{"--data a --out x --device cuda", "unknown flag: --device"},
	} {
		_, err := parseTune(t, strings.Fields(c.args)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.args, err, c.want)
		}
	}
}
