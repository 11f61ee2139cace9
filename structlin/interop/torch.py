"""PyTorch autograd wrappers of structlin's differentiable products (``torch`` extra).

Each function takes ``torch.Tensor`` arguments in the order and with the keyword arguments of
the structlin function of the same name, and returns a tensor on the inputs' device that
autograd differentiates through the function's ``*_vjp``. The tensors are moved with DLPack:
CPU tensors are viewed as NumPy arrays and CUDA tensors as CuPy arrays, without copies, and the
result comes back the same way; the structlin function then runs its Numba (CPU) or CUDA
kernels as it does for NumPy or CuPy users. On CUDA, structlin's kernels are launched on the
current PyTorch stream of the device.

Supported dtypes are float32, float64, complex64 and complex128 (the kernels' dtypes); others,
float16 and bfloat16 included, raise ``TypeError``. The result has NumPy's promotion of the
inputs' dtypes, and each gradient its input's dtype. Complex gradients use PyTorch's
convention, which is structlin's. Gradients are first-order: differentiating a gradient
(double backward) raises an error.

The functions whose structlin counterpart takes ``precision`` (:func:`monarch_multiply`,
:func:`fftconv`) take it too and pass it to the function and to its VJP unchanged, so float32
CUDA tensors reach the tensor-core kernels (``"tf32"``/``"bf16"``, ``"fp16"``/``"bf16"``); on
CPU tensors the value is checked and the result computed in full precision.

Examples
--------
The examples run in the doctests when PyTorch is installed (the module is skipped otherwise).

>>> import torch
>>> from structlin import random_butterfly
>>> from structlin.interop.torch import butterfly_multiply
>>> tw = torch.tensor(random_butterfly(8, rng=0), requires_grad=True)
>>> x = torch.randn(4, 8, dtype=torch.float64)
>>> butterfly_multiply(tw, x).square().sum().backward()
>>> tw.grad.shape
torch.Size([3, 4, 2, 2])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from structlin.interop._ops import OPS, Op

__all__ = [
    "butterfly_multiply",
    "butterfly_solve",
    "circulant_multiply",
    "dct",
    "dst",
    "fftconv",
    "fwht",
    "kaleidoscope_multiply",
    "kernel_features",
    "monarch_multiply",
    "pixelfly_multiply",
    "selective_scan",
    "ssd",
    "ssm_kernel_diag",
    "toeplitz_multiply",
    "xd_multiply",
]

_SUPPORTED = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def _check_tensors(op: Op, tensors: tuple) -> torch.device:
    """Check kinds, dtypes and devices; return the common device."""
    device = None
    for name, t, diff in zip(op.arrays, tensors, op.differentiable, strict=True):
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            if diff:
                raise TypeError(
                    f"{name} must be a torch.Tensor, got {type(t).__name__}; convert it with "
                    f"torch.as_tensor({name})"
                )
            continue
        if diff and t.dtype not in _SUPPORTED:
            raise TypeError(
                f"{name} has dtype {t.dtype}; structlin.interop.torch.{op.name} supports "
                "torch.float32, torch.float64, torch.complex64 and torch.complex128 tensors "
                f"(cast it, e.g. {name}.float())"
            )
        if t.device.type not in ("cpu", "cuda"):
            raise TypeError(
                f"{name} is on device {t.device}; structlin runs on CPU and CUDA tensors only"
            )
        if device is None:
            device = t.device
        elif t.device != device:
            raise TypeError(
                f"{name} is on {t.device} but an earlier argument is on {device}: all tensors "
                "must be on the same device"
            )
    return device if device is not None else torch.device("cpu")


def _to_array(t: Any) -> Any:
    """A NumPy (CPU) or CuPy (CUDA) view of tensor ``t`` through DLPack; other values pass."""
    if not isinstance(t, torch.Tensor):
        return t
    # DLPack exports neither autograd state nor the lazy conjugate/negative bits
    t = t.detach().resolve_conj().resolve_neg()
    if t.device.type == "cuda":
        import cupy

        return cupy.from_dlpack(t)
    return np.from_dlpack(t)


def _to_tensor(a: Any) -> Any:
    """The tensor of NumPy or CuPy array ``a`` through DLPack (a copy only where DLPack
    cannot share: read-only or negatively strided NumPy arrays)."""
    if a is None:
        return None
    if isinstance(a, np.ndarray):
        if not a.flags.writeable or any(s < 0 for s in a.strides):
            a = a.copy()
    return torch.from_dlpack(a)


def _on_stream(device: torch.device):
    """Run CuPy work on PyTorch's current stream of ``device`` (a no-op on the CPU)."""
    if device.type != "cuda":
        import contextlib

        return contextlib.nullcontext()
    import cupy

    stream = torch.cuda.current_stream(device)
    return cupy.cuda.ExternalStream(stream.cuda_stream, device.index)


class _Apply(torch.autograd.Function):
    """``op.forward`` forward, ``op.backward`` (the structlin VJP) backward."""

    @staticmethod
    def forward(ctx, op: Op, static: dict, device: torch.device, *tensors):
        ctx.op, ctx.static, ctx.device = op, static, device
        ctx.save_for_backward(*(t if isinstance(t, torch.Tensor) else None for t in tensors))
        ctx.others = tuple(None if isinstance(t, torch.Tensor) else t for t in tensors)
        with _on_stream(device):
            out = op.forward(tuple(_to_array(t) for t in tensors), static)
            return _to_tensor(out)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        saved = tuple(t if t is not None else o for t, o in zip(ctx.saved_tensors, ctx.others,
                                                                strict=True))
        with _on_stream(ctx.device):
            grads = ctx.op.backward(tuple(_to_array(t) for t in saved), ctx.static,
                                    _to_array(grad))
            needed = ctx.needs_input_grad[3:]
            out = tuple(_to_tensor(g) if need and g is not None else None
                        for g, need in zip(grads, needed, strict=True))
        return (None, None, None, *out)


def _apply(name: str, tensors: tuple, **static: Any) -> torch.Tensor:
    op = OPS[name]
    device = _check_tensors(op, tensors)
    tensors = tuple(_mask_on(device, t) if not diff else t
                    for t, diff in zip(tensors, op.differentiable, strict=True))
    return _Apply.apply(op, static, device, *tensors)


def _mask_on(device: torch.device, mask: Any) -> Any:
    """A non-differentiable argument (Pixelfly's mask) as an array of the device's kind."""
    if isinstance(mask, torch.Tensor):
        return mask if mask.device == device else mask.to(device)
    if device.type == "cuda":
        return torch.as_tensor(np.asarray(mask), device=device)
    return mask


def butterfly_multiply(
    twiddle: torch.Tensor,
    x: torch.Tensor,
    *,
    increasing_stride: bool = True,
    transpose: bool = False,
    conjugate: bool = False,
) -> torch.Tensor:
    """Return the butterfly product ``op(B) x`` (:func:`structlin.butterfly_multiply`), with
    autograd through :func:`structlin.butterfly_multiply_vjp`.

    Parameters
    ----------
    twiddle : torch.Tensor, shape (L, n//2, 2, 2)
    x : torch.Tensor, shape (..., n)
    increasing_stride, transpose, conjugate : bool
        As for :func:`structlin.butterfly_multiply`.

    Returns
    -------
    torch.Tensor, shape (..., n)
        On the inputs' device, with NumPy's promotion of their dtypes.

    Raises
    ------
    TypeError
        If an argument is not a tensor of a supported dtype, or the devices differ.
    ValueError
        As for :func:`structlin.butterfly_multiply`.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import butterfly_multiply
    >>> h = torch.tensor([[1.0, 1.0], [1.0, -1.0]]).repeat(2, 2, 1, 1)  # Hadamard, n = 4
    >>> butterfly_multiply(h, torch.tensor([1.0, 0.0, 0.0, 0.0]))
    tensor([1., 1., 1., 1.])
    """
    return _apply("butterfly_multiply", (twiddle, x), increasing_stride=increasing_stride,
                  transpose=transpose, conjugate=conjugate)


def butterfly_solve(
    twiddle: torch.Tensor,
    y: torch.Tensor,
    *,
    increasing_stride: bool = True,
    transpose: bool = False,
    conjugate: bool = False,
) -> torch.Tensor:
    """Return the solution of ``op(B) x = y`` (:func:`structlin.butterfly_solve`), with
    autograd through :func:`structlin.butterfly_solve_vjp`.

    Parameters
    ----------
    twiddle : torch.Tensor, shape (L, n//2, 2, 2)
    y : torch.Tensor, shape (..., n)
    increasing_stride, transpose, conjugate : bool
        As for :func:`structlin.butterfly_solve`.

    Returns
    -------
    torch.Tensor, shape (..., n)

    Raises
    ------
    numpy.linalg.LinAlgError
        If a block of ``twiddle`` is singular.
    TypeError, ValueError
        As for :func:`butterfly_multiply`.
    """
    return _apply("butterfly_solve", (twiddle, y), increasing_stride=increasing_stride,
                  transpose=transpose, conjugate=conjugate)


def monarch_multiply(
    w1: torch.Tensor, w2: torch.Tensor, x: torch.Tensor, *, precision: str = "highest"
) -> torch.Tensor:
    """Return the Monarch product ``M x`` (:func:`structlin.monarch_multiply`), with autograd
    through :func:`structlin.monarch_multiply_vjp`.

    Parameters
    ----------
    w1 : torch.Tensor, shape (k, q, p)
    w2 : torch.Tensor, shape (l, s, r)
    x : torch.Tensor, shape (..., k*p)
    precision : {"highest", "tf32", "bf16"}, default "highest"
        As for :func:`structlin.monarch_multiply`, forward and backward alike: ``"tf32"`` and
        ``"bf16"`` run the block products of float32/complex64 CUDA tensors on tensor cores;
        on CPU tensors the value is checked and the product computed in full precision.

    Returns
    -------
    torch.Tensor, shape (..., l*s)

    Raises
    ------
    TypeError, ValueError
        As for :func:`butterfly_multiply` and :func:`structlin.monarch_multiply` (a
        ``precision`` that is not one of the three values, or a tensor-core one on float64
        or complex128 tensors: ``ValueError``).
    """
    return _apply("monarch_multiply", (w1, w2, x), precision=precision)


def pixelfly_multiply(
    blocks: torch.Tensor, mask: Any, U: torch.Tensor, V: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """Return the Pixelfly product ``x @ (S + U @ V.T).T`` (:func:`structlin.pixelfly_multiply`),
    with autograd through :func:`structlin.pixelfly_multiply_vjp`.

    Parameters
    ----------
    blocks : torch.Tensor, shape (nnz_blocks, block, block)
    mask : torch.Tensor or array_like of bool, shape (n_out // block, n_in // block)
        The sparsity pattern (never differentiated).
    U : torch.Tensor, shape (n_out, rank)
    V : torch.Tensor, shape (n_in, rank)
    x : torch.Tensor, shape (..., n_in)

    Returns
    -------
    torch.Tensor, shape (..., n_out)

    Raises
    ------
    TypeError, ValueError
        As for :func:`butterfly_multiply` and :func:`structlin.pixelfly_multiply`.
    """
    return _apply("pixelfly_multiply", (blocks, mask, U, V, x))


def fftconv(
    u: torch.Tensor,
    k: torch.Tensor,
    D: torch.Tensor | None = None,
    *,
    pregate: torch.Tensor | None = None,
    postgate: torch.Tensor | None = None,
    causal: bool = True,
    precision: str = "highest",
) -> torch.Tensor:
    """Return the gated long convolution of :func:`structlin.fftconv`, with autograd through
    :func:`structlin.fftconv_vjp`.

    Parameters
    ----------
    u : torch.Tensor, shape (..., H, L)
    k : torch.Tensor, shape (H, Lk)
    D : torch.Tensor, shape (H,), optional
    pregate, postgate : torch.Tensor, shape (..., H, L), optional
    causal : bool, default True
        As for :func:`structlin.fftconv`.
    precision : {"highest", "fp16", "bf16"}, default "highest"
        As for :func:`structlin.fftconv` (``"fp32"`` is an alias of ``"highest"``), forward
        and backward alike: ``"fp16"``/``"bf16"`` run the DFT blocks of float32 CUDA tensors
        on tensor cores; on CPU tensors the value is checked and the convolution computed in
        full precision.

    Returns
    -------
    torch.Tensor, shape (..., H, L)

    Raises
    ------
    TypeError, ValueError
        As for :func:`butterfly_multiply` and :func:`structlin.fftconv`.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import fftconv
    >>> u = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    >>> k = torch.tensor([[1.0, 1.0, 1.0]], requires_grad=True)
    >>> y = fftconv(u, k)
    >>> y
    tensor([[1., 3., 6., 9.]], grad_fn=<_ApplyBackward>)
    >>> y.sum().backward()
    >>> k.grad
    tensor([[10.,  6.,  3.]])
    """
    return _apply("fftconv", (u, k, D, pregate, postgate), causal=bool(causal),
                  precision=precision)


def circulant_multiply(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return the circulant product of :func:`structlin.circulant_multiply`, with autograd
    through :func:`structlin.circulant_multiply_vjp`.

    Parameters
    ----------
    c : torch.Tensor, shape (n,)
    x : torch.Tensor, shape (..., n)

    Returns
    -------
    torch.Tensor, shape (..., n)
    """
    return _apply("circulant_multiply", (c, x))


def toeplitz_multiply(column: torch.Tensor, row: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return the Toeplitz product of :func:`structlin.toeplitz_multiply`, with autograd
    through :func:`structlin.toeplitz_multiply_vjp`.

    Parameters
    ----------
    column, row : torch.Tensor, shape (n,)
    x : torch.Tensor, shape (..., n)

    Returns
    -------
    torch.Tensor, shape (..., n)
    """
    return _apply("toeplitz_multiply", (column, row, x))


def dct(x: torch.Tensor, type: int = 2, norm: str | None = None) -> torch.Tensor:
    """Return the DCT of :func:`structlin.dct` along the last axis, with autograd through
    :func:`structlin.dct_vjp`.

    Parameters
    ----------
    x : torch.Tensor, shape (..., n)
    type, norm
        As for :func:`structlin.dct`.

    Returns
    -------
    torch.Tensor, shape (..., n)
    """
    return _apply("dct", (x,), type=type, norm=norm)


def dst(x: torch.Tensor, type: int = 2, norm: str | None = None) -> torch.Tensor:
    """Return the DST of :func:`structlin.dst` along the last axis, with autograd through
    :func:`structlin.dst_vjp`.

    Parameters
    ----------
    x : torch.Tensor, shape (..., n)
    type, norm
        As for :func:`structlin.dst`.

    Returns
    -------
    torch.Tensor, shape (..., n)
    """
    return _apply("dst", (x,), type=type, norm=norm)


def fwht(x: torch.Tensor, *, normalize: bool = False) -> torch.Tensor:
    """Return the Walsh–Hadamard transform of :func:`structlin.fwht`, with autograd through
    :func:`structlin.fwht_vjp`.

    Parameters
    ----------
    x : torch.Tensor, shape (..., n)
    normalize : bool, default False
        As for :func:`structlin.fwht`.

    Returns
    -------
    torch.Tensor, shape (..., n)
    """
    return _apply("fwht", (x,), normalize=bool(normalize))


def kernel_features(X: torch.Tensor, nodes: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Return the kernel feature map of :func:`structlin.kernel_features` (cosine–sine pairs),
    with autograd through :func:`structlin.kernel_features_vjp` for all three tensors.

    Parameters
    ----------
    X : torch.Tensor, shape (..., d)
    nodes : torch.Tensor, shape (m, d)
    weights : torch.Tensor, shape (m,)
        As for :func:`structlin.kernel_features` (real; non-negative weights).

    Returns
    -------
    torch.Tensor, shape (..., 2m)
    """
    return _apply("kernel_features", (X, nodes, weights))


def kaleidoscope_multiply(twiddle: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return the K-matrix product ``K x`` of :func:`structlin.kaleidoscope_multiply`,
    differentiable through :func:`structlin.kaleidoscope_multiply_vjp`.

    Parameters
    ----------
    twiddle : torch.Tensor, shape (w, 2, L, n//2, 2, 2)
    x : torch.Tensor, shape (..., n)

    Returns
    -------
    torch.Tensor, shape (..., n)
    """
    return _apply("kaleidoscope_multiply", (twiddle, x))


def xd_multiply(
    tw_K: torch.Tensor, tw_L: torch.Tensor, tw_M: torch.Tensor, w: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """Return the XD-operation ``K diag(L w) M x`` of :func:`structlin.xd_multiply`,
    differentiable through :func:`structlin.xd_multiply_vjp` (every argument).

    Parameters
    ----------
    tw_K, tw_L, tw_M : torch.Tensor, shape (w_*, 2, L, n//2, 2, 2)
    w : torch.Tensor, shape (n,)
    x : torch.Tensor, shape (..., n)

    Returns
    -------
    torch.Tensor, shape (..., n)
    """
    return _apply("xd_multiply", (tw_K, tw_L, tw_M, w, x))


def ssm_kernel_diag(Lambda: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: torch.Tensor,
                    L: int, *, method: str = "zoh") -> torch.Tensor:
    """Return the diagonal (S4D) SSM convolution kernel of :func:`structlin.ssm_kernel_diag`,
    with autograd through :func:`structlin.ssm_kernel_diag_vjp` for all four tensors.

    Parameters
    ----------
    Lambda, B, C : torch.Tensor, shape (H, N)
        Complex (or real) diagonal state matrix, input and output vectors.
    dt : torch.Tensor, shape (H,)
        Positive real steps.
    L : int
        Kernel length.
    method : {"zoh", "bilinear"}, default "zoh"

    Returns
    -------
    torch.Tensor, shape (H, L)
        Real, of the real dtype of the inputs' promotion.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import ssm_kernel_diag
    >>> lam = torch.tensor([[-0.5 + 3.0j]], requires_grad=True)
    >>> b = torch.ones(1, 1, dtype=torch.complex64)
    >>> k = ssm_kernel_diag(lam, b, b, torch.tensor([0.1]), 16)
    >>> k.sum().backward()
    >>> k.shape, lam.grad.dtype
    (torch.Size([1, 16]), torch.complex64)
    """
    return _apply("ssm_kernel_diag", (Lambda, B, C, dt), L=L, method=method)


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                   delta_bias: torch.Tensor | None = None,
                   delta_softplus: bool = False) -> torch.Tensor:
    """Return Mamba's selective scan (:func:`structlin.selective_scan`, the semantics of
    mamba_ssm's ``selective_scan_fn``), with autograd through
    :func:`structlin.selective_scan_vjp` for every tensor.

    Parameters
    ----------
    u, delta : torch.Tensor, shape (b, d, l)
    A : torch.Tensor, shape (d, n)
    B, C : torch.Tensor, shape (d, n), (b, n, l) or (b, g, n, l)
    D : torch.Tensor, shape (d,), optional
    z : torch.Tensor, shape (b, d, l), optional
    delta_bias : torch.Tensor, shape (d,), optional
    delta_softplus : bool, default False
        As for :func:`structlin.selective_scan`. The last state is not returned here (call
        :func:`structlin.selective_scan` with ``return_last_state=True`` for inference).

    Returns
    -------
    torch.Tensor, shape (b, d, l)

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import selective_scan
    >>> u = torch.randn(1, 2, 8, requires_grad=True)
    >>> delta = torch.rand(1, 2, 8)
    >>> A = -torch.rand(2, 4)
    >>> B, C = torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    >>> selective_scan(u, delta, A, B, C).sum().backward()
    >>> u.grad.shape
    torch.Size([1, 2, 8])
    """
    return _apply("selective_scan", (u, delta, A, B, C, D, z, delta_bias),
                  delta_softplus=bool(delta_softplus))


def ssd(X: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, chunk_size: int,
        initial_states: torch.Tensor | None = None) -> torch.Tensor:
    """Return Mamba-2's state space dual output (:func:`structlin.ssd`, the semantics of
    mamba's ``ssd_minimal_discrete``), with autograd through :func:`structlin.ssd_vjp`.

    Parameters
    ----------
    X : torch.Tensor, shape (b, l, h, p)
    A : torch.Tensor, shape (b, l, h)
        Per-step log decay.
    B, C : torch.Tensor, shape (b, l, h, n)
    chunk_size : int
        Any chunk size >= 1 (the result does not depend on it beyond rounding).
    initial_states : torch.Tensor, shape (b, h, p, n), optional

    Returns
    -------
    torch.Tensor, shape (b, l, h, p)
        The final states are not returned here (call :func:`structlin.ssd` with
        ``return_final_states=True``).

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import ssd
    >>> X = torch.randn(1, 10, 2, 3, requires_grad=True)
    >>> A = -torch.rand(1, 10, 2)
    >>> B, C = torch.randn(1, 10, 2, 4), torch.randn(1, 10, 2, 4)
    >>> ssd(X, A, B, C, 4).sum().backward()
    >>> X.grad.shape
    torch.Size([1, 10, 2, 3])
    """
    return _apply("ssd", (X, A, B, C, initial_states), chunk_size=chunk_size)
