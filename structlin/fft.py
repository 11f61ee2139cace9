"""Discrete Fourier, cosine and sine transforms on structlin's FFT engine, with scipy.fft's API.

The functions have the names, signatures, dtype rules and normalizations of :mod:`scipy.fft`:
:func:`fft`, :func:`ifft`, :func:`rfft`, :func:`irfft`, :func:`dct`, :func:`idct`, :func:`dst`,
:func:`idst`, :func:`next_fast_len` and :func:`prev_fast_len`. NumPy input runs on the engine
(:mod:`structlin._cpu.fft`: batched Stockham / four-step transforms in Numba, parallel over
rows); CuPy input runs on cuFFT (``cupyx.scipy.fft`` for the DFTs; the DCT/DST through the
GPU engine, :mod:`structlin.gpu.fft`, with the same algorithms as on the CPU), with a CuPy
result. ``workers=None`` (the default) uses the engine's thread pool (scipy.fft's default is
one worker); ``workers=k`` caps the threads at ``k`` for the call. ``overwrite_x`` is accepted
and ignored: inputs are never modified. float16 input is computed in float32 and integers and
bool in float64, as scipy.fft does; extended precision (``longdouble``) is refused.

The module is also a :mod:`scipy.fft` backend: ``scipy.fft.set_backend(structlin.fft)`` (or
``with scipy.fft.set_backend(structlin.fft): ...``) sends scipy.fft's calls of the functions
above here; the others (``fft2``, ``fftn``, ``hfft``, ...) fall back to scipy's own backend.

Lengths the engine runs directly are 5-smooth (no prime factor above 5); any other length runs
through Bluestein's algorithm (three engine transforms of a 5-smooth length ``m >= 2n - 1``).

>>> import numpy as np
>>> import scipy.fft
>>> import structlin.fft
>>> x = np.arange(6.0)
>>> bool(np.allclose(structlin.fft.fft(x), scipy.fft.fft(x)))
True
>>> with scipy.fft.set_backend(structlin.fft):
...     y = scipy.fft.rfft(x)
>>> bool(np.allclose(y, np.fft.rfft(x)))
True
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from typing import Any

import numpy as np

from structlin._backend import kernels
from structlin._validate import check_bool, check_int, prepare

__all__ = [
    "dct",
    "dst",
    "fft",
    "idct",
    "idst",
    "ifft",
    "irfft",
    "next_fast_len",
    "prev_fast_len",
    "rfft",
]

#: scipy.fft's backend protocol (``scipy.fft.set_backend``): the domain it dispatches
__ua_domain__ = "numpy.scipy.fft"

_NORMS = (None, "backward", "ortho", "forward")
_TYPES = (1, 2, 3, 4)


# --------------------------------------------------------------------------- argument checks

def _check_norm(norm: Any) -> str:
    if not (norm is None or (isinstance(norm, str) and norm in _NORMS)):
        raise ValueError(
            f'norm must be one of None, "backward", "ortho" or "forward" (invalid norm value '
            f"{norm!r})"
        )
    return norm or "backward"


def _check_workers(workers: Any) -> int | None:
    """scipy.fft's rule: None (the default), a positive count, or a negative one counted back
    from the number of CPUs (``-1``: all of them)."""
    if workers is None:
        return None
    w = check_int(workers, "workers", minimum=None)
    cpus = os.cpu_count() or 1
    if w == 0:
        raise ValueError("workers must not be zero")
    if w < 0:
        if w < -cpus:
            raise ValueError(
                f"workers value out of range; got {w}, must not be less than {-cpus}"
            )
        w += 1 + cpus
    return w


def _check_plan(plan: Any) -> None:
    if plan is not None:
        raise NotImplementedError(
            "plan: passing a precomputed plan is not supported by structlin.fft functions "
            "(plans are made and cached per length); pass plan=None"
        )


def _check_n(n: Any, what: str = "n") -> int | None:
    n = check_int(n, what, minimum=None, allow_none=True)
    if n is not None and n < 1:
        raise ValueError(f"invalid number of data points ({n}) specified: {what} must be >= 1")
    return n


def _check_axis(axis: Any, ndim: int) -> int:
    axis = check_int(axis, "axis", minimum=None, maximum=None)
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(axis, ndim, msg_prefix="axis")
    return axis % ndim


@contextlib.contextmanager
def _workers_context(workers: int | None):
    """Run the body with at most ``workers`` Numba threads (all of them when None), restoring
    the previous count afterwards."""
    if workers is None:
        yield
        return
    import numba

    _engine()  # starts Numba's pool with the engine's wait policy before the count changes
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(workers, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _engine():
    return kernels(np, "fft")




def _complex_of(dt: np.dtype) -> np.dtype:
    return np.dtype(np.complex64) if dt in (np.float32, np.complex64) else np.dtype(np.complex128)


def _real_of(dt: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dt in (np.float32, np.complex64) else np.dtype(np.float64)


# ------------------------------------------------------------------ row transforms (NumPy)
# Every helper below takes and returns 2-D C-contiguous rows (B, n) and is unnormalized.

@functools.lru_cache(maxsize=64)
def _bluestein_plan(n: int, cdt: str, inverse: bool) -> tuple[int, np.ndarray, np.ndarray]:
    """``(m, chirp, spectrum)`` of Bluestein's algorithm for length ``n``: ``chirp[j] =
    exp(-+ i pi j^2 / n)`` and the DFT of the conjugate chirp wrapped to length ``m``, divided
    by ``m`` (so the inverse transform of the product needs no scaling). Computed in float64
    (``j^2`` reduced modulo ``2n`` first, so the angle keeps full precision) and rounded once."""
    # a length whose transforms run on the SIMD butterflies throughout (not merely 5-smooth)
    m = _engine().fast_length(2 * n - 1)
    j = np.arange(n, dtype=np.int64)
    angle = np.pi * ((j * j) % (2 * n)) / n
    chirp = np.exp((1j if inverse else -1j) * angle)
    b = np.zeros((1, m), np.complex128)
    b[0, :n] = np.conj(chirp)
    b[0, m - n + 1:] = np.conj(chirp[1:])[::-1]
    spectrum = _engine().c2c(b)[0] / m
    out = (m, chirp.astype(cdt), spectrum.astype(cdt))
    for a in out[1:]:
        a.setflags(write=False)
    return out


def _c2c_rows(z: np.ndarray, inverse: bool, scale: float = 1.0) -> np.ndarray:
    """The transform of each row times ``scale`` (folded into the engine's store pass)."""
    b, n = z.shape
    if b == 0 or n == 1:
        y = z.copy()
        _scale(y, scale)
        return y
    eng = _engine()
    if eng.is_smooth(n):
        return eng.c2c(z, inverse, None, scale)
    # Bluestein: jk = (j^2 + k^2 - (k-j)^2) / 2 turns the DFT into a convolution with a chirp
    m, chirp, spectrum = _bluestein_plan(n, z.dtype.str, inverse)
    a = np.zeros((b, m), z.dtype)
    np.multiply(z, chirp, out=a[:, :n])
    A = eng.c2c(a)
    A *= spectrum
    y = eng.c2c(A, True, a, scale)
    return np.multiply(y[:, :n], chirp)


def _r2c_rows(x: np.ndarray) -> np.ndarray:
    b, n = x.shape
    h = n // 2 + 1
    if b == 0:
        return np.empty((0, h), _complex_of(x.dtype))
    eng = _engine()
    if n % 2 == 0 and eng.is_smooth(n):
        return eng.r2c(x)
    return np.ascontiguousarray(_c2c_rows(x.astype(_complex_of(x.dtype)), False)[:, :h])


def _c2r_rows(X: np.ndarray, n: int, scale: float = 1.0) -> np.ndarray:
    """``scale * n`` times ``numpy.fft.irfft(X, n)`` of rows ``X`` of ``n // 2 + 1`` entries."""
    b = X.shape[0]
    if b == 0:
        return np.empty((0, n), _real_of(X.dtype))
    eng = _engine()
    if n % 2 == 0 and eng.is_smooth(n):
        return eng.c2r(X, n, scale)
    h = n // 2
    full = np.empty((b, n), X.dtype)
    full[:, : h + 1] = X
    full[:, h + 1:] = np.conj(X[:, 1: n - h][:, ::-1])
    # the real part drops the imaginary parts of X[0] (and X[n/2]) as the engine does
    return np.ascontiguousarray(_c2c_rows(full, True, scale).real)


def _fit_rows(a: Any, n: int, dtype: np.dtype, xp: Any = np) -> tuple[Any, tuple[int, ...]]:
    """The last axis of ``a`` truncated or zero-padded to ``n``, as C-contiguous 2-D rows of
    ``dtype`` (no copy when nothing changes), and the batch shape."""
    batch = a.shape[:-1]
    if a.shape[-1] == n:
        rows = xp.ascontiguousarray(a, dtype=dtype)
    else:
        rows = xp.zeros((*batch, n), dtype)
        k = min(n, a.shape[-1])
        rows[..., :k] = a[..., :k]
    return rows.reshape(-1, n), batch


def _c2c_public(x, n, axis, norm, overwrite_x, workers, plan, inverse):
    _check_plan(plan)
    name = "ifft" if inverse else "fft"
    norm = _check_norm(norm)
    workers = _check_workers(workers)
    p = prepare(x=x)
    x = p.x
    axis = _check_axis(axis, x.ndim)
    n = _check_n(n)
    if p.xp is not np:
        import cupyx.scipy.fft as cufft

        x = x.astype(_complex_of(p.dtype), copy=False)
        return getattr(cufft, name)(x, n=n, axis=axis, norm=norm, overwrite_x=overwrite_x)
    n = x.shape[axis] if n is None else n
    if n < 1:
        raise ValueError(f"invalid number of data points ({n}) specified: x has length {n} "
                         f"along axis {axis}")
    dt = np.dtype(p.dtype.type)
    cdt = _complex_of(dt)
    last = axis == x.ndim - 1
    a = x if last else np.moveaxis(x, axis, -1)
    with _workers_context(workers):
        if dt.kind == "f" and n % 2 == 0 and _engine().is_smooth(n):
            # a real row: the half spectrum and its conjugate mirror, half the work
            rows, batch = _fit_rows(a, n, dt)
            half = _r2c_rows(rows)
            y = np.empty((rows.shape[0], n), cdt)
            h = n // 2
            y[:, : h + 1] = half
            y[:, h + 1:] = np.conj(half[:, 1:h][:, ::-1])
            if inverse:
                np.conjugate(y, out=y)
            _scale(y, _factor(norm, n, inverse))
        else:
            rows, batch = _fit_rows(a, n, cdt)
            y = _c2c_rows(rows, inverse, _factor(norm, n, inverse))
    y = y.reshape(*batch, n)
    return y if last else np.moveaxis(y, -1, axis)


def _factor(norm: str, N: int, inverse: bool) -> float:
    """The scale of a transform of logical size ``N`` (``inverse``: the backward direction)."""
    if norm == "ortho":
        return 1.0 / math.sqrt(N)
    if (norm == "backward") == inverse:
        return 1.0 / N
    return 1.0


def _scale(y: np.ndarray, f: float) -> None:
    if f != 1.0:
        y *= y.real.dtype.type(f)


# ------------------------------------------------------------------------------ DFT (public)

_C2C_DOC = """Return the {what} discrete Fourier transform of ``x`` along ``axis``.

    Parameters
    ----------
    x : array_like
        Input, real or complex, any shape (NumPy or CuPy).
    n : int, optional
        Length of the transform: ``x`` is truncated or zero-padded along ``axis`` to ``n``
        (default: ``x.shape[axis]``).
    axis : int, default -1
        The axis transformed.
    norm : {{"backward", "ortho", "forward"}}, optional
        As in :func:`scipy.fft.{name}`: "backward" (the default) scales the inverse by ``1/n``,
        "forward" the forward transform, "ortho" both by ``1/sqrt(n)``.
    overwrite_x : bool, default False
        Accepted for scipy.fft's API; ``x`` is never modified.
    workers : int, optional
        At most this many threads (negative: counted back from ``os.cpu_count()``, ``-1`` all);
        default: the engine's thread pool, with one thread for small inputs.
    plan : None
        Must be None (structlin plans and caches every length itself).

    Returns
    -------
    ndarray, complex
        ``x``'s shape with ``n`` along ``axis``: complex64 for float32/complex64 (and float16)
        input, complex128 otherwise (integers and bool as float64).

    Raises
    ------
    ValueError
        If ``n < 1`` or the length along ``axis`` is 0, ``norm`` is invalid, ``axis`` is out of
        range (``numpy.exceptions.AxisError``) or ``workers`` is 0 or below ``-os.cpu_count()``.
    TypeError
        If ``x`` is not numeric (object, string), ``n``/``axis``/``workers`` not integers.
    NotImplementedError
        If ``plan`` is not None.

    See Also
    --------
    {other} : the {other_what} transform.

    Notes
    -----
    ``y[k] = sum_j x[j] exp({sign}2 pi i j k / n)``{scale_note}. 5-smooth lengths run on
    the engine directly (a batch of rows in the four-step / Stockham scheme of
    :mod:`structlin._cpu.fft`: radix-8/4/2/3/5 stages as explicit SIMD butterflies, the row's
    tiles in L2, parallel over rows), in about ``5 n log2(n)`` flops per row; a real input of
    even length runs the half-length complex transform, split in its store pass. Any other
    length runs Bluestein's algorithm [1]_: with ``jk = (j^2 + k^2 - (k - j)^2) / 2`` the
    transform is a circular convolution with the chirp ``exp(+-i pi j^2 / n)``, computed by
    three engine transforms of a length ``m >= 2n - 1`` that runs on the SIMD butterflies
    throughout (the chirp's spectrum cached per length and dtype),
    about 6 times the cost of a smooth length. Accuracy: a few ulps times ``log2(n)`` relative
    to the largest output (float32 computed in float32). CuPy input runs
    ``cupyx.scipy.fft.{name}`` (cuFFT).

    References
    ----------
    .. [1] L. Bluestein, "A linear filtering approach to the computation of discrete Fourier
       transform", IEEE Trans. Audio Electroacoustics 18(4), 1970.

    Examples
    --------
    >>> import numpy as np
    >>> import structlin.fft
    >>> x = np.array([1.0, 2.0, 0.0, -1.0, 3.0, 0.5, 2.0])   # length 7: Bluestein
    >>> bool(np.allclose(structlin.fft.{name}(x), np.fft.{name}(x)))
    True
    >>> z = structlin.fft.fft(x.astype(np.float32), n=8)
    >>> z.dtype, z.shape
    (dtype('complex64'), (8,))
    >>> bool(np.allclose(structlin.fft.ifft(structlin.fft.fft(x)), x))
    True
    """


def fft(x: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
        overwrite_x: bool = False, workers: int | None = None, *, plan: Any = None) -> Any:
    return _c2c_public(x, n, axis, norm, overwrite_x, workers, plan, False)


def ifft(x: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
         overwrite_x: bool = False, workers: int | None = None, *, plan: Any = None) -> Any:
    return _c2c_public(x, n, axis, norm, overwrite_x, workers, plan, True)


fft.__doc__ = _C2C_DOC.format(what="1-D", name="fft", other="ifft", other_what="inverse",
                              sign="-", scale_note=" (unscaled for norm='backward')")
ifft.__doc__ = _C2C_DOC.format(what="1-D inverse", name="ifft", other="fft",
                               other_what="forward", sign="+",
                               scale_note=" / n (for norm='backward')")


def rfft(x: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
         overwrite_x: bool = False, workers: int | None = None, *, plan: Any = None) -> Any:
    """Return the discrete Fourier transform of real ``x`` along ``axis``, frequencies ``0 ..
    n // 2``.

    Parameters
    ----------
    x : array_like
        Real input (NumPy or CuPy).
    n : int, optional
        Length of the transform (``x`` truncated or zero-padded along ``axis``).
    axis : int, default -1
        The axis transformed.
    norm : {"backward", "ortho", "forward"}, optional
        As in :func:`scipy.fft.rfft`.
    overwrite_x : bool, default False
        Accepted for scipy.fft's API; ``x`` is never modified.
    workers : int, optional
        As in :func:`fft`.
    plan : None
        Must be None.

    Returns
    -------
    ndarray, complex
        ``n // 2 + 1`` entries along ``axis``: complex64 for float32 (and float16) input,
        complex128 otherwise.

    Raises
    ------
    TypeError
        If ``x`` is complex ("x must be a real sequence") or not numeric.
    ValueError, NotImplementedError
        As for :func:`fft`.

    Notes
    -----
    Even 5-smooth ``n``: the engine's real transform (the complex transform of length
    ``n / 2`` of the even/odd samples read as pairs, split in its store pass), about
    ``2.5 n log2(n)`` flops per row. Other lengths: the complex transform of the row
    (Bluestein's algorithm when ``n`` is not 5-smooth, see :func:`fft`), twice that cost.
    CuPy input runs ``cupyx.scipy.fft.rfft`` (cuFFT).

    Examples
    --------
    >>> import numpy as np
    >>> import structlin.fft
    >>> x = np.random.default_rng(0).standard_normal((3, 10))
    >>> bool(np.allclose(structlin.fft.rfft(x), np.fft.rfft(x)))
    True
    >>> structlin.fft.rfft(x, n=7, axis=0).shape
    (4, 10)
    """
    _check_plan(plan)
    norm = _check_norm(norm)
    workers = _check_workers(workers)
    p = prepare(x=x)
    x = p.x
    if p.dtype.kind == "c":
        raise TypeError(f"x must be a real sequence (rfft), got dtype {x.dtype}")
    axis = _check_axis(axis, x.ndim)
    n = _check_n(n)
    if p.xp is not np:
        import cupyx.scipy.fft as cufft

        x = x.astype(p.dtype, copy=False)
        return cufft.rfft(x, n=n, axis=axis, norm=norm, overwrite_x=overwrite_x)
    n = x.shape[axis] if n is None else n
    if n < 1:
        raise ValueError(f"invalid number of data points ({n}) specified: x has length {n} "
                         f"along axis {axis}")
    dt = np.dtype(p.dtype.type)
    with _workers_context(workers):
        rows, batch = _fit_rows(x if axis == x.ndim - 1 else np.moveaxis(x, axis, -1), n, dt)
        y = _r2c_rows(rows)
    _scale(y, _factor(norm, n, False))
    y = y.reshape(*batch, n // 2 + 1)
    return y if axis == x.ndim - 1 else np.moveaxis(y, -1, axis)


def irfft(x: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
          overwrite_x: bool = False, workers: int | None = None, *, plan: Any = None) -> Any:
    """Return the inverse of :func:`rfft`: the real signal of length ``n`` whose half
    spectrum is ``x`` along ``axis``.

    Parameters
    ----------
    x : array_like
        The half spectrum, ``n // 2 + 1`` entries along ``axis`` (truncated or zero-padded to
        that); real input is read as complex.
    n : int, optional
        Length of the output (default ``2 (x.shape[axis] - 1)``).
    axis : int, default -1
        The axis transformed.
    norm : {"backward", "ortho", "forward"}, optional
        As in :func:`scipy.fft.irfft` ("backward": scaled by ``1/n``).
    overwrite_x : bool, default False
        Accepted for scipy.fft's API; ``x`` is never modified.
    workers : int, optional
        As in :func:`fft`.
    plan : None
        Must be None.

    Returns
    -------
    ndarray, real
        ``n`` entries along ``axis``: float32 for complex64/float32 (and float16) input,
        float64 otherwise.

    Raises
    ------
    ValueError
        If ``n < 1`` (or the default ``n`` is below 1), else as for :func:`fft`.
    TypeError, NotImplementedError
        As for :func:`fft`.

    Notes
    -----
    The spectrum is taken as Hermitian: the imaginary parts of the ``0`` and (``n`` even)
    ``n / 2`` entries are ignored. Even 5-smooth ``n``: the engine's inverse real transform
    (the half-length complex transform, the spectrum folded in its load pass); other
    lengths: the full Hermitian spectrum through the complex inverse transform (Bluestein's
    algorithm when ``n`` is not 5-smooth). CuPy input runs ``cupyx.scipy.fft.irfft``.

    Examples
    --------
    >>> import numpy as np
    >>> import structlin.fft
    >>> x = np.random.default_rng(1).standard_normal(9)
    >>> bool(np.allclose(structlin.fft.irfft(structlin.fft.rfft(x), n=9), x))
    True
    """
    _check_plan(plan)
    norm = _check_norm(norm)
    workers = _check_workers(workers)
    p = prepare(x=x)
    x = p.x
    axis = _check_axis(axis, x.ndim)
    n = _check_n(n)
    cdt = _complex_of(p.dtype)
    if p.xp is not np:
        import cupyx.scipy.fft as cufft

        x = x.astype(cdt, copy=False)
        return cufft.irfft(x, n=n, axis=axis, norm=norm, overwrite_x=overwrite_x)
    if n is None:
        n = 2 * (x.shape[axis] - 1)
        if n < 1:
            raise ValueError(
                f"invalid number of data points ({n}) specified: the default n = 2 (m - 1) "
                f"for x of length m = {x.shape[axis]} along axis {axis}; pass n"
            )
    with _workers_context(workers):
        rows, batch = _fit_rows(x if axis == x.ndim - 1 else np.moveaxis(x, axis, -1),
                                n // 2 + 1, np.dtype(cdt))
        y = _c2r_rows(rows, n, _factor(norm, n, True))
    y = y.reshape(*batch, n)
    return y if axis == x.ndim - 1 else np.moveaxis(y, -1, axis)


# ---------------------------------------------------------------------- DCT / DST (rows)

@functools.lru_cache(maxsize=128)
def _r2r_twiddles(n: int, type: int, dt: str, fct: float, ortho: bool) -> tuple:
    """Twiddles (real and imaginary parts apart, in the rows' dtype ``dt``) and scales of the
    passes of :mod:`structlin._cpu.fft_r2r`, the scale ``fct`` and the ``orthogonalize``
    weights folded in; computed in float64 and rounded once, read-only."""
    rdt = np.dtype(dt)
    sqrt2 = math.sqrt(2.0)
    if type in (2, 3):
        k = np.arange(n // 2 + 1)
        t = 2.0 * np.exp(-1j * np.pi * k / (2 * n)) if type == 2 else \
            np.exp(1j * np.pi * k / (2 * n))
        # the scale of entry k, also that of entry n - k for k >= 1: folded into the twiddle
        t = t * fct
        if ortho:
            t[0] = t[0] / sqrt2 if type == 2 else t[0] * sqrt2
        parts = (t.real, t.imag)
    elif n % 2 == 0:
        j = np.arange(n // 2)
        w = fct * np.exp(-1j * np.pi * (4 * j + 1) / (4 * n))
        t = 2.0 * np.exp(-1j * np.pi * j / n)
        parts = (w.real, w.imag, t.real, t.imag)
    else:
        j = np.arange(n)
        cdt = _complex_of(rdt)
        pre = np.exp(-1j * np.pi * j / (2 * n))
        post = 2.0 * fct * np.exp(-1j * np.pi * (2 * j + 1) / (4 * n))
        parts = (pre.astype(cdt), post.astype(cdt))
    out = tuple(np.ascontiguousarray(a, dtype=a.dtype if a.dtype.kind == "c" else rdt)
                for a in parts)
    for a in out:
        a.setflags(write=False)
    return out


def _r2r_rows(kind: str, x: np.ndarray, type: int, fct: float, ortho: bool) -> np.ndarray:
    """The DCT (``kind`` "dct") or DST of ``type`` of each real row of ``x`` (2-D, C-contiguous
    float32/float64), in scipy.fft's unnormalized form times ``fct``, with scipy's
    ``orthogonalize`` weights when ``ortho``. Returns new rows of ``x``'s dtype."""
    k = kernels(np, "fft_r2r")
    b, n = x.shape
    if b == 0:
        return np.empty_like(x)
    dst = kind == "dst"
    rdt = x.dtype
    if type == 1 or (type == 4 and n % 2):
        # the extensions of type 1 and the odd DCT-IV: array passes around one transform
        return _r2r_array_ops(np, kind, x, type, fct, ortho)
    if type == 2:
        tr, ti = _r2r_twiddles(n, 2, rdt.str, fct, ortho)
        v = np.empty_like(x)
        k.makhoul_gather(x, v, dst)
        V = _r2c_rows(v)
        # the reordered row is dead once transformed: the result reuses its memory (one
        # allocation, and its page faults, fewer)
        k.dct2_post(V.view(rdt), v, tr, ti, dst)
        return v
    y = np.empty_like(x)
    if type == 3:
        tr, ti = _r2r_twiddles(n, 3, rdt.str, fct, ortho)
        V = np.empty((b, n // 2 + 1), _complex_of(rdt))
        k.dct3_pre(x, V.view(rdt), tr, ti, dst)
        v = _c2r_rows(V, n)
        k.makhoul_scatter(v, y, dst)
        return y
    wr, wi, tr, ti = _r2r_twiddles(n, 4, rdt.str, fct, ortho)
    # the packed complex row has the bytes of a real row: it lives in the result's memory
    # until the transform has read it
    u = y.view(_complex_of(rdt))
    k.dct4_pre(x, y, wr, wi, dst)
    U = _c2c_rows(u, False)
    k.dct4_post(U.view(rdt), y, tr, ti, dst)
    return y


def _row_ops(xp):
    """``(c2c, r2c, c2r)`` on 2-D rows of namespace ``xp``: the Bluestein-capable helpers above
    for NumPy, the GPU engine (cuFFT, every length) for CuPy."""
    if xp is np:
        return _c2c_rows, _r2c_rows, _c2r_rows
    eng = kernels(xp, "fft")
    return (lambda z, inverse: eng.c2c(xp.ascontiguousarray(z), inverse, None, 1.0),
            lambda x: eng.r2c(xp.ascontiguousarray(x)),
            lambda X, n: eng.c2r(xp.ascontiguousarray(X), n, 1.0))


def _r2r_array_ops(xp, kind: str, x, type: int, fct: float, ortho: bool):
    """:func:`_r2r_rows` written with array operations of namespace ``xp`` instead of the
    Numba passes: the same algorithms (Makhoul, the half-length DCT-IV, the extensions of type
    1), one more pass over the data each. Used for CuPy input (on cuFFT) and tested with
    NumPy."""
    c2c, r2c, c2r = _row_ops(xp)
    b, n = x.shape
    rdt = np.dtype(x.dtype)
    dst = kind == "dst"
    if b == 0:
        return xp.empty_like(x)
    if type == 1:
        if dst:
            e = xp.zeros((b, 2 * (n + 1)), rdt)
            e[:, 1: n + 1] = x
            e[:, n + 2:] = -x[:, ::-1]
            return xp.ascontiguousarray(-fct * r2c(e)[:, 1: n + 1].imag, dtype=rdt)
        e = xp.empty((b, 2 * (n - 1)), rdt)
        e[:, :n] = x
        e[:, n:] = x[:, n - 2: 0: -1]
        w = xp.ones(n, rdt)
        if ortho:
            w[0] = w[n - 1] = math.sqrt(2.0)
        e[:, :n] *= w
        return xp.ascontiguousarray(fct * r2c(e)[:, :n].real / w, dtype=rdt)
    parts = [xp.asarray(a) for a in _r2r_twiddles(n, type, rdt.str, fct, ortho)]
    h = n // 2
    y = xp.empty((b, n), rdt)
    if type == 2:
        tr, ti = parts
        odd = x[:, 1::2][:, ::-1]
        v = xp.concatenate([x[:, 0::2], -odd if dst else odd], axis=1)
        W = r2c(v) * (tr + 1j * ti)
        y[:, : h + 1] = W.real
        k = xp.arange(1, (n - 1) // 2 + 1)
        y[:, n - k] = -W.imag[:, k]
        return xp.ascontiguousarray(y[:, ::-1]) if dst else y
    if type == 3:
        tr, ti = parts
        a = x[:, ::-1] if dst else x
        c = xp.zeros((b, h + 1), rdt)
        k = xp.arange(1, h + 1)
        c[:, 1:] = a[:, n - k]
        v = c2r((tr + 1j * ti) * (a[:, : h + 1] - 1j * c), n)
        y[:, 0::2] = v[:, : (n + 1) // 2]
        y[:, 1::2] = v[:, ::-1][:, :h]
        if dst:
            y[:, 1::2] *= -1
        return y
    xs = x[:, ::-1] if dst else x
    if n % 2 == 0:
        wr, wi, tr, ti = parts
        u = (wr + 1j * wi) * (xs[:, 0::2] + 1j * xs[:, ::-1][:, 0::2])
        cc = c2c(u, False) * (tr + 1j * ti)
        y[:, 0::2] = cc.real
        y[:, n - 1:: -2] = -cc.imag
    else:
        pre, post = parts
        z = xp.zeros((b, 2 * n), pre.dtype)
        z[:, :n] = xs * pre
        y[...] = (c2c(z, False)[:, :n] * post).real
    if dst:
        y[:, 1::2] *= -1
    return y


def _r2r_any(kind: str, x: Any, type: int, fct: float, ortho: bool, xp: Any = np) -> Any:
    """:func:`_r2r_rows` (NumPy) or :func:`_r2r_array_ops` (CuPy) for real or complex rows
    (complex: the real and imaginary parts apart)."""
    def rows(a):
        if xp is np:
            return _r2r_rows(kind, a, type, fct, ortho)
        return _r2r_array_ops(xp, kind, a, type, fct, ortho)

    if x.dtype.kind != "c":
        return rows(x)
    b = x.shape[0]
    y = rows(xp.concatenate([x.real, x.imag]))
    out = xp.empty(x.shape, x.dtype)
    out.real = y[:b]
    out.imag = y[b:]
    return out


def _logical_size(kind: str, type: int, n: int) -> int:
    if type == 1:
        return 2 * (n + 1) if kind == "dst" else 2 * (n - 1)
    return 2 * n


def _r2r_public(kind, forward, x, type, n, axis, norm, overwrite_x, workers, orthogonalize):
    type = check_int(type, "type", minimum=None, maximum=None)
    if type not in _TYPES:
        raise ValueError(f"type must be one of {_TYPES} (the {kind.upper()} types), got {type}")
    norm = _check_norm(norm)
    if orthogonalize is not None:
        orthogonalize = check_bool(orthogonalize, "orthogonalize")
    workers = _check_workers(workers)
    p = prepare(x=x)
    x = p.x
    axis = _check_axis(axis, x.ndim)
    n = _check_n(n)
    n = x.shape[axis] if n is None else n
    if n < 1:
        raise ValueError(f"invalid number of data points ({n}) specified: x has length {n} "
                         f"along axis {axis}")
    if type == 1 and kind == "dct" and n < 2:
        raise ValueError(f"the DCT of type 1 needs a length n of at least 2, got n = {n}")
    if not forward and type in (2, 3):
        type = 5 - type
    ortho = (norm == "ortho") if orthogonalize is None else orthogonalize
    fct = _factor(norm, _logical_size(kind, type, n), not forward)
    dt = np.dtype(p.dtype.type)
    xp = p.xp
    with _workers_context(workers if xp is np else None):
        rows, batch = _fit_rows(xp.moveaxis(x, axis, -1), n, dt, xp)
        y = _r2r_any(kind, rows, type, fct, ortho, xp)
    return xp.moveaxis(y.reshape(*batch, n), -1, axis)


_R2R_DOC = """Return the {title} of ``x`` along ``axis``{inverse_note}.

    Parameters
    ----------
    x : array_like
        Input, real or complex (the real and imaginary parts are transformed apart); NumPy or
        CuPy.
    type : {{1, 2, 3, 4}}, default 2
        The {upper} type, as in :func:`scipy.fft.{name}`.
    n : int, optional
        Length of the transform (``x`` truncated or zero-padded along ``axis``).
    axis : int, default -1
        The axis transformed.
    norm : {{"backward", "ortho", "forward"}}, optional
        As in :func:`scipy.fft.{name}`: the scale ``1/N`` or ``1/sqrt(N)`` with ``N`` the
        logical size (``2 (n - 1)`` for the DCT-I, ``2 (n + 1)`` for the DST-I, ``2 n``
        otherwise).
    overwrite_x : bool, default False
        Accepted for scipy.fft's API; ``x`` is never modified.
    workers : int, optional
        As in :func:`fft`.
    orthogonalize : bool, optional
        scipy.fft's weights that make the ``"ortho"`` matrices orthogonal (default: True for
        ``norm="ortho"``, else False).

    Returns
    -------
    ndarray
        ``x``'s shape with ``n`` along ``axis``; float32/complex64 stay single precision
        (float16 becomes float32, integers and bool float64).

    Raises
    ------
    ValueError
        If ``type`` is not 1-4, ``n < 1`` (``n < 2`` for the DCT-I), ``norm`` is invalid,
        ``axis`` is out of range or ``workers`` is 0.
    TypeError
        If ``x`` is not numeric or ``type``, ``n``, ``axis``, ``workers`` not integers,
        ``orthogonalize`` not a bool.

    Notes
    -----
    On the engine, each with one real or complex transform and one Numba pass before and
    after it (:mod:`structlin._cpu.fft_r2r`, parallel over rows; the normalization is folded
    into the passes' twiddles):

    - types 2 and 3, Makhoul's algorithm [1]_: the row reordered as ``(x[0], x[2], ...,
      x[3], x[1])``, its real transform of length ``n`` and ``y[k] = 2 Re(exp(-i pi k / 2n)
      V[k])`` (``y[n-k]`` from the imaginary part of the same product); type 3 is the
      transposed chain (an inverse real transform). About ``2.5 n log2(n)`` flops.
    - type 4, ``n`` even: one complex transform of length ``n / 2`` of ``exp(-i pi (4j+1) /
      4n) (x[2j] + i x[n-1-2j])`` (Wang's half-length algorithm [2]_), post-twiddled; odd
      ``n``: one complex transform of length ``2n`` of the zero-padded row times
      ``exp(-i pi j / 2n)``.
    - type 1: the real transform of the even extension (length ``2 (n - 1)``, DCT) or of the
      odd extension (length ``2 (n + 1)``, DST).
    - the DST of each type is the DCT of the same type with the input reversed or its signs
      alternated (``DST-II = R DCT-II S``, ``DST-III = S DCT-III R``, ``DST-IV = S DCT-IV R``).

    Lengths whose transform is not 5-smooth run it through Bluestein's algorithm (see
    :func:`fft`). CuPy input runs the same algorithms on cuFFT (:mod:`structlin.gpu.fft`),
    the passes as CuPy array operations (cupyx.scipy.fft has types 2 and 3 only).

    References
    ----------
    .. [1] J. Makhoul, "A fast cosine transform in one and two dimensions", IEEE Trans. ASSP
       28(1), 1980.
    .. [2] Z. Wang, "On computing the discrete Fourier and cosine transforms", IEEE Trans.
       ASSP 33(5), 1985.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.fft
    >>> import structlin.fft
    >>> x = np.array([4.0, 3.0, 5.0, 10.0, 5.0, 3.0])
    >>> for t in (1, 2, 3, 4):
    ...     assert np.allclose(structlin.fft.{name}(x, t), scipy.fft.{name}(x, t))
    >>> y = structlin.fft.{name}(x, norm="ortho")
    >>> bool(np.allclose(structlin.fft.{other}(y, norm="ortho"), x))
    True
    """


def dct(x: Any, type: int = 2, n: int | None = None, axis: int = -1, norm: str | None = None,
        overwrite_x: bool = False, workers: int | None = None,
        orthogonalize: bool | None = None) -> Any:
    return _r2r_public("dct", True, x, type, n, axis, norm, overwrite_x, workers, orthogonalize)


def idct(x: Any, type: int = 2, n: int | None = None, axis: int = -1, norm: str | None = None,
         overwrite_x: bool = False, workers: int | None = None,
         orthogonalize: bool | None = None) -> Any:
    return _r2r_public("dct", False, x, type, n, axis, norm, overwrite_x, workers,
                       orthogonalize)


def dst(x: Any, type: int = 2, n: int | None = None, axis: int = -1, norm: str | None = None,
        overwrite_x: bool = False, workers: int | None = None,
        orthogonalize: bool | None = None) -> Any:
    return _r2r_public("dst", True, x, type, n, axis, norm, overwrite_x, workers, orthogonalize)


def idst(x: Any, type: int = 2, n: int | None = None, axis: int = -1, norm: str | None = None,
         overwrite_x: bool = False, workers: int | None = None,
         orthogonalize: bool | None = None) -> Any:
    return _r2r_public("dst", False, x, type, n, axis, norm, overwrite_x, workers,
                       orthogonalize)


for _f, _title, _upper, _other, _inv in (
    (dct, "discrete cosine transform", "DCT", "idct", ""),
    (idct, "inverse discrete cosine transform", "DCT", "dct",
     " (the DCT of the inverse type: 2 and 3 swapped, norm's scale on this side)"),
    (dst, "discrete sine transform", "DST", "idst", ""),
    (idst, "inverse discrete sine transform", "DST", "dst",
     " (the DST of the inverse type: 2 and 3 swapped, norm's scale on this side)"),
):
    _f.__doc__ = _R2R_DOC.format(title=_title, upper=_upper, name=_f.__name__, other=_other,
                                 inverse_note=_inv)
del _f, _title, _upper, _other, _inv


# --------------------------------------------------------------------------- fast lengths

def _smooth_at_least(target: int, even: bool) -> int:
    best = None
    p5 = 1
    while True:
        p35 = p5
        while True:
            # the least power of two that brings p35 to target
            m = p35
            while m < target:
                m *= 2
            if even and m % 2:
                m *= 2
            if best is None or m < best:
                best = m
            if p35 >= target:
                break
            p35 *= 3
        if p5 >= target:
            break
        p5 *= 5
    return best


def _smooth_at_most(target: int, even: bool) -> int:
    best = 0
    p5 = 1
    while p5 <= target:
        p35 = p5
        while p35 <= target:
            m = p35
            while m * 2 <= target:
                m *= 2
            if (not even or m % 2 == 0) and m > best:
                best = m
            p35 *= 3
        p5 *= 5
    return best


def next_fast_len(target: int, real: bool = False) -> int:
    """Return the smallest length ``>= target`` that the engine transforms directly.

    Parameters
    ----------
    target : int
        A positive length.
    real : bool, default False
        For real transforms (:func:`rfft`, :func:`irfft`): the engine's real transform needs
        an even length, so the result is then even (unless ``target`` is 1).

    Returns
    -------
    int
        The smallest 5-smooth integer (``2^a 3^b 5^c``) at least ``target``, even when
        ``real`` and ``target > 1``.

    Raises
    ------
    ValueError
        If ``target < 1`` or above ``2**40``.
    TypeError
        If ``target`` is not an integer.

    Notes
    -----
    Enumerates ``3^b 5^c`` and takes the least power of two above each: ``O(log^2 target)``.
    scipy.fft's pocketfft has radices up to 11, so its result can differ (``next_fast_len(11)``
    is 11 there, 12 here); lengths that are not 5-smooth still work (Bluestein), only slower.

    Examples
    --------
    >>> from structlin.fft import next_fast_len
    >>> next_fast_len(1000), next_fast_len(1025), next_fast_len(15, real=True)
    (1000, 1080, 16)
    """
    target = check_int(target, "target", minimum=1)
    real = check_bool(real, "real")
    return _smooth_at_least(target, real and target > 1)


def prev_fast_len(target: int, real: bool = False) -> int:
    """Return the largest length ``<= target`` that the engine transforms directly.

    Parameters
    ----------
    target : int
        A positive length.
    real : bool, default False
        For real transforms: the result is then even (unless ``target`` is 1).

    Returns
    -------
    int
        The largest 5-smooth integer at most ``target`` (even when ``real`` and
        ``target > 1``).

    Raises
    ------
    ValueError
        If ``target < 1`` or above ``2**40``.
    TypeError
        If ``target`` is not an integer.

    Notes
    -----
    The same enumeration as :func:`next_fast_len`.

    Examples
    --------
    >>> from structlin.fft import prev_fast_len
    >>> prev_fast_len(1000), prev_fast_len(1023), prev_fast_len(15, real=True)
    (1000, 1000, 12)
    """
    target = check_int(target, "target", minimum=1)
    real = check_bool(real, "real")
    return _smooth_at_most(target, real and target > 1)


# --------------------------------------------------------------------- scipy.fft backend

_BACKEND_FUNCTIONS = ("fft", "ifft", "rfft", "irfft", "dct", "idct", "dst", "idst")


def __ua_function__(method: Any, args: tuple, kwargs: dict) -> Any:
    """scipy.fft's backend hook: run ``method`` (a scipy.fft multimethod) with this module's
    function of the same name, or return ``NotImplemented`` (scipy then uses its own backend)
    for the functions this module does not have (``fft2``, ``fftn``, ``hfft``, ...).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.fft
    >>> import structlin.fft
    >>> with scipy.fft.set_backend(structlin.fft):
    ...     a = scipy.fft.dct(np.arange(5.0), type=4)   # structlin.fft.dct
    ...     b = scipy.fft.fft2(np.eye(2))              # not here: scipy's own
    >>> bool(np.allclose(a, structlin.fft.dct(np.arange(5.0), type=4))), b.shape
    (True, (2, 2))
    """
    name = getattr(method, "__name__", None)
    if name not in _BACKEND_FUNCTIONS:
        return NotImplemented
    return globals()[name](*args, **kwargs)
