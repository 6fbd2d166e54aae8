package export

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/logitlens/logitlens/theme"
)

// Format is an output format of a lens.
type Format int

// The formats, in the order help texts list them.
const (
	// Text is a readable grid of each cell's top-1 token and probability.
	Text Format = iota
	// CSV has one record per cell: its top-1, statistics and top-k.
	CSV
	// JSON is the Document itself (schema logitlens.lens/v1).
	JSON
	// SVG is a heatmap coloured by a metric.
	SVG
	// HTML is one self-contained page: the heatmap, a panel with a hovered
	// cell's top-k, and the JSON document.
	HTML
	numFormats
)

// formatTable is the one table of formats: names, file extensions (the
// first is the one to write) and whether the format is a figure, drawn with
// Options.Metric on Options.Palette.
var formatTable = [numFormats]struct {
	name   string
	exts   []string
	figure bool
	write  func(w *bytes.Buffer, d *Document, opt Options) error
}{
	Text: {"text", []string{".txt"}, false, func(w *bytes.Buffer, d *Document, _ Options) error { return writeText(w, d) }},
	CSV:  {"csv", []string{".csv"}, false, func(w *bytes.Buffer, d *Document, _ Options) error { return writeCSV(w, d) }},
	JSON: {"json", []string{".json"}, false, func(w *bytes.Buffer, d *Document, _ Options) error { return writeJSON(w, d) }},
	SVG:  {"svg", []string{".svg"}, true, writeSVG},
	HTML: {"html", []string{".html", ".htm"}, true, writeHTML},
}

// FormatNames lists the names ParseFormat accepts, in table order.
func FormatNames() []string {
	names := make([]string, numFormats)
	for i := range names {
		names[i] = formatTable[i].name
	}
	return names
}

// ParseFormat returns the format of a name from FormatNames, in any case.
func ParseFormat(name string) (Format, error) {
	for i, f := range formatTable {
		if strings.EqualFold(name, f.name) {
			return Format(i), nil
		}
	}
	return 0, fmt.Errorf("export: unknown format %q (want %s)", name, strings.Join(FormatNames(), ", "))
}

// FormatOf picks a format: the named one if name is not empty, else the one
// of path's extension (in any case: out.SVG is an SVG), else Text. A path
// with an extension no format has is an error, so "out.png" is not silently
// written as text.
func FormatOf(name, path string) (Format, error) {
	if name != "" {
		return ParseFormat(name)
	}
	ext := filepath.Ext(path)
	if ext == "" || path == "-" {
		return Text, nil
	}
	for i, f := range formatTable {
		for _, e := range f.exts {
			if strings.EqualFold(ext, e) {
				return Format(i), nil
			}
		}
	}
	return 0, fmt.Errorf("export: no format writes %q files (give --format: %s)", ext, strings.Join(FormatNames(), ", "))
}

// String returns the format's name, e.g. "svg".
func (f Format) String() string {
	if f < 0 || f >= numFormats {
		return fmt.Sprintf("format(%d)", int(f))
	}
	return formatTable[f].name
}

// Ext returns the file extension to write the format with, e.g. ".svg".
func (f Format) Ext() string { return formatTable[f].exts[0] }

// Figure reports whether the format is a picture coloured by a metric on a
// palette (SVG, HTML); the others ignore Options.
func (f Format) Figure() bool { return formatTable[f].figure }

// Options choose how a figure looks.
type Options struct {
	// Metric colours the cells; the zero value is MetricProb.
	Metric Metric
	// Palette is a theme palette name (theme.Names(): viridis, cividis,
	// gray); "" is viridis.
	Palette string
	// FixedScale draws the relative metrics (kl, ce) on 0..ln V rather
	// than up to the lens's largest value, so that figures of different
	// prompts compare by eye.
	FixedScale bool
}

// Validate checks the options before any work is done, so a command line
// fails before it loads a model; hasTarget says whether a target token was
// given (the target metric needs one).
func (o Options) Validate(hasTarget bool) error {
	if _, err := theme.Lookup(o.Palette); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if o.Metric < 0 || o.Metric >= numMetrics {
		return fmt.Errorf("export: unknown metric %d", int(o.Metric))
	}
	if o.Metric.NeedsTarget() && !hasTarget {
		return fmt.Errorf("export: metric %s needs a target token (--target)", o.Metric)
	}
	return nil
}

// Write writes the document in format f to w. The whole output is made
// before the first byte is written, so an error leaves w untouched.
func Write(w io.Writer, f Format, d *Document, opt Options) error {
	b, err := render(f, d, opt)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// render returns the document in format f.
func render(f Format, d *Document, opt Options) ([]byte, error) {
	if f < 0 || f >= numFormats {
		return nil, fmt.Errorf("export: unknown format %d", int(f))
	}
	if d == nil {
		return nil, fmt.Errorf("export: no document")
	}
	var buf bytes.Buffer
	if err := formatTable[f].write(&buf, d, opt); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteFile writes the document in format f to the file at path, atomically:
// into a temporary file beside it, renamed over path only once complete, so
// a failure (a full disk, an interrupted run, an invalid document) leaves
// neither a partial nor an empty file, and an existing file intact.
func WriteFile(path string, f Format, d *Document, opt Options) error {
	b, err := render(f, d, opt)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}
