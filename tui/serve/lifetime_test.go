package serve

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/tui"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// TestConnectionsFreeDeviceMemory: 50 SSH connections to a server whose
// model runs on the (emulated) GPU each compute a lens and end, half by
// quitting and half by dropping the connection; every session's device
// memory is freed when its connection ends, so only the weights stay
// allocated, and closing the model frees those.
func TestConnectionsFreeDeviceMemory(t *testing.T) {
	const n, batch = 50, 5
	dev, emu, err := cuda.NewEmulatedDevice()
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	m, err := inference.OpenDir(testmodel.Dir(t, "tiny-f32"), "tiny-f32", inference.CUDABackend(dev))
	if err != nil {
		t.Fatal(err)
	}
	weights := emu.Allocated()
	key := newSigner(t)
	ts := startServerOn(t, Options{AuthorizedKeys: authorizedKeys(t, key), Session: tui.Options{Prompt: firstPrompt}, Burst: n, RatePerSec: 100}, m)
	want := expect(t, tinyModel(t), firstPrompt) // the CPU's lens: the panel must show the same
	for b := 0; b < n; b += batch {
		var wg sync.WaitGroup
		for i := b; i < b+batch; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := ts.dial(fmt.Sprintf("user%d", i), gossh.PublicKeys(key))
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				x := openScreen(t, c, 100, 30)
				x.waitFor(t, fmt.Sprintf("connection %d's lens", i), 90*time.Second, want.in) // the emulated GPU, slow under -race on a loaded machine
				if i%2 == 0 {
					x.send(t, "\x03")
					if err := x.waitExit(t, 10*time.Second); err != nil {
						t.Errorf("connection %d: %v", i, err)
					}
				}
				// odd connections just go: the deferred Close drops them
			}()
		}
		wg.Wait()
	}
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(ts.log.String(), "session end") < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sessions ended", strings.Count(ts.log.String(), "session end"), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// "session end" is logged before the handler's deferred lensSession.Close,
	// which also waits for a lens in flight: give the last ones a moment.
	for emu.Allocated() != weights && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := emu.Allocated(); got != weights {
		t.Errorf("after %d connections ended, %d device bytes allocated; the weights take %d", n, got, weights)
	}
	ts.stop()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := emu.Allocated(); got != 0 {
		t.Errorf("%d device bytes still allocated after the model closed", got)
	}
}
