package cuda

import (
	"errors"
	"slices"
)

// profiler brackets every call with CUDA events, so kernel times are the
// GPU's own, not the host's view of an asynchronous queue.
type profiler struct {
	drv     driverAPI
	pool    []Event // events free for reuse
	pending []span
	totals  map[string]*KernelTime
}

type span struct {
	name       string
	start, end Event
}

// KernelTime sums one kernel's (or GEMM's) runs, in milliseconds measured
// with CUDA events.
type KernelTime struct {
	Name  string
	Calls int
	Ms    float64
}

func (p *profiler) event() (Event, error) {
	if n := len(p.pool); n > 0 {
		e := p.pool[n-1]
		p.pool = p.pool[:n-1]
		return e, nil
	}
	return p.drv.NewEvent()
}

// around records events before and after f. Events of a failed call go
// back to the pool.
func (p *profiler) around(name string, f func() error) error {
	a, err := p.event()
	if err != nil {
		return err
	}
	b, err := p.event()
	if err != nil {
		p.pool = append(p.pool, a)
		return err
	}
	err = p.drv.Record(a)
	if err == nil {
		err = f()
	}
	if err != nil {
		p.pool = append(p.pool, a, b)
		return err
	}
	p.pending = append(p.pending, span{name, a, b})
	return p.drv.Record(b)
}

// collect waits for the recorded spans and adds them to the totals.
func (p *profiler) collect() error {
	if p.totals == nil {
		p.totals = map[string]*KernelTime{}
	}
	for _, s := range p.pending {
		ms, err := p.drv.Elapsed(s.start, s.end)
		if err != nil {
			return err
		}
		t := p.totals[s.name]
		if t == nil {
			t = &KernelTime{Name: s.name}
			p.totals[s.name] = t
		}
		t.Calls++
		t.Ms += float64(ms)
		p.pool = append(p.pool, s.start, s.end)
	}
	p.pending = p.pending[:0]
	return nil
}

// close destroys every event the profiler created, once: the pool and
// the pending spans are emptied.
func (p *profiler) close() error {
	var errs []error
	for _, s := range p.pending {
		p.pool = append(p.pool, s.start, s.end)
	}
	for _, e := range p.pool {
		errs = append(errs, p.drv.DestroyEvent(e))
	}
	p.pool, p.pending = nil, nil
	return errors.Join(errs...)
}

// KernelTimes returns the time each kernel and GEMM took since the last
// call, largest first. It needs StateOptions.Profile.
func (s *State) KernelTimes() ([]KernelTime, error) {
	if s.prof == nil {
		return nil, errors.New("cuda: kernel times need StateOptions.Profile")
	}
	var out []KernelTime
	err := s.m.dev.do(func() error {
		if err := s.prof.collect(); err != nil {
			return err
		}
		for _, t := range s.prof.totals {
			out = append(out, *t)
		}
		s.prof.totals = nil
		return nil
	})
	slices.SortFunc(out, func(a, b KernelTime) int {
		if a.Ms != b.Ms {
			if a.Ms > b.Ms {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return out, err
}

// Time runs f (e.g. a Forward and a Lens) between two CUDA events and
// returns the milliseconds the device took, end to end.
func (s *State) Time(f func() error) (float64, error) { return timeEvents(s.m.dev, f) }
