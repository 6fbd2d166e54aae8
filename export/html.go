package export

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
)

// The page's style and script, inlined into every file (no CDN, no network).
var (
	//go:embed assets/page.css
	pageCSS string
	//go:embed assets/page.js
	pageJS string
)

// DataID is the id of the <script type="application/json"> element that
// holds the lens document in an HTML figure.
const DataID = "lens-data"

// writeHTML writes one self-contained HTML page: the SVG heatmap inline, a
// panel that shows a hovered or clicked cell's top-k with probabilities and
// its statistics, and the lens document itself as embedded JSON (so the page
// is also the data). It references nothing outside the file.
func writeHTML(bw *bytes.Buffer, d *Document, opt Options) error {
	l, err := newLayout(d, opt)
	if err != nil {
		return err
	}
	// json.Marshal escapes <, > and & (and U+2028/9), so the document cannot
	// close the <script> element that holds it.
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	bw.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	bw.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	fmt.Fprintf(bw, "<title>%s</title>\n", esc(l.title()))
	bar, panel := hexOf(l.pal.At(0.55)), "340px"
	if l.cmp != nil { // a diverging palette's centre is white: the bars take its blue half; two top-k side by side
		bar, panel = hexOf(l.pal.At(0.85)), "460px"
	}
	fmt.Fprintf(bw, "<style>\n:root { --ink: %s; --paper: %s; --muted: %s; --bar: %s; --panel: %s; }\n%s</style>\n",
		l.ink, l.paper, l.muted, bar, panel, pageCSS)
	bw.WriteString("</head>\n<body>\n<main>\n<div id=\"figure\">\n")
	l.writeSVG(bw, false)
	bw.WriteString("</div>\n<aside id=\"panel\" aria-live=\"polite\"><p class=\"hint\">Hover over a cell for its top-k and statistics; click to pin it.</p></aside>\n</main>\n")
	fmt.Fprintf(bw, "<footer>%s</footer>\n", esc(l.description()))
	fmt.Fprintf(bw, "<script type=\"application/json\" id=\"%s\">%s</script>\n", DataID, data)
	fmt.Fprintf(bw, "<script>\n%s</script>\n</body>\n</html>\n", pageJS)
	return nil
}
