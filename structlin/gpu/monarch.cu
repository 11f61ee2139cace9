// Block-diagonal factors of Monarch / order-p Monarch / BTT products as batched GEMMs.
//
// A factor w of shape (pre*post, n_out, n_in) maps a row viewed as (pre, n_in, post) to a row
// viewed as (pre, n_out, post): y[b, P, o, Q] = sum_i w[P*post + Q, o, i] x[b, P, i, Q].
// The Monarch transpose between the two factors is only this view (post = l for the second
// factor): no permutation kernel, no copy.
//
// blockdiag_apply: one CUDA block computes a TILE x TILE tile (batch rows x outputs) of one
// diagonal block, staging TILE x TILE panels of x and w in shared memory (padded by one
// element against bank conflicts); each thread accumulates TILE*TILE/blockDim outputs.
// blockdiag_weight_grad: the same tiling for G[blk] = sum_b gy[b, blk]^T conj(x[b, blk]),
// over a chunk of the batch per CUDA block; chunks add their partial sums with atomics.
#include "_common.cuh"

namespace {

constexpr int TILE = 32;
constexpr int PAD = TILE + 1;

struct BlockDiag {
    int pre, post, n_in, n_out;
    __device__ __forceinline__ long long in_offset(long long b, int blk, int i) const {
        const int P = blk / post;
        const int Q = blk - P * post;
        return b * ((long long)pre * n_in * post) + ((long long)P * n_in + i) * post + Q;
    }
    __device__ __forceinline__ long long out_offset(long long b, int blk, int o) const {
        const int P = blk / post;
        const int Q = blk - P * post;
        return b * ((long long)pre * n_out * post) + ((long long)P * n_out + o) * post + Q;
    }
};

}  // namespace

// grid: nblk * row_tiles * out_tiles blocks (out tile fastest, then row tile); TILE*8 threads
template <typename T>
__global__ void __launch_bounds__(256) blockdiag_apply(const T* __restrict__ x,
                                                       const T* __restrict__ w,
                                                       T* __restrict__ y, long long batch,
                                                       int pre, int post, int n_in, int n_out) {
    T* xs = reinterpret_cast<T*>(sl_shared);  // [TILE rows][PAD]
    T* ws = xs + TILE * PAD;                  // [TILE outputs][PAD]
    const BlockDiag g{pre, post, n_in, n_out};
    const int out_tiles = (n_out + TILE - 1) / TILE;
    const long long row_tiles = (batch + TILE - 1) / TILE;
    long long id = blockIdx.x;
    const int ot = (int)(id % out_tiles);
    id /= out_tiles;
    const long long rt = id % row_tiles;
    const int blk = (int)(id / row_tiles);
    const long long r0 = rt * TILE;
    const int o0 = ot * TILE;
    const T* wb = w + (long long)blk * n_out * n_in;

    constexpr int PER = TILE * TILE / 256;  // outputs per thread (same output, PER rows)
    const int oc = threadIdx.x % TILE;
    const int rbase = (threadIdx.x / TILE) * PER;
    T acc[PER];
    for (int u = 0; u < PER; ++u) acc[u] = T(0);

    for (int i0 = 0; i0 < n_in; i0 += TILE) {
        for (int q = threadIdx.x; q < TILE * TILE; q += blockDim.x) {
            const int a = q / TILE;  // row (for xs) or output (for ws)
            const int c = q % TILE;  // input index within the panel
            const long long r = r0 + a;
            xs[a * PAD + c] =
                (r < batch && i0 + c < n_in) ? x[g.in_offset(r, blk, i0 + c)] : T(0);
            ws[a * PAD + c] =
                (o0 + a < n_out && i0 + c < n_in) ? wb[(long long)(o0 + a) * n_in + i0 + c]
                                                  : T(0);
        }
        __syncthreads();
        for (int c = 0; c < TILE; ++c) {
            const T wv = ws[oc * PAD + c];
            for (int u = 0; u < PER; ++u) acc[u] += xs[(rbase + u) * PAD + c] * wv;
        }
        __syncthreads();
    }
    if (o0 + oc < n_out) {
        for (int u = 0; u < PER; ++u) {
            const long long r = r0 + rbase + u;
            if (r < batch) y[g.out_offset(r, blk, o0 + oc)] = acc[u];
        }
    }
}

// grid: nblk * out_tiles * in_tiles * chunks blocks; 256 threads; G zeroed by the caller
template <typename T>
__global__ void __launch_bounds__(256) blockdiag_weight_grad(const T* __restrict__ x,
                                                             const T* __restrict__ gy,
                                                             T* __restrict__ G, long long batch,
                                                             int pre, int post, int n_in,
                                                             int n_out, long long chunk) {
    T* gs = reinterpret_cast<T*>(sl_shared);  // [TILE rows][PAD] of gy
    T* xs = gs + TILE * PAD;                  // [TILE rows][PAD] of conj(x)
    const BlockDiag g{pre, post, n_in, n_out};
    const int in_tiles = (n_in + TILE - 1) / TILE;
    const int out_tiles = (n_out + TILE - 1) / TILE;
    const long long n_chunks = (batch + chunk - 1) / chunk;
    long long id = blockIdx.x;
    const long long ch = id % n_chunks;
    id /= n_chunks;
    const int it = (int)(id % in_tiles);
    id /= in_tiles;
    const int ot = (int)(id % out_tiles);
    const int blk = (int)(id / out_tiles);
    const int i0 = it * TILE;
    const int o0 = ot * TILE;
    const long long b_lo = ch * chunk;
    const long long b_hi = b_lo + chunk < batch ? b_lo + chunk : batch;

    constexpr int PER = TILE * TILE / 256;
    const int ic = threadIdx.x % TILE;
    const int obase = (threadIdx.x / TILE) * PER;
    T acc[PER];
    for (int u = 0; u < PER; ++u) acc[u] = T(0);

    for (long long r0 = b_lo; r0 < b_hi; r0 += TILE) {
        for (int q = threadIdx.x; q < TILE * TILE; q += blockDim.x) {
            const int a = q / TILE;  // batch row within the panel
            const int c = q % TILE;  // output (gs) or input (xs) index within the tile
            const long long r = r0 + a;
            const bool row_ok = r < b_hi;
            gs[a * PAD + c] = (row_ok && o0 + c < n_out) ? gy[g.out_offset(r, blk, o0 + c)] : T(0);
            xs[a * PAD + c] =
                (row_ok && i0 + c < n_in) ? sl::conj(x[g.in_offset(r, blk, i0 + c)]) : T(0);
        }
        __syncthreads();
        for (int a = 0; a < TILE; ++a) {
            const T xv = xs[a * PAD + ic];
            for (int u = 0; u < PER; ++u) acc[u] += gs[a * PAD + obase + u] * xv;
        }
        __syncthreads();
    }
    if (i0 + ic < n_in) {
        T* Gb = G + (long long)blk * n_out * n_in;
        for (int u = 0; u < PER; ++u) {
            const int o = o0 + obase + u;
            if (o < n_out) sl::atomic_add(&Gb[(long long)o * n_in + i0 + ic], acc[u]);
        }
    }
}
