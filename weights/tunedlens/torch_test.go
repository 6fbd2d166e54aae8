package tunedlens

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestTorchLoadsWritten is opt-in (LOGITLENS_TORCH=/usr/bin/python3, a
// Python with torch): torch.load reads what Save writes, with
// weights_only=True where torch has it, into an OrderedDict that a
// ModuleList of nn.Linear accepts with strict=True, with the same numbers.
func TestTorchLoadsWritten(t *testing.T) {
	py := os.Getenv("LOGITLENS_TORCH")
	if py == "" {
		t.Skip("opt-in: set LOGITLENS_TORCH to a python with torch")
	}
	for _, bias := range []bool{true, false} {
		l := Identity("m", 7, 3, bias)
		for i := range l.Translators {
			for j := range l.Translators[i].Weight {
				l.Translators[i].Weight[j] = float32(i*1000+j) / 9
			}
			for j := range l.Translators[i].Bias {
				l.Translators[i].Bias[j] = -float32(j) / 5
			}
		}
		dir := t.TempDir()
		if err := Save(dir, l); err != nil {
			t.Fatal(err)
		}
		script := `
import collections, hashlib, inspect, json, sys, torch
path, bias = sys.argv[1], sys.argv[2] == "true"
kw = {"weights_only": True} if "weights_only" in inspect.signature(torch.load).parameters else {}
st = torch.load(path + "/params.pt", **kw)
assert type(st) is collections.OrderedDict, type(st)
m = torch.nn.ModuleList([torch.nn.Linear(7, 7, bias=bias) for _ in range(3)])
m.load_state_dict(st, strict=True)
cfg = json.load(open(path + "/config.json"))
assert cfg["lens_type"] == "linear_tuned_lens" and cfg["bias"] == bias and cfg["d_model"] == 7, cfg
for k, v in st.items():
    print(k, hashlib.sha256(v.numpy().astype("<f4").tobytes()).hexdigest())
`
		out, err := exec.Command(py, "-c", script, dir, map[bool]string{true: "true", false: "false"}[bias]).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var want []string
		for i, tr := range l.Translators {
			want = append(want, fmt.Sprintf("%d.weight %s", i, sha(tr.Weight)))
			if bias {
				want = append(want, fmt.Sprintf("%d.bias %s", i, sha(tr.Bias)))
			}
		}
		if got := strings.TrimSpace(string(out)); got != strings.Join(want, "\n") {
			t.Errorf("torch reads\n%s\nwant\n%s", got, strings.Join(want, "\n"))
		}
	}
}
