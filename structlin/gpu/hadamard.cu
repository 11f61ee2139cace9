// Unnormalized Walsh-Hadamard transform (Sylvester order), one pass of levels [k0, k1) per
// launch, on tiles laid out as in sl::Tile.
//
// Each thread holds E = 128 / sizeof(T) elements in registers (32 registers whatever the
// dtype). The pass's levels, which commute, are taken in windows of LOGE = log2(E) tile bits:
// for a window starting at tile bit ws, thread `tid` holds the elements
//     q = base(tid) | (r << ws),  r in [0, E),
// where base() spreads tid's bits around the window, and does the window's levels as a radix-E
// transform in registers. Consecutive threads then hold consecutive q in the bits below ws, so
// a window with ws >= LOGE reads or writes global memory fully coalesced (runs of >= 128 bytes);
// the first window read and the last window written are chosen that way when possible, and the
// windows in between exchange data through shared memory. Shared memory is padded by one
// element per E (index q + (q >> LOGE)), which makes every window's accesses bank-conflict free.
#include "_common.cuh"

namespace {

template <typename T>
struct Radix {
    static constexpr int LOGE = sizeof(T) == 4 ? 5 : (sizeof(T) == 8 ? 4 : 3);
    static constexpr int E = 1 << LOGE;
};

__device__ __forceinline__ int padded(int q, int loge) { return q + (q >> loge); }

}  // namespace

// y = H x over levels [k0, k1) (x and y may be the same array). Launch with
// 2^(rb + k1 - k0 + wb - LOGE) threads (at least 32) and (2^tb + 2^(tb - LOGE)) * sizeof(T)
// bytes of shared memory, tb = rb + k1 - k0 + wb.
template <typename T>
__global__ void __launch_bounds__(512, 2)
    fwht_pass(const T* x, T* y, long long batch, long long n, int k0, int k1, int wb, int rb) {
    constexpr int LOGE = Radix<T>::LOGE;
    constexpr int E = Radix<T>::E;
    T* s = reinterpret_cast<T*>(sl_shared);
    const sl::Tile tile(n, k0, k1, wb, rb);
    const int mb = k1 - k0;
    const int tb = rb + mb + wb;
    const int te = 1 << tb;
    const int tid = threadIdx.x;
    const int nt = blockDim.x;
    const int n_windows = (mb + LOGE - 1) / LOGE;
    // contiguous runs in global memory are the whole tile row in a first pass, W columns after
    const int need = wb > 0 ? sl::imin(wb, LOGE) : LOGE;
    T v[E];
    for (int ph = 0; ph < n_windows; ++ph) {
        // the top window first (its stride is the largest, so it reads coalesced), then upward
        // from the bottom; the window just below the top is written last
        const int c = ph == 0 ? n_windows - 1 : ph - 1;
        const int p = wb + c * LOGE;
        const int nb = sl::imin(LOGE, wb + mb - p);
        const int ws = sl::imin(p, tb - LOGE);
        const int lo = p - ws;
        const int hi = lo + nb;
        const bool direct = ws >= need;
        const bool last = ph == n_windows - 1;
        const int base = (tid & ((1 << ws) - 1)) | ((tid >> ws) << (ws + LOGE));
        // q = base | (r << ws) = base + (r << ws); both the global offset (linear in the bit
        // fields of q) and the padded shared index split into a part for base and one for r
        const int sb = padded(base, LOGE);
        if (ph == 0 && direct) {
            const long long gb = tile.offset(base);
            const long long rows_left = batch - tile.row(base);
#pragma unroll
            for (int r = 0; r < E; ++r) {
                const int d = r << ws;
                v[r] = tile.z(d) < rows_left ? x[gb + tile.delta(d)] : T(0);
            }
        } else {
            if (ph == 0) {
                for (int q = tid; q < te; q += nt) {
                    s[padded(q, LOGE)] = tile.row(q) < batch ? x[tile.offset(q)] : T(0);
                }
                __syncthreads();
            }
#pragma unroll
            for (int r = 0; r < E; ++r) v[r] = s[sb + padded(r << ws, LOGE)];
        }
#pragma unroll
        for (int b = 0; b < LOGE; ++b) {
            if (b < lo || b >= hi) continue;
            const int h = 1 << b;
#pragma unroll
            for (int r = 0; r < E; ++r) {
                if (r & h) continue;
                const T a = v[r];
                const T d = v[r + h];
                v[r] = a + d;
                v[r + h] = a - d;
            }
        }
        if (last && direct) {
            const long long gb = tile.offset(base);
            const long long rows_left = batch - tile.row(base);
#pragma unroll
            for (int r = 0; r < E; ++r) {
                const int d = r << ws;
                if (tile.z(d) < rows_left) y[gb + tile.delta(d)] = v[r];
            }
        } else {
#pragma unroll
            for (int r = 0; r < E; ++r) s[sb + padded(r << ws, LOGE)] = v[r];
            __syncthreads();
            if (last) {
                for (int q = tid; q < te; q += nt) {
                    if (tile.row(q) < batch) y[tile.offset(q)] = s[padded(q, LOGE)];
                }
            }
        }
    }
}
