package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/hub"
	"github.com/logitlens/logitlens/weights/testmodel"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// serveRepos is a minimal hub serving several repositories, each from a
// local folder, files by their path in the repo: "spaces/ORG/NAME" is a
// Space, as the hub's URLs name it.
func serveRepos(t *testing.T, repos map[string]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for repo, dir := range repos {
			prefix := "/" + repo + "/resolve/"
			rest, ok := strings.CutPrefix(r.URL.Path, prefix)
			if !ok {
				continue
			}
			rev, file, _ := strings.Cut(rest, "/")
			commit := fmt.Sprintf("%040x", sha1.Sum([]byte(repo)))
			if rev != "main" && rev != commit {
				w.Header().Set("X-Error-Code", "RevisionNotFound")
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.Header().Set("X-Repo-Commit", commit)
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
			if err != nil || path.Clean(file) != file || strings.HasPrefix(file, "..") {
				w.Header().Set("X-Error-Code", "EntryNotFound")
				w.WriteHeader(http.StatusNotFound)
				return
			}
			if strings.HasSuffix(file, ".safetensors") || strings.HasSuffix(file, ".pt") { // LFS
				sum := sha256.Sum256(data)
				w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(sum[:])+`"`)
				w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
			}
			oid := sha1.Sum(append(fmt.Appendf(nil, "blob %d\x00", len(data)), data...))
			w.Header().Set("ETag", `"`+hex.EncodeToString(oid[:])+`"`)
			http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(data))
			return
		}
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// --lens tuned takes the published lens from the tuned-lens Space
// (lens/<model>/), into the Hugging Face cache as huggingface_hub would put
// it, and works offline afterwards; its cells are the reference's.
func TestLensTunedFromSpace(t *testing.T) {
	model := testmodel.Dir(t, "tiny-f32")
	space := t.TempDir()
	if err := os.MkdirAll(filepath.Join(space, "lens", "gpt2"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "params.pt"} {
		b, err := os.ReadFile(filepath.Join("weights", "tunedlens", "testdata", "lenses", "f32", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(space, "lens", "gpt2", f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := serveRepos(t, map[string]string{"gpt2": model, "acme/tiny": model, "spaces/AlignmentResearch/tuned-lens": space})
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_OFFLINE", "")
	args := []string{"lens", "-m", "gpt2", "--lens", "tuned", "--format", "json", "-p", "The Eiffel Tower is in the city of"}
	online, errOut, err := execArgs(t, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "downloaded lens/gpt2/params.pt") {
		t.Errorf("no download progress for the lens: %q", errOut)
	}
	snaps, _ := filepath.Glob(filepath.Join(cache, "spaces--AlignmentResearch--tuned-lens", "snapshots", "*", "lens", "gpt2", "params.pt"))
	if len(snaps) != 1 {
		t.Errorf("params.pt in the cache: %v", snaps)
	}
	var doc struct {
		Lens  struct{ Kind, Source string }
		Cells [][]struct {
			Top []struct{ ID int }
		}
	}
	if err := json.Unmarshal([]byte(online), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Lens.Kind != "tuned" || doc.Lens.Source != "published" {
		t.Errorf("lens %+v", doc.Lens)
	}
	// the reference's top-1 ids (lens_ref.py --tuned, inference/testdata/golden/tuned-f32.json)
	gb, err := os.ReadFile(filepath.Join("inference", "testdata", "golden", "tuned-f32.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Results struct {
			F64 struct {
				TopIDs [][][]int `json:"top_ids"`
			} `json:"float64"`
		} `json:"results"`
	}
	if err := json.Unmarshal(gb, &g); err != nil {
		t.Fatal(err)
	}
	for r, row := range g.Results.F64.TopIDs {
		for p, ids := range row {
			if doc.Cells[r][p].Top[0].ID != ids[0] {
				t.Errorf("row %d pos %d: top-1 %d, reference %d", r, p, doc.Cells[r][p].Top[0].ID, ids[0])
			}
		}
	}

	t.Setenv("HF_HUB_OFFLINE", "1")
	offline, _, err := execArgs(t, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	if offline != online {
		t.Error("offline output differs from online")
	}

	// a model the Space has no lens for
	t.Setenv("HF_HUB_OFFLINE", "")
	_, _, err = execArgs(t, "", "lens", "-m", "acme/tiny", "--lens", "tuned", "-p", "Hello")
	if err == nil || !strings.Contains(err.Error(), "no published tuned lens for acme/tiny") || !strings.Contains(err.Error(), "gpt2, gpt2-large, gpt2-xl") {
		t.Errorf("no published lens: %v", err)
	}
	// any repo's folder: tuned:REPO/FOLDER
	out, _, err := execArgs(t, "", "lens", "-m", "acme/tiny", "--lens", "tuned:spaces/AlignmentResearch/tuned-lens/lens/gpt2", "-p", "Hello")
	if err != nil || !strings.Contains(out, "tuned lens (spaces/AlignmentResearch/tuned-lens/lens/gpt2)") {
		t.Errorf("tuned:REPO/FOLDER: %v\n%s", err, out)
	}
	// at a revision: tuned:REPO@REV/FOLDER
	commit := fmt.Sprintf("%040x", sha1.Sum([]byte("spaces/AlignmentResearch/tuned-lens")))
	out, _, err = execArgs(t, "", "lens", "-m", "acme/tiny", "--lens", "tuned:spaces/AlignmentResearch/tuned-lens@"+commit+"/lens/gpt2", "-p", "Hello")
	if err != nil || !strings.Contains(out, "tuned lens (spaces/AlignmentResearch/tuned-lens@"+commit+"/lens/gpt2)") {
		t.Errorf("tuned:REPO@REV/FOLDER: %v\n%s", err, out)
	}
	_, _, err = execArgs(t, "", "lens", "-m", "acme/tiny", "--lens", "tuned:spaces/AlignmentResearch/tuned-lens@v9/lens/gpt2", "-p", "Hello")
	if err == nil || !strings.Contains(err.Error(), `revision "v9" not found`) {
		t.Errorf("an unknown revision: %v", err)
	}
}

// tune trains on a text file and writes a lens that --lens tuned:DIR reads;
// a lens of another width is refused with both shapes named.
func TestTuneThenLens(t *testing.T) {
	model := testmodel.Dir(t, "tiny-f32")
	dir := t.TempDir()
	text := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("The man said that he would come to the city in the morning. ", 60)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "lens")
	stdout, stderr, err := runCmd(t, "tune", "-m", model, "--data", text, "--steps", "2", "--tokens-per-step", "128", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "wrote "+out) || !strings.Contains(stderr, "step 2/2") || !strings.Contains(stderr, "KL per layer") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
	l, err := tunedlens.Load(out, 64, 2)
	if err != nil {
		t.Fatal(err)
	}
	if l.Config.UnembedHash == nil || l.Config.BaseModel != model || l.Config.LensType != "linear_tuned_lens" {
		t.Errorf("config %+v", l.Config)
	}
	if _, err := os.Stat(filepath.Join(out, "checkpoint")); !os.IsNotExist(err) {
		t.Errorf("the checkpoint is left behind: %v", err)
	}
	lensOut, _, err := runCmd(t, "lens", "-m", model, "--lens", "tuned:"+out, "-p", "Hello world")
	if err != nil || !strings.Contains(lensOut, "tuned lens ("+out+")") {
		t.Errorf("lens with it: %v\n%s", err, lensOut)
	}
	wide := tunedlens.Identity("x", 32, 3, true)
	if err := tunedlens.Save(filepath.Join(dir, "wide"), wide); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCmd(t, "lens", "-m", model, "--lens", "tuned:"+filepath.Join(dir, "wide"), "-p", "Hello")
	if err == nil || !strings.Contains(err.Error(), "d_model 32 and 3 layers, but this model has d_model 64 and 2 layers") {
		t.Errorf("a lens of another shape: %v", err)
	}
}

// TestTunedByReference is opt-in (LOGITLENS_TORCH=/usr/bin/python3 and
// LOGITLENS_REFERENCE=the reference scripts' folder): a lens trained by
// tune, read by the reference's lens_ref.py --tuned through torch.load,
// gives the cells our lens gives with it.
func TestTunedByReference(t *testing.T) {
	py, ref := os.Getenv("LOGITLENS_TORCH"), os.Getenv("LOGITLENS_REFERENCE")
	if py == "" || ref == "" {
		t.Skip("opt-in: set LOGITLENS_TORCH (a python with torch) and LOGITLENS_REFERENCE (shared/reference)")
	}
	model := testmodel.Dir(t, "tiny-f32")
	dir := t.TempDir()
	text := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("The man said that he would come to the city in the morning. ", 60)), 0o644); err != nil {
		t.Fatal(err)
	}
	lensDir := filepath.Join(dir, "lens")
	if _, _, err := runCmd(t, "tune", "-m", model, "--data", text, "--steps", "3", "--tokens-per-step", "128", "--optimizer", "adam", "--lr", "30", "--out", lensDir); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCmd(t, "lens", "-m", model, "--lens", "tuned:"+lensDir, "--format", "json", "-p", "The Eiffel Tower is in the city of")
	if err != nil {
		t.Fatal(err)
	}
	var ours struct {
		Tokens []struct{ ID int }
		Cells  [][]struct {
			Top []struct {
				ID   int
				Prob float64
			}
			Entropy   float64
			KLToFinal float64 `json:"kl_to_final"`
		}
	}
	if err := json.Unmarshal([]byte(out), &ours); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tk := range ours.Tokens {
		ids = append(ids, strconv.Itoa(tk.ID))
	}
	refOut := filepath.Join(dir, "ref.json")
	cmd := exec.Command(py, filepath.Join(ref, "lens_ref.py"), model, "--ids", strings.Join(ids, ","), "--dtypes", "f64", "--topk", "10", "--tuned", lensDir, "--out", refOut)
	cmd.Env = append(os.Environ(), "GPT2_BPE_DIR="+model)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lens_ref.py: %v\n%s", err, b)
	}
	rb, err := os.ReadFile(refOut)
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Results struct {
			F64 struct {
				TopIDs   [][][]int     `json:"top_ids"`
				TopProbs [][][]float64 `json:"top_probs"`
				Entropy  [][]float64   `json:"entropy"`
				KL       [][]float64   `json:"kl_final_layer"`
			} `json:"float64"`
		} `json:"results"`
	}
	if err := json.Unmarshal(rb, &g); err != nil {
		t.Fatal(err)
	}
	r := g.Results.F64
	var worst float64
	for l := range r.Entropy {
		for p := range r.Entropy[l] {
			c := ours.Cells[l][p]
			if c.Top[0].ID != r.TopIDs[l][p][0] {
				t.Errorf("row %d pos %d: top-1 %d, reference %d", l, p, c.Top[0].ID, r.TopIDs[l][p][0])
			}
			worst = max(worst, math.Abs(c.Top[0].Prob-r.TopProbs[l][p][0]), math.Abs(c.Entropy-r.Entropy[l][p]), math.Abs(c.KLToFinal-r.KL[l][p]))
		}
	}
	if worst > 1e-3 {
		t.Errorf("cells differ from the reference's by up to %g", worst)
	}
	t.Logf("max difference from lens_ref.py --tuned: %.2e", worst)
}

// The built-in model's tuned lens ships in the binary: --model demo --lens
// tuned works offline, and on held-out text (a Brown file the model and
// the lens were not trained on) its mean KL to the output is well below the
// logit lens's on every row but the output; the explorer's loader gives the
// same lens, loaded once.
func TestBuiltinTunedLens(t *testing.T) {
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:1") // nothing listens: any download would fail
	heldout := filepath.Join("weights", "builtin", "testdata", "heldout.txt")
	meanKL := func(lens string) ([]float64, string) {
		out, _, err := runCmd(t, "lens", "-m", "demo", "--lens", lens, "--format", "json", "--prompt-file", heldout)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Lens  struct{ Kind, Source string }
			Cells [][]struct {
				KL float64 `json:"kl_to_final"`
			}
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		rows := make([]float64, len(doc.Cells))
		for r, row := range doc.Cells {
			for _, c := range row {
				rows[r] += c.KL / float64(len(row))
			}
		}
		return rows, doc.Lens.Kind + " " + doc.Lens.Source
	}
	logit, _ := meanKL("logit")
	tuned, lens := meanKL("tuned")
	if lens != "tuned built-in" {
		t.Errorf("lens %q, want the built-in tuned lens", lens)
	}
	if len(tuned) != 5 || len(logit) != 5 {
		t.Fatalf("rows: tuned %d, logit %d; want 5", len(tuned), len(logit))
	}
	for r := range 4 {
		t.Logf("row %d: mean KL logit %.4f, tuned %.4f nats", r, logit[r], tuned[r])
		if !(tuned[r] < 0.5*logit[r]) {
			t.Errorf("row %d: tuned lens's mean KL %.4f is not clearly below the logit lens's %.4f", r, tuned[r], logit[r])
		}
	}
	if tuned[4] != 0 || logit[4] != 0 {
		t.Errorf("output row: KL %g and %g, want 0", tuned[4], logit[4])
	}
}

// The explorer's and serve's loader: with --lens logit it loads the
// model's own tuned lens for l (the built-in one for demo), once for every
// caller; with no model yet it says so.
func TestTunedLoader(t *testing.T) {
	m, err := inference.Load(context.Background(), "demo", inference.LoadOptions{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var choice lensChoice
	choice.value = "logit"
	if err := choice.check(); err != nil {
		t.Fatal(err)
	}
	var model *inference.Model
	hubOpts := func(func(hub.Progress)) hub.Options { return hub.Options{Offline: true} }
	load := choice.loader(func() *inference.Model { return model }, hubOpts)
	if _, err := load(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "not loaded") {
		t.Errorf("no model yet: %v", err)
	}
	model = m
	a, err := load(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := load(context.Background(), nil)
	if err != nil || a != b || a.Source != "built-in" || len(a.Translators) != 4 {
		t.Errorf("second load: %v, same lens %v, source %q", err, a == b, a.Source)
	}
}
