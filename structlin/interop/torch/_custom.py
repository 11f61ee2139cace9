"""The ``torch.library`` custom operators behind :mod:`structlin.interop.torch`.

Every operation of the op table (:data:`structlin.interop._ops.OPS`) is registered here, from
the table and once for all (nothing is written per operation), as two operators of the
``structlin`` namespace:

``structlin::<name>(Tensor[] arrays, bool[] present, str static) -> Tensor``
    The product. ``arrays`` are the op's array arguments that are given, in the table's order
    (a non-differentiable one, Pixelfly's mask, as a tensor too), ``present`` says which of
    the table's arguments they are (an optional one may be absent: ``None``); ``static`` the
    op's keyword arguments as a Python literal (``repr`` of a dict of bool, int, float,
    complex, str or None values, read back with :func:`ast.literal_eval`).
``structlin::<name>_vjp(Tensor[] arrays, bool[] present, str static, Tensor grad) -> Tensor[]``
    The structlin VJP: one gradient for each present differentiable array, in order, each of
    its array's shape and dtype.

The fake (meta) implementation of each gives the result's shape and dtype from
``op.out_shape`` and :func:`structlin.interop._ops.out_dtype` without computing, and raises
at trace time the errors it can tell from shapes and dtypes alone: an unsupported dtype, a
``precision`` the family or the dtype refuses, and shapes that do not fit: every
``op.out_shape`` checks the shapes it combines (:func:`structlin._registry.shape_check`, worded
as the function's own error); where it fails otherwise (an ``IndexError``, say) the NumPy
function is asked for its own ``ValueError``, on zero-strided stand-ins of the same shapes (the
call fails in its checks, before any arithmetic). A mismatch that neither sees is raised by the
structlin function when the operator runs. Symbolic sizes
(``torch.compile(dynamic=True)``) come through as symbols: ``op.out_shape`` is evaluated on
stand-in sizes (see :func:`_symbolic_shape`), so a new batch size reuses the graph.

The autograd formula (``register_autograd``) saves the inputs and calls the VJP operator; it is
first-order: differentiating a gradient raises ``RuntimeError``.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import warnings
from typing import Any

import numpy as np
import torch
from torch._C._functorch import is_functorch_wrapped_tensor as _wrapped
from torch.utils._python_dispatch import _get_current_dispatch_mode as _current_dispatch_mode

from structlin._registry import ShapeMismatch, families
from structlin._validate import check_precision
from structlin.interop._ops import OPS, Op, out_dtype

__all__ = [
    "NAMESPACE", "SUPPORTED", "call", "encode_static", "operator", "overload", "vjp_operator",
]

#: the ``torch.library`` namespace of the operators (``torch.ops.structlin.<name>``)
NAMESPACE = "structlin"

#: the tensor dtypes of structlin's kernels
SUPPORTED = (torch.float32, torch.float64, torch.complex64, torch.complex128)

_TO_NUMPY = {
    torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64),
    torch.complex64: np.dtype(np.complex64), torch.complex128: np.dtype(np.complex128),
    torch.bool: np.dtype(np.bool_), torch.int8: np.dtype(np.int8),
    torch.uint8: np.dtype(np.uint8), torch.int16: np.dtype(np.int16),
    torch.int32: np.dtype(np.int32), torch.int64: np.dtype(np.int64),
}
_TO_TORCH = {v: k for k, v in _TO_NUMPY.items()}

_SCHEMA = "(Tensor[] arrays, bool[] present, str static) -> Tensor"
_VJP_SCHEMA = (
    "(Tensor[] arrays, bool[] present, str static, Tensor grad) -> Tensor[]")


# ---- static keywords -------------------------------------------------------------------------


def _literal(op: Op, key: str, value: Any) -> Any:
    """``value`` as a plain Python literal (NumPy scalars unwrapped), or TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (int, float, complex)):
        return value
    if hasattr(value, "__index__"):
        return int(value.__index__())
    raise TypeError(
        f"{key} must be a bool, int, float, complex, str or None for "
        f"structlin.interop.torch.{op.name}, got {type(value).__name__}"
    )


def encode_static(op: Op, static: dict) -> str:
    """The ``static`` string of the operators: the keywords in ``op.static`` order."""
    if torch.compiler.is_compiling():  # dynamo traces through caches; nothing to save
        return _encode(op, static)
    try:
        return _encode_cached(op.name, tuple((k, type(v), v) for k, v in static.items()))
    except TypeError:  # an unhashable value: refused (or encoded) without the cache
        return _encode(op, static)


def _encode(op: Op, static: dict) -> str:
    return repr({k: _literal(op, k, static[k]) for k in op.static if k in static})


@functools.lru_cache(maxsize=4096)
def _encode_cached(name: str, items: tuple) -> str:
    # keyed by the values' types too: True == 1 == 1.0 would share one entry otherwise
    return _encode(OPS[name], {k: v for k, _, v in items})


@functools.lru_cache(maxsize=1024)
def _decode(static: str) -> dict:
    return ast.literal_eval(static)


def _static(static: str) -> dict:
    return dict(_decode(static))


# ---- moving arrays ---------------------------------------------------------------------------


def to_array(t: Any) -> Any:
    """A NumPy (CPU) or CuPy (CUDA) view of tensor ``t`` through DLPack; other values pass."""
    if not isinstance(t, torch.Tensor):
        return t
    # neither DLPack nor .numpy() exports autograd state or the lazy conjugate/negative bits
    t = t.detach()
    if t.is_conj() or t.is_neg():
        t = t.resolve_conj().resolve_neg()
    if t.device.type == "cuda":
        import cupy

        return cupy.from_dlpack(t)
    return t.numpy()  # the same view as np.from_dlpack, a few microseconds sooner


def to_tensor(a: Any) -> Any:
    """The tensor of NumPy or CuPy array ``a`` through DLPack (a copy only where DLPack
    cannot share: read-only or negatively strided NumPy arrays)."""
    if a is None:
        return None
    if isinstance(a, np.ndarray):
        if not a.flags.writeable or any(s < 0 for s in a.strides):
            a = a.copy()
        return torch.from_numpy(a)
    return torch.from_dlpack(a)


def on_stream(device: torch.device):
    """Run CuPy work on PyTorch's current stream of ``device`` (a no-op on the CPU)."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    import cupy

    stream = torch.cuda.current_stream(device)
    return cupy.cuda.ExternalStream(stream.cuda_stream, device.index)


def _fill(arrays, present) -> tuple:
    """The op's array arguments in order: the given tensors, None where ``present`` is
    False (the operators take only the present ones: autograd sees through lists of tensors,
    not through lists with holes)."""
    it = iter(arrays)
    return tuple(next(it) if p else None for p in present)


def _device(arrays) -> torch.device:
    for a in arrays:
        if a is not None:
            return a.device
    return torch.device("cpu")


def _fresh(t: torch.Tensor, inputs, dtype: torch.dtype) -> torch.Tensor:
    """``t`` as a contiguous tensor of ``dtype`` that shares no memory with ``inputs`` (a
    custom operator's outputs must not alias its inputs)."""
    if t.dtype != dtype:
        t = t.real if t.is_complex() and not dtype.is_complex else t
        t = t.to(dtype)
    t = t.contiguous()
    ptr = t.untyped_storage().data_ptr()
    if any(a is not None and a.untyped_storage().data_ptr() == ptr for a in inputs):
        t = t.clone()
    return t


# ---- shapes, dtypes and checks without computing ---------------------------------------------


@functools.cache
def _precisions(name: str) -> tuple[str, ...]:
    """The ``precision`` values of the family that declares the operation ``name``."""
    for fam in families():
        if fam.ops and any(op.name == name for op in fam.ops()):
            return fam.precisions
    raise KeyError(name)


def _stand_ins(arrays) -> tuple:
    """Zero-strided NumPy arrays of the arrays' shapes and dtypes (no memory)."""
    return tuple(None if a is None else
                 np.broadcast_to(np.zeros((), _TO_NUMPY.get(a.dtype, np.float64)),
                                 tuple(int(s) for s in a.shape))
                 for a in arrays)


def result_dtype(op: Op, arrays) -> torch.dtype:
    """The result's tensor dtype (TypeError naming an argument of an unsupported dtype)."""
    for name, a, diff in zip(op.arrays, arrays, op.differentiable, strict=True):
        if diff and a is not None and a.dtype not in SUPPORTED:
            raise TypeError(
                f"{name} has dtype {a.dtype}; structlin.interop.torch.{op.name} supports "
                "torch.float32, torch.float64, torch.complex64 and torch.complex128 tensors "
                f"(cast it, e.g. {name}.float())"
            )
    return _promoted(op.name, tuple(a.dtype if a is not None and d else None
                                    for a, d in zip(arrays, op.differentiable, strict=True)))


@functools.lru_cache(maxsize=1024)
def _promoted(name: str, dtypes: tuple) -> torch.dtype:
    stand = tuple(None if d is None else np.empty(0, _TO_NUMPY[d]) for d in dtypes)
    return _TO_TORCH[np.dtype(out_dtype(OPS[name], stand))]


def check_static(op: Op, arrays, static: dict, dtype: torch.dtype) -> None:
    """Refuse a ``precision`` that the family or the dtype refuses, as the NumPy function
    does (same message)."""
    if "precision" in static:
        names = [n for n, a, d in zip(op.arrays, arrays, op.differentiable, strict=True)
                 if d and a is not None]
        inputs = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        check_precision(static["precision"], _precisions(op.name), _TO_NUMPY[dtype], inputs)


def _concrete(shape) -> bool:
    return all(isinstance(s, int) for s in shape)


def result_shape(op: Op, arrays, static: dict) -> tuple:
    """``op.out_shape`` of the arrays' shapes; where it cannot combine them, the NumPy
    function's own error for these shapes."""
    shapes = tuple(None if a is None else tuple(a.shape) for a in arrays)
    try:
        if not all(s is None or _concrete(s) for s in shapes):
            try:
                out = _symbolic_shape(op, shapes, static)
            except (ValueError, IndexError, TypeError):
                # the stand-ins break a rule of out_shape's checks (a power of two, two sizes
                # that must be equal): read the symbolic sizes themselves (guards)
                out = None
            if out is not None:
                return out
        # concrete sizes, or symbolic ones that out_shape combines by arithmetic (NumPy's
        # shape code reads a symbolic size through __index__: a guard, a recompile on change)
        return tuple(op.out_shape(shapes, static))
    except ShapeMismatch as exc:  # out_shape's own check, worded as the function's error
        raise ValueError(str(exc)) from None
    except (ValueError, IndexError, TypeError) as exc:
        _probe(op, arrays, static)
        got = ", ".join(f"{n} {s}" for n, s in zip(op.arrays, shapes, strict=True)
                        if s is not None)
        raise ValueError(f"structlin.interop.torch.{op.name}: shapes that do not fit together "
                         f"({got})") from exc


#: two sets of stand-in sizes for symbolic ones (distinct, large, never 0 or 1)
_STAND_IN_BASES = (1_000_003, 2_000_029)


def _symbolic_shape(op: Op, shapes: tuple, static: dict) -> tuple | None:
    """``op.out_shape`` for shapes with symbolic sizes (``torch.compile(dynamic=True)``)
    without guarding on them: run with each symbol replaced by a large stand-in, twice with
    different stand-ins; a result size that follows a symbol's stand-ins is that symbol, one
    that stays put is a constant. None when a size is neither (arithmetic on symbols)."""
    symbols: dict[str, Any] = {}
    for shape in shapes:
        for d in shape or ():
            if not isinstance(d, int):
                symbols.setdefault(str(d), d)
    names = list(symbols)
    outs = []
    for base in _STAND_IN_BASES:
        stand = {k: base + 17 * i for i, k in enumerate(names)}
        outs.append(tuple(op.out_shape(
            tuple(None if sh is None else tuple(d if isinstance(d, int) else stand[str(d)]
                                                for d in sh) for sh in shapes), static)))
    back = {(_STAND_IN_BASES[0] + 17 * i, _STAND_IN_BASES[1] + 17 * i): symbols[k]
            for i, k in enumerate(names)}
    if len(outs[0]) != len(outs[1]):
        return None
    out = [a if a == b else back.get((a, b)) for a, b in zip(*outs, strict=True)]
    return tuple(out) if all(d is not None for d in out) else None


def _probe(op: Op, arrays, static: dict) -> None:
    """Raise the NumPy function's ValueError or TypeError for these shapes, if it has one
    (called only when ``op.out_shape`` already failed, so the call stops in its checks)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            op.forward(_stand_ins(arrays), static)
    except np.linalg.LinAlgError:
        return
    except (ValueError, TypeError) as exc:
        raise type(exc)(str(exc)) from None
    except Exception:  # anything else says nothing about the shapes
        return


# ---- the operators ---------------------------------------------------------------------------


class _FirstOrder(torch.autograd.Function):
    """The identity on gradients, whose own backward refuses (double backward)."""

    @staticmethod
    def forward(name, count, *tensors):
        # the gradients, then the tensors they were computed from (so that the outputs
        # require grad where those do, and differentiating them reaches ``backward``)
        return tuple(g.clone() for g in tensors[:count])

    @staticmethod
    def setup_context(ctx, inputs, output):  # torch.func needs forward and context apart
        ctx.name = inputs[0]

    @staticmethod
    def backward(ctx, *_):
        raise RuntimeError(
            f"structlin.interop.torch.{ctx.name} is differentiable once: its gradient "
            "(structlin's VJP) has no derivative of its own, so double backward is not "
            "supported"
        )


def _register(op: Op):
    name = op.name
    qual = f"{NAMESPACE}::{name}"

    def forward(arrays, present, static):
        arrays, s = _fill(arrays, present), _static(static)
        dtype = result_dtype(op, arrays)
        with on_stream(_device(arrays)):
            out = to_tensor(op.forward(tuple(to_array(a) for a in arrays), s))
        return _fresh(out, arrays, dtype)

    fwd = torch.library.custom_op(qual, forward, mutates_args=(), schema=_SCHEMA)

    def forward_fake(arrays, present, static):
        arrays, s = _fill(arrays, present), _static(static)
        dtype = result_dtype(op, arrays)
        check_static(op, arrays, s, dtype)
        shape = result_shape(op, arrays, s)
        return torch.empty(shape, dtype=dtype, device=_device(arrays))

    fwd.register_fake(forward_fake)

    def vjp(arrays, present, static, grad):
        arrays, s = _fill(arrays, present), _static(static)
        with on_stream(_device(arrays)):
            grads = op.backward(tuple(to_array(a) for a in arrays), s, to_array(grad))
            out = []
            for a, g, d in zip(arrays, grads, op.differentiable, strict=True):
                if a is None or not d:
                    continue
                if g is None:
                    out.append(torch.zeros_like(a, memory_format=torch.contiguous_format))
                else:
                    out.append(_fresh(to_tensor(g), (*arrays, grad), a.dtype))
        return out

    bwd = torch.library.custom_op(f"{qual}_vjp", vjp, mutates_args=(), schema=_VJP_SCHEMA)

    def vjp_fake(arrays, present, static, grad):
        arrays = _fill(arrays, present)
        return [torch.empty(a.shape, dtype=a.dtype, device=a.device)
                for a, d in zip(arrays, op.differentiable, strict=True)
                if a is not None and d]

    bwd.register_fake(vjp_fake)

    def setup_context(ctx, inputs, output):
        arrays, present, static = inputs
        ctx.static, ctx.present = static, tuple(present)
        ctx.save_for_backward(*arrays)

    def backward(ctx, grad):
        grads = _gradients(op, bwd, list(ctx.saved_tensors), ctx.present, ctx.static, grad)
        return grads, None, None

    fwd.register_autograd(backward, setup_context=setup_context)
    _IMPLS[name] = (forward, vjp)
    return fwd, bwd


def _gradients(op: Op, run_vjp, arrays: list, present: tuple, static: str, grad) -> list:
    """The autograd formula of both paths: ``run_vjp`` (the VJP operator, or its
    implementation in eager mode) on the saved arrays, one gradient per present array (None
    for a non-differentiable one); first-order (see :class:`_FirstOrder`)."""
    if torch.is_grad_enabled() and (grad.requires_grad or any(a.requires_grad for a in arrays)):
        # create_graph=True: the gradients can be used, not differentiated
        with torch.no_grad():
            grads = run_vjp(arrays, present, static, grad)
        grads = _FirstOrder.apply(op.name, len(grads), *grads, *arrays, grad)
    else:
        grads = run_vjp(arrays, present, static, grad)
    grads = iter(grads)
    return [next(grads) if d else None
            for p, d in zip(present, op.differentiable, strict=True) if p]


#: each op's forward and VJP implementations (the operators' bodies), for the eager path
_IMPLS: dict[str, tuple] = {}


class _Eager(torch.autograd.Function):
    """The eager path: the operators' implementations under a plain ``autograd.Function``,
    without the custom-operator dispatch (about 0.1 ms per call forward and as much again
    backward, measured at n = 1024, batch 1024 on a 2-core machine); the same autograd
    formula (:func:`_gradients`)."""

    @staticmethod
    def forward(ctx, name, present, static, *arrays):
        ctx.name, ctx.present, ctx.static = name, present, static
        ctx.save_for_backward(*arrays)
        return _IMPLS[name][0](list(arrays), present, static)

    @staticmethod
    def backward(ctx, grad):
        grads = _gradients(OPS[ctx.name], _IMPLS[ctx.name][1], list(ctx.saved_tensors),
                           ctx.present, ctx.static, grad)
        return (None, None, None, *grads)


_PLAIN = (torch.Tensor, torch.nn.Parameter)


def _plain_eager(arrays: list) -> bool:
    """Whether nothing but eager PyTorch sees this call: not traced by ``torch.compile`` /
    ``torch.export``, no dispatch mode (fake tensors, ``make_fx``) or ``__torch_function__``
    mode (``with torch.device(...)``), no ``torch.func`` transform, no tensor subclass."""
    if torch.compiler.is_compiling() or _current_dispatch_mode() is not None:
        return False
    if torch._C._len_torch_function_stack():
        return False
    return all(type(a) in _PLAIN and not _wrapped(a) for a in arrays)


def call(name: str, arrays: list, present: list, static: str) -> torch.Tensor:
    """Apply op ``name``: its custom operator wherever PyTorch traces or transforms the call
    (``torch.compile``, ``torch.export``, fake tensors, ``torch.func``), so that the graph
    holds it; in plain eager mode the same implementation through :class:`_Eager` (or
    directly, when no gradient is needed), without the operator dispatch."""
    if not _plain_eager(arrays):
        return _OVERLOADS[name](arrays, present, static)
    present = tuple(present)
    if torch.is_grad_enabled() and any(a.requires_grad for a in arrays):
        return _Eager.apply(name, present, static, *arrays)
    return _IMPLS[name][0](arrays, present, static)


_OPERATORS = {name: _register(op) for name, op in OPS.items()}
#: the operators' overloads (``torch.ops.structlin.<name>.default``): called directly, they
#: skip a Python layer of the custom-operator objects
_OVERLOADS = {name: getattr(getattr(torch.ops, NAMESPACE), name).default for name in OPS}


def overload(name: str):
    """``torch.ops.structlin.<name>.default``, what the wrappers call."""
    return _OVERLOADS[name]


def operator(name: str):
    """The forward operator of op ``name`` (``torch.ops.structlin.<name>``)."""
    return _OPERATORS[name][0]


def vjp_operator(name: str):
    """The VJP operator of op ``name`` (``torch.ops.structlin.<name>_vjp``)."""
    return _OPERATORS[name][1]
