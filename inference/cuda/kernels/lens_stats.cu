// The lens statistics on the device: each lens row's V logits reduce to a
// few sums, three ranks and its top-k, so only those cross the bus. The
// maths is the CPU engine's rowStats (inference/stats.go):
//
//	m, d    = max z, z − m
//	S       = Σ exp(d);  lse = m + log S
//	H(P)    = log S − Σ exp(d)·d / S
//	KL(F‖P) = −H(F) − Σ f·d + log S      (f = P_final of the same position)
//	rank(i) = #{j : z_j > z_i}
//
// Ranks are counted for the final top-1, a pinned target and the
// position's next token (the prompt's token t+1), each optional.
//
// Rows are laid out [R][n]: row i is lens row i/n at position i%n, and the
// final row of position t is rf·n + t. lens_final reduces the final rows
// first (their max, first argmax, S and Σ exp(d)·d); lens_stats then
// reduces every row, recomputing f = exp(z_final − m_final)/S_final on the
// fly instead of storing P_final. Each thread sums its strided share in
// float; the block adds the threads' partials in double. Launcher:
// State.lensChunk (lens.go).
//
// A row that is not finite gets sums that are NaN (exp(NaN), Inf − Inf,
// 0·Inf), which is how the host finds it; every index a kernel reads stays
// inside the row, whatever the logits hold.
#include "common.cuh"
#include <limits.h>

// MAXK bounds the top-k (inference.MaxTopK).
#define MAXK 50

// FinalStats is one position's final-row summary (Go: finalStats).
struct FinalStats {
    double s, e; // Σ exp(d), Σ exp(d)·d
    float m;     // max
    int top1;    // first argmax
};

// RowStats is one row's sums (Go: rowStats).
struct RowStats {
    double s, e, fz;   // Σ exp(d), Σ exp(d)·d, Σ f·d
    float m;           // max
    float z1, zt, zn;  // this row's logits of the final top-1, the target and the next token
    int rank1, rankt, rankn;
    int pad;
};

extern "C" __global__ void lens_final(const float *logits, int V, int n, int rf, FinalStats *out) {
    __shared__ float fscratch[WARPS];
    __shared__ double dscratch[WARPS];
    __shared__ int iscratch[WARPS];
    int t = blockIdx.x;
    const float *z = logits + ((long)rf * n + t) * V;

    float m = -INFINITY;
    for (int i = threadIdx.x; i < V; i += BLOCK) m = fmaxf(m, z[i]);
    m = block_max(m, fscratch);

    int first = INT_MAX; // the smallest id holding the max: smaller id on ties
    for (int i = threadIdx.x; i < V; i += BLOCK)
        if (z[i] == m) { first = i; break; }
    first = block_min_int(first, iscratch);
    if (first == INT_MAX) first = 0; // no z[i] equals the max: all NaN (fmaxf skips NaN), as the CPU's argmax


    float s = 0, e = 0;
    for (int i = threadIdx.x; i < V; i += BLOCK) {
        float d = z[i] - m, w = expf(d);
        s += w;
        e += w * d;
    }
    double S = block_sum(s, dscratch);
    double E = block_sum(e, dscratch);
    if (threadIdx.x == 0) {
        FinalStats f;
        f.s = S;
        f.e = E;
        f.m = m;
        f.top1 = first;
        out[t] = f;
    }
}

// better orders top-k candidates: larger value first, the smaller id on ties.
__device__ __forceinline__ bool better(float v, int id, float w, int jd) {
    return v > w || (v == w && id < jd);
}

// block_best returns the best (value, id) pair of the block to every thread.
__device__ void block_best(float *v, int *id, float *fs, int *is) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int off = 16; off > 0; off >>= 1) {
        float w = __shfl_down_sync(0xffffffffu, *v, off);
        int jd = __shfl_down_sync(0xffffffffu, *id, off);
        if (better(w, jd, *v, *id)) { *v = w; *id = jd; }
    }
    __syncthreads();
    if (lane == 0) { fs[warp] = *v; is[warp] = *id; }
    __syncthreads();
    *v = lane < WARPS ? fs[lane] : -INFINITY;
    *id = lane < WARPS ? is[lane] : INT_MAX;
    for (int off = 16; off > 0; off >>= 1) {
        float w = __shfl_down_sync(0xffffffffu, *v, off);
        int jd = __shfl_down_sync(0xffffffffu, *id, off);
        if (better(w, jd, *v, *id)) { *v = w; *id = jd; }
    }
    *v = __shfl_sync(0xffffffffu, *v, 0);
    *id = __shfl_sync(0xffffffffu, *id, 0);
}

// lens_stats reduces every lens row: block i handles row i. target < 0
// means no target; next, when not NULL, holds each position's next token
// [n], −1 where there is none. Each thread keeps the top-k of its strided share in
// local memory (ids arrive in increasing order and only a strictly larger
// value displaces another, so equal values keep the smaller id first); k
// rounds of a block-wide best-of-heads merge them. Writes stats[i] and
// topIds/topVals [rows, k].
extern "C" __global__ void lens_stats(const float *logits, int V, int n, int rf,
                                      const FinalStats *fin, int target, const int *next, int k,
                                      RowStats *stats, int *topIds, float *topVals) {
    __shared__ float fscratch[WARPS];
    __shared__ double dscratch[WARPS];
    __shared__ int iscratch[WARPS];
    int row = blockIdx.x, t = row % n;
    const float *z = logits + (long)row * V;
    const float *zf = logits + ((long)rf * n + t) * V;
    FinalStats F = fin[t];
    bool kl = row / n != rf;
    float z1 = z[F.top1];
    float zt = target >= 0 ? z[target] : INFINITY;
    int nx = next != NULL ? next[t] : -1;
    float zn = nx >= 0 ? z[nx] : INFINITY;

    float m = -INFINITY;
    for (int i = threadIdx.x; i < V; i += BLOCK) m = fmaxf(m, z[i]);
    m = block_max(m, fscratch);

    float tv[MAXK];
    int ti[MAXK];
    int cnt = 0;
    float s = 0, e = 0, fz = 0;
    int r1 = 0, rt = 0, rn = 0;
    float invSf = (float)(1.0 / F.s);
    for (int i = threadIdx.x; i < V; i += BLOCK) {
        float v = z[i], d = v - m, w = expf(d);
        s += w;
        e += w * d;
        if (kl) fz += expf(zf[i] - F.m) * invSf * d;
        r1 += v > z1;
        rt += v > zt;
        rn += v > zn;
        if (cnt < k || v > tv[k - 1]) {
            int j = cnt < k ? cnt++ : k - 1;
            while (j > 0 && tv[j - 1] < v) {
                tv[j] = tv[j - 1];
                ti[j] = ti[j - 1];
                j--;
            }
            tv[j] = v;
            ti[j] = i;
        }
    }
    double S = block_sum(s, dscratch);
    double E = block_sum(e, dscratch);
    double FZ = block_sum(fz, dscratch);
    int R1 = block_sum_int(r1, iscratch);
    int RT = block_sum_int(rt, iscratch);
    int RN = block_sum_int(rn, iscratch);

    int h = 0;
    for (int r = 0; r < k; r++) {
        float v = h < cnt ? tv[h] : -INFINITY;
        int id = h < cnt ? ti[h] : INT_MAX;
        block_best(&v, &id, fscratch, iscratch);
        if (h < cnt && ti[h] == id) h++;
        if (threadIdx.x == 0) {
            topIds[(long)row * k + r] = id;
            topVals[(long)row * k + r] = v;
        }
    }
    if (threadIdx.x == 0) {
        RowStats o;
        o.s = S;
        o.e = E;
        o.fz = FZ;
        o.m = m;
        o.z1 = z1;
        o.zt = zt;
        o.zn = zn;
        o.rank1 = R1;
        o.rankt = RT;
        o.rankn = RN;
        o.pad = 0;
        stats[row] = o;
    }
}
