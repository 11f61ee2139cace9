"""Parking the spinning worker threads of OpenBLAS before a parallel Numba kernel.

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
"""

from __future__ import annotations

import os
import sys
import threading

#: False when ``STRUCTLIN_PARK_BLAS=0`` was set when structlin was imported
ENABLED = os.environ.get("STRUCTLIN_PARK_BLAS", "1") != "0"
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
