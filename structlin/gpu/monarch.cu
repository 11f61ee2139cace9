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
// blockdiag_apply_tc / blockdiag_weight_grad_tc: the same two products on tensor cores for
// float32 and complex64 data (see "tensor cores" below).
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


// ---------------------------------------------------------------- tensor cores
// PREC 1 (TF32): operands rounded with cvt.rna.tf32.f32 (10 mantissa bits, to nearest, ties away
// from zero), mma.sync.m16n8k8; PREC 2 (BF16): operands rounded to bfloat16 (7 bits, to nearest
// even), mma.sync.m16n8k16. Both accumulate in fp32. A complex product is four real ones
// (Re += Ar Br - Ai Bi, Im += Ar Bi + Ai Br; the sign flip of Bi is exact).
//
// Operands are rounded once, when a panel is staged in shared memory as fp32 planes (real, then
// imaginary), rows padded to TC_LD floats: the fragment loads of a warp (8 rows x 4 columns,
// rows 4 banks apart) are then free of bank conflicts for TF32. A CUDA block of 4 warps computes
// a TC_BM x TC_BN tile of D = A B^T from the panels A (TC_BM x TC_BK) and B (TC_BN x TC_BK);
// warp w owns rows 16 w .. 16 w + 15 and all TC_BN columns (TC_BN / 8 mmas per k step, one A
// fragment).
// Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k8 / m16n8k16"), g = lane / 4,
// t = lane % 4, D: d[e] = D[g + 8 (e >> 1)][2 t + (e & 1)], e < 4;
//   TF32 A: a[e] = A[g + 8 (e & 1)][t + 4 (e >> 1)], e < 4;       B: b[e] = B[t + 4 e][g], e < 2
//   BF16 A: a[e] = A[g + 8 ((e >> 1) & 1)][2 t + (e & 1) + 8 (e >> 2)], e < 8;
//           B: b[e] = B[2 t + (e & 1) + 8 (e >> 1)][g], e < 4 (two bf16 per register, low half
//           first)
// where B is K x N: element B[k][n] of the mma is panel entry B[n][k].

namespace {

constexpr int TC_BM = 64;
constexpr int TC_BN = 32;
constexpr int TC_BK = 32;
constexpr int TC_LD = TC_BK + 4;
constexpr int TC_THREADS = 128;

template <int PREC>
struct MmaShape {
    static constexpr int K = PREC == 1 ? 8 : 16;
    static constexpr int NA = PREC == 1 ? 4 : 8;  // A values per lane
    static constexpr int NB = PREC == 1 ? 2 : 4;  // B values per lane
    __device__ __forceinline__ static int a_row(int e, int g) {
        return PREC == 1 ? g + 8 * (e & 1) : g + 8 * ((e >> 1) & 1);
    }
    __device__ __forceinline__ static int a_col(int e, int t) {
        return PREC == 1 ? t + 4 * (e >> 1) : 2 * t + (e & 1) + 8 * (e >> 2);
    }
    __device__ __forceinline__ static int b_k(int e, int t) {
        return PREC == 1 ? t + 4 * e : 2 * t + (e & 1) + 8 * (e >> 1);
    }
};

#ifdef __CUDA_ARCH__
template <int PREC>
__device__ __forceinline__ float round_operand(float v) {
    if constexpr (PREC == 1) {
        unsigned r;
        asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
        return __uint_as_float(r & 0xFFFFE000u);
    } else {
        unsigned short h;
        asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(v));
        return __uint_as_float((unsigned)h << 16);
    }
}

// N operand values of one lane, in the mma's registers (bf16: two per register, low half first)
template <int PREC, int N>
struct Frag {
    static constexpr int R = PREC == 1 ? N : N / 2;
    unsigned r[R];
    __device__ __forceinline__ void set(const float* v) {
#pragma unroll
        for (int i = 0; i < R; ++i) {
            r[i] = PREC == 1 ? __float_as_uint(v[i])
                             : (__float_as_uint(v[2 * i + 1]) & 0xFFFF0000u) |
                                   (__float_as_uint(v[2 * i]) >> 16);
        }
    }
    __device__ __forceinline__ Frag negated() const {
        Frag f;
#pragma unroll
        for (int i = 0; i < R; ++i) f.r[i] = r[i] ^ (PREC == 1 ? 0x80000000u : 0x80008000u);
        return f;
    }
};

// d += A B for this lane's fragments
template <int PREC>
__device__ __forceinline__ void mma(float* d, const Frag<PREC, MmaShape<PREC>::NA>& a,
                                    const Frag<PREC, MmaShape<PREC>::NB>& b) {
    if constexpr (PREC == 1) {
        asm volatile(
            "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
    } else {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
    }
}

#else
// Host emulation (tests/test_gpu_compile_monarch.py). Rounding as the PTX conversions do it
// (cvt.rna.tf32.f32 compiles to: add 0x1000 unless |v| is inf or NaN, clear the low 13 bits).
// The mma scatters the warp's registers into a scratch matrix by the PTX ISA layout, written
// per register here (not with MmaShape), between two block barriers: every thread must call
// mma equally often.
inline unsigned emu_bits(float v) {
    unsigned u;
    memcpy(&u, &v, 4);
    return u;
}
inline float emu_float(unsigned u) {
    float v;
    memcpy(&v, &u, 4);
    return v;
}
template <int PREC>
inline float round_operand(float v) {
    unsigned u = emu_bits(v);
    if (PREC == 1) {
        if ((u & 0x7F800000u) != 0x7F800000u) u += 0x1000u;
        u &= 0xFFFFE000u;
    } else if (v != v) {
        u = 0x7FFF0000u;
    } else {
        u += 0x7FFFu + ((u >> 16) & 1u);
        u &= 0xFFFF0000u;
    }
    return emu_float(u);
}
template <int PREC, int N>
struct Frag {
    float r[N];
    void set(const float* v) {
        for (int i = 0; i < N; ++i) r[i] = v[i];
    }
    Frag negated() const {
        Frag f;
        for (int i = 0; i < N; ++i) f.r[i] = -r[i];
        return f;
    }
};
struct EmuMmaWarp {
    float A[16][16];
    float B[16][8];
};
static EmuMmaWarp emu_mma_warps[TC_THREADS / 32];
template <int PREC>
inline void mma(float* d, const Frag<PREC, MmaShape<PREC>::NA>& a,
                const Frag<PREC, MmaShape<PREC>::NB>& b) {
    const int lane = threadIdx.x & 31;
    const int g = lane >> 2;
    const int t = lane & 3;
    EmuMmaWarp& w = emu_mma_warps[threadIdx.x >> 5];
    if (PREC == 1) {
        // a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4); b0 (t, g), b1 (t + 4, g)
        w.A[g][t] = a.r[0];
        w.A[g + 8][t] = a.r[1];
        w.A[g][t + 4] = a.r[2];
        w.A[g + 8][t + 4] = a.r[3];
        w.B[t][g] = b.r[0];
        w.B[t + 4][g] = b.r[1];
    } else {
        // register i of A holds rows g (i even) / g + 8 (i odd), columns 2t, 2t + 1 (+ 8 for
        // i >= 2); register i of B holds rows 2t, 2t + 1 (+ 8 for i = 1) of column g
        for (int i = 0; i < 4; ++i)
            for (int h = 0; h < 2; ++h) w.A[g + 8 * (i & 1)][2 * t + h + 8 * (i >> 1)] = a.r[2 * i + h];
        for (int i = 0; i < 2; ++i)
            for (int h = 0; h < 2; ++h) w.B[2 * t + h + 8 * i][g] = b.r[2 * i + h];
    }
    __syncthreads();
    const int K = PREC == 1 ? 8 : 16;
    for (int e = 0; e < 4; ++e) {
        const int row = g + 8 * (e >> 1);
        const int col = 2 * t + (e & 1);
        float acc = 0.0f;
        for (int k = 0; k < K; ++k) acc += w.A[row][k] * w.B[k][col];
        d[e] += acc;
    }
    __syncthreads();
}
#endif

template <typename T>
struct Planes {
    static constexpr int value = 1;
};
template <>
struct Planes<sl::complex<float>> {
    static constexpr int value = 2;
};

__device__ __forceinline__ float real_part(float v) { return v; }
__device__ __forceinline__ float real_part(sl::complex<float> v) { return v.re; }
__device__ __forceinline__ float imag_part(sl::complex<float> v) { return v.im; }

template <typename T>
__device__ __forceinline__ T from_parts(const float* p) {
    if constexpr (Planes<T>::value == 1) {
        return p[0];
    } else {
        return T(p[0], p[1]);
    }
}

// panel entry idx of every plane (planes `plane` floats apart) = the rounded parts of v
template <int PREC, typename T>
__device__ __forceinline__ void stage(float* panel, int idx, int plane, T v) {
    panel[idx] = round_operand<PREC>(real_part(v));
    if constexpr (Planes<T>::value == 2) panel[plane + idx] = round_operand<PREC>(imag_part(v));
}

// acc[p][j] += (this warp's 16 rows of A) (columns 8 j .. 8 j + 7 of B^T) over the TC_BK
// staged k; p = 0 real part, 1 imaginary part. Called by every thread equally often.
template <int NP, int PREC>
__device__ __forceinline__ void warp_tile(float (&acc)[NP][TC_BN / 8][4], const float* as,
                                          int a_plane, const float* bs, int b_plane) {
    using S = MmaShape<PREC>;
    const int lane = threadIdx.x & 31;
    const int g = lane >> 2;
    const int t = lane & 3;
    const float* aw = as + (threadIdx.x >> 5) * 16 * TC_LD;
    for (int k0 = 0; k0 < TC_BK; k0 += S::K) {
        Frag<PREC, S::NA> a[NP];
        for (int p = 0; p < NP; ++p) {
            float v[S::NA];
#pragma unroll
            for (int e = 0; e < S::NA; ++e)
                v[e] = aw[p * a_plane + S::a_row(e, g) * TC_LD + k0 + S::a_col(e, t)];
            a[p].set(v);
        }
        for (int j = 0; j < TC_BN / 8; ++j) {
            Frag<PREC, S::NB> b[NP];
            for (int p = 0; p < NP; ++p) {
                float v[S::NB];
#pragma unroll
                for (int e = 0; e < S::NB; ++e)
                    v[e] = bs[p * b_plane + (8 * j + g) * TC_LD + k0 + S::b_k(e, t)];
                b[p].set(v);
            }
            mma<PREC>(acc[0][j], a[0], b[0]);
            if constexpr (NP == 2) {
                mma<PREC>(acc[0][j], a[1], b[1].negated());
                mma<PREC>(acc[1][j], a[0], b[1]);
                mma<PREC>(acc[1][j], a[1], b[0]);
            }
        }
    }
}

}  // namespace

// grid: nblk * row_tiles * out_tiles blocks (out tile fastest, then row tile; TC_BM rows,
// TC_BN outputs); TC_THREADS threads; NP * (TC_BM + TC_BN) * TC_LD floats of shared memory
template <typename T, int PREC>
__global__ void __launch_bounds__(TC_THREADS)
    blockdiag_apply_tc(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y,
                       long long batch, int pre, int post, int n_in, int n_out) {
    constexpr int NP = Planes<T>::value;
    float* as = reinterpret_cast<float*>(sl_shared);  // [NP][TC_BM rows][TC_LD]
    float* bs = as + NP * TC_BM * TC_LD;              // [NP][TC_BN outputs][TC_LD]
    const BlockDiag g{pre, post, n_in, n_out};
    const int out_tiles = (n_out + TC_BN - 1) / TC_BN;
    const long long row_tiles = (batch + TC_BM - 1) / TC_BM;
    long long id = blockIdx.x;
    const int ot = (int)(id % out_tiles);
    id /= out_tiles;
    const long long r0 = (id % row_tiles) * TC_BM;
    const int blk = (int)(id / row_tiles);
    const int o0 = ot * TC_BN;
    const T* wb = w + (long long)blk * n_out * n_in;

    float acc[NP][TC_BN / 8][4];
    for (int p = 0; p < NP; ++p)
        for (int j = 0; j < TC_BN / 8; ++j)
            for (int e = 0; e < 4; ++e) acc[p][j][e] = 0.0f;

    for (int i0 = 0; i0 < n_in; i0 += TC_BK) {
        for (int q = threadIdx.x; q < TC_BM * TC_BK; q += blockDim.x) {
            const int a = q / TC_BK;  // row
            const int c = q % TC_BK;  // input
            const long long r = r0 + a;
            const T v = (r < batch && i0 + c < n_in) ? x[g.in_offset(r, blk, i0 + c)] : T(0);
            stage<PREC>(as, a * TC_LD + c, TC_BM * TC_LD, v);
        }
        for (int q = threadIdx.x; q < TC_BN * TC_BK; q += blockDim.x) {
            const int a = q / TC_BK;  // output
            const int c = q % TC_BK;  // input
            const T v = (o0 + a < n_out && i0 + c < n_in)
                            ? wb[(long long)(o0 + a) * n_in + i0 + c]
                            : T(0);
            stage<PREC>(bs, a * TC_LD + c, TC_BN * TC_LD, v);
        }
        __syncthreads();
        warp_tile<NP, PREC>(acc, as, TC_BM * TC_LD, bs, TC_BN * TC_LD);
        __syncthreads();
    }
    const int lane = threadIdx.x & 31;
    const long long rw = r0 + (threadIdx.x >> 5) * 16 + (lane >> 2);
    for (int j = 0; j < TC_BN / 8; ++j) {
        for (int e = 0; e < 4; ++e) {
            const long long r = rw + 8 * (e >> 1);
            const int o = o0 + 8 * j + 2 * (lane & 3) + (e & 1);
            if (r < batch && o < n_out) {
                const float parts[2] = {acc[0][j][e], acc[NP - 1][j][e]};
                y[g.out_offset(r, blk, o)] = from_parts<T>(parts);
            }
        }
    }
}

// grid: nblk * out_tiles * in_tiles * chunks blocks (chunk fastest; TC_BM outputs, TC_BN
// inputs); TC_THREADS threads; shared memory as blockdiag_apply_tc; G zeroed by the caller
template <typename T, int PREC>
__global__ void __launch_bounds__(TC_THREADS)
    blockdiag_weight_grad_tc(const T* __restrict__ x, const T* __restrict__ gy,
                             T* __restrict__ G, long long batch, int pre, int post, int n_in,
                             int n_out, long long chunk) {
    constexpr int NP = Planes<T>::value;
    float* as = reinterpret_cast<float*>(sl_shared);  // [NP][TC_BM outputs][TC_LD] of gy^T
    float* bs = as + NP * TC_BM * TC_LD;              // [NP][TC_BN inputs][TC_LD] of conj(x)^T
    const BlockDiag g{pre, post, n_in, n_out};
    const int in_tiles = (n_in + TC_BN - 1) / TC_BN;
    const int out_tiles = (n_out + TC_BM - 1) / TC_BM;
    const long long n_chunks = (batch + chunk - 1) / chunk;
    long long id = blockIdx.x;
    const long long ch = id % n_chunks;
    id /= n_chunks;
    const int i0 = (int)(id % in_tiles) * TC_BN;
    id /= in_tiles;
    const int o0 = (int)(id % out_tiles) * TC_BM;
    const int blk = (int)(id / out_tiles);
    const long long b_lo = ch * chunk;
    const long long b_hi = b_lo + chunk < batch ? b_lo + chunk : batch;

    float acc[NP][TC_BN / 8][4];
    for (int p = 0; p < NP; ++p)
        for (int j = 0; j < TC_BN / 8; ++j)
            for (int e = 0; e < 4; ++e) acc[p][j][e] = 0.0f;

    for (long long r0 = b_lo; r0 < b_hi; r0 += TC_BK) {
        // consecutive threads read consecutive outputs (inputs) of one batch row
        for (int q = threadIdx.x; q < TC_BM * TC_BK; q += blockDim.x) {
            const int a = q / TC_BM;  // batch row within the panel
            const int o = q % TC_BM;
            const long long r = r0 + a;
            const T v = (r < b_hi && o0 + o < n_out) ? gy[g.out_offset(r, blk, o0 + o)] : T(0);
            stage<PREC>(as, o * TC_LD + a, TC_BM * TC_LD, v);
        }
        for (int q = threadIdx.x; q < TC_BN * TC_BK; q += blockDim.x) {
            const int a = q / TC_BN;
            const int i = q % TC_BN;
            const long long r = r0 + a;
            const T v =
                (r < b_hi && i0 + i < n_in) ? sl::conj(x[g.in_offset(r, blk, i0 + i)]) : T(0);
            stage<PREC>(bs, i * TC_LD + a, TC_BN * TC_LD, v);
        }
        __syncthreads();
        warp_tile<NP, PREC>(acc, as, TC_BM * TC_LD, bs, TC_BN * TC_LD);
        __syncthreads();
    }
    const int lane = threadIdx.x & 31;
    const int ow = o0 + (threadIdx.x >> 5) * 16 + (lane >> 2);
    T* Gb = G + (long long)blk * n_out * n_in;
    for (int j = 0; j < TC_BN / 8; ++j) {
        for (int e = 0; e < 4; ++e) {
            const int o = ow + 8 * (e >> 1);
            const int i = i0 + 8 * j + 2 * (lane & 3) + (e & 1);
            if (o < n_out && i < n_in) {
                const float parts[2] = {acc[0][j][e], acc[NP - 1][j][e]};
                sl::atomic_add(&Gb[(long long)o * n_in + i], from_parts<T>(parts));
            }
        }
    }
}
