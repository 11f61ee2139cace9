// Shared device helpers for the structlin kernels: a small complex type, atomics, and the
// tile geometry of a butterfly-shaped pass.
//
// Every kernel source starts with `#include "_common.cuh"`; structlin.gpu._compile inlines this
// file in place of that line, so NVRTC needs no include path and CuPy's kernel cache (keyed by
// the source text) sees edits to this header.
#pragma once

namespace sl {

// Interleaved (re, im) like NumPy/CuPy complex64/complex128. Our own type rather than CuPy's
// complex.cuh so that the compile-only path (plain NVRTC, no CuPy headers) builds the same code.
template <typename R>
struct alignas(2 * sizeof(R)) complex {
    R re;
    R im;
    complex() = default;
    __device__ __forceinline__ complex(R r) : re(r), im(R(0)) {}
    __device__ __forceinline__ complex(R r, R i) : re(r), im(i) {}
};

template <typename R>
__device__ __forceinline__ complex<R> operator+(complex<R> a, complex<R> b) {
    return complex<R>(a.re + b.re, a.im + b.im);
}
template <typename R>
__device__ __forceinline__ complex<R> operator-(complex<R> a, complex<R> b) {
    return complex<R>(a.re - b.re, a.im - b.im);
}
template <typename R>
__device__ __forceinline__ complex<R> operator*(complex<R> a, complex<R> b) {
    return complex<R>(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
}
template <typename R>
__device__ __forceinline__ complex<R>& operator+=(complex<R>& a, complex<R> b) {
    a.re += b.re;
    a.im += b.im;
    return a;
}

__device__ __forceinline__ float conj(float a) { return a; }
__device__ __forceinline__ double conj(double a) { return a; }
template <typename R>
__device__ __forceinline__ complex<R> conj(complex<R> a) {
    return complex<R>(a.re, -a.im);
}

__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
template <typename R>
__device__ __forceinline__ void atomic_add(complex<R>* p, complex<R> v) {
    R* q = reinterpret_cast<R*>(p);
    atomicAdd(q, v.re);
    atomicAdd(q + 1, v.im);
}

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }

// One block's tile of a pass over factors [k0, k1) of rows of length n (see the launchers).
// Tile-local index q has bit fields, from low to high:
//   w: wb bits  -- consecutive columns c0 + w (contiguous in memory)
//   t: mb bits  -- the butterfly coordinate, element offset t << k0 (mb = k1 - k0)
//   z: rb bits  -- rows row0 + z
// so element q lives at (row0 + z) * n + col0 + (t << k0) + w, with col0 = (h << k1) + c0.
// Tiles are numbered (row group, h, column group), column group fastest.
struct Tile {
    long long row0;
    long long col0;
    long long n;
    int k0;
    int mb;
    int wb;

    __device__ __forceinline__ Tile(long long n_, int k0_, int k1_, int wb_, int rb_)
        : n(n_), k0(k0_), mb(k1_ - k0_), wb(wb_) {
        const long long nc = (1LL << k0_) >> wb_;
        const long long per_row = (n_ >> k1_) * nc;
        const long long tile = blockIdx.x;
        const long long rg = tile / per_row;
        const long long rem = tile - rg * per_row;
        const long long h = rem / nc;
        const long long cg = rem - h * nc;
        row0 = rg << rb_;
        col0 = (h << k1_) + (cg << wb_);
    }
    __device__ __forceinline__ long long row(int q) const { return row0 + (q >> (mb + wb)); }
    // offset of element q inside its row
    __device__ __forceinline__ long long col(int q) const {
        const int t = (q >> wb) & ((1 << mb) - 1);
        const int w = q & ((1 << wb) - 1);
        return col0 + ((long long)t << k0) + w;
    }
    __device__ __forceinline__ long long offset(int q) const { return row(q) * n + col(q); }
    // row of q within the tile
    __device__ __forceinline__ int z(int q) const { return q >> (mb + wb); }
    // offset(a | d) - offset(a) for a and d without common bits (offsets are linear in the fields)
    __device__ __forceinline__ long long delta(int d) const {
        const int t = (d >> wb) & ((1 << mb) - 1);
        const int w = d & ((1 << wb) - 1);
        return (long long)z(d) * n + ((long long)t << k0) + w;
    }
};

}  // namespace sl

extern __shared__ __align__(16) unsigned char sl_shared[];
