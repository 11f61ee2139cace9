"""A probe of every public function with the inputs a demanding user tries.

Each public function has one valid call below (small sizes). Every argument of that call is
then replaced, one at a time, by the bad values of its kind, and the call must either work or
raise ``TypeError``/``ValueError`` (``LinAlgError`` for singular systems) -- never an
``AttributeError``, ``IndexError``, a Numba typing error, a hang or a ``MemoryError`` -- and
must leave every input unchanged. The call must also work with every array argument
read-only at once (one call, not one per argument: each pattern of read-only arrays is a Numba
compilation of its own, seconds per kernel; all read-only is the pattern JAX's callbacks hand
over, compiled by the JAX tests anyway). Object and string arrays must be refused with a
``TypeError`` that names the argument, and so must a CuPy array mixed with NumPy ones (a
stand-in class, no GPU needed). The table must cover ``structlin.__all__``: a new public
function without an entry fails :func:`test_every_public_function_is_probed`.
"""

from __future__ import annotations

import inspect
import signal
import sys
import types
from collections.abc import Callable

import numpy as np
import pytest
import scipy.linalg

import structlin as sl

ALLOWED = (TypeError, ValueError, np.linalg.LinAlgError)
#: seconds a probed call may take (the valid calls take milliseconds once compiled)
TIME_LIMIT = 60


def _r(*shape, dtype=np.float64, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape)
    return a.astype(dtype)


def _calls() -> dict[str, Callable[[], tuple[tuple, dict]]]:
    """``name -> () -> (args, kwargs)``: one valid call of every public function."""
    tw8 = lambda: sl.random_butterfly(8, rng=0)  # noqa: E731
    mask = lambda: sl.flat_block_butterfly_mask(8, 8, 2, 2)  # noqa: E731

    def pix():
        m = mask()
        return (_r(int(m.sum()), 2, 2), m, _r(8, 2), _r(8, 2))

    w1 = lambda: _r(2, 3, 2)  # noqa: E731  (k, q, p): x of length k*p = 4
    w2 = lambda: _r(3, 2, 2)  # noqa: E731  (l, s, r) with l*r = k*q = 6
    bt1 = lambda: _r(2, 1, 2, 2)  # noqa: E731  (k, rank, l, p)
    bt2 = lambda: _r(2, 3, 2, 1)  # noqa: E731  (l, s, k, rank)
    A8 = lambda: _r(8, 8)  # noqa: E731
    ssmA = lambda: _r(2, 3) * 0.3  # noqa: E731  (H, N): a diagonal state matrix per channel
    dctp = lambda: sl.butterfly_dct(8)  # noqa: E731

    # the ssm family: (H, N) = (2, 3) complex diagonal systems (Re < 0), dt one per channel
    def cx(*shape, seed=0):
        return _r(*shape, seed=seed) + 1j * _r(*shape, seed=seed + 1)

    lam = lambda: -0.5 - np.abs(_r(2, 3, seed=3)) + 1j * _r(2, 3, seed=4)  # noqa: E731
    dt2 = lambda: np.array([0.1, 0.2])  # noqa: E731
    ssm4 = lambda: (lam(), cx(2, 3, seed=5), cx(2, 3, seed=7), dt2())  # noqa: E731
    vx = lambda: 0.9 * np.exp(1j * _r(2, 3, seed=9))  # noqa: E731  Vandermonde nodes
    cy = lambda: _r(2, 3, seed=10) + 1j * (1 + np.abs(_r(2, 3, seed=11)))  # noqa: E731  poles
    # ssd: (b, l, h, p, n) = (1, 6, 2, 3, 4); semiseparable: (l, n, p) = (6, 4, 3)
    ssdX = lambda: (_r(1, 6, 2, 3), -np.abs(_r(1, 6, 2, seed=1)), _r(1, 6, 2, 4, seed=2),  # noqa: E731
                    _r(1, 6, 2, 4, seed=3))
    sep = lambda: (-np.abs(_r(6, seed=1)), _r(6, 4, seed=2), _r(6, 4, seed=3))  # noqa: E731
    qsep = lambda: (*sep(), -np.abs(_r(6, seed=5)), _r(6, 4, seed=6), _r(6, 4, seed=7),  # noqa: E731
                    _r(6, seed=4))
    # selective scan: (b, d, l, n) = (1, 2, 8, 4), B and C shared (b, n, l)
    sel = lambda: (_r(1, 2, 8), np.abs(_r(1, 2, 8, seed=1)), -np.abs(_r(2, 4, seed=2)),  # noqa: E731
                   _r(1, 4, 8, seed=3), _r(1, 4, 8, seed=4))
    selopt = lambda: {"D": _r(2, seed=5), "z": _r(1, 2, 8, seed=6),  # noqa: E731
                      "delta_bias": _r(2, seed=7), "delta_softplus": True}
    return {
        "bit_reversal_permutation": lambda: ((8,), {}),
        "bit_reverse": lambda: ((_r(3, 8),), {}),
        "btt_multiply": lambda: ((bt1(), bt2(), _r(3, 4)), {}),
        "btt_multiply_vjp": lambda: ((bt1(), bt2(), _r(3, 4), _r(3, 6)), {}),
        "btt_project": lambda: ((_r(6, 4), 1), {"nblocks": 2}),
        "btt_to_dense": lambda: ((bt1(), bt2()), {}),
        "butterfly_circulant": lambda: ((_r(8),), {}),
        "butterfly_dct": lambda: ((8,), {}),
        "butterfly_dft": lambda: ((8,), {}),
        "butterfly_dst": lambda: ((8,), {}),
        "butterfly_factorize": lambda: ((sl.butterfly_to_dense(tw8()),), {}),
        "butterfly_fit": lambda: ((scipy.linalg.hadamard(4).astype(float),),
                                  {"permutation": None, "maxiter": 5, "refit_maxiter": 2,
                                   "rng": 0}),
        "butterfly_hadamard": lambda: ((8,), {}),
        "butterfly_inverse": lambda: ((tw8(),), {}),
        "butterfly_logdet": lambda: ((tw8(),), {}),
        "butterfly_logdet_vjp": lambda: ((tw8(), 1.0), {}),
        "butterfly_multiply": lambda: ((tw8(), _r(3, 8)), {}),
        "butterfly_multiply_vjp": lambda: ((tw8(), _r(3, 8), _r(3, 8)), {}),
        "butterfly_solve": lambda: ((tw8(), _r(3, 8)), {}),
        "butterfly_solve_vjp": lambda: ((tw8(), _r(3, 8), _r(3, 8)), {}),
        "butterfly_to_dense": lambda: ((tw8(),), {}),
        "butterfly_toeplitz": lambda: ((_r(8), _r(8)), {}),
        "circulant_multiply": lambda: ((_r(8), _r(3, 8)), {}),
        "circulant_multiply_vjp": lambda: ((_r(8), _r(3, 8), _r(3, 8)), {}),
        "dct": lambda: ((_r(3, 8),), {}),
        "dct_butterfly_multiply": lambda: ((dctp(), _r(3, 8)), {}),
        "dct_butterfly_multiply_vjp": lambda: ((dctp(), _r(3, 8), _r(3, 8)), {}),
        "dct_vjp": lambda: ((_r(3, 8), _r(3, 8)), {}),
        "dst": lambda: ((_r(3, 8),), {}),
        "dst_vjp": lambda: ((_r(3, 8), _r(3, 8)), {}),
        "fftconv": lambda: ((_r(2, 3, 16), _r(3, 16), _r(3)), {}),
        "fftconv_plan": lambda: ((_r(3, 16), 16), {}),
        "fftconv_stream": lambda: ((_r(3, 16), 4), {}),
        "fftconv_to_dense": lambda: ((_r(3, 8), 8), {}),
        "fftconv_vjp": lambda: ((_r(2, 3, 16), _r(3, 16), _r(3), _r(2, 3, 16)), {}),
        "flat_block_butterfly_mask": lambda: ((8, 8, 2, 2), {}),
        "fwht": lambda: ((_r(3, 8),), {}),
        "fwht_vjp": lambda: ((_r(3, 8), _r(3, 8)), {}),
        "monarch_multiply": lambda: ((w1(), w2(), _r(3, 4)), {}),
        "monarch_multiply_vjp": lambda: ((w1(), w2(), _r(3, 4), _r(3, 6)), {}),
        "monarch_order_p_multiply": lambda: (([_r(2, 2, 2), _r(2, 2, 2)], _r(3, 4)), {}),
        "monarch_order_p_multiply_vjp": lambda: (
            ([_r(2, 2, 2), _r(2, 2, 2)], _r(3, 4), _r(3, 4)), {}),
        "monarch_order_p_project": lambda: ((_r(4, 4), (2, 2)), {}),
        "monarch_order_p_to_dense": lambda: (([_r(2, 2, 2), _r(2, 2, 2)],), {}),
        "monarch_project": lambda: ((A8(),), {"nblocks": 2}),
        "monarch_to_dense": lambda: ((w1(), w2()), {}),
        "pixelfly_multiply": lambda: ((*pix(), _r(3, 8)), {}),
        "pixelfly_multiply_vjp": lambda: ((*pix(), _r(3, 8), _r(3, 8)), {}),
        "pixelfly_project": lambda: ((A8(), mask(), 1), {"rng": 0}),
        "pixelfly_to_dense": lambda: (pix(), {}),
        "random_butterfly": lambda: ((8,), {"rng": 0}),
        "smooth_kernel": lambda: ((_r(3, 8), 3), {}),
        "smooth_kernel_vjp": lambda: ((_r(3, 8), 3, _r(3, 8)), {}),
        "squash_kernel": lambda: ((_r(3, 8), 0.1), {}),
        "squash_kernel_vjp": lambda: ((_r(3, 8), 0.1, _r(3, 8)), {}),
        "ssm_conv_chunked": lambda: ((_r(1, 2, 8), ssmA(), _r(2, 3), _r(2, 3), 4), {}),
        "ssm_kernel": lambda: ((ssmA(), _r(2, 3), _r(2, 3), 8), {}),
        "toeplitz_multiply": lambda: ((_r(8), _r(8), _r(3, 8)), {}),
        "toeplitz_multiply_vjp": lambda: ((_r(8), _r(8), _r(3, 8), _r(3, 8)), {}),
        "kaleidoscope_multiply": lambda: ((sl.random_kaleidoscope(8, 2, rng=1), _r(3, 8)), {}),
        "kaleidoscope_multiply_vjp": lambda: ((sl.random_kaleidoscope(8, 2, rng=1), _r(3, 8),
                                               _r(3, 8)), {}),
        "kaleidoscope_to_dense": lambda: ((sl.random_kaleidoscope(8, 2, rng=1),), {}),
        "random_kaleidoscope": lambda: ((8, 2), {"rng": 0}),
        "kaleidoscope_permutation": lambda: ((np.array([3, 0, 7, 5, 1, 6, 2, 4]),), {}),
        "kaleidoscope_pad": lambda: ((_r(3, 5), 8), {}),
        "kaleidoscope_identity": lambda: ((8,), {}),
        "kaleidoscope_diagonal": lambda: ((_r(8),), {}),
        "kaleidoscope_dft": lambda: ((8,), {"norm": "ortho"}),
        "kaleidoscope_circulant": lambda: ((_r(8),), {}),
        "kaleidoscope_toeplitz": lambda: ((_r(5), _r(5)), {}),
        "kaleidoscope_fastfood": lambda: ((_r(8), np.array([3, 0, 7, 5, 1, 6, 2, 4]), _r(8)),
                                          {}),
        # one twiddle: the probe maps positional arguments to parameters (*twiddles is one)
        "kaleidoscope_product": lambda: ((sl.random_kaleidoscope(8, 2, rng=1),), {}),
        "kaleidoscope_fit": lambda: ((_r(4, 4), 1), {"restarts": 1, "maxiter": 5, "rng": 0}),
        "xd_multiply": lambda: ((*(sl.random_kaleidoscope(8, rng=s) for s in range(3)),
                                 _r(8), _r(3, 8)), {}),
        "xd_multiply_vjp": lambda: ((*(sl.random_kaleidoscope(8, rng=s) for s in range(3)),
                                     _r(8), _r(3, 8), _r(3, 8)), {}),
        "xd_from_conv": lambda: ((_r(3), 8), {}),
        "kernel_matrix": lambda: ((_r(3, 2),), {"gamma": 0.5}),
        "spectral_density": lambda: ((_r(3, 2),), {"gamma": 0.5}),
        "quadrature_rule": lambda: (("grid", 2, 5), {"gamma": 0.5}),
        "kernel_features": lambda: ((_r(3, 2), _r(4, 2), np.full(4, 0.25)), {}),
        "kernel_features_vjp": lambda: ((_r(3, 2), _r(4, 2), np.full(4, 0.25), _r(3, 8)), {}),
        "sorf_parameters": lambda: ((3, 8), {"random_state": 0}),
        "sorf_features": lambda: ((_r(3, 3), sl.sorf_parameters(3, 8, random_state=0)), {}),
        "sorf_nodes": lambda: ((sl.sorf_parameters(3, 8, random_state=0), 3), {}),
        "fastfood_parameters": lambda: ((3, 8), {"random_state": 0}),
        "fastfood_features": lambda: ((_r(3, 3), *sl.fastfood_parameters(3, 8, random_state=0)),
                                      {}),
        "fastfood_nodes": lambda: ((*sl.fastfood_parameters(3, 8, random_state=0), 3), {}),
        "hippo": lambda: (("legs", 4), {}),
        "hippo_nplr": lambda: (("legs", 4, 1), {"half": True}),
        "s4d_init": lambda: ((4, "lin"), {}),
        "discretize": lambda: ((_r(3, 3) * 0.1 - np.eye(3), _r(3, 2), 0.1, "zoh"),
                               {"diagonal": False}),
        "ssm_kernel_vjp": lambda: ((ssmA(), _r(2, 3), _r(2, 3), 8, _r(2, 8)), {}),
        "ssm_kernel_diag": lambda: ((*ssm4(), 8), {"method": "zoh"}),
        "ssm_kernel_diag_vjp": lambda: ((*ssm4(), 8, _r(2, 8)), {"method": "zoh"}),
        "ssm_kernel_dplr": lambda: ((lam(), 0.3 * cx(2, 3, seed=12), *ssm4()[1:], 8), {}),
        "ssm_kernel_dplr_vjp": lambda: ((lam(), 0.3 * cx(2, 3, seed=12), *ssm4()[1:], 8,
                                         _r(2, 8)), {}),
        "ssm_scan": lambda: ((*ssm4(), _r(1, 2, 8)),
                             {"method": "zoh", "D": _r(2), "state": cx(1, 2, 3, seed=13),
                              "return_state": False}),
        "ssm_scan_vjp": lambda: ((*ssm4(), _r(1, 2, 8), _r(1, 2, 8, seed=1)),
                                 {"method": "zoh", "D": _r(2), "state": cx(1, 2, 3, seed=13)}),
        "ssm_step": lambda: ((*ssm4(), _r(1, 2), cx(1, 2, 3, seed=13)),
                             {"method": "zoh", "D": _r(2)}),
        "matmul_vandermonde": lambda: ((vx(), cx(2, 3), 5), {"transpose": False}),
        "matmul_vandermonde_vjp": lambda: ((vx(), cx(2, 3), 5, cx(2, 5, seed=2)),
                                           {"transpose": False}),
        "vandermonde_to_dense": lambda: ((vx(), 5), {}),
        "matmul_cauchy": lambda: ((_r(2, 4), cy(), cx(2, 3)), {}),
        "matmul_cauchy_vjp": lambda: ((_r(2, 4), cy(), cx(2, 3), cx(2, 4, seed=2)), {}),
        "cauchy_to_dense": lambda: ((_r(2, 4), cy()), {}),
        "ssd": lambda: ((*ssdX(), 4), {"initial_states": _r(1, 2, 3, 4, seed=4),
                                       "return_final_states": False}),
        "ssd_vjp": lambda: ((*ssdX(), 4, _r(1, 6, 2, 3, seed=5)),
                            {"initial_states": _r(1, 2, 3, 4, seed=4),
                             "grad_final_states": _r(1, 2, 3, 4, seed=6)}),
        "semiseparable_to_dense": lambda: (sep(), {}),
        "semiseparable_multiply": lambda: ((*sep(), _r(6, 3)), {"chunk_size": 4}),
        "semiseparable_multiply_vjp": lambda: ((*sep(), _r(6, 3), _r(6, 3, seed=1)),
                                               {"chunk_size": 4}),
        "quasiseparable_to_dense": lambda: (qsep(), {}),
        "quasiseparable_multiply": lambda: ((*qsep(), _r(6, 3)), {"chunk_size": 4}),
        "quasiseparable_multiply_vjp": lambda: ((*qsep(), _r(6, 3), _r(6, 3, seed=1)),
                                                {"chunk_size": 4}),
        "selective_scan": lambda: (sel(), {**selopt(), "return_last_state": False}),
        "selective_scan_vjp": lambda: ((*sel(), _r(1, 2, 8, seed=8)), selopt()),
    }


#: test modules that keep their family's probe entries next to their tests, in a ``PROBE`` dict
#: of the same form as the table above (the toeplitz family's parts)
PROBE_MODULES = ("test_toeplitz", "test_hankel", "test_gko", "test_toeplitz_pcg",
                 "test_vandermonde", "test_solve_circulant", "test_ldr")


def _module_calls() -> dict[str, Callable[[], tuple[tuple, dict]]]:
    import importlib

    calls: dict[str, Callable[[], tuple[tuple, dict]]] = {}
    for name in PROBE_MODULES:
        probe = importlib.import_module(f"tests.{name}").PROBE
        assert not set(probe) & set(calls), f"{name}: a function probed twice"
        calls.update(probe)
    return calls


CALLS = {**_calls(), **_module_calls()}
assert len(CALLS) == len(_calls()) + len(_module_calls()), "a function probed twice"
#: public names that are result or plan types, built by the functions above
NOT_CALLED = {"ButterflyFactorization", "ButterflyFit", "CirculantButterfly", "DCTButterfly",
              "FFTConvPlan", "FFTConvStream", "KaleidoscopeFit"}


class _FakeCupyArray:
    """Stands for a cupy.ndarray in the namespace check (no GPU needed)."""

    dtype = np.dtype(np.float64)
    shape = (8,)
    ndim = 1


def _bad_values(value) -> list[tuple[str, object, tuple]]:
    """``(label, bad value, exceptions allowed)`` for an argument of ``value``'s kind; an empty
    tuple of exceptions means the call must succeed."""
    out = []
    if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
        out += [
            ("object array", value.astype(object), (TypeError,)),
            ("string array", value.astype(str), (TypeError,)),
            ("list", value.tolist(), ALLOWED),
            ("None", None, ALLOWED),
            # (the real part of a complex value: the cast alone would warn)
            ("float16", np.real(value).astype(np.float16), ALLOWED),
            ("big-endian", value.astype(value.dtype.newbyteorder(">")), ()),
            ("non-contiguous", np.repeat(value, 2, axis=-1)[..., ::2] if value.ndim else value,
             ()),
        ]
    elif isinstance(value, (bool, np.bool_)):
        out += [("string for a flag", "yes", ALLOWED)]
    elif isinstance(value, (int, np.integer)):
        out += [(label, bad, ALLOWED) for label, bad in (
            ("non-integral float", value + 0.5), ("string", str(value)), ("None", None),
            ("bool", True), ("huge", 2**45), ("negative", -3))]
    elif isinstance(value, float):
        out += [(label, bad, ALLOWED) for label, bad in (
            ("string", str(value)), ("None", None), ("nan", float("nan")))]
    elif isinstance(value, str):
        out += [("unknown value", "bogus", ALLOWED)]
    return out


def _read_only(value):
    """A read-only copy of a floating or complex array; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
        value = value.copy()
        value.flags.writeable = False
    return value


def _arguments(name):
    args, kwargs = CALLS[name]()
    params = list(inspect.signature(getattr(sl, name)).parameters)
    named = {params[i]: a for i, a in enumerate(args)}
    named.update(kwargs)
    return args, kwargs, named, params


def _call(name, args, kwargs):
    def on_alarm(signum, frame):
        raise TimeoutError(f"{name} took more than {TIME_LIMIT} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIME_LIMIT)
    try:
        return getattr(sl, name)(*args, **kwargs)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _replace(args, kwargs, params, arg, value):
    args = list(args)
    kwargs = dict(kwargs)
    if arg in kwargs:  # a keyword argument (also one collected by ``**operator_params``)
        kwargs[arg] = value
        return tuple(args), kwargs
    i = params.index(arg)
    if i < len(args) and arg not in kwargs:
        args[i] = value
    else:
        kwargs[arg] = value
    return tuple(args), kwargs


def _snapshot(named):
    return {k: np.array(v, copy=True) for k, v in named.items() if isinstance(v, np.ndarray)}


def test_every_public_function_is_probed():
    missing = set(sl.__all__) - set(CALLS) - NOT_CALLED
    assert not missing, f"add a valid call for {sorted(missing)} to CALLS"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_valid_call_works(name):
    args, kwargs, _, _ = _arguments(name)
    _call(name, args, kwargs)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_bad_arguments_raise_clear_errors_and_leave_inputs_alone(name):
    args, kwargs, named, params = _arguments(name)
    problems = []
    for arg, value in named.items():
        for label, bad, allowed in _bad_values(value):
            a2, k2 = _replace(args, kwargs, params, arg, bad)
            before = _snapshot({"bad": bad} if isinstance(bad, np.ndarray) else {})
            others = _snapshot({k: v for k, v in named.items() if k != arg})
            try:
                _call(name, a2, k2)
            except allowed as exc:
                if label in ("object array", "string array") and arg not in str(exc):
                    problems.append(f"{arg} as {label}: the TypeError does not name {arg}: "
                                    f"{exc}")
            except Exception as exc:
                problems.append(f"{arg} as {label}: {type(exc).__name__}: {exc}"[:300])
            for k, v in {**others, **before}.items():
                current = np.asarray(named.get(k, bad) if k != "bad" else bad)
                if not np.array_equal(current, v, equal_nan=current.dtype.kind in "fc"):
                    problems.append(f"{arg} as {label}: {k} was modified")
    # every floating array argument read-only at once: the call must work (a kernel or a
    # Python step that writes into an input fails here, and so does a Numba typing error)
    ro = {k: _read_only(v) for k, v in named.items()}
    a2, k2 = args, kwargs
    for arg, value in ro.items():
        if value is not named[arg]:
            a2, k2 = _replace(a2, k2, params, arg, value)
    try:
        _call(name, a2, k2)
    except Exception as exc:
        problems.append(f"every array read-only: {type(exc).__name__}: {exc}"[:300])
    for k, v in _snapshot(named).items():
        if not np.array_equal(ro[k], v, equal_nan=v.dtype.kind in "fc"):
            problems.append(f"every array read-only: {k} was modified")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_cupy_array_among_numpy_ones_is_refused_first(name, monkeypatch):
    args, kwargs, named, params = _arguments(name)
    arrays = [k for k, v in named.items() if isinstance(v, np.ndarray) and v.dtype.kind in "fc"]
    if len(arrays) < 2:
        pytest.skip("fewer than two array arguments")
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(ndarray=_FakeCupyArray))
    for arg in arrays:
        a2, k2 = _replace(args, kwargs, params, arg, _FakeCupyArray())
        with pytest.raises(TypeError, match=rf"{arg} is a cupy\.ndarray but \S+ is a numpy"):
            _call(name, a2, k2)
