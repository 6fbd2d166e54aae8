package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/cuda"
)

// withEmulatedGPU makes the check open emulated GPUs, broken in the given
// kernels, for the rest of the test.
func withEmulatedGPU(t *testing.T, broken ...string) {
	t.Helper()
	old := openDevice
	openDevice = func(tf32 bool) (*cuda.Device, error) {
		e := cuda.NewEmulator()
		for _, k := range broken {
			e.Break(k)
		}
		return e.NewDevice(tf32)
	}
	t.Cleanup(func() { openDevice = old })
}

// checkArgs is a small check: the tiny checkpoint, two lengths, one run.
func checkArgs(t *testing.T) []string {
	dir := t.TempDir()
	return []string{"-dir", filepath.Join(dir, "models"), "-models", "tiny-f32", "-time", "tiny-f32",
		"-tokens", "8,16", "-runs", "1", "-json", filepath.Join(dir, "report.json")}
}

// The whole check on the emulated GPU: every cell agrees, both TF32
// settings are timed with events, and the report says so.
func TestCheckPasses(t *testing.T) {
	withEmulatedGPU(t)
	args := checkArgs(t)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), args, &out, &errOut); code != exitAgree {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"| tiny-f32 | 16 | append |", "Kernel breakdown", "gemm lens", "TF32 on", "verdict: PASS", "`logitlens bench --device cuda` would print"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	b, err := os.ReadFile(args[len(args)-1])
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != "PASS" || len(rep.Agreement) != 4 || len(rep.Timing) != 4 {
		t.Fatalf("report: %s", b)
	}
	for _, a := range rep.Agreement {
		if !a.OK || a.Cells != (2*2+1)*a.T {
			t.Errorf("agreement %+v", a)
		}
	}
	for _, tm := range rep.Timing {
		// the emulator's events are 1 ms apart: a host clock would not say 1
		if tm.EngineFull.Median != 1 || tm.Full.Median != 1 || tm.Unembed.Median != 1 {
			t.Errorf("times not from CUDA events: %+v", tm)
		}
	}
	// A second run finds the checkpoint it wrote and keeps it.
	spec := filepath.Join(args[1], "tiny-f32", "gpucheck-spec.json")
	st, err := os.Stat(spec)
	if err != nil {
		t.Fatal(err)
	}
	if code := run(context.Background(), append(args, "-tf32=false"), &out, &errOut); code != exitAgree {
		t.Fatalf("second run: exit %d", code)
	}
	if st2, err := os.Stat(spec); err != nil || !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("the checkpoint was written again")
	}
}

// A GPU that computes wrong fails the check with status 1.
func TestCheckFailsOnAWrongGPU(t *testing.T) {
	withEmulatedGPU(t, "gelu_forward")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), checkArgs(t), &out, &errOut); code != exitDisagree {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "failed its self-check") || !strings.Contains(out.String(), "verdict: FAIL") {
		t.Errorf("output:\n%s", out.String())
	}
}

// Without a GPU, or with bad flags, the check cannot run: status 2.
func TestCheckCannotRun(t *testing.T) {
	old := openDevice
	openDevice = func(bool) (*cuda.Device, error) { return nil, cuda.ErrNoDevice }
	t.Cleanup(func() { openDevice = old })
	var out, errOut bytes.Buffer
	if code := run(context.Background(), nil, &out, &errOut); code != exitCannot || !strings.Contains(errOut.String(), "no GPU to check") {
		t.Errorf("no GPU: exit %d, %q", code, errOut.String())
	}
	for _, args := range [][]string{{"-models", "gpt2"}, {"-tokens", "1"}, {"-runs", "0"}, {"-time", "xl-1layer", "-models", "tiny-f32"}, {"extra"}} {
		errOut.Reset()
		if code := run(context.Background(), args, &out, &errOut); code != exitCannot {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}

// compare counts each kind of disagreement.
func TestCompare(t *testing.T) {
	cell := func() inference.Cell {
		return inference.Cell{Top: []inference.Prediction{{ID: 5, Prob: 0.5}, {ID: 7, Prob: 0.2}}, Entropy: 1.5, KLToFinal: 0.3,
			FinalTop1Rank: 0, FinalTop1Prob: 0.5, TargetRank: 4, TargetProb: 0.01, NextRank: 1, NextProb: 0.2}
	}
	lens := func() *inference.Lens {
		return &inference.Lens{IDs: []int{1, 2}, Rows: []inference.Row{{Name: "embed"}, {Name: "1"}},
			Cells: [][]inference.Cell{{cell(), cell()}, {cell(), cell()}}, FinalTop1: []int{5, 5}}
	}
	if a := compare("m", "full", lens(), lens()); !a.OK || a.Cells != 4 || a.Prob != 0 {
		t.Fatalf("equal lenses: %+v", a)
	}
	for name, c := range map[string]struct {
		change func(l *inference.Lens)
		check  func(a agreement) bool
	}{
		"an id":        {func(l *inference.Lens) { l.Cells[1][0].Top[1].ID, l.Cells[1][0].Top[1].Prob = 9, 0.20001 }, func(a agreement) bool { return a.IDs == 1 }},
		"a tie":        {func(l *inference.Lens) { l.Cells[1][0].Top[1].ID, l.Cells[1][0].Top[1].Prob = 9, 0.2000001 }, func(a agreement) bool { return a.OK }},
		"a prob":       {func(l *inference.Lens) { l.Cells[0][1].NextProb = 0.2002 }, func(a agreement) bool { return a.Prob > probTol && a.Worst == "row embed pos 1" }},
		"a rank":       {func(l *inference.Lens) { l.Cells[0][0].TargetRank = 7 }, func(a agreement) bool { return a.Ranks == 1 }},
		"a close rank": {func(l *inference.Lens) { l.Cells[0][0].TargetRank = 6 }, func(a agreement) bool { return a.OK }},
		"a NaN":        {func(l *inference.Lens) { l.Cells[0][0].Entropy = math.NaN() }, func(a agreement) bool { return math.IsInf(a.Entropy, 1) }},
		"a KL":         {func(l *inference.Lens) { l.Cells[1][1].KLToFinal = 0.302 }, func(a agreement) bool { return a.KL > natsTol }},
		"non-finite":   {func(l *inference.Lens) { l.Cells[1][1] = inference.Cell{NonFinite: inference.ResidualNaN} }, func(a agreement) bool { return a.NonFinite == 1 }},
		"final top-1":  {func(l *inference.Lens) { l.FinalTop1[1] = -1 }, func(a agreement) bool { return a.FinalTop1 == 1 }},
	} {
		gpu := lens()
		c.change(gpu)
		a := compare("m", "full", lens(), gpu)
		if !c.check(a) || (a.OK != (name == "a tie" || name == "a close rank")) {
			t.Errorf("%s: %+v", name, a)
		}
	}
}
