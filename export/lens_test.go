package export

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/weights/tunedlens"
)

// TestLensKind: the JSON names the lens ({"kind", "source"}) and so do the
// text header and the figures' titles; a tuned lens's conventions state its
// formula.
func TestLensKind(t *testing.T) {
	l, src := hostileLens()
	logit := NewDocument(l, src, "p", false, 2)
	tl := tunedlens.Identity("m", 8, 1, true)
	tl.Source = "spaces/AlignmentResearch/tuned-lens/lens/gpt2\x1b[2J"
	l.Tuned = tl
	tuned := NewDocument(l, src, "p", false, 2)
	for _, c := range []struct {
		d              *Document
		kind, source   string
		convention     string
		title, textHdr string
	}{
		{logit, "logit", "", "logits = ln_f(h) @ W_U", "logit lens of", ""},
		{tuned, "tuned", tl.Source, "ln_f(h + h @ W_l^T + b_l)", "tuned lens (spaces/AlignmentResearch/tuned-lens/lens/gpt2", " · tuned lens (spaces/AlignmentResearch/tuned-lens/lens/gpt2\\x1b[2J)"},
	} {
		var js bytes.Buffer
		if err := Write(&js, JSON, c.d, Options{}); err != nil {
			t.Fatal(err)
		}
		var raw struct {
			Lens        map[string]string `json:"lens"`
			Conventions struct{ Lens string }
		}
		if err := json.Unmarshal(js.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		if raw.Lens["kind"] != c.kind || raw.Lens["source"] != c.source || !strings.Contains(raw.Conventions.Lens, c.convention) {
			t.Errorf("%s: JSON lens %v, conventions %q", c.kind, raw.Lens, raw.Conventions.Lens)
		}
		for _, f := range []Format{SVG, HTML} {
			var b bytes.Buffer
			if err := Write(&b, f, c.d, Options{}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), c.title) {
				t.Errorf("%s %s: the title does not name the lens (%q)", c.kind, f, c.title)
			}
			if strings.Contains(b.String(), "\x1b") {
				t.Errorf("%s %s: an escape reached the figure", c.kind, f)
			}
		}
		var txt bytes.Buffer
		if err := Write(&txt, Text, c.d, Options{}); err != nil {
			t.Fatal(err)
		}
		header, _, _ := strings.Cut(txt.String(), "\n")
		if c.textHdr != "" && !strings.Contains(header, c.textHdr) || c.textHdr == "" && strings.Contains(header, "tuned") {
			t.Errorf("%s: text header %q", c.kind, header)
		}
	}
}
