"""Reusable conformance checks that every family's tests run.

A family describes its fast linear operator once, as an :class:`OperatorSpec`, and gets the
same checks as every other family:

- :func:`check_matches_dense`: the fast product equals ``x @ M.T`` with the dense reference;
- :func:`check_dot_test`: ``<op(x), y> == <x, adjoint(y)>`` (adjoint consistency);
- :func:`check_vjp`: every gradient against central finite differences in random directions;
- :func:`check_inputs_not_modified`: the fast call leaves every argument unchanged;
- :func:`check_result_dtype`: the result's dtype is NumPy's promotion of the inputs.

Bad inputs are family-specific; each family lists them in a ``pytest.mark.parametrize`` table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tests.strategies import tolerance


@dataclass
class OperatorSpec:
    """A fast linear map ``y = M(params) x`` over the last axis of ``x``.

    Attributes
    ----------
    fast : callable(params: dict, x) -> y
    dense : callable(params: dict) -> M, shape (n_out, n_in)
    vjp : callable(params: dict, x, g) -> dict
        Gradients keyed by parameter name and ``"x"``.
    adjoint : callable(params: dict, y) -> M^H y, optional
    promote : callable(params, x) -> dtype; NumPy's promotion by default.
    """

    fast: Callable[[dict, Any], Any]
    dense: Callable[[dict], Any]
    vjp: Callable[[dict, Any, Any], dict] | None = None
    adjoint: Callable[[dict, Any], Any] | None = None
    promote: Callable[[dict, Any], np.dtype] | None = None
    extra: dict = field(default_factory=dict)


def _result_dtype(params: dict, x) -> np.dtype:
    dt = np.result_type(x, *params.values())
    return np.dtype(np.float64) if dt.kind in "biu" else dt


def _rel_err(a, b) -> float:
    a = np.asarray(a)
    b = np.asarray(b)
    scale = max(float(np.max(np.abs(b), initial=0.0)), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def check_matches_dense(spec: OperatorSpec, params: dict, x, rtol: float | None = None) -> None:
    """Assert ``spec.fast(params, x) == x @ M.T`` with ``M = spec.dense(params)``."""
    y = spec.fast(params, x)
    # the reference runs in 64-bit so that the comparison measures the fast path's error only
    M = spec.dense({k: _wide(v) if isinstance(v, np.ndarray) else v for k, v in params.items()})
    expected = _wide(x) @ np.asarray(M).T
    dt = _result_dtype(params, x)
    assert y.shape == expected.shape, (y.shape, expected.shape)
    tol = rtol if rtol is not None else tolerance(dt, x.shape[-1])
    err = _rel_err(y, expected)
    assert err <= tol, f"fast vs dense: relative error {err:.3g} > {tol:.3g} ({dt})"


def check_dot_test(spec: OperatorSpec, params: dict, x, y, rtol: float | None = None) -> None:
    """Assert ``vdot(y, op(x)) == vdot(adjoint(y), x)`` (PyLops' dot test)."""
    assert spec.adjoint is not None
    lhs = np.vdot(y, spec.fast(params, x))
    rhs = np.vdot(spec.adjoint(params, y), x)
    dt = _result_dtype(params, x)
    tol = rtol if rtol is not None else tolerance(dt, x.shape[-1]) * 4
    scale = max(abs(lhs), abs(rhs), np.linalg.norm(x) * np.linalg.norm(y) * 1e-3, 1e-30)
    assert abs(lhs - rhs) <= tol * scale, f"dot test: {lhs} != {rhs}"


def _wide(a):
    """The float64/complex128 version of ``a`` (finite differences need the precision)."""
    a = np.asarray(a)
    return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)


def check_vjp(
    spec: OperatorSpec,
    params: dict,
    x,
    g,
    rtol: float = 1e-6,
    n_directions: int = 2,
    rng: np.random.Generator | None = None,
) -> None:
    """Assert each gradient of ``spec.vjp`` against central finite differences.

    The loss is ``l = Re(vdot(g, fast(params, x)))``; for an argument ``a`` and a random
    direction ``d`` of ``a``'s dtype, ``(l(a + h d) - l(a - h d)) / 2h`` must equal
    ``Re(vdot(grad_a, d))`` (PyTorch's convention for complex gradients). Runs in 64-bit.
    """
    assert spec.vjp is not None
    rng = rng or np.random.default_rng(0)
    args = {k: _wide(v) for k, v in params.items()}
    args["x"] = _wide(x)
    g = _wide(g)
    if not any(np.iscomplexobj(v) for v in args.values()):
        g = g.real

    def loss(a):
        p = {k: v for k, v in a.items() if k != "x"}
        return float(np.real(np.vdot(g, spec.fast(p, a["x"]))))

    grads = spec.vjp({k: v for k, v in args.items() if k != "x"}, args["x"], g)
    assert set(grads) == set(args), (set(grads), set(args))
    h = 1e-6
    for name, a in args.items():
        grad = np.asarray(grads[name])
        assert grad.shape == a.shape, (name, grad.shape, a.shape)
        if a.dtype.kind != "c":
            assert not np.iscomplexobj(grad), f"gradient of real {name} is complex"
        for _ in range(n_directions):
            d = rng.standard_normal(a.shape)
            if a.dtype.kind == "c":
                d = d + 1j * rng.standard_normal(a.shape)
            plus = dict(args)
            minus = dict(args)
            plus[name] = a + h * d
            minus[name] = a - h * d
            fd = (loss(plus) - loss(minus)) / (2 * h)
            an = float(np.real(np.vdot(grad, d)))
            scale = max(abs(fd), abs(an), np.linalg.norm(grad) * np.linalg.norm(d) * 1e-3, 1e-12)
            assert abs(fd - an) <= rtol * scale + 1e-8, (
                f"VJP for {name}: finite difference {fd} vs analytic {an}"
            )


def check_inputs_not_modified(spec: OperatorSpec, params: dict, x) -> None:
    """Assert that the fast call leaves ``params`` and ``x`` bit-for-bit unchanged."""
    before = {k: np.array(v, copy=True) for k, v in params.items()}
    x_before = np.array(x, copy=True)
    spec.fast(params, x)
    for k, v in params.items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"{k} was modified")
    np.testing.assert_array_equal(x, x_before, err_msg="x was modified")


def check_result_dtype(spec: OperatorSpec, params: dict, x) -> None:
    """Assert the result's dtype is NumPy's promotion of the inputs (ints -> float64)."""
    y = spec.fast(params, x)
    expected = (spec.promote or _result_dtype)(params, x)
    assert y.dtype == expected, (y.dtype, expected)
