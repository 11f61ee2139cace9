"""JAX benchmarks: ``jax.vmap`` of the :mod:`structlin.interop.jax` wrappers.

Timed cases (``cases(quick)``, run by ``run.py jax``, interleaved; the ratio is
``median(baseline) / median(fn)``):

- ``jax.jit(jax.vmap(butterfly_multiply, in_axes=(None, 0)))`` over ``V`` maps of ``(B, n)``
  float32 vectors against one ``structlin.butterfly_multiply`` call on the ``(V, B, n)``
  array: what JAX, the host callback and the batching cost (ratio below 1: the overhead).
- the same ``vmap`` against ``jax.lax.map`` of the wrapper (one structlin call per element,
  which is what ``vmap_method="sequential"`` did before the callbacks folded the mapped axes
  into structlin's batch): ratio above 1 is what the single call gains.
- forward + backward in the vectors (``jax.grad`` of a sum of squares over the ``vmap``,
  argnums the vectors), against the NumPy function and its ``*_vjp``.
- ``jax.grad`` in the twiddle of the same loss over the ``vmap`` (one backward call per
  element) against the same gradient with the batch passed directly (one call).

Work: the bytes of the vectors read and written (``2 V B n * 4`` forward, ``4 V B n * 4``
with the backward pass). Returns no case when JAX is not installed. The callbacks run on the
host: these are CPU figures whatever JAX's device.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from _harness import Case, rel_error

import structlin

SEED = 20261204


def _inputs(V: int, B: int, n: int):
    rng = np.random.default_rng(SEED + n)
    tw = structlin.random_butterfly(n, rng=rng).astype(np.float32)
    x = rng.standard_normal((V, B, n)).astype(np.float32)
    return tw, x


def _block(y):
    import jax

    return jax.block_until_ready(y)


def vmap_cases(V: int, B: int, n: int) -> list[Case]:
    import jax
    import jax.numpy as jnp

    from structlin.interop import jax as sj

    tw, x = _inputs(V, B, n)
    jtw, jx = jnp.asarray(tw), jnp.asarray(x)
    mapped = jax.jit(jax.vmap(sj.butterfly_multiply, in_axes=(None, 0)))
    sequential = jax.jit(lambda t, x: jax.lax.map(lambda xi: sj.butterfly_multiply(t, xi), x))
    grad = jax.jit(jax.grad(
        lambda t, x: jnp.sum(jax.vmap(sj.butterfly_multiply, in_axes=(None, 0))(t, x) ** 2),
        argnums=1))
    grad_tw = jax.jit(jax.grad(
        lambda t, x: jnp.sum(jax.vmap(sj.butterfly_multiply, in_axes=(None, 0))(t, x) ** 2)))
    grad_tw_direct = jax.jit(jax.grad(lambda t, x: jnp.sum(sj.butterfly_multiply(t, x) ** 2)))
    for f in (mapped, sequential, grad, grad_tw, grad_tw_direct):  # compile outside the timings
        _block(f(jtw, jx))
    size = f"n={n} B={B} V={V}"
    common = dict(size=size, unit="byte", dtype="float32", check=rel_error, tol=1e-5)
    return [
        Case(name="jax vmap butterfly_multiply (vectors mapped) float32",
             fn=lambda: _block(mapped(jtw, jx)),
             baseline=lambda: structlin.butterfly_multiply(tw, x),
             baseline_name="structlin.butterfly_multiply, one NumPy call on (V, B, n)",
             work=2.0 * V * B * n * 4,
             notes="jit + host callback + folding the mapped axis, against the bare call",
             **common),
        Case(name="jax vmap vs lax.map butterfly_multiply float32",
             fn=lambda: _block(mapped(jtw, jx)),
             baseline=lambda: _block(sequential(jtw, jx)),
             baseline_name="jax.lax.map of the wrapper: one structlin call per element",
             work=2.0 * V * B * n * 4,
             notes="what vmap_method='expand_dims' with one folded call gains over the "
                   "sequential callbacks",
             **common),
        Case(name="jax grad through vmap butterfly_multiply (vectors) float32",
             fn=lambda: _block(grad(jtw, jx)),
             baseline=lambda: structlin.butterfly_multiply_vjp(
                 tw, x, 2.0 * structlin.butterfly_multiply(tw, x))[1],
             baseline_name="structlin.butterfly_multiply + butterfly_multiply_vjp (NumPy)",
             work=4.0 * V * B * n * 4,
             notes="forward and backward one structlin call each (the twiddle is not "
                   "differentiated)",
             **common),
        Case(name="jax grad in the twiddle through vmap butterfly_multiply float32",
             fn=lambda: _block(grad_tw(jtw, jx)),
             baseline=lambda: _block(grad_tw_direct(jtw, jx)),
             baseline_name="the same gradient with the batch passed directly (no vmap)",
             work=4.0 * V * B * n * 4,
             notes="the mapped VJP makes one structlin call per element (JAX wants each "
                   "element's twiddle gradient and sums them); the baseline makes one",
             size=size, unit="byte", dtype="float32",
             check=rel_error, tol=1e-4),
    ]


def cases(quick: bool) -> Iterator[Case]:
    try:
        import jax  # noqa: F401
    except ImportError:  # the jax extra is not installed: nothing to time
        return
    yield from vmap_cases(8, 16, 256) if quick else vmap_cases(64, 16, 1024)
