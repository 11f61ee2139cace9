"""The long-convolution engine: exact linear FFT convolution, its VJP, plans, the reference.

The convolutions of H3, Hyena and "simple long convolutions" models: a bank of ``H`` kernels,
one per channel, applied along the last axis of ``u`` of shape ``(..., H, L)``, with an
optional skip ``D`` and input/output gates. A call is one descent: :func:`_prepare_call`
converts and checks every argument once (:func:`structlin._validate.prepare`), promotes, and
flattens the batch into the kernel contract's ``(B, H, L)`` arrays; the work goes to the kernel
module of ``u``'s array type (``structlin._backend.kernels(xp, "conv")``, whose contract is
described in :mod:`structlin._cpu.conv`); the result gets its batch shape back.
Streaming is in :mod:`structlin.conv_stream`, the kernel regularisers in
:mod:`structlin.conv_regularizers`, the SSM kernels in :mod:`structlin.ssm_kernels`.
"""

from __future__ import annotations

import sys
from typing import Any, Literal, NamedTuple

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
from structlin._validate import (
    as_array,
    check_bool,
    check_dtype,
    check_finite,
    check_int,
    check_min_ndim,
    check_not_none,
    check_out,
    check_precision,
    check_shape,
    prepare,
)

__all__ = [
    "FFTConvPlan",
    "fftconv",
    "fftconv_plan",
    "fftconv_to_dense",
    "fftconv_vjp",
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


def _check_namespace(xp: Any, name: str = "xp") -> Any:
    """Return ``xp`` if it is the ``numpy`` or the (imported) ``cupy`` module, else raise
    TypeError: a kernel module is chosen by it."""
    if xp is np or (xp is not None and xp is sys.modules.get("cupy")):
        return xp
    raise TypeError(f"{name} must be the numpy or the cupy module, got {xp!r}")


def _as_namespace_array(xp: Any, a: Any, name: str) -> Any:
    """``a`` converted to an array of ``xp`` (lists accepted), refusing the other namespace."""
    a = as_array(xp, a, name)
    if array_namespace(**{name: a}) is not xp:
        raise TypeError(
            f"{name} is a {type(a).__module__}.{type(a).__name__} but xp is {xp.__name__}: "
            f"give {name} as an array of {xp.__name__}"
        )
    return a


def _compute_dtype(dtype: Any, **arrays: Any) -> np.dtype:
    """The promotion of ``arrays`` and of the requested ``dtype`` (None: the arrays alone)."""
    if dtype is None:
        return result_dtype(**arrays)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a numeric dtype such as 'float32', got {dtype!r}") \
            from None
    return result_dtype(**arrays, dtype=np.zeros(0, dt))


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
        ``numpy`` or ``cupy``: the kernel module that computes the spectrum (anything else
        raises TypeError; ``k`` may be a list, it must not be an array of the other module).

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv_plan
    >>> plan = fftconv_plan(np.ones((2, 5), np.float32), 1000)
    >>> plan.nfft, plan.dtype
    (1024, dtype('float32'))
    """

    def __init__(self, k: Any, L: int, dtype: np.dtype, k_dtype: np.dtype, xp: Any):
        xp = _check_namespace(xp)
        k = _as_namespace_array(xp, k, "k")
        _check_kernel(k)
        self.L = check_int(L, "L", minimum=1)
        self.dtype = check_dtype(dtype, "dtype")
        self.k_dtype = check_dtype(k_dtype, "k_dtype")
        self.k = as_kernel_array(xp, k, self.dtype)
        self.H, self.Lk = (int(s) for s in k.shape)
        eng = kernels(xp, "conv")
        self.nfft = int(eng.fft_size(self.L, self.Lk))
        self.spectrum = eng.kernel_spectrum(self.k, self.nfft)

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
        If ``k`` or ``dtype`` is not numeric, or ``L`` is not an integer (floats, even
        integral ones, strings and None are refused).

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
    p = prepare(k=k)
    L = check_int(L, "L", minimum=1)
    dt = _compute_dtype(dtype, k=p.k)
    return FFTConvPlan(p.k, L, dt, p.dtype, p.xp)


class _Call(NamedTuple):
    """One call's arguments as the kernel contract takes them (``(B, H, L)`` C-contiguous
    arrays of the compute dtype, the kernel's spectrum) and what restoring the results needs.
    """

    xp: Any
    dtype: np.dtype
    eng: Any
    u: Any
    spec: Any
    nfft: int
    Lk: int
    offset: int
    D: Any
    pregate: Any
    postgate: Any
    grad: Any
    precision: str
    #: the shape of ``u`` (and of the output, the gates and ``grad``)
    shape: tuple[int, ...]
    #: the leading batch dimensions of ``u``, flattened into ``B``
    batch: tuple[int, ...]
    #: the dtype of each argument's gradient: its own dtype promoted to floating point
    grad_dtypes: dict[str, np.dtype]


def _prepare_call(u, k, D, pregate, postgate, causal, precision, grad=None) -> _Call:
    """Convert, check and promote every argument once; flatten the batch for the kernels."""
    plan = k if isinstance(k, FFTConvPlan) else None
    p = prepare(u=u, k=plan.k if plan is not None else k, D=D, pregate=pregate,
                postgate=postgate, grad=grad, dtype_of=("u", "k", "D", "pregate", "postgate"),
                optional=("D", "pregate", "postgate", "grad"))
    xp, dtype = p.xp, p.dtype
    check_min_ndim(p.u, 2, "u", "(..., H, L)")
    shape = tuple(p.u.shape)
    H, L = shape[-2], shape[-1]
    _check_length(L, "u")
    if plan is None:
        _check_kernel(p.k)
    if int(p.k.shape[0]) != H:
        raise ValueError(
            f"k must have one kernel per channel of u, i.e. H = {H} rows (u has shape "
            f"{shape}, channels on its second-to-last axis), got k of shape "
            f"{tuple(p.k.shape)}"
        )
    if p.D is not None:
        check_shape(p.D, (H,), "D", "one skip weight per channel of u")
        check_finite(p.D, "D")
    for name in ("pregate", "postgate"):
        if getattr(p, name) is not None:
            check_shape(getattr(p, name), shape, name, "u's shape")
    if p.grad is not None:
        check_shape(p.grad, shape, "grad", "the shape of fftconv's output, u's shape")
    causal = check_bool(causal, "causal")
    precision = _engine_precision(xp, precision, dtype)["precision"]
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
    eng = kernels(xp, "conv")
    if plan is not None:
        nfft, Lk, spec = plan.nfft, plan.Lk, plan.spectrum
    else:
        Lk = int(p.k.shape[1])
        nfft = int(eng.fft_size(L, Lk))
        spec = eng.kernel_spectrum(as_kernel_array(xp, p.k, dtype), nfft, lazy=True)

    def flat(a):
        return None if a is None else flatten_batch(as_kernel_array(xp, a, dtype), 2)[0]

    u3, batch = flatten_batch(as_kernel_array(xp, p.u, dtype), 2)
    grad_dtypes = {name: result_dtype(a=getattr(p, name))
                   for name in ("u", "D", "pregate", "postgate") if getattr(p, name) is not None}
    grad_dtypes["k"] = plan.k_dtype if plan is not None else result_dtype(k=p.k)
    return _Call(
        xp, dtype, eng, u3, spec, nfft, Lk, _offset(Lk, causal),
        None if p.D is None else as_kernel_array(xp, p.D, dtype),
        flat(p.pregate), flat(p.postgate), flat(p.grad), precision, shape, batch, grad_dtypes,
    )


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
        shape, is not C-contiguous or is read-only; ``precision`` is not one of the three
        values, or it is ``"fp16"``/``"bf16"`` and the compute dtype is not float32 or
        complex64.
    TypeError
        If NumPy and CuPy arrays are mixed (checked first), an argument is not numeric (an
        object or string array: the message names it), the inputs promote to another dtype
        than a plan's, ``out`` does not have the result's dtype or is not an array of ``u``'s
        type, or ``causal`` is not a bool.

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
    c = _prepare_call(u, k, D, pregate, postgate, causal, precision)
    if out is None:
        result = c.xp.empty(c.u.shape, dtype=c.dtype)
    else:
        _check_out(c.xp, out, c.shape, c.dtype)
        result = out.reshape(c.u.shape)
    c.eng.forward(c.u, c.spec, c.nfft, c.Lk, c.offset, c.D, c.pregate, c.postgate, result,
                  precision=c.precision)
    return out if out is not None else restore_batch(result, c.batch)


def _check_out(xp, out, shape, dtype) -> None:
    """:func:`structlin._validate.check_out`, with a wrong dtype a TypeError (a dtype error)."""
    if type(out) is xp.ndarray and out.dtype != dtype:
        raise TypeError(f"out must have the result dtype {dtype}, got {out.dtype}")
    check_out(xp, out, shape, dtype)


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
    check_not_none(grad=grad)
    c = _prepare_call(u, k, D, pregate, postgate, causal, precision, grad=grad)
    grads = c.eng.backward(c.u, c.spec, c.nfft, c.Lk, c.offset, c.D, c.pregate, c.postgate,
                           c.grad, precision=c.precision)
    out = []
    for name, g in zip(("u", "k", "D", "pregate", "postgate"), grads, strict=True):
        if name != "k" and name not in c.grad_dtypes:
            out.append(None)
            continue
        g = grad_as(c.xp, g, c.grad_dtypes[name])
        out.append(restore_batch(g, c.batch) if name in ("u", "pregate", "postgate") else g)
    return tuple(out)


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
    TypeError
        If ``k`` is not numeric or ``L`` is not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> from structlin import fftconv_to_dense
    >>> fftconv_to_dense(np.array([[1.0, 2.0]]), 3)[0]
    array([[1., 0., 0.],
           [2., 1., 0.],
           [0., 2., 1.]])
    """
    p = prepare(k=k)
    xp, k, dtype = p.xp, p.k, p.dtype
    if k.ndim != 2 or k.shape[1] < 1:
        raise ValueError(f"k must have shape (H, Lk) with Lk >= 1, got {tuple(k.shape)}")
    L = check_int(L, "L", minimum=1)
    Lk = int(k.shape[1])
    off = _offset(Lk, check_bool(causal, "causal"))
    idx = xp.arange(L)[:, None] + off - xp.arange(L)[None, :]
    valid = (idx >= 0) & (idx < Lk)
    T = xp.where(valid[None], k.astype(dtype)[:, xp.clip(idx, 0, Lk - 1)], 0)
    return T.astype(dtype)
