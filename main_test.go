package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/weights/testmodel"
)

var update = flag.Bool("update", false, "rewrite golden files")

func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// The lens command's JSON carries the reference's numbers (lens_ref.py,
// float64, inference/testdata/golden/eiffel.json) in the documented shape.
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
			Entropy       float64 `json:"entropy"`
			KLToFinal     float64 `json:"kl_to_final"`
			FinalTop1Rank int     `json:"final_top1_rank"`
			FinalTop1Prob float64 `json:"final_top1_prob"`
			TargetRank    *int    `json:"target_rank"`
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
	b, err := os.ReadFile("inference/testdata/golden/eiffel.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	testmodel.CheckPin(t, "tiny-f32", "inference/testdata/golden/eiffel.json", ref.SHA256)
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

// -o picks the format from the extension; the figure writers are tested in tui/figure.
func TestLensWritesFigureByExtension(t *testing.T) {
	dir := testmodel.Dir(t, "tiny-f32")
	for _, ext := range []string{"svg", "html", "json"} {
		path := filepath.Join(t.TempDir(), "lens."+ext)
		if _, _, err := runCmd(t, "lens", "--model", dir, "--prompt", "Hello world", "-o", path); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"svg": "<svg", "html": "<!DOCTYPE html>", "json": `{"schema":"logitlens.lens/v1"`}[ext]
		if !strings.Contains(string(b[:min(len(b), 200)]), want) {
			t.Errorf("%s: file starts %q, want %q", ext, b[:min(len(b), 80)], want)
		}
	}
}

// With the hub unreachable and an empty cache, the default model falls back
// to the built-in one and says so; a model the user named does not.
func TestDefaultModelFallsBackToBuiltin(t *testing.T) {
	for _, env := range [][2]string{{"HF_HUB_OFFLINE", "1"}, {"HF_ENDPOINT", "http://127.0.0.1:1"}} {
		var out, errOut bytes.Buffer
		t.Setenv("HF_HUB_CACHE", t.TempDir())
		t.Setenv("HF_HUB_OFFLINE", "")
		t.Setenv(env[0], env[1])
		if err := run(context.Background(), []string{"lens", "--prompt", "The man said that"}, &out, &errOut); err != nil {
			t.Fatalf("%s: %v", env[0], err)
		}
		if !strings.HasPrefix(out.String(), "demo · 4 layers") || !strings.Contains(errOut.String(), "built-in demo model") || !strings.Contains(errOut.String(), "logitlens download gpt2") {
			t.Errorf("%s: stdout %q, stderr %q", env[0], out.String(), errOut.String())
		}
		err := run(context.Background(), []string{"lens", "--model", "gpt2", "--prompt", "x"}, &out, &errOut)
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
			Tokens int                                `json:"tokens"`
			Full   struct{ Median, Min, Max float64 } `json:"full_ms"`
			Inc    struct{ Median, Min, Max float64 } `json:"incremental_ms"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.BLAS == "" || rep.Device == "" || len(rep.Results) != 2 || rep.Results[1].Tokens != 8 {
		t.Fatalf("report %+v", rep)
	}
	for _, r := range rep.Results {
		if !(r.Full.Min > 0 && r.Full.Min <= r.Full.Median && r.Full.Median <= r.Full.Max && r.Inc.Median > 0) {
			t.Errorf("timings %+v", r)
		}
	}
	if _, _, err := runCmd(t, "bench", "--model", "demo", "--tokens", "300"); err == nil || !strings.Contains(err.Error(), "n_positions") {
		t.Errorf("--tokens 300 on a 256-position model: %v", err)
	}
}

func TestCommandErrors(t *testing.T) {
	dir := testmodel.Dir(t, "tiny-f32")
	long := strings.Repeat("lens ", 200) // 200 tokens > n_positions 128
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lens", "--model", dir}, "--prompt is required"},
		{[]string{"lens", "--model", dir, "--prompt", "x", "--format", "xml"}, "unknown format"},
		{[]string{"lens", "--model", dir, "--prompt", "x", "--top-k", "99"}, "top-k 99"},
		{[]string{"lens", "--model", dir, "--prompt", long}, "n_positions = 128"},
		{[]string{"lens", "--model", t.TempDir(), "--prompt", "x"}, "config.json"},
		{[]string{"lens", "--model", "no-such-org/no-such-model", "--prompt", "x"}, "offline"},
		{[]string{"lens", "--model", dir, "--prompt", "x", "--device", "tpu"}, "unknown device"},
		// Flags are checked before the model loads (an empty directory
		// would fail on config.json), and never silently replaced.
		{[]string{"lens", "--model", t.TempDir(), "--prompt", "x", "--top-k", "0"}, "top-k 0"},
		{[]string{"bench", "--model", t.TempDir(), "--top-k", "51"}, "top-k 51"},
		{[]string{"bench", "--model", t.TempDir(), "--runs", "0"}, "--runs 0"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		_, _, err := runCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

// The help texts are part of the interface; changes show up in review.
func TestHelpGolden(t *testing.T) {
	var got strings.Builder
	for _, args := range [][]string{{"help"}, {"lens", "-h"}, {"download", "-h"}, {"-h"}} {
		out, errOut, _ := runCmd(t, args...)
		got.WriteString("$ logitlens " + strings.Join(args, " ") + "\n" + out + errOut + "\n")
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
