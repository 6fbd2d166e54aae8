// Command logitlens shows the logit lens of GPT-2 checkpoints: every
// layer's residual stream decoded into next-token probabilities, live in the
// terminal (the explorer), over SSH (serve), or as text, CSV, JSON, SVG and
// HTML (lens).
//
// main parses, wires and runs: the commands are cobra commands, one file
// each (cmd_*.go), styled by fang; the flags several share are in flags.go.
// An error is printed once, by fang's handler, and mapped to the exit status.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], &app{in: os.Stdin, out: os.Stdout, stderr: os.Stderr, stderrTTY: isTerminal(os.Stderr)})
	stop()
	os.Exit(code)
}
