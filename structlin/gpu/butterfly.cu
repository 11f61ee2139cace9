// Butterfly multiply and its VJP, one pass of factors [k0, k1) per launch.
//
// Factor k (stride s = 2^k) maps the pair (x[i], x[i+s]) through the 2x2 block
// tw[k, j] with j = ((i >> (k+1)) << k) | (i & (s-1)), i the lower index of the pair.
// A block gathers its tile (layout in sl::Tile) into shared memory once, applies every
// factor of the pass there, and writes the tile back: one read and one write of x per pass.
// A work item is one pair position for `rc` rows: its twiddle block is loaded once and reused
// across the rows, which is what keeps twiddle traffic below x traffic for batched inputs.
#include "_common.cuh"

namespace {

template <typename T>
__device__ __forceinline__ void gather(T* s, const T* x, const sl::Tile& tile, int te,
                                       long long batch) {
    for (int q = threadIdx.x; q < te; q += blockDim.x) {
        s[q] = tile.row(q) < batch ? x[tile.offset(q)] : T(0);
    }
}

template <typename T>
__device__ __forceinline__ void scatter(T* y, const T* s, const sl::Tile& tile, int te,
                                        long long batch) {
    for (int q = threadIdx.x; q < te; q += blockDim.x) {
        if (tile.row(q) < batch) y[tile.offset(q)] = s[q];
    }
}

// Position of work item `it` for level l of the pass: tile indices q0 (lower element of the
// pair, in row 0 of the tile), q1 = q0 + (1 << (l + wb)), the first row r0 of its rc rows, and
// the twiddle index j of factor k = k0 + l.
struct Pair {
    int q0;
    int q1;
    int r0;
    long long j;
};

__device__ __forceinline__ Pair pair_of(int it, const sl::Tile& tile, int l, int rc) {
    const int pb = tile.mb - 1 + tile.wb;  // log2(pairs per tile row)
    const int p = it & ((1 << pb) - 1);
    const int w = p & ((1 << tile.wb) - 1);
    const int pt = p >> tile.wb;
    const int t = ((pt >> l) << (l + 1)) | (pt & ((1 << l) - 1));
    Pair r;
    r.q0 = (t << tile.wb) | w;
    r.q1 = r.q0 + (1 << (l + tile.wb));
    r.r0 = (it >> pb) * rc;
    const int k = tile.k0 + l;
    const long long i = tile.col(r.q0);
    r.j = ((i >> (k + 1)) << k) | (i & ((1LL << k) - 1));
    return r;
}

// dst = F_k src on the tile (dst may equal src: each item reads and writes only its own pair).
template <typename T>
__device__ __forceinline__ void level(T* dst, const T* src, const T* tw, const sl::Tile& tile,
                                      int l, int rb, int rc) {
    const int k = tile.k0 + l;
    const int rs = 1 << (tile.mb + tile.wb);  // tile row stride in shared memory
    const int n_items = (1 << (tile.mb - 1 + tile.wb + rb)) / rc;
    const T* twk = tw + (long long)k * (tile.n >> 1) * 4;
    for (int it = threadIdx.x; it < n_items; it += blockDim.x) {
        const Pair pr = pair_of(it, tile, l, rc);
        const T* b = twk + pr.j * 4;
        const T t00 = b[0], t01 = b[1], t10 = b[2], t11 = b[3];
        for (int r = pr.r0; r < pr.r0 + rc; ++r) {
            const T u0 = src[r * rs + pr.q0];
            const T u1 = src[r * rs + pr.q1];
            dst[r * rs + pr.q0] = t00 * u0 + t01 * u1;
            dst[r * rs + pr.q1] = t10 * u0 + t11 * u1;
        }
    }
}

// Backward through factor k: g <- F_k^H g in place, and gtw[k, j] += sum_rows h_r conj(u_c).
template <typename T>
__device__ __forceinline__ void level_vjp(T* g, const T* u, const T* tw, T* gtw,
                                          const sl::Tile& tile, int l, int rb, int rc) {
    const int k = tile.k0 + l;
    const int rs = 1 << (tile.mb + tile.wb);
    const int n_items = (1 << (tile.mb - 1 + tile.wb + rb)) / rc;
    const long long koff = (long long)k * (tile.n >> 1) * 4;
    for (int it = threadIdx.x; it < n_items; it += blockDim.x) {
        const Pair pr = pair_of(it, tile, l, rc);
        const T* b = tw + koff + pr.j * 4;
        const T c00 = sl::conj(b[0]), c01 = sl::conj(b[1]);
        const T c10 = sl::conj(b[2]), c11 = sl::conj(b[3]);
        T a00(0), a01(0), a10(0), a11(0);
        for (int r = pr.r0; r < pr.r0 + rc; ++r) {
            const T u0 = sl::conj(u[r * rs + pr.q0]);
            const T u1 = sl::conj(u[r * rs + pr.q1]);
            const T h0 = g[r * rs + pr.q0];
            const T h1 = g[r * rs + pr.q1];
            a00 += h0 * u0;
            a01 += h0 * u1;
            a10 += h1 * u0;
            a11 += h1 * u1;
            g[r * rs + pr.q0] = c00 * h0 + c10 * h1;
            g[r * rs + pr.q1] = c01 * h0 + c11 * h1;
        }
        T* a = gtw + koff + pr.j * 4;
        sl::atomic_add(a + 0, a00);
        sl::atomic_add(a + 1, a01);
        sl::atomic_add(a + 2, a10);
        sl::atomic_add(a + 3, a11);
    }
}

}  // namespace

// y = (factors k1-1 ... k0) x  (increasing) or (factors k0 ... k1-1) x, on rows of length n.
// x and y may be the same array: a block reads and writes only its own tile.
// Shared memory: 2^(rb + mb + wb) elements of T.
template <typename T>
__global__ void __launch_bounds__(512)
    butterfly_pass(const T* x, T* y, const T* __restrict__ tw, long long batch, long long n,
                   int k0, int k1, int wb, int rb, int rc, int increasing) {
    T* s = reinterpret_cast<T*>(sl_shared);
    const sl::Tile tile(n, k0, k1, wb, rb);
    const int te = 1 << (rb + tile.mb + wb);
    gather(s, x, tile, te, batch);
    __syncthreads();
    for (int li = 0; li < tile.mb; ++li) {
        const int l = increasing ? li : tile.mb - 1 - li;
        level(s, s, tw, tile, l, rb, rc);
        __syncthreads();
    }
    scatter(y, s, tile, te, batch);
}

// Backward through one pass: x is the pass input, g the gradient at its output; writes
// gx = P^H g (gx may be the same array as g) and adds the twiddle gradients of factors
// [k0, k1) into gtw (zero-initialized by the caller, shape of tw).
// Shared memory: (mb + 1) * 2^(rb + mb + wb) elements of T -- the inputs of the mb factors
// plus the gradient being propagated.
template <typename T>
__global__ void __launch_bounds__(512)
    butterfly_pass_vjp(const T* x, const T* g, T* gx, const T* __restrict__ tw,
                       T* __restrict__ gtw, long long batch, long long n, int k0, int k1,
                       int wb, int rb, int rc, int increasing) {
    T* s = reinterpret_cast<T*>(sl_shared);
    const sl::Tile tile(n, k0, k1, wb, rb);
    const int mb = tile.mb;
    const int te = 1 << (rb + mb + wb);
    T* gb = s + (long long)mb * te;
    gather(s, x, tile, te, batch);
    gather(gb, g, tile, te, batch);
    __syncthreads();
    // stash level li + 1 = input of the (li + 1)-th factor applied
    for (int li = 0; li + 1 < mb; ++li) {
        const int l = increasing ? li : mb - 1 - li;
        level(s + (long long)(li + 1) * te, s + (long long)li * te, tw, tile, l, rb, rc);
        __syncthreads();
    }
    for (int li = mb - 1; li >= 0; --li) {
        const int l = increasing ? li : mb - 1 - li;
        level_vjp(gb, s + (long long)li * te, tw, gtw, tile, l, rb, rc);
        __syncthreads();
    }
    scatter(gx, gb, tile, te, batch);
}

// K x for a K-matrix whose rows fit in shared memory, every butterfly in one launch: a block
// gathers 2^rb whole rows once, applies the 2w butterflies there and writes the rows back (one
// read and one write of x, whatever the width). tw holds the butterflies in operator form,
// (w, 2, L, n/2, 2, 2): x meets tw[w-1, 1] first, in decreasing stride, then tw[w-1, 0] in
// increasing stride, ..., tw[0, 0] last (structlin.gpu.kaleidoscope).
// Shared memory: 2^(rb + L) elements of T.
template <typename T>
__global__ void __launch_bounds__(512)
    kaleidoscope_rows(const T* x, T* y, const T* __restrict__ tw, long long batch,
                      long long n, int L, int w, int rb, int rc) {
    T* s = reinterpret_cast<T*>(sl_shared);
    const sl::Tile tile(n, 0, L, 0, rb);
    const int te = 1 << (rb + L);
    const long long size = (long long)L * (n >> 1) * 4;  // one butterfly's twiddle
    gather(s, x, tile, te, batch);
    __syncthreads();
    for (int stage = 0; stage < 2 * w; ++stage) {
        const int i = w - 1 - stage / 2;
        const bool decreasing = stage % 2 == 0;
        const T* t = tw + (2LL * i + (decreasing ? 1 : 0)) * size;
        for (int li = 0; li < L; ++li) {
            level(s, s, t, tile, decreasing ? L - 1 - li : li, rb, rc);
            __syncthreads();
        }
    }
    scatter(y, s, tile, te, batch);
}
