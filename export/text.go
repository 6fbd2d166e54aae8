package export

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// WriteCSV writes one row per cell with its top-1, statistics and top-k.
func WriteCSV(w io.Writer, d *Document) error {
	cw := csv.NewWriter(w)
	header := []string{"row", "row_kind", "layer", "position", "input_id", "input_token", "next_id", "next_token",
		"top1_id", "top1_token", "top1_prob", "entropy", "kl_to_final", "final_top1_id", "final_top1_rank", "final_top1_prob"}
	if d.Target != nil {
		header = append(header, "target_id", "target_rank", "target_prob")
	}
	header = append(header, "top_ids", "top_probs")
	if err := cw.Write(header); err != nil {
		return err
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', 8, 64) }
	for r, row := range d.Cells {
		for p, c := range row {
			next, nextText := "", ""
			if p+1 < len(d.Tokens) {
				next, nextText = strconv.Itoa(d.Tokens[p+1].ID), d.Tokens[p+1].Text
			}
			ids := make([]string, len(c.Top))
			probs := make([]string, len(c.Top))
			for j, t := range c.Top {
				ids[j], probs[j] = strconv.Itoa(t.ID), f(t.Prob)
			}
			rec := []string{d.Rows[r].Name, d.Rows[r].Kind, strconv.Itoa(d.Rows[r].Layer), strconv.Itoa(p),
				strconv.Itoa(d.Tokens[p].ID), d.Tokens[p].Text, next, nextText,
				strconv.Itoa(c.Top[0].ID), c.Top[0].Text, f(c.Top[0].Prob), f(c.Entropy), f(c.KLToFinal),
				strconv.Itoa(d.FinalTop1[p].ID), strconv.Itoa(c.FinalTop1Rank), f(c.FinalTop1Prob)}
			if d.Target != nil {
				rec = append(rec, strconv.Itoa(d.Target.ID), strconv.Itoa(*c.TargetRank), f(*c.TargetProb))
			}
			rec = append(rec, strings.Join(ids, " "), strings.Join(probs, " "))
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// textColumn is the width of a grid column in WriteText.
const textColumn = 10

// WriteText writes a readable grid: one line per row, the model's output
// first and the embedding last, each cell the row's top-1 token and its
// probability in percent, under a header of the input tokens.
func WriteText(w io.Writer, d *Document) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s · %d layers · %s · top-1 per cell (probability %%)", d.Model.ID, d.Model.NLayer, d.Device)
	if d.Target != nil {
		fmt.Fprintf(&b, " · target %s", d.Target.Display)
	}
	b.WriteString("\n")
	label := 8
	for _, r := range d.Rows {
		label = max(label, len(r.Name)+2)
	}
	b.WriteString(pad("", label))
	for _, t := range d.Tokens {
		b.WriteString(pad(cut(t.Display, textColumn-1), textColumn))
	}
	b.WriteString("\n")
	for r := len(d.Rows) - 1; r >= 0; r-- {
		name := d.Rows[r].Name
		if r == len(d.Rows)-1 {
			name += "*"
		}
		b.WriteString(pad(name, label))
		for _, c := range d.Cells[r] {
			pct := fmt.Sprintf("%.0f", 100*c.Top[0].Prob)
			tok := cut(c.Top[0].Display, textColumn-2-len(pct))
			b.WriteString(pad(tok+" "+pct, textColumn))
		}
		b.WriteString("\n")
	}
	b.WriteString("* model output (ln_f applied once per row)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// pad left-aligns s in n terminal cells.
func pad(s string, n int) string {
	if k := ansi.StringWidth(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}

// cut shortens s to n terminal cells, marking the cut with "…".
func cut(s string, n int) string {
	if n < 1 {
		return ""
	}
	return ansi.Truncate(s, n, "…")
}
