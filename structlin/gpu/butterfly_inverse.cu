// Butterfly block inversion, log-determinant and the inverse's VJP: one thread per 2x2 block
// (grid-stride), block reductions in shared memory, one partial result per CUDA block.
//
// Every 2x2 block is widened to double / complex<double> and divided by its largest entry
// modulus m before ad - bc is formed, so that the determinant neither overflows nor
// underflows; the logarithms are summed and the unit signs multiplied in double.
#include "_common.cuh"

namespace {

template <typename T>
struct Wide {
    using type = double;
};
template <typename R>
struct Wide<sl::complex<R>> {
    using type = sl::complex<double>;
};

__device__ __forceinline__ double widen(float a) { return a; }
__device__ __forceinline__ double widen(double a) { return a; }
template <typename R>
__device__ __forceinline__ sl::complex<double> widen(sl::complex<R> a) {
    return sl::complex<double>(a.re, a.im);
}

__device__ __forceinline__ void store(float* p, double v) { *p = (float)v; }
__device__ __forceinline__ void store(double* p, double v) { *p = v; }
template <typename R>
__device__ __forceinline__ void store(sl::complex<R>* p, sl::complex<double> v) {
    *p = sl::complex<R>((R)v.re, (R)v.im);
}

__device__ __forceinline__ double modulus(double a) { return fabs(a); }
__device__ __forceinline__ double modulus(sl::complex<double> a) { return hypot(a.re, a.im); }
// |Re| + |Im|, the modulus LAPACK's condition estimators use (and the Numba kernels)
__device__ __forceinline__ double cabs1(double a) { return fabs(a); }
__device__ __forceinline__ double cabs1(sl::complex<double> a) { return fabs(a.re) + fabs(a.im); }

// NaN when a is NaN or infinite (x - x), 0 otherwise; reduced to a double
__device__ __forceinline__ double nonfinite(double a) { return a - a; }
__device__ __forceinline__ double nonfinite(sl::complex<double> a) {
    return (a.re - a.re) + (a.im - a.im);
}

__device__ __forceinline__ double scaled(double a, double s) { return a * s; }
__device__ __forceinline__ sl::complex<double> scaled(sl::complex<double> a, double s) {
    return sl::complex<double>(a.re * s, a.im * s);
}

__device__ __forceinline__ double recip(double a) { return 1.0 / a; }
// Smith's algorithm: no overflow or underflow of |a|^2
__device__ __forceinline__ sl::complex<double> recip(sl::complex<double> a) {
    if (fabs(a.re) >= fabs(a.im)) {
        const double r = a.im / a.re;
        const double d = a.re + a.im * r;
        return sl::complex<double>(1.0 / d, -r / d);
    }
    const double r = a.re / a.im;
    const double d = a.re * r + a.im;
    return sl::complex<double>(r / d, -1.0 / d);
}

// Block i widened and scaled by 1/m. status: 0 fine, 1 all zero, -1 NaN or infinity.
template <typename T, typename W>
__device__ __forceinline__ int load_block(const T* tw, long long i, W& a, W& b, W& c, W& d,
                                          double& m) {
    const T* p = tw + 4 * i;
    a = widen(p[0]);
    b = widen(p[1]);
    c = widen(p[2]);
    d = widen(p[3]);
    const double z = nonfinite(a) + nonfinite(b) + nonfinite(c) + nonfinite(d);
    if (z != z) return -1;
    m = fmax(fmax(modulus(a), modulus(b)), fmax(modulus(c), modulus(d)));
    if (m == 0.0) return 1;
    const double s = 1.0 / m;
    a = scaled(a, s);
    b = scaled(b, s);
    c = scaled(c, s);
    d = scaled(d, s);
    return 0;
}

}  // namespace

// out[i] = scale * T_i^-1 (scale * T_i^-H when adjoint) for the nb blocks T_i of tw.
// part_rcond[blockIdx.x], part_index[blockIdx.x]: the smallest reciprocal condition number
// 1 / (||T||_1 ||T^-1||_1) (entry moduli |Re| + |Im|) over this CUDA block's 2x2 blocks and the first index reaching it
// (0 for a singular block, -1 for one with NaN or infinity, whose output is zeroed).
// Shared memory: blockDim.x * 16 bytes; blockDim.x a power of two.
template <typename T>
__global__ void __launch_bounds__(256)
    butterfly_invert_blocks(const T* __restrict__ tw, T* __restrict__ out, long long nb,
                            double scale, int adjoint, double* part_rcond,
                            long long* part_index) {
    using W = typename Wide<T>::type;
    double best = 2.0;  // above any reciprocal condition number
    long long best_i = -1;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < nb; i += step) {
        W a, b, c, d;
        double m = 0.0;
        const int status = load_block(tw, i, a, b, c, d, m);
        double r = status < 0 ? -1.0 : 0.0;
        T* o = out + 4 * i;
        const W det = a * d - b * c;
        const double ad = status == 0 ? modulus(det) : 0.0;
        if (ad != 0.0) {
            const double aa = cabs1(a), ab = cabs1(b), ac = cabs1(c), dd = cabs1(d);
            // ||T^-1||_1 = ||adj T||_1 / |det| = ||T||_inf / |det| for a 2x2 block
            r = ad / (fmax(aa + ac, ab + dd) * fmax(aa + ab, ac + dd));
            const W f = scaled(recip(det), scale / m);
            const W i00 = d * f;
            const W i01 = (W(0.0) - b) * f;
            const W i10 = (W(0.0) - c) * f;
            const W i11 = a * f;
            if (adjoint) {
                store(o + 0, sl::conj(i00));
                store(o + 1, sl::conj(i10));
                store(o + 2, sl::conj(i01));
                store(o + 3, sl::conj(i11));
            } else {
                store(o + 0, i00);
                store(o + 1, i01);
                store(o + 2, i10);
                store(o + 3, i11);
            }
        } else {
            for (int q = 0; q < 4; ++q) store(o + q, W(0.0));
        }
        if (r < best) {  // i grows along a thread's loop: the first block reaching r is kept
            best = r;
            best_i = i;
        }
    }
    double* sr = reinterpret_cast<double*>(sl_shared);
    long long* si = reinterpret_cast<long long*>(sr + blockDim.x);
    sr[threadIdx.x] = best;
    si[threadIdx.x] = best_i;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            const double r2 = sr[threadIdx.x + s];
            const long long i2 = si[threadIdx.x + s];
            const double r1 = sr[threadIdx.x];
            const long long i1 = si[threadIdx.x];
            if (r2 < r1 || (r2 == r1 && i2 >= 0 && (i1 < 0 || i2 < i1))) {
                sr[threadIdx.x] = r2;
                si[threadIdx.x] = i2;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        part_rcond[blockIdx.x] = sr[0];
        part_index[blockIdx.x] = si[0];
    }
}

// part_log[blockIdx.x] = sum of log|det T_i| (-inf if a block is singular, NaN if an entry is
// not finite) and part_sign[blockIdx.x] = prod det T_i / |det T_i| (0 if singular) over this
// CUDA block's share of the nb blocks of tw. Shared memory: blockDim.x * (8 + sizeof(W)).
template <typename T>
__global__ void __launch_bounds__(256)
    butterfly_slogdet_blocks(const T* __restrict__ tw, long long nb, double* part_log,
                             typename Wide<T>::type* part_sign) {
    using W = typename Wide<T>::type;
    double acc = 0.0;
    W unit(1.0);
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < nb; i += step) {
        W a, b, c, d;
        double m = 0.0;
        const int status = load_block(tw, i, a, b, c, d, m);
        if (status < 0) {
            acc += nonfinite(a) + nonfinite(b) + nonfinite(c) + nonfinite(d);  // NaN
            continue;
        }
        const W det = a * d - b * c;
        const double ad = status == 0 ? modulus(det) : 0.0;
        if (ad == 0.0) {
            acc += log(ad);  // -inf
            unit = W(0.0);
            continue;
        }
        acc += 2.0 * log(m) + log(ad);
        // a product of unit numbers (exactly +-1 for real data): no overflow, no drift
        unit = unit * scaled(det, 1.0 / ad);
    }
    double* sl_log = reinterpret_cast<double*>(sl_shared);
    W* su = reinterpret_cast<W*>(sl_log + blockDim.x);
    sl_log[threadIdx.x] = acc;
    su[threadIdx.x] = unit;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            sl_log[threadIdx.x] += sl_log[threadIdx.x + s];
            su[threadIdx.x] = su[threadIdx.x] * su[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        part_log[blockIdx.x] = sl_log[0];
        part_sign[blockIdx.x] = su[0];
    }
}

// out[i] = -V_i^H G_i V_i^H: the gradient of a block T_i = V_i^-1 given the gradient G_i of
// its inverse V_i (PyTorch's convention for complex gradients).
template <typename T>
__global__ void __launch_bounds__(256)
    butterfly_inverse_vjp_blocks(const T* __restrict__ inv, const T* __restrict__ ginv,
                                 T* __restrict__ out, long long nb) {
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < nb; i += step) {
        const T* v = inv + 4 * i;
        const T* g = ginv + 4 * i;
        const T w00 = sl::conj(v[0]), w01 = sl::conj(v[2]);
        const T w10 = sl::conj(v[1]), w11 = sl::conj(v[3]);
        const T h00 = g[0] * w00 + g[1] * w10;
        const T h01 = g[0] * w01 + g[1] * w11;
        const T h10 = g[2] * w00 + g[3] * w10;
        const T h11 = g[2] * w01 + g[3] * w11;
        T* o = out + 4 * i;
        o[0] = T(0) - (w00 * h00 + w01 * h10);
        o[1] = T(0) - (w00 * h01 + w01 * h11);
        o[2] = T(0) - (w10 * h00 + w11 * h10);
        o[3] = T(0) - (w10 * h01 + w11 * h11);
    }
}
