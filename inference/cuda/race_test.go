//go:build race

package cuda_test

// raceEnabled: the race detector makes the emulated kernels ~10× slower.
const raceEnabled = true
