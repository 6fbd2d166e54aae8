package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/logitlens/logitlens/display"
)

// writeJSON writes the document as one JSON object and a newline. Float
// fields write NaN and ±Inf as null; the cell's "nonfinite" says why.
func writeJSON(w *bytes.Buffer, d *Document) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// csvText is token text as CSV holds it: escaped as display.Safe escapes
// (controls and bidi overrides as Go escapes, a backslash doubled), so that
// a CSV shown in a terminal cannot drive it. The JSON keeps the raw text.
func csvText(s string) string { return display.SafeN(s, 0) }

// csvFloat is a number as CSV holds it: empty when not finite.
func csvFloat(x Float) string {
	if !x.Finite() {
		return ""
	}
	return strconv.FormatFloat(float64(x), 'g', 8, 64)
}

// writeCSV writes one record per cell with its top-1, statistics and top-k.
// A cell whose numbers are not finite has them empty and its reason in the
// last column, nonfinite. With a comparison, each record also has the
// compare columns (empty at A's unpaired positions), and each row starts
// with a record per unpaired position of B, whose position and A's
// columns are empty.
func writeCSV(w *bytes.Buffer, d *Document) error {
	cw := csv.NewWriter(w)
	header := []string{"row", "row_kind", "layer", "position", "input_id", "input_token", "next_id", "next_token",
		"top1_id", "top1_token", "top1_prob", "entropy", "kl_to_final", "final_top1_id", "final_top1_rank", "final_top1_prob"}
	if d.Target != nil {
		header = append(header, "target_id", "target_rank", "target_prob")
	}
	withNext := d.hasNext()
	if withNext {
		header = append(header, "next_rank", "next_prob")
	}
	header = append(header, "top_ids", "top_probs", "nonfinite")
	cmp := d.Compare
	if cmp != nil {
		header = append(header, compareHeader(d)...)
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	for r, row := range d.Cells {
		if cmp != nil {
			if err := writeUnpairedB(cw, d, r, len(header)); err != nil {
				return err
			}
		}
		for p, c := range row {
			next, nextText := "", ""
			if p+1 < len(d.Tokens) {
				next, nextText = strconv.Itoa(d.Tokens[p+1].ID), csvText(d.Tokens[p+1].Text)
			}
			top1, top1Text, top1Prob := "", "", ""
			if len(c.Top) > 0 {
				top1, top1Text, top1Prob = strconv.Itoa(c.Top[0].ID), csvText(c.Top[0].Text), csvFloat(c.Top[0].Prob)
			}
			ids := make([]string, len(c.Top))
			probs := make([]string, len(c.Top))
			for j, t := range c.Top {
				ids[j], probs[j] = strconv.Itoa(t.ID), csvFloat(t.Prob)
			}
			rec := []string{csvText(d.Rows[r].Name), d.Rows[r].Kind, strconv.Itoa(d.Rows[r].Layer), strconv.Itoa(p),
				strconv.Itoa(d.Tokens[p].ID), csvText(d.Tokens[p].Text), next, nextText,
				top1, top1Text, top1Prob, csvFloat(c.Entropy), csvFloat(c.KLToFinal),
				finalTop1ID(d, p), csvRank(&c.FinalTop1Rank), csvFloat(c.FinalTop1Prob)}
			if d.Target != nil {
				rec = append(rec, strconv.Itoa(d.Target.ID), csvRank(c.TargetRank), csvOptFloat(c.TargetProb))
			}
			if withNext {
				rec = append(rec, csvRank(c.NextRank), csvOptFloat(c.NextProb))
			}
			rec = append(rec, strings.Join(ids, " "), strings.Join(probs, " "), csvText(c.NonFinite))
			if cmp != nil {
				rec = append(rec, compareRecord(d, r, p)...)
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeUnpairedB writes a record of n fields for each of B's positions
// in row r that have no partner in A (B is the longer prompt), so that
// none is dropped: the row's columns, then only B's position, token and
// top-k among the compare columns; everything of A and of the pair empty.
func writeUnpairedB(cw *csv.Writer, d *Document, r, n int) error {
	cmp := d.Compare
	if r >= len(cmp.UnpairedB) {
		return nil
	}
	h := compareHeader(d)
	at := n - len(h) // where the compare columns begin
	for pb, u := range cmp.UnpairedB[r] {
		rec := make([]string, n)
		set := func(name, v string) { rec[at+slices.Index(h, name)] = v }
		rec[0], rec[1], rec[2] = csvText(d.Rows[r].Name), d.Rows[r].Kind, strconv.Itoa(d.Rows[r].Layer)
		ids := make([]string, len(u.TopB))
		probs := make([]string, len(u.TopB))
		for i, t := range u.TopB {
			ids[i], probs[i] = strconv.Itoa(t.ID), csvFloat(t.Prob)
		}
		set("b_position", strconv.Itoa(pb))
		set("b_input_id", strconv.Itoa(cmp.B.Tokens[pb].ID))
		set("b_input_token", csvText(cmp.B.Tokens[pb].Text))
		if len(u.TopB) > 0 {
			set("top1_b_id", strconv.Itoa(u.TopB[0].ID))
			set("top1_b_token", csvText(u.TopB[0].Text))
		}
		set("top_b_ids", strings.Join(ids, " "))
		set("top_b_probs", strings.Join(probs, " "))
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	return nil
}

// compareHeader names the CSV's compare columns: the aligned column and B's
// position and token, then the pair's statistics and B's top-k.
func compareHeader(d *Document) []string {
	h := []string{"compare_column", "b_position", "b_input_id", "b_input_token", "kl_ab", "top1_b_id", "top1_b_token",
		"prob_a_of_top1_a", "prob_b_of_top1_a", "rank_b_of_top1_a", "delta_top1", "top1_differs"}
	if d.Target != nil {
		h = append(h, "target_prob_b", "delta_target")
	}
	return append(h, "top_b_ids", "top_b_probs")
}

// compareRecord is the compare columns of A's cell (r, p): empty where
// position p has no partner in B.
func compareRecord(d *Document, r, p int) []string {
	cmp := d.Compare
	rec := make([]string, len(compareHeader(d)))
	j := p - cmp.OffsetA
	if j < 0 || j >= cmp.Columns {
		return rec
	}
	c := cmp.Cells[r][j]
	pb := cmp.OffsetB + j
	top1, top1Text := "", ""
	if c.Top1B >= 0 && len(c.TopB) > 0 {
		top1, top1Text = strconv.Itoa(c.Top1B), csvText(c.TopB[0].Text)
	}
	ids := make([]string, len(c.TopB))
	probs := make([]string, len(c.TopB))
	for i, t := range c.TopB {
		ids[i], probs[i] = strconv.Itoa(t.ID), csvFloat(t.Prob)
	}
	rec = []string{strconv.Itoa(j), strconv.Itoa(pb), strconv.Itoa(cmp.B.Tokens[pb].ID), csvText(cmp.B.Tokens[pb].Text),
		csvFloat(c.KLAB), top1, top1Text, csvFloat(c.ProbAOfTop1A), csvFloat(c.ProbBOfTop1A), csvRank(&c.RankBOfTop1A),
		csvFloat(c.DeltaTop1), strconv.FormatBool(c.Top1Differs)}
	if d.Target != nil {
		rec = append(rec, csvOptFloat(c.TargetProbB), csvOptFloat(c.DeltaTarget))
	}
	return append(rec, strings.Join(ids, " "), strings.Join(probs, " "))
}

// finalTop1ID is the id of the output row's top-1 at position p, or "" when
// the output row had none there.
func finalTop1ID(d *Document, p int) string {
	if p < len(d.FinalTop1) && d.FinalTop1[p].ID >= 0 {
		return strconv.Itoa(d.FinalTop1[p].ID)
	}
	return ""
}

// csvRank is a rank as CSV holds it: empty when absent or −1 (not computable).
func csvRank(r *int) string {
	if r == nil || *r < 0 {
		return ""
	}
	return strconv.Itoa(*r)
}

// csvOptFloat is csvFloat of an optional number.
func csvOptFloat(x *Float) string {
	if x == nil {
		return ""
	}
	return csvFloat(*x)
}

// textColumn is the width of a grid column in the text format.
const textColumn = 10

// writeText writes a readable grid: one line per row, the model's output
// first and the embedding last, each cell the row's top-1 token and its
// probability in percent, under a header of the input tokens. Tokens are in
// display form and the model's name is escaped by display.Safe, so nothing
// in the output can act on a terminal.
func writeText(w *bytes.Buffer, d *Document) error {
	fmt.Fprintf(w, "%s · %d layers · %s · top-1 per cell (probability %%)", display.Safe(d.Model.ID), d.Model.NLayer, display.Safe(d.Device))
	if d.Lens.Kind == "tuned" {
		fmt.Fprintf(w, " · %s", display.Safe(d.Lens.Name()))
	}
	if d.Target != nil {
		fmt.Fprintf(w, " · target %s", d.Target.Display)
	}
	w.WriteString("\n")
	label := 8
	for _, r := range d.Rows {
		label = max(label, ansi.StringWidth(display.Safe(r.Name))+2)
	}
	w.WriteString(pad("", label))
	for _, t := range d.Tokens {
		w.WriteString(pad(cut(t.Display, textColumn-1), textColumn))
	}
	w.WriteString("\n")
	for r := len(d.Rows) - 1; r >= 0; r-- {
		name := display.Safe(d.Rows[r].Name)
		if r == len(d.Rows)-1 {
			name += "*"
		}
		w.WriteString(pad(name, label))
		for _, c := range d.Cells[r] {
			w.WriteString(pad(textCell(c), textColumn))
		}
		w.WriteString("\n")
	}
	w.WriteString("* model output (ln_f applied once per row)\n")
	if d.NonFinite != "" {
		fmt.Fprintf(w, "! not finite: %s\n", display.Safe(d.NonFinite))
	}
	if d.Compare != nil {
		writeCompareText(w, d, label)
	}
	return nil
}

// writeCompareText writes the comparison's grid under A's: columns
// right-aligned, A's tokens and, where they differ, B's; each paired cell
// KL(P_A ‖ P_B) in nats and, where the top-1s differ, "≠" and B's top-1;
// where a position has no partner, the top-1 of the run that has it in
// parentheses (uncompared), or "·" where that run's cell has none.
func writeCompareText(w *bytes.Buffer, d *Document, label int) {
	cmp := d.Compare
	fmt.Fprintf(w, "\ncompare · B changes the %s: %s · right-aligned · cell: KL(P_A‖P_B) nats, ≠ B's top-1 where it differs, (top-1) where only one run has the position\n",
		cmp.B.Differs, display.Safe(runBName(cmp.B)))
	tA := len(d.Tokens)
	W := cmp.width(tA)
	label = max(label, 4)
	row := func(name string, cell func(x int) string) {
		w.WriteString(pad(name, label))
		for x := range W {
			w.WriteString(pad(cut(cell(x), textColumn-1), textColumn))
		}
		w.WriteString("\n")
	}
	token := func(ts []TokenRef, p int) string {
		if p < 0 {
			return ""
		}
		return ts[p].Display
	}
	row("A", func(x int) string { return token(d.Tokens, cmp.posA(x, W, tA)) })
	if tokensDiffer(d) {
		row("B", func(x int) string { return token(cmp.B.Tokens, cmp.posB(x, W)) })
	}
	for r := len(d.Rows) - 1; r >= 0; r-- {
		name := display.Safe(d.Rows[r].Name)
		if r == len(d.Rows)-1 {
			name += "*"
		}
		row(name, func(x int) string {
			pa, pb := cmp.posA(x, W, tA), cmp.posB(x, W)
			j := pa - cmp.OffsetA
			if pa < 0 || pb < 0 || j < 0 {
				if top, ok := cmp.unpairedTop1(d, r, pa, pb); ok {
					return "(" + top.Display + ")"
				}
				return "·"
			}
			c := cmp.Cells[r][j]
			if !c.KLAB.Finite() {
				return "—"
			}
			s := strconv.FormatFloat(float64(c.KLAB), 'f', 2, 64)
			if c.Top1Differs && len(c.TopB) > 0 {
				s += "≠" + c.TopB[0].Display
			}
			return s
		})
	}
}

// tokensDiffer reports whether B's tokens differ from A's.
func tokensDiffer(d *Document) bool {
	b := d.Compare.B.Tokens
	if len(b) != len(d.Tokens) {
		return true
	}
	for i, t := range b {
		if t.ID != d.Tokens[i].ID {
			return true
		}
	}
	return false
}

// runBName is what run B is, in a few words: its prompt, model or lens.
func runBName(b RunB) string {
	switch b.Differs {
	case "model":
		return b.Model.ID
	case "lens":
		return b.Lens.Name()
	}
	return "“" + b.Prompt + "”"
}

// textCell is a cell of the text grid: its top-1 and probability in
// percent, "—" where the cell has no top-1, "?" for a probability that is
// not a finite number.
func textCell(c CellInfo) string {
	if len(c.Top) == 0 {
		return "—"
	}
	pct := "?"
	if p := c.Top[0].Prob; p.Finite() {
		pct = strconv.FormatFloat(100*float64(p), 'f', 0, 64)
	}
	return cut(c.Top[0].Display, textColumn-2-len(pct)) + " " + pct
}

// pad left-aligns s in n terminal cells.
func pad(s string, n int) string {
	if k := ansi.StringWidth(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}

// cut shortens s to at most n terminal cells, marking a cut with "…".
func cut(s string, n int) string {
	if n < 1 {
		return ""
	}
	if ansi.StringWidth(s) <= n {
		return s
	}
	return ansi.Truncate(s, n, "…")
}
