"""The toeplitz family's declaration (see :mod:`structlin._registry`): Toeplitz, Hankel,
circulant, Vandermonde and Cauchy matrices and matrices of low displacement rank (LDR): fast
products, stable solvers (batched Levinson, GKO with partial pivoting, preconditioned Krylov
methods, Björck-Pereyra) and the displacement operators and generators.
"""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Op, Row, shape_check

# The kernel contracts, one per kernel module (structlin/_cpu/<module>.py and
# structlin/gpu/<module>.py), by the part of the family that calls it.

# --- BEGIN part A: batched Levinson (structlin.toeplitz, structlin.hankel) ---
# the Levinson-Trench-Zohar recursion for batches of general Toeplitz systems: solution,
# reflection coefficients, log|det| and sign, breakdown flag, a lower bound of ||T^{-1}||_1
_LEVINSON: tuple[Kernel, ...] = (
    Kernel("levinson", {
        "levinson": ("c", "r", "b", "x", "reflection", "logdet", "sign", "info", "invnorm",
                     "tol"),
    }),
)
# --- END part A ---

# --- BEGIN part B: GKO on Cauchy-like matrices (structlin.gko) ---
# GKO: Gaussian elimination with partial pivoting on Cauchy-like generators (structlin.gko:
# solve_cauchy_like, solve_cauchy, the Toeplitz solver gko_solve_toeplitz)
_GKO: tuple[Kernel, ...] = (
    Kernel("gko", {
        "gko": ("s", "t", "G", "H", "b", "x", "sign", "logabs", "pivots", "info"),
    }),
)
# --- END part B ---

# --- BEGIN part C: preconditioned Krylov solvers (structlin.toeplitz_pcg) ---
_PCG: tuple[Kernel, ...] = ()
# --- END part C ---

# --- BEGIN part D: Vandermonde products and Björck-Pereyra (structlin.vandermonde) ---
# fused Vandermonde products (structlin.vandermonde, the S4D kernel of structlin.ssm_kernels)
_VANDERMONDE: tuple[Kernel, ...] = (
    Kernel("vandermonde", {
        "vandermonde": ("x", "v", "out"),
        "vandermonde_t": ("x", "w", "out"),
        "exp_vandermonde_re": ("z", "v", "out"),
        "exp_vandermonde_t_re": ("z", "w", "out", "dout"),
        # Björck-Pereyra solves of V a = b and V^T a = b; info (B,) int32: 1 = repeated node
        "solve_vandermonde": ("x", "b", "out", "info"),
        "solve_vandermonde_t": ("x", "b", "out", "info"),
        # the order of the nodes for the solves: increasing (real >= 0) or Leja's
        "vandermonde_order": ("x", "perm", "work"),
    }),
)
# --- END part D ---

# --- BEGIN part E: low displacement rank (structlin.ldr) ---
# subdiagonal (LDR-SD) Krylov products: the leaves of the divide-and-conquer and the linear
# recurrence that differentiates its prefix/suffix products
_LDR: tuple[Kernel, ...] = (
    Kernel("ldr", {
        "krylov_leaf": ("a", "u", "g", "out", "leaf"),
        "krylov_t_leaf": ("a", "w", "g", "out", "leaf"),
        "krylov_grad_leaf": ("a", "w", "u", "g", "out", "leaf"),
        "linear_scan": ("c", "d", "out"),
    }),
)
# --- END part E ---

# fused Cauchy products (structlin.cauchy, the S4 kernel of structlin.ssm_dplr)
_CAUCHY: tuple[Kernel, ...] = (
    Kernel("cauchy", {
        "cauchy": ("x", "y", "v", "out"),
        "cauchy_square": ("x", "y", "v", "out", "out_sq"),
    }),
)


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import scipy.linalg

    import structlin as sl

    batch, n = 200, 256
    c = 1.0 / (1.0 + np.arange(n)) ** 2 * rng.uniform(0.5, 1.0, (batch, 1))
    c[:, 0] += 1.0
    b = rng.standard_normal((batch, n, 1))
    m = 1024
    cg, rg = rng.standard_normal((2, m))
    rg[0] = cg[0]
    bg = rng.standard_normal(m)
    T = scipy.linalg.toeplitz(cg, rg)
    # the Toeplitz-like generators of a Toeplitz matrix (Z_1 T - T Z_{-1} = G^T H, rank 2)
    from structlin.gko import _toeplitz_generators

    N = 4096
    ct, rt = rng.standard_normal((2, 1, N))
    G, H = _toeplitz_generators(ct, rt)
    x = rng.standard_normal((16, N))
    TN = scipy.linalg.toeplitz(ct[0], np.r_[ct[0, 0], rt[0, 1:]])
    return [
        Row("solve_toeplitz float64 (auto)", f"batch={batch}, n={n}",
            lambda: sl.solve_toeplitz(c, b),
            "scipy.linalg.solve_toeplitz (Levinson, a loop)",
            lambda: scipy.linalg.solve_toeplitz(c, b)),
        Row("solve_toeplitz float64 (GKO)", f"n={m}, nonsymmetric",
            lambda: sl.solve_toeplitz((cg, rg), bg, method="gko"),
            "scipy.linalg.solve on the dense T (LU)",
            lambda: scipy.linalg.solve(T, bg)),
        Row("ldr_multiply Toeplitz-like r=2", f"n={N}, batch=16",
            lambda: sl.ldr_multiply(G[0], H[0], x, "toeplitz"),
            "dense x @ T.T (BLAS)",
            lambda: x @ TN.T),
    ]


def _c_or_cr(c, r):
    return c if r is None else (c, r)


def _scipy_batch_shape(shapes: tuple, s: dict, square: bool = False,
                       name: str = "x") -> tuple[int, ...]:
    """The result shape of a SciPy-batched Toeplitz product (``T`` of ``len(c)`` rows and
    ``len(r)`` columns) or solve (``square``): ``b`` of shape ``(n,)`` keeps its core under
    the batch of ``c`` and ``r``; a ``b`` of two or more dimensions is a batch of ``(n, k)``
    matrices."""
    c, r, b = shapes
    shape_check(len(c) >= 1, f"c must have shape (..., m), got {tuple(c)}")
    shape_check(r is None or len(r) >= 1, f"r must have shape (..., n), got {r}")
    m, n = c[-1], (c if r is None else r)[-1]
    if square:
        shape_check(m == n, "Incompatible dimensions: r must have the length of c (the matrix "
                    f"is square), got c of shape {tuple(c)} and r of shape {r}")
    core = 1 if len(b) == 1 else 2
    shape_check(len(b) >= 1 and b[-core] == n,
                f"{name} must have n = {n} rows (shape (n,) or (..., n, k)), got shape "
                f"{tuple(b)}")
    batch = [tuple(c[:-1])] + ([tuple(r[:-1])] if r is not None else [])
    if core == 2:
        batch.append(tuple(b[:-2]))
    # batch shapes that do not broadcast: NumPy's ValueError, and the wrappers then ask the
    # function for its own message (which names the arguments)
    return (*np.broadcast_shapes(*batch), m, *b[len(b) - core + 1:])


def _toeplitz_grads(r, grads: tuple) -> tuple:
    """The ``(c, r, b)`` slots of a Toeplitz VJP (``grad_r`` absent when ``r`` is)."""
    return grads if r is not None else (grads[0], None, grads[1])


#: array operator parameters of :func:`structlin.ldr_multiply` by kind, in the op's order
_LDR_ARRAYS = ("nodes", "s", "t", "subdiag_A", "subdiag_B")
_LDR_KIND_ARRAYS = {"toeplitz": (), "hankel": (), "vandermonde": ("nodes",),
                    "cauchy": ("s", "t"), "subdiagonal": ("subdiag_A", "subdiag_B")}


def _ldr_params(a: tuple, s: dict) -> dict:
    params = {k: v for k, v in zip(_LDR_ARRAYS, a[3:], strict=True) if v is not None}
    params.update({k: s[k] for k in ("f", "f_A", "f_B") if s.get(k) is not None})
    return params


def _ldr_backward(a: tuple, s: dict, g, solve: bool = False) -> tuple:
    import structlin as sl

    vjp = sl.ldr_solve_vjp if solve else sl.ldr_multiply_vjp
    grads = vjp(*a[:3], g, s["kind"], **_ldr_params(a, s))
    out = [*grads[:3], None, None, None, None, None]
    for k, gk in zip(_LDR_KIND_ARRAYS[s["kind"]], grads[3:], strict=True):
        out[3 + _LDR_ARRAYS.index(k)] = gk
    return tuple(out)


def _ldr_shape(shapes: tuple, s: dict) -> tuple[int, ...]:
    G, H, x = shapes[:3]
    shape_check(len(x) >= 1, f"x must have shape (..., n), got {tuple(x)}")
    n = x[-1]
    for name, a in (("G", G), ("H", H)):
        shape_check(len(a) >= 2 and a[-1] == n,
                    f"{name} must have shape (..., r, n) with n = {n} (x's last axis), got "
                    f"{tuple(a)}")
    shape_check(G[-2] == H[-2], f"G and H must have the same rank r, got shapes {tuple(G)} and "
                f"{tuple(H)}")
    for k, a in zip(_LDR_ARRAYS, shapes[3:], strict=True):
        length = n - 1 if k.startswith("subdiag") else n
        shape_check(a is None or (len(a) >= 1 and a[-1] == length),
                    f"{k} must have length {length} along its last axis (n = {n}"
                    f"{' minus 1' if k.startswith('subdiag') else ''}), got shape {a}")
    # as in _scipy_batch_shape: the function's own message for batches that do not broadcast
    return (*np.broadcast_shapes(tuple(G[:-2]), tuple(H[:-2]), tuple(x[:-1])), n)


def _cauchy_shape(square: bool):
    """The result shape of a Cauchy product (``(..., m)`` for ``x_nodes`` of length ``m``) or
    solve (``square``: ``m = n``), after checking the lengths."""

    def out_shape(shapes: tuple, s: dict) -> tuple[int, ...]:
        xn, yn, v = shapes
        name = "b" if square else "v"
        for k, a in (("x_nodes", xn), ("y_nodes", yn), (name, v)):
            shape_check(len(a) >= 1, f"{k} must have at least one dimension, got shape {a}")
        if square:
            shape_check(xn[-1] == yn[-1], f"x_nodes and y_nodes must have the same length n, "
                        f"got shapes {tuple(xn)} and {tuple(yn)}")
        shape_check(v[-1] == yn[-1], f"{name} must have the length of y_nodes, n = {yn[-1]}, "
                    f"along its last axis, got shape {tuple(v)}")
        # batches that do not broadcast: NumPy's error, then the function's own message
        return (*np.broadcast_shapes(tuple(xn[:-1]), tuple(yn[:-1]), tuple(v[:-1])), xn[-1])

    return out_shape


def _vandermonde_shape(shapes: tuple, s: dict) -> tuple[int, ...]:
    """``matmul_vandermonde``: ``V[i, j] = x_j^i`` of shape ``(m, n)``; ``v`` of length ``n``
    (``m`` with ``transpose``)."""
    x, v = shapes
    m = s["m"]
    shape_check(isinstance(m, int) and not isinstance(m, bool) and m >= 1,
                f"m must be a positive integer, got {m!r}")
    shape_check(len(x) >= 1 and len(v) >= 1, f"x and v must have at least one dimension, got "
                f"shapes {tuple(x)} and {tuple(v)}")
    n = x[-1]
    inner, outer = (m, n) if s.get("transpose") else (n, m)
    shape_check(v[-1] == inner, f"v must have length {inner} along its last axis, got shape "
                f"{tuple(v)}")
    return (*np.broadcast_shapes(tuple(x[:-1]), tuple(v[:-1])), outer)


def _vandermonde_solve_shape(shapes: tuple, s: dict) -> tuple[int, ...]:
    x, b = shapes
    shape_check(len(x) >= 1 and len(b) >= 1 and b[-1] == x[-1],
                f"b must have the length of x, n = {x[-1] if len(x) else None}, along its last "
                f"axis, got shape {tuple(b)}")
    return (*np.broadcast_shapes(tuple(x[:-1]), tuple(b[:-1])), x[-1])


def operations() -> tuple[Op, ...]:
    import structlin as sl

    return (
        Op(
            "matmul_toeplitz", ("c", "r", "x"), (True, True, True),
            forward=lambda a, s: sl.matmul_toeplitz(_c_or_cr(a[0], a[1]), a[2]),
            backward=lambda a, s, g: _toeplitz_grads(
                a[1], sl.matmul_toeplitz_vjp(_c_or_cr(a[0], a[1]), a[2], g)),
            out_shape=_scipy_batch_shape,
        ),
        Op(
            "solve_toeplitz", ("c", "r", "b"), (True, True, True),
            forward=lambda a, s: sl.solve_toeplitz(_c_or_cr(a[0], a[1]), a[2], **s),
            backward=lambda a, s, g: _toeplitz_grads(
                a[1], sl.solve_toeplitz_vjp(_c_or_cr(a[0], a[1]), a[2], g, **s)),
            out_shape=lambda shapes, s: _scipy_batch_shape(shapes, s, square=True, name="b"),
            static=("method",),
        ),
        Op(
            "matmul_hankel", ("c", "r", "x"), (True, True, True),
            forward=lambda a, s: sl.matmul_hankel(_c_or_cr(a[0], a[1]), a[2]),
            backward=lambda a, s, g: _toeplitz_grads(
                a[1], sl.matmul_hankel_vjp(_c_or_cr(a[0], a[1]), a[2], g)),
            out_shape=_scipy_batch_shape,
        ),
        Op(
            "solve_hankel", ("c", "r", "b"), (True, True, True),
            forward=lambda a, s: sl.solve_hankel(_c_or_cr(a[0], a[1]), a[2], **s),
            backward=lambda a, s, g: _toeplitz_grads(
                a[1], sl.solve_hankel_vjp(_c_or_cr(a[0], a[1]), a[2], g, **s)),
            out_shape=lambda shapes, s: _scipy_batch_shape(shapes, s, square=True, name="b"),
            static=("method",),
        ),
        Op(
            "matmul_cauchy", ("x_nodes", "y_nodes", "v"), (True, True, True),
            forward=lambda a, s: sl.matmul_cauchy(*a),
            backward=lambda a, s, g: sl.matmul_cauchy_vjp(*a, g),
            out_shape=_cauchy_shape(square=False),
        ),
        Op(
            "solve_cauchy", ("x_nodes", "y_nodes", "b"), (True, True, True),
            forward=lambda a, s: sl.solve_cauchy(*a),
            backward=lambda a, s, g: sl.solve_cauchy_vjp(*a, g),
            out_shape=_cauchy_shape(square=True),
        ),
        Op(
            "matmul_vandermonde", ("x", "v"), (True, True),
            forward=lambda a, s: sl.matmul_vandermonde(*a, s["m"], transpose=s["transpose"]),
            backward=lambda a, s, g: sl.matmul_vandermonde_vjp(*a, s["m"], g,
                                                               transpose=s["transpose"]),
            out_shape=_vandermonde_shape,
            static=("m", "transpose"),
        ),
        Op(
            "solve_vandermonde", ("x", "b"), (True, True),
            forward=lambda a, s: sl.solve_vandermonde(*a, **s),
            backward=lambda a, s, g: sl.solve_vandermonde_vjp(*a, g, **s),
            out_shape=_vandermonde_solve_shape,
            static=("transpose",),
        ),
        Op(
            "ldr_solve", ("G", "H", "b", *_LDR_ARRAYS), (True,) * 8,
            forward=lambda a, s: sl.ldr_solve(*a[:3], s["kind"], **_ldr_params(a, s)),
            backward=lambda a, s, g: _ldr_backward(a, s, g, solve=True),
            out_shape=_ldr_shape,
            static=("kind", "f", "f_A", "f_B"),
        ),
        Op(
            "ldr_multiply", ("G", "H", "x", *_LDR_ARRAYS), (True,) * 8,
            forward=lambda a, s: sl.ldr_multiply(*a[:3], s["kind"], **_ldr_params(a, s)),
            backward=_ldr_backward,
            out_shape=_ldr_shape,
            static=("kind", "f", "f_A", "f_B"),
        ),
    )


FAMILY = Family(
    name="toeplitz",
    modules=("structlin.toeplitz", "structlin.hankel", "structlin.gko",
             "structlin.toeplitz_pcg", "structlin.vandermonde", "structlin.cauchy",
             "structlin.ldr"),
    kernels=(*_LEVINSON, *_GKO, *_PCG, *_VANDERMONDE, *_LDR, *_CAUCHY),
    tutorial="docs/tutorials/toeplitz_ldr.md",
    tour=tour_rows,
    bench="bench_toeplitz",
    ops=operations,
)
