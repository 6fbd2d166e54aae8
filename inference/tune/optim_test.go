package tune

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// TestOptimizersMatchTorch replays testdata/optim.json (torch.optim with the
// package's settings, clipping and schedule) through our optimisers.
func TestOptimizersMatchTorch(t *testing.T) {
	data, err := os.ReadFile("testdata/optim.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Cases []struct {
			Optimizer     string
			Steps, Warmup int
			Params        [][]float32
			Grads         [][][]float32
			After         [][][]float32
		}
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Cases) != 2 {
		t.Fatalf("%d cases", len(golden.Cases))
	}
	for _, c := range golden.Cases {
		if w := warmupSteps(c.Optimizer, 10); (c.Optimizer == SGD) != (w == 0) {
			t.Errorf("%s: default warm-up of 10 steps is %d", c.Optimizer, w)
		}
		params := c.Params
		opt, err := newOptimizer(c.Optimizer, params)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for k := range c.Steps {
			grads := c.Grads[k]
			clipGradNorm(grads, maxGradNorm)
			opt.step(params, grads, baseLR(c.Optimizer, 1)*lrFactor(k, c.Steps, c.Warmup), k+1)
			for i := range params {
				for j := range params[i] {
					worst = max(worst, math.Abs(float64(params[i][j]-c.After[k][i][j])))
				}
			}
		}
		if worst > 2e-6 {
			t.Errorf("%s: parameters differ from torch's by up to %g", c.Optimizer, worst)
		}
		t.Logf("%s: max |ours − torch| over %d steps: %g", c.Optimizer, c.Steps, worst)
	}
	if _, err := newOptimizer("rmsprop", nil); err == nil {
		t.Error("unknown optimizer accepted")
	}
}
