package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights/hub"
)

// progressPrinter renders download progress on stderr. On a terminal each
// file's line is redrawn in place (\r and erase-line); elsewhere (a log, a
// pipe, CI) each file gets plain lines only: when it starts, when it waits
// for another process's download, and when it is done.
func progressPrinter(w io.Writer, tty bool) func(hub.Progress) {
	var mu sync.Mutex
	started := map[string]bool{}
	return func(p hub.Progress) {
		mu.Lock()
		defer mu.Unlock()
		file := display.Safe(p.File)
		clear := ""
		if tty {
			clear = "\r\033[K"
		}
		switch {
		case p.Waiting:
			fmt.Fprintf(w, "%swaiting for another process downloading %s (%s)\n", clear, file, display.Bytes(p.Total))
			return // a download of our own, if it comes, still gets its line
		case p.Finished:
			fmt.Fprintf(w, "%sdownloaded %s (%s)\n", clear, file, display.Bytes(p.Done))
		case tty:
			eta := "?"
			if p.ETA > 0 {
				eta = p.ETA.Round(time.Second).String()
			}
			fmt.Fprintf(w, "%sdownloading %s: %s / %s, %s/s, ETA %s", clear, file,
				display.Bytes(p.Done), display.Bytes(p.Total), display.Bytes(int64(p.BytesPerSec)), eta)
		case !started[p.File]:
			resumed := ""
			if p.Done > 0 {
				resumed = fmt.Sprintf(", resuming at %s", display.Bytes(p.Done))
			}
			fmt.Fprintf(w, "downloading %s (%s%s)\n", file, display.Bytes(p.Total), resumed)
		}
		started[p.File] = true
	}
}
