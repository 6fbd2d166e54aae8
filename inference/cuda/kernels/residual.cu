// residual_add sets x += y, elementwise (the residual connections). One
// thread per element; launcher: State.add (forward.go).
#include "common.cuh"

extern "C" __global__ void residual_add(float *x, const float *y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    x[i] += y[i];
}
