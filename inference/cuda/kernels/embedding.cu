// embed_forward: h[0] = wte[ids] + wpe[positions] (Radford et al. 2019).
// One thread per element of x [T,C]; launcher: Model.embed (forward.go).
#include "common.cuh"

extern "C" __global__ void embed_forward(float *x, const float *wte, const float *wpe,
                                         const int *ids, int T, int C, int p0) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * C) return;
    int t = i / C, c = i - t * C;
    x[i] = wte[(long)ids[t] * C + c] + wpe[(long)(p0 + t) * C + c];
}
