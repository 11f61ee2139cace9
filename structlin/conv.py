"""Long convolutions: exact linear FFT convolution, its VJP, plans, streaming, regularisers.

The convolutions of H3, Hyena and "simple long convolutions" models: a bank of ``H`` kernels,
one per channel, applied along the last axis of ``u`` of shape ``(..., H, L)``, with an
optional skip ``D`` and input/output gates. The work goes to the kernel module of ``u``'s
array type (``structlin._backend.kernels(xp, "conv")``), whose contract is described in
:mod:`structlin._cpu.conv`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from structlin._backend import (
    array_namespace,
    as_kernel_array,
    flatten_batch,
    grad_as,
    kernels,
    restore_batch,
    result_dtype,
)
from structlin._validate import check_finite, check_min_ndim, check_precision, check_shape

__all__ = [
    "FFTConvPlan",
    "FFTConvStream",
    "fftconv",
    "fftconv_plan",
    "fftconv_stream",
    "fftconv_to_dense",
    "fftconv_vjp",
    "smooth_kernel",
    "smooth_kernel_vjp",
    "squash_kernel",
    "squash_kernel_vjp",
    "ssm_conv_chunked",
    "ssm_kernel",
]


Precision = Literal["highest", "fp16", "bf16", "fp32"]
#: the tensor-core precisions of the long-convolution kernels (``"fp32"`` is accepted as an
#: alias of ``"highest"``, its first name)
_PRECISIONS = ("highest", "fp16", "bf16")


def _engine_precision(xp: Any, precision: str, dtype: np.dtype) -> dict[str, str]:
    """The ``precision`` keyword for the engine, checked against ``dtype`` (the same way on
    every backend, so that code moves between NumPy and CuPy unchanged; both engines take it,
    the CPU's computes in full precision)."""
    return {"precision": check_precision(precision, _PRECISIONS, dtype,
                                         "u, k, D and the gates")}


def _offset(Lk: int, causal: bool) -> int:
    """Index shift of the output in the full convolution: 0 (causal) or centred ("same")."""
    return 0 if causal else (Lk - 1) // 2


def _check_kernel(k: Any, name: str = "k") -> None:
    if k.ndim != 2:
        raise ValueError(
            f"{name} must be 2-d of shape (H, Lk), one kernel per channel; "
            f"got a {k.ndim}-d array of shape {tuple(k.shape)}"
        )
    if k.shape[1] < 1:
        raise ValueError(f"{name} must have a kernel length Lk >= 1, got shape {tuple(k.shape)}")
    check_finite(k, name)


def _check_length(L: int, name: str) -> None:
    if L < 1:
        raise ValueError(f"{name} must have a length L >= 1 along its last axis, got L = {L}")


class FFTConvPlan:
    """A kernel bank with its spectrum precomputed, for repeated :func:`fftconv` calls.

    Make it with :func:`fftconv_plan`; pass it to :func:`fftconv` or :func:`fftconv_vjp` in
    place of ``k``.

    Parameters
    ----------
    k : ndarray, shape (H, Lk)
        The kernels, already in the compute dtype ``dtype`` (kept as the attribute ``k``).
    L : int
        The longest input length served; the transform length ``nfft`` is chosen for it.
    dtype : numpy.dtype
        The compute dtype of the calls served.
    k_dtype : numpy.dtype
        The dtype of the gradient for ``k`` (the dtype of the kernels given by the user).
    xp : module
        ``numpy`` or ``cupy``: the kernel module that computes the spectrum.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv_plan
    >>> plan = fftconv_plan(np.ones((2, 5), np.float32), 1000)
    >>> plan.nfft, plan.dtype
    (1024, dtype('float32'))
    """

    def __init__(self, k: Any, L: int, dtype: np.dtype, k_dtype: np.dtype, xp: Any):
        eng = kernels(xp, "conv")
        self.k = k
        self.L = int(L)
        self.H, self.Lk = (int(s) for s in k.shape)
        self.dtype = np.dtype(dtype)
        self.k_dtype = np.dtype(k_dtype)
        self.nfft = int(eng.fft_size(self.L, self.Lk))
        self.spectrum = eng.kernel_spectrum(k, self.nfft)

    def __repr__(self) -> str:
        return (f"FFTConvPlan(H={self.H}, Lk={self.Lk}, L={self.L}, nfft={self.nfft}, "
                f"dtype={self.dtype})")


def fftconv_plan(k: Any, L: int, *, dtype: Any = None) -> FFTConvPlan:
    """Return a plan holding the spectrum of the kernels ``k`` for inputs of length ``<= L``.

    Parameters
    ----------
    k : array_like, shape (H, Lk)
        One kernel per channel.
    L : int
        The longest input length the plan serves (the transform length is chosen for it).
    dtype : dtype, optional
        The compute dtype of the calls the plan serves, i.e. the promotion of ``u``, ``k``,
        ``D`` and the gates (default: ``k``'s dtype, promoted to floating point). A call
        whose inputs promote to another dtype raises TypeError.

    Returns
    -------
    FFTConvPlan
        Pass it to :func:`fftconv` / :func:`fftconv_vjp` instead of ``k``.

    Raises
    ------
    ValueError
        If ``k`` is not 2-d, ``Lk == 0``, ``k`` is not finite or ``L < 1``.
    TypeError
        If ``k`` or ``dtype`` is not numeric.

    Notes
    -----
    In a model the kernels are fixed while many batches go through them: the plan transforms
    each kernel once (``O(H nfft log nfft)``) instead of once per call, which saves about a
    third of the work of a call with ``B = 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv, fftconv_plan
    >>> k = np.array([[1.0, 0.5, 0.25]] * 40)
    >>> plan = fftconv_plan(k, 100)
    >>> plan
    FFTConvPlan(H=40, Lk=3, L=100, nfft=108, dtype=float64)
    >>> u = np.random.default_rng(0).standard_normal((2, 40, 100))
    >>> bool(np.allclose(fftconv(u, plan), fftconv(u, k)))
    True
    """
    xp = array_namespace(k=k)
    k = xp.asarray(k)
    k_dtype = result_dtype(k=k)
    dt = k_dtype if dtype is None else result_dtype(k=k, dtype=np.zeros(0, dtype))
    _check_kernel(k)
    _check_length(int(L), "L")
    return FFTConvPlan(as_kernel_array(xp, k, dt), int(L), dt, k_dtype, xp)


def _prepare(u, k, D, pregate, postgate, grad=None):
    """Validate; return ``xp, u, kern (array or plan), D, pregate, postgate, grad, dtype``."""
    plan = k if isinstance(k, FFTConvPlan) else None
    karr = plan.k if plan is not None else k
    xp = array_namespace(u=u, k=karr, D=D, pregate=pregate, postgate=postgate, grad=grad)
    u = xp.asarray(u)
    check_min_ndim(u, 2, "u", "(..., H, L)")
    H, L = int(u.shape[-2]), int(u.shape[-1])
    _check_length(L, "u")
    if plan is None:
        k = xp.asarray(k)
        _check_kernel(k)
    if int(karr.shape[0]) != H:
        raise ValueError(
            f"k must have one kernel per channel of u, i.e. H = {H} rows (u has shape "
            f"{tuple(u.shape)}, channels on its second-to-last axis), got k of shape "
            f"{tuple(karr.shape)}"
        )
    if D is not None:
        D = xp.asarray(D)
        check_shape(D, (H,), "D", "one skip weight per channel of u")
        check_finite(D, "D")
    if pregate is not None:
        pregate = xp.asarray(pregate)
        check_shape(pregate, u.shape, "pregate", "u's shape")
    if postgate is not None:
        postgate = xp.asarray(postgate)
        check_shape(postgate, u.shape, "postgate", "u's shape")
    if grad is not None:
        grad = xp.asarray(grad)
        check_shape(grad, u.shape, "grad", "the shape of fftconv's output, u's shape")
        result_dtype(grad=grad)
    dtype = result_dtype(u=u, k=karr, D=D, pregate=pregate, postgate=postgate)
    if plan is not None:
        if dtype != plan.dtype:
            raise TypeError(
                f"k is a plan for compute dtype {plan.dtype}, but the inputs promote to "
                f"{dtype}; make the plan with fftconv_plan(k, L, dtype={dtype.name!r})"
            )
        if L > plan.L:
            raise ValueError(
                f"u has length L = {L} along its last axis, longer than the L = {plan.L} "
                f"its plan k was made for; make the plan with fftconv_plan(k, {L})"
            )
    return xp, u, k, D, pregate, postgate, grad, dtype


def _engine_args(xp, u, k, D, pregate, postgate, dtype, causal):
    """The kernel-contract arguments: 3-d contiguous arrays of the compute dtype + spectrum."""
    u3, _ = flatten_batch(as_kernel_array(xp, u, dtype), 2)
    eng = kernels(xp, "conv")
    L = int(u.shape[-1])
    if isinstance(k, FFTConvPlan):
        nfft, Lk, spec = k.nfft, k.Lk, k.spectrum
    else:
        Lk = int(k.shape[1])
        nfft = int(eng.fft_size(L, Lk))
        spec = eng.kernel_spectrum(as_kernel_array(xp, k, dtype), nfft, lazy=True)
    gates = [None if g is None else as_kernel_array(xp, g.reshape(u3.shape), dtype)
             for g in (pregate, postgate)]
    Dk = None if D is None else as_kernel_array(xp, D, dtype)
    return eng, u3, spec, nfft, Lk, _offset(Lk, causal), Dk, gates[0], gates[1]


def fftconv(
    u: Any,
    k: Any,
    D: Any = None,
    *,
    pregate: Any = None,
    postgate: Any = None,
    causal: bool = True,
    out: Any = None,
    precision: Precision = "highest",
) -> Any:
    """Return the gated linear convolution ``postgate * (conv(pregate * u, k) + D * u)``.

    Parameters
    ----------
    u : array_like, shape (..., H, L)
        Input: ``H`` channels of length ``L >= 1``, any leading batch dimensions.
    k : array_like, shape (H, Lk), or FFTConvPlan
        One kernel per channel, any length ``Lk >= 1`` (shorter or longer than ``L``); or a
        plan from :func:`fftconv_plan`.
    D : array_like, shape (H,), optional
        Skip connection weight per channel.
    pregate, postgate : array_like, shape (..., H, L), optional
        Elementwise gates on the input of the convolution and on the output (H3/Hyena).
    causal : bool, default True
        True: ``y[t] = sum_j k[j] v[t - j]`` (the full linear convolution truncated to its first
        ``L`` outputs). False: the centred convolution of ``scipy.signal.convolve(v, k,
        mode="same")``, ``y[t] = sum_j k[j] v[t + (Lk - 1)//2 - j]``.
    out : ndarray, shape (..., H, L), optional
        Where to write the result: C-contiguous, with the result's dtype and ``u``'s array
        type, not overlapping the inputs. Reusing it saves the allocation (and, for a fresh
        array, the first-touch page faults, about 10 % of a large call).
    precision : {"highest", "fp16", "bf16"}, default "highest"
        ``"highest"`` (alias ``"fp32"``): every operation in the data's precision. ``"fp16"``
        and ``"bf16"`` opt in to the GPU's tensor cores for float32 and complex64 data
        (FlashFFTConv's scheme): the radix-16 stages of the transforms are products by the
        16 x 16 DFT matrix whose operands (the matrix and the data entering the stage) are
        rounded to fp16 (11 significant bits) or bfloat16 (8) and accumulated in float32;
        twiddles, the product by
        the kernel's spectrum, ``D`` and the gates stay float32. The relative error is about
        ``4e-4`` (fp16) or ``3e-3`` (bf16) instead of ``1e-7``. fp16 operands keep their 11 bits
        only for magnitudes between about ``6e-5`` and ``6.5e4``; bf16 has float32's range.
        On NumPy arrays the value is checked the same way and then has no effect: the CPU
        computes in full precision, so code written for the GPU runs unchanged and never less
        accurately.

    Returns
    -------
    ndarray, shape (..., H, L)
        With ``v = pregate * u`` and zero outside ``[0, L)`` (a linear, not circular,
        convolution)::

            y[..., h, t] = postgate[..., h, t] * (sum_j k[h, j] v[..., h, t + s - j]
                                                  + D[h] u[..., h, t])

        with ``s = 0`` (causal) or ``(Lk - 1) // 2``. The dtype is NumPy's promotion of all
        inputs (integers to float64); the array type is ``u``'s.

    Raises
    ------
    ValueError
        If ``u`` has fewer than 2 dimensions or ``L = 0``; ``k`` is not ``(H, Lk)`` with ``u``'s
        ``H`` and ``Lk >= 1``; ``D`` is not ``(H,)``; a gate is not shaped like ``u``; ``k`` or
        ``D`` holds NaN or infinity; ``u`` is longer than a plan's ``L``; ``out`` has the wrong
        shape or is not C-contiguous; ``precision`` is not one of the three values, or it is
        ``"fp16"``/``"bf16"`` and the compute dtype is not float32 or complex64.
    TypeError
        If NumPy and CuPy arrays are mixed, a dtype is not numeric, the inputs promote to
        another dtype than a plan's, or ``out`` does not have the result's dtype.

    See Also
    --------
    fftconv_vjp : the gradients. fftconv_plan : reuse the kernel's spectrum.
    fftconv_stream : the causal convolution of an input that arrives in chunks.
    fftconv_to_dense : the Toeplitz matrices (the reference).

    Notes
    -----
    The product by an ``L x L`` Toeplitz matrix (``2 L^2`` flops per row) is done with
    transforms of a fast length ``nfft >= L + Lk - 1`` (5-smooth, from
    ``scipy.fft.next_fast_len``): since the zero padding leaves room for the whole linear
    convolution, the circular convolution the FFT computes has no wrap-around, for any ``L``
    and ``Lk`` (odd, prime, 1, ``Lk > L``). Cost ``O(nfft log nfft)`` per row, plus one
    transform per kernel (saved by a plan). On the CPU, chunks of rows go through
    ``scipy.fft`` (real transforms for real data) and fused Numba passes that pad and gate
    the input, multiply the spectra in place, and apply the truncation, ``D`` and the
    post-gate while writing the output; chunks run on a thread pool, and the scratch memory
    is a few chunks per thread. The kernel's whole spectrum is kept for the call only when
    it is small next to ``u`` (else each chunk transforms its kernel rows), and rows too long
    for a chunk go through their spectrum one residue class of frequencies ``r + R f`` at a
    time (a first decimation-in-frequency stage folds the row into ``nfft / R`` values per
    class; ``R`` from 8 to 64), so the peak memory stays within 3x the size of ``u``, the
    output and any kernel spectrum included (tracemalloc, float32, ``Lk = L``: 1.5x for
    ``(8, 256, 4096)``, 2x for a single row of ``2**22``, with or without a plan).
    When an output needs at most 64 taps (``min(L, Lk) <= 64``; 32 for complex data) a
    direct Numba loop (``2 L min(L, Lk)`` flops per row, SIMD) is used instead: below that
    it is faster than the transforms. Non-finite values in ``u`` spread through a transform
    to the whole row.

    The FFT long convolution is the core of H3 (Fu et al., arXiv:2212.14052), Hyena
    (Poli et al., arXiv:2302.10866) and "Simple Hardware-Efficient Long Convolutions"
    (Fu et al., arXiv:2302.06646); the conventions follow safari's ``fftconv_ref`` and
    FlashFFTConv (arXiv:2311.05908), without their limits on the lengths.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv
    >>> u = np.array([[1.0, 2.0, 3.0, 4.0]])
    >>> k = np.array([[1.0, 1.0, 1.0]])
    >>> fftconv(u, k)
    array([[1., 3., 6., 9.]])
    >>> fftconv(u, k, causal=False)
    array([[3., 6., 9., 7.]])
    >>> fftconv(u, k, D=np.array([10.0]), postgate=np.array([[1.0, 0.0, 1.0, 0.5]]))
    array([[11. ,  0. , 36. , 24.5]])
    >>> y = np.empty((1, 4))
    >>> fftconv(u, k, out=y) is y
    True

    Tensor-core precisions need single-precision data; on NumPy arrays they compute in full
    float32 precision:

    >>> u32, k32 = u.astype(np.float32), k.astype(np.float32)
    >>> fftconv(u32, k32, precision="fp16")
    array([[1., 3., 6., 9.]], dtype=float32)
    """
    xp, u, k, D, pregate, postgate, _, dtype = _prepare(u, k, D, pregate, postgate)
    prec = _engine_precision(xp, precision, dtype)
    eng, u3, spec, nfft, Lk, off, Dk, pre, post = _engine_args(
        xp, u, k, D, pregate, postgate, dtype, causal
    )
    if out is None:
        result = xp.empty(u3.shape, dtype=dtype)
    else:
        _check_out(xp, out, u.shape, dtype)
        result = out.reshape(u3.shape)
    eng.forward(u3, spec, nfft, Lk, off, Dk, pre, post, result, **prec)
    return out if out is not None else result.reshape(u.shape)


def _check_out(xp, out, shape, dtype) -> None:
    array_namespace(u=xp.empty(0), out=out)
    if not hasattr(out, "flags") or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous array")
    check_shape(out, shape, "out", "u's shape")
    if out.dtype != dtype:
        raise TypeError(f"out must have the result dtype {dtype}, got {out.dtype}")


_cast_grad = grad_as


def fftconv_vjp(
    u: Any,
    k: Any,
    D: Any,
    grad: Any,
    *,
    pregate: Any = None,
    postgate: Any = None,
    causal: bool = True,
    precision: Precision = "highest",
) -> tuple[Any, Any, Any, Any, Any]:
    """Return the gradients ``(grad_u, grad_k, grad_D, grad_pregate, grad_postgate)`` of fftconv.

    Parameters
    ----------
    u, k, D, pregate, postgate, causal
        As for :func:`fftconv` (``D`` may be None; ``k`` may be a plan).
    grad : array_like, shape (..., H, L)
        The gradient of a real loss with respect to ``fftconv(u, k, D, ...)``.
    precision : {"highest", "fp16", "bf16"}, default "highest"
        As for :func:`fftconv`, for the transforms of the backward pass on the GPU: the
        radix-16 stages of the correlation that gives ``grad_u`` and ``grad_pregate``, of the
        convolution recomputed for ``grad_postgate`` and of the two spectra whose product
        gives ``grad_k`` run on tensor cores (half-precision operands, float32 accumulation),
        in the one-launch and the multi-pass schemes alike. Float32 throughout: the gates,
        ``D`` and the products by spectra, ``grad_D`` (a reduction, no transform), and the
        sum over the batch of ``grad_k``'s cross-spectrum with its inverse transform (``H``
        transforms whatever the batch, whose values, products of two data scales summed
        over the batch, would leave fp16's range). Relative error of each gradient but
        ``grad_D``: about ``4e-4`` (fp16) or ``3e-3`` (bf16). fp16 keeps 11 bits only above
        about ``6e-5``: scale the loss (as in mixed-precision training) when the gradients
        are smaller. On NumPy arrays: checked, then full precision, as for :func:`fftconv`.

    Returns
    -------
    grad_u : ndarray, shape (..., H, L)
    grad_k : ndarray, shape (H, Lk)
        Summed over the batch.
    grad_D : ndarray, shape (H,), or None when ``D`` is None
    grad_pregate, grad_postgate : ndarray, shape (..., H, L), or None when the gate is None
        Each gradient has its argument's dtype (promoted to floating point; the real part for
        a real argument of a complex computation).

    Raises
    ------
    ValueError, TypeError
        As for :func:`fftconv` (``precision`` included); ValueError if ``grad`` is not shaped
        like ``u``.

    Notes
    -----
    With ``gz = grad * conj(postgate)``: ``grad_postgate = grad * conj(z)`` (``z`` the
    ungated output), ``grad_v = corr(gz, conj(k))`` (the adjoint Toeplitz product, through
    the same transforms with the conjugate spectrum), ``grad_u = grad_v * conj(pregate) +
    conj(D) gz``, ``grad_pregate = grad_v * conj(u)``, ``grad_D = sum gz * conj(u)`` and
    ``grad_k[j] = sum_t gz[t] conj(v[t + s - j])``, whose cross-spectra are summed over the
    batch before one inverse transform per channel. Cost: three transforms per row (four
    with a post-gate, which needs the ungated output), against two for a forward call.
    Complex gradients follow PyTorch's convention (``dl/dRe + 1j dl/dIm``), as in
    :func:`butterfly_multiply_vjp`.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv_vjp
    >>> u = np.array([[1.0, 2.0, 3.0]])
    >>> k = np.array([[1.0, -1.0]])
    >>> gu, gk, gD, gpre, gpost = fftconv_vjp(u, k, None, np.ones((1, 3)))
    >>> gu, gk
    (array([[0., 0., 1.]]), array([[6., 3.]]))
    >>> gD is None and gpre is None and gpost is None
    True

    As for :func:`fftconv`, ``precision="fp16"``/``"bf16"`` needs single-precision data and
    computes in full precision on NumPy arrays:

    >>> u32, k32, g32 = (a.astype(np.float32) for a in (u, k, np.ones((1, 3))))
    >>> fftconv_vjp(u32, k32, None, g32, precision="bf16")[1]
    array([[6., 3.]], dtype=float32)
    """
    xp, u, k, D, pregate, postgate, grad, dtype = _prepare(u, k, D, pregate, postgate, grad)
    prec = _engine_precision(xp, precision, dtype)
    eng, u3, spec, nfft, Lk, off, Dk, pre, post = _engine_args(
        xp, u, k, D, pregate, postgate, dtype, causal
    )
    g3 = as_kernel_array(xp, grad.reshape(u3.shape), dtype)
    gu, gk, gD, gpre, gpost = eng.backward(u3, spec, nfft, Lk, off, Dk, pre, post, g3, **prec)
    k_dtype = k.k_dtype if isinstance(k, FFTConvPlan) else result_dtype(k=k)
    shape = u.shape
    return (
        _cast_grad(xp, gu, result_dtype(u=u)).reshape(shape),
        _cast_grad(xp, gk, k_dtype),
        None if D is None else _cast_grad(xp, gD, result_dtype(D=D)),
        None if pregate is None else _cast_grad(xp, gpre, result_dtype(p=pregate)).reshape(shape),
        None if postgate is None else _cast_grad(xp, gpost, result_dtype(p=postgate)).reshape(
            shape),
    )


def fftconv_to_dense(k: Any, L: int, *, causal: bool = True) -> Any:
    """Return the Toeplitz matrices ``T`` (H, L, L) with ``fftconv(u, k)[h] == T[h] @ u[h]``.

    Parameters
    ----------
    k : array_like, shape (H, Lk)
        One kernel per channel.
    L : int
        Input length.
    causal : bool, default True
        As for :func:`fftconv`.

    Returns
    -------
    ndarray, shape (H, L, L)
        ``T[h, t, s] = k[h, t + off - s]`` (zero outside ``[0, Lk)``), ``off = 0`` causal
        (lower triangular) or ``(Lk - 1) // 2``. The reference of the tests: ``O(H L^2)``
        memory.

    Raises
    ------
    ValueError
        If ``k`` is not 2-d with ``Lk >= 1`` or ``L < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv_to_dense
    >>> fftconv_to_dense(np.array([[1.0, 2.0]]), 3)[0]
    array([[1., 0., 0.],
           [2., 1., 0.],
           [0., 2., 1.]])
    """
    xp = array_namespace(k=k)
    k = xp.asarray(k)
    dtype = result_dtype(k=k)
    if k.ndim != 2 or k.shape[1] < 1:
        raise ValueError(f"k must have shape (H, Lk) with Lk >= 1, got {tuple(k.shape)}")
    _check_length(int(L), "L")
    Lk = int(k.shape[1])
    off = _offset(Lk, causal)
    idx = xp.arange(L)[:, None] + off - xp.arange(L)[None, :]
    valid = (idx >= 0) & (idx < Lk)
    T = xp.where(valid[None], k.astype(dtype)[:, xp.clip(idx, 0, Lk - 1)], 0)
    return T.astype(dtype)


# ---- streaming --------------------------------------------------------------------------------


class FFTConvStream:
    """Causal long convolution of an input that arrives in chunks (overlap-save).

    Make it with :func:`fftconv_stream`. ``push(u_chunk, pregate=None, postgate=None)``
    returns the outputs of the new samples; ``reset()`` forgets the past.

    Parameters
    ----------
    k : ndarray, shape (H, Lk)
        The kernels in the compute dtype.
    chunk : int
        The longest chunk ``push`` accepts.
    D : ndarray, shape (H,), or None
        Skip weights in the compute dtype.
    dtype : numpy.dtype
        The compute dtype.
    xp : module
        ``numpy`` or ``cupy``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv_stream
    >>> stream = fftconv_stream(np.array([[1.0, 1.0]]), chunk=2)
    >>> stream.push(np.array([[1.0, 2.0]])), stream.push(np.array([[3.0]]))
    (array([[1., 3.]]), array([[5.]]))
    """

    def __init__(self, k, chunk: int, D, dtype: np.dtype, xp: Any):
        self.xp = xp
        self.k = k
        self.D = D
        self.chunk = int(chunk)
        self.dtype = np.dtype(dtype)
        self.H, self.Lk = (int(s) for s in k.shape)
        self._plan = FFTConvPlan(k, self.Lk - 1 + self.chunk, self.dtype, self.dtype, xp)
        self.nfft = self._plan.nfft
        self.reset()

    def reset(self) -> None:
        """Forget the inputs seen so far (the next push starts a new signal)."""
        self._hist = None
        self._batch = None

    def push(self, u: Any, pregate: Any = None, postgate: Any = None) -> Any:
        """Return the outputs for the next ``c <= chunk`` samples ``u`` of shape (..., H, c)."""
        xp = self.xp
        array_namespace(k=self.k, u=u, pregate=pregate, postgate=postgate)
        u = xp.asarray(u)
        check_min_ndim(u, 2, "u", "(..., H, c)")
        c = int(u.shape[-1])
        if int(u.shape[-2]) != self.H:
            raise ValueError(
                f"u must have H = {self.H} channels on its second-to-last axis (k's rows), "
                f"got shape {tuple(u.shape)}"
            )
        if c > self.chunk:
            raise ValueError(
                f"u has {c} samples, more than the stream's chunk = {self.chunk}; push it in "
                f"pieces or make the stream with a larger chunk"
            )
        batch = tuple(u.shape[:-2])
        if self._batch is not None and batch != self._batch:
            raise ValueError(
                f"u must keep the batch shape {self._batch} of the earlier chunks, got "
                f"{batch}; call reset() to start a new signal"
            )
        for name, g in (("pregate", pregate), ("postgate", postgate)):
            if g is not None:
                check_shape(xp.asarray(g), u.shape, name, "the chunk u's shape")
        dt = result_dtype(u=u, k=self.k, pregate=pregate, postgate=postgate)
        if dt != self.dtype:
            raise TypeError(
                f"u and the gates promote to {dt}, but the stream computes in {self.dtype}; "
                f"make it with fftconv_stream(k, chunk, dtype={dt.name!r})"
            )
        self._batch = batch
        if c == 0:
            return xp.zeros(u.shape, dtype=self.dtype)
        u = as_kernel_array(xp, u, self.dtype)
        v = u if pregate is None else u * xp.asarray(pregate, dtype=self.dtype)
        if self._hist is None:
            self._hist = xp.zeros((*batch, self.H, self.Lk - 1), dtype=self.dtype)
        ext = xp.concatenate([self._hist, v], axis=-1)
        y = fftconv(ext, self._plan)[..., self.Lk - 1:]
        self._hist = ext[..., ext.shape[-1] - (self.Lk - 1):].copy()
        if self.D is not None:
            y += self.D[:, None] * u
        if postgate is not None:
            y *= xp.asarray(postgate)
        return y


def fftconv_stream(k: Any, chunk: int, D: Any = None, *, dtype: Any = None) -> FFTConvStream:
    """Return a stream whose ``push`` convolves successive chunks as one long causal input.

    Parameters
    ----------
    k : array_like, shape (H, Lk)
        One kernel per channel.
    chunk : int
        The longest chunk ``push`` accepts (the transform length is chosen for it).
    D : array_like, shape (H,), optional
        Skip weight per channel.
    dtype : dtype, optional
        Compute dtype (default: the promotion of ``k`` and ``D``); chunks and gates must
        promote to it.

    Returns
    -------
    FFTConvStream
        ``stream.push(u_chunk, pregate=None, postgate=None)`` with ``u_chunk`` of shape
        ``(..., H, c)``, ``c <= chunk``, returns ``(..., H, c)``: the concatenation of the
        pushed outputs equals ``fftconv(u, k, D, pregate=..., postgate=..., causal=True)`` of
        the concatenated inputs (up to rounding).

    Raises
    ------
    ValueError
        If ``k`` is not ``(H, Lk)``, ``D`` not ``(H,)``, or ``chunk < 1``; from ``push``, if a
        chunk has the wrong number of channels, is longer than ``chunk`` or changes the batch
        shape.
    TypeError
        NumPy and CuPy mixed, or a chunk that promotes beyond ``dtype``.

    Notes
    -----
    Overlap-save: the stream keeps the last ``Lk - 1`` gated inputs; each push convolves them
    followed by the new chunk, with the kernel's spectrum computed once for the transform
    length ``nfft >= 2 (Lk - 1) + chunk``, and keeps the last ``c`` outputs. Memory is
    ``O(batch H (Lk + chunk))`` whatever the total length.

    Streaming is causal only: the centred ("same") output at time ``t`` needs the inputs up
    to ``t + (Lk - 1) // 2``. It is the causal output delayed by that many samples,
    ``same[t] = causal[t + (Lk - 1) // 2]``, so it comes out of the stream that much later.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv, fftconv_stream
    >>> rng = np.random.default_rng(0)
    >>> k = rng.standard_normal((4, 50))
    >>> u = rng.standard_normal((4, 300))
    >>> stream = fftconv_stream(k, chunk=64)
    >>> y = np.concatenate([stream.push(u[:, i:i + 64]) for i in range(0, 300, 64)], axis=-1)
    >>> bool(np.allclose(y, fftconv(u, k)))
    True
    """
    xp = array_namespace(k=k, D=D)
    k = xp.asarray(k)
    _check_kernel(k)
    if int(chunk) < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    H = int(k.shape[0])
    if D is not None:
        D = xp.asarray(D)
        check_shape(D, (H,), "D", "one skip weight per channel, k's rows")
        check_finite(D, "D")
    extra = {} if dtype is None else {"dtype": np.zeros(0, dtype)}
    dt = result_dtype(k=k, D=D, **extra)
    Dk = None if D is None else as_kernel_array(xp, D, dt)
    return FFTConvStream(as_kernel_array(xp, k, dt), int(chunk), Dk, dt, xp)


# ---- diagonal SSM kernels and the chunked scan (H3's FlashConv state passing) ------------------


def _check_ssm(A, B, C):
    xp = array_namespace(A=A, B=B, C=C)
    A, B, C = (xp.asarray(a) for a in (A, B, C))
    if A.ndim != 2:
        raise ValueError(f"A must have shape (H, N), got {tuple(A.shape)}")
    check_shape(B, A.shape, "B", "A's shape (H, N)")
    check_shape(C, A.shape, "C", "A's shape (H, N)")
    for name, a in (("A", A), ("B", B), ("C", C)):
        check_finite(a, name)
    return xp, A, B, C


def _powers(xp, A, e0: int, n: int, dtype):
    """``A[..., None] ** (e0 + arange(n))``, shape (H, N, n)."""
    return A.astype(dtype)[..., None] ** xp.arange(e0, e0 + n)


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
    xp, A, B, C = _check_ssm(A, B, C)
    _check_length(int(L), "L")
    dt = result_dtype(A=A, B=B, C=C)
    CB = (C * B).astype(dt)
    return xp.einsum("hn,hnl->hl", CB, _powers(xp, A, 0, int(L), dt))


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
    xp, A, B, C = _check_ssm(A, B, C)
    xp = array_namespace(u=u, A=A, D=D, state=state)
    u = xp.asarray(u)
    check_min_ndim(u, 2, "u", "(..., H, L)")
    H, L = int(u.shape[-2]), int(u.shape[-1])
    _check_length(L, "u")
    if int(A.shape[0]) != H:
        raise ValueError(
            f"A, B, C must have H = {H} rows (u's channels), got shape {tuple(A.shape)}"
        )
    if int(chunk) < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    chunk = min(int(chunk), L)
    N = int(A.shape[1])
    if state is not None:
        state = xp.asarray(state)
        check_shape(state, (*u.shape[:-1], N), "state", "u's batch and channels, then A's N")
    dt = result_dtype(u=u, A=A, B=B, C=C, D=D, state=state)
    kc = ssm_kernel(A, B, C, chunk)
    plan = fftconv_plan(kc, chunk, dtype=dt)
    # pout[h, n, tau] = C A^(tau+1); pin[h, tau, n] = B A^(chunk-1-tau)
    pout = C.astype(dt)[..., None] * _powers(xp, A, 1, chunk, dt)
    pin = xp.flip(B.astype(dt)[..., None] * _powers(xp, A, 0, chunk, dt), axis=-1)
    pin = xp.ascontiguousarray(xp.swapaxes(pin, -1, -2))
    u3, batch = flatten_batch(as_kernel_array(xp, u, dt), 2)
    y = xp.empty(u3.shape, dtype=dt)
    if state is None:
        x = xp.zeros((u3.shape[0], H, 1, N), dtype=dt)
    else:
        x = xp.asarray(state, dtype=dt).reshape((u3.shape[0], H, 1, N))
    for s0 in range(0, L, chunk):
        c = min(chunk, L - s0)
        uc = u3[..., s0:s0 + c]
        yc = fftconv(uc, plan, D)
        yc += (x @ pout[..., :c])[:, :, 0, :]
        y[..., s0:s0 + c] = yc
        Ac = A.astype(dt) ** c
        x = Ac[None, :, None, :] * x + uc[:, :, None, :] @ pin[:, chunk - c:, :]
    y = restore_batch(y, batch)
    if return_state:
        return y, x.reshape((*u.shape[:-1], N))
    return y


# ---- long-convolution kernel regularisers (arXiv:2302.06646) -----------------------------------


def _reg_input(k, name="k"):
    xp = array_namespace(**{name: k})
    k = xp.asarray(k)
    dt = result_dtype(**{name: k})
    check_min_ndim(k, 1, name, "(..., Lk)")
    return xp, k.astype(dt, copy=False), dt


def squash_kernel(k: Any, lam: float) -> Any:
    """Return the squashed kernel ``sign(k) * max(|k| - lam, 0)`` (soft thresholding).

    Parameters
    ----------
    k : array_like, shape (..., Lk)
        Kernel(s), real or complex (``sign(k) = k / |k|``).
    lam : float
        Threshold, ``lam >= 0``.

    Returns
    -------
    ndarray, shape (..., Lk)
        ``k``'s dtype (promoted to floating point).

    Raises
    ------
    ValueError
        If ``lam`` is negative or not finite, or ``k`` is 0-d.

    Notes
    -----
    The "squash" regulariser of Fu et al., *Simple Hardware-Efficient Long Convolutions for
    Sequence Modeling* (arXiv:2302.06646): applied to the kernel before each convolution,
    it makes small weights exactly zero and the kernel sparse. Elementwise, ``O(Lk)``.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import squash_kernel
    >>> squash_kernel(np.array([-2.0, -0.5, 0.1, 1.5]), 1.0)
    array([-1. , -0. ,  0. ,  0.5])
    """
    xp, k, _ = _reg_input(k)
    lam = _check_lam(lam)
    mag = xp.abs(k)
    scale = xp.maximum(mag - lam, 0) / xp.where(mag > 0, mag, 1)
    return (k * scale.astype(k.dtype)).astype(k.dtype)


def _check_lam(lam) -> float:
    lam = float(lam)
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"lam must be a finite threshold >= 0, got {lam}")
    return lam


def squash_kernel_vjp(k: Any, lam: float, grad: Any) -> Any:
    """Return the gradient for ``k`` of :func:`squash_kernel` given the output gradient ``grad``.

    Parameters
    ----------
    k, lam
        As for :func:`squash_kernel`.
    grad : array_like, shape of ``k``
        Gradient of a real loss with respect to ``squash_kernel(k, lam)``.

    Returns
    -------
    ndarray, shape of ``k``
        Zero where ``|k| <= lam``; elsewhere ``grad`` for real ``k``, and for complex ``k``
        ``grad - lam (grad / |k| - Re(conj(grad) k) k / |k|^3)`` (PyTorch's convention).

    Raises
    ------
    ValueError
        If ``grad``'s shape differs from ``k``'s, or ``lam`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import squash_kernel_vjp
    >>> squash_kernel_vjp(np.array([-2.0, -0.5, 1.5]), 1.0, np.ones(3))
    array([1., 0., 1.])
    """
    xp, k, dt = _reg_input(k)
    lam = _check_lam(lam)
    grad = xp.asarray(grad)
    array_namespace(k=k, grad=grad)
    check_shape(grad, k.shape, "grad", "k's shape")
    mag = xp.abs(k)
    active = mag > lam
    if dt.kind != "c":
        return xp.where(active, grad.real if grad.dtype.kind == "c" else grad, 0).astype(dt)
    safe = xp.where(mag > 0, mag, 1)
    proj = xp.real(xp.conj(grad) * k)
    g = grad - lam * (grad / safe - proj * k / safe**3)
    return xp.where(active, g, 0).astype(dt)


def _check_width(width) -> int:
    w = int(width)
    if w < 1 or w % 2 == 0:
        raise ValueError(f"width must be an odd integer >= 1, got {width}")
    return w


def smooth_kernel(k: Any, width: int) -> Any:
    """Return the kernel smoothed by a centred moving average of ``width`` taps.

    Parameters
    ----------
    k : array_like, shape (..., Lk)
        Kernel(s).
    width : int
        Odd window length.

    Returns
    -------
    ndarray, shape (..., Lk)
        ``out[j] = (1 / width) sum_{|i| <= width // 2} k[j + i]``, with zeros beyond the ends
        (``avg_pool1d(k, width, stride=1, padding=width // 2)``), in ``k``'s dtype.

    Raises
    ------
    ValueError
        If ``width`` is not an odd positive integer, or ``k`` is 0-d.

    Notes
    -----
    The "smooth" regulariser of arXiv:2302.06646 (average pooling of the kernel weights),
    which damps the high frequencies of learned long kernels. ``O(Lk)`` per kernel with a
    cumulative sum; symmetric, so it is its own adjoint.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import smooth_kernel
    >>> smooth_kernel(np.array([0.0, 3.0, 0.0, 0.0, 6.0]), 3)
    array([1., 1., 1., 2., 2.])
    """
    xp, k, dt = _reg_input(k)
    w = _check_width(width)
    h = w // 2
    Lk = k.shape[-1]
    pad = [(0, 0)] * (k.ndim - 1) + [(h + 1, h)]
    cs = xp.cumsum(xp.pad(k, pad), axis=-1)
    return ((cs[..., w:w + Lk] - cs[..., :Lk]) / w).astype(dt)


def smooth_kernel_vjp(k: Any, width: int, grad: Any) -> Any:
    """Return the gradient for ``k`` of :func:`smooth_kernel`: ``smooth_kernel(grad, width)``.

    Parameters
    ----------
    k, width
        As for :func:`smooth_kernel` (``k`` gives the dtype and shape).
    grad : array_like, shape of ``k``
        Gradient of a real loss with respect to ``smooth_kernel(k, width)``.

    Returns
    -------
    ndarray, shape of ``k``
        The moving average is symmetric, so its adjoint is itself; ``k``'s dtype.

    Raises
    ------
    ValueError
        If ``grad``'s shape differs from ``k``'s, or ``width`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import smooth_kernel_vjp
    >>> smooth_kernel_vjp(np.zeros(3), 3, np.array([3.0, 0.0, 0.0]))
    array([1., 1., 0.])
    """
    xp, k, dt = _reg_input(k)
    grad = xp.asarray(grad)
    array_namespace(k=k, grad=grad)
    check_shape(grad, k.shape, "grad", "k's shape")
    g = smooth_kernel(grad, width)
    if dt.kind != "c" and g.dtype.kind == "c":
        g = g.real
    return g.astype(dt)
