"""The pixelfly family's declaration (see :mod:`structlin._registry`)."""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Op, Row, shape_check


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import structlin as sl

    n, block, n_factors, rank, b = 2048, 32, 4, 16, 1024
    mask = sl.flat_block_butterfly_mask(n, n, block, n_factors)
    blocks = (rng.standard_normal((int(mask.sum()), block, block)) / block).astype(np.float32)
    U = (rng.standard_normal((n, rank)) / rank).astype(np.float32)
    V = (rng.standard_normal((n, rank)) / np.sqrt(n)).astype(np.float32)
    x = rng.standard_normal((b, n)).astype(np.float32)
    g = rng.standard_normal((b, n)).astype(np.float32)
    M = sl.pixelfly_to_dense(blocks, mask, U, V)
    size = f"n={n}, d={100 * mask.mean():.1f}%, b={b}"
    return [
        Row(f"pixelfly_multiply float32 (rank {rank})", size,
            lambda: sl.pixelfly_multiply(blocks, mask, U, V, x), "x @ M.T (BLAS)",
            lambda: x @ M.T),
        Row(f"pixelfly_multiply_vjp float32 (rank {rank})", size,
            lambda: sl.pixelfly_multiply_vjp(blocks, mask, U, V, x, g)[3],
            "g @ M and g.T @ x (BLAS)", lambda: (g.T @ x, g @ M)[1]),
    ]


def operations() -> tuple[Op, ...]:
    import structlin as sl

    def out_shape(shapes, static):
        blocks, mask, U, V, x = shapes
        shape_check(len(blocks) == 3 and blocks[1] == blocks[2],
                    f"blocks must have shape (nnz_blocks, block, block), got {tuple(blocks)}")
        shape_check(len(mask) == 2, f"mask must be 2-D (n_out // block, n_in // block), got "
                    f"shape {tuple(mask)}")
        b = blocks[1]
        n_out, n_in = mask[0] * b, mask[1] * b
        shape_check(len(x) >= 1 and x[-1] == n_in,
                    f"x must have n_in = {n_in} entries along its last axis (mask of shape "
                    f"{tuple(mask)} with blocks of {b}), got shape {tuple(x)}")
        shape_check(len(U) == 2 and U[0] == n_out,
                    f"U must have shape (n_out, rank) = ({n_out}, rank), got {tuple(U)}")
        shape_check(len(V) == 2 and V[0] == n_in and V[1] == U[1],
                    f"V must have shape (n_in, rank) = ({n_in}, {U[1]}), got {tuple(V)}")
        return (*x[:-1], n_out)

    return (
        Op(
            "pixelfly_multiply", ("blocks", "mask", "U", "V", "x"),
            (True, False, True, True, True),
            forward=lambda a, s: sl.pixelfly_multiply(*a),
            # the VJP returns (blocks, U, V, x): no gradient for the mask
            backward=lambda a, s, g: (lambda gb, gU, gV, gx: (gb, None, gU, gV, gx))(
                *sl.pixelfly_multiply_vjp(*a, g)
            ),
            out_shape=out_shape,
        ),
    )


FAMILY = Family(
    name="pixelfly",
    modules=('structlin.pixelfly',),
    kernels=(
        Kernel("pixelfly", {
            "matmul": ("blocks", "indptr", "indices", "x", "U", "xv"),
            "bsr_grad_blocks": ("g", "x", "indptr", "indices", "rows"),
        }),
    ),
    tutorial="docs/tutorials/pixelfly.md",
    tour=tour_rows,
    bench="bench_pixelfly",
    ops=operations,
)
