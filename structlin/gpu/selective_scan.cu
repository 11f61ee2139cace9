// Mamba's selective scan and its VJP (see structlin/gpu/selective_scan.py for the contract).
//
// One thread per channel (i, c) of the b x d channels, the n <= NMAX states in a register array
// (loops over NMAX fully unrolled with k < n guards), the time loop inside. S is the state type
// (float, double, sl::complex<float>, sl::complex<double>), R its real type.
//
//     dt_t = softplus(delta_t + bias_c);  x_t = exp(dt_t A_c) x_{t-1} + dt_t u_t B_t
//     y_t = sum_k x_t C_t (2 Re for complex);  out_t = (y_t + D_c u_t) silu(z_t)
//
// B and C are (bB, gB, lB, n): bB in {1, b}, lB in {1, l}, channel c uses group c / (d / gB).
// The VJP runs the adjoint recurrence backwards: the forward states are checkpointed every
// CHUNK steps in the global scratch `ck` (b d ceil(l / CHUNK) n), each chunk is recomputed into
// the global scratch `xs` ((CHUNK + 1) n per channel) and walked backwards; the gradients of
// the shared B, C, A, D and delta_bias are accumulated with atomic additions.
#include "_common.cuh"

namespace {

constexpr int NMAX = 16;
constexpr int CHUNK = 64;

template <typename S> struct real_of { using type = S; };
template <typename R> struct real_of<sl::complex<R>> { using type = R; };

__device__ __forceinline__ float exp_of(float v) { return expf(v); }
__device__ __forceinline__ double exp_of(double v) { return exp(v); }
template <typename R>
__device__ __forceinline__ sl::complex<R> exp_of(sl::complex<R> v) {
    const R m = exp_of(v.re);
    return sl::complex<R>(m * cos(v.im), m * sin(v.im));
}

// y = sum_k x C: the real value itself, or 2 Re of the complex one
__device__ __forceinline__ float out_part(float v) { return v; }
__device__ __forceinline__ double out_part(double v) { return v; }
template <typename R>
__device__ __forceinline__ R out_part(sl::complex<R> v) { return v.re + v.re; }

// the adjoint of out_part for a real cotangent g
template <typename R>
__device__ __forceinline__ R twice_if_complex(R g, R) { return g; }
template <typename R>
__device__ __forceinline__ R twice_if_complex(R g, sl::complex<R>) { return g + g; }

__device__ __forceinline__ float re_of(float v) { return v; }
__device__ __forceinline__ double re_of(double v) { return v; }
template <typename R>
__device__ __forceinline__ R re_of(sl::complex<R> v) { return v.re; }

template <typename R>
__device__ __forceinline__ sl::complex<R> operator*(sl::complex<R> a, R s) {
    return sl::complex<R>(a.re * s, a.im * s);
}
template <typename R>
__device__ __forceinline__ sl::complex<R> operator*(R s, sl::complex<R> a) {
    return sl::complex<R>(a.re * s, a.im * s);
}

template <typename R>
__device__ __forceinline__ R softplus(R v) {
    // max(v, 0) + log1p(exp(-|v|)): no overflow
    return (v > R(0) ? v : R(0)) + log1p(exp_of(v > R(0) ? -v : v));
}

template <typename R>
__device__ __forceinline__ R sigmoid(R v) { return R(1) / (R(1) + exp_of(-v)); }

template <typename R>
__device__ __forceinline__ R step_of(const R* delta_row, long long t, R bias, int softplus_) {
    const R v = delta_row[t] + bias;
    return softplus_ ? softplus(v) : v;
}

struct Geometry {
    long long base;  // offset of the channel's row block in B (or C)
    long long step;  // elements between steps (0 when time-invariant)
};

__device__ __forceinline__ Geometry geometry(long long i, int c, int d, int n, int bB, int gB,
                                             long long lB) {
    Geometry g;
    const int cpg = d / gB;
    const long long sb = bB > 1 ? (long long)gB * lB * n : 0;
    g.base = i * sb + (long long)(c / cpg) * lB * n;
    g.step = lB > 1 ? n : 0;
    return g;
}

}  // namespace

template <typename S>
__global__ void scan_kernel(const typename real_of<S>::type* __restrict__ u,
                            const typename real_of<S>::type* __restrict__ delta,
                            const S* __restrict__ A, const S* __restrict__ B,
                            const S* __restrict__ C, const typename real_of<S>::type* D,
                            const typename real_of<S>::type* z,
                            const typename real_of<S>::type* bias,
                            typename real_of<S>::type* __restrict__ out, S* __restrict__ last,
                            long long nb, int d, long long l, int n, int bB, int gB,
                            long long lB, int bC, int gC, long long lC, int softplus_,
                            int has_z) {
    using R = typename real_of<S>::type;
    const long long ch = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= nb * d) return;
    const long long i = ch / d;
    const int c = (int)(ch - i * d);
    const R* u_row = u + ch * l;
    const R* d_row = delta + ch * l;
    const Geometry gb = geometry(i, c, d, n, bB, gB, lB);
    const Geometry gc = geometry(i, c, d, n, bC, gC, lC);
    S a[NMAX];
    S x[NMAX];
#pragma unroll
    for (int k = 0; k < NMAX; ++k) {
        a[k] = k < n ? A[(long long)c * n + k] : S(R(0));
        x[k] = S(R(0));
    }
    const R Dc = D[c];
    const R bc = bias[c];
    for (long long t = 0; t < l; ++t) {
        const R dt = step_of(d_row, t, bc, softplus_);
        const R du = dt * u_row[t];
        const S* b_row = B + gb.base + t * gb.step;
        const S* c_row = C + gc.base + t * gc.step;
        S acc = S(R(0));
#pragma unroll
        for (int k = 0; k < NMAX; ++k) {
            if (k < n) {
                x[k] = exp_of(a[k] * dt) * x[k] + b_row[k] * du;
                acc += x[k] * c_row[k];
            }
        }
        R o = out_part(acc) + Dc * u_row[t];
        if (has_z) {
            const R zv = z[ch * l + t];
            o = o * (zv * sigmoid(zv));
        }
        out[ch * l + t] = o;
    }
#pragma unroll
    for (int k = 0; k < NMAX; ++k)
        if (k < n) last[ch * n + k] = x[k];
}

template <typename S>
__global__ void scan_vjp_kernel(const typename real_of<S>::type* __restrict__ u,
                                const typename real_of<S>::type* __restrict__ delta,
                                const S* __restrict__ A, const S* __restrict__ B,
                                const S* __restrict__ C, const typename real_of<S>::type* D,
                                const typename real_of<S>::type* z,
                                const typename real_of<S>::type* bias,
                                const typename real_of<S>::type* __restrict__ g,
                                typename real_of<S>::type* __restrict__ gu,
                                typename real_of<S>::type* __restrict__ gdelta, S* gA, S* gB,
                                S* gC, typename real_of<S>::type* gD,
                                typename real_of<S>::type* gz,
                                typename real_of<S>::type* gbias, S* __restrict__ ck,
                                S* __restrict__ xs, long long nb, int d, long long l, int n,
                                int bB, int gBn, long long lB, int bC, int gCn, long long lC,
                                int softplus_, int has_z) {
    using R = typename real_of<S>::type;
    const long long ch = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= nb * d) return;
    const long long i = ch / d;
    const int c = (int)(ch - i * d);
    const long long nck = (l + CHUNK - 1) / CHUNK;
    const R* u_row = u + ch * l;
    const R* d_row = delta + ch * l;
    const Geometry gb = geometry(i, c, d, n, bB, gBn, lB);
    const Geometry gc = geometry(i, c, d, n, bC, gCn, lC);
    S* my_ck = ck + ch * nck * n;
    S* my_xs = xs + ch * (long long)(CHUNK + 1) * n;
    S a[NMAX];
    S x[NMAX];
#pragma unroll
    for (int k = 0; k < NMAX; ++k) {
        a[k] = k < n ? A[(long long)c * n + k] : S(R(0));
        x[k] = S(R(0));
    }
    const R Dc = D[c];
    const R bc = bias[c];
    // forward: the state before each chunk
    for (long long j = 0; j < nck; ++j) {
        const long long t0 = j * CHUNK;
        const long long t1 = t0 + CHUNK < l ? t0 + CHUNK : l;
#pragma unroll
        for (int k = 0; k < NMAX; ++k)
            if (k < n) my_ck[j * n + k] = x[k];
        for (long long t = t0; t < t1; ++t) {
            const R dt = step_of(d_row, t, bc, softplus_);
            const R du = dt * u_row[t];
            const S* b_row = B + gb.base + t * gb.step;
#pragma unroll
            for (int k = 0; k < NMAX; ++k)
                if (k < n) x[k] = exp_of(a[k] * dt) * x[k] + b_row[k] * du;
        }
    }
    S h[NMAX];  // exp(dt_{t+1} A) h_{t+1}, carried to step t
    S ga[NMAX];
#pragma unroll
    for (int k = 0; k < NMAX; ++k) {
        h[k] = S(R(0));
        ga[k] = S(R(0));
    }
    R gD_acc = R(0);
    R gb_acc = R(0);
    for (long long j = nck - 1; j >= 0; --j) {
        const long long t0 = j * CHUNK;
        const long long t1 = t0 + CHUNK < l ? t0 + CHUNK : l;
        // the chunk's states: my_xs[(t - t0 + 1) n + k] = x_t, my_xs[k] = x_{t0 - 1}
#pragma unroll
        for (int k = 0; k < NMAX; ++k)
            if (k < n) {
                x[k] = my_ck[j * n + k];
                my_xs[k] = x[k];
            }
        for (long long t = t0; t < t1; ++t) {
            const R dt = step_of(d_row, t, bc, softplus_);
            const R du = dt * u_row[t];
            const S* b_row = B + gb.base + t * gb.step;
#pragma unroll
            for (int k = 0; k < NMAX; ++k)
                if (k < n) {
                    x[k] = exp_of(a[k] * dt) * x[k] + b_row[k] * du;
                    my_xs[(t - t0 + 1) * n + k] = x[k];
                }
        }
        for (long long t = t1 - 1; t >= t0; --t) {
            const R dt = step_of(d_row, t, bc, softplus_);
            const R uv = u_row[t];
            const R du = dt * uv;
            const S* b_row = B + gb.base + t * gb.step;
            const S* c_row = C + gc.base + t * gc.step;
            S* gb_row = gB + gb.base + t * gb.step;
            S* gc_row = gC + gc.base + t * gc.step;
            const S* cur = my_xs + (t - t0 + 1) * n;
            const S* prev = my_xs + (t - t0) * n;
            const R gv = g[ch * l + t];
            R go = gv;
            if (has_z) {
                const R zv = z[ch * l + t];
                const R sg = sigmoid(zv);
                S acc = S(R(0));
#pragma unroll
                for (int k = 0; k < NMAX; ++k)
                    if (k < n) acc += cur[k] * c_row[k];
                const R o = out_part(acc) + Dc * uv;
                gz[ch * l + t] = gv * o * sg * (R(1) + zv * (R(1) - sg));
                go = gv * zv * sg;
            }
            gD_acc += go * uv;
            const R gy = twice_if_complex(go, S(R(0)));
            R sB = R(0);
            R sA = R(0);
#pragma unroll
            for (int k = 0; k < NMAX; ++k)
                if (k < n) {
                    const S hk = sl::conj(c_row[k]) * gy + h[k];
                    sl::atomic_add(&gc_row[k], sl::conj(cur[k]) * gy);
                    const S e = exp_of(a[k] * dt);
                    const S q = hk * sl::conj(prev[k] * e);
                    ga[k] += q * dt;
                    sA += re_of(q * sl::conj(a[k]));
                    sB += re_of(hk * sl::conj(b_row[k]));
                    sl::atomic_add(&gb_row[k], hk * du);
                    h[k] = sl::conj(e) * hk;
                }
            gu[ch * l + t] = go * Dc + dt * sB;
            R gdt = sA + uv * sB;
            if (softplus_) gdt = gdt * sigmoid(d_row[t] + bc);
            gdelta[ch * l + t] = gdt;
            gb_acc += gdt;
        }
    }
#pragma unroll
    for (int k = 0; k < NMAX; ++k)
        if (k < n) sl::atomic_add(&gA[(long long)c * n + k], ga[k]);
    sl::atomic_add(&gD[c], gD_acc);
    sl::atomic_add(&gbias[c], gb_acc);
}
