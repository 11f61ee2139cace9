"""PyTorch operators for structlin's differentiable products (``torch`` extra).

Each function takes ``torch.Tensor`` arguments in the order and with the keyword arguments of
the structlin function of the same name, and returns a tensor on the inputs' device that
autograd differentiates through the function's ``*_vjp``. Each calls a ``torch.library``
custom operator, ``torch.ops.structlin.<name>`` (registered for every operation of the op table
in :mod:`structlin.interop.torch._custom`), with a fake implementation and an autograd formula,
so ``torch.compile(..., fullgraph=True)`` traces through it without a graph break and
``torch.export`` keeps it. The tensors are moved with DLPack:
CPU tensors are viewed as NumPy arrays and CUDA tensors as CuPy arrays, without copies, and the
result comes back the same way; the structlin function then runs its Numba (CPU) or CUDA
kernels as it does for NumPy or CuPy users. On CUDA, structlin's kernels are launched on the
current PyTorch stream of the device.

Supported dtypes are float32, float64, complex64 and complex128 (the kernels' dtypes); others,
float16 and bfloat16 included, raise ``TypeError``; so do tensors on other devices or on
different devices, and ``requires_grad`` on an argument that is not differentiated (Pixelfly's
mask) raises ``ValueError``. Under ``torch.compile`` these, a refused ``precision`` and shapes
that ``op.out_shape`` cannot combine are raised while tracing; other shape mismatches come from
the structlin function when the graph runs (``docs/interop.md``). The result has NumPy's
promotion of the inputs' dtypes, and each gradient its input's dtype. Complex gradients use
PyTorch's convention, which is structlin's. Gradients are first-order: differentiating a
gradient (double backward) raises ``RuntimeError``.

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

from structlin.interop._ops import OPS, Op
from structlin.interop.torch import _custom

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
    "ldr_multiply",
    "ldr_solve",
    "matmul_cauchy",
    "matmul_hankel",
    "matmul_toeplitz",
    "matmul_vandermonde",
    "monarch_multiply",
    "pixelfly_multiply",
    "selective_scan",
    "solve_cauchy",
    "solve_hankel",
    "solve_toeplitz",
    "solve_vandermonde",
    "ssd",
    "ssm_kernel_diag",
    "toeplitz_multiply",
    "xd_multiply",
]

_SUPPORTED = _custom.SUPPORTED
_to_array = _custom.to_array
_to_tensor = _custom.to_tensor


def _check_tensors(op: Op, tensors: tuple) -> torch.device:
    """Check kinds, dtypes, devices and the non-differentiable arguments; return the common
    device. Plain attribute checks, which ``torch.compile`` evaluates while it traces."""
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
        if not diff and t.requires_grad:
            raise ValueError(
                f"{name} requires grad, but structlin.interop.torch.{op.name} does not "
                f"differentiate with respect to {name}; pass {name}.detach()"
            )
        if t.device.type not in ("cpu", "cuda"):
            raise TypeError(
                f"{name} is on device {t.device}; structlin runs on CPU and CUDA tensors only"
            )
        if not diff:
            continue  # moved to the others' device below
        if device is None:
            device = t.device
        elif t.device != device:
            raise TypeError(
                f"{name} is on {t.device} but an earlier argument is on {device}: all tensors "
                "must be on the same device"
            )
    return device if device is not None else torch.device("cpu")


def _apply(name: str, tensors: tuple, **static: Any) -> torch.Tensor:
    """Check the arguments and call the custom operator ``torch.ops.structlin.<name>``."""
    op = OPS[name]
    device = _check_tensors(op, tensors)
    arrays = [_mask_on(device, t) if not diff else t
              for t, diff in zip(tensors, op.differentiable, strict=True)]
    return _custom.call(name, [t for t in arrays if t is not None],
                        [t is not None for t in arrays], _custom.encode_static(op, static))


def _mask_on(device: torch.device, mask: Any) -> Any:
    """A non-differentiable argument (Pixelfly's mask) as a tensor on ``device``."""
    if mask is None:
        return None
    if isinstance(mask, torch.Tensor):
        return mask if mask.device == device else mask.to(device)
    return torch.as_tensor(np.asarray(mask), device=device)


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
    >>> y.detach()
    tensor([[1., 3., 6., 9.]])
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


def matmul_toeplitz(c: torch.Tensor, r: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """Return the Toeplitz product ``T @ x`` of :func:`structlin.matmul_toeplitz` (SciPy's
    layouts and batching), with autograd through :func:`structlin.matmul_toeplitz_vjp`.

    Parameters
    ----------
    c : torch.Tensor, shape (..., m)
        The first column of ``T``.
    r : torch.Tensor, shape (..., n), or None
        The first row (``r[..., 0]`` ignored); ``None`` means ``r = conj(c)``, SciPy's
        ``c_or_cr = c`` (then no gradient for ``r``).
    x : torch.Tensor, shape (n,) or (..., n, k)
        As for :func:`structlin.matmul_toeplitz`: a vector, or a batch of ``(n, k)`` matrices;
        batch dimensions broadcast with those of ``c`` and ``r``.

    Returns
    -------
    torch.Tensor, shape (..., m) or (..., m, k)

    Raises
    ------
    TypeError, ValueError
        As for :func:`butterfly_multiply` and :func:`structlin.matmul_toeplitz`.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import matmul_toeplitz
    >>> c = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> r = torch.tensor([1.0, 4.0, 5.0])
    >>> y = matmul_toeplitz(c, r, torch.tensor([1.0, 0.0, 0.0]))
    >>> y.detach()
    tensor([1., 2., 3.])
    >>> y.sum().backward()
    >>> c.grad
    tensor([1., 1., 1.])
    """
    return _apply("matmul_toeplitz", (c, r, x))


def solve_toeplitz(c: torch.Tensor, r: torch.Tensor | None, b: torch.Tensor, *,
                   method: str = "auto") -> torch.Tensor:
    """Return the solution ``x`` of ``T @ x = b`` of :func:`structlin.solve_toeplitz` (SciPy's
    layouts and batching), with autograd through :func:`structlin.solve_toeplitz_vjp`.

    Parameters
    ----------
    c : torch.Tensor, shape (..., n)
        The first column of ``T``.
    r : torch.Tensor, shape (..., n), or None
        The first row (``r[..., 0]`` ignored); ``None`` means ``r = conj(c)`` (then no
        gradient for ``r``).
    b : torch.Tensor, shape (n,) or (..., n, k)
        The right-hand side(s), as for :func:`structlin.solve_toeplitz`.
    method : {"auto", "levinson", "gko", "pcg"}, default "auto"
        As for :func:`structlin.solve_toeplitz`, forward and backward alike (the VJP solves
        with ``T^H`` by the same method).

    Returns
    -------
    torch.Tensor, shape (..., n) or (..., n, k)

    Raises
    ------
    numpy.linalg.LinAlgError
        As for :func:`structlin.solve_toeplitz` (a singular system).
    TypeError, ValueError
        As for :func:`butterfly_multiply` and :func:`structlin.solve_toeplitz`.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import solve_toeplitz
    >>> c = torch.tensor([4.0, 1.0, 0.5], dtype=torch.float64, requires_grad=True)
    >>> x = solve_toeplitz(c, None, torch.tensor([5.5, 6.0, 5.5], dtype=torch.float64))
    >>> x.detach()
    tensor([1., 1., 1.], dtype=torch.float64)
    >>> x.sum().backward()
    >>> c.grad.shape
    torch.Size([3])
    """
    return _apply("solve_toeplitz", (c, r, b), method=method)


def ldr_multiply(
    G: torch.Tensor,
    H: torch.Tensor,
    x: torch.Tensor,
    kind: str,
    *,
    nodes: torch.Tensor | None = None,
    s: torch.Tensor | None = None,
    t: torch.Tensor | None = None,
    subdiag_A: torch.Tensor | None = None,
    subdiag_B: torch.Tensor | None = None,
    f: Any = None,
    f_A: Any = None,
    f_B: Any = None,
) -> torch.Tensor:
    """Return ``M @ x`` for the matrix ``M`` of low displacement rank of generators ``G``,
    ``H`` (:func:`structlin.ldr_multiply`), with autograd through
    :func:`structlin.ldr_multiply_vjp` for the generators, ``x`` and the array operator
    parameters of ``kind``.

    Parameters
    ----------
    G, H : torch.Tensor, shape (..., r, n)
        The generators (the displacement of ``M`` is ``G^T H``).
    x : torch.Tensor, shape (..., n)
    kind : {"toeplitz", "hankel", "vandermonde", "cauchy", "subdiagonal"}
    nodes : torch.Tensor, shape (n,), optional
        The Vandermonde nodes (``kind="vandermonde"``).
    s, t : torch.Tensor, shape (n,), optional
        The Cauchy nodes (``kind="cauchy"``).
    subdiag_A, subdiag_B : torch.Tensor, shape (n - 1,), optional
        The subdiagonals of the operators (``kind="subdiagonal"``).
    f, f_A, f_B : float or complex, optional
        The scalar operator parameters (not differentiated), as for
        :func:`structlin.ldr_multiply`.

    Returns
    -------
    torch.Tensor, shape (..., n)
        Batch dimensions of ``G``, ``H`` and ``x`` broadcast.

    Raises
    ------
    TypeError, ValueError
        As for :func:`butterfly_multiply` and :func:`structlin.ldr_multiply` (an unknown
        kind, a missing operator parameter, mismatched shapes).

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import ldr_multiply
    >>> G = torch.randn(2, 8, dtype=torch.float64, requires_grad=True)
    >>> H = torch.randn(2, 8, dtype=torch.float64)
    >>> ldr_multiply(G, H, torch.randn(3, 8, dtype=torch.float64), "toeplitz").sum().backward()
    >>> G.grad.shape
    torch.Size([2, 8])
    """
    return _apply("ldr_multiply", (G, H, x, nodes, s, t, subdiag_A, subdiag_B), kind=kind, f=f,
                  f_A=f_A, f_B=f_B)


def matmul_cauchy(x_nodes: torch.Tensor, y_nodes: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Return the Cauchy product ``C @ v``, ``C[i, j] = 1 / (x_nodes[i] - y_nodes[j])``, of
    :func:`structlin.matmul_cauchy`, with autograd through :func:`structlin.matmul_cauchy_vjp`
    for all three tensors.

    Parameters
    ----------
    x_nodes : torch.Tensor, shape (..., m)
    y_nodes : torch.Tensor, shape (..., n)
    v : torch.Tensor, shape (..., n)
        Batch dimensions broadcast.

    Returns
    -------
    torch.Tensor, shape (..., m)

    Raises
    ------
    TypeError, ValueError
        As for :func:`butterfly_multiply` and :func:`structlin.matmul_cauchy`.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import matmul_cauchy
    >>> xn = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    >>> y = matmul_cauchy(xn, torch.tensor([0.0, -1.0], dtype=torch.float64),
    ...                   torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> y.detach()
    tensor([1.5000, 0.8333], dtype=torch.float64)
    """
    return _apply("matmul_cauchy", (x_nodes, y_nodes, v))


def solve_cauchy(x_nodes: torch.Tensor, y_nodes: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return the solution of ``C x = b`` for the Cauchy matrix ``C[i, j] = 1 / (x_nodes[i] -
    y_nodes[j])`` (:func:`structlin.solve_cauchy`, GKO with partial pivoting), with autograd
    through :func:`structlin.solve_cauchy_vjp` for all three tensors.

    Parameters
    ----------
    x_nodes, y_nodes : torch.Tensor, shape (..., n)
    b : torch.Tensor, shape (..., n)
        Batch dimensions broadcast.

    Returns
    -------
    torch.Tensor, shape (..., n)

    Raises
    ------
    numpy.linalg.LinAlgError
        A singular ``C`` (repeated nodes).
    TypeError, ValueError
        As for :func:`butterfly_multiply` and :func:`structlin.solve_cauchy`.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import matmul_cauchy, solve_cauchy
    >>> xn = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    >>> yn = torch.tensor([-0.5, -1.5, -2.5], dtype=torch.float64)
    >>> b = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    >>> bool(torch.allclose(matmul_cauchy(xn, yn, solve_cauchy(xn, yn, b)), b))
    True
    """
    return _apply("solve_cauchy", (x_nodes, y_nodes, b))


def matmul_vandermonde(x: torch.Tensor, v: torch.Tensor, m: int, *,
                       transpose: bool = False) -> torch.Tensor:
    """Return the Vandermonde product ``V v`` (``V[i, j] = x_j^i``, ``m x n``; ``V^T v`` with
    ``transpose``) of :func:`structlin.matmul_vandermonde`, with autograd through
    :func:`structlin.matmul_vandermonde_vjp` for ``x`` and ``v``.

    Parameters
    ----------
    x : torch.Tensor, shape (..., n)
    v : torch.Tensor, shape (..., n), or (..., m) with ``transpose``
    m : int
    transpose : bool, default False

    Returns
    -------
    torch.Tensor, shape (..., m), or (..., n) with ``transpose``

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import matmul_vandermonde
    >>> x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    >>> v = torch.tensor([1.0, 1.0], dtype=torch.float64)
    >>> y = matmul_vandermonde(x, v, 3)                 # rows [1, 1], [1, 2], [1, 4]
    >>> y.detach()
    tensor([2., 3., 5.], dtype=torch.float64)
    """
    return _apply("matmul_vandermonde", (x, v), m=m, transpose=bool(transpose))


def solve_vandermonde(x: torch.Tensor, b: torch.Tensor, *, transpose: bool = False
                      ) -> torch.Tensor:
    """Return the solution of ``V c = b`` (``V^T c = b`` with ``transpose``) for the square
    Vandermonde matrix of nodes ``x`` (:func:`structlin.solve_vandermonde`, Björck-Pereyra),
    with autograd through :func:`structlin.solve_vandermonde_vjp` for ``x`` and ``b``.

    Parameters
    ----------
    x, b : torch.Tensor, shape (..., n)
    transpose : bool, default False

    Returns
    -------
    torch.Tensor, shape (..., n)

    Raises
    ------
    numpy.linalg.LinAlgError
        Repeated nodes.
    TypeError, ValueError
        As for :func:`butterfly_multiply` and :func:`structlin.solve_vandermonde`.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import matmul_vandermonde, solve_vandermonde
    >>> x = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)
    >>> b = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    >>> c = solve_vandermonde(x, b)
    >>> bool(torch.allclose(matmul_vandermonde(x, c, 3), b))
    True
    """
    return _apply("solve_vandermonde", (x, b), transpose=bool(transpose))


def ldr_solve(
    G: torch.Tensor,
    H: torch.Tensor,
    b: torch.Tensor,
    kind: str,
    *,
    nodes: torch.Tensor | None = None,
    s: torch.Tensor | None = None,
    t: torch.Tensor | None = None,
    subdiag_A: torch.Tensor | None = None,
    subdiag_B: torch.Tensor | None = None,
    f: Any = None,
    f_A: Any = None,
    f_B: Any = None,
) -> torch.Tensor:
    """Return the solution of ``M x = b`` for the LDR matrix ``M`` of generators ``G``, ``H``
    (:func:`structlin.ldr_solve`), with autograd through :func:`structlin.ldr_solve_vjp`.

    Parameters
    ----------
    G, H, b, kind, nodes, s, t, subdiag_A, subdiag_B, f, f_A, f_B
        As for :func:`ldr_multiply` (``b`` in place of ``x``); the kinds of
        :func:`structlin.ldr_solve` ("toeplitz", "hankel", "vandermonde", "cauchy").

    Returns
    -------
    torch.Tensor, shape (..., n)

    Raises
    ------
    numpy.linalg.LinAlgError
        A singular ``M``.
    TypeError, ValueError
        As for :func:`ldr_multiply` and :func:`structlin.ldr_solve`.

    Examples
    --------
    >>> import scipy.linalg
    >>> import structlin
    >>> import torch
    >>> from structlin.interop.torch import ldr_multiply, ldr_solve
    >>> T = scipy.linalg.toeplitz([3.0, 0.5, 0.2, 0.1], [3.0, -0.4, 0.3, 0.1])
    >>> G, H = (torch.from_numpy(a) for a in structlin.ldr_compress(T, "toeplitz", 2))
    >>> b = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    >>> x = ldr_solve(G, H, b, "toeplitz")
    >>> bool(torch.allclose(ldr_multiply(G, H, x, "toeplitz"), b))
    True
    """
    return _apply("ldr_solve", (G, H, b, nodes, s, t, subdiag_A, subdiag_B), kind=kind, f=f,
                  f_A=f_A, f_B=f_B)


def matmul_hankel(c: torch.Tensor, r: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """Return the Hankel product ``H @ x`` of :func:`structlin.matmul_hankel` (SciPy's
    layouts and batching), with autograd through :func:`structlin.matmul_hankel_vjp`.

    Parameters
    ----------
    c : torch.Tensor, shape (..., m)
        The first column of ``H``.
    r : torch.Tensor, shape (..., n), or None
        The last row (``r[..., 0]`` ignored); ``None``: ``[c[-1], 0, ..., 0]``, as
        :func:`scipy.linalg.hankel` (then no gradient for ``r``).
    x : torch.Tensor, shape (n,) or (..., n, k)

    Returns
    -------
    torch.Tensor, shape (..., m) or (..., m, k)

    Examples
    --------
    >>> import scipy.linalg
    >>> import torch
    >>> from structlin.interop.torch import matmul_hankel
    >>> c = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    >>> r = torch.tensor([3.0, 4.0], dtype=torch.float64)
    >>> x = torch.tensor([1.0, -1.0], dtype=torch.float64)
    >>> y = matmul_hankel(c, r, x)
    >>> H = torch.from_numpy(scipy.linalg.hankel(c.detach().numpy(), r.numpy()))
    >>> bool(torch.allclose(y, H @ x))
    True
    """
    return _apply("matmul_hankel", (c, r, x))


def solve_hankel(c: torch.Tensor, r: torch.Tensor | None, b: torch.Tensor, *,
                 method: str = "auto") -> torch.Tensor:
    """Return the solution of ``H @ x = b`` of :func:`structlin.solve_hankel` (a square
    Hankel matrix, SciPy's layouts and batching), with autograd through
    :func:`structlin.solve_hankel_vjp`.

    Parameters
    ----------
    c, r : torch.Tensor, shape (..., n); r may be None
        As for :func:`matmul_hankel`.
    b : torch.Tensor, shape (n,) or (..., n, k)
    method : {"auto", "levinson", "gko", "pcg"}, default "auto"
        As for :func:`structlin.solve_hankel`.

    Returns
    -------
    torch.Tensor, shape (..., n) or (..., n, k)

    Raises
    ------
    numpy.linalg.LinAlgError
        A singular ``H``.
    TypeError, ValueError
        As for :func:`butterfly_multiply` and :func:`structlin.solve_hankel`.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch import matmul_hankel, solve_hankel
    >>> c = torch.tensor([0.1, 0.2, 2.0], dtype=torch.float64, requires_grad=True)
    >>> r = torch.tensor([2.0, 0.3, -0.1], dtype=torch.float64)
    >>> b = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    >>> x = solve_hankel(c, r, b)
    >>> bool(torch.allclose(matmul_hankel(c, r, x), b))
    True
    >>> x.sum().backward()
    >>> c.grad.shape
    torch.Size([3])
    """
    return _apply("solve_hankel", (c, r, b), method=method)
