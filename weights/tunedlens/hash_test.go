package tunedlens

import (
	"encoding/json"
	"os"
	"testing"
)

// TestUnembedHash rebuilds the matrices of testdata/hash_cases.json (from
// hash_cases.py, which hashes numpy.array_str(w, precision=1)) and
// compares the hashes: positional and scientific formats, summarised and
// full arrays, wrapped lines, zeros, -0 and extreme values.
func TestUnembedHash(t *testing.T) {
	data, err := os.ReadFile("testdata/hash_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Cases []struct {
			Rows, Cols, Mul, Add, Off, Mod int
			Div                            float64
			Set                            [][3]float64
			Hash                           string
		}
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Cases) < 90 {
		t.Fatalf("only %d cases", len(golden.Cases))
	}
	for n, c := range golden.Cases {
		w := make([]float32, c.Rows*c.Cols)
		for i := range c.Rows {
			for j := range c.Cols {
				v := (i*c.Mul+j*c.Add+c.Off)%c.Mod - c.Mod/2
				w[i*c.Cols+j] = float32(v) / float32(c.Div)
			}
		}
		for _, s := range c.Set {
			w[int(s[0])*c.Cols+int(s[1])] = float32(s[2])
		}
		if got := UnembedHash(w, c.Rows, c.Cols); got != c.Hash {
			t.Errorf("case %d (%d×%d, /%g): hash %s, numpy %s\n%s", n, c.Rows, c.Cols, c.Div, got, c.Hash, arrayStr(w, c.Rows, c.Cols))
		}
	}
}
