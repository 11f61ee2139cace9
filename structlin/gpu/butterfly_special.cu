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
