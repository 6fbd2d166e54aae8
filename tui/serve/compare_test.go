package serve

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/tui"
)

// TestCompareOverSSH: compare mode works over SSH like everything else: c
// opens B's prompt, the comparison of A with the B typed shows the KL an
// independent pair of sessions computes at the cursor cell, x swaps A and
// B, C leaves.
func TestCompareOverSSH(t *testing.T) {
	const b = "Rome is in"
	key := newSigner(t)
	ts := startServer(t, Options{AuthorizedKeys: authorizedKeys(t, key), Session: tui.Options{Prompt: firstPrompt}})
	c, err := ts.dial("bob", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x := openScreen(t, c, 120, 35)
	x.waitFor(t, "the lens of the initial prompt", 20*time.Second, expect(t, tinyModel(t), firstPrompt).in)

	x.send(t, "\t") // to the grid
	x.send(t, "c")
	x.waitFor(t, "B's prompt, prefilled with A's", 10*time.Second, func(s string) bool { return strings.Contains(s, "B › "+firstPrompt) })
	x.send(t, "\x15") // ctrl+u: B's line emptied
	x.paste(t, b)
	kl := wantKL(t, firstPrompt, b)
	x.waitFor(t, "the comparison with "+b, 20*time.Second, func(s string) bool {
		return strings.Contains(s, "B › "+b) && strings.Contains(s, "KL(A‖B) "+kl+" nats")
	})

	x.send(t, "\t") // back to the grid
	x.send(t, "x")
	swapped := wantKL(t, b, firstPrompt)
	x.waitFor(t, "A and B swapped", 20*time.Second, func(s string) bool {
		return strings.Contains(s, "› "+b) && strings.Contains(s, "B › "+firstPrompt) && strings.Contains(s, "KL(A‖B) "+swapped+" nats")
	})
	x.send(t, "C")
	x.waitFor(t, "compare left", 10*time.Second, func(s string) bool { return !strings.Contains(s, "B › ") && !strings.Contains(s, "KL(A‖B)") })
	x.send(t, "\x03")
	if err := x.waitExit(t, 10*time.Second); err != nil {
		t.Errorf("exit after ctrl+c: %v", err)
	}
}

// wantKL is KL(P_A ‖ P_B) at the output row's last column as the panel
// writes it, computed on two fresh sessions of the tiny model.
func wantKL(t *testing.T, a, b string) string {
	t.Helper()
	m := tinyModel(t)
	ids := func(text string) (out []int) {
		for _, tok := range m.Encode(text) {
			out = append(out, tok.ID)
		}
		return out
	}
	sa, sb := m.NewSession(), m.NewSession()
	defer sa.Close()
	defer sb.Close()
	p, err := inference.NewPair(sa, sb)
	if err != nil {
		t.Fatal(err)
	}
	ra := inference.Request{IDs: ids(a), TopK: 10, Target: -1, NextToken: true}
	rb := ra
	rb.IDs = ids(b)
	cmp, err := p.Compare(context.Background(), ra, rb, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%.3f", cmp.Cells[len(cmp.Cells)-1][cmp.Columns-1].KL)
}
