// Batched Levinson-Trench-Zohar recursion for general Toeplitz systems, one system per block.
//
//     T[i, j] = c[i - j] (i >= j), r[j - i] (j > i);  solve T x = b for k right-hand sides
//
// c, r (B, n); b, x (B, n, k); reflection (B, n - 1); logdet, invnorm (B,) real; sign (B,);
// info (B,) int64; work (B, 4, n): the forward and backward vectors f = T_m^{-1} e_1 and
// g = T_m^{-1} e_m of the leading minors, twice (old and new, swapped every order).
// From order m to m + 1 (see structlin/_cpu/levinson.py, the same recursion):
//
//     ef = sum_{i<m} c[m - i] f[i],   eg = sum_{i<m} r[i + 1] g[i],   D = 1 - ef eg
//     f' = ([f; 0] - ef [0; g]) / D,  g' = ([0; g] - eg [f; 0]) / D,  delta *= D
//     x' = [x; 0] + (b[m] - sum_{i<m} c[m - i] x[i]) g'
//     reflection[m - 1] = -ef g[m - 1] / f[0]
//
// The THREADS threads of a block share the inner products (strided partial sums, then a
// tree reduction in shared memory) and the vector updates; the right-hand sides are taken in
// chunks of KC = min(k, THREADS) columns, each column's inner product split over
// P = THREADS / KC thread groups (x is read along its rows: consecutive threads, consecutive
// columns, coalesced). Thread 0 does the scalar work (pivot, breakdown test, log|det|) and
// broadcasts through shared memory; every thread leaves the loop together on a breakdown
// (|delta| <= tol * max|t|): info = the order of the singular minor, x = NaN. A row whose c
// or r holds NaN or infinity gets NaN results and info = 0.
// Shared memory: (2 THREADS + 8) elements and one int.
#include "_common.cuh"

namespace {

constexpr int THREADS = 128;

template <typename T>
struct real_of {
    using type = T;
};
template <typename R>
struct real_of<sl::complex<R>> {
    using type = R;
};

__device__ __forceinline__ float re_of(float a) { return a; }
__device__ __forceinline__ double re_of(double a) { return a; }
template <typename R>
__device__ __forceinline__ R re_of(sl::complex<R> a) {
    return a.re;
}

__device__ __forceinline__ float abs_of(float a) { return fabsf(a); }
__device__ __forceinline__ double abs_of(double a) { return fabs(a); }
template <typename R>
__device__ __forceinline__ R abs_of(sl::complex<R> a) {
    return hypot(a.re, a.im);
}

__device__ __forceinline__ float div_of(float a, float b) { return a / b; }
__device__ __forceinline__ double div_of(double a, double b) { return a / b; }
template <typename R>
__device__ __forceinline__ sl::complex<R> div_of(sl::complex<R> a, sl::complex<R> b) {
    const R inv = R(1) / (b.re * b.re + b.im * b.im);
    return sl::complex<R>((a.re * b.re + a.im * b.im) * inv, (a.im * b.re - a.re * b.im) * inv);
}

template <typename T>
__device__ __forceinline__ T scale_of(T a, typename real_of<T>::type s) {
    return a * T(s);
}

template <typename R>
__device__ __forceinline__ R quiet_nan() {
    R zero = R(0);
    return zero / zero;
}

// sum (or max, for MAX) of red[0:THREADS] and red[THREADS:2 THREADS] into red[0], red[THREADS]
template <typename T>
__device__ __forceinline__ void reduce_pair(T* red, int tid) {
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        __syncthreads();
        if (tid < s) {
            red[tid] += red[tid + s];
            red[THREADS + tid] += red[THREADS + tid + s];
        }
    }
    __syncthreads();
}

}  // namespace

template <typename T>
__global__ void __launch_bounds__(THREADS)
    levinson_kernel(const T* __restrict__ c_all, const T* __restrict__ r_all,
                    const T* __restrict__ b_all, T* __restrict__ x_all, T* __restrict__ refl_all,
                    typename real_of<T>::type* __restrict__ logdet, T* __restrict__ sign,
                    long long* __restrict__ info, typename real_of<T>::type* __restrict__ invnorm,
                    T* __restrict__ work, long long n, int k, double tol) {
    using R = typename real_of<T>::type;
    T* red = reinterpret_cast<T*>(sl_shared);
    T* sc = red + 2 * THREADS;
    int* flag = reinterpret_cast<int*>(sc + 8);
    const long long row = blockIdx.x;
    const int tid = threadIdx.x;
    const T* c = c_all + row * n;
    const T* r = r_all + row * n;
    const T* b = b_all + row * n * k;
    T* x = x_all + row * n * k;
    T* refl = refl_all + row * (n - 1);
    T* f = work + row * 4 * n;
    T* g = f + n;
    T* fn = g + n;
    T* gn = fn + n;

    // the largest |t_d| (the scale of the breakdown test), as a real part
    const R inf = R(1) / R(0);
    R mx = R(0);
    for (long long i = tid; i < n; i += THREADS) {
        const R a = abs_of(c[i]);
        mx = !(a < inf) ? inf : (a > mx ? a : mx);  // NaN or infinity: the row is not finite
        if (i > 0) {
            const R q = abs_of(r[i]);
            mx = !(q < inf) ? inf : (q > mx ? q : mx);
        }
    }
    red[tid] = T(mx);
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if (tid < s && re_of(red[tid + s]) > re_of(red[tid])) red[tid] = red[tid + s];
        __syncthreads();
    }
    const R thr = R(tol) * re_of(red[0]);
    for (long long i = tid; i < n - 1; i += THREADS) refl[i] = T(quiet_nan<R>());
    if (!(re_of(red[0]) < inf)) {  // NaN results in this row, as a dense solve gives
        for (long long q = tid; q < n * k; q += THREADS) x[q] = T(quiet_nan<R>());
        if (tid == 0) {
            info[row] = 0;
            logdet[row] = quiet_nan<R>();
            sign[row] = T(quiet_nan<R>());
            invnorm[row] = quiet_nan<R>();
        }
        return;
    }
    R ld = R(0);  // thread 0's running log|det| and sign
    T sg = T(R(1));
    T delta = c[0];
    if (tid == 0) {
        const R a = abs_of(delta);
        flag[0] = !(a > thr);
        if (flag[0]) {
            info[row] = 1;
            logdet[row] = a == R(0) ? -R(1) / R(0) : log(a);
            sign[row] = a == R(0) ? T(R(0)) : scale_of(delta, R(1) / a);
            invnorm[row] = R(1) / R(0);
        } else {
            ld = log(a);
            sg = scale_of(delta, R(1) / a);
        }
    }
    __syncthreads();
    bool broken = flag[0] != 0;
    if (!broken) {
        const T inv0 = div_of(T(R(1)), c[0]);
        if (tid == 0) {
            f[0] = inv0;
            g[0] = inv0;
        }
        for (long long q = tid; q < n * k; q += THREADS)
            x[q] = q < k ? b[q] * inv0 : T(R(0));
    }
    for (long long m = 1; m < n && !broken; ++m) {
        __syncthreads();
        T pf = T(R(0));
        T pg = T(R(0));
        for (long long i = tid; i < m; i += THREADS) {
            pf += c[m - i] * f[i];
            pg += r[i + 1] * g[i];
        }
        red[tid] = pf;
        red[THREADS + tid] = pg;
        reduce_pair(red, tid);
        if (tid == 0) {
            const T ef = red[0];
            const T eg = red[THREADS];
            const T D = T(R(1)) - ef * eg;
            refl[m - 1] = div_of(T(R(0)) - ef * g[m - 1], f[0]);
            delta = delta * D;
            const R a = abs_of(delta);
            flag[0] = !(a > thr);
            if (flag[0]) {
                info[row] = m + 1;
                logdet[row] = a == R(0) ? -R(1) / R(0) : ld + log(a);
                sign[row] = a == R(0) ? T(R(0)) : sg * scale_of(delta, R(1) / a);
                invnorm[row] = R(1) / R(0);
            } else {
                ld += log(a);
                sg = sg * scale_of(delta, R(1) / a);
            }
            sc[0] = ef;
            sc[1] = eg;
            sc[2] = div_of(T(R(1)), D);
        }
        __syncthreads();
        if (flag[0]) {
            broken = true;
            break;
        }
        const T ef = sc[0];
        const T eg = sc[1];
        const T inv = sc[2];
        for (long long i = tid; i <= m; i += THREADS) {
            const T fi = i < m ? f[i] : T(R(0));
            const T gi = i > 0 ? g[i - 1] : T(R(0));
            fn[i] = (fi - ef * gi) * inv;
            gn[i] = (gi - eg * fi) * inv;
        }
        __syncthreads();
        T* t = f;
        f = fn;
        fn = t;
        t = g;
        g = gn;
        gn = t;
        const int kc = k < THREADS ? (k > 0 ? k : 1) : THREADS;
        const int parts = THREADS / kc;
        const int p = tid / kc;
        const int jj = tid - p * kc;
        for (int j0 = 0; j0 < k; j0 += kc) {
            const int j = j0 + jj;
            const bool live = p < parts && j < k;
            T s = T(R(0));
            if (live)
                for (long long i = p; i < m; i += parts) s += c[m - i] * x[i * k + j];
            red[tid] = s;
            __syncthreads();
            if (tid < kc && j0 + tid < k) {
                T tot = T(R(0));
                for (int q = 0; q < parts; ++q) tot += red[q * kc + tid];
                red[THREADS + tid] = b[m * k + j0 + tid] - tot;
            }
            __syncthreads();
            if (live) {
                const T e = red[THREADS + jj];
                for (long long i = p; i <= m; i += parts) x[i * k + j] += e * g[i];
            }
            __syncthreads();
        }
    }
    __syncthreads();
    if (broken) {
        for (long long q = tid; q < n * k; q += THREADS) x[q] = T(quiet_nan<R>());
        return;
    }
    R af = R(0);
    R ag = R(0);
    for (long long i = tid; i < n; i += THREADS) {
        af += abs_of(f[i]);
        ag += abs_of(g[i]);
    }
    red[tid] = T(af);
    red[THREADS + tid] = T(ag);
    reduce_pair(red, tid);
    if (tid == 0) {
        const R a = re_of(red[0]);
        const R q = re_of(red[THREADS]);
        invnorm[row] = a > q ? a : q;
        logdet[row] = ld;
        sign[row] = sg;
        info[row] = 0;
    }
}
