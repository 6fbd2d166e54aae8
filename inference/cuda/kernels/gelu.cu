// gelu_forward applies GPT-2's tanh approximation of GELU (Hendrycks &
// Gimpel 2016) in place: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
// One thread per element; launcher: State.gelu (forward.go).
#include "common.cuh"

extern "C" __global__ void gelu_forward(float *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float s = 0.7978845608028654f; // √(2/π)
    float v = x[i];
    x[i] = 0.5f * v * (1.0f + tanhf(s * (v + 0.044715f * v * v * v)));
}
