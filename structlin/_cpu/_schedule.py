"""Cache-blocked pass schedules shared by the butterfly-shaped CPU kernels.

A butterfly of size ``n = 2**L`` has ``L`` factors; factor ``k`` pairs elements ``2**k``
apart. Applying the factors one at a time would stream the whole vector through memory ``L``
times. Instead the factors are split into *passes* ``[k0, k1)``: a pass gathers tiles that
factors ``k0 .. k1-1`` never mix with anything outside, applies all of them while the tile sits
in cache, and writes the tile back. A tile is, for a fixed high part ``h`` and ``W``
consecutive low offsets ``c0 .. c0+W-1``, the elements::

    h * 2**k1 + t * 2**k0 + c,   t in [0, 2**(k1-k0)),  c in [c0, c0 + W)

For the first pass (``k0 == 0``) that is a contiguous segment of length ``2**k1``; later passes
take ``W`` consecutive columns so that every gathered run fills whole cache lines. While a row
fits the budget, the schedule has a single pass: one read and one write of ``x`` per call.
"""

from __future__ import annotations

import contextlib
import functools

import numba
from numba import njit

from structlin._cpu._blas_pool import park_blas_threads, start_numba_pool

#: bytes of one tile (per thread) that should stay in the core's L2 cache
TILE_BYTES = 256 * 1024
#: bytes of consecutive elements gathered per tile row in the later passes (two cache lines)
RUN_BYTES = 128


def plan_passes(
    L: int, itemsize: int, stash: bool = False, first_width: int = 1,
    first_bytes: int | None = None,
) -> list[tuple[int, int, int]]:
    """Return the passes ``(k0, k1, W)`` covering factors ``0 .. L-1`` in increasing order.

    ``first_width`` is the number of rows the first pass keeps side by side in a tile (1 when
    it works on one contiguous row segment). ``stash=True`` plans for a VJP, whose tiles keep
    every intermediate level (``k1 - k0 + 1`` copies of the tile), so it uses smaller passes.
    ``first_bytes`` overrides :data:`TILE_BYTES` for the first pass.
    """
    passes = []
    k0 = 0
    while k0 < L:
        w = first_width if k0 == 0 else min(1 << k0, max(1, RUN_BYTES // itemsize))
        nl = 1
        while k0 + nl < L:
            copies = (nl + 2) if stash else 1
            budget = first_bytes if (k0 == 0 and first_bytes) else TILE_BYTES
            if (1 << (nl + 1)) * w * itemsize * copies > budget:
                break
            nl += 1
        passes.append((k0, k0 + nl, w))
        k0 += nl
    return passes


#: elements of ``x`` below which a call runs on the calling thread only: waking Numba's pool
#: costs microseconds on an idle machine and milliseconds when the other cores are busy, more
#: than the whole transform of a few thousand elements
SERIAL_ELEMENTS = 1 << 14


@contextlib.contextmanager
def threads_for(elements: int):
    """Run the body on the calling thread alone when it touches fewer than
    :data:`SERIAL_ELEMENTS` elements (the one small-input rule of every CPU kernel); otherwise
    on Numba's whole pool, after parking OpenBLAS's spinning workers
    (:func:`structlin._cpu._blas_pool.park_blas_threads`). Yields the number of threads to
    use (for code that splits work itself, e.g. per-thread buffers). The first call starts
    Numba's pool (:func:`structlin._cpu._blas_pool.start_numba_pool`)."""
    start_numba_pool()
    threads = numba.get_num_threads()
    if threads == 1:
        yield threads
        return
    if elements >= SERIAL_ELEMENTS:
        park_blas_threads()
        yield threads
        return
    numba.set_num_threads(1)
    try:
        yield 1
    finally:
        numba.set_num_threads(threads)


def serial_when_small(arg: int = 0):
    """Decorate a kernel entry point: it runs on one thread when its positional argument ``arg``
    (the data array) has fewer than :data:`SERIAL_ELEMENTS` elements (:func:`threads_for`)."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with threads_for(args[arg].size):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def n_chunks(n_tiles: int) -> int:
    """Number of parallel chunks for ``n_tiles`` tiles: a few per thread, at most one per tile."""
    return max(1, min(n_tiles, 8 * numba.get_num_threads()))


@njit(cache=True, inline="always")
def column_tile(tile, per_row, nc, W, k1):
    """Decode a flat tile index of a column pass into ``(row, h, c0, base = h * 2**k1)``.

    Tiles are numbered row-major over (row, h, column block); ``per_row = (n >> k1) * nc``.
    """
    row = tile // per_row
    rem = tile - row * per_row
    h = rem // nc
    return row, h, (rem - h * nc) * W, h << k1


@njit(cache=True, inline="always")
def row_tile(tile, nh, R, b, k1):
    """Decode a flat tile index of a row-tile pass into ``(h, r0, nr, base = h * 2**k1)``:
    rows ``r0 .. r0+nr-1`` (``nr <= R``, the last tile may be short), segment ``h`` of ``nh``."""
    rt = tile // nh
    h = tile - rt * nh
    r0 = rt * R
    return h, r0, min(R, b - r0), h << k1


@functools.cache
def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries (built once: it scans them;
    imported here so that importing structlin does not scan)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def serial_blas(nthreads: int):
    """Keep BLAS single-threaded while ``nthreads > 1`` Numba threads each call it.

    The GEMMs of a tile are small (e.g. 64 x 64 x 32): OpenBLAS would otherwise start its own
    threads inside every Numba thread, and the oversubscribed cores run the product up to
    10x slower (measured on 2 cores). OpenBLAS's own size threshold for going parallel does
    not prevent it: complex GEMMs of a few hundred thousand multiply-adds already use every
    thread.
    """
    if nthreads <= 1:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")
