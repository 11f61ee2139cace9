// Pre- and post-processing of the butterfly DCT/DST (launchers in butterfly_special.py).
//
// Data are real rows: x3 is (batch, n, c) real with c = 1 (real data) or 2 (the interleaved
// real and imaginary parts of complex data); real row `row = r * c + q` is part q of row r.
// The complex work array u / v is (batch * c, m). One thread per output element, grid-stride
// loops; the index arrays (int64) and weights (complex, the precision of the data) are read
// through the read-only cache. The transposes scatter-add with atomics because an index may
// repeat (type 4 reads every butterfly output twice).
#include "_common.cuh"

// u[row, i] = wa[i] * x3[r, ia[i], q] (+ wb[i] * x3[r, ib[i], q] when `two`)
template <typename R>
__global__ void special_gather(const R* __restrict__ x, const long long* __restrict__ ia,
                               const sl::complex<R>* __restrict__ wa,
                               const long long* __restrict__ ib,
                               const sl::complex<R>* __restrict__ wb, sl::complex<R>* u,
                               long long batch, long long n, int c, long long m, int two) {
    const long long total = batch * c * m;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const long long row = t / m;
        const long long i = t - row * m;
        const long long r = row / c;
        const long long q = row - r * c;
        const R* xr = x + r * n * c + q;
        const sl::complex<R> w = wa[i];
        const R a = xr[ia[i] * c];
        sl::complex<R> v(w.re * a, w.im * a);
        if (two) {
            const sl::complex<R> w2 = wb[i];
            const R b = xr[ib[i] * c];
            v.re += w2.re * b;
            v.im += w2.im * b;
        }
        u[t] = v;
    }
}

// y3[r, k, q] = Re(cw[k] * v[row, ic[k]])
template <typename R>
__global__ void special_take_real(const sl::complex<R>* __restrict__ v,
                                  const long long* __restrict__ ic,
                                  const sl::complex<R>* __restrict__ cw, R* y, long long batch,
                                  long long N, int c, long long m) {
    const long long total = batch * N * c;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const long long rk = t / c;
        const long long q = t - rk * c;
        const long long r = rk / N;
        const long long k = rk - r * N;
        const sl::complex<R> z = v[(r * c + q) * m + ic[k]];
        const sl::complex<R> w = cw[k];
        y[t] = w.re * z.re - w.im * z.im;
    }
}

// transpose of special_take_real: u[row, ic[k]] += conj(cw[k]) * g3[r, k, q] (u zeroed)
template <typename R>
__global__ void special_take_real_transpose(const R* __restrict__ g,
                                            const long long* __restrict__ ic,
                                            const sl::complex<R>* __restrict__ cw,
                                            sl::complex<R>* u, long long batch, long long N,
                                            int c, long long m) {
    const long long total = batch * N * c;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const long long rk = t / c;
        const long long q = t - rk * c;
        const long long r = rk / N;
        const long long k = rk - r * N;
        const sl::complex<R> w = cw[k];
        const R a = g[t];
        sl::atomic_add(u + (r * c + q) * m + ic[k], sl::complex<R>(w.re * a, -w.im * a));
    }
}

// transpose of special_gather: x3[r, ia[i], q] += Re(conj(wa[i]) * u[row, i]) (x3 zeroed)
template <typename R>
__global__ void special_gather_transpose(const sl::complex<R>* __restrict__ u,
                                         const long long* __restrict__ ia,
                                         const sl::complex<R>* __restrict__ wa,
                                         const long long* __restrict__ ib,
                                         const sl::complex<R>* __restrict__ wb, R* x,
                                         long long batch, long long n, int c, long long m,
                                         int two) {
    const long long total = batch * c * m;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const long long row = t / m;
        const long long i = t - row * m;
        const long long r = row / c;
        const long long q = row - r * c;
        R* xr = x + r * n * c + q;
        const sl::complex<R> z = u[t];
        const sl::complex<R> w = wa[i];
        sl::atomic_add(xr + ia[i] * c, w.re * z.re + w.im * z.im);
        if (two) {
            const sl::complex<R> w2 = wb[i];
            sl::atomic_add(xr + ib[i] * c, w2.re * z.re + w2.im * z.im);
        }
    }
}

// Packed gather for real weights: real rows 2p and 2p+1 (order r * c + q) become the real and
// imaginary parts of complex row p (an odd last row gets a zero imaginary part).
template <typename R>
__global__ void special_gather_packed(const R* __restrict__ x, const long long* __restrict__ ia,
                                      const sl::complex<R>* __restrict__ wa,
                                      const long long* __restrict__ ib,
                                      const sl::complex<R>* __restrict__ wb, sl::complex<R>* u,
                                      long long batch, long long n, int c, long long m,
                                      int two) {
    const long long rows = batch * c;
    const long long total = (rows + 1) / 2 * m;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const long long p = t / m;
        const long long i = t - p * m;
        const long long ra = 2 * p;
        const bool has_b = ra + 1 < rows;
        const long long rb = has_b ? ra + 1 : ra;
        const R* xa = x + (ra / c) * n * c + (ra % c);
        const R* xb = x + (rb / c) * n * c + (rb % c);
        R w = wa[i].re;
        R re = w * xa[ia[i] * c];
        R im = w * xb[ia[i] * c];
        if (two) {
            w = wb[i].re;
            re += w * xa[ib[i] * c];
            im += w * xb[ib[i] * c];
        }
        u[t] = sl::complex<R>(re, has_b ? im : R(0));
    }
}

// Packed post-processing: V_a[j] = (V[j] + conj(V[-j])) / 2, V_b[j] = (V[j] - conj(V[-j])) / 2i
// separate the two real rows of complex row p; y3[row, k] = Re(cw[k] V_row[ic[k]]).
template <typename R>
__global__ void special_take_real_packed(const sl::complex<R>* __restrict__ v,
                                         const long long* __restrict__ ic,
                                         const sl::complex<R>* __restrict__ cw, R* y,
                                         long long batch, long long N, int c, long long m) {
    const long long rows = batch * c;
    const long long total = (rows + 1) / 2 * N;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const long long p = t / N;
        const long long k = t - p * N;
        const long long ra = 2 * p;
        const long long j = ic[k];
        const sl::complex<R> z = v[p * m + j];
        const sl::complex<R> zm = sl::conj(v[p * m + (m - j) % m]);
        const sl::complex<R> w = cw[k];
        const R ar = R(0.5) * (z.re + zm.re);
        const R ai = R(0.5) * (z.im + zm.im);
        y[((ra / c) * N + k) * c + (ra % c)] = w.re * ar - w.im * ai;
        if (ra + 1 < rows) {
            const R dr = R(0.5) * (z.re - zm.re);
            const R di = R(0.5) * (z.im - zm.im);
            const long long rb = ra + 1;
            y[((rb / c) * N + k) * c + (rb % c)] = w.re * di + w.im * dr;
        }
    }
}
