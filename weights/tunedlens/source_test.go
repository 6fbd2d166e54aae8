package tunedlens

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/weights/hub"
)

func TestParseSource(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	cases := []struct {
		in   string
		want Source
		str  string
	}{
		{"", Source{}, "published"},
		{dir, Source{Dir: dir}, dir},
		{"./testdata/lenses/f32", Source{Dir: filepath.Join(wd, "testdata/lenses/f32")}, filepath.Join(wd, "testdata/lenses/f32")},
		{"testdata/lenses/f32", Source{Dir: filepath.Join(wd, "testdata/lenses/f32")}, filepath.Join(wd, "testdata/lenses/f32")},
		{"me/lenses/gpt2", Source{Repo: hub.Repo{Type: hub.Model, ID: "me/lenses"}, Folder: "gpt2"}, "me/lenses/gpt2"},
		{"me/lenses@v1/a/b", Source{Repo: hub.Repo{Type: hub.Model, ID: "me/lenses", Revision: "v1"}, Folder: "a/b"}, "me/lenses@v1/a/b"},
		{"me/lenses", Source{Repo: hub.Repo{Type: hub.Model, ID: "me/lenses"}}, "me/lenses"},
		{"spaces/AlignmentResearch/tuned-lens/lens/gpt2", Source{Repo: hub.Repo{Type: hub.Space, ID: "AlignmentResearch/tuned-lens"}, Folder: "lens/gpt2"}, "spaces/AlignmentResearch/tuned-lens/lens/gpt2"},
		{"datasets/org/x@main/l", Source{Repo: hub.Repo{Type: hub.Dataset, ID: "org/x", Revision: "main"}, Folder: "l"}, "datasets/org/x/l"},
	}
	for _, c := range cases {
		got, err := ParseSource(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got != c.want || got.String() != c.str {
			t.Errorf("%q: %+v (%s), want %+v (%s)", c.in, got, got, c.want, c.str)
		}
	}
	for _, bad := range []string{"gpt2", "org/", "org/name/../x", "spaces/x"} {
		if _, err := ParseSource(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if PublishedName("openai-community/gpt2-xl") != "gpt2-xl" || PublishedName("gpt2") != "gpt2" {
		t.Error("PublishedName")
	}
}

func TestHashWarning(t *testing.T) {
	l, err := Load("testdata/lenses/f32", tinyD, tinyLayers)
	if err != nil {
		t.Fatal(err)
	}
	w := make([]float32, 100*8)
	if msg := l.HashWarning(w, 100, 8); !strings.Contains(msg, "does not match") {
		t.Errorf("a different unembedding: %q", msg)
	}
	none := Identity("m", 8, 2, true)
	if msg := none.HashWarning(w, 100, 8); msg != "" {
		t.Errorf("no unembed_hash: %q", msg)
	}
	h := UnembedHash(w, 100, 8)
	none.Config.UnembedHash = &h
	if msg := none.HashWarning(w, 100, 8); msg != "" {
		t.Errorf("matching hash: %q", msg)
	}
}
