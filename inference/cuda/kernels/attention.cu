// Causal multi-head self-attention (Vaswani et al. 2017) against the KV
// cache. Launchers: State.attention and State.kvAppend (forward.go).
#include "common.cuh"

// kv_append splits qkv [T,3C] into q [T,C] and the cache rows p0..p0+T-1 of
// k and v [P,C]. One thread per element of q.
extern "C" __global__ void kv_append(const float *qkv, float *q, float *kc, float *vc,
                                     int T, int C, int p0) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * C) return;
    int t = i / C, c = i - t * C;
    const float *row = qkv + (long)t * 3 * C;
    long dst = (long)(p0 + t) * C + c;
    q[i] = row[c];
    kc[dst] = row[C + c];
    vc[dst] = row[2 * C + c];
}

// attention_forward: block (t, h) computes head h of query t at position
// p0+t: out[t] = softmax(q[t]·k[j]·scale for j ≤ p0+t) · v. Dynamic shared
// memory holds D floats of the query, p0+t+1 scores and BLOCK partial
// outputs. The BLOCK threads are G = BLOCK/D groups of D: group g sums keys
// j ≡ g (mod G), then thread d adds the G partials of column d in order.
// Requires D ≤ BLOCK (checked by the launcher).
extern "C" __global__ void attention_forward(float *out, const float *q, const float *kc,
                                             const float *vc, int T, int p0, int C, int H,
                                             float scale) {
    extern __shared__ float sh[];
    __shared__ float fscratch[WARPS];
    __shared__ double dscratch[WARPS];
    int t = blockIdx.x, h = blockIdx.y;
    int D = C / H, n = p0 + t + 1;
    float *qs = sh, *scores = sh + D, *part = sh + D + n;
    const float *qt = q + (long)t * C + h * D;
    for (int d = threadIdx.x; d < D; d += BLOCK) qs[d] = qt[d];
    __syncthreads();

    float m = -INFINITY;
    for (int j = threadIdx.x; j < n; j += BLOCK) {
        const float *kj = kc + (long)j * C + h * D;
        float s = 0;
        for (int d = 0; d < D; d++) s += qs[d] * kj[d];
        s *= scale;
        scores[j] = s;
        m = fmaxf(m, s);
    }
    m = block_max(m, fscratch);

    double sum = 0;
    for (int j = threadIdx.x; j < n; j += BLOCK) {
        float e = expf(scores[j] - m);
        scores[j] = e;
        sum += e;
    }
    float inv = (float)(1.0 / block_sum(sum, dscratch));
    __syncthreads(); // every score is final

    int G = BLOCK / D, g = threadIdx.x / D, d = threadIdx.x - g * D;
    if (g < G) {
        float acc = 0;
        for (int j = g; j < n; j += G) acc += scores[j] * vc[(long)j * C + h * D + d];
        part[g * D + d] = acc;
    }
    __syncthreads();
    if (threadIdx.x < D) {
        float acc = 0;
        for (int k = 0; k < G; k++) acc += part[k * D + threadIdx.x];
        out[(long)t * C + h * D + threadIdx.x] = acc * inv;
    }
}
