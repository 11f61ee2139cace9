// One level of the hierarchical butterfly factorization (launcher: butterfly_factorization.py).
//
// M is a C-contiguous stack (C, N, N). Thread t = cb * H + a (H = N / 2, cb = b * C + c)
// owns the (H, 2) submatrix X = M[c, b::2, 2a:2a+2]: it accumulates the 2x2 Gram matrix of X
// row by row, takes its top eigenvector v in closed form, writes v^H into row b of twiddle
// block tw[a, c] (layout (H, C, 2, 2)), then writes u = X v into out[cb, :, a] (layout
// (2C, H, H)) and adds the residual ||X - u v^H||^2 and ||X||^2 to sums[0], sums[1].
// Consecutive threads own consecutive column pairs of the same rows, so the reads of a warp
// are coalesced (for H >= 32, i.e. all the levels that carry the bulk of the work).
#include "_common.cuh"

namespace slf {
template <typename T>
struct real_of {
    using type = T;
};
template <typename R>
struct real_of<sl::complex<R>> {
    using type = R;
};
__device__ __forceinline__ float abs2(float a) { return a * a; }
__device__ __forceinline__ double abs2(double a) { return a * a; }
template <typename R>
__device__ __forceinline__ R abs2(sl::complex<R> a) {
    return a.re * a.re + a.im * a.im;
}
__device__ __forceinline__ float scale(float a, float s) { return a * s; }
__device__ __forceinline__ double scale(double a, double s) { return a * s; }
template <typename R>
__device__ __forceinline__ sl::complex<R> scale(sl::complex<R> a, R s) {
    return sl::complex<R>(a.re * s, a.im * s);
}
}  // namespace slf

template <typename T>
__global__ void butterfly_factorize_level(const T* __restrict__ M, T* __restrict__ out,
                                          T* __restrict__ tw, double* __restrict__ sums,
                                          long long C, long long N) {
    using R = typename slf::real_of<T>::type;
    const long long H = N >> 1;
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= 2 * C * H) return;
    const long long a = t % H;
    const long long cb = t / H;
    const long long b = cb / C;
    const long long c = cb - b * C;
    // row 2i + b of matrix c, column 2a
    const T* base = M + (c * N + b) * N + 2 * a;
    R p = R(0), r = R(0);
    T q = T(R(0));
    for (long long i = 0; i < H; ++i) {
        const T x0 = base[2 * i * N];
        const T x1 = base[2 * i * N + 1];
        p += slf::abs2(x0);
        r += slf::abs2(x1);
        q += sl::conj(x0) * x1;
    }
    // top eigenvector of [[p, q], [conj(q), r]] from the row with the larger diagonal gap:
    // no cancellation (lambda - r >= rad >= |q| when p >= r)
    const R half = R(0.5) * (p - r);
    const R rad = sqrt(half * half + slf::abs2(q));
    T v0, v1;
    if (p >= r) {
        v0 = T(half + rad);
        v1 = sl::conj(q);
    } else {
        v0 = q;
        v1 = T(rad - half);
    }
    const R nrm = sqrt(slf::abs2(v0) + slf::abs2(v1));
    if (nrm > R(0)) {
        v0 = slf::scale(v0, R(1) / nrm);
        v1 = slf::scale(v1, R(1) / nrm);
    } else {
        v0 = T(R(1));
        v1 = T(R(0));
    }
    T* blk = tw + ((a * C + c) * 2 + b) * 2;
    blk[0] = sl::conj(v0);
    blk[1] = sl::conj(v1);
    T* o = out + cb * H * H + a;
    const T w0 = sl::conj(v0);
    const T w1 = sl::conj(v1);
    double acc = 0.0;
    for (long long i = 0; i < H; ++i) {
        const T x0 = base[2 * i * N];
        const T x1 = base[2 * i * N + 1];
        const T u = x0 * v0 + x1 * v1;
        o[i * H] = u;
        acc += (double)(slf::abs2(x0 - u * w0) + slf::abs2(x1 - u * w1));
    }
    atomicAdd(sums, acc);
    atomicAdd(sums + 1, (double)(p + r));
}
