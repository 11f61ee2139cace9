// Fused Vandermonde products (the m x n matrix V[i, j] = x_j^i is never formed), rows b
// independent, all arrays C-contiguous:
//
//     vandermonde_kernel:           out[b, i] = sum_j x[b, j]^i v[b, j]             (B, m)
//     vandermonde_t_kernel:         out[b, j] += sum_i x[b, j]^i w[b, i]            (B, n)
//     exp_vandermonde_re_kernel:    out[b, i] = Re sum_j exp(i z[b, j]) v[b, j]     (B, m) real
//     exp_vandermonde_t_re_kernel:  out[b, j] += sum_i exp(i z) w[b, i]             (B, n)
//                                   dout[b, j] += sum_i i exp((i - 1) z) w[b, i]    w real
//     solve_vandermonde_kernel:     out[b] = V(x[b])^-1 b[b], Björck-Pereyra primal (B, n)
//     solve_vandermonde_t_kernel:   out[b] = V(x[b])^-T b[b], Björck-Pereyra dual   (B, n)
//                                   info[b] = 1 where row b has two equal nodes, else 0
//     vandermonde_order_kernel:     perm[b] = the order the solves take row b's nodes in:
//                                   increasing for real nonnegative nodes, else Leja's
//
// Powers by multiplication in the data's precision, re-anchored every R = 16 exponents: an
// anchor x^i0 is computed exactly in double precision, exp(i0 log|x|) (cos i0 arg x,
// sin i0 arg x) (from z itself for the exp_ kernels), so a power carries at most R roundings of
// the working precision whatever i (the CPU kernels' bound; see structlin._cpu.vandermonde).
//
// Forward kernels: one thread per R consecutive exponents of one row (R accumulators in
// registers); a block of THREADS threads covers THREADS * R exponents of row b; the row's
// nodes are staged through shared memory in tiles of TILE nodes (node in T, log-modulus and
// argument in double, coefficient in T), each thread anchoring each node once per tile entry.
// Grid: B * ceil(m / (THREADS * R)) blocks.
//
// Transposed kernels: one thread per node j of row b and chunk c of CHUNK exponents; the
// chunk's weights are staged through shared memory (TILE at a time, read by every thread);
// the thread anchors exactly at the chunk's start and every R exponents carries the anchor by
// a double multiplication with x^R (exact every EXACT exponents). Partial sums of the chunks
// are added with atomics into out, which the launcher zero-fills. Grid: B * ceil(n / THREADS) *
// nchunks blocks.
//
// Björck-Pereyra kernels: one thread per system, working in place on its row of out (copied
// from b first); the recurrences in the CPU kernels' order (structlin._cpu.vandermonde), in
// the data's precision. O(n^2) operations and no memory beyond the output per system.
// Grid: ceil(B / THREADS) blocks, no shared memory. The rows are strided between the threads
// of a warp (n elements apart): the accesses are not coalesced, which the L1/L2 caches absorb
// for the small n these solves are for (Vandermonde systems are exponentially ill-conditioned
// in n for real nodes).
//
// Unverified: none of this code has run on a GPU (NVRTC compile and the host emulator only).
#include "_common.cuh"

namespace {

constexpr int THREADS = 128;
constexpr int R = 16;
constexpr int TILE = 128;
constexpr int EXACT = 4096;

using cd = sl::complex<double>;

template <typename T>
struct traits {
    using real = T;
    __device__ __forceinline__ static T make(double re, double) { return T(re); }
    __device__ __forceinline__ static double re(T a) { return (double)a; }
    __device__ __forceinline__ static double im(T) { return 0.0; }
};
template <typename Rl>
struct traits<sl::complex<Rl>> {
    using real = Rl;
    __device__ __forceinline__ static sl::complex<Rl> make(double re, double im) {
        return sl::complex<Rl>(Rl(re), Rl(im));
    }
    __device__ __forceinline__ static double re(sl::complex<Rl> a) { return (double)a.re; }
    __device__ __forceinline__ static double im(sl::complex<Rl> a) { return (double)a.im; }
};

// x^k = exp(k (lr + i th)) in double; 1 for k = 0 (0^0 = 1)
__device__ __forceinline__ cd exact_power(long long k, double lr, double th) {
    if (k == 0) return cd(1.0, 0.0);
    const double fk = (double)k;
    const double mag = exp(fk * lr);
    double s, c;
    sincos(fk * th, &s, &c);
    return cd(mag * c, mag * s);
}

// real * complex products (the exp_ transposed kernel's real weights)
template <typename Rl>
__device__ __forceinline__ sl::complex<Rl> operator*(sl::complex<Rl> a, Rl w) {
    return sl::complex<Rl>(a.re * w, a.im * w);
}

__device__ __forceinline__ cd cmul(cd a, cd b) {
    return cd(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
}

// The shared tile of a forward kernel: node (working type), anchor exponents, coefficient.
template <typename T>
struct FwdTile {
    T* x;
    double* lr;
    double* th;
    T* v;
    __device__ __forceinline__ FwdTile() {
        lr = reinterpret_cast<double*>(sl_shared);
        th = lr + TILE;
        x = reinterpret_cast<T*>(th + TILE);
        v = x + TILE;
    }
};

// acc[k] = sum_j x_j^(i0 + k) v_j over the row's nodes, staged tile by tile. from_log: the
// nodes are given by their logarithms z (x = exp(z) rounded, anchors exp(k z)).
template <typename T>
__device__ __forceinline__ void forward_row(const T* __restrict__ xs, const T* __restrict__ vs,
                                            int n, long long i0, bool from_log, T (&acc)[R]) {
    FwdTile<T> t;
#pragma unroll
    for (int k = 0; k < R; ++k) acc[k] = T(0);
    for (int j0 = 0; j0 < n; j0 += TILE) {
        const int cnt = sl::imin(TILE, n - j0);
        for (int q = threadIdx.x; q < cnt; q += THREADS) {
            const T a = xs[j0 + q];
            const double re = traits<T>::re(a);
            const double im = traits<T>::im(a);
            if (from_log) {
                t.lr[q] = re;
                t.th[q] = im;
                const double mag = exp(re);
                double s, c;
                sincos(im, &s, &c);
                t.x[q] = traits<T>::make(mag * c, mag * s);
            } else {
                t.lr[q] = log(hypot(re, im));
                t.th[q] = atan2(im, re);
                t.x[q] = a;
            }
            t.v[q] = vs[j0 + q];
        }
        __syncthreads();
        for (int q = 0; q < cnt; ++q) {
            const cd an = exact_power(i0, t.lr[q], t.th[q]);
            const T v = t.v[q];
            const cd av = cmul(an, cd(traits<T>::re(v), traits<T>::im(v)));
            T p = traits<T>::make(av.re, av.im);
            const T x = t.x[q];
#pragma unroll
            for (int k = 0; k < R; ++k) {
                acc[k] += p;
                p = p * x;
            }
        }
        __syncthreads();
    }
}

__device__ __forceinline__ float real_part(sl::complex<float> a) { return a.re; }
__device__ __forceinline__ double real_part(sl::complex<double> a) { return a.re; }

// The transposed products: the thread's node j of row b over exponents [i0, i1).
// Shared memory: TILE weights (and TILE derivative weights for the exp_ kernel).
template <typename T, typename W>
__device__ __forceinline__ void transposed_node(const T* __restrict__ xs,
                                                const W* __restrict__ ws, long long b, int n,
                                                long long m, int j, long long i0, long long i1,
                                                bool from_log, bool deriv, T* acc, T* dacc) {
    W* sw = reinterpret_cast<W*>(sl_shared);
    W* swd = sw + TILE;
    double lr = 0.0, th = 0.0;
    T x = T(0);
    if (j < n) {
        const T a = xs[b * n + j];
        const double re = traits<T>::re(a);
        const double im = traits<T>::im(a);
        if (from_log) {
            lr = re;
            th = im;
            const double mag = exp(re);
            double s, c;
            sincos(im, &s, &c);
            x = traits<T>::make(mag * c, mag * s);
        } else {
            lr = log(hypot(re, im));
            th = atan2(im, re);
            x = a;
        }
    }
    const cd q = exact_power(R, lr, th);
    cd an = cd(1.0, 0.0);
    T s1 = T(0), s2 = T(0);
    T p = T(0);
    for (long long k0 = i0; k0 < i1; k0 += TILE) {
        const int cnt = (int)((i1 - k0) < TILE ? (i1 - k0) : TILE);
        for (int e = threadIdx.x; e < cnt; e += THREADS) {
            const long long i = k0 + e;
            sw[e] = ws[b * m + i];
            if (deriv) swd[e] = i + 1 < m ? W(double(i + 1)) * ws[b * m + i + 1] : W(0);
        }
        __syncthreads();
        if (j < n) {
            for (int e = 0; e < cnt; ++e) {
                const long long i = k0 + e;
                if ((i - i0) % R == 0) {  // a new block: its anchor
                    an = (i == i0 || i % EXACT == 0) ? exact_power(i, lr, th) : cmul(an, q);
                    p = traits<T>::make(an.re, an.im);
                }
                s1 += p * sw[e];
                if (deriv) s2 += p * swd[e];
                p = p * x;
            }
        }
        __syncthreads();
    }
    *acc = s1;
    *dacc = s2;
}

__device__ __forceinline__ void add_to(float* p, float v, bool atomic) {
    if (atomic) sl::atomic_add(p, v); else *p += v;
}
__device__ __forceinline__ void add_to(double* p, double v, bool atomic) {
    if (atomic) sl::atomic_add(p, v); else *p += v;
}
template <typename Rl>
__device__ __forceinline__ void add_to(sl::complex<Rl>* p, sl::complex<Rl> v, bool atomic) {
    if (atomic) sl::atomic_add(p, v); else *p += v;
}

// a / d, and whether d is zero (a repeated node). Complex: Smith's algorithm (no overflow of
// |d|^2 for large or tiny d).
__device__ __forceinline__ float bp_div(float a, float d) { return a / d; }
__device__ __forceinline__ double bp_div(double a, double d) { return a / d; }
template <typename Rl>
__device__ __forceinline__ sl::complex<Rl> bp_div(sl::complex<Rl> a, sl::complex<Rl> d) {
    if (fabs(d.re) >= fabs(d.im)) {
        const Rl r = d.im / d.re;
        const Rl t = Rl(1) / (d.re + d.im * r);
        return sl::complex<Rl>((a.re + a.im * r) * t, (a.im - a.re * r) * t);
    }
    const Rl r = d.re / d.im;
    const Rl t = Rl(1) / (d.re * r + d.im);
    return sl::complex<Rl>((a.re * r + a.im) * t, (a.im * r - a.re) * t);
}
__device__ __forceinline__ bool bp_zero(float d) { return d == 0.0f; }
__device__ __forceinline__ bool bp_zero(double d) { return d == 0.0; }
template <typename Rl>
__device__ __forceinline__ bool bp_zero(sl::complex<Rl> d) {
    return d.re == Rl(0) && d.im == Rl(0);
}

}  // namespace

// x, b, out (B, n); info (B,). Grid: ceil(B / THREADS) blocks of THREADS threads, no shared
// memory. V a = b with V[i, j] = x_j^i (the primal algorithm).
template <typename T>
__global__ void __launch_bounds__(THREADS)
    solve_vandermonde_kernel(const T* __restrict__ x, const T* __restrict__ b,
                             T* __restrict__ out, int* __restrict__ info, long long rows,
                             int n) {
    const long long r = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (r >= rows) return;
    const T* xs = x + r * n;
    T* a = out + r * n;
    for (int i = 0; i < n; ++i) a[i] = b[r * n + i];
    int bad = 0;
    for (int k = 0; k < n - 1; ++k) {
        const T xk = xs[k];
        for (int i = n - 1; i > k; --i) a[i] = a[i] - xk * a[i - 1];
    }
    for (int k = n - 2; k >= 0; --k) {
        for (int i = k + 1; i < n; ++i) {
            const T d = xs[i] - xs[i - k - 1];
            bad |= bp_zero(d);
            a[i] = bp_div(a[i], d);
        }
        for (int i = k; i < n - 1; ++i) a[i] = a[i] - a[i + 1];
    }
    info[r] = bad;
}

// As solve_vandermonde_kernel, for V^T a = b (interpolation, the dual algorithm).
template <typename T>
__global__ void __launch_bounds__(THREADS)
    solve_vandermonde_t_kernel(const T* __restrict__ x, const T* __restrict__ b,
                               T* __restrict__ out, int* __restrict__ info, long long rows,
                               int n) {
    const long long r = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (r >= rows) return;
    const T* xs = x + r * n;
    T* a = out + r * n;
    for (int i = 0; i < n; ++i) a[i] = b[r * n + i];
    int bad = 0;
    for (int k = 0; k < n - 1; ++k) {
        for (int i = n - 1; i > k; --i) {
            const T d = xs[i] - xs[i - k - 1];
            bad |= bp_zero(d);
            a[i] = bp_div(a[i] - a[i - 1], d);
        }
    }
    for (int k = n - 2; k >= 0; --k) {
        const T xk = xs[k];
        for (int i = k; i < n - 1; ++i) a[i] = a[i] - xk * a[i + 1];
    }
    info[r] = bad;
}

// x (B, n); perm (B, n) int64; work (B, n) double scratch. One thread per row, O(n^2): the
// CPU kernel's selection (structlin._cpu.vandermonde._order) with the same arithmetic (scores
// in position order, swapped with perm; Leja's products of squared distances, rescaled by
// the reciprocal of their maximum at every step), so the two give the same permutation.
template <typename T>
__global__ void __launch_bounds__(THREADS)
    vandermonde_order_kernel(const T* __restrict__ x, long long* __restrict__ perm,
                             double* __restrict__ work, long long rows, int n) {
    const long long r = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (r >= rows) return;
    const T* xs = x + r * n;
    long long* p = perm + r * n;
    double* w = work + r * n;
    bool sorted_real = true;
    for (int j = 0; j < n; ++j) {
        p[j] = j;
        if (traits<T>::im(xs[j]) != 0.0 || traits<T>::re(xs[j]) < 0.0) sorted_real = false;
    }
    for (int j = 0; j < n; ++j) {
        const double re = traits<T>::re(xs[j]);
        const double im = traits<T>::im(xs[j]);
        w[j] = sorted_real ? -re : re * re + im * im;
    }
    for (int k = 0; k < n; ++k) {
        int best = k;
        double top = w[k];
        for (int q = k + 1; q < n; ++q)
            if (w[q] > top) {
                top = w[q];
                best = q;
            }
        const long long t = p[k];
        p[k] = p[best];
        p[best] = t;
        const double tw = w[k];
        w[k] = w[best];
        w[best] = tw;
        if (sorted_real || k + 1 == n) continue;
        const double cr = traits<T>::re(xs[p[k]]);
        const double ci = traits<T>::im(xs[p[k]]);
        if (k == 0)
            for (int q = 1; q < n; ++q) w[q] = 1.0;
        top = 0.0;
        for (int q = k + 1; q < n; ++q) {
            const double dr = traits<T>::re(xs[p[q]]) - cr;
            const double di = traits<T>::im(xs[p[q]]) - ci;
            w[q] *= dr * dr + di * di;
            top = top > w[q] ? top : w[q];
        }
        if (top > 0.0) {
            const double sc = 1.0 / top;
            for (int q = k + 1; q < n; ++q) w[q] *= sc;
        }
    }
}

// x, v (B, n); out (B, m). Grid: B * ceil(m / (THREADS R)) blocks of THREADS threads;
// shared memory TILE * (2 sizeof(double) + 2 sizeof(T)) bytes.
template <typename T>
__global__ void __launch_bounds__(THREADS)
    vandermonde_kernel(const T* __restrict__ x, const T* __restrict__ v, T* __restrict__ out,
                       long long rows, int n, long long m) {
    const long long per_row = (m + (long long)THREADS * R - 1) / ((long long)THREADS * R);
    const long long b = blockIdx.x / per_row;
    const long long i0 = (blockIdx.x - b * per_row) * THREADS * R + (long long)threadIdx.x * R;
    if (b >= rows) return;
    T acc[R];
    forward_row<T>(x + b * n, v + b * n, n, i0, false, acc);
#pragma unroll
    for (int k = 0; k < R; ++k)
        if (i0 + k < m) out[b * m + i0 + k] = acc[k];
}

// z, v (B, n) complex; out (B, m) real. Grid and shared memory as vandermonde_kernel.
template <typename C>
__global__ void __launch_bounds__(THREADS)
    exp_vandermonde_re_kernel(const C* __restrict__ z, const C* __restrict__ v,
                              typename traits<C>::real* __restrict__ out, long long rows, int n,
                              long long m) {
    const long long per_row = (m + (long long)THREADS * R - 1) / ((long long)THREADS * R);
    const long long b = blockIdx.x / per_row;
    const long long i0 = (blockIdx.x - b * per_row) * THREADS * R + (long long)threadIdx.x * R;
    if (b >= rows) return;
    C acc[R];
    forward_row<C>(z + b * n, v + b * n, n, i0, true, acc);
#pragma unroll
    for (int k = 0; k < R; ++k)
        if (i0 + k < m) out[b * m + i0 + k] = real_part(acc[k]);
}

// x (B, n), w (B, m), out (B, n) zero-filled by the launcher. Grid: B * ceil(n / THREADS) *
// nchunks blocks; shared memory TILE * sizeof(T) bytes.
template <typename T>
__global__ void __launch_bounds__(THREADS)
    vandermonde_t_kernel(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ out,
                         long long rows, int n, long long m, long long chunk, int nchunks) {
    const int node_blocks = (n + THREADS - 1) / THREADS;
    const long long t = blockIdx.x;
    const long long b = t / ((long long)node_blocks * nchunks);
    const long long rem = t - b * node_blocks * nchunks;
    const int c = (int)(rem / node_blocks);
    const int j = (int)(rem - (long long)c * node_blocks) * THREADS + threadIdx.x;
    if (b >= rows) return;
    const long long i0 = (long long)c * chunk;
    const long long i1 = i0 + chunk < m ? i0 + chunk : m;
    T s1, s2;
    transposed_node<T, T>(x, w, b, n, m, j, i0, i1, false, false, &s1, &s2);
    if (j < n) add_to(out + b * n + j, s1, nchunks > 1);
}

// z (B, n) complex, w (B, m) real, out and dout (B, n) zero-filled by the launcher. Grid as
// vandermonde_t_kernel; shared memory 2 TILE * sizeof(real) bytes.
template <typename C>
__global__ void __launch_bounds__(THREADS)
    exp_vandermonde_t_re_kernel(const C* __restrict__ z,
                                const typename traits<C>::real* __restrict__ w,
                                C* __restrict__ out, C* __restrict__ dout, long long rows, int n,
                                long long m, long long chunk, int nchunks) {
    using Rl = typename traits<C>::real;
    const int node_blocks = (n + THREADS - 1) / THREADS;
    const long long t = blockIdx.x;
    const long long b = t / ((long long)node_blocks * nchunks);
    const long long rem = t - b * node_blocks * nchunks;
    const int c = (int)(rem / node_blocks);
    const int j = (int)(rem - (long long)c * node_blocks) * THREADS + threadIdx.x;
    if (b >= rows) return;
    const long long i0 = (long long)c * chunk;
    const long long i1 = i0 + chunk < m ? i0 + chunk : m;
    C s1, s2;
    transposed_node<C, Rl>(z, w, b, n, m, j, i0, i1, true, true, &s1, &s2);
    if (j < n) {
        add_to(out + b * n + j, s1, nchunks > 1);
        add_to(dout + b * n + j, s2, nchunks > 1);
    }
}
