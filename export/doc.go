// Package export writes a computed logit lens for people and programs, in
// every format logitlens has:
//
//   - text: a grid of each cell's top-1 token and probability;
//   - csv: one record per cell with its top-1, statistics and top-k;
//   - json: the Document (schema logitlens.lens/v1), which states its own
//     conventions;
//   - svg: a heatmap coloured by a Metric on a theme palette;
//   - html: one self-contained page with the heatmap, a panel showing a
//     hovered cell's top-k, and the JSON document.
//
// A lens becomes a Document (NewDocument); Write, Render and WriteFile put
// a Document in a Format, chosen from one table by name or by a file's
// extension, in any case (FormatOf: "out.SVG", "CSV"). Nothing is written
// until the whole output is made, and WriteFile replaces a file atomically,
// so a failure never leaves a partial or an empty file.
//
// Metric is the one definition of the statistics that colour a cell, shared
// by the figures here and the explorer's grid (package tui); Scale maps a
// metric's values onto a palette.
//
// Numbers that are not finite (an overflowed residual stream) are null in
// JSON, empty in CSV, "?" or "—" in the text grid and uncoloured in the
// figures; each such cell's NonFinite and the Document's NonFinite say why.
// Untrusted text — the prompt, token bytes, the model's path — reaches text
// and CSV only through display.Token or display.Safe, so no control or
// bidirectional-override character gets to a terminal.
package export
