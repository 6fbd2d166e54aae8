package cuda

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEmbeddedPTX checks every embedded module's structure and that it
// defines exactly the kernels the launchers look up.
func TestEmbeddedPTX(t *testing.T) {
	files, err := ptxFS.ReadDir("ptx")
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	for _, f := range files {
		mods = append(mods, strings.TrimSuffix(f.Name(), ".ptx"))
	}
	if !slices.Equal(mods, moduleNames()) {
		t.Fatalf("ptx/ holds %v, launchers expect %v", mods, moduleNames())
	}
	for _, m := range mods {
		src, _ := ptxFS.ReadFile("ptx/" + m + ".ptx")
		info, err := parsePTX(string(src))
		if err != nil {
			t.Fatalf("%s.ptx: %v", m, err)
		}
		got, want := slices.Sorted(slices.Values(info.Entries)), slices.Sorted(slices.Values(kernelModules[m]))
		if !slices.Equal(got, want) {
			t.Errorf("%s.ptx: entries %v, want %v", m, got, want)
		}
		if info.Target != "sm_70" {
			t.Errorf("%s.ptx: target %s, want sm_70 (compute_70: JIT-compiled forward on newer GPUs)", m, info.Target)
		}
		if _, err := os.Stat(filepath.Join("kernels", m+".cu")); err != nil {
			t.Errorf("%s.ptx has no source kernels/%s.cu", m, m)
		}
	}
}

func TestParsePTXRejects(t *testing.T) {
	for name, src := range map[string]string{
		"no version": ".target sm_70\n.address_size 64\n.visible .entry f(\n",
		"no target":  ".version 7.8\n.address_size 64\n.visible .entry f(\n",
		"32-bit":     ".version 7.8\n.target sm_70\n.address_size 32\n.visible .entry f(\n",
		"no entry":   ".version 7.8\n.target sm_70\n.address_size 64\n",
	} {
		if _, err := parsePTX(src); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// TestPTXIsCurrent regenerates the PTX with nvcc, when it is on PATH and
// is the release that generated the committed files, and expects the same
// bytes: a kernel edited without `go generate` fails here.
func TestPTXIsCurrent(t *testing.T) {
	nvcc, err := exec.LookPath("nvcc")
	if err != nil {
		t.Skip("nvcc not on PATH: PTX freshness not checked")
	}
	ver, err := exec.Command(nvcc, "--version").Output()
	if err != nil {
		t.Fatalf("nvcc --version: %v", err)
	}
	src, _ := ptxFS.ReadFile("ptx/gelu.ptx")
	info, _ := parsePTX(string(src))
	if !strings.Contains(string(ver), "release "+info.Release) {
		t.Skipf("committed PTX is from nvcc release %s; this nvcc is %s", info.Release, lastLine(ver))
	}
	out := t.TempDir()
	cmd := exec.Command("sh", "gen.sh")
	cmd.Env = append(os.Environ(), "NVCC="+nvcc, "OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, b)
	}
	for _, m := range moduleNames() {
		fresh, err := os.ReadFile(filepath.Join(out, m+".ptx"))
		if err != nil {
			t.Fatal(err)
		}
		committed, _ := ptxFS.ReadFile("ptx/" + m + ".ptx")
		if !bytes.Equal(fresh, committed) {
			t.Errorf("ptx/%s.ptx is stale: run go generate ./inference/cuda", m)
		}
	}
}

func lastLine(b []byte) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	return l[len(l)-1]
}

// TestDeviceSetup checks what opening a device does: TF32 off unless asked
// for, every module loaded from PTX and every kernel looked up.
func TestDeviceSetup(t *testing.T) {
	for _, tf32 := range []bool{false, true} {
		e := NewEmulator()
		d, err := newDevice(e, e, tf32)
		if err != nil {
			t.Fatal(err)
		}
		if e.tf32 != tf32 || d.TF32 != tf32 {
			t.Errorf("TF32 asked %v, cuBLAS set %v", tf32, e.tf32)
		}
		if e.calls[0] != "SetTF32 "+map[bool]string{false: "false", true: "true"}[tf32] {
			t.Errorf("first call %q, want the math mode", e.calls[0])
		}
		var loaded, looked []string
		for _, c := range e.calls {
			if s, ok := strings.CutPrefix(c, "LoadModule "); ok {
				loaded = append(loaded, s)
			}
			if s, ok := strings.CutPrefix(c, "Function "); ok {
				looked = append(looked, s)
			}
		}
		if len(loaded) != len(kernelModules) {
			t.Errorf("loaded %d modules, want %d", len(loaded), len(kernelModules))
		}
		if !slices.Equal(slices.Sorted(slices.Values(looked)), kernelNames()) {
			t.Errorf("looked up %v, want %v", looked, kernelNames())
		}
		if len(d.kernels) != len(kernelNames()) {
			t.Errorf("%d kernels ready", len(d.kernels))
		}
	}
}

func TestLaunchShapes(t *testing.T) {
	for _, c := range []struct{ n, grid int }{{1, 1}, {256, 1}, {257, 2}, {16 * 768, 48}, {1024 * 3072, 12288}} {
		g, b := elementwise(c.n)
		if g.X != c.grid || b.X != blockThreads || g.X*b.X < c.n {
			t.Errorf("elementwise(%d) = %v %v", c.n, g, b)
		}
	}
	g, b := perRow(13 * 1024)
	if g.X != 13*1024 || b.X != blockThreads {
		t.Errorf("perRow = %v %v", g, b)
	}
	g, b, sh := attentionShape(16, 12, 64, 1024)
	if g != (Dim3{16, 12, 1}) || b.X != blockThreads || sh != 4*(64+1024+256) {
		t.Errorf("attentionShape = %v %v %d", g, b, sh)
	}
	if sh > 48<<10 {
		t.Errorf("attention needs %d bytes of shared memory at P = 1024, over the 48 KiB default", sh)
	}
}

// TestBufferSizes pins the device memory of GPT-2 small's state and lens.
func TestBufferSizes(t *testing.T) {
	cfg := Config{NLayer: 12, NHead: 12, NEmbd: 768, VocabSize: 50257, NPositions: 1024}
	if got, want := stateBytes(cfg), int64(4*(2*12*1024*768+25*1024*768+12*1024*768+1024)); got != want {
		t.Errorf("stateBytes = %d, want %d", got, want)
	}
	// full lens at T = 1024: 13 rows per position, one GEMM
	got := lensBytes(13*1024, 768, 50257)
	if logits := int64(4 * 13 * 1024 * 50257); got < logits || got > logits+logits/10 {
		t.Errorf("lensBytes = %d for %d bytes of logits", got, logits)
	}
	if got > 4<<30 {
		t.Errorf("T=1024 lens (%d bytes) does not fit the default 4 GiB budget: it would be chunked", got)
	}
}

func TestCheckConfig(t *testing.T) {
	ok := Config{NLayer: 2, NHead: 4, NEmbd: 64, VocabSize: 50257, NPositions: 128}
	if err := checkConfig(ok); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Config{
		{NLayer: 2, NHead: 3, NEmbd: 64, VocabSize: 50257, NPositions: 128},
		{NLayer: 2, NHead: 1, NEmbd: 512, VocabSize: 50257, NPositions: 128},
		{NLayer: 0, NHead: 4, NEmbd: 64, VocabSize: 50257, NPositions: 128},
		{NLayer: 2, NHead: 4, NEmbd: 64, VocabSize: 10, NPositions: 128},
	} {
		if err := checkConfig(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
