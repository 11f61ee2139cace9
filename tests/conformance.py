"""Conformance checks that every family's tests run.

:class:`OperatorConformance` is the base class of every fast linear operator's test: a family
subclasses it, fills in hooks, and inherits every check (dense equality, dot test, VJP
against finite differences, dtypes, batch isolation, memory layouts, lists, inputs untouched,
bad inputs), for NumPy and, with ``xp = cupy``, for CuPy.

The free functions below are the building blocks it uses (and that checks of non-operator
functions can use directly):

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

from tests.strategies import random_array, tolerance


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


# =============================================================================================
# Conformance by inheritance
# =============================================================================================

#: dtype combinations (parameters, x) -> promoted result, checked by every operator
_PROMOTIONS = (
    (np.float32, np.float64),
    (np.float64, np.float32),
    (np.float32, np.complex64),
    (np.complex64, np.float64),
    (np.float32, np.int64),
)


def _to_numpy(a):
    if a is None or isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    return get() if get is not None else np.asarray(a)


def _scale(a) -> float:
    """The largest magnitude of ``a``: rounding errors of a transform are relative to it, not
    to each element (a small output of an FFT-based operator has the absolute error of the
    large ones)."""
    return float(np.max(np.abs(a), initial=0.0))


def _read_only(a: np.ndarray) -> np.ndarray:
    ro = a.copy()
    ro.flags.writeable = False
    return ro


def _layouts(a: np.ndarray) -> dict[str, np.ndarray]:
    """The same values as ``a`` in every memory layout a caller may hand us (read-only is
    checked for every array at once: see
    :meth:`OperatorConformance.test_memory_layouts_give_the_contiguous_result`)."""
    out = {}
    wide = np.empty((*a.shape[:-1], 2 * a.shape[-1]) if a.ndim else (2,), a.dtype)
    if a.ndim:
        wide[..., ::2] = a
        out["non-contiguous"] = wide[..., ::2]
    if a.ndim >= 2:
        out["fortran"] = np.asfortranarray(a)
    if a.dtype.itemsize > 1:
        out["big-endian"] = a.astype(a.dtype.newbyteorder(">"))
    return out


class OperatorConformance:
    """Every check of a fast linear operator ``y = M(params) x`` over the last axis of ``x``.

    A family's test subclasses this (``class TestFwht(OperatorConformance): ...``) and fills
    in the hooks; pytest then runs every ``test_*`` method below for it, so no check can be
    forgotten. Set ``xp = cupy`` (and mark the class ``gpu``) in a subclass to run the same
    checks on the GPU: the hooks build NumPy data, which the base class moves to ``xp``.

    Hooks (``params`` is a dict of NumPy arrays, in the order the function takes them):

    - ``make_params(rng, dtype) -> dict`` and ``make_x(rng, dtype, batch) -> ndarray``;
    - ``fast(params, x)``: the structlin call (arrays of ``self.xp``);
    - ``dense(params) -> M`` (NumPy, ``(n_out, n_in)``): the reference;
    - ``vjp(params, x, g) -> dict``: gradients keyed by parameter name and ``"x"``, or set
      ``differentiable = False`` (with a comment saying why);
    - ``adjoint(params, y)``: ``M^H y``; by default the VJP's ``"x"`` gradient, which is
      ``M^H g`` for a linear map;
    - ``bad_inputs() -> list[(description, call, exception, match)]``: the family's own
      invalid calls (``call`` takes no argument); the generic ones (object and string arrays,
      wrong dtypes) are checked for every operator without a hook.

    Parameters named in ``structure`` (e.g. a boolean block mask) describe the operator's
    shape rather than its values: they are passed unchanged to ``dense`` (not widened), are
    not differentiated (``vjp`` returns no gradient for them) and take no part in the dtype
    promotion; the layout, list and object-array checks apply to them as to the others.
    """

    xp = np
    #: dtypes the operator is checked in
    dtypes: tuple = (np.float32, np.float64, np.complex64, np.complex128)
    #: whether real parameters may act on complex x and vice versa (the promotion checks)
    mixed_dtypes: bool = True
    differentiable: bool = True
    #: tolerance factor over :func:`tests.strategies.tolerance`
    tol_factor: float = 1.0
    vjp_rtol: float = 1e-6
    #: the batch of the batch-isolation check: rows of x, NaN/inf put in one of them
    isolation_batch: int = 4
    #: whether the other rows must stay bit-for-bit unchanged in the batch-isolation check;
    #: False for an operator that shares work between rows (two real rows packed into one
    #: complex transform): their rounding depends on the partner row, so they must stay
    #: finite and within the tolerance instead
    isolation_exact: bool = True
    #: parameters that are structure, not data (see the class docstring)
    structure: tuple[str, ...] = ()
    #: the parameter name the function gives ``x`` (its error messages must name it)
    x_name: str = "x"
    #: False when ``fast`` reshapes ``x`` itself before the call (the stand-in CuPy class of
    #: the NumPy-side mixing check has no methods); the family then tests the mix directly
    fake_cupy_mix: bool = True

    # ---- hooks ----------------------------------------------------------------------------
    def make_params(self, rng: np.random.Generator, dtype) -> dict:
        raise NotImplementedError

    def make_x(self, rng: np.random.Generator, dtype, batch: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def fast(self, params: dict, x):
        raise NotImplementedError

    def dense(self, params: dict) -> np.ndarray:
        raise NotImplementedError

    def vjp(self, params: dict, x, g) -> dict:
        raise NotImplementedError

    def adjoint(self, params: dict, y):
        # x only sets the shape and dtype of grad_x: zeros of length n_in (not y's length,
        # which differs for a rectangular operator)
        n_in = np.shape(self.dense({k: _to_numpy(v) for k, v in params.items()}))[1]
        x0 = self.xp.zeros((*y.shape[:-1], n_in), dtype=y.dtype)
        return self.vjp(params, x0, y)["x"]

    def bad_inputs(self) -> list:
        return []

    # ---- helpers ---------------------------------------------------------------------------
    def _dev(self, a):
        return None if a is None else self.xp.asarray(a)

    def _call(self, params: dict, x):
        return self.fast({k: self._dev(v) for k, v in params.items()}, self._dev(x))

    def _call_vjp(self, params: dict, x, g):
        out = self.vjp({k: self._dev(v) for k, v in params.items()}, self._dev(x), self._dev(g))
        return {k: _to_numpy(v) for k, v in out.items()}

    def _case(self, dtype, batch=(3,), seed=0):
        rng = np.random.default_rng(seed)
        return self.make_params(rng, dtype), self.make_x(rng, dtype, batch), rng

    def _tol(self, dtype, n) -> float:
        return self.tol_factor * tolerance(dtype, n)

    # ---- the checks ------------------------------------------------------------------------
    def test_matches_dense(self):
        for dt in self.dtypes:
            p, x, _ = self._case(dt, batch=(2, 3))
            y = _to_numpy(self._call(p, x))
            M = self.dense({k: v if k in self.structure else _wide(v) for k, v in p.items()})
            expected = _wide(x) @ np.asarray(M).T
            assert y.shape == expected.shape, (dt, y.shape, expected.shape)
            err = _rel_err(y, expected)
            assert err <= self._tol(dt, x.shape[-1]), f"{np.dtype(dt)}: error {err:.3g}"

    def test_dot_test(self):
        for dt in self.dtypes:
            p, x, rng = self._case(dt, batch=(3,))
            y0 = _to_numpy(self._call(p, x))
            yv = random_array(rng, y0.shape, dt)
            lhs = np.vdot(yv, y0)
            rhs = np.vdot(_to_numpy(self.adjoint(
                {k: self._dev(v) for k, v in p.items()}, self._dev(yv))), x)
            scale = max(abs(lhs), abs(rhs), np.linalg.norm(x) * np.linalg.norm(yv) * 1e-3)
            assert abs(lhs - rhs) <= 4 * self._tol(dt, x.shape[-1]) * scale, (dt, lhs, rhs)

    def test_vjp_matches_finite_differences(self):
        if not self.differentiable:
            return
        for dt in [d for d in self.dtypes if np.dtype(d).itemsize >= 8 and
                   np.dtype(d) != np.complex64]:
            p, x, rng = self._case(dt, batch=(2,))
            g = random_array(rng, _to_numpy(self._call(p, x)).shape, dt)
            fixed = {k: v for k, v in p.items() if k in self.structure}
            spec = OperatorSpec(
                fast=lambda q, v, fixed=fixed: _to_numpy(self._call({**q, **fixed}, v)),
                dense=None,
                vjp=lambda q, v, w, fixed=fixed: self._call_vjp({**q, **fixed}, v, w),
            )
            check_vjp(spec, {k: v for k, v in p.items() if k not in fixed}, x, g,
                      rtol=self.vjp_rtol, rng=rng)

    def test_result_dtype_follows_numpy_promotion(self):
        combos = _PROMOTIONS if self.mixed_dtypes else [(d, d) for d in self.dtypes]
        for pdt, xdt in combos:
            if np.dtype(pdt) not in map(np.dtype, self.dtypes) and np.dtype(pdt).kind in "fc":
                continue
            p, _, _ = self._case(pdt)
            x = self._case(xdt if np.dtype(xdt).kind in "fc" else np.float64)[1]
            x = x.astype(xdt) if np.dtype(xdt).kind in "fc" else np.round(x).astype(xdt)
            y = self._call(p, x)
            arrays = [v for k, v in p.items()
                      if isinstance(v, np.ndarray) and k not in self.structure]
            expected = np.result_type(*arrays, x)
            expected = np.dtype(np.float64) if expected.kind in "biu" else expected
            assert y.dtype == expected, (pdt, xdt, y.dtype, expected)

    def test_single_precision_in_single_precision_out(self):
        for dt in [d for d in self.dtypes if np.dtype(d) in (np.float32, np.complex64)]:
            p, x, rng = self._case(dt)
            y = self._call(p, x)
            assert y.dtype == dt, (dt, y.dtype)
            if self.differentiable:
                g = random_array(rng, y.shape, dt)
                for name, grad in self._call_vjp(p, x, g).items():
                    if grad is not None:
                        arg = x if name == "x" else p[name]
                        assert grad.dtype == arg.dtype, (name, grad.dtype, arg.dtype)

    def test_batch_rows_are_independent(self):
        for bad in (np.nan, np.inf):
            dt = self.dtypes[0]
            p, x, rng = self._case(dt, batch=(self.isolation_batch,))
            clean = _to_numpy(self._call(p, x))
            x_bad = x.copy()
            x_bad[1, x.shape[-1] // 2] = bad
            y = _to_numpy(self._call(p, x_bad))
            others = [i for i in range(x.shape[0]) if i != 1]
            tol = None if self.isolation_exact else self._tol(dt, x.shape[-1])
            assert_rows_unchanged(
                y[others], clean[others], tol,
                f"a {bad} in one batch row changed another row")
            if self.differentiable:
                g = random_array(rng, clean.shape, dt)
                g_bad = g.copy()
                g_bad[1, 0] = bad
                gx = self._call_vjp(p, x, g_bad)["x"]
                gx_clean = self._call_vjp(p, x, g)["x"]
                assert_rows_unchanged(
                    gx[others], gx_clean[others], tol,
                    f"a {bad} in one row of grad changed another row of grad_x")

    def test_memory_layouts_give_the_contiguous_result(self):
        dt = self.dtypes[-1]
        p, x, _ = self._case(dt, batch=(3,))
        ref = _to_numpy(self._call(p, x))
        gpu = self.xp is not np
        variants = [("x", name, v) for name, v in _layouts(x).items()]
        variants.append(("x", "broadcast", np.broadcast_to(x[:1], x.shape)))
        for k, v in p.items():
            if isinstance(v, np.ndarray) and (v.dtype.kind in "fc" or k in self.structure):
                variants += [(k, name, a) for name, a in _layouts(v).items()]
        # read-only: every array at once, in one call (each pattern of read-only arguments is
        # a Numba compilation of its own; all of them read-only is what JAX's callbacks pass)
        ro = {k: _read_only(v) for k, v in p.items()
              if isinstance(v, np.ndarray) and (v.dtype.kind in "fc" or k in self.structure)}
        variants.append(("every array", "read-only", (_read_only(x), ro)))
        for arg, layout, v in variants:
            if gpu and layout in ("read-only", "big-endian"):
                continue  # CuPy has neither
            q = dict(p)
            xv = x
            if arg == "every array":
                xv, ro = v
                q.update(ro)
            elif arg == "x":
                xv = v
            else:
                q[arg] = v
            y = _to_numpy(self._call(q, xv))
            want = ref if layout != "broadcast" else _to_numpy(
                self._call(p, np.ascontiguousarray(v)))
            tol = self._tol(dt, x.shape[-1])
            np.testing.assert_allclose(
                y, want, rtol=tol, atol=tol * _scale(want),
                err_msg=f"{arg} {layout} differs from the contiguous call")

    def test_lists_are_accepted(self):
        if self.xp is not np:
            return  # lists are NumPy data: mixing them with CuPy arrays is refused
        if np.dtype(np.float64) not in map(np.dtype, self.dtypes):
            return  # lists of floats become float64, which this operator does not take
        p, x, _ = self._case(np.float64, batch=(2,))
        ref = self._call(p, x)
        y = self.fast({k: v.tolist() if isinstance(v, np.ndarray) else v
                       for k, v in p.items()}, x.tolist())
        np.testing.assert_allclose(_to_numpy(y), _to_numpy(ref), rtol=1e-12, atol=0)

    def test_inputs_are_not_modified(self):
        for dt in self.dtypes:
            p, x, rng = self._case(dt)
            before = {k: np.array(v, copy=True) for k, v in p.items()}
            x0 = x.copy()
            dev_p = {k: self._dev(v) for k, v in p.items()}
            dev_x = self._dev(x)
            y = self.fast(dev_p, dev_x)
            if self.differentiable:
                g = self._dev(random_array(rng, y.shape, dt))
                g0 = _to_numpy(g).copy()
                self.vjp(dev_p, dev_x, g)
                np.testing.assert_array_equal(_to_numpy(g), g0, err_msg="grad was modified")
            for k, v in dev_p.items():
                np.testing.assert_array_equal(_to_numpy(v), before[k], err_msg=f"{k} modified")
            np.testing.assert_array_equal(_to_numpy(dev_x), x0, err_msg="x was modified")

    def test_leading_batch_dimensions(self):
        dt = self.dtypes[0]
        p, x, _ = self._case(dt, batch=(2, 3))
        y = _to_numpy(self._call(p, x))
        flat = _to_numpy(self._call(p, x.reshape(6, x.shape[-1])))
        np.testing.assert_array_equal(y.reshape(flat.shape), flat)
        one = _to_numpy(self._call(p, x[0, 0]))
        tol = self._tol(dt, x.shape[-1])
        np.testing.assert_allclose(one, y[0, 0], rtol=tol, atol=tol * _scale(y[0, 0]))
        empty = _to_numpy(self._call(p, x[:0]))
        assert empty.shape == (0, 3, y.shape[-1]), empty.shape

    def test_object_and_string_arrays_are_refused_by_name(self):
        p, x, _ = self._case(np.float64)
        for arg in (*p, "x"):
            for bad in (lambda a: a.astype(object), lambda a: a.astype(str)):
                q = dict(p)
                xv = x
                if arg == "x":
                    xv = bad(x)
                else:
                    if not isinstance(p[arg], np.ndarray):
                        continue
                    q[arg] = bad(p[arg])
                try:
                    self.fast({k: v if k == arg else self._dev(v) for k, v in q.items()},
                              xv if arg == "x" else self._dev(xv))
                except TypeError as exc:
                    import re

                    name = self.x_name if arg == "x" else arg
                    assert re.search(rf"(?<!\w){re.escape(name)}(?!\w)", str(exc)), (
                        f"the TypeError does not name {name}: {exc}")
                else:
                    raise AssertionError(f"a non-numeric {arg} was accepted")

    def test_family_bad_inputs(self):
        for description, call, exc, match in self.bad_inputs():
            try:
                call()
            except exc as err:
                import re

                assert re.search(match, str(err)), (description, str(err))
            except Exception as err:  # the wrong exception class
                raise AssertionError(f"{description}: {type(err).__name__}: {err}") from err
            else:
                raise AssertionError(f"{description}: no {exc.__name__} raised")

    def test_numpy_and_cupy_mixed_are_refused(self):
        """A CuPy array among NumPy ones (or the reverse on the GPU) is a TypeError naming it;
        without CuPy a stand-in class plays the CuPy array."""
        import sys
        import types

        p, x, _ = self._case(self.dtypes[0])
        if not any(isinstance(v, np.ndarray) for v in p.values()):
            return  # x is the only array: nothing to mix
        if self.xp is np and not self.fake_cupy_mix:
            return
        if self.xp is np:
            class FakeCupyArray:
                dtype = x.dtype
                shape = x.shape
                ndim = x.ndim

            saved = sys.modules.get("cupy")
            sys.modules["cupy"] = types.SimpleNamespace(ndarray=FakeCupyArray)
            try:
                try:
                    self.fast(p, FakeCupyArray())
                except TypeError as exc:
                    assert "cupy.ndarray" in str(exc), str(exc)
                else:
                    raise AssertionError("a CuPy array among NumPy ones was accepted")
            finally:
                if saved is None:
                    del sys.modules["cupy"]
                else:
                    sys.modules["cupy"] = saved
        else:
            try:
                self.fast(p, self._dev(x))  # params stay NumPy, x on the GPU
            except TypeError as exc:
                assert "cupy.ndarray" in str(exc), str(exc)
            else:
                raise AssertionError("NumPy parameters with a CuPy x were accepted")

def assert_rows_unchanged(got, want, tol: float | None, message: str) -> None:
    """Assert ``got == want`` bit for bit (``tol`` None), or with the same non-finite entries
    and a relative error (:func:`_rel_err`) of at most ``tol`` on the finite ones."""
    if tol is None:
        np.testing.assert_array_equal(got, want, err_msg=message)
        return
    finite = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(got), finite, err_msg=message)
    err = _rel_err(got[finite], want[finite])
    assert err <= tol, f"{message}: relative error {err:.3g} > {tol:.3g}"
