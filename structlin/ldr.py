"""Matrices of low displacement rank (LDR): displacement operators, generators, fast products.

A matrix ``M`` (``n x n``) has displacement rank ``r`` with respect to the operators ``A``, ``B``
when its displacement, of Sylvester type ``A M - M B`` or of Stein type ``M - A M B``, has rank
``r``; it is then given by ``2 r n`` numbers, the generators ``G``, ``H`` of shape ``(r, n)``
with ``displacement = G^T H = sum_k outer(G[k], H[k])``. The kinds of this module and their
operators (``Z_f`` is the ``f``-unit-circulant shift: ones on the subdiagonal, ``f`` in the
top-right corner, ``Z_f e_j = e_{j+1}``, ``Z_f e_{n-1} = f e_0``)::

    kind           type       A                    B                     keywords
    "toeplitz"     Sylvester  Z_1                  Z_{-1}                -
    "hankel"       Sylvester  Z_1                  Z_{-1}^T              -
    "vandermonde"  Sylvester  diag(nodes)          Z_f                   nodes, f=0.0
    "cauchy"       Sylvester  diag(s)              diag(t)               s, t
    "subdiagonal"  Stein      S(subdiag_A, f_A)    S(subdiag_B, f_B)     subdiag_A, subdiag_B,
                                                                         f_A=0.0, f_B=0.0

``S(a, f)`` is the subdiagonal matrix with ``S[l + 1, l] = a[l]`` (``a`` of length ``n - 1``)
and the corner ``S[0, n - 1] = f`` (the paper's LDR-SD class). Toeplitz matrices have
displacement rank at most 2 for their kind, Hankel matrices at most 2, Cauchy matrices
``1 / (s_i - t_j)`` rank 1, Vandermonde matrices ``nodes_i**j`` rank 1.

:func:`displacement` (any dense operators), :func:`ldr_compress` (generators from a dense
matrix by an SVD of its displacement), :func:`ldr_to_dense` (the reference, from the
definitions), :func:`ldr_multiply` and :func:`ldr_multiply_vjp` (fast products and their
gradients), :func:`ldr_solve` and :func:`ldr_solve_vjp` (the classical kinds, by GKO).

Reference: A. T. Thomas, A. Gu, T. Dao, A. Rudra, C. Ré, "Learning Compressed Transforms with
Low Displacement Rank", NeurIPS 2018, arXiv:1810.02309.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from structlin._backend import (
    fft_fast_length,
    fft_namespace,
    fft_pair,
    grad_like,
    kernels,
    sum_to_shape,
)
from structlin._validate import (
    ABSENT,
    check_choice,
    check_finite,
    check_float,
    check_int,
    check_min_ndim,
    check_shape,
    prepare,
)

__all__ = [
    "displacement",
    "ldr_compress",
    "ldr_multiply",
    "ldr_multiply_vjp",
    "ldr_solve",
    "ldr_solve_vjp",
    "ldr_to_dense",
]

#: the displacement structures of this module (see the module docstring for their operators)
KINDS = ("toeplitz", "hankel", "vandermonde", "cauchy", "subdiagonal")
#: the array operator parameters of each kind (differentiated by :func:`ldr_multiply_vjp`)
_ARRAYS = {"toeplitz": (), "hankel": (), "vandermonde": ("nodes",), "cauchy": ("s", "t"),
           "subdiagonal": ("subdiag_A", "subdiag_B")}
#: the scalar (real) operator parameters and their defaults
_SCALARS = {"toeplitz": {}, "hankel": {}, "vandermonde": {"f": 0.0}, "cauchy": {},
            "subdiagonal": {"f_A": 0.0, "f_B": 0.0}}
#: block of the subdiagonal divide-and-conquer below which the Krylov products are direct
LEAF = 32
#: the largest ``n`` accepted (the FFTs and kernels index with 32-bit integers)
MAX_N = 1 << 28
#: the largest ``n`` of the dense references and of :func:`ldr_compress` (a reference at
#: ``n = 4096`` takes seconds, its cost grows as ``r n^3``)
MAX_DENSE_N = 1 << 14


# ---------------------------------------------------------------------------------------------
# arguments

def _check_kind_params(kind: Any, params: dict) -> tuple[str, dict]:
    kind = check_choice(kind, "kind", KINDS)
    allowed = (*_ARRAYS[kind], *_SCALARS[kind])
    for key in params:
        if key not in allowed:
            raise TypeError(
                f"{key!r} is not an operator parameter of kind={kind!r}; it takes "
                f"{', '.join(allowed) if allowed else 'none'}"
            )
    for key in _ARRAYS[kind]:
        if key not in params or params[key] is None:
            raise ValueError(
                f"kind={kind!r} needs the operator parameter {key} (keywords "
                f"{', '.join(_ARRAYS[kind])})"
            )
    scalars = {}
    for key, default in _SCALARS[kind].items():
        scalars[key] = check_float(params.get(key, default), key)
    return kind, scalars


def _param_length(key: str, n: int) -> int:
    return n - 1 if key.startswith("subdiag") else n


class _Args:
    """The prepared arguments of one call: arrays broadcast to the batch and flattened to
    ``Bt`` rows (``G``, ``H`` of shape ``(Bt, r, n)``, ``x`` and the operator arrays
    ``(Bt, length)``), the compute dtype, the batch shape and the scalars."""

    def __init__(self, G: Any, H: Any, x: Any, grad: Any, kind: Any, params: dict,
                 what: str = "x"):
        kind, self.scalars = _check_kind_params(kind, params)
        arrays = {k: params[k] for k in _ARRAYS[kind]}
        p = prepare(G=G, H=H, **{what: x}, grad=grad, **arrays,
                    dtype_of=("G", "H", what, *arrays))
        self.p, self.kind, self.xp = p, kind, p.xp
        px = getattr(p, what)
        check_min_ndim(p.G, 2, "G", "(..., r, n)")
        check_min_ndim(p.H, 2, "H", "(..., r, n)")
        r, n = p.G.shape[-2:]
        self.r = check_int(r, "the rank of G (its axis -2)", minimum=1)
        self.n = n = check_int(n, "the size n of G (its last axis)", minimum=1, maximum=MAX_N)
        if tuple(p.H.shape[-2:]) != (r, n):
            raise ValueError(
                f"H must have shape (..., r, n) = (..., {r}, {n}) like G (shape "
                f"{tuple(p.G.shape)}), got shape {tuple(p.H.shape)}"
            )
        shapes = [p.G.shape[:-2], p.H.shape[:-2]]
        if px is not None:
            check_min_ndim(px, 1, what, "(..., n)")
            if px.shape[-1] != n:
                raise ValueError(
                    f"{what} must have length n = {n} along its last axis (the size of G, "
                    f"shape {tuple(p.G.shape)}), got shape {tuple(px.shape)}"
                )
            shapes.append(px.shape[:-1])
        for k in arrays:
            a = getattr(p, k)
            check_min_ndim(a, 1, k, f"(..., {_param_length(k, n)})")
            if a.shape[-1] != _param_length(k, n):
                raise ValueError(
                    f"{k} must have length {_param_length(k, n)} along its last axis "
                    f"(n = {n}{' minus 1' if k.startswith('subdiag') else ''}), got shape "
                    f"{tuple(a.shape)}"
                )
            shapes.append(a.shape[:-1])
        try:
            self.batch = tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            names = ["G", "H", *([what] if px is not None else []), *arrays]
            raise ValueError(
                "the batch dimensions of " + ", ".join(names) + " must broadcast, got shapes "
                + ", ".join(str(tuple(s)) for s in shapes)
            ) from None
        xp, dt = p.xp, p.dtype
        self.dtype = dt
        self.Bt = Bt = math.prod(self.batch)

        def rows(a, length, core=()):
            full = xp.broadcast_to(a, (*self.batch, *core, length))
            return xp.ascontiguousarray(full.reshape((Bt, *core, length)), dtype=dt)

        self.G = rows(p.G, n, (r,))
        self.H = rows(p.H, n, (r,))
        self.x = None if px is None else rows(px, n)
        self.ops = {k: rows(getattr(p, k), _param_length(k, n)) for k in arrays}
        self.grad = p.grad
        self._check_operators()

    def _check_operators(self) -> None:
        xp, n = self.xp, self.n
        if self.kind == "cauchy":
            s, t = self.ops["s"], self.ops["t"]
            if not (bool(xp.isfinite(s).all()) and bool(xp.isfinite(t).all())):
                raise ValueError("s and t must be finite, but they contain NaN or infinity")
            # the direct test for small nodes sets; above, matmul_cauchy's own (its result is
            # not finite for finite data exactly when some s_i - t_j vanishes or underflows)
            small = s.shape[0] * s.shape[1] * t.shape[1] <= 1 << 22
            same = xp.argwhere(s[:, :, None] == t[:, None, :]) if small else None
            if same is not None and same.shape[0]:
                b, i, j = (int(v) for v in same[0])
                raise ValueError(
                    f"s and t must not share a value (D_s M - M D_t would not determine M): "
                    f"s[..., {i}] == t[..., {j}] (row {b} of the flattened batch)"
                )
        elif self.kind == "vandermonde":
            z = self.ops["nodes"]
            if not bool(xp.isfinite(z).all()):
                raise ValueError("nodes must be finite, but they contain NaN or infinity")
            den = z ** n - self.scalars["f"]
            bad = xp.argwhere(den == 0)
            if bad.shape[0]:
                b, i = (int(v) for v in bad[0])
                raise ValueError(
                    f"nodes[..., {i}]**n must differ from f = {self.scalars['f']} (row {b}): "
                    f"diag(nodes) M - M Z_f would not determine M"
                )
            self.kappa = 1 / den
        elif self.kind == "subdiagonal":
            a, b = self.ops["subdiag_A"], self.ops["subdiag_B"]
            fa, fb = self.scalars["f_A"], self.scalars["f_B"]
            alpha = fa * xp.prod(a, axis=-1)
            beta = fb * xp.prod(b, axis=-1)
            den = 1 - alpha * beta
            if bool((den == 0).any()):
                raise ValueError(
                    "f_A * prod(subdiag_A) * f_B * prod(subdiag_B) must differ from 1: the "
                    "Stein operator M - A M B is then singular"
                )
            self.alpha, self.beta, self.sigma = alpha, beta, 1 / den

    def out(self, y: Any) -> Any:
        """``y`` of shape ``(Bt, n)`` as the result: batch restored, the compute dtype."""
        y = y.real if self.dtype.kind != "c" and y.dtype.kind == "c" else y
        return self.xp.ascontiguousarray(y, dtype=self.dtype).reshape((*self.batch, self.n))

    def grad_of(self, g: Any, name: str) -> Any:
        """The gradient ``g`` (flattened rows) of argument ``name``, summed to its shape."""
        arg = getattr(self.p, name)
        g = g.reshape((*self.batch, *g.shape[1:]))
        return grad_like(self.xp, sum_to_shape(g, arg.shape), arg)


# ---------------------------------------------------------------------------------------------
# FFT polynomial products along the last axis

def _lconv(xp: Any, a: Any, b: Any, m: int) -> Any:
    """Circular convolution of length ``m`` of ``a`` and ``b`` (zero-padded), broadcast."""
    fwd, inv = fft_pair(xp, a.dtype.kind != "c" and b.dtype.kind != "c")
    return inv(fwd(a, m) * fwd(b, m), m)


def _linear_length(xp: Any, a: Any, b: Any, n: int) -> int:
    """A fast FFT length holding the whole linear convolution (``2n - 1`` terms) of two rows
    of length ``n``: a circular one of that length has no wrapped terms."""
    return fft_fast_length(xp, 2 * n - 1, a.dtype.kind != "c" and b.dtype.kind != "c")


def _fconv(xp: Any, a: Any, b: Any, f: float) -> Any:
    """``Z_f(a) b``: the ``f``-circular convolution ``sum_j a_{i-j} b_j`` (wrapped terms
    times ``f``), ``Z_f(a) = sum_k a_k Z_f^k`` the ``f``-circulant with first column ``a``."""
    n = a.shape[-1]
    c = _lconv(xp, a, b, _linear_length(xp, a, b, n))
    y = c[..., :n]
    if f and n > 1:
        y[..., :n - 1] += f * c[..., n:2 * n - 1]
    return y


def _fcorr(xp: Any, h: Any, x: Any, f: float) -> Any:
    """``Z_f(x)^T h``, i.e. ``u_j = h^T Z_f^j x`` (the ``f``-circular correlation)."""
    n = h.shape[-1]
    c = _lconv(xp, h, x[..., ::-1], _linear_length(xp, h, x, n))
    u = c[..., n - 1:2 * n - 1]
    if f and n > 1:
        u = u + f * xp.concatenate([xp.zeros_like(c[..., :1]), c[..., :n - 1]], axis=-1)
    return u


# ---------------------------------------------------------------------------------------------
# subdiagonal Krylov products by divide and conquer
#
# For the cyclic weighted shift A = S(a, f) and row vectors w, u, g of length n, the trilinear
# form  T(w, u, g) = w^T K(A, g) u = sum_j u_j w^T A^j g  has the three partial derivatives
#     _krylov(u, g)    = K(A, g) u            (d/dw)
#     _krylov_t(w, g)  = [w^T A^d g]_d        (d/du)
#     K(A^T, w) u      = J _krylov(u, J w) with the reversed weights     (d/dg)
# and _krylov_grad(w, u, g) = dT/da. Without the corner, (A^j g)_i = P(i-j, i) g_{i-j} with
# P(k, i) = a_k ... a_{i-1}: T = sum_{k <= i} w_i P(k, i) u_{i-k} g_k. Splitting the index
# range into halves [b, mid), [mid, b + 2s), the pairs k < mid <= i factor through
# P(k, i) = P(k, mid) P(mid, i) into one Toeplitz (polynomial) product of length 2s, done by
# FFT for all blocks of a level at once; the pairs inside a leaf of LEAF indices are direct
# (kernels "ldr"). The corner adds the pairs i < k (one wrap, weight f P(0, i) P(k, n-1)): the
# same factorised product with one block of size n.


def _pow2(n: int) -> int:
    return max(LEAF, 1 << max(0, (n - 1).bit_length()))


def _pad(xp: Any, v: Any, N: int) -> Any:
    out = xp.zeros((v.shape[0], N), dtype=v.dtype)
    out[:, :v.shape[1]] = v
    return out


class _Cross:
    """One level of the divide and conquer: blocks of ``2s`` (``nb`` of them), the left halves'
    suffix products ``Pl[k] = P(k, mid)`` and the right halves' prefix products
    ``Pr[i] = P(mid, i)``. The weights ``aL``, ``aR`` of the halves have shape
    ``(Ra, 1, nb, s)``, shared by the ``rr`` data rows of each weight row (the ``r``
    generators): the data are ``(Ra, rr, nb, s)``, ``u`` is ``(Ra * rr, >= min(2s, n))``."""

    def __init__(self, xp: Any, aL: Any, aR: Any, u: Any, rr: int):
        self.xp, self.aL, self.aR, self.rr = xp, aL, aR, rr
        s = aL.shape[-1]
        self.s = s
        self.Pl = xp.flip(xp.cumprod(xp.flip(aL, -1), axis=-1), -1)
        one = xp.ones_like(aR[..., :1])
        self.Pr = xp.concatenate([one, xp.cumprod(aR[..., :-1], axis=-1)], axis=-1)
        u2 = xp.zeros((u.shape[0], 2 * s), dtype=u.dtype)
        m = min(2 * s, u.shape[1])
        u2[:, :m] = u[:, :m]
        self.u2 = u2.reshape(aL.shape[0], rr, 1, 2 * s)

    def f1(self, gL: Any) -> Any:
        """``Pr_i sum_k u_{s+i-k} Pl_k gL_k`` for the right halves, shape (Ra, rr, nb, s)."""
        s = self.s
        return self.Pr * _lconv(self.xp, self.Pl * gL, self.u2, 2 * s)[..., s:]

    def f2(self, wR: Any, gL: Any) -> Any:
        """``c[d] = sum_blocks sum_{s+i-k = d} wR_i Pr_i Pl_k gL_k``, shape (Ra * rr, 2s)."""
        xp, s = self.xp, self.s
        W = wR * self.Pr
        Gr = xp.flip(gL * self.Pl, -1)
        m = 2 * s
        fwd, inv = fft_pair(xp, W.dtype.kind != "c" and Gr.dtype.kind != "c")
        c = inv((fwd(W, m) * fwd(Gr, m)).sum(axis=-2), m)
        c = c.reshape(-1, m)
        out = xp.zeros_like(c)
        out[:, 1:] = c[:, :-1]
        return out

    def f4(self, ker: Any, wR: Any, gL: Any) -> tuple[Any, Any]:
        """The derivative of ``sum wR_i Pr_i u_{s+i-k} Pl_k gL_k`` with respect to ``aL`` and
        ``aR`` (each (Ra, rr, nb, s), per data row), by the linear recurrences of the
        products (no division)."""
        xp, s = self.xp, self.s
        W = wR * self.Pr
        E = xp.flip(_lconv(xp, xp.flip(W, -1), self.u2, 2 * s)[..., s:], -1)
        F = _lconv(xp, gL * self.Pl, self.u2, 2 * s)[..., s:]
        D = gL * E
        Ep = wR * F
        dt = wR.dtype
        shape = (self.aL.shape[0], self.rr, *self.aL.shape[2:])
        R2 = math.prod(shape[:-1])

        def scan(c, d):
            # fresh writable buffers: a read-only view would be another Numba signature
            cc = xp.empty(shape, dtype=dt)
            cc[...] = c
            dd = xp.empty(shape, dtype=dt)
            dd[...] = d
            c, d = cc.reshape(R2, s), dd.reshape(R2, s)
            out = xp.empty_like(d)
            ker.linear_scan(c, d, out)
            return out.reshape(shape)

        Q = scan(self.aL, D)
        Pl_next = xp.concatenate([self.Pl[..., 1:], xp.ones_like(self.Pl[..., :1])], axis=-1)
        gaL = Pl_next * Q
        d = xp.concatenate([xp.zeros_like(Ep[..., :1]), xp.flip(Ep, -1)[..., :-1]], axis=-1)
        Rb = xp.flip(scan(xp.flip(self.aR, -1), d), -1)
        gaR = self.Pr * Rb
        return gaL, gaR


def _levels(n: int):
    N = _pow2(n)
    s = LEAF
    while s < N:
        yield N, s
        s *= 2


def _blocks(v: Any, s: int, ra: int) -> tuple[Any, Any]:
    """``v`` (ra * rr, N) as halves of blocks of ``2s``: two views (ra, rr, N / 2s, s)."""
    R, N = v.shape
    b = v.reshape(ra, R // ra, N // (2 * s), 2 * s)
    return b[..., :s], b[..., s:]


def _wrap(xp: Any, a: Any, u: Any, rr: int) -> _Cross:
    """The corner's pairs ``i < k`` as one block of size ``n`` (weights ``aL = [a, 1]``,
    ``aR = [a, 0]``)."""
    one = xp.ones_like(a[:, :1])
    aL = xp.concatenate([a, one], axis=-1)[:, None, None, :]
    aR = xp.concatenate([a, 0 * one], axis=-1)[:, None, None, :]
    return _Cross(xp, aL, aR, u, rr)


def _setup(xp: Any, a: Any, rows: tuple, N: int) -> tuple:
    """Padded copies: the weights (Ra, N) and repeated for the leaf kernels (R, N), the rows."""
    Ra = a.shape[0]
    R = rows[0].shape[0]
    rr = R // Ra
    ap = _pad(xp, a, N)
    afull = xp.repeat(ap, rr, axis=0) if rr > 1 else ap
    return Ra, rr, ap, afull, [_pad(xp, v, N) for v in rows]


def _krylov(xp: Any, ker: Any, a: Any, f: float, u: Any, g: Any) -> Any:
    """``K(A, g) u`` for ``A = S(a, f)``: rows (R, n), weights a (Ra, n - 1) shared by
    ``R / Ra`` consecutive rows."""
    R, n = g.shape
    N = _pow2(n)
    Ra, rr, ap, afull, (up, gp) = _setup(xp, a, (u, g), N)
    y = xp.zeros((R, N), dtype=g.dtype)
    ker.krylov_leaf(afull, up, gp, y, min(LEAF, N))
    for _, s in _levels(n):
        aL, aR = _blocks(ap, s, Ra)
        gL, _ = _blocks(gp, s, Ra)
        yb = y.reshape(Ra, rr, N // (2 * s), 2 * s)
        yb[..., s:] += _Cross(xp, aL, aR, up, rr).f1(gL)
    y = y[:, :n]
    if f and n > 1:
        y = y + f * _wrap(xp, a, u, rr).f1(g.reshape(Ra, rr, 1, n)).reshape(R, n)
    return y


def _krylov_t(xp: Any, ker: Any, a: Any, f: float, w: Any, g: Any) -> Any:
    """``[w^T A^d g]_d`` for ``A = S(a, f)``: rows (R, n), weights as for :func:`_krylov`."""
    R, n = g.shape
    N = _pow2(n)
    Ra, rr, ap, afull, (wp, gp) = _setup(xp, a, (w, g), N)
    u = xp.zeros((R, N), dtype=g.dtype)
    ker.krylov_t_leaf(afull, wp, gp, u, min(LEAF, N))
    for _, s in _levels(n):
        aL, aR = _blocks(ap, s, Ra)
        gL, _ = _blocks(gp, s, Ra)
        _, wR = _blocks(wp, s, Ra)
        u[:, :2 * s] += _Cross(xp, aL, aR, u[:, :0], rr).f2(wR, gL)
    u = u[:, :n]
    if f and n > 1:
        u = u + f * _wrap(xp, a, u[:, :0], rr).f2(w.reshape(Ra, rr, 1, n),
                                                   g.reshape(Ra, rr, 1, n))[:, :n]
    return u


def _krylov_adj(xp: Any, ker: Any, a: Any, f: float, w: Any, u: Any) -> Any:
    """``K(A^T, w) u = d(w^T K(A, g) u)/dg``, by the reversal ``J A^T J = S(a[::-1], f)``."""
    return _krylov(xp, ker, xp.ascontiguousarray(a[:, ::-1]), f, u,
                   xp.ascontiguousarray(w[:, ::-1]))[:, ::-1]


def _krylov_grad(xp: Any, ker: Any, a: Any, f: float, w: Any, u: Any, g: Any) -> Any:
    """``d(w^T K(A, g) u) / da`` (holomorphic derivative), one row (R, n - 1) per data row."""
    R, n = g.shape
    if n == 1:
        return xp.zeros((R, 0), dtype=g.dtype)
    N = _pow2(n)
    Ra, rr, ap, afull, (wp, up, gp) = _setup(xp, a, (w, u, g), N)
    ga = xp.zeros((R, N), dtype=g.dtype)
    ker.krylov_grad_leaf(afull, wp, up, gp, ga, min(LEAF, N))
    for _, s in _levels(n):
        aL, aR = _blocks(ap, s, Ra)
        gL, _ = _blocks(gp, s, Ra)
        _, wR = _blocks(wp, s, Ra)
        gaL, gaR = _Cross(xp, aL, aR, up, rr).f4(ker, wR, gL)
        gb = ga.reshape(Ra, rr, N // (2 * s), 2 * s)
        gb[..., :s] += gaL
        gb[..., s:] += gaR
    ga = ga[:, :n - 1]
    if f:
        gaL, gaR = _wrap(xp, a, u, rr).f4(ker, w.reshape(Ra, rr, 1, n), g.reshape(Ra, rr, 1, n))
        ga = ga + f * (gaL + gaR).reshape(R, n)[:, :n - 1]
    return ga


def _prod_others(xp: Any, a: Any) -> Any:
    """``prod_{m != l} a_m`` for every ``l`` (prefix times suffix products, no division)."""
    one = xp.ones_like(a[:, :1])
    pre = xp.concatenate([one, xp.cumprod(a, axis=-1)[:, :-1]], axis=-1)
    suf = xp.concatenate([xp.flip(xp.cumprod(xp.flip(a, -1), axis=-1), -1)[:, 1:], one],
                         axis=-1)
    return pre * suf


# ---------------------------------------------------------------------------------------------
# the products of each kind: forward (rows) and the cotangent pass

def _rep(x: Any, r: int) -> Any:
    """``(Bt, n)`` rows repeated for each of the ``r`` generators: ``(Bt * r, n)``."""
    Bt, n = x.shape
    return x[:, None, :].repeat(r, axis=1).reshape(Bt * r, n) if r > 1 else x


def _toeplitz_forward(xp: Any, G: Any, H: Any, x: Any) -> Any:
    u = _fcorr(xp, H, x[:, None, :], -1.0)
    return 0.5 * _fconv(xp, G, u[..., ::-1], 1.0).sum(axis=1)


def _toeplitz_vjp(xp: Any, G: Any, H: Any, x: Any, gy: Any) -> tuple:
    cg = xp.conj(gy)[:, None, :]
    u = _fcorr(xp, H, x[:, None, :], -1.0)
    v = u[..., ::-1]
    gG = xp.conj(0.5 * _fcorr(xp, cg, v, 1.0))
    cu = (0.5 * _fcorr(xp, cg, G, 1.0))[..., ::-1]
    gH = xp.conj(_fconv(xp, x[:, None, :], cu, -1.0))
    gx = xp.conj(_fcorr(xp, H, cu, -1.0).sum(axis=1))
    return gG, gH, gx


def _subdiag_rows(args: _Args) -> tuple:
    r, Bt, n = args.r, args.Bt, args.n
    a, b = args.ops["subdiag_A"], args.ops["subdiag_B"]
    return a, b, args.G.reshape(Bt * r, n), args.H.reshape(Bt * r, n)


def _subdiag_forward(args: _Args, ker: Any) -> Any:
    xp, r, Bt, n = args.xp, args.r, args.Bt, args.n
    a, b, G, H = _subdiag_rows(args)
    U = _krylov_t(xp, ker, b, args.scalars["f_B"], H, _rep(args.x, r))
    Y0 = _krylov(xp, ker, a, args.scalars["f_A"], U, G).reshape(Bt, r, n).sum(axis=1)
    return args.sigma[:, None] * Y0


def _subdiag_vjp(args: _Args, ker: Any, gy: Any) -> dict:
    xp, r, Bt, n = args.xp, args.r, args.Bt, args.n
    fa, fb = args.scalars["f_A"], args.scalars["f_B"]
    a, b, G, H = _subdiag_rows(args)
    X = _rep(args.x, r)
    sig = args.sigma
    sigR = _rep(sig[:, None], r)
    cg = _rep(xp.conj(gy), r)
    U = _krylov_t(xp, ker, b, fb, H, X)
    Y0 = _krylov(xp, ker, a, fa, U, G).reshape(Bt, r, n).sum(axis=1)
    cu = sigR * _krylov_t(xp, ker, a, fa, cg, G)
    gG = xp.conj(sigR * _krylov_adj(xp, ker, a, fa, cg, U))
    ga = sigR * _krylov_grad(xp, ker, a, fa, cg, U, G)
    gH = xp.conj(_krylov(xp, ker, b, fb, cu, X))
    gx = xp.conj(_krylov_adj(xp, ker, b, fb, H, cu).reshape(Bt, r, n).sum(axis=1))
    gb = _krylov_grad(xp, ker, b, fb, H, cu, X)
    ga = ga.reshape(Bt, r, n - 1).sum(axis=1)
    gb = gb.reshape(Bt, r, n - 1).sum(axis=1)
    if (fa and fb) and n > 1:
        dot = (xp.conj(gy) * Y0).sum(axis=-1)[:, None]
        sa, sb = args.ops["subdiag_A"], args.ops["subdiag_B"]
        ga = ga + sig[:, None] ** 2 * args.beta[:, None] * fa * _prod_others(xp, sa) * dot
        gb = gb + sig[:, None] ** 2 * args.alpha[:, None] * fb * _prod_others(xp, sb) * dot
    return {"G": gG.reshape(Bt, r, n), "H": gH.reshape(Bt, r, n), "x": gx,
            "subdiag_A": xp.conj(ga), "subdiag_B": xp.conj(gb)}


def _cauchy_forward(args: _Args) -> Any:
    from structlin.cauchy import matmul_cauchy

    s, t = args.ops["s"][:, None, :], args.ops["t"][:, None, :]
    try:
        c = matmul_cauchy(s, t, args.H * args.x[:, None, :])
    except ValueError as exc:
        raise ValueError(f"s and t (x_nodes and y_nodes below) must not share a value: "
                         f"{exc}") from None
    return (args.G * c).sum(axis=1)


def _cauchy_vjp(args: _Args, gy: Any) -> dict:
    from structlin.cauchy import matmul_cauchy, matmul_cauchy_vjp

    xp = args.xp
    s, t = args.ops["s"][:, None, :], args.ops["t"][:, None, :]
    v = args.H * args.x[:, None, :]
    c = matmul_cauchy(s, t, v)
    g3 = gy[:, None, :]
    gG = xp.conj(c) * g3
    gs, gt, gv = matmul_cauchy_vjp(s, t, v, xp.conj(args.G) * g3)
    return {"G": gG, "H": gv * xp.conj(args.x)[:, None, :],
            "x": (gv * xp.conj(args.H)).sum(axis=1), "s": gs[:, 0], "t": gt[:, 0]}


def _vandermonde_forward(args: _Args) -> Any:
    from structlin.vandermonde import matmul_vandermonde

    f, n = args.scalars["f"], args.n
    z = args.ops["nodes"][:, None, :]
    q = _fcorr(args.xp, args.H, args.x[:, None, :], f)[..., ::-1]
    p = matmul_vandermonde(z, q, n, transpose=True)
    return args.kappa * (args.G * p).sum(axis=1)


def _vandermonde_vjp(args: _Args, gy: Any) -> dict:
    from structlin.vandermonde import matmul_vandermonde, matmul_vandermonde_vjp

    xp, f, n = args.xp, args.scalars["f"], args.n
    z = args.ops["nodes"]
    q = xp.ascontiguousarray(_fcorr(xp, args.H, args.x[:, None, :], f)[..., ::-1])
    p = matmul_vandermonde(z[:, None, :], q, n, transpose=True)
    kap = args.kappa[:, None, :]
    g3 = gy[:, None, :]
    gG = xp.conj(kap * p) * g3
    gp = xp.conj(kap * args.G) * g3
    gz3, gq = matmul_vandermonde_vjp(z[:, None, :], q, n, gp, transpose=True)
    gkap = (xp.conj(args.G * p) * g3).sum(axis=1)
    dkap = -n * z ** (n - 1) * args.kappa ** 2
    gz = gz3[:, 0] + xp.conj(dkap) * gkap
    gu = gq[..., ::-1]
    gH = _fconv(xp, xp.conj(args.x)[:, None, :], gu, f)
    gx = _fcorr(xp, xp.conj(args.H), gu, f).sum(axis=1)
    return {"G": gG, "H": gH, "x": gx, "nodes": gz}


def _forward(args: _Args) -> Any:
    xp, kind = args.xp, args.kind
    if kind == "toeplitz":
        return _toeplitz_forward(xp, args.G, args.H, args.x)
    if kind == "hankel":
        return _toeplitz_forward(xp, args.G, args.H[..., ::-1], args.x[..., ::-1])
    if kind == "cauchy":
        return _cauchy_forward(args)
    if kind == "vandermonde":
        return _vandermonde_forward(args)
    return _subdiag_forward(args, kernels(xp, "ldr"))


def _backward(args: _Args, gy: Any) -> dict:
    xp, kind = args.xp, args.kind
    if kind == "toeplitz":
        gG, gH, gx = _toeplitz_vjp(xp, args.G, args.H, args.x, gy)
        return {"G": gG, "H": gH, "x": gx}
    if kind == "hankel":
        gG, gH, gx = _toeplitz_vjp(xp, args.G, args.H[..., ::-1], args.x[..., ::-1], gy)
        return {"G": gG, "H": gH[..., ::-1], "x": gx[..., ::-1]}
    if kind == "cauchy":
        return _cauchy_vjp(args, gy)
    if kind == "vandermonde":
        return _vandermonde_vjp(args, gy)
    return _subdiag_vjp(args, kernels(xp, "ldr"), gy)


# ---------------------------------------------------------------------------------------------
# public functions

def displacement(M: Any, A: Any, B: Any, kind: str = "sylvester") -> Any:
    """Return the displacement ``A M - M B`` (Sylvester) or ``M - A M B`` (Stein) of ``M``.

    Parameters
    ----------
    M : array_like, shape (..., m, n)
        The matrix.
    A : array_like, shape (..., m, m)
    B : array_like, shape (..., n, n)
        The operator matrices, dense (a reference utility: ``O(m n (m + n))`` work). Leading
        dimensions broadcast.
    kind : {"sylvester", "stein"}, default "sylvester"

    Returns
    -------
    ndarray, shape (..., m, n)
        In the promoted dtype of ``M``, ``A``, ``B``.

    Raises
    ------
    ValueError
        Non-square ``A`` or ``B``, sizes that do not match ``M``, batch shapes that do not
        broadcast, an unknown ``kind``.
    TypeError
        Non-numeric arrays, NumPy mixed with CuPy.

    See Also
    --------
    ldr_compress : generators of a matrix from the SVD of its displacement.

    Notes
    -----
    The displacement rank of ``M`` is the rank of its displacement; a Toeplitz matrix has
    rank at most 2 for ``A = Z_1``, ``B = Z_{-1}`` (Thomas et al., arXiv:1810.02309).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import toeplitz
    >>> from structlin.ldr import displacement
    >>> Z1 = np.roll(np.eye(4), 1, axis=0)                       # Z_1
    >>> Zm = Z1.copy(); Zm[0, -1] = -1                            # Z_{-1}
    >>> T = toeplitz([1.0, 2.0, 3.0, 4.0], [1.0, -1.0, 5.0, 0.5])
    >>> int(np.linalg.matrix_rank(displacement(T, Z1, Zm)))
    2
    """
    kind = check_choice(kind, "kind", ("sylvester", "stein"))
    p = prepare(M=M, A=A, B=B)
    check_min_ndim(p.M, 2, "M", "(..., m, n)")
    check_min_ndim(p.A, 2, "A", "(..., m, m)")
    check_min_ndim(p.B, 2, "B", "(..., n, n)")
    m, n = p.M.shape[-2:]
    if tuple(p.A.shape[-2:]) != (m, m):
        raise ValueError(f"A must have shape (..., {m}, {m}) (M has {m} rows), got shape "
                         f"{tuple(p.A.shape)}")
    if tuple(p.B.shape[-2:]) != (n, n):
        raise ValueError(f"B must have shape (..., {n}, {n}) (M has {n} columns), got shape "
                         f"{tuple(p.B.shape)}")
    try:
        np.broadcast_shapes(p.M.shape[:-2], p.A.shape[:-2], p.B.shape[:-2])
    except ValueError:
        raise ValueError(
            f"the batch dimensions of M, A and B must broadcast, got shapes "
            f"{tuple(p.M.shape)}, {tuple(p.A.shape)}, {tuple(p.B.shape)}") from None
    xp, dt = p.xp, p.dtype
    Mx, Ax, Bx = (xp.asarray(v, dtype=dt) for v in (p.M, p.A, p.B))
    if kind == "sylvester":
        return Ax @ Mx - Mx @ Bx
    return Mx - Ax @ Mx @ Bx


def _shift(xp: Any, n: int, f: Any, dt: Any) -> Any:
    Z = xp.zeros((n, n), dtype=dt)
    if n > 1:
        idx = xp.arange(n - 1)
        Z[idx + 1, idx] = 1
    Z[0, n - 1] = Z[0, n - 1] + f
    return Z


def _operator_matrices(args: _Args) -> tuple[Any, Any, str]:
    """Dense ``A``, ``B`` of shape (Bt, n, n) and the displacement type of the kind."""
    xp, n, dt, Bt, kind = args.xp, args.n, args.dtype, args.Bt, args.kind

    def tile(Z):
        return xp.broadcast_to(Z, (Bt, n, n))

    if kind == "toeplitz":
        return tile(_shift(xp, n, 1.0, dt)), tile(_shift(xp, n, -1.0, dt)), "sylvester"
    if kind == "hankel":
        return tile(_shift(xp, n, 1.0, dt)), tile(_shift(xp, n, -1.0, dt).T), "sylvester"
    eye = xp.eye(n, dtype=dt)
    if kind == "cauchy":
        return (eye * args.ops["s"][:, None, :], eye * args.ops["t"][:, None, :], "sylvester")
    if kind == "vandermonde":
        return (eye * args.ops["nodes"][:, None, :], tile(_shift(xp, n, args.scalars["f"], dt)),
                "sylvester")

    def sub(a, f):
        S = xp.zeros((Bt, n, n), dtype=dt)
        if n > 1:
            idx = xp.arange(n - 1)
            S[:, idx + 1, idx] = a
        S[:, 0, n - 1] += f
        return S

    return (sub(args.ops["subdiag_A"], args.scalars["f_A"]),
            sub(args.ops["subdiag_B"], args.scalars["f_B"]), "stein")


def _krylov_dense(xp: Any, v: Any, w: Any, forward: bool) -> Any:
    """``K(S, v) = [v, S v, ..., S^(n-1) v]`` (Bt, n, n) for a weighted cyclic shift ``S``:
    ``(S v)_i = w_i v_{i-1 mod n}`` (``forward``) or ``w_i v_{i+1 mod n}``; v, w (Bt, n).
    Every operator whose Krylov matrix the references need is of this form."""
    n = v.shape[-1]
    K = xp.empty((*v.shape, n), dtype=v.dtype)
    col = v
    for j in range(n):
        K[..., j] = col
        col = w * xp.roll(col, 1 if forward else -1, axis=-1)
    return K


def _shift_weights(args: _Args) -> tuple:
    """The weights of ``A`` (forward shift) and of ``B^T`` (forward or backward) of the kinds
    whose operators are weighted cyclic shifts (see :func:`_krylov_dense`)."""
    xp, n, dt, Bt, kind = args.xp, args.n, args.dtype, args.Bt, args.kind
    ones = xp.ones((Bt, n), dtype=dt)

    def corner(w, i, f):
        w = w.copy()
        w[:, i] = f
        return w

    if kind == "toeplitz":   # A = Z_1, B^T = Z_{-1}^T
        return corner(ones, 0, 1.0), (corner(ones, n - 1, -1.0), False)
    if kind == "hankel":     # A = Z_1, B^T = Z_{-1}
        return corner(ones, 0, 1.0), (corner(ones, 0, -1.0), True)
    if kind == "vandermonde":  # B^T = Z_f^T
        return None, (corner(ones, n - 1, args.scalars["f"]), False)
    a, b = args.ops["subdiag_A"], args.ops["subdiag_B"]   # A = S(a, f_A), B^T = S(b, f_B)^T
    wa = xp.concatenate([xp.full((Bt, 1), args.scalars["f_A"], dtype=dt), a], axis=-1)
    wb = xp.concatenate([b, xp.full((Bt, 1), args.scalars["f_B"], dtype=dt)], axis=-1)
    return wa, (wb, False)


def _to_dense(args: _Args) -> Any:
    xp, n, kind, r = args.xp, args.n, args.kind, args.r
    G, H = args.G, args.H
    if kind == "cauchy":
        s, t = args.ops["s"], args.ops["t"]
        return xp.matmul(xp.swapaxes(G, -1, -2), H) / (s[:, :, None] - t[:, None, :])
    wa, (wb, fwd) = _shift_weights(args)
    M = xp.zeros((args.Bt, n, n), dtype=args.dtype)
    for k in range(r):
        KB = _krylov_dense(xp, H[:, k], wb, fwd)
        if kind in ("toeplitz", "hankel"):
            # A^n = I, B^n = -I:  sum_j A^(n-1-j) (A M - M B) B^j = 2 M
            M += 0.5 * xp.matmul(_krylov_dense(xp, G[:, k], wa, True)[..., ::-1],
                                 xp.swapaxes(KB, -1, -2))
        elif kind == "vandermonde":
            # row i: m_i^T (z_i I - Z_f) = (G^T H)_i, (z I - Z_f)^-1 = sum_j z^(n-1-j) Z_f^j
            # / (z^n - f)
            z = args.ops["nodes"]
            Vr = z[:, :, None] ** (n - 1 - xp.arange(n))           # z_i^(n-1-j)
            M += xp.matmul(args.kappa[:, :, None] * G[:, k, :, None] * Vr,
                           xp.swapaxes(KB, -1, -2))
        else:
            M += xp.matmul(_krylov_dense(xp, G[:, k], wa, True), xp.swapaxes(KB, -1, -2))
    if kind == "subdiagonal":
        M *= args.sigma[:, None, None]
    return M


def ldr_to_dense(G: Any, H: Any, kind: str, **operator_params: Any) -> Any:
    """Return the ``n x n`` matrix ``M`` whose displacement of the given kind is ``G^T H``.

    Parameters
    ----------
    G, H : array_like, shape (..., r, n)
        The generators: the displacement of ``M`` is ``G^T H = sum_k outer(G[k], H[k])``.
    kind : {"toeplitz", "hankel", "vandermonde", "cauchy", "subdiagonal"}
        The displacement structure (below).
    **operator_params
        ``nodes`` (..., n) and ``f`` (float, default 0) for "vandermonde"; ``s``, ``t``
        (..., n) for "cauchy"; ``subdiag_A``, ``subdiag_B`` (..., n - 1) and ``f_A``,
        ``f_B`` (floats, default 0) for "subdiagonal". Leading dimensions broadcast.

    Returns
    -------
    ndarray, shape (..., n, n)
        In the promoted dtype of the arrays.

    Raises
    ------
    ValueError
        Mismatched generators, missing operator parameters, an unknown kind, operators for
        which the displacement does not determine ``M`` (coinciding Cauchy nodes,
        ``nodes**n == f``, ``f_A f_B prod(subdiag_A) prod(subdiag_B) == 1``), ``n`` above
        :data:`MAX_DENSE_N`.
    TypeError
        Non-numeric arrays, an unknown keyword.

    See Also
    --------
    ldr_multiply : the product without the matrix.
    ldr_compress : the generators of a dense matrix.

    Notes
    -----
    The reference, from the definitions, ``O(r n^3)`` work::

        toeplitz, hankel:  M = 1/2 sum_k K(A, g_k) J K(B^T, h_k)^T     (A^n = I, B^n = -I)
        vandermonde:       M = diag(1 / (nodes^n - f)) sum_k diag(g_k) V_rev K(Z_f^T, h_k)^T
                           with V_rev[i, j] = nodes_i^(n-1-j)
        cauchy:            M[i, j] = sum_k g_k[i] h_k[j] / (s_i - t_j)
        subdiagonal:       M = sum_k K(A, g_k) K(B^T, h_k)^T / (1 - alpha beta)

    with ``K(A, v) = [v, A v, ..., A^(n-1) v]`` the Krylov matrix, ``J`` the reversal and
    ``alpha = f_A prod(subdiag_A)``, ``beta = f_B prod(subdiag_B)`` (``A^n = alpha I``): the
    paper's ``1 / (1 - f_A f_B)`` for unit subdiagonals (Thomas et al., arXiv:1810.02309).

    The operators of each kind (``Z_f`` the ``f``-unit-circulant shift, ``S(a, f)`` the
    subdiagonal matrix with ``S[l + 1, l] = a[l]`` and corner ``S[0, n - 1] = f``)::

        "toeplitz"     Z_1 M - M Z_{-1}        = G^T H
        "hankel"       Z_1 M - M Z_{-1}^T      = G^T H
        "vandermonde"  diag(nodes) M - M Z_f   = G^T H      (nodes**n != f)
        "cauchy"       diag(s) M - M diag(t)   = G^T H      (s_i != t_j)
        "subdiagonal"  M - A M B               = G^T H      (A = S(subdiag_A, f_A),
                                                              B = S(subdiag_B, f_B))
    Examples
    --------
    >>> import numpy as np
    >>> from structlin.ldr import ldr_compress, ldr_to_dense
    >>> s, t = np.array([1.0, 2.0, 3.0]), np.array([0.0, -1.0, 0.5])
    >>> C = 1 / (s[:, None] - t)
    >>> G, H = ldr_compress(C, "cauchy", s=s, t=t)
    >>> G.shape, bool(np.allclose(ldr_to_dense(G, H, "cauchy", s=s, t=t), C))
    ((1, 3), True)
    """
    args = _Args(G, H, ABSENT, ABSENT, kind, operator_params)
    if args.n > MAX_DENSE_N:
        raise ValueError(f"n = {args.n} is above MAX_DENSE_N = {MAX_DENSE_N} for the dense "
                         "matrix; use ldr_multiply")
    M = _to_dense(args)
    M = M.real if args.dtype.kind != "c" and M.dtype.kind == "c" else M
    return args.xp.ascontiguousarray(M, dtype=args.dtype).reshape(
        (*args.batch, args.n, args.n))


def ldr_compress(M: Any, kind: str, rank: int | None = None, *, tol: float | None = None,
                 **operator_params: Any) -> tuple[Any, Any]:
    """Return generators ``(G, H)`` of the best rank-``r`` approximation of ``M``'s
    displacement.

    Parameters
    ----------
    M : array_like, shape (..., n, n)
        The matrix.
    kind : {"toeplitz", "hankel", "vandermonde", "cauchy", "subdiagonal"}
        The displacement structure (operators below); ``operator_params`` as for
        :func:`ldr_to_dense`.
    rank : int, optional
        The number ``r`` of generators. None: the numerical displacement rank, the number of
        singular values of the displacement above ``tol`` (the largest over the batch,
        at least 1).
    tol : float, optional
        Absolute threshold on the singular values; default ``n * eps * (||L||_F + ||R||_F)``
        for the displacement ``L - R`` (``A M - M B`` or ``M - A M B``; ``eps`` of the dtype):
        the size of the rounding errors of the displacement.

    Returns
    -------
    G, H : ndarray, shape (..., r, n)
        ``G^T H = U_r S_r V_r^H`` (the truncated SVD of the displacement, ``G^T = U_r
        S_r^(1/2)``, ``H = S_r^(1/2) V_r^H``). For an exact LDR matrix of rank ``r``,
        ``ldr_to_dense(G, H, kind, ...)`` returns ``M``; for a noisy one, the matrix whose
        displacement is the best rank-``r`` approximation (Eckart-Young) of ``M``'s.

    Raises
    ------
    ValueError
        ``M`` not square, ``rank`` outside ``[1, n]``, ``tol`` negative, the operator
        parameters as for :func:`ldr_to_dense`.
    TypeError
        Non-numeric arrays, ``rank`` not an integer, an unknown keyword.

    See Also
    --------
    displacement, ldr_to_dense, ldr_multiply

    Notes
    -----
    One dense displacement (``O(n^2)`` for the shifts and diagonals, ``O(n^3)`` for the
    subdiagonal kind's products) and one SVD, ``O(n^3)``. Toeplitz and Hankel matrices give
    ``r <= 2``, Cauchy and Vandermonde matrices ``r = 1``.
    The operators of each kind: the table of :func:`ldr_to_dense` (and the module docstring).
    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import toeplitz
    >>> from structlin.ldr import ldr_compress, ldr_to_dense
    >>> T = toeplitz([4.0, 1.0, 0.5, 2.0], [4.0, -1.0, 3.0, 0.0])
    >>> G, H = ldr_compress(T, "toeplitz")
    >>> G.shape, bool(np.allclose(ldr_to_dense(G, H, "toeplitz"), T))
    ((2, 4), True)
    """
    p = prepare(M=M)
    check_min_ndim(p.M, 2, "M", "(..., n, n)")
    n = p.M.shape[-1]
    if p.M.shape[-2] != n:
        raise ValueError(f"M must be square, shape (..., n, n), got shape {tuple(p.M.shape)}")
    check_int(n, "the size n of M", minimum=1, maximum=MAX_DENSE_N)
    check_finite(p.M, "M")
    xp = p.xp
    if rank is not None:
        rank = check_int(rank, "rank", minimum=1, maximum=n)
    if tol is not None:
        tol = check_float(tol, "tol", minimum=0.0)
    # the operators, through the same checks as the products (zero generators of size n)
    zeros = xp.zeros((1, n), dtype=p.M.dtype if p.M.dtype.kind in "fc" else np.float64)
    args = _Args(zeros, zeros, p.M[..., 0, :], ABSENT, kind, operator_params, what="M")
    A, B, typ = _operator_matrices(args)
    batch = tuple(np.broadcast_shapes(p.M.shape[:-2], args.batch))
    dt = args.dtype
    Mx = xp.broadcast_to(xp.asarray(p.M, dtype=dt), (*batch, n, n)).reshape(-1, n, n)
    A = xp.broadcast_to(A.reshape((*args.batch, n, n)), (*batch, n, n)).reshape(-1, n, n)
    B = xp.broadcast_to(B.reshape((*args.batch, n, n)), (*batch, n, n)).reshape(-1, n, n)
    if typ == "sylvester":
        left, right = A @ Mx, Mx @ B
    else:
        left, right = Mx, A @ Mx @ B
    D = left - right
    if D.shape[0] == 0:
        r = rank or 1
        z = xp.zeros((*batch, r, n), dtype=dt)
        return z, z.copy()
    U, S, Vh = xp.linalg.svd(D)
    if rank is None:
        eps = np.finfo(np.dtype(dt).type(0).real.dtype).eps
        # the rounding scale of the displacement: the two terms it is the difference of
        scale = xp.sqrt((xp.abs(left) ** 2).sum(axis=(-1, -2))) + xp.sqrt(
            (xp.abs(right) ** 2).sum(axis=(-1, -2)))
        thr = (n * eps) * scale[:, None] if tol is None else tol
        rank = max(1, int((S > thr).sum(axis=-1).max()))
    sq = xp.sqrt(S[:, :rank])
    G = xp.swapaxes(U[:, :, :rank] * sq[:, None, :], -1, -2)
    H = sq[:, :, None] * Vh[:, :rank, :]
    shape = (*batch, rank, n)
    return (xp.ascontiguousarray(G, dtype=dt).reshape(shape),
            xp.ascontiguousarray(H, dtype=dt).reshape(shape))


def ldr_multiply(G: Any, H: Any, x: Any, kind: str, **operator_params: Any) -> Any:
    """Return ``M @ x`` for the LDR matrix ``M`` of generators ``G``, ``H``, without ``M``.

    Parameters
    ----------
    G, H : array_like, shape (..., r, n)
        The generators (the displacement of ``M`` is ``G^T H``).
    x : array_like, shape (..., n)
        The vectors (last axis).
    kind : {"toeplitz", "hankel", "vandermonde", "cauchy", "subdiagonal"}
        The displacement structure (operators below).
    **operator_params
        As for :func:`ldr_to_dense`: ``nodes``, ``f``; ``s``, ``t``; ``subdiag_A``,
        ``subdiag_B``, ``f_A``, ``f_B``.

    Returns
    -------
    ndarray, shape (..., n)
        ``y[..., i] = sum_j M[..., i, j] x[..., j]``; batch dimensions of all arrays
        broadcast; NumPy's promoted dtype (integers to float64, float32 kept).

    Raises
    ------
    ValueError
        Mismatched shapes (named), an unknown kind, a missing operator parameter, operators
        for which ``M`` is not determined (see :func:`ldr_to_dense`).
    TypeError
        Non-numeric arrays, an unknown keyword, NumPy mixed with CuPy.

    See Also
    --------
    ldr_multiply_vjp : the gradients.
    ldr_to_dense : the matrix (the reference).

    Notes
    -----
    - "toeplitz": ``M = 1/2 sum_k Z_1(g_k) J K(Z_{-1}^T, h_k)^T`` (from ``Z_1^n = I``,
      ``Z_{-1}^n = -I``), ``Z_f(v) = sum_j v_j Z_f^j`` the ``f``-circulant with first column
      ``v``: ``u_k = K(Z_{-1}^T, h_k)^T x = Z_{-1}(x)^T h_k`` (``u_j = h_k^T Z_{-1}^j x``, a
      skew-circular correlation) and ``M x = 1/2 sum_k Z_1(g_k) (J u_k)`` (a circular
      convolution), each by FFTs of length ``2n``: ``O(r n log n)``. "hankel": the same on
      ``M J``, which is Toeplitz-like with generators ``G``, ``H J`` (vector ``J x``).
    - "subdiagonal": ``M x = sum_k K(A, g_k) (K(B^T, h_k)^T x) / (1 - alpha beta)``, both
      Krylov products by divide and conquer on halves (``w^T A^d g`` and ``K(A, g) u``
      factor across a split point into one polynomial product of length ``2s`` done by FFT
      for all blocks of a level together; blocks of :data:`LEAF` indices direct in the
      ``ldr`` kernels, Numba or CUDA): ``O(r n log^2 n)`` work and ``O(r n)`` memory, any
      ``n`` (padded to a power of two internally); the corner adds one product of length
      ``2n``. Every product is formed by multiplication (no division, zero weights allowed)
      -- the paper's Algorithm (Thomas et al., arXiv:1810.02309, Appendix).
    - "cauchy": ``M = sum_k diag(g_k) C(s, t) diag(h_k)``, one call of the fused kernel of
      :func:`structlin.matmul_cauchy` for the ``r`` vectors, ``O(r n^2)`` work, ``O(r n)``
      memory.
    - "vandermonde": ``M = diag(1 / (nodes^n - f)) sum_k diag(g_k) V_rev W_k`` with ``W_k x =
      [h_k^T Z_f^j x]_j`` (an FFT correlation) and ``V_rev`` applied by the fused
      :func:`structlin.vandermonde.matmul_vandermonde` (transposed): ``O(r n^2)``. The
      factors ``nodes^(n-1-j)`` and ``1 / (nodes^n - f)`` overflow and underflow for nodes
      far from the unit circle at large ``n``: a limit of this representation, not of the
      product.

    The operators of each kind: the table of :func:`ldr_to_dense` (and the module docstring).
    Examples
    --------
    >>> import numpy as np
    >>> from structlin.ldr import ldr_multiply, ldr_to_dense
    >>> rng = np.random.default_rng(0)
    >>> G, H, x = rng.standard_normal((2, 8)), rng.standard_normal((2, 8)), np.ones(8)
    >>> a, b = np.full(7, 0.5), np.ones(7)
    >>> y = ldr_multiply(G, H, x, "subdiagonal", subdiag_A=a, subdiag_B=b)
    >>> M = ldr_to_dense(G, H, "subdiagonal", subdiag_A=a, subdiag_B=b)
    >>> bool(np.allclose(y, M @ x))
    True
    """
    args = _Args(G, H, x, ABSENT, kind, operator_params)
    if args.Bt == 0:
        return args.xp.zeros((*args.batch, args.n), dtype=args.dtype)
    return args.out(_forward(args))


def ldr_multiply_vjp(G: Any, H: Any, x: Any, grad: Any, kind: str,
                     **operator_params: Any) -> tuple:
    """Return the gradients of :func:`ldr_multiply` for the output gradient ``grad``.

    Parameters
    ----------
    G, H, x, kind, **operator_params
        As for :func:`ldr_multiply`.
    grad : array_like, shape (..., n)
        Gradient of a real loss with respect to ``ldr_multiply(G, H, x, kind, ...)`` (the
        broadcast batch shape).

    Returns
    -------
    tuple of ndarray
        ``(grad_G, grad_H, grad_x)`` followed by the gradients of the kind's array operator
        parameters: ``grad_nodes`` ("vandermonde"), ``grad_s, grad_t`` ("cauchy"),
        ``grad_subdiag_A, grad_subdiag_B`` ("subdiagonal"). Each has its argument's shape
        and dtype (summed over broadcast dimensions; float32 kept; real for a real
        argument), PyTorch's convention ``dl/dRe z + 1j dl/dIm z`` for complex ones. The
        scalar corners ``f``, ``f_A``, ``f_B`` are not differentiated.

    Raises
    ------
    ValueError, TypeError
        As for :func:`ldr_multiply`, and ``grad`` of the wrong shape.

    See Also
    --------
    ldr_multiply : the product.

    Notes
    -----
    The same fast products as the forward pass: for a product ``y = L(p) q`` bilinear in its
    arguments every gradient is a product of the same structure with the conjugated
    cotangent (convolutions become correlations and back; ``K(A, g) u`` becomes
    ``[w^T A^d g]_d`` and ``K(A^T, w) u``). The derivative with respect to a subdiagonal
    differentiates the prefix and suffix products of every divide-and-conquer level by a
    first-order linear recurrence (kernel ``linear_scan``): ``O(r n log^2 n)`` plus
    ``O(r n LEAF^2)`` in the leaves. Cauchy and Vandermonde use
    :func:`structlin.matmul_cauchy_vjp` and :func:`structlin.vandermonde.matmul_vandermonde_vjp`.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.ldr import ldr_multiply_vjp, ldr_to_dense
    >>> rng = np.random.default_rng(1)
    >>> G, H, x, g = (rng.standard_normal(s) for s in ((2, 4), (2, 4), 4, 4))
    >>> gG, gH, gx = ldr_multiply_vjp(G, H, x, g, "toeplitz")
    >>> bool(np.allclose(gx, ldr_to_dense(G, H, "toeplitz").T @ g))
    True
    """
    args = _Args(G, H, x, grad, kind, operator_params)
    xp = args.xp
    check_shape(args.grad, (*args.batch, args.n), "grad", "the shape of ldr_multiply's output")
    gy = xp.ascontiguousarray(xp.broadcast_to(args.grad, (*args.batch, args.n)).reshape(
        args.Bt, args.n))
    if gy.dtype.kind == "c" and args.dtype.kind != "c":
        gy = gy.real
    gy = xp.ascontiguousarray(gy, dtype=args.dtype)
    names = ("G", "H", "x", *_ARRAYS[args.kind])
    if args.Bt == 0:
        return tuple(grad_like(xp, xp.zeros(getattr(args.p, k).shape, dtype=args.dtype),
                               getattr(args.p, k)) for k in names)
    grads = _backward(args, gy)
    return tuple(args.grad_of(grads[k], k) for k in names)


def ldr_solve(G: Any, H: Any, b: Any, kind: str, **operator_params: Any) -> Any:
    """Return the solution ``x`` of ``M x = b`` for the LDR matrix ``M`` of ``G``, ``H``.

    Parameters
    ----------
    G, H : array_like, shape (..., r, n)
        The generators (the displacement of ``M`` is ``G^T H``).
    b : array_like, shape (..., n)
        The right-hand sides (last axis).
    kind : {"toeplitz", "hankel", "vandermonde", "cauchy"}
        The displacement structure (the table of :func:`ldr_to_dense`); "subdiagonal" has no
        solver.
    **operator_params
        As for :func:`ldr_multiply`.

    Returns
    -------
    ndarray, shape (..., n)
        ``x`` with ``M x = b``; batch dimensions broadcast; NumPy's promoted dtype (real for
        real data).

    Raises
    ------
    ValueError
        ``kind="subdiagonal"`` (the message lists the supported kinds), the argument errors of
        :func:`ldr_multiply`, nodes that coincide with the eigenvalues used by the Cauchy form
        ("vandermonde": a node with ``nodes**n == -1``).
    numpy.linalg.LinAlgError
        A singular system (an exactly zero pivot column in GKO).

    Warns
    -----
    scipy.linalg.LinAlgWarning
        An ill-conditioned system (the smallest GKO pivot below ``eps`` times the largest).

    See Also
    --------
    ldr_solve_vjp : the gradients.
    structlin.gko.solve_cauchy_like : the Cauchy-like solver all kinds reduce to.
    ldr_multiply : the product.

    Notes
    -----
    Gohberg-Kailath-Olshevsky (GKO, Math. Comp. 64, 1995): Gaussian elimination with partial
    pivoting on the generators of a Cauchy-like matrix, ``O(r n^2)``. "cauchy" is solved
    as it is. "toeplitz": ``M = F C F^* D^{-1}`` with ``C`` Cauchy-like (the DFT conversion of
    :mod:`structlin.gko`, ``O(r n log n)``). "hankel": ``M J`` is Toeplitz-like (generators
    ``G``, ``H J``), ``x = J (M J)^{-1} b``. "vandermonde": ``diag(nodes) M - M Z_{-1} =
    G^T H + (f + 1) (M e_0) e_{n-1}^T`` (rank ``r + 1``; ``M e_0`` by :func:`ldr_multiply`),
    and ``C = M D F`` is Cauchy-like with the nodes and the eigenvalues of ``Z_{-1}`` (the same
    conversion of the right operator), ``x = D F C^{-1} b``.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import toeplitz
    >>> from structlin.ldr import ldr_compress, ldr_solve
    >>> T = toeplitz([4.0, 1.0, 0.5, 0.0], [4.0, 0.0, 3.0, 2.0])
    >>> G, H = ldr_compress(T, "toeplitz")
    >>> b = np.array([1.0, 2.0, 3.0, 4.0])
    >>> bool(np.allclose(T @ ldr_solve(G, H, b, "toeplitz"), b))
    True
    """
    args = _solve_args(G, H, b, ABSENT, kind, operator_params)
    if args.Bt == 0:
        return args.xp.zeros((*args.batch, args.n), dtype=args.dtype)
    return args.out(_solve_rows(args, args.x, adjoint=False))


_SOLVABLE = ("toeplitz", "hankel", "vandermonde", "cauchy")


def _solve_args(G: Any, H: Any, b: Any, grad: Any, kind: Any, params: dict) -> _Args:
    kind = check_choice(kind, "kind", KINDS)
    if kind not in _SOLVABLE:
        raise ValueError(f"ldr_solve has no solver for kind={kind!r}; it solves the kinds "
                         f"{_SOLVABLE}")
    return _Args(G, H, b, grad, kind, params, what="b")


def _solve_rows(args: _Args, rhs: Any, adjoint: bool) -> Any:
    """``M^{-1} rhs`` (``M^{-H} rhs`` with ``adjoint``) for rows ``rhs`` (Bt, n), by the
    Cauchy-like forms of :mod:`structlin.gko` (``C^{-H}`` is the solve with the Cauchy-like
    ``C^H``: nodes ``conj(t)``, ``conj(s)``, generators ``-conj(Hc)``, ``conj(Gc)``)."""
    from structlin import gko

    xp, n, Bt, kind = args.xp, args.n, args.Bt, args.kind

    def cauchy(s, t, Gc, Hc, v):
        if adjoint:
            return gko.solve_cauchy_like(xp.conj(t), xp.conj(s), -xp.conj(Hc), xp.conj(Gc), v)
        return gko.solve_cauchy_like(s, t, Gc, Hc, v)

    Gx, Hx = args.G, args.H
    if kind == "cauchy":
        return cauchy(args.ops["s"], args.ops["t"], Gx, Hx, rhs)
    fft = fft_namespace(xp)
    if kind in ("toeplitz", "hankel"):
        if kind == "hankel":       # M = T J with T Toeplitz-like (G, H J)
            Hx = xp.ascontiguousarray(Hx[..., ::-1])
            if adjoint:            # M^{-H} = T^{-H} J
                rhs = rhs[..., ::-1]
        s, t, Gc, Hc = gko._toeplitz_like_to_cauchy_like(Gx, Hx)
        if adjoint:                # T^{-1} = D F C^{-1} F^*,  T^{-H} = F C^{-H} F^* conj(D)
            d = xp.conj(gko._delta(xp, n, Gc.dtype))
            return fft.fft(cauchy(s, t, Gc, Hc, gko._to_cauchy_rhs(d * rhs)), axis=-1,
                           norm="ortho")
        x = gko._from_cauchy_solution(cauchy(s, t, Gc, Hc, gko._to_cauchy_rhs(rhs)))
        return x[..., ::-1] if kind == "hankel" else x
    # vandermonde: diag(z) M - M Z_{-1} = G^T H + (f + 1) (M e_0) e_{n-1}^T, C = M D F
    f = args.scalars["f"]
    if f != -1.0:
        e0 = xp.zeros((Bt, n), dtype=args.dtype)
        e0[:, 0] = 1
        col = (f + 1) * _vandermonde_forward(_replace_x(args, e0))
        last = xp.zeros((Bt, 1, n), dtype=args.dtype)
        last[:, 0, n - 1] = 1
        Gx = xp.concatenate([Gx, col.astype(args.dtype)[:, None, :]], axis=1)
        Hx = xp.concatenate([Hx, last], axis=1)
    _, t, _, Hc = gko._toeplitz_like_to_cauchy_like(Gx, Hx)
    z = args.ops["nodes"]
    try:
        if adjoint:                # M^{-1} = D F C^{-1},  M^{-H} = C^{-H} F^* conj(D)
            d = xp.conj(gko._delta(xp, n, Hc.dtype))
            return cauchy(z, t, Gx, Hc, gko._to_cauchy_rhs(d * rhs))
        return gko._from_cauchy_solution(cauchy(z, t, Gx, Hc, rhs))
    except ValueError as exc:
        if "share" not in str(exc):
            raise
        raise ValueError(
            "nodes must not be n-th roots of -1 for ldr_solve (kind 'vandermonde' is solved "
            f"through the eigenvalues of Z_-1): {exc}") from None


def ldr_solve_vjp(G: Any, H: Any, b: Any, grad: Any, kind: str,
                  **operator_params: Any) -> tuple:
    """Return the gradients of :func:`ldr_solve` for the output gradient ``grad``.

    Parameters
    ----------
    G, H, b, kind, **operator_params
        As for :func:`ldr_solve`.
    grad : array_like, shape (..., n)
        Gradient of a real loss with respect to ``x = ldr_solve(G, H, b, kind, ...)``.

    Returns
    -------
    tuple of ndarray
        ``(grad_G, grad_H, grad_b)`` followed by the gradients of the kind's array operator
        parameters (``grad_nodes``; ``grad_s, grad_t``), as for :func:`ldr_multiply_vjp`
        (shapes and dtypes of the arguments, PyTorch's complex convention).

    Raises
    ------
    ValueError, TypeError, numpy.linalg.LinAlgError
        As for :func:`ldr_solve`, and ``grad`` of the wrong shape.

    See Also
    --------
    ldr_solve, ldr_multiply_vjp

    Notes
    -----
    ``grad_b = M^{-H} grad``: one GKO solve with the Cauchy-like ``C^H`` of the same
    conversion (``O(r n^2)``); with ``lam = -grad_b``, ``dl = Re <lam, dM x>``, so the
    gradients of the generators and operator parameters are those of
    ``ldr_multiply(G, H, x)`` for the output gradient ``lam`` (:func:`ldr_multiply_vjp`, the
    fast products). Cost: two solves and one product VJP.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin.ldr import ldr_solve_vjp, ldr_to_dense
    >>> rng = np.random.default_rng(2)
    >>> G, H, b, g = (rng.standard_normal(s) for s in ((2, 5), (2, 5), 5, 5))
    >>> gG, gH, gb = ldr_solve_vjp(G, H, b, g, "toeplitz")
    >>> M = ldr_to_dense(G, H, "toeplitz")
    >>> bool(np.allclose(gb, np.linalg.solve(M.T, g)))
    True
    """
    args = _solve_args(G, H, b, grad, kind, operator_params)
    xp = args.xp
    check_shape(args.grad, (*args.batch, args.n), "grad", "the shape of ldr_solve's output")
    names = ("G", "H", "b", *_ARRAYS[args.kind])
    if args.Bt == 0:
        return tuple(grad_like(xp, xp.zeros(getattr(args.p, k).shape, dtype=args.dtype),
                               getattr(args.p, k)) for k in names)
    gy = xp.broadcast_to(args.grad, (*args.batch, args.n)).reshape(args.Bt, args.n)
    if gy.dtype.kind == "c" and args.dtype.kind != "c":
        gy = gy.real
    gy = xp.ascontiguousarray(gy, dtype=args.dtype)
    x = _solve_rows(args, args.x, adjoint=False)
    gb = _solve_rows(args, gy, adjoint=True)
    if args.dtype.kind != "c":
        x, gb = x.real, gb.real
    x = xp.ascontiguousarray(x, dtype=args.dtype)
    gb = xp.ascontiguousarray(gb, dtype=args.dtype)
    grads = _backward(_replace_x(args, x), -gb)
    grads["b"] = gb
    return tuple(args.grad_of(grads[k], k) for k in names)


def _replace_x(args: _Args, x: Any) -> _Args:
    new = object.__new__(_Args)
    new.__dict__.update(args.__dict__)
    new.x = x
    return new
