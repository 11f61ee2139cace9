"""Keeping thread pools from spinning on each other: OpenBLAS's workers parked before a
parallel Numba kernel, and Numba's own OpenMP pool started with a passive wait policy.

OpenBLAS
--------

NumPy's and SciPy's wheels each ship a pthreads build of OpenBLAS. After every threaded call
its workers keep spinning for ``2**OPENBLAS_THREAD_TIMEOUT`` cycles (about 0.1 s by default)
and take the cores from Numba's pool: a structlin kernel right after a NumPy product ran 1.5-4x
slower on a 2-core machine. ``openblas_set_num_threads`` does not stop the spinning (measured:
no change); OpenBLAS's ``blas_thread_shutdown_`` does: it wakes the workers with an exit
request and joins them, and the next OpenBLAS call starts them again (``blas_thread_init``,
which every threaded entry point calls when the pool is down).

That shutdown is not safe while another thread is inside the same OpenBLAS (it frees the
workers' buffers and would wait for a worker that never sees the exit request), so
:func:`park_blas_threads` only calls it when the interpreter runs no other Python thread
(``threading.active_count() == 1`` and one thread in ``sys._current_frames()``): NumPy and
SciPy call OpenBLAS from Python threads only, and with one thread the caller is the one here,
between two of its own calls. With other threads alive (a Jupyter kernel, a thread pool)
nothing is done.

Costs, measured on the 2-core machine: restarting the pool adds about 0.1 ms to the first
threaded NumPy product after a structlin kernel (a 128 x 128 float64 product: 0.29 against
0.17 ms); a float32 butterfly of n = 1024 on 4096 rows right after a NumPy product of the same
data took 7.0-7.7 ms instead of 10-13 ms. ``STRUCTLIN_PARK_BLAS=0`` in the environment turns
the parking off.

Numba's OpenMP pool
-------------------
Without TBB, Numba runs its parallel loops on GNU OpenMP (its ``omp`` threading layer, linked
against the system ``libgomp``), whose idle workers spin-wait by default: in a default process
on the 2-core machine a 128 x 128 float64 NumPy product took 2.6-3.8 ms right after a structlin
kernel, and still 12 ms 0.3 s later (0.17-0.3 ms with the workers asleep). ``libgomp`` reads
its wait policy from the environment once, when it is loaded, which for Numba's copy is when
Numba starts its pool. :func:`start_numba_pool` starts that pool itself, with
``OMP_WAIT_POLICY=PASSIVE`` in the environment for the duration of the start only (removed
again at once, so child processes and libraries loaded later do not see it):

- nothing is changed if ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is already set (the user's
  choice wins), if Numba's pool is already running (the user's own parallel Numba code ran
  first), or with ``STRUCTLIN_OMP_PASSIVE=0``;
- other OpenMP runtimes already loaded (PyTorch's and scikit-learn's vendored ``libgomp``
  copies are separate libraries) are not affected, nor is a ``libgomp`` that something else
  loaded before, in which case the policy it read stands;
- measured on the same machine, kernels do not get slower: a float32 butterfly of n = 1024 on
  64 rows took 0.24-0.34 ms against 0.39-0.58 ms spinning; on 4096 rows the medians of three
  processes each were within the run-to-run spread (3.4-7.0 ms passive, 4.4-4.8 ms spinning).
"""

from __future__ import annotations

import os
import sys
import threading

#: False when ``STRUCTLIN_PARK_BLAS=0`` was set when structlin was imported
ENABLED = os.environ.get("STRUCTLIN_PARK_BLAS", "1") != "0"
#: False when ``STRUCTLIN_OMP_PASSIVE=0`` was set when structlin was imported
OMP_PASSIVE = os.environ.get("STRUCTLIN_OMP_PASSIVE", "1") != "0"
#: variables through which the user already chose libgomp's wait policy
OMP_WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
_pool_started = False
_cache: tuple[int, tuple] = (-1, ())


def _shutdown_functions() -> tuple:
    """The ``blas_thread_shutdown_`` entry points of the loaded pthreads OpenBLAS builds.

    threadpoolctl finds the libraries; the scan is redone when ``sys.modules`` has grown (a
    library imported later, e.g. ``scipy.linalg`` with its own OpenBLAS) and cached otherwise.
    """
    global _cache
    key = len(sys.modules)
    if _cache[0] == key:
        return _cache[1]
    from threadpoolctl import ThreadpoolController

    funcs = []
    for lib in ThreadpoolController().lib_controllers:
        if lib.internal_api != "openblas":
            continue
        if getattr(lib, "threading_layer", None) != "pthreads":
            continue  # an OpenMP build has no blas_server to park
        f = getattr(getattr(lib, "dynlib", None), "blas_thread_shutdown_", None)
        if f is not None:
            f.restype = None
            f.argtypes = []
            funcs.append(f)
    _cache = (key, tuple(funcs))
    return _cache[1]


def _other_python_threads() -> bool:
    """Whether any thread but this one runs Python code: ``threading``'s threads, and through
    ``sys._current_frames`` also those started by ``_thread`` or by C code that are inside a
    Python call (a NumPy call that released the GIL keeps its frame)."""
    if threading.active_count() != 1:
        return True
    frames = getattr(sys, "_current_frames", None)
    return frames is not None and len(frames()) != 1


def park_blas_threads() -> int:
    """Stop the spinning OpenBLAS workers if it is safe (no other Python thread); return the
    number of OpenBLAS libraries parked (0 when skipped)."""
    if not ENABLED or _other_python_threads():
        return 0
    funcs = _shutdown_functions()
    for f in funcs:
        f()
    return len(funcs)


def start_numba_pool() -> bool:
    """Start Numba's thread pool (once), with a passive OpenMP wait policy unless the user
    chose one (module docstring). Return whether the policy was applied."""
    global _pool_started
    if _pool_started:
        return False
    _pool_started = True
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", True) or not hasattr(parallel, "_launch_threads"):
        return False
    apply = OMP_PASSIVE and not any(v in os.environ for v in OMP_WAIT_VARIABLES)
    if apply:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        parallel._launch_threads()
    finally:
        if apply:
            del os.environ["OMP_WAIT_POLICY"]
    return apply
