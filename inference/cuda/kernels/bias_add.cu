// add_bias adds bias [N] to every row of x [M,N]. One thread per element;
// launcher: State.addBias (forward.go).
#include "common.cuh"

extern "C" __global__ void add_bias(float *x, const float *bias, int M, int N) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)M * N) return;
    x[i] += bias[i % N];
}
