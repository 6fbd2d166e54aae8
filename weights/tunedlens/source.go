package tunedlens

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights/hub"
)

// PublishedRepo is where the tuned-lens package publishes its lenses: the
// hub Space AlignmentResearch/tuned-lens, one folder lens/<model>/ per
// model (load_artifacts.load_lens_artifacts).
var PublishedRepo = hub.Repo{Type: hub.Space, ID: "AlignmentResearch/tuned-lens"}

// PublishedGPT2 are the GPT-2 models the Space holds a lens for, named in
// the message for a model without one (the Space also has lenses for
// architectures logitlens does not run).
var PublishedGPT2 = []string{"gpt2", "gpt2-large", "gpt2-xl"}

// ErrNoPublished is wrapped by the error for a model the Space has no lens
// for.
var ErrNoPublished = errors.New("no published tuned lens")

// Source says where a tuned lens comes from: the --lens value after
// "tuned:", or "" for the model's published lens.
type Source struct {
	Dir    string   // a local folder holding config.json and params.pt
	Repo   hub.Repo // else a hub repository ...
	Folder string   // ... and the folder in it ("" for its root)
}

// Published says whether the source is the model's published lens.
func (s Source) Published() bool { return s.Dir == "" && s.Repo.ID == "" }

// String names the source for status lines and exports: "published", a
// folder, or "REPO[@REV]/FOLDER" (Spaces and datasets prefixed as in hub
// URLs).
func (s Source) String() string {
	switch {
	case s.Dir != "":
		return s.Dir
	case s.Repo.ID == "":
		return "published"
	}
	return strings.TrimSuffix(s.Repo.String()+"/"+s.Folder, "/")
}

// ParseSource reads what follows "tuned:" in --lens:
//
//   - "" is the model's published lens (PublishedRepo);
//   - an existing folder, or a path starting with "/", "./", "../" or "~",
//     is that folder;
//   - otherwise REPO[@REV][/FOLDER], REPO being ORG/NAME of a model
//     repository, or spaces/ORG/NAME or datasets/ORG/NAME (the hub's URL
//     prefixes) for a Space or a dataset: e.g.
//     spaces/AlignmentResearch/tuned-lens/lens/gpt2 or me/lenses@v1/gpt2.
func ParseSource(s string) (Source, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Source{}, nil
	}
	pathLike := s == "." || s == ".." || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") ||
		strings.HasPrefix(s, "../") || s == "~" || strings.HasPrefix(s, "~/")
	if st, err := os.Stat(expandHome(s)); err == nil && st.IsDir() {
		pathLike = true
	}
	if pathLike {
		dir, err := filepath.Abs(expandHome(s))
		if err != nil {
			return Source{}, fmt.Errorf("tunedlens: %s: %w", display.Safe(s), err)
		}
		return Source{Dir: dir}, nil
	}
	kind := hub.Model
	rest := s
	if r, ok := strings.CutPrefix(s, "spaces/"); ok {
		kind, rest = hub.Space, r
	} else if r, ok := strings.CutPrefix(s, "datasets/"); ok {
		kind, rest = hub.Dataset, r
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return Source{}, fmt.Errorf("tunedlens: %q is neither a folder nor ORG/NAME[@REV][/FOLDER] of a hub repository", display.Safe(s))
	}
	name, rev, _ := strings.Cut(parts[1], "@")
	src := Source{Repo: hub.Repo{Type: kind, ID: parts[0] + "/" + name, Revision: rev}}
	if len(parts) == 3 {
		src.Folder = strings.Trim(parts[2], "/")
		if src.Folder != path.Clean(src.Folder) || strings.HasPrefix(src.Folder, "..") {
			return Source{}, fmt.Errorf("tunedlens: %q: bad folder in the repository", display.Safe(s))
		}
	}
	return src, nil
}

// PublishedName is the Space folder of a model's published lens: the hub
// id without the openai-community/ organisation, which the Space's names
// predate ("openai-community/gpt2" -> "gpt2").
func PublishedName(modelID string) string {
	return strings.TrimPrefix(modelID, "openai-community/")
}

// Resolve returns the folder holding the lens's config.json and params.pt,
// downloading them into the Hugging Face cache when they come from the hub
// (with the options' progress and offline mode). modelID is the loaded
// model's hub id, which names its published lens; a model loaded from a
// folder has none.
func Resolve(ctx context.Context, src Source, modelID string, opt hub.Options) (string, error) {
	if src.Dir != "" {
		return src.Dir, nil
	}
	repo, folder := src.Repo, src.Folder
	if src.Published() {
		if modelID == "" || strings.HasPrefix(modelID, "/") || strings.HasPrefix(modelID, ".") {
			return "", fmt.Errorf("tunedlens: %w for a model loaded from a folder: give --lens tuned:DIR, or train one with `logitlens tune`", ErrNoPublished)
		}
		repo, folder = PublishedRepo, "lens/"+PublishedName(modelID)
	}
	files := []string{"config.json", "params.pt"}
	for i, f := range files {
		files[i] = strings.TrimPrefix(folder+"/"+f, "/")
	}
	snap, err := hub.Files(ctx, repo, files, opt)
	if err != nil {
		if src.Published() && errors.Is(err, hub.ErrEntryNotFound) {
			return "", fmt.Errorf("tunedlens: %w for %s in %s: its GPT-2 lenses are for %s; train one with `logitlens tune`, or give --lens tuned:DIR",
				ErrNoPublished, display.Safe(modelID), PublishedRepo, strings.Join(PublishedGPT2, ", "))
		}
		return "", fmt.Errorf("tunedlens: %w", err)
	}
	return filepath.Join(snap.Dir, filepath.FromSlash(folder)), nil
}

// expandHome expands a leading "~" or "~/".
func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// HashWarning returns a warning when the lens records the unembed_hash of
// the model it was trained for and the given unembedding W_U ([rows, cols])
// hashes differently, as the package warns; "" otherwise.
func (l *Lens) HashWarning(wu []float32, rows, cols int) string {
	if l.Config.UnembedHash == nil || *l.Config.UnembedHash == "" {
		return ""
	}
	if UnembedHash(wu, rows, cols) == *l.Config.UnembedHash {
		return ""
	}
	return "the unembedding matrix hash does not match the lens's unembed_hash: this lens may have been trained with a different unembedding"
}
