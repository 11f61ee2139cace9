// Long convolution by FFT, FlashFFTConv style: the length-N DFT is a product of stages whose
// pieces are small dense DFT matrices (radix r <= 16) applied to strided vectors in shared memory,
// times diagonal twiddles -- a Monarch decomposition of order len(radices).
//
// One kernel, `conv_pass`, does one *pass* on tiles of one sequence: load (gated rows or a complex
// buffer) -> forward stages (DIF) -> pointwise product with the precomputed spectrum -> inverse
// stages (the adjoints of the forward stages, in reverse order) -> store (a fused epilogue on rows,
// or the complex buffer). A short transform is one pass on the whole sequence (one launch for the
// whole convolution); a long one splits the stages: the first stages only mix elements whose
// positions agree modulo N2, so they run as a "column" pass on tiles of W columns, and the
// remaining stages act on contiguous blocks of N2 (see structlin/gpu/conv.py).
//
// DIF stage with radix r on sub-sequences of length M (M' = M / r), for a block starting at a
// multiple of M and j < M':
//     y[j + M' c] = w_M^(j c) * sum_a w_r^(a c) x[j + M' a],   w_m = exp(-2 pi i / m),
// After all stages position sum_s c_s M'_s holds frequency c_0 + r_0 (c_1 + r_1 (c_2 + ...)):
// the spectrum is kept in this digit-reversed order, so no transposition is ever done.
//
// Real rows: in one pass, one row of N samples is held as N/2 complex values z[m] = v[2m] +
// i v[2m+1] (`half`), with a pairing step around the spectrum product (real_pair_product);
// in the multi-pass scheme two rows of a channel are packed as real and imaginary parts (P = 2).
//
// Tile layout in shared memory: element (row a, column w) at a * W + w, global position
// base + a * cs + w. Twiddles come from one table tab[t] = w_N^t.
#include "_common.cuh"

namespace {

template <typename T>
struct Traits {
    using R = T;
    static constexpr bool is_real = true;
};
template <typename R_>
struct Traits<sl::complex<R_>> {
    using R = R_;
    static constexpr bool is_real = false;
};

template <typename T>
using cplx = sl::complex<typename Traits<T>::R>;

template <typename R>
__device__ __forceinline__ sl::complex<R> mul_conj(sl::complex<R> a, sl::complex<R> b) {
    return sl::complex<R>(a.re * b.re + a.im * b.im, a.im * b.re - a.re * b.im);
}

// real rows are packed two per complex sequence: row r of the pair is the part i^r
template <typename R>
__device__ __forceinline__ sl::complex<R> as_complex(R v, int r) {
    return r ? sl::complex<R>(R(0), v) : sl::complex<R>(v, R(0));
}
template <typename R>
__device__ __forceinline__ sl::complex<R> as_complex(sl::complex<R> v, int) {
    return v;
}
template <typename T, typename R>
__device__ __forceinline__ T take(sl::complex<R> y, int r) {
    if constexpr (Traits<T>::is_real) {
        return r ? y.im : y.re;
    } else {
        return y;
    }
}

// Shared-memory index of tile element q: one pad element per 16 makes the radix-16 stages'
// stride-16 accesses (the last stage of a pass) bank-conflict free.
__device__ __forceinline__ int sidx(int q) { return q + (q >> 4); }

enum { LOAD_ROWS = 0, LOAD_BUFFER = 1 };
enum { MUL_NONE = 0, MUL_SPEC = 1, MUL_CONJ_SPEC = 2 };
enum {
    STORE_FORWARD = 0,        // out0 = post * (y + D u)
    STORE_BACKWARD = 1,       // out0 = y conj(pre) + conj(D) g conj(post), out1 = y conj(u)
    STORE_BUFFER = 2,         // bufout = y (unscaled, every position)
    STORE_PLAIN = 3,          // out0 = y
    STORE_POSTGATE_GRAD = 4,  // out0 = g conj(y + D u)
};

// One DIF stage (forward) or its adjoint (inverse) with radix RADIX on the tile.
template <int RADIX, bool INVERSE, typename R>
__device__ __forceinline__ void stage(sl::complex<R>* x, const sl::complex<R>* tab, long long N,
                                      int n_rows, int W, long long cs, long long col_base,
                                      int M) {
    using C = sl::complex<R>;
    const int Mp = M / RADIX;
    const int items = (n_rows / RADIX) * W;
    const long long fstep = N / RADIX;
    const long long tstep = N / ((long long)M * cs);
    C root[RADIX];  // w_r^m: the entries of the r x r DFT matrix
#pragma unroll
    for (int m = 0; m < RADIX; ++m) root[m] = tab[m * fstep];
    for (int i = threadIdx.x; i < items; i += blockDim.x) {
        const int w = i % W;
        const int rest = i / W;
        const int j = rest % Mp;
        const int row0 = (rest / Mp) * M + j;
        const long long jg = (long long)j * cs + (cs > 1 ? col_base + w : 0);
        C v[RADIX];
#pragma unroll
        for (int a = 0; a < RADIX; ++a) v[a] = x[sidx((row0 + Mp * a) * W + w)];
        if (INVERSE) {
#pragma unroll
            for (int c = 1; c < RADIX; ++c) v[c] = mul_conj(v[c], tab[jg * c * tstep]);
        }
        C o[RADIX];
#pragma unroll
        for (int c = 0; c < RADIX; ++c) {
            C acc(R(0), R(0));
#pragma unroll
            for (int a = 0; a < RADIX; ++a) {
                const C f = root[(a * c) & (RADIX - 1)];
                acc += INVERSE ? mul_conj(v[a], f) : v[a] * f;
            }
            o[c] = acc;
        }
        if (!INVERSE) {
#pragma unroll
            for (int c = 1; c < RADIX; ++c) o[c] = o[c] * tab[jg * c * tstep];
        }
#pragma unroll
        for (int c = 0; c < RADIX; ++c) x[sidx((row0 + Mp * c) * W + w)] = o[c];
    }
    __syncthreads();
}


// ---------------------------------------------------------------- tensor-core radix-16 stages
// precision 1 (fp16) / 2 (bf16): a radix-16 stage is Y = F X for 8 items at a time per warp with
// mma.sync.m16n8k16 (half operands, fp32 accumulation): Yr = Fr Xr - Fi Xi, Yi = Fr Xi + Fi Xr,
// four mmas. F is scaled by 1/4 (exact), which makes the stage unitary, so the data keep their
// scale from stage to stage (fp16's range); the launcher folds 4^(stages) into the output
// scale. The data stay fp32 in shared memory; twiddles are applied in fp32.
// Fragment layouts (PTX ISA, mma.m16n8k16 .f16/.bf16), g = lane / 4, t = lane % 4:
//   A (16 x 16, row): a[e] = A[g + 8 ((e >> 1) & 1)][2 t + (e & 1) + 8 (e >> 2)], e < 8
//   B (16 x 8, col):  b[e] = B[2 t + (e & 1) + 8 (e >> 1)][g], e < 4
//   D (16 x 8):       d[e] = D[g + 8 (e >> 1)][2 t + (e & 1)], e < 4
#ifdef __CUDA_ARCH__
__device__ __forceinline__ unsigned pack_half2(float lo, float hi, int prec) {
    unsigned r;
    if (prec == 1) {
        asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    } else {
        asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    }
    return r;
}

struct AFrag {
    unsigned r[4];
    __device__ __forceinline__ void set(const float* v, int prec) {
        for (int i = 0; i < 4; ++i) r[i] = pack_half2(v[2 * i], v[2 * i + 1], prec);
    }
};

// d += A b for this lane's fragments
__device__ __forceinline__ void mma16816(float* d, const AFrag& a, const float* b, int prec) {
    const unsigned b0 = pack_half2(b[0], b[1], prec);
    const unsigned b1 = pack_half2(b[2], b[3], prec);
    if (prec == 1) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b0), "r"(b1));
    } else {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b0), "r"(b1));
    }
}

#else
// Host emulation (tests/test_gpu_compile_conv.py): the warp's fragments meet in a scratch
// matrix between two block barriers, so every thread must call mma16816 equally often.
inline float emu_round(float v, int prec) {
    if (prec == 1) return (float)(_Float16)v;
    unsigned bits;
    memcpy(&bits, &v, 4);
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    bits &= 0xFFFF0000u;
    memcpy(&v, &bits, 4);
    return v;
}
struct EmuWarp {
    float A[16][16];
    float B[16][8];
};
static EmuWarp emu_warps[16];
struct AFrag {
    float r[8];
    void set(const float* v, int prec) {
        for (int i = 0; i < 8; ++i) r[i] = emu_round(v[i], prec);
    }
};
inline void mma16816(float* d, const AFrag& a, const float* b, int prec) {
    const int lane = threadIdx.x & 31;
    const int g = lane >> 2;
    const int t = lane & 3;
    EmuWarp& w = emu_warps[threadIdx.x >> 5];
    for (int e = 0; e < 8; ++e) w.A[g + 8 * ((e >> 1) & 1)][2 * t + (e & 1) + 8 * (e >> 2)] = a.r[e];
    for (int e = 0; e < 4; ++e) w.B[2 * t + (e & 1) + 8 * (e >> 1)][g] = emu_round(b[e], prec);
    __syncthreads();
    for (int e = 0; e < 4; ++e) {
        const int row = g + 8 * (e >> 1);
        const int col = 2 * t + (e & 1);
        float acc = 0.0f;
        for (int k = 0; k < 16; ++k) acc += w.A[row][k] * w.B[k][col];
        d[e] += acc;
    }
    __syncthreads();
}
#endif

template <typename R>
struct is_float {
    static constexpr bool value = false;
};
template <>
struct is_float<float> {
    static constexpr bool value = true;
};

// The radix-16 stage (or its adjoint) of `stage` on tensor cores; called by every thread.
template <bool INVERSE>
__device__ void tc_stage(sl::complex<float>* x, const sl::complex<float>* tab, long long N,
                         int n_rows, int W, long long cs, long long col_base, int M, int prec) {
    using C = sl::complex<float>;
    const int Mp = M / 16;
    const int items = (n_rows / 16) * W;
    const long long fstep = N / 16;
    const long long tstep = N / ((long long)M * cs);
    const int lane = threadIdx.x & 31;
    const int g = lane >> 2;
    const int t = lane & 3;
    const int nwarps = blockDim.x >> 5;
    // F / 4 at this lane's A positions: real part, imaginary part, and its negative
    float fr[8], fi[8], fn[8];
    for (int e = 0; e < 8; ++e) {
        const int row = g + 8 * ((e >> 1) & 1);
        const int col = 2 * t + (e & 1) + 8 * (e >> 2);
        const C f = tab[((row * col) & 15) * fstep];
        fr[e] = 0.25f * f.re;
        fi[e] = 0.25f * f.im;
        fn[e] = -fi[e];
    }
    AFrag a_re, a_im, a_neg;
    a_re.set(fr, prec);
    a_im.set(fi, prec);
    a_neg.set(fn, prec);
    // conj(F) for the adjoint: Yr = Fr Xr + Fi Xi, Yi = Fr Xi - Fi Xr
    const AFrag& for_xi_in_re = INVERSE ? a_im : a_neg;
    const AFrag& for_xr_in_im = INVERSE ? a_neg : a_im;
    const int rounds = ((items + 7) / 8 + nwarps - 1) / nwarps;
    for (int rd = 0; rd < rounds; ++rd) {
        const int grp = rd * nwarps + (threadIdx.x >> 5);
        float br[4], bi[4];
        {
            const int item = grp * 8 + g;
            const int w = item % W;
            const int j = (item / W) % Mp;
            const int row0 = (item / W / Mp) * M + j;
            const long long jg = (long long)j * cs + (cs > 1 ? col_base + w : 0);
            for (int e = 0; e < 4; ++e) {
                const int a = 2 * t + (e & 1) + 8 * (e >> 1);
                C v(0.0f, 0.0f);
                if (item < items) {
                    v = x[sidx((row0 + Mp * a) * W + w)];
                    if (INVERSE) v = mul_conj(v, tab[jg * a * tstep]);
                }
                br[e] = v.re;
                bi[e] = v.im;
            }
        }
        float dr[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        float di[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        mma16816(dr, a_re, br, prec);
        mma16816(dr, for_xi_in_re, bi, prec);
        mma16816(di, a_re, bi, prec);
        mma16816(di, for_xr_in_im, br, prec);
        for (int e = 0; e < 4; ++e) {
            const int item = grp * 8 + 2 * t + (e & 1);
            if (item >= items) continue;
            const int c = g + 8 * (e >> 1);
            const int w = item % W;
            const int j = (item / W) % Mp;
            const int row0 = (item / W / Mp) * M + j;
            const long long jg = (long long)j * cs + (cs > 1 ? col_base + w : 0);
            C o(dr[e], di[e]);
            if (!INVERSE) o = o * tab[jg * c * tstep];
            x[sidx((row0 + Mp * c) * W + w)] = o;
        }
    }
    __syncthreads();
}

template <bool INVERSE, typename R>
__device__ void run_stage(int lr, sl::complex<R>* x, const sl::complex<R>* tab, long long N,
                          int n_rows, int W, long long cs, long long col_base, int M, int prec) {
    if constexpr (is_float<R>::value) {
        if (prec != 0 && lr == 4) {
            tc_stage<INVERSE>(x, tab, N, n_rows, W, cs, col_base, M, prec);
            return;
        }
    }
    switch (lr) {
        case 1: stage<2, INVERSE>(x, tab, N, n_rows, W, cs, col_base, M); break;
        case 2: stage<4, INVERSE>(x, tab, N, n_rows, W, cs, col_base, M); break;
        case 3: stage<8, INVERSE>(x, tab, N, n_rows, W, cs, col_base, M); break;
        default: stage<16, INVERSE>(x, tab, N, n_rows, W, cs, col_base, M); break;
    }
}

// Write one output sample: row `row` of the (B, H, n_out) destinations, channel h.
template <typename T>
__device__ __forceinline__ void emit(int store_mode, long long row, int h, T val, T* out0,
                                     T* out1, const T* u, const T* pre, const T* D,
                                     const T* post, const T* g) {
    if (store_mode == STORE_PLAIN) {
        out0[row] = val;
    } else if (store_mode == STORE_BACKWARD) {
        T gu = pre ? val * sl::conj(pre[row]) : val;
        if (D) gu += sl::conj(D[h]) * (post ? g[row] * sl::conj(post[row]) : g[row]);
        out0[row] = gu;
        if (out1) out1[row] = val * sl::conj(u[row]);
    } else {
        T s = val;
        if (D) s += D[h] * u[row];
        if (store_mode == STORE_POSTGATE_GRAD) {
            out0[row] = g[row] * sl::conj(s);
        } else {
            out0[row] = post ? post[row] * s : s;
        }
    }
}

// Frequency held at position pos after the DIF stages of a pass (Ms[s]: sub-length of stage s),
// and the inverse map.
__device__ __forceinline__ int digit_freq(int pos, const int* Ms, int radbits, int n_stages) {
    int f = 0;
    int shift = 0;
    for (int s = 0; s < n_stages; ++s) {
        const int lr = (radbits >> (4 * s)) & 15;
        f += ((pos / (Ms[s] >> lr)) & ((1 << lr) - 1)) << shift;
        shift += lr;
    }
    return f;
}
__device__ __forceinline__ int digit_pos(int f, const int* Ms, int radbits, int n_stages) {
    int pos = 0;
    for (int s = 0; s < n_stages; ++s) {
        const int lr = (radbits >> (4 * s)) & 15;
        pos += (f & ((1 << lr) - 1)) * (Ms[s] >> lr);
        f >>= lr;
    }
    return pos;
}

// Real half-length mode: z[m] = v[2m] + i v[2m+1] has spectrum Z (length M = N / 2); for the
// pair (k, M - k) this rebuilds V[k], V[k + M] of the real signal, multiplies by the kernel's
// K[k], K[k + M] (spec[pos], spec[M + pos]) and folds the product back into the spectrum of
// y[2m] + i y[2m+1]:
//   E = (Z[k] + conj Z[-k]) / 2, O = (Z[k] - conj Z[-k]) / 2i, V[k] = E + w O, V[k+M] = E - w O,
//   Y = V K, Z'[k] = (Y[k] + Y[k+M]) / 2 + i conj(w) (Y[k] - Y[k+M]) / 2,   w = w_N^k.
template <typename R>
__device__ __forceinline__ sl::complex<R> real_pair_product(
    sl::complex<R> zk, sl::complex<R> zn, sl::complex<R> w, sl::complex<R> k0,
    sl::complex<R> k1, bool conj_spec) {
    using C = sl::complex<R>;
    const R half = R(0.5);
    const C e((zk.re + zn.re) * half, (zk.im - zn.im) * half);
    // (zk - conj zn) / 2i = (a + ib) / 2i = (b - ia) / 2, a + ib = zk - conj zn
    const C o((zk.im + zn.im) * half, -(zk.re - zn.re) * half);
    const C wo = w * o;
    const C v0 = e + wo;
    const C v1 = e - wo;
    const C y0 = conj_spec ? mul_conj(v0, k0) : v0 * k0;
    const C y1 = conj_spec ? mul_conj(v1, k1) : v1 * k1;
    const C ye((y0.re + y1.re) * half, (y0.im + y1.im) * half);
    const C yo = mul_conj(C((y0.re - y1.re) * half, (y0.im - y1.im) * half), w);
    return C(ye.re - yo.im, ye.im + yo.re);
}

}  // namespace

// One pass of the convolution pipeline on tile (blockIdx.x % tiles_per_seq) of sequence
// (blockIdx.x / tiles_per_seq); sequence s is channel s % H of the row group s / H (P rows:
// 2 packed real rows or 1 complex row). Rows are (B, H, L) C-contiguous, except the STORE_PLAIN
// destination (B, H, n_out). radbits holds log2 of the pass's radices, 4 bits each, first stage
// lowest. The result stored on rows is multiplied by out_scale (1/N, times 4^(tensor-core
// stages) when precision != 0). Launch with (te + te / 16) * sizeof(complex) bytes of shared memory, te = n_rows * W.
// split = 1: see below (one launch for N = 2 n_rows; bufin = bufout = an (S, n_rows) scratch).
template <typename T>
__global__ void __launch_bounds__(256)
    conv_pass(const T* a, const T* agate, const cplx<T>* bufin, cplx<T>* bufout,
              const cplx<T>* spec, const cplx<T>* tab, T* out0, T* out1, const T* u,
              const T* pre, const T* D, const T* post, const T* g, long long B, int H,
              long long L, long long n_out, long long N, int P, int n_rows, int W, long long cs,
              long long tile_step, int tiles_per_seq, int radbits, int n_stages,
              long long in_shift, long long out_shift, int load_mode, int a_conj, int do_fwd,
              int mul, int do_inv, int store_mode, double out_scale, int precision, int half,
              int split) {
    using R = typename Traits<T>::R;
    using C = sl::complex<R>;
    C* x = reinterpret_cast<C*>(sl_shared);
    const long long seq = blockIdx.x / tiles_per_seq;
    const long long base = (blockIdx.x - seq * tiles_per_seq) * tile_step;
    const int h = (int)(seq % H);
    const long long b0 = (seq / H) * P;
    const int te = n_rows * W;
    const int tid = threadIdx.x;
    const int nt = blockDim.x;

    // the (gated, packed) input at global position p of the sequence
    auto load_rows = [&](long long p) {
        C z(R(0), R(0));
        // half mode: one real row, samples 2p and 2p + 1 as real and imaginary parts
        const int n_t = half ? 2 : 1;
        for (int i = 0; i < n_t; ++i) {
            const long long t = (half ? 2 * p + i : p) - in_shift;
            if (t < 0 || t >= L) continue;
            for (int r = 0; r < P && b0 + r < B; ++r) {
                const long long row = ((b0 + r) * H + h) * L + t;
                T v = a[row];
                if (agate) v = v * (a_conj ? sl::conj(agate[row]) : agate[row]);
                z += as_complex(v, r + i);
            }
        }
        return z;
    };
    // the fused epilogue for the (scaled) result y at global position p
    auto store_rows = [&](long long p, C y) {
        const int n_t = half ? 2 : 1;
        for (int i = 0; i < n_t; ++i) {
            const long long t = (half ? 2 * p + i : p) - out_shift;
            if (t < 0 || t >= n_out) continue;
            for (int r = 0; r < P && b0 + r < B; ++r) {
                const long long row = ((b0 + r) * H + h) * n_out + t;
                emit<T>(store_mode, row, h, take<T>(y, r + i), out0, out1, u, pre, D, post, g);
            }
        }
    };

    int Ms[8];
    {
        int M = n_rows;
        for (int s = 0; s < n_stages; ++s) {
            Ms[s] = M;
            M >>= (radbits >> (4 * s)) & 15;
        }
    }
    const R scale = R(out_scale);

    // split: one block does a whole sequence of N = 2 n_rows in two halves, the frequency
    // classes c = 0, 1 (even, odd): the first radix-2 DIF stage is applied while loading,
    // x_c[j] = w_N^(j c) (v[j] + (-1)^c v[j + N/2]); class 0's inverse goes to the scratch
    // bufout (this sequence's n_rows values, read back by the same thread), and class 1's
    // inverse is combined with it: y[j] = y0[j] + w_N^-j y1[j], y[j + N/2] = y0[j] - w_N^-j y1[j].
    const int n_cls = split ? 2 : 1;
    for (int cls = 0; cls < n_cls; ++cls) {
        const long long cbase = split ? (long long)cls * n_rows : 0;
        for (int q = tid; q < te; q += nt) {
            const long long p = base + (long long)(q / W) * cs + q % W;
            C z;
            if (split) {
                const C lo = load_rows(p);
                const C hi = load_rows(p + n_rows);
                z = cls ? (lo - hi) * tab[p] : lo + hi;
            } else if (load_mode == LOAD_BUFFER) {
                z = bufin[seq * N + p];
            } else {
                z = load_rows(p);
            }
            x[sidx(q)] = z;
        }
        __syncthreads();

        if (do_fwd) {
            for (int s = 0; s < n_stages; ++s)
                run_stage<false>((radbits >> (4 * s)) & 15, x, tab, N, n_rows, W, cs, base,
                                 Ms[s], precision);
        }
        if (mul != MUL_NONE && half) {
            // single pass on the whole half-length sequence: q is the position
            for (int q = tid; q < te; q += nt) {
                const int k = digit_freq(q, Ms, radbits, n_stages);
                const int kn = (te - k) & (te - 1);
                if (k > kn) continue;
                const int qn = digit_pos(kn, Ms, radbits, n_stages);
                const C zk = x[sidx(q)];
                const C zn = x[sidx(qn)];
                const C* sp = spec + h * N;
                const bool cj = mul == MUL_CONJ_SPEC;
                x[sidx(q)] = real_pair_product(zk, zn, tab[k], sp[q], sp[te + q], cj);
                if (kn != k)
                    x[sidx(qn)] = real_pair_product(zn, zk, tab[kn], sp[qn], sp[te + qn], cj);
            }
            __syncthreads();
        } else if (mul != MUL_NONE) {
            for (int q = tid; q < te; q += nt) {
                const long long p = base + (long long)(q / W) * cs + q % W;
                const C k = spec[h * N + cbase + p];
                const C y = x[sidx(q)];
                x[sidx(q)] = mul == MUL_SPEC ? y * k : mul_conj(y, k);
            }
            __syncthreads();
        }
        if (do_inv) {
            for (int s = n_stages - 1; s >= 0; --s)
                run_stage<true>((radbits >> (4 * s)) & 15, x, tab, N, n_rows, W, cs, base,
                                Ms[s], precision);
        }

        for (int q = tid; q < te; q += nt) {
            const long long p = base + (long long)(q / W) * cs + q % W;
            C y = x[sidx(q)];
            if (split) {
                if (cls == 0) {
                    bufout[seq * n_rows + p] = y;
                    continue;
                }
                const C y0 = bufin[seq * n_rows + p];
                const C y1 = mul_conj(y, tab[p]);
                const C lo = y0 + y1;
                const C hi = y0 - y1;
                store_rows(p, C(lo.re * scale, lo.im * scale));
                store_rows(p + n_rows, C(hi.re * scale, hi.im * scale));
                continue;
            }
            if (store_mode == STORE_BUFFER) {
                bufout[seq * N + p] = y;
                continue;
            }
            store_rows(p, C(y.re * scale, y.im * scale));
        }
    }
}
