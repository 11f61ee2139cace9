// Mamba-2's SSD: the chunked scan of a scalar-decay SSM (= a semiseparable product), as a few
// small kernels launched in sequence by ssd.py (the VJP runs the same scan with the roles of
// its arguments exchanged).
//
// Layouts (C-contiguous): x, y (nb, l, h, p); a (nb, l, h); b, c (nb, l, g, n) with head k
// reading group k / (h / g); states (nb, h, nc, n, p) (each state transposed, S^T, so that its
// rows run along p) with nc = ceil(l / chunk); u (nb, l, h)
// scratch of the per-chunk cumulative log-decays; tot (nb, h, nc) their chunk totals.
//
// Chunk k covers positions [k chunk, min(l, (k + 1) chunk)); "processing order" is forward
// (reverse = 0) or backward (reverse = 1) inside the chunk, and in the backward scan step t
// is decayed by a[t + 1] (a[l] = 0).
//
//   ssd_cumsum        one thread per (b, h, chunk): u in processing order, tot
//   ssd_block_product one block per (b, h, chunk), the diagonal block of the semiseparable
//                     product in processing order:
//                       out_r = sum_{s <= r} (P_r . Q_s) exp(u_r - u_s) V_s
//                     tiles of RI x RJ weights in shared memory, each used for all columns
//   ssd_chunk_state   one block per (b, h, chunk): the chunk's own state
//                       sum_r exp(u_last - u_r) b_r x_r^T  (n x p)
//   ssd_pass          one thread per (b, h, state entry): the recurrence over chunks; each
//                     chunk's slot is overwritten by the state entering it
//   ssd_state_term    one block per (b, h, chunk): y_r += exp(u_r) sum_k c_r[k] S^T[k, col]
//                     with S the state entering the chunk
//
// Segment sums are differences of cumulative sums inside one chunk, so exp() only sees
// non-positive arguments for a <= 0, for any chunk size. Unverified: compiled by NVRTC and run
// in the host emulator (tests/test_gpu_compile_ssd.py), never on a GPU.
#include "_common.cuh"

extern __shared__ __align__(16) unsigned char sl_shared[];

namespace {

constexpr int THREADS = 128;
constexpr int RI = 16;  // rows of a weight tile
constexpr int RJ = 32;  // columns of a weight tile

__device__ __forceinline__ float ex(float v) { return expf(v); }
__device__ __forceinline__ double ex(double v) { return exp(v); }
// floor of a log-decay step: exp of it is exactly 0 already, and clamping keeps a -inf step (a
// reset) from making -inf - -inf = NaN in the differences of the cumulative sums after it
__device__ __forceinline__ float decay_floor(float) { return -110.0f; }
__device__ __forceinline__ double decay_floor(double) { return -800.0; }

struct Chunk {
    long long bi, hi, k, t0;
    int q;
};

__device__ __forceinline__ Chunk chunk_of(long long task, int h, int nc, int l, int chunk) {
    Chunk ch;
    ch.k = task % nc;
    ch.hi = (task / nc) % h;
    ch.bi = task / ((long long)nc * h);
    ch.t0 = ch.k * (long long)chunk;
    long long t1 = ch.t0 + chunk < l ? ch.t0 + chunk : l;
    ch.q = (int)(t1 - ch.t0);
    return ch;
}

__device__ __forceinline__ long long position(const Chunk& ch, int i, int reverse) {
    return reverse ? ch.t0 + ch.q - 1 - i : ch.t0 + i;
}

// element offset of row (bi, t) of an (nb, l, hx, w) array for head hi of h
__device__ __forceinline__ long long row(long long bi, long long t, long long hi, int l, int h,
                                         int hx, int w) {
    return ((bi * l + t) * hx + hi / (h / hx)) * (long long)w;
}

}  // namespace

template <typename T>
__global__ void ssd_cumsum(const T* __restrict__ a, T* __restrict__ u, T* __restrict__ tot,
                           long long tasks, int l, int h, int chunk, int nc, int reverse) {
    const long long task = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (task >= tasks) return;
    const Chunk ch = chunk_of(task, h, nc, l, chunk);
    T acc = T(0);
    for (int i = 0; i < ch.q; ++i) {
        const long long t = position(ch, i, reverse);
        T av;
        if (reverse)
            av = t + 1 < l ? a[(ch.bi * l + t + 1) * h + ch.hi] : T(0);
        else
            av = a[(ch.bi * l + t) * h + ch.hi];
        if (av < decay_floor(av)) av = decay_floor(av);  // NaN stays NaN
        acc += av;
        u[(ch.bi * l + t) * h + ch.hi] = acc;
    }
    tot[(ch.bi * h + ch.hi) * nc + ch.k] = acc;
}

template <typename T>
__global__ void __launch_bounds__(THREADS)
ssd_block_product(const T* __restrict__ P, int hp, const T* __restrict__ Q, int hq, int wpq,
                  const T* __restrict__ V, int hv, int wv, const T* __restrict__ u,
                  T* __restrict__ out, int l, int h, int chunk, int nc, int reverse) {
    T* wt = reinterpret_cast<T*>(sl_shared);  // RI x RJ weights
    const Chunk ch = chunk_of(blockIdx.x, h, nc, l, chunk);
    const int tid = threadIdx.x;
    for (int i0 = 0; i0 < ch.q; i0 += RI) {
        const int jhi = i0 + RI < ch.q ? i0 + RI : ch.q;
        for (int j0 = 0; j0 < jhi; j0 += RJ) {
            for (int e = tid; e < RI * RJ; e += THREADS) {
                const int i = i0 + e / RJ;
                const int j = j0 + e % RJ;
                T w = T(0);
                if (i < ch.q && j <= i) {
                    const long long ti = position(ch, i, reverse);
                    const long long tj = position(ch, j, reverse);
                    const T* pr = P + row(ch.bi, ti, ch.hi, l, h, hp, wpq);
                    const T* qr = Q + row(ch.bi, tj, ch.hi, l, h, hq, wpq);
                    T dot = T(0);
                    for (int m = 0; m < wpq; ++m) dot += pr[m] * qr[m];
                    const T ui = u[(ch.bi * l + ti) * h + ch.hi];
                    const T uj = u[(ch.bi * l + tj) * h + ch.hi];
                    w = dot * ex(ui - uj);
                }
                wt[e] = w;
            }
            __syncthreads();
            for (int o = tid; o < RI * wv; o += THREADS) {
                const int ri = o / wv;
                const int col = o % wv;
                const int i = i0 + ri;
                if (i >= ch.q) continue;
                T s = T(0);
                for (int rj = 0; rj < RJ; ++rj) {
                    const int j = j0 + rj;
                    if (j >= ch.q) break;
                    const long long tj = position(ch, j, reverse);
                    s += wt[ri * RJ + rj] * V[row(ch.bi, tj, ch.hi, l, h, hv, wv) + col];
                }
                T* dst = out + row(ch.bi, position(ch, i, reverse), ch.hi, l, h, h, wv) + col;
                if (j0 == 0)
                    *dst = s;
                else
                    *dst += s;
            }
            __syncthreads();
        }
    }
}

template <typename T>
__global__ void __launch_bounds__(THREADS)
ssd_chunk_state(const T* __restrict__ x, const T* __restrict__ b, const T* __restrict__ u,
                T* __restrict__ states, int l, int h, int g, int p, int n, int chunk, int nc,
                int reverse) {
    const Chunk ch = chunk_of(blockIdx.x, h, nc, l, chunk);
    const long long ulast = (ch.bi * l + position(ch, ch.q - 1, reverse)) * h + ch.hi;
    T* st = states + ((ch.bi * h + ch.hi) * nc + ch.k) * (long long)p * n;
    for (int e = threadIdx.x; e < p * n; e += THREADS) {
        const int ni = e / p;
        const int pi = e % p;
        T s = T(0);
        for (int i = 0; i < ch.q; ++i) {
            const long long t = position(ch, i, reverse);
            const T w = ex(u[ulast] - u[(ch.bi * l + t) * h + ch.hi]);
            s += w * x[row(ch.bi, t, ch.hi, l, h, h, p) + pi] *
                 b[row(ch.bi, t, ch.hi, l, h, g, n) + ni];
        }
        st[e] = s;
    }
}

template <typename T>
__global__ void ssd_pass(const T* __restrict__ s0, const T* __restrict__ tot,
                         T* __restrict__ states, T* __restrict__ s_final, long long entries,
                         int nc, int pn, int reverse) {
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= entries) return;
    const long long head = e / pn;  // bi * h + hi
    const int k = (int)(e % pn);
    T s = s0[e];
    for (int kk = 0; kk < nc; ++kk) {
        const int ck = reverse ? nc - 1 - kk : kk;
        T* slot = states + (head * nc + ck) * pn + k;
        const T local = *slot;
        *slot = s;
        s = ex(tot[head * nc + ck]) * s + local;
    }
    s_final[e] = s;
}

template <typename T>
__global__ void __launch_bounds__(THREADS)
ssd_state_term(const T* __restrict__ c, int g, int n, const T* __restrict__ states,
               const T* __restrict__ u, T* __restrict__ y, int l, int h, int p, int chunk,
               int nc, int reverse) {
    const Chunk ch = chunk_of(blockIdx.x, h, nc, l, chunk);
    const T* st = states + ((ch.bi * h + ch.hi) * nc + ch.k) * (long long)p * n;  // (n, p)
    for (int o = threadIdx.x; o < ch.q * p; o += THREADS) {
        const int i = o / p;
        const int col = o % p;
        const long long t = position(ch, i, reverse);
        const T* cr = c + row(ch.bi, t, ch.hi, l, h, g, n);
        T s = T(0);
        for (int k = 0; k < n; ++k) s += cr[k] * st[(long long)k * p + col];
        y[row(ch.bi, t, ch.hi, l, h, h, p) + col] += ex(u[(ch.bi * l + t) * h + ch.hi]) * s;
    }
}
