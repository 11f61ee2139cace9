"""Numba kernels for the pre- and post-processing of the butterfly DCT/DST.

Contract (shared with ``structlin.gpu.butterfly_special``). Real and complex inputs are seen as
real arrays ``x3`` of shape ``(batch, n, c)`` (``c = 1`` for real data, ``c = 2`` for the real
and imaginary parts of complex data, i.e. ``x.view(real).reshape(batch, n, 2)``); each of the
``batch * c`` real rows is transformed on its own, row ``r * c + q`` of the complex work array
holding part ``q`` of row ``r``.

- ``gather(x3, ia, wa, ib, wb, m)`` returns the complex ``(batch * c, m)`` array
  ``u[r*c + q, i] = wa[i] * x3[r, ia[i], q] + wb[i] * x3[r, ib[i], q]`` (the second term only
  when ``ib`` is not empty);
- ``take_real(v, ic, cw, c)`` returns the real ``(batch, N, c)`` array
  ``y3[r, k, q] = Re(cw[k] * v[r*c + q, ic[k]])``;
- ``gather_packed(x3, ia, wa, ib, wb, m)`` and ``take_real_packed(v, ic, cw, b, c)`` are the
  same maps when the weights ``wa``, ``wb`` are real (types 2): real rows ``2p`` and ``2p + 1``
  (in the order ``r * c + q``) share complex work row ``p`` as its real and imaginary parts,
  ``u = G x_a + i G x_b``; since ``G`` is real, the DFTs separate again by symmetry,
  ``V_a[j] = (V[j] + conj(V[-j])) / 2`` and ``V_b[j] = (V[j] - conj(V[-j])) / 2i``, so one
  complex butterfly serves two real rows (a complex row is one such pair);
- ``gather_transpose`` and ``take_real_transpose`` are the transposes of the unpacked maps
  (the adjoints of these real-linear maps), used by the VJPs: they scatter-add, so indices
  may repeat.

Every loop is one pass over a row, parallel over rows; the weights have the complex dtype of
the work array, so float32 data stays in single precision.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from structlin._cpu._schedule import serial_when_small

__all__ = [
    "gather",
    "gather_packed",
    "gather_transpose",
    "take_real",
    "take_real_packed",
    "take_real_transpose",
]


@njit(cache=True, parallel=True)
def _gather1(x3, ia, wa, out):
    b, _, c = x3.shape
    m = out.shape[1]
    for row in prange(b * c):
        r = row // c
        q = row - r * c
        o = out[row]
        xr = x3[r]
        for i in range(m):
            o[i] = wa[i] * xr[ia[i], q]


@njit(cache=True, parallel=True)
def _gather2(x3, ia, wa, ib, wb, out):
    b, _, c = x3.shape
    m = out.shape[1]
    for row in prange(b * c):
        r = row // c
        q = row - r * c
        o = out[row]
        xr = x3[r]
        for i in range(m):
            o[i] = wa[i] * xr[ia[i], q] + wb[i] * xr[ib[i], q]


@njit(cache=True, parallel=True)
def _take_real(v, ic, cw, out):
    b, N, c = out.shape
    for row in prange(b * c):
        r = row // c
        q = row - r * c
        vr = v[row]
        for k in range(N):
            # Re(w * z) without forming the complex product
            z = vr[ic[k]]
            w = cw[k]
            out[r, k, q] = w.real * z.real - w.imag * z.imag


@njit(cache=True, parallel=True)
def _take_real_transpose(g3, ic, cw, out):
    b, N, c = g3.shape
    for row in prange(b * c):
        r = row // c
        q = row - r * c
        o = out[row]
        for k in range(N):
            o[ic[k]] += np.conj(cw[k]) * g3[r, k, q]


@njit(cache=True, parallel=True)
def _gather_transpose(u, ia, wa, ib, wb, out):
    b, _, c = out.shape
    m = u.shape[1]
    two = ib.shape[0] > 0
    for row in prange(b * c):
        r = row // c
        q = row - r * c
        ur = u[row]
        for i in range(m):
            z = ur[i]
            w = wa[i]
            out[r, ia[i], q] += w.real * z.real + w.imag * z.imag
            if two:
                w = wb[i]
                out[r, ib[i], q] += w.real * z.real + w.imag * z.imag


@njit(cache=True, parallel=True)
def _gather_packed(x3, ia, wa, ib, wb, out):
    b, _, c = x3.shape
    rows = b * c
    m = out.shape[1]
    two = ib.shape[0] > 0
    for p in prange(out.shape[0]):
        ra = 2 * p
        rb = min(ra + 1, rows - 1)
        xa = x3[ra // c, :, ra % c]
        xb = x3[rb // c, :, rb % c]
        # an odd number of rows: the last pair has no imaginary part
        sb = 1.0 if ra + 1 < rows else 0.0
        o = out[p]
        for i in range(m):
            w = wa[i].real
            re = w * xa[ia[i]]
            im = w * xb[ia[i]]
            if two:
                w = wb[i].real
                re += w * xa[ib[i]]
                im += w * xb[ib[i]]
            o[i] = re + 1j * (sb * im)


@njit(cache=True, parallel=True)
def _take_real_packed(v, ic, cw, out):
    b, N, c = out.shape
    rows = b * c
    m = v.shape[1]
    for p in prange(v.shape[0]):
        ra = 2 * p
        vr = v[p]
        for k in range(N):
            j = ic[k]
            z = vr[j]
            zm = np.conj(vr[(m - j) % m])
            w = cw[k]
            va = 0.5 * (z + zm)
            out[ra // c, k, ra % c] = w.real * va.real - w.imag * va.imag
            if ra + 1 < rows:
                # (z - zm) / 2i
                vb = 0.5 * (z - zm)
                out[(ra + 1) // c, k, (ra + 1) % c] = w.real * vb.imag + w.imag * vb.real


@serial_when_small(arg=0)
def gather_packed(x3: np.ndarray, ia: np.ndarray, wa: np.ndarray, ib: np.ndarray,
                  wb: np.ndarray, m: int) -> np.ndarray:
    """Packed :func:`gather` (real weights): two real rows per complex row, ``(ceil(b c/2), m)``."""
    b, _, c = x3.shape
    out = np.empty(((b * c + 1) // 2, m), dtype=wa.dtype)
    if out.size:
        _gather_packed(x3, ia, wa, ib, wb, out)
    return out


@serial_when_small(arg=0)
def take_real_packed(v: np.ndarray, ic: np.ndarray, cw: np.ndarray, b: int, c: int) -> np.ndarray:
    """Packed :func:`take_real`: separate the two real rows of each complex row, ``(b, N, c)``."""
    out = np.empty((b, ic.shape[0], c), dtype=v.real.dtype)
    if out.size:
        _take_real_packed(v, ic, cw, out)
    return out


@serial_when_small(arg=0)
def gather(x3: np.ndarray, ia: np.ndarray, wa: np.ndarray, ib: np.ndarray, wb: np.ndarray,
           m: int) -> np.ndarray:
    """Return ``u = wa * x3[:, ia] + wb * x3[:, ib]`` per real row, complex ``(b * c, m)``."""
    b, _, c = x3.shape
    out = np.empty((b * c, m), dtype=wa.dtype)
    if b * c == 0 or m == 0:
        return out
    if ib.shape[0]:
        _gather2(x3, ia, wa, ib, wb, out)
    else:
        _gather1(x3, ia, wa, out)
    return out


@serial_when_small(arg=0)
def take_real(v: np.ndarray, ic: np.ndarray, cw: np.ndarray, c: int) -> np.ndarray:
    """Return ``y3[r, k, q] = Re(cw[k] * v[r*c + q, ic[k]])``, real ``(b, N, c)``."""
    out = np.empty((v.shape[0] // c, ic.shape[0], c), dtype=v.real.dtype)
    if out.size:
        _take_real(v, ic, cw, out)
    return out


@serial_when_small(arg=0)
def take_real_transpose(g3: np.ndarray, ic: np.ndarray, cw: np.ndarray, m: int) -> np.ndarray:
    """Transpose of :func:`take_real`: ``u[row, ic[k]] += conj(cw[k]) * g3[r, k, q]``."""
    b, _, c = g3.shape
    out = np.zeros((b * c, m), dtype=cw.dtype)
    if out.size and g3.size:
        _take_real_transpose(g3, ic, cw, out)
    return out


@serial_when_small(arg=0)
def gather_transpose(u: np.ndarray, ia: np.ndarray, wa: np.ndarray, ib: np.ndarray,
                     wb: np.ndarray, n: int, c: int) -> np.ndarray:
    """Transpose of :func:`gather`: ``x3[r, ia[i], q] += Re(conj(wa[i]) * u[r*c + q, i])``."""
    out = np.zeros((u.shape[0] // c, n, c), dtype=u.real.dtype)
    if out.size and u.size:
        _gather_transpose(u, ia, wa, ib, wb, out)
    return out
