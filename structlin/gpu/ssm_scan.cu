// The diagonal state-space scan: per (batch, channel) row r of u (R x L, channel h = r % H),
//
//     x_t = ab[h] * x_{t-1} + bb[h] u_t   (complex, N modes; x_{-1} = x0[r])
//     y_t = 2 Re(sum_n c[h, n] x_t[n]) + d[h] u_t,        xT[r] = x_{L-1}
//
// Work split: a row's modes are split into groups of G consecutive modes, one group per
// thread (its G complex states in registers); a block holds ROWS rows x NG groups
// (blockDim = ROWS * NG). The time loop runs in chunks of T steps: the block stages the
// chunk's inputs of its rows in shared memory (coalesced along time), each thread runs the T
// steps of its modes and writes its partial sums of 2 Re(c x_t) to shared memory (stride T + 1:
// the NG groups of one step sit in different banks), then the block sums the NG partials of
// every (row, step) and writes y coalesced along time. A launch covers modes [n0, n0 + nm)
// (at most NG_MAX * G of them); more modes take further launches that add into y
// (first == 0), so any N works with the same shared memory.
//
// The VJP's launcher runs this kernel once more, on the output gradient reversed in time with
// the adjoint's parameters (see structlin/gpu/ssm_scan.py), and sens_kernel below for the
// parameter gradients.
#include "_common.cuh"

namespace {

constexpr int G = 4;    // modes per thread
constexpr int T = 32;   // time steps per chunk
constexpr int TP = T + 1;

template <typename R>
__global__ void scan_kernel(const sl::complex<R>* __restrict__ ab,
                            const sl::complex<R>* __restrict__ bb,
                            const sl::complex<R>* __restrict__ c, const R* __restrict__ d,
                            const R* __restrict__ u, const sl::complex<R>* __restrict__ x0,
                            R* __restrict__ y, sl::complex<R>* __restrict__ xT,
                            long long rows, int H, int N, int L, int n0, int nm, int ng,
                            int rows_per_block, int first) {
    R* us = reinterpret_cast<R*>(sl_shared);           // rows_per_block x T
    R* part = us + rows_per_block * T;                 // rows_per_block x ng x TP
    const int tid = (int)threadIdx.x;
    const int nthreads = (int)blockDim.x;
    const int lr = tid / ng;
    const int gi = tid - lr * ng;
    const long long row0 = (long long)blockIdx.x * rows_per_block;
    const long long r = row0 + lr;
    const bool live = r < rows;
    const int h = live ? (int)(r % H) : 0;
    R ar[G], ai[G], br[G], bi[G], cr[G], ci[G], xr[G], xi[G];
#pragma unroll
    for (int k = 0; k < G; ++k) {
        const int m = gi * G + k;
        const bool ok = live && m < nm;
        const int n = n0 + m;
        const sl::complex<R> a = ok ? ab[(long long)h * N + n] : sl::complex<R>(R(0));
        const sl::complex<R> b = ok ? bb[(long long)h * N + n] : sl::complex<R>(R(0));
        const sl::complex<R> cc = ok ? c[(long long)h * N + n] : sl::complex<R>(R(0));
        const sl::complex<R> x = ok ? x0[r * N + n] : sl::complex<R>(R(0));
        ar[k] = a.re; ai[k] = a.im; br[k] = b.re; bi[k] = b.im;
        cr[k] = cc.re; ci[k] = cc.im; xr[k] = x.re; xi[k] = x.im;
    }
    for (int t0 = 0; t0 < L; t0 += T) {
        const int cnt = sl::imin(T, L - t0);
        for (int idx = tid; idx < rows_per_block * T; idx += nthreads) {
            const int row = idx / T;
            const int j = idx - row * T;
            const long long rr = row0 + row;
            us[idx] = (rr < rows && j < cnt) ? u[rr * L + t0 + j] : R(0);
        }
        __syncthreads();
        for (int j = 0; j < cnt; ++j) {
            const R ut = us[lr * T + j];
            R acc = R(0);
#pragma unroll
            for (int k = 0; k < G; ++k) {
                const R pr = ar[k] * xr[k] - ai[k] * xi[k] + br[k] * ut;
                const R pi = ar[k] * xi[k] + ai[k] * xr[k] + bi[k] * ut;
                xr[k] = pr;
                xi[k] = pi;
                acc += cr[k] * pr - ci[k] * pi;
            }
            part[(lr * ng + gi) * TP + j] = acc;
        }
        __syncthreads();
        for (int idx = tid; idx < rows_per_block * T; idx += nthreads) {
            const int row = idx / T;
            const int j = idx - row * T;
            const long long rr = row0 + row;
            if (rr < rows && j < cnt) {
                R s = R(0);
                for (int q = 0; q < ng; ++q) s += part[(row * ng + q) * TP + j];
                const long long at = rr * L + t0 + j;
                if (first)
                    y[at] = R(2) * s + d[rr % H] * us[idx];
                else
                    y[at] += R(2) * s;
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int k = 0; k < G; ++k) {
        const int m = gi * G + k;
        if (live && m < nm) xT[r * N + n0 + m] = sl::complex<R>(xr[k], xi[k]);
    }
}

// The parameter gradients of the scan by forward-mode sensitivities, one thread per (row,
// group of G modes), no shared memory: with w_t = dx_t/dab = ab w_{t-1} + x_{t-1} and
// v_t = dx_t/dbb = ab v_{t-1} + u_t (x is holomorphic in ab and bb),
//
//     gab = 2 conj(c) sum_t g_t conj(w_t),  gbb = 2 conj(c) sum_t g_t conj(v_t),
//     gc  = 2 sum_t g_t conj(x_t)
//
// (the reverse-time adjoint lam_t = 2 g_t conj(c) + conj(ab) lam_{t+1} summed against
// conj(x_{t-1}) and u_t, reordered into forward sums): three complex states per mode, no
// stored or recomputed states. The ng threads of a row read the same u_t and g_t (broadcast
// through the cache).
template <typename R>
__global__ void sens_kernel(const sl::complex<R>* __restrict__ ab,
                            const sl::complex<R>* __restrict__ bb,
                            const sl::complex<R>* __restrict__ c, const R* __restrict__ u,
                            const sl::complex<R>* __restrict__ x0, const R* __restrict__ g,
                            sl::complex<R>* __restrict__ gab, sl::complex<R>* __restrict__ gbb,
                            sl::complex<R>* __restrict__ gc, long long rows, int H, int N,
                            int L, int ng) {
    const long long id = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long r = id / ng;
    if (r >= rows) return;
    const int gi = (int)(id - r * ng);
    const int h = (int)(r % H);
    R ar[G], ai[G], br[G], bi[G], xr[G], xi[G], wr[G], wi[G], vr[G], vi[G];
    R sar[G], sai[G], sbr[G], sbi[G], scr[G], sci[G];
#pragma unroll
    for (int k = 0; k < G; ++k) {
        const int n = gi * G + k;
        const bool ok = n < N;
        const sl::complex<R> a = ok ? ab[(long long)h * N + n] : sl::complex<R>(R(0));
        const sl::complex<R> b = ok ? bb[(long long)h * N + n] : sl::complex<R>(R(0));
        const sl::complex<R> x = ok ? x0[r * N + n] : sl::complex<R>(R(0));
        ar[k] = a.re; ai[k] = a.im; br[k] = b.re; bi[k] = b.im; xr[k] = x.re; xi[k] = x.im;
        wr[k] = wi[k] = vr[k] = vi[k] = R(0);
        sar[k] = sai[k] = sbr[k] = sbi[k] = scr[k] = sci[k] = R(0);
    }
    const R* ur = u + r * L;
    const R* gr = g + r * L;
    for (int t = 0; t < L; ++t) {
        const R ut = ur[t];
        const R gt = gr[t];
#pragma unroll
        for (int k = 0; k < G; ++k) {
            const R nwr = ar[k] * wr[k] - ai[k] * wi[k] + xr[k];
            const R nwi = ar[k] * wi[k] + ai[k] * wr[k] + xi[k];
            const R nxr = ar[k] * xr[k] - ai[k] * xi[k] + br[k] * ut;
            const R nxi = ar[k] * xi[k] + ai[k] * xr[k] + bi[k] * ut;
            const R nvr = ar[k] * vr[k] - ai[k] * vi[k] + ut;
            const R nvi = ar[k] * vi[k] + ai[k] * vr[k];
            wr[k] = nwr; wi[k] = nwi; xr[k] = nxr; xi[k] = nxi; vr[k] = nvr; vi[k] = nvi;
            sar[k] += gt * nwr; sai[k] -= gt * nwi;
            sbr[k] += gt * nvr; sbi[k] -= gt * nvi;
            scr[k] += gt * nxr; sci[k] -= gt * nxi;
        }
    }
#pragma unroll
    for (int k = 0; k < G; ++k) {
        const int n = gi * G + k;
        if (n >= N) continue;
        const sl::complex<R> cc = c[(long long)h * N + n];
        // 2 conj(c) s
        const R cr = R(2) * cc.re, ci = -R(2) * cc.im;
        gab[r * N + n] = sl::complex<R>(cr * sar[k] - ci * sai[k], cr * sai[k] + ci * sar[k]);
        gbb[r * N + n] = sl::complex<R>(cr * sbr[k] - ci * sbi[k], cr * sbi[k] + ci * sbr[k]);
        gc[r * N + n] = sl::complex<R>(R(2) * scr[k], R(2) * sci[k]);
    }
}

}  // namespace
