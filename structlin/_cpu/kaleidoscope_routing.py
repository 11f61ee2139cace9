"""Numba kernel of the Beneš routing of a permutation (the looping algorithm).

Contract (CPU only: the routing is a sequential graph walk, done on the host): ``route(perm)``
takes a C-contiguous int64 permutation ``perm`` of ``n = 2**L`` and returns a uint8 array
``sw`` of shape ``(2, L, n//2)``: ``sw[1, k, b]`` is 1 when block ``b`` of factor ``k`` of the
*input* butterfly (applied in decreasing stride, factor ``L-1`` first) swaps its pair, and
``sw[0, k, b]`` the same for the *output* butterfly (increasing stride). Block ``b = a*s + c``
of factor ``k`` (``s = 2**k``) acts on the pair ``(a*2s + c, a*2s + c + s)``, as in
:func:`structlin.butterfly_multiply`. The network then maps ``x`` to ``x[perm]``.

Algorithm: level ``l = 0, ..., L-1`` treats the ``2**l`` contiguous sub-networks of size
``m = n >> l`` (half ``h = m/2``). ``cur[b + j]`` is the local input that local output ``j`` of
the sub-network at ``b`` receives. For each output pair ``(j, j+h)`` not yet routed, the loop
sends output ``j``'s input through the upper half, its partner input through the lower half,
the partner's output's partner through the upper half again, ..., until the cycle closes
(the looping algorithm of Waksman / Opferman-Tsao-Wu). That sets the two switch columns of
stride ``h`` and the permutations of the two halves (written into ``nxt``). Every level is
``O(n)``, so ``O(n log n)`` in all, iteratively, with ``O(n)`` scratch.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["route"]


@nb.njit(cache=True, nogil=True)
def _route(perm, sw):  # pragma: no cover - compiled
    n = perm.shape[0]
    L = sw.shape[1]
    cur = perm.copy()
    nxt = np.empty(n, dtype=np.int64)
    inv = np.empty(n, dtype=np.int64)
    seen = np.zeros(n, dtype=np.uint8)
    for lev in range(L):
        m = n >> lev
        h = m >> 1
        k = L - 1 - lev
        for b in range(0, n, m):
            for j in range(m):
                inv[b + cur[b + j]] = j
            for j in range(h):
                seen[b + j] = 0
            blk = b >> 1
            for start in range(h):
                if seen[b + start]:
                    continue
                out = start
                while True:
                    # output `out` takes its input through the upper half
                    seen[b + (out % h)] = 1
                    sw[0, k, blk + (out % h)] = 1 if out >= h else 0
                    inp = cur[b + out]
                    sw[1, k, blk + (inp % h)] = 1 if inp >= h else 0
                    nxt[b + (out % h)] = inp % h
                    # the partner input goes through the lower half
                    partner = inp ^ h
                    out2 = inv[b + partner]
                    nxt[b + h + (out2 % h)] = partner % h
                    out = out2 ^ h
                    if seen[b + (out % h)]:
                        break
        cur, nxt = nxt, cur
    return sw


def route(perm: np.ndarray) -> np.ndarray:
    """Return the switch settings ``(2, L, n//2)`` uint8 of the Beneš routing of ``perm``."""
    n = perm.shape[0]
    L = n.bit_length() - 1
    sw = np.zeros((2, L, n // 2), dtype=np.uint8)
    if L == 0:
        return sw
    return _route(perm, sw)
