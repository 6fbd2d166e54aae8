// Shared helpers for the logitlens kernels. Every kernel is extern "C" so
// its PTX .entry keeps the plain name the Go launcher looks up.
//
// Reductions are trees with a fixed order (warp shuffles, then the warps'
// partials in lane order), so a kernel's result does not depend on timing;
// the Go emulation in the package's tests follows the same tree.
#pragma once

#include <limits.h>

// BLOCK is the block size of every row kernel (one block per row); the Go
// side launches with the same number (kernels.go: blockThreads).
#define BLOCK 256
#define WARPS (BLOCK / 32)

__device__ __forceinline__ double warp_sum(double v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, off));
    return v;
}

__device__ __forceinline__ int warp_sum_int(int v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

// block_sum returns the sum of v over the block to every thread. scratch
// holds WARPS doubles.
__device__ double block_sum(double v, double *scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < WARPS ? scratch[lane] : 0.0;
    v = warp_sum(v); // every warp reduces the partials, so all threads agree
    return __shfl_sync(0xffffffffu, v, 0);
}

// block_max returns the largest v over the block to every thread.
__device__ float block_max(float v, float *scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < WARPS ? scratch[lane] : -INFINITY;
    v = warp_max(v);
    return __shfl_sync(0xffffffffu, v, 0);
}

// block_sum_int returns the sum of v over the block to every thread.
__device__ int block_sum_int(int v, int *scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum_int(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < WARPS ? scratch[lane] : 0;
    v = warp_sum_int(v);
    return __shfl_sync(0xffffffffu, v, 0);
}

__device__ __forceinline__ int warp_min_int(int v) {
    for (int off = 16; off > 0; off >>= 1) v = min(v, __shfl_down_sync(0xffffffffu, v, off));
    return v;
}

// block_min_int returns the smallest v over the block to every thread.
__device__ int block_min_int(int v, int *scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_min_int(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < WARPS ? scratch[lane] : INT_MAX;
    v = warp_min_int(v);
    return __shfl_sync(0xffffffffu, v, 0);
}
