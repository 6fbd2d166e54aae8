// Command lensbench runs inference.Bench on a local model directory, as
// `logitlens bench` does, for bench/compare.sh and for machines without the
// full binary:
//
//	go run ./bench/lensbench --model testdata/models/small-shape [--tokens 16,64,128] [--runs 7] [--format text|json]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/logitlens/logitlens/inference"
)

func main() {
	model := flag.String("model", "testdata/models/small-shape", "model directory (config.json, model.safetensors, tokenizer)")
	tokens := flag.String("tokens", "16,64,128", "prompt lengths, comma-separated")
	runs := flag.Int("runs", 7, "timed runs after one warm-up")
	format := flag.String("format", "text", "text or json")
	flag.Parse()
	var opt inference.BenchOptions
	for _, s := range strings.Split(*tokens, ",") {
		t, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fail(fmt.Errorf("--tokens: %q is not a number", s))
		}
		opt.Tokens = append(opt.Tokens, t)
	}
	opt.Runs = *runs
	inference.UseBestBLAS()
	start := time.Now()
	m, err := inference.OpenDir(*model, *model, inference.CPU{})
	if err != nil {
		fail(err)
	}
	defer m.Close()
	// Load to first lens: open, then one short lens.
	if _, err := m.NewSession().Lens(context.Background(), inference.Request{IDs: []int{0}, TopK: 10, Target: -1}, nil); err != nil {
		fail(err)
	}
	opt.LoadTime = time.Since(start)
	rep, err := inference.Bench(context.Background(), m, opt)
	if err != nil {
		fail(err)
	}
	if *format == "json" {
		err = rep.WriteJSON(os.Stdout)
	} else {
		err = rep.WriteText(os.Stdout)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "lensbench:", err)
	os.Exit(1)
}
