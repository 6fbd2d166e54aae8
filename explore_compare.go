package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/tui"
	"github.com/logitlens/logitlens/weights/hub"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// fixedRunB is the explorer's backend when --compare-model or
// --compare-lens fixes run B to A's prompt through another checkpoint or
// lens: run A's session, whose Compare pairs it with B's session (of the
// other model, or a second one of A's model) and makes B's request differ.
type fixedRunB struct {
	*inference.Session                    // run A
	b                  *inference.Session // run B
	pair               *inference.Pair
	lensSet            bool                                           // --compare-lens: B reads through lens
	lens               *tunedlens.Lens                                // B's lens with --compare-lens (nil: logit)
	tunedB             func(context.Context) (*tunedlens.Lens, error) // B's model's tuned lens, for a tuned A with --compare-model
	err                error                                          // why run B could not be set up: every comparison says so
}

// Compare compares run A (ra) with run B, which the explorer asks for as
// A's request: B gets its lens (--compare-lens) or, with --compare-model,
// reads through the same kind of lens as A.
func (f *fixedRunB) Compare(ctx context.Context, ra, rb inference.Request, onColumn func(inference.CompareColumn)) (*inference.Comparison, error) {
	switch {
	case f.err != nil:
		return nil, f.err
	case f.lensSet:
		rb.Tuned = f.lens
		if rb.Tuned != nil && rb.Sublayers {
			return nil, errors.New("--compare-lens: the tuned lens has translators only for block outputs: hide the sublayer rows (s)")
		}
	case ra.Tuned != nil:
		var err error
		if rb.Tuned, err = f.tunedB(ctx); err != nil {
			return nil, fmt.Errorf("--compare-model: its tuned lens: %w", err)
		}
	}
	return f.pair.Compare(ctx, ra, rb, onColumn)
}

// compareWith names run B for the explorer's B line: "" unless
// --compare-model or --compare-lens fixes it.
func (o *exploreOptions) compareWith() string {
	switch {
	case o.compare.model != "":
		return "the model " + display.Safe(o.compare.model)
	case o.compare.lensSet && !o.compare.lens.tuned:
		return "the logit lens"
	case o.compare.lensSet:
		if _, src, ok := strings.Cut(o.compare.lens.value, ":"); ok {
			return "the tuned lens " + display.Safe(src)
		}
		return "the model's published tuned lens"
	}
	return ""
}

// backendB is the explorer's backend for run A's session sess of model m:
// sess itself, or with --compare-model or --compare-lens a fixedRunB, whose
// model B (loaded here with progress) loadedB closes when the explorer ends.
// A run B that cannot be set up (no such model, another shape, no such
// lens) leaves run A working: compare mode shows why.
func (o *exploreOptions) backendB(ctx context.Context, m *inference.Model, sess *inference.Session, loadedB *loadedModel, progress func(inference.Progress)) (tui.Backend, error) {
	if o.compareWith() == "" {
		return sess, nil
	}
	f := &fixedRunB{Session: sess, lensSet: o.compare.lensSet}
	mb, err := o.setUpB(ctx, f, m, loadedB, progress)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, errExplorerEnded) {
			return nil, err
		}
		f.err = err
		return f, nil
	}
	f.b = mb.NewSession()
	if f.pair, err = inference.NewPair(sess, f.b); err != nil {
		f.err = fmt.Errorf("--compare-model: %w", err)
	}
	return f, nil
}

// errExplorerEnded is run B's model finishing its load after the explorer.
var errExplorerEnded = errors.New("the explorer ended while run B's model loaded")

// setUpB loads what run B differs in, into f: B's model (returned; m
// itself with --compare-lens) or B's lens.
func (o *exploreOptions) setUpB(ctx context.Context, f *fixedRunB, m *inference.Model, loadedB *loadedModel, progress func(inference.Progress)) (*inference.Model, error) {
	hubOpts := func(p func(hub.Progress)) hub.Options { return o.model.loadOptions(p).Hub }
	if o.compare.lensSet {
		var err error
		if f.lens, err = o.compare.lens.load(ctx, m, hubOpts(progress), nil); err != nil {
			return nil, fmt.Errorf("--compare-lens: %w", renamedFlag{err, "--lens", "--compare-lens"})
		}
		return m, nil
	}
	mf := modelFlags{spec: o.compare.model, device: o.model.device, named: true}
	mb, err := inference.Load(ctx, mf.spec, mf.loadOptions(progress))
	if err != nil {
		return nil, fmt.Errorf("--compare-model: %w", err)
	}
	if !loadedB.keep(mb) {
		return nil, errExplorerEnded
	}
	load := o.explorer.tuned.loader(func() *inference.Model { return mb }, hubOpts)
	f.tunedB = func(ctx context.Context) (*tunedlens.Lens, error) { return load(ctx, nil) }
	return mb, nil
}
