package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/logitlens/logitlens/weights/hub"
	"github.com/logitlens/logitlens/weights/testmodel"
)

var update = flag.Bool("update", false, "rewrite golden files")

// runCmd runs a command line offline with an empty cache and returns its
// stdout, its stderr and, for a failure, an error holding stderr.
func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	return execArgs(t, "", args...)
}

// execArgs runs a command line as main does, with stdin, in the current
// environment.
func execArgs(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(context.Background(), args, &app{in: strings.NewReader(stdin), out: &out, stderr: &errOut})
	var err error
	if code != 0 {
		err = fmt.Errorf("exit status %d: %s", code, errOut.String())
	}
	return out.String(), errOut.String(), err
}

// The lens command's JSON carries the reference's numbers (lens_ref.py,
// float64, inference/devicetest/testdata/golden/eiffel.json) in the documented shape.
func TestLensJSONMatchesReference(t *testing.T) {
	dir := testmodel.Dir(t, "tiny-f32")
	out, _, err := runCmd(t, "lens", "--model", dir, "--prompt", "The Eiffel Tower is in the city of", "--format", "json", "--target", " Paris")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema string `json:"schema"`
		Model  struct {
			NLayer    int `json:"n_layer"`
			VocabSize int `json:"vocab_size"`
		} `json:"model"`
		Device string `json:"device"`
		Tokens []struct {
			ID   int    `json:"id"`
			Text string `json:"text"`
		} `json:"tokens"`
		Rows []struct {
			Name string `json:"name"`
		} `json:"rows"`
		Target struct{ ID int } `json:"target"`
		Cells  [][]struct {
			Top []struct {
				ID   int     `json:"id"`
				Text string  `json:"text"`
				Prob float64 `json:"prob"`
			} `json:"top"`
			Entropy       float64  `json:"entropy"`
			KLToFinal     float64  `json:"kl_to_final"`
			FinalTop1Rank int      `json:"final_top1_rank"`
			FinalTop1Prob float64  `json:"final_top1_prob"`
			TargetRank    *int     `json:"target_rank"`
			NextRank      *int     `json:"next_rank"`
			NextProb      *float64 `json:"next_prob"`
		} `json:"cells"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var ref struct {
		IDs     []int  `json:"ids"`
		SHA256  string `json:"model_safetensors_sha256"`
		Results struct {
			F64 struct {
				TopIDs   [][][]int     `json:"top_ids"`
				TopProbs [][][]float64 `json:"top_probs"`
				Entropy  [][]float64   `json:"entropy"`
				KL       [][]float64   `json:"kl_final_layer"`
				Rank     [][]int       `json:"final_top1_rank"`
			} `json:"float64"`
		} `json:"results"`
	}
	b, err := os.ReadFile("inference/devicetest/testdata/golden/eiffel.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	testmodel.CheckPin(t, "tiny-f32", "inference/devicetest/testdata/golden/eiffel.json", ref.SHA256)
	r := ref.Results.F64
	if doc.Schema != "logitlens.lens/v1" || doc.Model.NLayer != 2 || doc.Model.VocabSize != 50257 || doc.Device != "cpu" {
		t.Fatalf("header: %+v", doc)
	}
	if len(doc.Tokens) != len(ref.IDs) || doc.Tokens[0].Text != "The" || doc.Tokens[1].Text != " E" {
		t.Fatalf("tokens %+v, reference ids %v", doc.Tokens, ref.IDs)
	}
	if len(doc.Rows) != 3 || doc.Rows[0].Name != "embed" || doc.Rows[2].Name != "2" || len(doc.Cells) != 3 {
		t.Fatalf("rows %+v", doc.Rows)
	}
	if doc.Target.ID != 6342 { // " Paris"
		t.Errorf("target id %d", doc.Target.ID)
	}
	for row := range doc.Cells {
		for p, c := range doc.Cells[row] {
			if len(c.Top) != 10 || c.TargetRank == nil {
				t.Fatalf("cell %d/%d: %d top entries, target rank %v", row, p, len(c.Top), c.TargetRank)
			}
			if (c.NextRank == nil) != (p == len(doc.Tokens)-1) {
				t.Fatalf("cell %d/%d: next rank %v, want one at every position but the last", row, p, c.NextRank)
			}
			if c.Top[0].ID != r.TopIDs[row][p][0] || c.FinalTop1Rank != r.Rank[row][p] {
				t.Errorf("cell %d/%d: top-1 %d rank %d, reference %d rank %d", row, p, c.Top[0].ID, c.FinalTop1Rank, r.TopIDs[row][p][0], r.Rank[row][p])
			}
			if math.Abs(c.Top[0].Prob-r.TopProbs[row][p][0]) > 1e-4 || math.Abs(c.Entropy-r.Entropy[row][p]) > 1e-3 || math.Abs(c.KLToFinal-r.KL[row][p]) > 1e-3 {
				t.Errorf("cell %d/%d: prob %g entropy %g kl %g, reference %g %g %g", row, p, c.Top[0].Prob, c.Entropy, c.KLToFinal, r.TopProbs[row][p][0], r.Entropy[row][p], r.KL[row][p])
			}
		}
	}
}

func TestLensCSVAndText(t *testing.T) {
	dir := testmodel.Dir(t, "tiny-f32")
	out, _, err := runCmd(t, "lens", "--model", dir, "--prompt", "Hello world", "--format", "csv", "--sublayers")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// header + (embed, 1.attn, 1, 2.attn, 2) × 2 positions
	if len(recs) != 1+5*2 || recs[0][0] != "row" || recs[3][0] != "1.attn" {
		t.Fatalf("csv: %d records: %v", len(recs), recs[:min(4, len(recs))])
	}
	txt, _, err := runCmd(t, "lens", "--model", dir, "--prompt", "Hello world")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(txt), "\n")
	if len(lines) != 6 || !strings.Contains(lines[1], "Hello") || !strings.Contains(lines[1], "␣world") || !strings.HasPrefix(lines[2], "2*") || !strings.HasPrefix(lines[4], "embed") {
		t.Fatalf("text grid:\n%s", txt)
	}
}

// -o picks the format from the extension, in any case; the writers are
// tested in export.
func TestLensWritesFigureByExtension(t *testing.T) {
	dir := testmodel.Dir(t, "tiny-f32")
	for _, ext := range []string{"svg", "html", "json", "SVG", "Html", "csv"} {
		path := filepath.Join(t.TempDir(), "lens."+ext)
		if _, _, err := runCmd(t, "lens", "--model", dir, "--prompt", "Hello world", "-o", path); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"svg": "<svg", "html": "<!DOCTYPE html>", "json": `{"schema":"logitlens.lens/v1"`, "csv": "row,row_kind"}[strings.ToLower(ext)]
		if !strings.Contains(string(b[:min(len(b), 200)]), want) {
			t.Errorf("%s: file starts %q, want %q", ext, b[:min(len(b), 80)], want)
		}
	}
}

// With the hub unreachable and an empty cache, the default model falls back
// to the built-in one and says so; a model the user named does not.
func TestDefaultModelFallsBackToBuiltin(t *testing.T) {
	for _, env := range [][2]string{{"HF_HUB_OFFLINE", "1"}, {"HF_ENDPOINT", "http://127.0.0.1:1"}} {
		t.Setenv("HF_HUB_CACHE", t.TempDir())
		t.Setenv("HF_HUB_OFFLINE", "")
		t.Setenv(env[0], env[1])
		out, errOut, err := execArgs(t, "", "lens", "--prompt", "The man said that")
		if err != nil {
			t.Fatalf("%s: %v", env[0], err)
		}
		if !strings.HasPrefix(out, "demo · 4 layers") || !strings.Contains(errOut, "built-in demo model") || !strings.Contains(errOut, "logitlens download gpt2") {
			t.Errorf("%s: stdout %q, stderr %q", env[0], out, errOut)
		}
		_, _, err = execArgs(t, "", "lens", "--model", "gpt2", "--prompt", "x")
		if err == nil || strings.Contains(err.Error(), "demo") {
			t.Errorf("%s: --model gpt2 gave %v, want the hub error", env[0], err)
		}
	}
}

func TestBenchJSON(t *testing.T) {
	out, _, err := runCmd(t, "bench", "--model", "demo", "--tokens", "4,8", "--runs", "1", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		BLAS    string `json:"blas"`
		Device  string `json:"device"`
		Results []struct {
			Tokens  int                                `json:"tokens"`
			Full    struct{ Median, Min, Max float64 } `json:"full_ms"`
			Visible struct{ Median, Min, Max float64 } `json:"visible_ms"`
			Inc     struct{ Median, Min, Max float64 } `json:"incremental_ms"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.BLAS == "" || rep.Device == "" || len(rep.Results) != 2 || rep.Results[1].Tokens != 8 {
		t.Fatalf("report %+v", rep)
	}
	for _, r := range rep.Results {
		if !(r.Full.Min > 0 && r.Full.Min <= r.Full.Median && r.Full.Median <= r.Full.Max && r.Inc.Median > 0 &&
			r.Visible.Min > 0 && r.Visible.Min <= r.Visible.Median && r.Visible.Median <= r.Visible.Max) {
			t.Errorf("timings %+v", r)
		}
	}
	if _, _, err := runCmd(t, "bench", "--model", "demo", "--tokens", "300"); err == nil || !strings.Contains(err.Error(), "n_positions") {
		t.Errorf("--tokens 300 on a 256-position model: %v", err)
	}
}

// Errors after parsing: one line on stderr, the right exit status, nothing
// on stdout.
func TestCommandErrors(t *testing.T) {
	dir := testmodel.Dir(t, "tiny-f32")
	long := strings.Repeat("lens ", 200) // 200 tokens > n_positions 128
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"lens", "--model", dir}, "lens needs a prompt", exitUsage},
		{[]string{"lens", "--model", dir, "--prompt", "x", "--format", "xml"}, "unknown format", exitUsage},
		{[]string{"lens", "--model", dir, "--prompt", "x", "--top-k", "99"}, "top-k 99", exitUsage},
		{[]string{"lens", "--model", dir, "--prompt", long}, "n_positions = 128", exitError},
		{[]string{"lens", "--model", t.TempDir(), "--prompt", "x"}, "config.json", exitError},
		{[]string{"lens", "--model", "no-such-org/no-such-model", "--prompt", "x"}, "offline", exitError},
		{[]string{"lens", "--model", dir, "--prompt", "x", "--device", "tpu"}, "unknown device", exitError},
		// Flags are checked before the model loads (an empty directory
		// would fail on config.json), and never silently replaced.
		{[]string{"lens", "--model", t.TempDir(), "--prompt", "x", "--top-k", "0"}, "top-k 0", exitUsage},
		{[]string{"lens", "--model", t.TempDir(), "--prompt", "x", "--metric", "foo", "--format", "json"}, "unknown metric", exitUsage},
		{[]string{"bench", "--model", t.TempDir(), "--top-k", "51"}, "top-k 51", exitUsage},
		{[]string{"bench", "--model", t.TempDir(), "--runs", "0"}, "--runs 0", exitUsage},
		{[]string{"frobnicate"}, "unknown command", exitUsage},
		{[]string{"lenz"}, "did you mean lens", exitUsage},
		{[]string{"lens", "--frob"}, "unknown flag: --frob", exitUsage},
	} {
		t.Setenv("HF_HUB_OFFLINE", "1")
		t.Setenv("HF_HUB_CACHE", t.TempDir())
		var out, errOut bytes.Buffer
		code := execute(context.Background(), tc.args, &app{in: strings.NewReader(""), out: &out, stderr: &errOut})
		if code != tc.code || !strings.HasPrefix(errOut.String(), "logitlens: ") || !strings.Contains(errOut.String(), tc.want) || out.Len() != 0 {
			t.Errorf("%v: status %d, stderr %q, stdout %d bytes; want status %d and %q", tc.args, code, errOut.String(), out.Len(), tc.code, tc.want)
		}
		// One error line (and, for usage errors, where to find help).
		if lines := strings.Count(errOut.String(), "\n"); lines != 1 && !(tc.code == exitUsage && lines == 2) {
			t.Errorf("%v: %d lines on stderr:\n%s", tc.args, lines, errOut.String())
		}
	}
}

// The help texts are part of the interface; changes show up in review.
// fang pads lines to the terminal's width: the golden keeps them trimmed.
func TestHelpGolden(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/data") // serve's default host key lives there
	var got strings.Builder
	for _, args := range [][]string{{"--help"}, {"lens", "--help"}, {"serve", "--help"}, {"bench", "--help"}, {"download", "--help"}, {"models", "--help"}, {"tune", "--help"}} {
		out, errOut, err := runCmd(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		got.WriteString("$ logitlens " + strings.Join(args, " ") + "\n")
		for line := range strings.Lines(ansi.Strip(out + errOut)) {
			got.WriteString(strings.TrimRight(line, " \n") + "\n")
		}
	}
	path := filepath.Join("testdata", "help.golden")
	if *update {
		os.WriteFile(path, []byte(got.String()), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestHelpGolden -update)", err)
	}
	if got.String() != string(want) {
		t.Errorf("help changed; if intended, go test -run TestHelpGolden -update\ngot:\n%s", got.String())
	}
}

// TestMain fixes fang's help width (read once, from the terminal if there is
// one) so the help golden does not depend on the window the tests run in.
func TestMain(m *testing.M) {
	os.Setenv("__FANG_TEST_WIDTH", "120")
	os.Exit(m.Run())
}

// The conventions of the ecosystem: completion scripts, --version, help that
// names the flags and their short forms.
func TestCompletionVersionHelp(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, _, err := runCmd(t, "completion", shell)
		if err != nil || !strings.Contains(out, "logitlens") || len(out) < 500 {
			t.Errorf("completion %s: %v, %d bytes", shell, err, len(out))
		}
	}
	out, _, err := runCmd(t, "--version")
	if err != nil || !strings.HasPrefix(out, "logitlens version ") {
		t.Errorf("--version: %q, %v", out, err)
	}
	out, _, err = runCmd(t, "lens", "--help")
	for _, want := range []string{"--model", "-m ", "--prompt-file", "-p ", "-k ", "-o ", "--metric", "--palette"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("lens --help lacks %q (%v)", want, err)
		}
	}
	// Values complete from the one list each comes from.
	out, _, err = runCmd(t, "__complete", "lens", "--metric", "")
	if err != nil || !strings.Contains(out, "final-rank\n") || !strings.Contains(out, "entropy\n") {
		t.Errorf("--metric completion: %q, %v", out, err)
	}
	out, _, err = runCmd(t, "__complete", "lens", "-m", "")
	if err != nil || !strings.Contains(out, "demo\n") {
		t.Errorf("--model completion: %q, %v", out, err)
	}
}

// lens --prompt-file keeps the file's text exactly (the tokens' texts
// concatenate to it) and prints nothing but the lens.
func TestLensPromptFileExact(t *testing.T) {
	text := "Dear Sir,\r\n\tThe man said that\n\n  it was   \"fine\" \u2014 café\n"
	path := filepath.Join(t.TempDir(), "prompt.txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, stdin := range []bool{false, true} {
		args := []string{"lens", "--model", "demo", "--prompt-file", path, "--format", "json"}
		in := ""
		if stdin {
			args[len(args)-3], in = "-", text
		}
		t.Setenv("HF_HUB_OFFLINE", "1")
		out, errOut, err := execArgs(t, in, args...)
		if err != nil {
			t.Fatal(err)
		}
		if errOut != "" {
			t.Errorf("stderr: %q", errOut)
		}
		var doc struct {
			Prompt string
			Tokens []struct{ Text string }
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		var joined strings.Builder
		for _, tok := range doc.Tokens {
			joined.WriteString(tok.Text)
		}
		if joined.String() != text || doc.Prompt != text {
			t.Errorf("stdin %v: tokens join to %q, prompt %q; file %q", stdin, joined.String(), doc.Prompt, text)
		}
	}
}

// -o writes the file and nothing else: no "wrote" line, no partial file on
// failure.
func TestLensOutputQuietAndAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "LENS.SVG")
	out, errOut, err := runCmd(t, "lens", "-m", "demo", "-p", "The man said that", "-o", path, "--metric", "entropy")
	if err != nil || out != "" || errOut != "" {
		t.Fatalf("stdout %q, stderr %q, %v", out, errOut, err)
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("entropy (nats)")) {
		t.Errorf("%s: %v", path, err)
	}
	// A prompt the model cannot read fails after loading: no file appears.
	bad := filepath.Join(dir, "bad.json")
	if _, _, err := runCmd(t, "lens", "-m", "demo", "-p", strings.Repeat("a b ", 400), "-o", bad); err == nil {
		t.Fatal("an over-long prompt succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only LENS.SVG", len(entries))
	}
}

// models shows folder and ref names from disk escaped: a cache entry named to
// carry terminal sequences cannot drive the terminal.
func TestModelsEscapesNames(t *testing.T) {
	cache := t.TempDir()
	repo := filepath.Join(cache, "models--evil\x1b]0;pwned\x07--name")
	if err := os.MkdirAll(filepath.Join(repo, "snapshots", "\x1b[2Jrev"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HUB_CACHE", cache)
	out, _, err := execArgs(t, "", "models")
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, `evil\x1b]0;pwned\x07/name`) || !strings.Contains(out, `\x1b[2Jrev`) {
		t.Errorf("models:\n%q", out)
	}
}

func TestProgressPrinter(t *testing.T) {
	events := []hub.Progress{
		{File: "model.safetensors", Waiting: true, Total: 2 << 20},
		{File: "model.safetensors", Done: 0, Total: 2 << 20},
		{File: "model.safetensors", Done: 1 << 20, Total: 2 << 20, BytesPerSec: 1 << 20, ETA: time.Second},
		{File: "model.safetensors", Done: 2 << 20, Total: 2 << 20, Finished: true},
		{File: "vocab\x1b.json", Done: 5, Total: 10},
	}
	var plain, tty bytes.Buffer
	p, q := progressPrinter(&plain, false), progressPrinter(&tty, true)
	for _, e := range events {
		p(e)
		q(e)
	}
	want := "waiting for another process downloading model.safetensors (2.0 MiB)\n" +
		"downloading model.safetensors (2.0 MiB)\n" +
		"downloaded model.safetensors (2.0 MiB)\n" +
		"downloading vocab\\x1b.json (10 B, resuming at 5 B)\n"
	if plain.String() != want {
		t.Errorf("not a terminal:\n%q\nwant\n%q", plain.String(), want)
	}
	if s := tty.String(); !strings.Contains(s, "\r\033[Kdownloading model.safetensors: 1.0 MiB / 2.0 MiB, 1.0 MiB/s, ETA 1s") ||
		!strings.Contains(s, "\r\033[Kdownloaded model.safetensors") || strings.Contains(s, "vocab\x1b") {
		t.Errorf("terminal: %q", s)
	}
}

// The next token's rank and probability agree with the top-k wherever the
// next token is in it (the trained demo model puts it there often).
func TestLensNextTokenAgreesWithTopK(t *testing.T) {
	out, _, err := runCmd(t, "lens", "-m", "demo", "-p", "The man said that he would go to the door and", "-k", "50", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tokens []struct{ ID int }
		Cells  [][]struct {
			Top []struct {
				ID   int
				Prob float64
			}
			NextRank *int     `json:"next_rank"`
			NextProb *float64 `json:"next_prob"`
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	hits := 0
	for r, row := range doc.Cells {
		for p, c := range row[:len(row)-1] {
			for j, top := range c.Top {
				if top.ID != doc.Tokens[p+1].ID {
					continue
				}
				hits++
				if *c.NextRank != j || math.Abs(*c.NextProb-top.Prob) > 1e-12 {
					t.Errorf("cell %d/%d: next token is top-%d (p %g), next_rank %d next_prob %g", r, p, j, top.Prob, *c.NextRank, *c.NextProb)
				}
			}
		}
	}
	if hits < 10 {
		t.Errorf("the next token is in the top-50 of only %d cells: the check checked little", hits)
	}
}
