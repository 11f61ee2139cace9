"""NumPy transcriptions of the state space papers' reference code: the baselines of
``benchmarks/bench_ssm.py`` and the references of the ``ssm`` family's tests.

They are written from the published algorithms (read in state-spaces/s4, state-spaces/mamba),
vectorized the way the reference code is (so they hold its memory: ``H x N x L``,
``b x d x l x n``, ``l x l`` per head), and run on NumPy only. Nothing here is a fast path.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "s4_kernel_naive_cauchy",
    "s4d_kernel_vandermonde",
    "segsum",
    "selective_scan_ref",
    "ssd_minimal_discrete",
    "ssd_quadratic",
]


def s4d_kernel_vandermonde(Lambda, B, C, dt, L):
    """S4D's kernel ``2 Re sum_n C B_bar exp(dt Lambda l)`` (ZOH) as S4D's reference computes
    it: the ``(H, N, L)`` table of ``exp`` of the products, then an ``einsum``."""
    dtA = dt[:, None] * Lambda                                  # (H, N)
    Bbar = B * (np.exp(dtA) - 1) / Lambda
    powers = np.exp(dtA[:, :, None] * np.arange(L, dtype=dt.dtype))  # (H, N, L)
    return 2 * np.einsum("hn,hnl->hl", C * Bbar, powers).real


def s4_kernel_naive_cauchy(Lambda, P, B, C, dt, L):
    """S4's DPLR kernel (bilinear, rank 1, ``P`` (H, N)) with the naive Cauchy sums of S4's
    reference: ``C~ = C (I - A_bar^L)`` from the dense ``A_bar``, the ``(H, L, N)`` table of
    ``1 / (g(z) - Lambda)`` at the roots of unity, the Woodbury correction, an inverse FFT."""
    H, N = Lambda.shape
    cdt = Lambda.dtype
    eye = np.eye(N, dtype=cdt)
    Ct = np.empty_like(C)
    for h in range(H):
        A = np.diag(Lambda[h]) - np.outer(P[h], P[h].conj())
        M = np.linalg.inv(eye - dt[h] / 2 * A)
        Abar = M @ (eye + dt[h] / 2 * A)
        Ct[h] = C[h] - C[h] @ np.linalg.matrix_power(Abar, L)
    z = np.exp(-2j * np.pi * np.arange(L) / L).astype(cdt)     # (L,)
    g = (2 / dt[:, None]) * (1 - z) / (1 + z)                   # (H, L)
    r = 1 / (g[:, :, None] - Lambda[:, None, :])                 # (H, L, N)
    Pc = P.conj()
    k00 = np.einsum("hln,hn->hl", r, Ct * B)
    k01 = np.einsum("hln,hn->hl", r, Ct * P)
    k10 = np.einsum("hln,hn->hl", r, Pc * B)
    k11 = np.einsum("hln,hn->hl", r, Pc * P)
    khat = 2 / (1 + z) * (k00 - k01 * k10 / (1 + k11))
    return 2 * np.fft.ifft(khat, axis=-1).real


def _softplus(x):
    # torch.nn.functional.softplus (beta 1, threshold 20)
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                       delta_softplus=False, return_last_state=False, *, wide=False):
    """``selective_scan_ref`` of mamba_ssm transcribed from PyTorch to NumPy line by line:
    materialises ``exp(delta A)`` and ``delta B u`` of shape ``(b, d, l, n)`` and loops over
    the sequence, as the original does. B, C time-invariant ``(d, n)``, shared ``(b, n, l)`` or
    grouped ``(b, g, n, l)``; complex A with time-varying B, C given as (re, im) pairs of a
    real last axis ``2 l``, as there. It computes in single precision, as the original's
    ``.float()`` casts do (``wide=True``: in float64 / complex128, the tests' reference); the
    output is cast to u's dtype."""
    u = np.asarray(u)
    dtype_in = u.dtype
    rdt = np.float64 if wide or dtype_in == np.float64 else np.float32
    cdt = np.complex128 if rdt == np.float64 else np.complex64
    u = u.astype(rdt)
    delta = np.asarray(delta).astype(rdt)
    A, B, C = np.asarray(A), np.asarray(B), np.asarray(C)
    if delta_bias is not None:
        delta = delta + np.asarray(delta_bias)[..., None].astype(rdt)
    if delta_softplus:
        delta = _softplus(delta)
    batch, dim, dstate = u.shape[0], A.shape[0], A.shape[1]
    is_variable_B = B.ndim >= 3
    is_variable_C = C.ndim >= 3
    if np.iscomplexobj(A):
        A = A.astype(cdt)
        # torch.view_as_complex(rearrange(B.float(), "... (L two) -> ... L two", two=2))
        if is_variable_B:
            B = np.ascontiguousarray(B.astype(rdt)).view(cdt)
        if is_variable_C:
            C = np.ascontiguousarray(C.astype(rdt)).view(cdt)
    else:
        A, B, C = A.astype(rdt), B.astype(rdt), C.astype(rdt)
    x = np.zeros((batch, dim, dstate), dtype=A.dtype)
    ys = []
    deltaA = np.exp(np.einsum("bdl,dn->bdln", delta, A))
    if not is_variable_B:
        deltaB_u = np.einsum("bdl,dn,bdl->bdln", delta, B, u)
    elif B.ndim == 3:
        deltaB_u = np.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    else:
        B = np.repeat(B, dim // B.shape[1], axis=1)  # "B G N L -> B (G H) N L"
        deltaB_u = np.einsum("bdl,bdnl,bdl->bdln", delta, B, u)
    if is_variable_C and C.ndim == 4:
        C = np.repeat(C, dim // C.shape[1], axis=1)
    last_state = None
    for i in range(u.shape[2]):
        x = deltaA[:, :, i] * x + deltaB_u[:, :, i]
        if not is_variable_C:
            y = np.einsum("bdn,dn->bd", x, C)
        elif C.ndim == 3:
            y = np.einsum("bdn,bn->bd", x, C[:, :, i])
        else:
            y = np.einsum("bdn,bdn->bd", x, C[:, :, :, i])
        if i == u.shape[2] - 1:
            last_state = x
        if np.iscomplexobj(y):
            y = y.real * 2
        ys.append(y)
    y = np.stack(ys, axis=2)
    out = y if D is None else y + u * np.asarray(D, rdt)[:, None]
    if z is not None:
        zz = np.asarray(z, rdt)
        out = out * (zz / (1 + np.exp(-zz)))
    out = out.astype(dtype_in)
    return out if not return_last_state else (out, last_state)


def segsum(x):
    """``out[..., i, j] = sum_{j < k <= i} x[..., k]`` for ``i >= j``, ``-inf`` above (the
    stable segment sum of mamba's ``ssd_minimal``)."""
    T = x.shape[-1]
    xr = np.repeat(x[..., None], T, axis=-1)                 # (..., T, T): xr[..., k, j] = x_k
    mask = np.tril(np.ones((T, T), bool), -1)
    xs = np.cumsum(np.where(mask, xr, 0), axis=-2)
    return np.where(np.tril(np.ones((T, T), bool)), xs, -np.inf)


def ssd_minimal_discrete(X, A, B, C, block_len, initial_states=None):
    """mamba's ``ssd_minimal_discrete``: X (b, l, h, p), A (b, l, h), B and C (b, l, h, n),
    ``l`` a multiple of ``block_len``; returns ``(Y, final_state)``."""
    b, l, h, p = X.shape
    c = l // block_len
    X, B, C = (a.reshape(b, c, block_len, *a.shape[2:]) for a in (X, B, C))
    A = A.reshape(b, c, block_len, h).transpose(0, 3, 1, 2)     # (b, h, c, q)
    A_cumsum = np.cumsum(A, axis=-1)
    Lm = np.exp(segsum(A))
    Y_diag = np.einsum("bclhn,bcshn,bhcls,bcshp->bclhp", C, B, Lm, X, optimize=True)
    decay_states = np.exp(A_cumsum[..., -1:] - A_cumsum)
    states = np.einsum("bclhn,bhcl,bclhp->bchpn", B, decay_states, X, optimize=True)
    if initial_states is None:
        initial_states = np.zeros_like(states[:, :1])
    else:
        initial_states = initial_states[:, None]
    states = np.concatenate([initial_states, states], axis=1)
    padded = np.pad(A_cumsum[..., -1], ((0, 0), (0, 0), (1, 0)))
    decay_chunk = np.exp(segsum(padded))
    new_states = np.einsum("bhzc,bchpn->bzhpn", decay_chunk, states, optimize=True)
    states, final_state = new_states[:, :-1], new_states[:, -1]
    state_decay_out = np.exp(A_cumsum)
    Y_off = np.einsum("bclhn,bchpn,bhcl->bclhp", C, states, state_decay_out, optimize=True)
    Y = (Y_diag + Y_off).reshape(b, l, h, p)
    return Y, final_state


def ssd_quadratic(X, A, B, C):
    """The quadratic (attention-like) form of SSD: ``M[i, j] = (C_i . B_j) exp(sum_{j<k<=i}
    A_k)`` for every ``(b, h)`` (an ``l x l`` matrix each), applied by ``einsum``."""
    Lm = np.exp(segsum(A.transpose(0, 2, 1)))                 # (b, h, l, l)
    G = np.einsum("bihn,bjhn->bhij", C, B, optimize=True)
    return np.einsum("bhij,bjhp->bihp", G * Lm, X, optimize=True)
