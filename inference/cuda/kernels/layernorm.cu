// layernorm_forward normalises each row of x [M,C] (Ba et al. 2016): mean and
// biased variance over the row, then scale g and shift b. One block per row;
// the statistics are summed in double, as the CPU engine's layerNorm does, so
// long rows lose nothing. out may equal x (ln_f runs in place): each element
// is read and written by the same thread, after both reductions.
// Launcher: State.layerNorm (forward.go).
#include "common.cuh"

extern "C" __global__ void layernorm_forward(float *out, const float *x, const float *g,
                                             const float *b, int M, int C, float eps) {
    __shared__ double scratch[WARPS];
    int row = blockIdx.x;
    if (row >= M) return;
    const float *xr = x + (long)row * C;
    float *o = out + (long)row * C;

    double sum = 0;
    for (int j = threadIdx.x; j < C; j += BLOCK) sum += (double)xr[j];
    double mean = block_sum(sum, scratch) / C;

    double sq = 0;
    for (int j = threadIdx.x; j < C; j += BLOCK) {
        double d = (double)xr[j] - mean;
        sq += d * d;
    }
    double rstd = 1.0 / sqrt(block_sum(sq, scratch) / C + (double)eps);

    for (int j = threadIdx.x; j < C; j += BLOCK) {
        o[j] = (float)(((double)xr[j] - mean) * rstd) * g[j] + b[j];
    }
}
