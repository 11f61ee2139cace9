"""Diagonal state-space (S4D) convolution kernels and H3's chunked scan with state passing.

These belong with the state-space family once it exists (they will move there, and stay
importable from here and from :mod:`structlin.conv`); they use the long-convolution engine
:func:`structlin.fftconv`.
"""

from __future__ import annotations

from typing import Any

from structlin._backend import as_kernel_array, flatten_batch, real_dtype, restore_batch
from structlin._validate import (
    check_bool,
    check_finite,
    check_int,
    check_min_ndim,
    check_shape,
    prepare,
)
from structlin.conv_fft import _check_length, fftconv, fftconv_plan

__all__ = ["ssm_conv_chunked", "ssm_kernel"]


def _check_ssm(p) -> None:
    """Check the prepared ``A``, ``B``, ``C`` (shapes, finiteness)."""
    if p.A.ndim != 2:
        raise ValueError(f"A must have shape (H, N), got {tuple(p.A.shape)}")
    check_shape(p.B, p.A.shape, "B", "A's shape (H, N)")
    check_shape(p.C, p.A.shape, "C", "A's shape (H, N)")
    for name in ("A", "B", "C"):
        check_finite(getattr(p, name), name)


def _powers(xp, A, e0: int, n: int, dtype):
    """``A[..., None] ** (e0 + arange(n))`` in ``dtype``, shape (H, N, n) (the exponents in
    ``dtype``'s real precision: integer exponents would promote float32 to float64)."""
    return A.astype(dtype)[..., None] ** xp.arange(e0, e0 + n, dtype=real_dtype(dtype))


def ssm_kernel(A: Any, B: Any, C: Any, L: int) -> Any:
    """Return the convolution kernel ``k[h, j] = sum_n C[h, n] A[h, n]**j B[h, n]`` (H, L).

    Parameters
    ----------
    A : array_like, shape (H, N)
        Diagonal of each channel's discrete state matrix (complex in S4D).
    B, C : array_like, shape (H, N)
        Input and output vectors of each channel.
    L : int
        Kernel length.

    Returns
    -------
    ndarray, shape (H, L)
        The impulse response of ``x[t] = A x[t-1] + B u[t]``, ``y[t] = C . x[t]`` (sum over
        ``n``, no conjugation), with the promoted dtype of ``A``, ``B``, ``C``. S4D's real
        kernel with conjugate pairs is ``2 * ssm_kernel(...).real``.

    Raises
    ------
    ValueError
        If the shapes differ, an input is not finite or ``L < 1``.
    TypeError
        If an input is not numeric (named) or ``L`` is not an integer.

    Notes
    -----
    A Vandermonde product, ``O(H N L)`` (Gu et al., S4D, arXiv:2206.11893).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import ssm_kernel
    >>> ssm_kernel(np.array([[0.5]]), np.array([[1.0]]), np.array([[2.0]]), 4)
    array([[2.  , 1.  , 0.5 , 0.25]])
    """
    p = prepare(A=A, B=B, C=C)
    _check_ssm(p)
    L = check_int(L, "L", minimum=1)
    CB = (p.C * p.B).astype(p.dtype)
    return p.xp.einsum("hn,hnl->hl", CB, _powers(p.xp, p.A, 0, L, p.dtype))


def ssm_conv_chunked(
    u: Any,
    A: Any,
    B: Any,
    C: Any,
    chunk: int,
    D: Any = None,
    *,
    state: Any = None,
    return_state: bool = False,
) -> Any:
    """Return ``fftconv(u, ssm_kernel(A, B, C, L), D)``, computed chunk by chunk with a state.

    Parameters
    ----------
    u : array_like, shape (..., H, L)
        Input.
    A, B, C : array_like, shape (H, N)
        The diagonal SSM, as for :func:`ssm_kernel`.
    chunk : int
        Chunk length: each chunk is convolved with the ``chunk``-long kernel by
        :func:`fftconv`, and the state carries the earlier chunks' contribution.
    D : array_like, shape (H,), optional
        Skip weight.
    state : array_like, shape (..., H, N), optional
        The SSM state left by the inputs before ``u`` (zero when None): passing the state
        returned for one piece of a signal continues the convolution on the next piece.
    return_state : bool, default False
        Also return the state after ``u``.

    Returns
    -------
    y : ndarray, shape (..., H, L)
        Equal (up to rounding) to the one-shot causal ``fftconv`` with the full-length kernel
        (of the whole signal, when ``state`` carries its earlier pieces), in the promoted
        dtype of all inputs.
    state : ndarray, shape (..., H, N)
        Only when ``return_state``: ``x[n] = sum_s A^(L-1-s) B u[s]`` plus ``A^L`` times the
        initial state.

    Raises
    ------
    ValueError
        Bad shapes (including ``state``), ``chunk < 1``, ``L = 0``.
    TypeError
        An input that is not numeric (named), ``chunk`` not an integer, ``return_state`` not
        a bool, NumPy and CuPy arrays mixed.

    Notes
    -----
    FlashConv's state passing (H3, Fu et al., arXiv:2212.14052): for the chunk starting at
    ``s0`` and ``x[n] = sum_{s < s0} A^(s0-1-s) B u[s]`` the state after the earlier chunks,
    ``y[s0 + tau] = (k_chunk * u_chunk)[tau] + sum_n C A^(tau+1) x[n]``, and the state moves
    on by ``x <- A^c x + sum_tau A^(c-1-tau) B u[s0 + tau]``. Both state terms are matrix
    products (BLAS) with ``O(chunk N)`` precomputed powers, so the cost per chunk is one
    length-``chunk`` FFT convolution plus ``O(batch H N chunk)``, and the kernel never needs
    the full length.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv, ssm_conv_chunked, ssm_kernel
    >>> rng = np.random.default_rng(0)
    >>> A = 0.9 * np.exp(1j * rng.uniform(0, np.pi, (3, 4)))
    >>> B, C = rng.standard_normal((2, 3, 4))
    >>> u = rng.standard_normal((2, 3, 100))
    >>> y = ssm_conv_chunked(u, A, B, C, chunk=32)
    >>> bool(np.allclose(y, fftconv(u, ssm_kernel(A, B, C, 100))))
    True
    >>> y1, x1 = ssm_conv_chunked(u[..., :60], A, B, C, 32, return_state=True)
    >>> y2 = ssm_conv_chunked(u[..., 60:], A, B, C, 32, state=x1)
    >>> bool(np.allclose(np.concatenate([y1, y2], axis=-1), y))
    True
    """
    p = prepare(u=u, A=A, B=B, C=C, D=D, state=state, optional=("D", "state"))
    _check_ssm(p)
    xp, dt, A = p.xp, p.dtype, p.A
    check_min_ndim(p.u, 2, "u", "(..., H, L)")
    H, L = int(p.u.shape[-2]), int(p.u.shape[-1])
    _check_length(L, "u")
    if int(A.shape[0]) != H:
        raise ValueError(
            f"A, B, C must have H = {H} rows (u's channels), got shape {tuple(A.shape)}"
        )
    chunk = min(check_int(chunk, "chunk", minimum=1), L)
    return_state = check_bool(return_state, "return_state")
    N = int(A.shape[1])
    if p.state is not None:
        check_shape(p.state, (*p.u.shape[:-1], N), "state",
                    "u's batch and channels, then A's N")
    kc = ssm_kernel(A, p.B, p.C, chunk)
    plan = fftconv_plan(kc, chunk, dtype=dt)
    # pout[h, n, tau] = C A^(tau+1); pin[h, tau, n] = B A^(chunk-1-tau)
    pout = p.C.astype(dt)[..., None] * _powers(xp, A, 1, chunk, dt)
    pin = xp.flip(p.B.astype(dt)[..., None] * _powers(xp, A, 0, chunk, dt), axis=-1)
    pin = xp.ascontiguousarray(xp.swapaxes(pin, -1, -2))
    u3, batch = flatten_batch(as_kernel_array(xp, p.u, dt), 2)
    y = xp.empty(u3.shape, dtype=dt)
    if p.state is None:
        x = xp.zeros((u3.shape[0], H, 1, N), dtype=dt)
    else:
        x = as_kernel_array(xp, p.state, dt).reshape((u3.shape[0], H, 1, N))
    Ad = A.astype(dt)
    for s0 in range(0, L, chunk):
        c = min(chunk, L - s0)
        uc = u3[..., s0:s0 + c]
        yc = fftconv(uc, plan, p.D)
        yc += (x @ pout[..., :c])[:, :, 0, :]
        y[..., s0:s0 + c] = yc
        x = (Ad ** c)[None, :, None, :] * x + uc[:, :, None, :] @ pin[:, chunk - c:, :]
    y = restore_batch(y, batch)
    if return_state:
        return y, x.reshape((*p.u.shape[:-1], N))
    return y
