package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/builtin"
	"github.com/logitlens/logitlens/weights/hub"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// lensChoice is --lens: which lens decodes the rows. Shared by lens, the
// explorer and serve.
type lensChoice struct {
	value string           // as given
	tuned bool             // tuned or tuned:SOURCE
	src   tunedlens.Source // where the tuned lens comes from
}

func (f *lensChoice) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.value, "lens", "logit", `which lens decodes the rows: logit, tuned (the model's published tuned lens; the demo model's built-in one), tuned:DIR or tuned:REPO[@REV]/FOLDER (spaces/ORG/NAME/… for a Space)`)
	cmd.RegisterFlagCompletionFunc("lens", completeFixed([]string{"logit", "tuned", "tuned:"}))
}

// check parses --lens, before anything loads.
func (f *lensChoice) check() error {
	kind, src, hasSrc := strings.Cut(f.value, ":")
	switch {
	case kind == "logit" && !hasSrc:
		return nil
	case kind == "tuned":
		s, err := tunedlens.ParseSource(src)
		if err != nil {
			return flagError("--lens", err)
		}
		if hasSrc && s.Published() {
			return usagef("--lens tuned: needs a folder or REPO/FOLDER after the colon (or use --lens tuned)")
		}
		f.tuned, f.src = true, s
		return nil
	}
	return usagef("--lens %q: want logit, tuned, tuned:DIR or tuned:REPO[@REV]/FOLDER", display.Safe(f.value))
}

// load returns the tuned lens for m (nil for the logit lens): the demo
// model's built-in lens, else resolved through the hub cache with the
// model's download options, checked against the model's shape; the
// package's unembed_hash warning goes to warn.
func (f *lensChoice) load(ctx context.Context, m *inference.Model, opt hub.Options, warn func(string)) (*tunedlens.Lens, error) {
	if !f.tuned {
		return nil, nil
	}
	cfg := m.Config()
	id := m.Info().ID
	var (
		l      *tunedlens.Lens
		source string
		err    error
	)
	switch {
	case f.src.Published() && id == builtin.Name:
		l, err = tunedlens.LoadFS(builtin.LensFiles(), builtin.LensSource, cfg.NEmbd, cfg.NLayer)
		source = builtin.LensSource
	default:
		var dir string
		if dir, err = tunedlens.Resolve(ctx, f.src, hubID(m), opt); err != nil {
			return nil, err
		}
		l, err = tunedlens.Load(dir, cfg.NEmbd, cfg.NLayer)
		source = f.src.String()
	}
	if err != nil {
		return nil, err
	}
	l.Source = source
	wu := m.Checkpoint().LMHead()
	if w := l.HashWarning(wu.Data, wu.Shape[0], wu.Shape[1]); w != "" {
		l.Note = fmt.Sprintf("tuned lens %s: %s", display.Safe(source), w)
		if warn != nil {
			warn(l.Note)
		}
	}
	return l, nil
}

// loader is the explorer's Options.LoadTuned: the lens --lens names, or,
// with --lens logit, the model's published (the demo model's built-in) one
// for `l` to switch to. It loads once, for every caller (serve's sessions
// share it); a failure is not kept, so a later call tries again. model
// returns the loaded model; hubOpts the hub options with a progress
// reporter.
func (f *lensChoice) loader(model func() *inference.Model, hubOpts func(func(hub.Progress)) hub.Options) func(context.Context, func(inference.Progress)) (*tunedlens.Lens, error) {
	var mu sync.Mutex
	var lens *tunedlens.Lens
	return func(ctx context.Context, progress func(inference.Progress)) (*tunedlens.Lens, error) {
		mu.Lock()
		defer mu.Unlock()
		if lens != nil {
			return lens, nil
		}
		m := model()
		if m == nil {
			return nil, errors.New("the model is not loaded")
		}
		choice := *f
		choice.tuned = true // --lens logit: the published lens, for l
		l, err := choice.load(ctx, m, hubOpts(progress), nil)
		if err != nil {
			return nil, err
		}
		lens = l
		return l, nil
	}
}

// hubID is the hub id a model was loaded as, "" for a folder.
func hubID(m *inference.Model) string {
	id := m.Info().ID
	if strings.HasPrefix(id, "/") || strings.HasPrefix(id, ".") || id == builtin.Name {
		return ""
	}
	id, _, _ = strings.Cut(id, "@")
	return id
}
