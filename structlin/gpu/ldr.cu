// The leaves of the subdiagonal (LDR-SD) Krylov products and the linear recurrence of their
// gradients (see structlin/_cpu/ldr.py for the contract). All arrays (R, N) C-contiguous,
// N a multiple of leaf (leaf <= MAX_LEAF); a[r, l] weighs the edge l -> l + 1 and
// P(k, i) = a[k] ... a[i-1]. The leaf kernels add into out (zeroed by the caller):
//
//     krylov_leaf:       out[i] += sum_{k <= i, same leaf} P(k, i) u[i - k] g[k]
//     krylov_t_leaf:     out[d] += sum_{leaves} sum_{i - k = d} w[i] P(k, i) g[k]
//     krylov_grad_leaf:  out[l] += sum_{k <= l < i, same leaf} w[i] P(l+1, i) P(k, l) u[i-k] g[k]
//     linear_scan:       out[t] = out[t - 1] c[t - 1] + d[t],  out[0] = d[0]
//
// One thread per (row, leaf) for krylov_leaf and krylov_grad_leaf (each writes its own leaf),
// one per (row, lag d) for krylov_t_leaf (it walks every leaf of its row: no atomics), one per
// row for linear_scan. Products by multiplication only (no division): zero weights allowed.
#include "_common.cuh"

namespace {

constexpr int THREADS = 128;
constexpr int MAX_LEAF = 32;

}  // namespace

template <typename T>
__global__ void __launch_bounds__(THREADS)
    krylov_leaf_kernel(const T* __restrict__ a, const T* __restrict__ u,
                       const T* __restrict__ g, T* __restrict__ out, int R, int N, int leaf) {
    const int nl = N / leaf;
    const long long t = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (t >= (long long)R * nl) return;
    const long long r = t / nl;
    const long long row = r * N;
    const int b = (int)(t - r * nl) * leaf;
    for (int i = 0; i < leaf; ++i) {
        T acc(0);
        T p(1);
        // k from i down to 0: P(k, i) grows by a[b + k] at each step
        for (int k = i; k >= 0; --k) {
            if (k < i) p = p * a[row + b + k];
            acc += p * u[row + i - k] * g[row + b + k];
        }
        out[row + b + i] += acc;
    }
}

template <typename T>
__global__ void __launch_bounds__(THREADS)
    krylov_t_leaf_kernel(const T* __restrict__ a, const T* __restrict__ w,
                         const T* __restrict__ g, T* __restrict__ out, int R, int N, int leaf) {
    const long long t = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (t >= (long long)R * leaf) return;
    const long long r = t / leaf;
    const int d = (int)(t - r * leaf);
    const long long row = r * N;
    T acc(0);
    for (int b = 0; b < N; b += leaf) {
        for (int k = 0; k + d < leaf; ++k) {
            T p(1);
            for (int l = k; l < k + d; ++l) p = p * a[row + b + l];
            acc += w[row + b + k + d] * p * g[row + b + k];
        }
    }
    out[row + d] += acc;
}

template <typename T>
__global__ void __launch_bounds__(THREADS)
    krylov_grad_leaf_kernel(const T* __restrict__ a, const T* __restrict__ w,
                            const T* __restrict__ u, const T* __restrict__ g,
                            T* __restrict__ out, int R, int N, int leaf) {
    const int nl = N / leaf;
    const long long t = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (t >= (long long)R * nl) return;
    const long long r = t / nl;
    const long long row = r * N;
    const int b = (int)(t - r * nl) * leaf;
    T acc[MAX_LEAF];
    T suf[MAX_LEAF];
    for (int l = 0; l < leaf; ++l) acc[l] = T(0);
    for (int k = 0; k < leaf; ++k) {
        const T gk = g[row + b + k];
        for (int i = k + 1; i < leaf; ++i) {
            const T coef = w[row + b + i] * u[row + i - k] * gk;
            suf[i - 1] = T(1);
            for (int l = i - 2; l >= k; --l) suf[l] = suf[l + 1] * a[row + b + l + 1];
            T pre(1);
            for (int l = k; l < i; ++l) {
                acc[l] += coef * pre * suf[l];
                pre = pre * a[row + b + l];
            }
        }
    }
    for (int l = 0; l < leaf; ++l) out[row + b + l] += acc[l];
}

template <typename T>
__global__ void __launch_bounds__(THREADS)
    linear_scan_kernel(const T* __restrict__ c, const T* __restrict__ d, T* __restrict__ out,
                       int R, int N) {
    const long long r = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (r >= R || N == 0) return;
    const long long row = r * N;
    T acc = d[row];
    out[row] = acc;
    for (int t = 1; t < N; ++t) {
        acc = acc * c[row + t - 1] + d[row + t];
        out[row + t] = acc;
    }
}
