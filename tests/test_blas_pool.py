"""Parking OpenBLAS's spinning workers before a parallel kernel (structlin._cpu._blas_pool)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import structlin as sl
from structlin._cpu import _blas_pool, _schedule


def _pthreads_openblas_loaded() -> bool:
    from threadpoolctl import ThreadpoolController

    return any(c.internal_api == "openblas" and getattr(c, "threading_layer", "") == "pthreads"
               for c in ThreadpoolController().lib_controllers)


#: pytest-xdist's workers run execnet's I/O thread, and with another Python thread running the
#: library never parks (by design, see ``park_blas_threads``): the tests below that need a
#: process where this thread is alone are skipped there and run by
#: :func:`test_lone_thread_tests_in_a_fresh_process` in a fresh pytest process instead
_XDIST_WORKER = "PYTEST_XDIST_WORKER" in os.environ
lone_thread = pytest.mark.skipif(
    _XDIST_WORKER, reason="another Python thread (xdist's); run in a fresh process instead")


def test_lone_thread_tests_in_a_fresh_process():
    if not _XDIST_WORKER:
        pytest.skip("not under pytest-xdist: the lone-thread tests ran in this process")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider",
         "-p", "no:xdist", __file__, "-k", "not test_lone_thread_tests_in_a_fresh_process"],
        env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout, proc.stdout[-2000:]


class _Recorder:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


@pytest.fixture
def recorder(monkeypatch):
    rec = _Recorder()
    monkeypatch.setattr(_blas_pool, "_shutdown_functions", lambda: (rec,))
    monkeypatch.setattr(_schedule.numba, "get_num_threads", lambda: 2)
    monkeypatch.setattr(_schedule.numba, "set_num_threads", lambda k: None)
    return rec


@lone_thread
def test_a_parallel_kernel_parks_and_a_small_one_does_not(recorder):
    with _schedule.threads_for(_schedule.SERIAL_ELEMENTS) as t:
        assert t == 2
    assert recorder.calls == 1
    with _schedule.threads_for(_schedule.SERIAL_ELEMENTS - 1) as t:
        assert t == 1
    assert recorder.calls == 1


@lone_thread
@pytest.mark.parametrize("start", ["threading", "_thread"])
def test_nothing_is_parked_while_another_python_thread_runs(recorder, start):
    import _thread

    started, stop, done = threading.Event(), threading.Event(), threading.Event()

    def body():
        started.set()
        stop.wait()
        done.set()

    if start == "threading":
        other = threading.Thread(target=body)
        other.start()
    else:  # not in threading.enumerate(): seen through sys._current_frames
        _thread.start_new_thread(body, ())
    started.wait()
    try:
        assert _blas_pool.park_blas_threads() == 0
        with _schedule.threads_for(1 << 20):
            pass
        assert recorder.calls == 0
    finally:
        stop.set()
        done.wait()
        if start == "threading":
            other.join()
    for _ in range(100):  # the _thread thread ends just after setting done
        if not _blas_pool._other_python_threads():
            break
        threading.Event().wait(0.01)
    assert _blas_pool.park_blas_threads() == 1 and recorder.calls == 1


@lone_thread
@pytest.mark.skipif(not _pthreads_openblas_loaded(),
                    reason="NumPy's BLAS here is not a pthreads OpenBLAS")
def test_the_real_shutdown_is_found_and_blas_restarts_after_it():
    import scipy.linalg  # its own OpenBLAS, loaded after NumPy's

    funcs = _blas_pool._shutdown_functions()
    assert len(funcs) >= 1
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 300))
    ref = a @ a.T
    tw = sl.random_butterfly(1024, rng=0)
    x = rng.standard_normal((64, 1024))
    for _ in range(3):  # BLAS, park, kernel, BLAS again: the pool comes back each time
        assert _blas_pool.park_blas_threads() == len(funcs)
        y = sl.butterfly_multiply(tw, x)
        np.testing.assert_allclose(y, sl.butterfly_multiply(tw, x))
        np.testing.assert_allclose(a @ a.T, ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(scipy.linalg.solve(a, ref), a.T, atol=1e-8)


# ------------------------------------------------------------------ Numba's OpenMP pool

_OMP_PROBE = """
import ctypes, os, sys
import numpy as np
import structlin as sl
import numba
sl.butterfly_multiply(sl.random_butterfly(1024, rng=0), np.ones((64, 1024)))
print("layer", numba.threading_layer())
print("left", os.environ.get("OMP_WAIT_POLICY"))
sys.stdout.flush()
ctypes.CDLL("libgomp.so.1").omp_display_env(1)
"""


def _omp_probe(**env):
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items()
             if k not in (*_blas_pool.OMP_WAIT_VARIABLES, "STRUCTLIN_OMP_PASSIVE")}
    out = subprocess.run([sys.executable, "-c", _OMP_PROBE], env={**clean, **env},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    if "layer omp" not in out.stdout:
        pytest.skip("Numba does not run on its OpenMP threading layer here")
    # libgomp prints an unset policy as PASSIVE too; its spin count tells them apart:
    # '0' passive, '300000' by default, '30000000000' active
    spin = [ln for ln in out.stderr.splitlines() if "GOMP_SPINCOUNT" in ln]
    assert len(spin) == 1, out.stderr
    return out.stdout, spin[0]


def _libgomp_present() -> bool:
    import ctypes

    try:
        ctypes.CDLL("libgomp.so.1")
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _libgomp_present(), reason="no system libgomp")
def test_numba_openmp_pool_starts_passive_and_leaves_no_variable_behind():
    stdout, spin = _omp_probe()
    assert "'0'" in spin
    assert "left None" in stdout


@pytest.mark.skipif(not _libgomp_present(), reason="no system libgomp")
@pytest.mark.parametrize("env,want", [
    ({"OMP_WAIT_POLICY": "active"}, "'30000000000'"),
    ({"GOMP_SPINCOUNT": "1234"}, "'1234'"),
    ({"STRUCTLIN_OMP_PASSIVE": "0"}, "'300000'"),
])
def test_a_users_wait_policy_or_the_opt_out_is_left_alone(env, want):
    _, spin = _omp_probe(**env)
    assert want in spin


def test_start_numba_pool_runs_once(monkeypatch):
    monkeypatch.setattr(_blas_pool, "_pool_started", True)
    assert _blas_pool.start_numba_pool() is False
