"""The ssm family's declaration (see :mod:`structlin._registry`): state space models (HiPPO,
discretization, S4D and S4 convolution kernels, diagonal and selective scans, Mamba-2's SSD,
semiseparable and quasiseparable matrices). The Vandermonde and Cauchy products under the S4D and
S4 kernels belong to the toeplitz family.
"""

from __future__ import annotations

import numpy as np

from structlin._registry import Family, Kernel, Op, Row, shape_broadcast, shape_check

# The kernel contracts, one per kernel module (structlin/_cpu/<module>.py and
# structlin/gpu/<module>.py), by the part of the family that calls it.

# the diagonal scan and its VJP (structlin.ssm_scan)
_SCAN: tuple[Kernel, ...] = (
    Kernel("ssm_scan", {
        "scan": ("ab", "bb", "c", "d", "u", "x0", "y", "xT"),
        "scan_vjp": ("ab", "bb", "c", "d", "u", "x0", "g", "gu", "gab", "gbb", "gc", "gd",
                     "gx0"),
    }),
)

# Mamba's selective scan and its VJP (structlin.selective_scan)
_SELECTIVE: tuple[Kernel, ...] = (
    Kernel("selective_scan", {
        "scan": ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "softplus", "has_z",
                 "out", "last_state"),
        "scan_vjp": ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "softplus", "has_z",
                     "g", "gu", "gdelta", "gA", "gB", "gC", "gD", "gz", "gbias"),
    }),
)

# the chunked semiseparable scan (structlin.ssd, structlin.semiseparable)
_SSD: tuple[Kernel, ...] = (
    Kernel("ssd", {
        "chunk_scan": ("x", "a", "b", "c", "s0", "chunk", "reverse", "y", "s_final"),
    }),
)


def tour_rows(rng: np.random.Generator) -> list[Row]:
    import structlin as sl
    from structlin import _ssm_reference as ref

    H, N, L = 128, 32, 2048
    Lam = np.tile(sl.s4d_init(2 * N, "lin"), (H, 1)).astype(np.complex64)
    Bk = np.ones((H, N), np.complex64)
    Ck = ((rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))) / 8).astype(
        np.complex64)
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), H)).astype(np.float32)
    b, d, l, n = 2, 256, 1024, 16
    u = rng.standard_normal((b, d, l)).astype(np.float32)
    delta = rng.uniform(0.001, 0.1, (b, d, l)).astype(np.float32)
    A = -np.exp(rng.uniform(0.0, 2.0, (d, n))).astype(np.float32)
    Bs, Cs = rng.standard_normal((2, b, n, l)).astype(np.float32)
    X = rng.standard_normal((1, 1024, 8, 64)).astype(np.float32)
    Ad = -rng.uniform(0.001, 0.1, (1, 1024, 8)).astype(np.float32)
    Bd, Cd = (rng.standard_normal((2, 1, 1024, 8, 16)) / 4).astype(np.float32)
    return [
        Row("ssm_kernel_diag complex64", f"H={H}, N={N}, L={L}",
            lambda: sl.ssm_kernel_diag(Lam, Bk, Ck, dt, L),
            "NumPy exp Vandermonde (S4D)",
            lambda: ref.s4d_kernel_vandermonde(Lam, Bk, Ck, dt, L)),
        Row("selective_scan float32", f"b,d,l,n={b},{d},{l},{n}",
            lambda: sl.selective_scan(u, delta, A, Bs, Cs),
            "NumPy selective_scan_ref",
            lambda: ref.selective_scan_ref(u, delta, A, Bs, Cs)),
        Row("ssd float32 (chunk 64)", "l=1024 h=8 p=64 n=16",
            lambda: sl.ssd(X, Ad, Bd, Cd, 64),
            "NumPy quadratic form (l x l per head)",
            lambda: ref.ssd_quadratic(X, Ad, Bd, Cd)),
    ]


def _kernel_diag_shape(shapes: tuple, s: dict) -> tuple[int, ...]:
    Lam, B, C, dt = shapes
    for name, a in (("Lambda", Lam), ("B", B), ("C", C)):
        shape_check(len(a) >= 2, f"{name} must have shape (..., H, N), got {tuple(a)}")
    core = shape_broadcast(f"Lambda, B and C must have broadcastable shapes (..., H, N), got "
                      f"{tuple(Lam)}, {tuple(B)} and {tuple(C)}", tuple(Lam), tuple(B),
                      tuple(C))
    shape_check(len(dt) >= 1, f"dt must have shape (..., H), got {tuple(dt)}")
    batch = shape_broadcast(f"dt of shape {tuple(dt)} must match Lambda's (..., H) = "
                       f"{core[:-1]}", core[:-1], tuple(dt))
    L = s["L"]
    shape_check(isinstance(L, int) and not isinstance(L, bool) and L >= 1,
                f"L must be a positive integer, got {L!r}")
    return (*batch, L)


def _selective_scan_shape(shapes: tuple, s: dict) -> tuple[int, ...]:
    u, delta, A, B, C, D, z, bias = shapes
    shape_check(len(u) >= 2, f"u must have shape (*batch, d, l), got {tuple(u)}")
    d = u[-2]
    for name, a in (("delta", delta), ("z", z)):
        shape_check(a is None or tuple(a) == tuple(u),
                    f"{name} must have u's shape {tuple(u)}, got {a}")
    shape_check(len(A) == 2 and A[0] == d, f"A must have shape (d, n) with d = {d}, got "
                f"{tuple(A)}")
    for name, a in (("D", D), ("delta_bias", bias)):
        shape_check(a is None or tuple(a) == (d,), f"{name} must have shape (d,) = ({d},), got "
                    f"{None if a is None else tuple(a)}")
    nd, batch, l, n = len(u), tuple(u[:-2]), u[-1], A[1]
    for name, a in (("B", B), ("C", C)):
        if len(a) == 2:
            ok = tuple(a) == tuple(A)
        elif len(a) in (nd, nd + 1):
            g = 1 if len(a) == nd else a[-3]
            # a last axis of 2 l: (re, im) pairs of a complex B/C with a complex A (the dtypes
            # decide, which the shapes alone cannot: the function checks that)
            ok = (tuple(a[:len(batch)]) == batch and a[-2] == n and a[-1] in (l, 2 * l)
                  and (len(a) == nd or (g >= 1 and d % g == 0)))
        else:
            ok = False
        shape_check(ok, f"{name} must have shape {tuple(A)} (time-invariant: (d, n) of A), or "
                    f"{(*batch, n, l)} / {(*batch, 'g', n, l)} (time-varying); got {tuple(a)}")
    return tuple(u)


def _ssd_shape(shapes: tuple, s: dict) -> tuple[int, ...]:
    X, A, B, C, h0 = shapes
    shape_check(len(X) == 4, f"X must have shape (batch, length, heads, head_dim), got "
                f"{tuple(X)}")
    b, l, h, p = X
    shape_check(tuple(A) == (b, l, h), f"A must have shape (batch, length, heads) = "
                f"{(b, l, h)}, got {tuple(A)}")
    for name, a in (("B", B), ("C", C)):
        shape_check(len(a) == 4 and tuple(a[:2]) == (b, l) and a[2] >= 1 and h % a[2] == 0,
                    f"{name} must have shape (batch, length, groups, state) = ({b}, {l}, g, n) "
                    f"with g dividing heads = {h}, got {tuple(a)}")
    shape_check(tuple(B) == tuple(C), f"B and C must have the same shape, got {tuple(B)} and "
                f"{tuple(C)}")
    shape_check(h0 is None or tuple(h0) == (b, h, p, B[3]),
                f"initial_states must have shape (batch, heads, head_dim, state) = "
                f"{(b, h, p, B[3])}, got {None if h0 is None else tuple(h0)}")
    cs = s["chunk_size"]
    shape_check(isinstance(cs, int) and not isinstance(cs, bool) and cs >= 1,
                f"chunk_size must be a positive integer, got {cs!r}")
    return tuple(X)


def operations() -> tuple[Op, ...]:
    import structlin as sl

    return (
        Op(
            "ssm_kernel_diag", ("Lambda", "B", "C", "dt"), (True,) * 4,
            forward=lambda a, s: sl.ssm_kernel_diag(*a, **s),
            backward=lambda a, s, g: sl.ssm_kernel_diag_vjp(
                *a, s["L"], g, **{k: v for k, v in s.items() if k != "L"}),
            out_shape=_kernel_diag_shape,
            static=("L", "method"),
            real_result=True,
        ),
        Op(
            "selective_scan", ("u", "delta", "A", "B", "C", "D", "z", "delta_bias"),
            (True,) * 8,
            forward=lambda a, s: sl.selective_scan(*a, **s),
            backward=lambda a, s, g: sl.selective_scan_vjp(
                *a[:5], g, D=a[5], z=a[6], delta_bias=a[7], **s),
            out_shape=_selective_scan_shape,
            static=("delta_softplus",),
            real_result=True,
        ),
        Op(
            "ssd", ("X", "A", "B", "C", "initial_states"), (True,) * 5,
            forward=lambda a, s: sl.ssd(*a[:4], s["chunk_size"], initial_states=a[4]),
            # four gradients, and a fifth for initial_states when it is given
            backward=lambda a, s, g: (*sl.ssd_vjp(*a[:4], s["chunk_size"], g,
                                                 initial_states=a[4]), None)[:5],
            out_shape=_ssd_shape,
            static=("chunk_size",),
        ),
    )


FAMILY = Family(
    name="ssm",
    modules=("structlin.ssm_hippo", "structlin.ssm_scan", "structlin.ssm_kernels",
             "structlin.ssm_dplr", "structlin.selective_scan", "structlin.ssd",
             "structlin.semiseparable"),
    kernels=(*_SCAN, *_SELECTIVE, *_SSD),
    tutorial="docs/tutorials/ssm.md",
    tour=tour_rows,
    bench="bench_ssm",
    ops=operations,
)
