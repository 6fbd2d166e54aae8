package hub

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// hubPythonScript downloads files with huggingface_hub (online, or from
// the cache only) and prints {file: path}.
const pythonScript = `
import json, sys
from huggingface_hub import hf_hub_download
mode, repo, cache = sys.argv[1:4]
print(json.dumps({f: hf_hub_download(repo, f, cache_dir=cache, local_files_only=(mode == "offline"))
                  for f in sys.argv[4:]}))
`

// interopEnv opts in to TestHubInteropPython, which needs Python.
const interopEnv = "LOGITLENS_HUB_INTEROP"

// TestHubInteropPython shares one cache with Python's huggingface_hub in
// both directions. It is opt-in (the suite needs only Go): set
// LOGITLENS_HUB_INTEROP=1 with /usr/bin/python3 and huggingface_hub
// installed.
func TestHubInteropPython(t *testing.T) {
	if os.Getenv(interopEnv) == "" {
		t.Skipf("opt-in: set %s=1 to check the cache against Python's huggingface_hub (needs /usr/bin/python3 with huggingface_hub)", interopEnv)
	}
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import huggingface_hub").CombinedOutput(); err != nil {
		t.Fatalf("%s is set but %s cannot import huggingface_hub: %v\n%s", interopEnv, py, err, out)
	}
	h := newFakeHub(t)
	files := fakeModelFiles(40)
	commit := h.addCommit("org/interop", "main", files)
	want := []string{"config.json", "model.safetensors", "tokenizer.json"}
	run := func(mode, cache string) map[string]string {
		t.Helper()
		cmd := exec.Command(py, append([]string{"-c", pythonScript, mode, "org/interop", cache}, want...)...)
		cmd.Env = append(os.Environ(), "HF_ENDPOINT="+h.hub.URL, "HF_HOME="+t.TempDir(), "HF_TOKEN=",
			"HF_HUB_DISABLE_TELEMETRY=1", "HF_HUB_DISABLE_XET=1", "HF_HUB_OFFLINE=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("python %s: %v\n%s", mode, err, out)
		}
		paths := map[string]string{}
		if err := json.Unmarshal(bytes.TrimSpace(out), &paths); err != nil {
			t.Fatalf("python output %q: %v", out, err)
		}
		return paths
	}

	// Python writes, Go reads offline.
	pyCache := t.TempDir()
	run("online", pyCache)
	snap, err := Resolve(testCtx(t), "org/interop", Options{CacheDir: pyCache, Offline: true})
	if err != nil || snap.Commit != commit {
		t.Fatalf("Go offline on Python's cache: %+v, %v", snap, err)
	}
	for _, f := range want {
		checkLinked(t, filepath.Join(pyCache, "models--org--interop"), commit, f, files[f])
	}

	// Go writes, Python reads offline.
	opt := testOptions(t, h)
	if _, err := Resolve(testCtx(t), "org/interop", opt); err != nil {
		t.Fatal(err)
	}
	for f, p := range run("offline", opt.CacheDir) {
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, files[f]) {
			t.Errorf("Python read %s from Go's cache: %v", f, err)
		}
	}
}
