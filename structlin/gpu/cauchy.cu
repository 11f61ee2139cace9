// The fused Cauchy product and its square (for the VJPs): for rows b, vectors k and nodes i,
//
//     r[b, i, j]      = 1 / (x[b, i] - y[b, j])      (row 0 of x or y when it is shared)
//     out[b, k, i]    = sum_j v[b, k, j] r[b, i, j]
//     out_sq[b, k, i] = sum_j v[b, k, j] r[b, i, j]^2          (cauchy_square_kernel only)
//
// x (Bx, m), y (By, n), v (B, K, n), out and out_sq (B, K, m), all C-contiguous; Bx and By are
// 1 or B (x_all / y_all say which). One CUDA block of THREADS threads owns THREADS consecutive
// i of one (b, k); thread t owns i = i0 + t and keeps its x_i and its accumulators in
// registers. The j axis is walked in chunks of THREADS: each chunk of y and v is loaded into
// shared memory once per block (coalesced, one element per thread) and read by every thread
// as a broadcast, so global memory traffic is O(m + n) per block and the m x n matrix never
// exists. One reciprocal per term (1 / (a + ib) = (a - ib) / (a^2 + b^2) for complex types).
// Blocks are numbered (b, k, block of i), the block of i fastest.
#include "_common.cuh"

namespace {

constexpr int THREADS = 256;

__device__ __forceinline__ float recip(float d) { return 1.0f / d; }
__device__ __forceinline__ double recip(double d) { return 1.0 / d; }
template <typename R>
__device__ __forceinline__ sl::complex<R> recip(sl::complex<R> d) {
    const R inv = R(1) / (d.re * d.re + d.im * d.im);
    return sl::complex<R>(d.re * inv, -d.im * inv);
}

template <typename T, bool SQUARE>
__device__ __forceinline__ void cauchy_body(const T* __restrict__ x, const T* __restrict__ y,
                                            const T* __restrict__ v, T* __restrict__ out,
                                            T* __restrict__ out_sq, int nk, int m, int n,
                                            int x_all, int y_all) {
    T* ys = reinterpret_cast<T*>(sl_shared);
    T* vs = ys + THREADS;
    const int nblk = (m + THREADS - 1) / THREADS;
    long long tile = blockIdx.x;
    const int ib = (int)(tile % nblk);
    tile /= nblk;
    const int k = (int)(tile % nk);
    const long long b = tile / nk;
    const int tid = threadIdx.x;
    const int i = ib * THREADS + tid;
    const bool live = i < m;
    const T xi = live ? x[(x_all ? b : 0LL) * m + i] : T(0);
    const T* yb = y + (y_all ? b : 0LL) * (long long)n;
    const T* vb = v + (b * nk + k) * (long long)n;
    T acc(0);
    T acc2(0);
    for (int j0 = 0; j0 < n; j0 += THREADS) {
        const int cnt = sl::imin(THREADS, n - j0);
        if (tid < cnt) {
            ys[tid] = yb[j0 + tid];
            vs[tid] = vb[j0 + tid];
        }
        __syncthreads();
        if (live) {
            for (int t = 0; t < cnt; ++t) {
                const T r = recip(xi - ys[t]);
                const T vr = vs[t] * r;
                acc += vr;
                if (SQUARE) acc2 += vr * r;
            }
        }
        __syncthreads();
    }
    if (live) {
        const long long o = (b * nk + k) * (long long)m + i;
        out[o] = acc;
        if (SQUARE) out_sq[o] = acc2;
    }
}

}  // namespace

template <typename T>
__global__ void __launch_bounds__(THREADS)
    cauchy_kernel(const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ v,
                  T* __restrict__ out, int nk, int m, int n, int x_all, int y_all) {
    cauchy_body<T, false>(x, y, v, out, nullptr, nk, m, n, x_all, y_all);
}

template <typename T>
__global__ void __launch_bounds__(THREADS)
    cauchy_square_kernel(const T* __restrict__ x, const T* __restrict__ y,
                         const T* __restrict__ v, T* __restrict__ out, T* __restrict__ out_sq,
                         int nk, int m, int n, int x_all, int y_all) {
    cauchy_body<T, true>(x, y, v, out, out_sq, nk, m, n, x_all, y_all);
}
