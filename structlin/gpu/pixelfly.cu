// Block-sparse part of Pixelfly: y = x @ S.T over the block CSR of the mask, and the block
// gradients G[k] = g[:, I_k]^T conj(x[:, J_k]) (a sampled GEMM on the mask).
//
// Both kernels give each thread PF_OUT outputs in registers and stage the operands of a step
// in shared memory, so that every global element is read once per tile instead of once per
// output. Launch geometry (tile sizes) is computed by structlin/gpu/pixelfly.py.
#include "_common.cuh"

#define PF_OUT 4

// One block per (batch tile, block row I, chunk of cw output columns of the block row),
// chunk fastest. Output o of the tile (o = threadIdx.x + q * blockDim.x) is row b = o / cw,
// column r = o % cw. The reduction over the row's stored blocks runs in chunks of kc columns
// of the block: sx[b][c] = x[row0 + b, J*bs + c0 + c] and sw[c][r] = block[col0 + r, c0 + c]
// (padded to cw + 1 so that the transposing store spreads over the banks).
template <typename T>
__global__ void __launch_bounds__(256)
    pixelfly_bsr_matmul(const T* __restrict__ x, const T* __restrict__ blocks,
                        const long long* __restrict__ indptr,
                        const long long* __restrict__ indices, T* __restrict__ y,
                        long long batch, long long n_in, long long n_out, int bs, int nbo,
                        int tb, int cw, int kc) {
    const int n_cc = (bs + cw - 1) / cw;
    long long t = blockIdx.x;
    const int cc = (int)(t % n_cc);
    t /= n_cc;
    const int I = (int)(t % nbo);
    const long long row0 = (t / nbo) * tb;
    const int col0 = cc * cw;
    T* sx = reinterpret_cast<T*>(sl_shared);
    T* sw = sx + tb * kc;
    const int sws = cw + 1;
    const int n_tile = tb * cw;

    T acc[PF_OUT];
#pragma unroll
    for (int q = 0; q < PF_OUT; ++q) acc[q] = T(0);

    const long long p_end = indptr[I + 1];
    for (long long p = indptr[I]; p < p_end; ++p) {
        const long long J = indices[p];
        const T* blk = blocks + p * bs * bs;
        for (int c0 = 0; c0 < bs; c0 += kc) {
            const int kw = sl::imin(kc, bs - c0);
            __syncthreads();  // the previous step's tiles are no longer read
            for (int e = threadIdx.x; e < tb * kc; e += blockDim.x) {
                const int b = e / kc;
                const int c = e - b * kc;
                const long long row = row0 + b;
                sx[e] = (row < batch && c < kw) ? x[row * n_in + J * bs + c0 + c] : T(0);
            }
            // consecutive threads read consecutive columns of a block row (coalesced)
            for (int e = threadIdx.x; e < cw * kc; e += blockDim.x) {
                const int r = e / kc;
                const int c = e - r * kc;
                sw[c * sws + r] =
                    (c < kw && col0 + r < bs) ? blk[(long long)(col0 + r) * bs + c0 + c] : T(0);
            }
            __syncthreads();
#pragma unroll
            for (int q = 0; q < PF_OUT; ++q) {
                const int o = threadIdx.x + q * blockDim.x;
                if (o < n_tile) {
                    const int b = o / cw;
                    const int r = o - b * cw;
                    T s = acc[q];
                    for (int c = 0; c < kw; ++c) s += sx[b * kc + c] * sw[c * sws + r];
                    acc[q] = s;
                }
            }
        }
    }
#pragma unroll
    for (int q = 0; q < PF_OUT; ++q) {
        const int o = threadIdx.x + q * blockDim.x;
        if (o < n_tile) {
            const int b = o / cw;
            const int r = o - b * cw;
            const long long row = row0 + b;
            if (row < batch && col0 + r < bs) y[row * n_out + (long long)I * bs + col0 + r] = acc[q];
        }
    }
}

// One block per (stored block k, chunk of rc rows, chunk of cc columns of the block), column
// chunk fastest. Output o is (ri, ci) = (o / cc, o % cc) of the chunk; the batch is reduced in
// steps of tb rows staged as sg[b][ri] = g[b, I*bs + r0 + ri] and sx[b][ci] =
// conj(x[b, J*bs + c0 + ci]). Each output is owned by one thread: no atomics, and the
// summation order does not depend on the launch.
template <typename T>
__global__ void __launch_bounds__(256)
    pixelfly_bsr_grad_blocks(const T* __restrict__ g, const T* __restrict__ x,
                             const long long* __restrict__ rows,
                             const long long* __restrict__ indices, T* __restrict__ gblocks,
                             long long batch, long long n_in, long long n_out, int bs, int rc,
                             int cc, int tb) {
    const int n_cc = (bs + cc - 1) / cc;
    const int n_rc = (bs + rc - 1) / rc;
    long long t = blockIdx.x;
    const int ccx = (int)(t % n_cc);
    t /= n_cc;
    const int rcx = (int)(t % n_rc);
    const long long k = t / n_rc;
    const int r0 = rcx * rc;
    const int c0 = ccx * cc;
    const long long I = rows[k];
    const long long J = indices[k];
    T* sg = reinterpret_cast<T*>(sl_shared);
    T* sx = sg + tb * rc;
    const int n_tile = rc * cc;

    T acc[PF_OUT];
#pragma unroll
    for (int q = 0; q < PF_OUT; ++q) acc[q] = T(0);

    for (long long b0 = 0; b0 < batch; b0 += tb) {
        __syncthreads();
        for (int e = threadIdx.x; e < tb * rc; e += blockDim.x) {
            const int b = e / rc;
            const int ri = e - b * rc;
            const long long row = b0 + b;
            sg[e] = (row < batch && r0 + ri < bs) ? g[row * n_out + I * bs + r0 + ri] : T(0);
        }
        for (int e = threadIdx.x; e < tb * cc; e += blockDim.x) {
            const int b = e / cc;
            const int ci = e - b * cc;
            const long long row = b0 + b;
            sx[e] = (row < batch && c0 + ci < bs) ? sl::conj(x[row * n_in + J * bs + c0 + ci])
                                                  : T(0);
        }
        __syncthreads();
#pragma unroll
        for (int q = 0; q < PF_OUT; ++q) {
            const int o = threadIdx.x + q * blockDim.x;
            if (o < n_tile) {
                const int ri = o / cc;
                const int ci = o - ri * cc;
                T s = acc[q];
                for (int b = 0; b < tb; ++b) s += sg[b * rc + ri] * sx[b * cc + ci];
                acc[q] = s;
            }
        }
    }
#pragma unroll
    for (int q = 0; q < PF_OUT; ++q) {
        const int o = threadIdx.x + q * blockDim.x;
        if (o < n_tile) {
            const int ri = o / cc;
            const int ci = o - ri * cc;
            if (r0 + ri < bs && c0 + ci < bs) {
                gblocks[k * bs * bs + (long long)(r0 + ri) * bs + c0 + ci] = acc[q];
            }
        }
    }
}
