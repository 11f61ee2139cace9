// Kernel feature maps: cosines and sines of projections t = x w^T + phase, and the
// coefficients of their backward pass, fused with the projection (t never exists in memory).
//
//     t[i, j] = sum_k x[i, k] w[j, k] + phase[j]                        x (n, d), w (m, d)
//     features:        out[i, j] = scale[j] cos t,  out[i, m + j - sin_from] = scale[j] sin t
//     features_coef:   coef[i, j]  = scale[j] (-g[i, j] sin t + gs[i, j] cos t)
//                      wcoef[i, j] = g[i, j] cos t + gs[i, j] sin t
//     with gs[i, j] = g[i, m + j - sin_from] for j >= sin_from, else 0.
//
// Tiling (both kernels): one CUDA block of THREADS = 256 threads owns a BM x BN = 64 x 64 tile of
// t (rows i x nodes j). The projection runs over d in chunks of BK = 32: each chunk's x panel
// (BM x BK) and w panel (BN x BK) are read from global memory along k (runs of 32 elements,
// coalesced), stored transposed, k-major, in shared memory padded by one element (conflict-free
// stores and loads), and each thread accumulates RM x RN = 8 x 2 dot products in registers.
// Thread tid = 32 ty + tx owns rows i0 + ty + 8 r (r < 8) and nodes j0 + tx + 32 c (c < 2): a
// warp reads one broadcast x value and 32 consecutive w values per row/node pair of loads, and
// stores 32 consecutive j of a row. The next chunk is loaded into registers while the current
// one is used (one chunk of software pipelining). The epilogue evaluates sincos once per (i, j)
// and writes the cosine and sine parts (features) or reads g and writes coef and wcoef
// (features_coef), coalesced along j. Out-of-range rows, nodes and k are zero-filled in shared
// memory and not stored.
#include "_common.cuh"

namespace {

constexpr int BM = 64;   // rows of x per tile
constexpr int BN = 64;   // nodes of w per tile
constexpr int BK = 32;   // chunk of d staged in shared memory
constexpr int THREADS = 256;
constexpr int TX = 32;              // threads along the nodes
constexpr int TY = THREADS / TX;    // threads along the rows
constexpr int RM = BM / TY;         // rows per thread (8)
constexpr int RN = BN / TX;         // nodes per thread (2)
constexpr int PADM = BM + 1;
constexpr int PADN = BN + 1;
constexpr int LX = BM * BK / THREADS;  // x panel elements loaded per thread (8)
constexpr int LW = BN * BK / THREADS;  // w panel elements loaded per thread (8)
static_assert(BM % TY == 0 && BN % TX == 0, "tile not divisible by the thread grid");
static_assert((BM * BK) % THREADS == 0 && (BN * BK) % THREADS == 0, "panel load");
static_assert(THREADS % BK == 0, "panel load rows");

__device__ __forceinline__ void sincos_of(float t, float* s, float* c) { sincosf(t, s, c); }
__device__ __forceinline__ void sincos_of(double t, double* s, double* c) { sincos(t, s, c); }

// Panel element e = tid + THREADS p sits at (row e / BK, k e % BK): each thread loads LX
// elements of the x panel and LW of the w panel of the chunk starting at k0, LSTEP rows apart.
constexpr int LSTEP = THREADS / BK;

template <typename T>
__device__ __forceinline__ void fetch_panels(const T* __restrict__ x, const T* __restrict__ w,
                                             long long n, int m, int d, long long i0, int j0,
                                             int k0, T (&px)[LX], T (&pw)[LW]) {
    const int k = k0 + (int)threadIdx.x % BK;
    const int lr = (int)threadIdx.x / BK;
    const bool kin = k < d;
#pragma unroll
    for (int p = 0; p < LX; ++p) {
        const long long i = i0 + lr + LSTEP * p;
        px[p] = kin && i < n ? x[i * d + k] : T(0);
    }
#pragma unroll
    for (int p = 0; p < LW; ++p) {
        const int j = j0 + lr + LSTEP * p;
        pw[p] = kin && j < m ? w[(long long)j * d + k] : T(0);
    }
}

// acc += the outer product of step k of the staged panels, for this thread's rows and nodes
template <typename T>
__device__ __forceinline__ void accumulate_step(const T* xs, const T* ws, int k, int tx, int ty,
                                                T (&acc)[RM][RN]) {
    T a[RM];
    T b[RN];
#pragma unroll
    for (int r = 0; r < RM; ++r) a[r] = xs[k * PADM + ty + TY * r];
#pragma unroll
    for (int c = 0; c < RN; ++c) b[c] = ws[k * PADN + tx + TX * c];
#pragma unroll
    for (int r = 0; r < RM; ++r)
#pragma unroll
        for (int c = 0; c < RN; ++c) acc[r][c] += a[r] * b[c];
}

// acc[r][c] = sum_k x[i0 + ty + TY r, k] w[j0 + tx + TX c, k] for this block's tile.
// Shared memory: xs[BK][PADM] then ws[BK][PADN].
template <typename T>
__device__ __forceinline__ void project_tile(const T* __restrict__ x, const T* __restrict__ w,
                                             long long n, int m, int d, long long i0, int j0,
                                             T (&acc)[RM][RN]) {
    T* xs = reinterpret_cast<T*>(sl_shared);
    T* ws = xs + BK * PADM;
    const int tid = threadIdx.x;
    const int tx = tid % TX;
    const int ty = tid / TX;
    const int lk = tid % BK;
    const int lr = tid / BK;
#pragma unroll
    for (int r = 0; r < RM; ++r)
#pragma unroll
        for (int c = 0; c < RN; ++c) acc[r][c] = T(0);
    T px[LX];
    T pw[LW];
    fetch_panels(x, w, n, m, d, i0, j0, 0, px, pw);
    for (int k0 = 0; k0 < d; k0 += BK) {
#pragma unroll
        for (int p = 0; p < LX; ++p) xs[lk * PADM + lr + LSTEP * p] = px[p];
#pragma unroll
        for (int p = 0; p < LW; ++p) ws[lk * PADN + lr + LSTEP * p] = pw[p];
        __syncthreads();
        // the next chunk's loads are in flight while this chunk is used
        if (k0 + BK < d) fetch_panels(x, w, n, m, d, i0, j0, k0 + BK, px, pw);
        const int kn = sl::imin(BK, d - k0);
        if (kn == BK) {
#pragma unroll
            for (int k = 0; k < BK; ++k) accumulate_step(xs, ws, k, tx, ty, acc);
        } else {  // the last, partial chunk: its zero-filled tail is skipped
            for (int k = 0; k < kn; ++k) accumulate_step(xs, ws, k, tx, ty, acc);
        }
        __syncthreads();
    }
}

// The tile of block blockIdx.x: node tiles fastest (consecutive blocks share their x rows).
__device__ __forceinline__ void tile_origin(int m, long long* i0, int* j0) {
    const int node_tiles = (m + BN - 1) / BN;
    const long long b = blockIdx.x;
    *i0 = (b / node_tiles) * BM;
    *j0 = (int)(b % node_tiles) * BN;
}

}  // namespace

// out (n, 2 m - sin_from). Grid: ceil(n / BM) * ceil(m / BN) blocks of 256 threads,
// (BK * (BM + 1) + BK * (BN + 1)) * sizeof(T) bytes of shared memory.
template <typename T>
__global__ void __launch_bounds__(THREADS)
    features_kernel(const T* __restrict__ x, const T* __restrict__ w,
                    const T* __restrict__ scale, const T* __restrict__ phase,
                    T* __restrict__ out, long long n, int m, int d, int sin_from) {
    long long i0;
    int j0;
    tile_origin(m, &i0, &j0);
    T acc[RM][RN];
    project_tile<T>(x, w, n, m, d, i0, j0, acc);
    const int tx = threadIdx.x % TX;
    const int ty = threadIdx.x / TX;
    const long long cols = 2LL * m - sin_from;
#pragma unroll
    for (int c = 0; c < RN; ++c) {
        const int j = j0 + tx + TX * c;
        if (j >= m) continue;
        const T sc = scale[j];
        const T ph = phase[j];
        const bool has_sin = j >= sin_from;
#pragma unroll
        for (int r = 0; r < RM; ++r) {
            const long long i = i0 + ty + TY * r;
            if (i >= n) continue;
            T s, co;
            sincos_of(acc[r][c] + ph, &s, &co);
            T* row = out + i * cols;
            row[j] = sc * co;
            if (has_sin) row[m + j - sin_from] = sc * s;
        }
    }
}

// g (n, 2 m - sin_from); coef, wcoef (n, m). Grid, threads and shared memory as features_kernel.
template <typename T>
__global__ void __launch_bounds__(THREADS)
    features_coef_kernel(const T* __restrict__ x, const T* __restrict__ w,
                         const T* __restrict__ scale, const T* __restrict__ phase,
                         const T* __restrict__ g, T* __restrict__ coef, T* __restrict__ wcoef,
                         long long n, int m, int d, int sin_from) {
    long long i0;
    int j0;
    tile_origin(m, &i0, &j0);
    T acc[RM][RN];
    project_tile<T>(x, w, n, m, d, i0, j0, acc);
    const int tx = threadIdx.x % TX;
    const int ty = threadIdx.x / TX;
    const long long cols = 2LL * m - sin_from;
#pragma unroll
    for (int c = 0; c < RN; ++c) {
        const int j = j0 + tx + TX * c;
        if (j >= m) continue;
        const T sc = scale[j];
        const T ph = phase[j];
        const bool has_sin = j >= sin_from;
#pragma unroll
        for (int r = 0; r < RM; ++r) {
            const long long i = i0 + ty + TY * r;
            if (i >= n) continue;
            T s, co;
            sincos_of(acc[r][c] + ph, &s, &co);
            const T* grow = g + i * cols;
            const T gc = grow[j];
            const T gs = has_sin ? grow[m + j - sin_from] : T(0);
            coef[i * m + j] = sc * (gs * co - gc * s);
            wcoef[i * m + j] = gc * co + gs * s;
        }
    }
}

// Cosines and sines of given projections t (n, m) (the Hadamard-structured maps form t by
// transforms): out (n, 2 m - sin_from) as for features_kernel. One thread per (i, j), j fastest
// (coalesced loads of t and stores of both parts). Grid: ceil(n m / THREADS) blocks.
template <typename T>
__global__ void __launch_bounds__(THREADS)
    trig_kernel(const T* __restrict__ t, const T* __restrict__ scale, T* __restrict__ out,
                long long n, int m, int sin_from) {
    const long long e = (long long)blockIdx.x * THREADS + threadIdx.x;
    if (e >= n * m) return;
    const long long i = e / m;
    const int j = (int)(e - i * m);
    T s, co;
    sincos_of(t[e], &s, &co);
    const T sc = scale[j];
    T* row = out + i * (2LL * m - sin_from);
    row[j] = sc * co;
    if (j >= sin_from) row[m + j - sin_from] = sc * s;
}
