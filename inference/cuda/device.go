package cuda

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

// Options say which libraries and device Open uses.
type Options struct {
	DriverPath string // libcuda.so.1 to load; "" searches (LOGITLENS_CUDA_DRIVER overrides)
	CUBLASPath string // cuBLAS library or directory; "" searches (LOGITLENS_CUBLAS overrides)
	Ordinal    int    // which GPU, 0 for the first
	TF32       bool   // let cuBLAS use TF32 tensor cores (faster, ~1e-3 relative error); off by default
}

// OptionsFromEnv returns Options with the library paths from
// LOGITLENS_CUDA_DRIVER and LOGITLENS_CUBLAS.
func OptionsFromEnv() Options {
	return Options{DriverPath: os.Getenv(EnvDriver), CUBLASPath: os.Getenv(EnvCUBLAS)}
}

// Device is an initialised GPU with cuBLAS and our kernels loaded. Its
// methods may be called from any goroutine; calls are serialised, each on a
// locked OS thread with the device's context current.
type Device struct {
	Name          string // e.g. "NVIDIA H100 80GB HBM3"
	Major, Minor  int    // compute capability
	TotalMem      int64  // bytes
	DriverVersion int    // e.g. 13000 for CUDA 13.0
	DriverPath    string // the libcuda.so.1 that was loaded
	CUBLASPath    string // the cuBLAS that was loaded
	CUBLASVersion int    // e.g. 130000
	TF32          bool   // cuBLAS may use TF32

	drv     driverAPI
	blas    blasAPI
	current func() error // make the context current on this thread
	release func() error // give the context back

	mu      sync.Mutex
	kernels map[string]Function
	closed  bool
}

// Open loads the CUDA driver and cuBLAS, initialises the device, loads the
// kernels and sets cuBLAS's math mode. Unset paths come from the
// environment (OptionsFromEnv). Every error that means "no usable CUDA
// here" wraps ErrUnavailable and says exactly why: which libraries were
// tried, cuInit's CUresult and its name, no device, or a platform without
// the loader.
func Open(opt Options) (*Device, error) {
	env := OptionsFromEnv()
	if opt.DriverPath == "" {
		opt.DriverPath = env.DriverPath
	}
	if opt.CUBLASPath == "" {
		opt.CUBLASPath = env.CUBLASPath
	}
	runtime.LockOSThread() // the context is made current on this thread
	defer runtime.UnlockOSThread()
	d, err := platformOpen(opt)
	if err != nil {
		return nil, unavailable{err}
	}
	if err := d.setup(opt.TF32); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// newDevice wraps already-initialised driver and cuBLAS implementations
// (the tests' emulated device) and loads the kernels.
func newDevice(drv driverAPI, blas blasAPI, tf32 bool) (*Device, error) {
	d := &Device{Name: "emulated", drv: drv, blas: blas}
	if err := d.setup(tf32); err != nil {
		return nil, err
	}
	return d, nil
}

// setup loads every kernel module and sets the math mode.
func (d *Device) setup(tf32 bool) error {
	d.TF32 = tf32
	return d.do(func() error {
		if err := d.blas.SetTF32(tf32); err != nil {
			return err
		}
		k, err := loadKernels(d.drv)
		if err != nil {
			return err
		}
		d.kernels = k
		return nil
	})
}

// do runs f with the device locked, on a locked OS thread whose current
// context is the device's.
func (d *Device) do(f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("cuda: device is closed")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if d.current != nil {
		if err := d.current(); err != nil {
			return err
		}
	}
	return f()
}

// Time runs f, which queues work on the device, and returns the time the
// device took between events recorded before and after it, waiting for the
// second: the GPU's own clock, not the host's view of an asynchronous queue.
func (d *Device) Time(f func() error) (time.Duration, error) {
	ms, err := timeEvents(d, f)
	return time.Duration(ms * float64(time.Millisecond)), err
}

// timeEvents runs f between two events recorded on stream 0 and returns
// the milliseconds between them. The events are destroyed whatever fails.
func timeEvents(d *Device, f func() error) (float64, error) {
	var start, end Event
	err := d.do(func() error {
		var err error
		if start, err = d.drv.NewEvent(); err != nil {
			return err
		}
		if end, err = d.drv.NewEvent(); err != nil {
			return err
		}
		return d.drv.Record(start)
	})
	defer d.do(func() error { //nolint:errcheck // a failure to destroy an event loses nothing
		for _, e := range []Event{start, end} {
			if e != 0 {
				d.drv.DestroyEvent(e)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	var ms float32
	err = d.do(func() error {
		if err := d.drv.Record(end); err != nil {
			return err
		}
		var err error
		ms, err = d.drv.Elapsed(start, end)
		return err
	})
	return float64(ms), err
}

// String describes the device for status lines, e.g.
// "NVIDIA H100 80GB HBM3 (sm_90, 80 GB, driver 13.0, cuBLAS 13.0.0)".
func (d *Device) String() string {
	s := fmt.Sprintf("%s (sm_%d%d, %.0f GB, driver %d.%d", d.Name, d.Major, d.Minor,
		float64(d.TotalMem)/1e9, d.DriverVersion/1000, d.DriverVersion%1000/10)
	if v := d.CUBLASVersion; v > 0 {
		s += fmt.Sprintf(", cuBLAS %d.%d.%d", v/10000, v%10000/100, v%100)
	}
	if d.TF32 {
		s += ", TF32"
	}
	return s + ")"
}

// Close destroys the cuBLAS handle and releases the context, on a locked
// OS thread with the context current, as every other call: cublasDestroy
// frees the handle's workspace in the current context, and a thread
// without it would leak that memory or fail. Models and states must be
// closed first. Closing twice does nothing.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if d.current != nil {
		if err := d.current(); err != nil {
			d.closed = true // the context is unusable: nothing more can be freed
			return err
		}
	}
	return d.close()
}

// close destroys the handle and releases the context; the device lock is
// held and the context current on this locked thread.
func (d *Device) close() error {
	d.closed = true
	err := d.blas.Close()
	if d.release != nil {
		if e := d.release(); err == nil {
			err = e
		}
	}
	return err
}
