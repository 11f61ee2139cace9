// GKO: Gaussian elimination with partial pivoting on Cauchy-like matrices, one system per
// block. For system b (C[i, j] = sum_q g[q, i] h[q, j] / (s_i - t_j)):
//
//   step j:  l_i = (sum_q g[q, i] h[q, j]) / (s_i - t_j), i >= j       (threads over i)
//            p = argmax |Re l_i| + |Im l_i| (smallest index on ties; NaN never chosen)
//            swap s, l, g[:, .], bb[:, .] at j and p; piv = l_j
//            u_m = (sum_q g[q, j] h[q, m]) / (s_j - t_m), m > j: U[j, m] = u_m,
//            h[q, m] -= (u_m / piv) h[q, j];   g[q, i] -= (l_i / piv) g[q, j],
//            bb[q, i] -= (l_i / piv) bb[q, j]                               (i, m > j)
//   then back substitution with U, column by column (threads over the rows above).
//
// Working arrays (written; the launcher passes copies): s (B, n), g and h (B, r, n), bb (B, k,
// n), l (B, n), U (B, n (n + 1) / 2) packed upper triangle by rows. Read only: t (Bt, n) with
// Bt = 1 or B (t_all). Outputs x (B, k, n), sign (B,) of the element type, logabs (B,) and
// pivots (B, n) of the real type, info (B,) (0, or j + 1 for an exactly zero pivot column:
// then x = NaN, sign = 0, logabs = -inf). Dynamic shared memory: THREADS reals and ints for the
// pivot search. Blocks are systems; everything a block touches is its own system's, so a NaN
// stays in its system.
#include "_common.cuh"

namespace {

constexpr int THREADS = 128;

template <typename T> struct real_of { using type = T; };
template <typename R> struct real_of<sl::complex<R>> { using type = R; };

__device__ __forceinline__ float mag1(float a) { return fabsf(a); }
__device__ __forceinline__ double mag1(double a) { return fabs(a); }
template <typename R>
__device__ __forceinline__ R mag1(sl::complex<R> a) { return fabs(a.re) + fabs(a.im); }

__device__ __forceinline__ double mag(float a) { return fabs((double)a); }
__device__ __forceinline__ double mag(double a) { return fabs(a); }
template <typename R>
__device__ __forceinline__ double mag(sl::complex<R> a) {
    return sqrt((double)a.re * a.re + (double)a.im * a.im);
}

__device__ __forceinline__ float recip(float d) { return 1.0f / d; }
__device__ __forceinline__ double recip(double d) { return 1.0 / d; }
template <typename R>
__device__ __forceinline__ sl::complex<R> recip(sl::complex<R> d) {
    const R inv = R(1) / (d.re * d.re + d.im * d.im);
    return sl::complex<R>(d.re * inv, -d.im * inv);
}

// the sign of the determinant: s * piv / |piv| (a real sign for real types)
__device__ __forceinline__ float times_unit(float s, float p) { return p < 0 ? -s : s; }
__device__ __forceinline__ double times_unit(double s, double p) { return p < 0 ? -s : s; }
template <typename R>
__device__ __forceinline__ sl::complex<R> times_unit(sl::complex<R> s, sl::complex<R> p) {
    const double m = mag(p);
    const sl::complex<R> u(R(p.re / m), R(p.im / m));
    return s * u;
}

template <typename T>
__device__ __forceinline__ void swap_values(T* a, long long i, long long j) {
    const T v = a[i];
    a[i] = a[j];
    a[j] = v;
}

}  // namespace

extern __shared__ __align__(16) unsigned char sl_shared[];

template <typename T>
__global__ void __launch_bounds__(THREADS)
    gko_kernel(const T* __restrict__ t_in, T* __restrict__ s_w, T* __restrict__ g_w,
               T* __restrict__ h_w, T* __restrict__ b_w, T* __restrict__ l_w,
               T* __restrict__ U_w, T* __restrict__ x, T* __restrict__ sign,
               typename real_of<T>::type* __restrict__ logabs,
               typename real_of<T>::type* __restrict__ pivots, int* __restrict__ info, int r,
               int k, int n, int t_all) {
    using R = typename real_of<T>::type;
    R* best_v = reinterpret_cast<R*>(sl_shared);
    int* best_i = reinterpret_cast<int*>(best_v + THREADS);
    const long long sys = blockIdx.x;
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const T* t = t_in + (t_all ? sys : 0LL) * n;
    T* s = s_w + sys * n;
    T* g = g_w + sys * (long long)r * n;
    T* h = h_w + sys * (long long)r * n;
    T* bb = b_w + sys * (long long)k * n;
    T* l = l_w + sys * n;
    T* U = U_w + sys * ((long long)n * (n + 1) / 2);
    T* xs = x + sys * (long long)k * n;
    R* pv = pivots + sys * n;
    T sgn(1);
    double la = 0.0;
    long long off = 0;
    for (int j = 0; j < n; ++j) {
        const T tj = t[j];
        R bv = R(-1);
        int bi = j;
        for (int i = j + tid; i < n; i += nt) {
            T num(0);
            for (int q = 0; q < r; ++q) num += g[(long long)q * n + i] * h[(long long)q * n + j];
            const T li = num * recip(s[i] - tj);
            l[i] = li;
            const R a = mag1(li);
            if (a > bv) {  // i increases: the first maximum of this thread is kept
                bv = a;
                bi = i;
            }
        }
        best_v[tid] = bv;
        best_i[tid] = bi;
        __syncthreads();
        for (int w = THREADS / 2; w > 0; w >>= 1) {
            if (tid < w) {
                const R ov = best_v[tid + w];
                const int oi = best_i[tid + w];
                if (ov > best_v[tid] || (ov == best_v[tid] && oi < best_i[tid])) {
                    best_v[tid] = ov;
                    best_i[tid] = oi;
                }
            }
            __syncthreads();
        }
        const R top = best_v[0];
        const int p = best_i[0];
        __syncthreads();  // everyone has read the result before the buffer is reused
        if (top == R(0)) {
            const R zero(0);
            for (int q = tid; q < k * n; q += nt) xs[q] = T(zero / zero);
            if (tid == 0) {
                sign[sys] = T(0);
                logabs[sys] = -R(1) / zero;
                info[sys] = j + 1;
            }
            return;
        }
        if (p != j) {
            if (tid == 0) {
                swap_values(s, j, p);
                swap_values(l, j, p);
            }
            for (int q = tid; q < r + k; q += nt) {
                T* row = q < r ? g + (long long)q * n : bb + (long long)(q - r) * n;
                swap_values(row, j, p);
            }
            __syncthreads();
        }
        const T piv = l[j];
        const T ip = recip(piv);
        const T sj = s[j];
        for (int m = j + 1 + tid; m < n; m += nt) {
            T num(0);
            for (int q = 0; q < r; ++q) num += g[(long long)q * n + j] * h[(long long)q * n + m];
            const T um = num * recip(sj - t[m]);
            U[off + (m - j)] = um;
            const T c = um * ip;
            for (int q = 0; q < r; ++q)
                h[(long long)q * n + m] = h[(long long)q * n + m] - c * h[(long long)q * n + j];
        }
        for (int i = j + 1 + tid; i < n; i += nt) {
            const T c = l[i] * ip;
            for (int q = 0; q < r; ++q)
                g[(long long)q * n + i] = g[(long long)q * n + i] - c * g[(long long)q * n + j];
            for (int q = 0; q < k; ++q)
                bb[(long long)q * n + i] = bb[(long long)q * n + i] - c * bb[(long long)q * n + j];
        }
        if (tid == 0) {
            U[off] = piv;
            const double m = mag(piv);
            pv[j] = R(m);
            la += log(m);
            if (p != j) sgn = T(0) - sgn;
            sgn = times_unit(sgn, piv);
        }
        off += n - j;
        __syncthreads();
    }
    // back substitution, column j from the last: x_j = bb_j / U[j, j], then the rows above
    for (int j = n - 1; j >= 0; --j) {
        off -= n - j;
        const T d = recip(U[off]);
        for (int q = tid; q < k; q += nt) xs[(long long)q * n + j] = bb[(long long)q * n + j] * d;
        __syncthreads();
        for (int e = tid; e < k * j; e += nt) {
            const int q = e / j;
            const int i = e - q * j;
            const long long oi = (long long)i * n - (long long)i * (i - 1) / 2;
            bb[(long long)q * n + i] =
                bb[(long long)q * n + i] - U[oi + (j - i)] * xs[(long long)q * n + j];
        }
        __syncthreads();
    }
    if (tid == 0) {
        sign[sys] = sgn;
        logabs[sys] = R(la);
        info[sys] = 0;
    }
}
