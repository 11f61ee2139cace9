"""Array backends: which library an input belongs to, dtype promotion, batch reshaping.

Every public function goes through the same three steps before it reaches a kernel:

1. :func:`array_namespace` looks at the array arguments, decides between NumPy (kernels in
   ``structlin._cpu``, Numba) and CuPy (kernels in ``structlin.gpu``, CUDA), and refuses a call
   that mixes the two, naming both arguments.
2. :func:`result_dtype` applies NumPy's promotion rules to the inputs, with integers and bool
   promoted to float64 and float16 to float32 (the kernels exist for float32, float64,
   complex64 and complex128 only).
3. :func:`flatten_batch` views the leading batch dimensions as one, so that kernels only see
   2-D C-contiguous arrays; :func:`restore_batch` undoes it on the result.

Inputs are never written to: :func:`as_kernel_array` copies whenever the dtype or the memory
layout has to change, and otherwise returns a read-only use of the caller's array.

Every FFT-based routine takes its transforms from :func:`fft_namespace` (``structlin.fft``, the
engine, for NumPy; cuFFT for CuPy) and its padded lengths from :func:`fft_fast_length`.
"""

from __future__ import annotations

import functools
import importlib
import sys
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "KERNEL_DTYPES",
    "KernelSet",
    "array_namespace",
    "as_kernel_array",
    "fft_fast_length",
    "fft_namespace",
    "fft_pair",
    "flatten_batch",
    "is_cupy_array",
    "kernels",
    "real_dtype",
    "restore_batch",
    "result_dtype",
]

#: dtypes the kernels are compiled for
KERNEL_DTYPES = (
    np.dtype(np.float32),
    np.dtype(np.float64),
    np.dtype(np.complex64),
    np.dtype(np.complex128),
)


def is_cupy_array(a: Any) -> bool:
    """Return True if ``a`` is a ``cupy.ndarray`` (without importing CuPy)."""
    cp = sys.modules.get("cupy")
    return cp is not None and isinstance(a, cp.ndarray)


def _kind(a: Any) -> str:
    t = type(a)
    mod = t.__module__.split(".")[0]
    return t.__qualname__ if mod == "builtins" else f"{mod}.{t.__qualname__}"


def array_namespace(**arrays: Any) -> ModuleType:
    """Return ``numpy`` or ``cupy`` for the named array arguments.

    Parameters
    ----------
    **arrays
        The array arguments of a public function, by their parameter names. ``None`` values
        are ignored; Python scalars, lists and NumPy arrays count as NumPy.

    Returns
    -------
    module
        ``numpy`` when no argument is a CuPy array, ``cupy`` when all array arguments are.

    Raises
    ------
    TypeError
        If CuPy arrays are mixed with NumPy arrays (or lists); the message names one argument
        of each kind.

    Examples
    --------
    >>> import numpy as np
    >>> array_namespace(x=np.ones(3), twiddle=np.ones((1, 1, 2, 2))).__name__
    'numpy'
    """
    on_gpu = []
    on_cpu = []
    for name, a in arrays.items():
        if a is None:
            continue
        (on_gpu if is_cupy_array(a) else on_cpu).append(name)
    if on_gpu and on_cpu:
        g, c = on_gpu[0], on_cpu[0]
        raise TypeError(
            f"{g} is a cupy.ndarray but {c} is a {_kind(arrays[c])}: all array arguments must "
            f"live on the same device; move {c} with cupy.asarray({c}) or {g} with "
            f"cupy.asnumpy({g})"
        )
    if on_gpu:
        return sys.modules["cupy"]
    return np


def _dtype_of(name: str, a: Any) -> np.dtype:
    dt = getattr(a, "dtype", None)
    if dt is None:
        dt = np.asarray(a).dtype
    dt = np.dtype(dt)
    if dt.kind not in "biufc":
        raise TypeError(
            f"{name} must have a numeric dtype (bool, integer, floating or complex), "
            f"got dtype {dt}"
        )
    return dt


def result_dtype(**arrays: Any) -> np.dtype:
    """Return the dtype a structlin function computes in for these inputs.

    NumPy's ``result_type`` of the inputs, then integers and bool become float64 (as
    ``numpy.fft`` and ``scipy.linalg`` do) and float16 becomes float32.

    Raises
    ------
    TypeError
        If an argument's dtype is not numeric (object, string, datetime, ...), naming it.

    Examples
    --------
    >>> import numpy as np
    >>> result_dtype(x=np.ones(2, np.float32), twiddle=np.ones(2, np.complex64))
    dtype('complex64')
    >>> result_dtype(x=np.arange(3))
    dtype('float64')
    """
    dts = [_dtype_of(name, a) for name, a in arrays.items() if a is not None]
    dt = np.result_type(*dts)
    if dt.kind in "biu":
        return np.dtype(np.float64)
    if dt == np.float16:
        return np.dtype(np.float32)
    if dt.kind == "f" and dt.itemsize > 8:
        raise TypeError(f"extended precision ({dt}) is not supported; use float64")
    if dt.kind == "c" and dt.itemsize > 16:
        raise TypeError(f"extended precision ({dt}) is not supported; use complex128")
    return dt


def real_dtype(dtype: np.dtype) -> np.dtype:
    """Return the real dtype of the same precision (float32 for complex64, ...)."""
    return np.dtype(dtype).type(0).real.dtype


def as_kernel_array(xp: ModuleType, a: Any, dtype: np.dtype) -> Any:
    """Return ``a`` as a C-contiguous array of ``dtype`` in namespace ``xp``.

    A copy is made only when the dtype or layout has to change; callers must treat the result
    as read-only unless they know a copy was made (compare with ``is``).
    """
    return xp.ascontiguousarray(xp.asarray(a), dtype=dtype)


def grad_as(xp: ModuleType, g: Any, dtype: np.dtype) -> Any:
    """A gradient in its argument's ``dtype`` (PyTorch's convention): the real part when the
    argument is real, then a C-contiguous cast; ``None`` passes through."""
    if g is None:
        return None
    if np.dtype(dtype).kind != "c" and g.dtype.kind == "c":
        g = g.real
    return xp.ascontiguousarray(g, dtype=dtype)


def grad_like(xp: ModuleType, g: Any, arg: Any) -> Any:
    """:func:`grad_as` in the dtype of the argument ``arg`` (promoted to floating point)."""
    return grad_as(xp, g, result_dtype(a=arg))


def sum_to_shape(g: Any, shape: tuple[int, ...]) -> Any:
    """The gradient ``g`` of an argument that NumPy broadcast to ``g.shape``, summed back to
    the argument's ``shape`` (over the leading axes broadcasting added and the axes of length 1
    it stretched)."""
    shape = tuple(shape)
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def flatten_batch(a: Any, core_ndim: int = 1) -> tuple[Any, tuple[int, ...]]:
    """View ``a`` of shape ``(*batch, *core)`` as ``(prod(batch), *core)``.

    Returns the reshaped array (a view when ``a`` is contiguous) and ``batch``.
    """
    batch = tuple(a.shape[: a.ndim - core_ndim])
    core = tuple(a.shape[a.ndim - core_ndim :])
    nb = 1
    for d in batch:
        nb *= d
    return a.reshape((nb, *core)), batch


def restore_batch(a: Any, batch: tuple[int, ...]) -> Any:
    """Inverse of :func:`flatten_batch`: reshape ``(prod(batch), *core)`` to ``(*batch, *core)``."""
    return a.reshape(batch + tuple(a.shape[1:]))


class KernelSet:
    """The functions of one kernel module that its family's contract declares, and no others.

    Returned by :func:`kernels`; an attribute outside the contract raises ``AttributeError``
    naming the contract, so family code cannot come to depend on a function that only one
    backend has. Attributes are looked up on the module at each access (tests may patch it).
    """

    __slots__ = ("_contract", "_module", "_on_gpu")

    def __init__(self, module: ModuleType, contract: Any, on_gpu: bool):
        self._module = module
        self._contract = contract
        self._on_gpu = on_gpu

    def __getattr__(self, name: str) -> Any:
        contract = self._contract
        if name not in contract.functions:
            raise AttributeError(
                f"{name!r} is not in the kernel contract of {contract.module!r} "
                f"({', '.join(contract.functions)}); declare it in the family's registry entry"
            )
        if self._on_gpu and name in contract.cpu_only:
            raise TypeError(
                f"{contract.module}.{name} has no GPU kernel yet: call it with NumPy arrays"
            )
        return getattr(self._module, name)

    def __repr__(self) -> str:
        return f"<kernels {self._module.__name__}: {', '.join(self._contract.functions)}>"


def one_blas_thread(xp: ModuleType) -> Any:
    """A context in which NumPy's BLAS runs on one thread (a no-op for CuPy).

    For the small stacked products a family module runs itself (``N x N`` matrices of an SSM
    per channel): OpenBLAS's threads gain nothing on them, and on a loaded 2-core machine they
    made the same product 100-1000x slower (measured: 1.4 ms to 1.9 s for 64 complex64
    ``64 x 64`` products). The controller is the one :func:`structlin._cpu._schedule.serial_blas`
    uses.
    """
    if xp is not np:
        import contextlib

        return contextlib.nullcontext()
    from structlin._cpu._schedule import _blas_controller

    return _blas_controller().limit(limits=1, user_api="blas")


def kernels(xp: ModuleType, family: str) -> KernelSet:
    """Return the kernel functions of the kernel module ``family`` for namespace ``xp``.

    ``structlin._cpu.<family>`` (Numba) for NumPy, ``structlin.gpu.<family>`` (CUDA through
    CuPy) for CuPy, restricted to the functions of the module's contract in the family
    registry (:func:`structlin._registry.kernel_contract`): both backends provide exactly
    those, on 2-D C-contiguous arrays of one of :data:`KERNEL_DTYPES`; the public functions
    do all checking, promotion and reshaping before calling them.
    """
    on_gpu = xp is not np
    return _kernel_set(family, on_gpu)


@functools.cache
def _kernel_set(family: str, on_gpu: bool) -> KernelSet:
    from structlin._registry import kernel_contract

    contract = kernel_contract(family)
    if not on_gpu:  # before any kernel runs: Numba's pool must start with a quiet wait policy
        from structlin._cpu._blas_pool import start_numba_pool

        start_numba_pool()
    pkg = "structlin.gpu" if on_gpu else "structlin._cpu"
    return KernelSet(importlib.import_module(f"{pkg}.{family}"), contract, on_gpu)


# ---------------------------------------------------------------------------------------------
# FFTs: one namespace with scipy.fft's signatures for either backend


class _CupyFFT:
    """``cupyx.scipy.fft`` with ``scipy.fft``'s ``workers`` keyword accepted and dropped: cuFFT
    has no host threads to choose, so the call sites need no per-backend keyword sets."""

    __slots__ = ("_module",)

    def __init__(self, module: ModuleType):
        self._module = module

    def __getattr__(self, name: str) -> Any:
        f = getattr(self._module, name)
        if not callable(f):
            return f

        @functools.wraps(f)
        def call(*args: Any, workers: Any = None, **kwargs: Any) -> Any:
            return f(*args, **kwargs)

        return call

    def __repr__(self) -> str:
        return f"<cuFFT through {self._module.__name__}, workers ignored>"


@functools.cache
def _cupy_fft() -> _CupyFFT:
    import cupyx.scipy.fft

    return _CupyFFT(cupyx.scipy.fft)


def fft_namespace(xp: ModuleType) -> Any:
    """Return the FFT functions (``scipy.fft``'s names and signatures) for namespace ``xp``.

    ``structlin.fft`` (the engine: Numba kernels for the host, parallel over rows) for NumPy;
    ``cupyx.scipy.fft`` (cuFFT) for CuPy, which accepts and ignores ``workers``. Library
    routines leave ``workers`` at None, the engine's default: every Numba thread, fewer for a
    small batch (:func:`structlin._cpu._schedule.threads_for`). The NumPy namespace is the
    module itself, looked up at each call, so a test that patches ``structlin.fft.rfft`` sees
    every call.

    Examples
    --------
    >>> import numpy as np
    >>> fft = fft_namespace(np)
    >>> bool(np.allclose(fft.irfft(fft.rfft(np.arange(8.0)), 8), np.arange(8.0)))
    True
    """
    if xp is np or getattr(xp, "__name__", None) != "cupy":
        # NumPy, or a NumPy-backed stand-in for CuPy (the test suite's CUDA emulator)
        import structlin.fft

        return structlin.fft
    return _cupy_fft()


def fft_pair(xp: ModuleType, real: bool) -> tuple[Any, Any]:
    """Return ``(forward, inverse)``: ``rfft``/``irfft`` of :func:`fft_namespace` for real
    data, ``fft``/``ifft`` for complex data.

    ``forward(a, n=None, axis=-1, **kw)`` pads ``a`` with zeros (or truncates it) to ``n``
    along ``axis``; ``inverse(A, n, axis=-1, **kw)`` returns the length ``n`` (real rows for
    real data). ``kw`` goes to the transforms (``workers``). The one choice every circulant
    product, correlation and solve makes, written once.

    Examples
    --------
    >>> import numpy as np
    >>> fwd, inv = fft_pair(np, real=True)
    >>> c, x = np.array([1.0, 2.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 3.0])
    >>> inv(fwd(c) * fwd(x), 4)                      # the cyclic convolution
    array([7., 2., 0., 3.])
    """
    fft = fft_namespace(xp)
    if real:
        def forward(a: Any, n: Any = None, axis: int = -1, **kw: Any) -> Any:
            return fft.rfft(a, n, axis=axis, **kw)

        def inverse(a: Any, n: Any, axis: int = -1, **kw: Any) -> Any:
            return fft.irfft(a, n, axis=axis, **kw)
    else:
        def forward(a: Any, n: Any = None, axis: int = -1, **kw: Any) -> Any:
            return fft.fft(a, n, axis=axis, **kw)

        def inverse(a: Any, n: Any, axis: int = -1, **kw: Any) -> Any:
            return fft.ifft(a, n, axis=axis, **kw)
    return forward, inverse


def fft_fast_length(xp: ModuleType, n: int, real: bool = False) -> int:
    """The smallest length ``>= max(n, 1)`` that the transforms of :func:`fft_namespace` run
    fastest at: the padded length of a circulant embedding (products, correlations).

    For NumPy :func:`structlin.fft.next_fast_len`: 5-smooth (``2^a 3^b 5^c``, the lengths the
    engine runs without a Bluestein chirp), and even for a real transform (the engine's real
    kernels need an even length); for CuPy cupyx's ``next_fast_len``.

    Examples
    --------
    >>> import numpy as np
    >>> fft_fast_length(np, 97), fft_fast_length(np, 13), fft_fast_length(np, 13, real=True)
    (100, 15, 16)
    """
    n = int(n)
    if n <= 1:
        return 1
    return int(fft_namespace(xp).next_fast_len(n, real=real))
