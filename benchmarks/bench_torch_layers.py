"""PyTorch layers: forward + backward of ``ButterflyLinear`` / ``MonarchLinear`` against the
peers' modules and ``nn.Linear`` (the issue's layer benchmark, CPU).

Each case times one training step of a layer on a fixed batch, ``y = layer(x)`` then
``y.backward(g)`` (gradients of the input and of every parameter), against the same step of
another module holding the same weights, interleaved in one process (:mod:`_harness`):

- ``ButterflyLinear`` vs torch_butterfly's ``Butterfly`` (its C++ CPU kernel) and vs
  ``nn.Linear`` holding the butterfly's dense matrix;
- ``MonarchLinear`` vs HazyResearch/fly's ``MonarchLinear`` (``torch.bmm`` on reshaped
  blocks, its hand-written backward) and vs ``nn.Linear``.

Work counts per row, forward + backward (three products: ``y``, ``grad_x``, the weight
gradients): butterfly ``3 * 3 n log2(n)`` real flops; Monarch ``3 * 2 (k q p + l s r)``; the
dense layer ``3 * 2 n^2`` (its own rate, ``baseline_work``).

The peers are not dependencies of structlin and are never vendored: their sources are read
from ``STRUCTLIN_PEERS`` (a directory; the cases against a peer are skipped when it is unset
or the peer does not import). To prepare it from git checkouts of HazyResearch/butterfly and
HazyResearch/fly (any directory outside the repository)::

    P=/tmp/structlin-peers; mkdir -p $P/butterfly $P/fly/src/utils
    git -C BUTTERFLY_CHECKOUT archive HEAD setup.py csrc torch_butterfly | tar -x -C $P/butterfly
    (cd $P/butterfly && FORCE_CPU=1 python setup.py build_ext --inplace)   # its C++ kernels
    git -C FLY_CHECKOUT archive HEAD src/models/layers | tar -x -C $P/fly
    printf 'import logging\\nget_logger = logging.getLogger\\n' > $P/fly/src/utils/utils.py
    pip install --target $P/deps einops        # fly's only import beyond torch
    STRUCTLIN_PEERS=$P python benchmarks/run.py torch_layers

(the two-line ``src/utils/utils.py`` stands in for fly's, which imports PyTorch Lightning for
a logger). Both peers are loaded with the same weights as structlin's layer and their
outputs and input gradients checked against it (``rel.err``).

Threads: structlin's Numba kernels and PyTorch's OpenMP/BLAS each keep a thread pool, and on
a machine shared with other work two pools of spinning threads on few cores make both sides
slow and erratic. The committed results (``results/torch-layers-*.md``) were taken as a
user runs: a fresh process with no thread variables set, on an idle 2-core machine.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _harness import Case, rel_error

SEED = 20261203


def _peers_dir() -> Path | None:
    d = os.environ.get("STRUCTLIN_PEERS")
    return Path(d) if d and Path(d).is_dir() else None


def _add_path(p: Path) -> None:
    if p.is_dir() and str(p) not in sys.path:
        sys.path.insert(0, str(p))


def fly_monarch_linear() -> Any:
    """fly's ``MonarchLinear`` class from ``$STRUCTLIN_PEERS/fly``, or None."""
    d = _peers_dir()
    if d is None:
        return None
    _add_path(d / "deps")
    _add_path(d / "fly")
    try:
        import warnings

        with warnings.catch_warnings():  # its torch.cuda.amp decorators are deprecated
            warnings.simplefilter("ignore", FutureWarning)
            from src.models.layers.monarch_linear import MonarchLinear
    except Exception:  # any import failure means: peer not available
        return None
    return MonarchLinear


def torch_butterfly_module() -> Any:
    """torch_butterfly's ``Butterfly`` class from ``$STRUCTLIN_PEERS/butterfly``, or None."""
    d = _peers_dir()
    if d is None:
        return None
    _add_path(d / "butterfly")
    try:
        from torch_butterfly import Butterfly
    except Exception:  # e.g. its C++ library not built
        return None
    return Butterfly


def _step(module, x, g):
    """One forward + backward; returns the output and the input's gradient."""
    def run():
        for p in module.parameters():
            p.grad = None
        x.grad = None
        y = module(x)
        y.backward(g)
        return y.detach(), x.grad
    return run


def _agree(a, b) -> float:
    """The larger relative error of the outputs and of the input gradients."""
    return max(rel_error(a[0].numpy(), b[0].numpy()), rel_error(a[1].numpy(), b[1].numpy()))


def _dense_twin(layer, torch):
    dense = torch.nn.Linear(layer.in_features, layer.out_features, dtype=layer.bias.dtype)
    with torch.no_grad():
        dense.weight.copy_(layer.to_dense())
        dense.bias.copy_(layer.bias)
    return dense


def butterfly_cases(n: int, batch: int) -> Iterator[Case]:
    import torch

    from structlin.interop.torch.nn import ButterflyLinear

    torch.manual_seed(SEED)
    layer = ButterflyLinear(n, n, init="ortho")
    x = torch.randn(batch, n, requires_grad=True)
    g = torch.randn(batch, n)
    size = f"n={n} batch={batch}"
    work = 3 * 3.0 * n * math.log2(n) * batch
    Butterfly = torch_butterfly_module()
    if Butterfly is not None:
        peer = Butterfly(n, n, bias=True, init="identity")
        peer.load_state_dict(layer.state_dict())
        yield Case(
            name="ButterflyLinear fwd+bwd f32",
            size=size,
            fn=_step(layer, x, g),
            baseline=_step(peer, x, g),
            baseline_name="torch_butterfly Butterfly (its C++ CPU kernel)",
            work=work,
            unit="flop",
            dtype="float32",
            check=_agree,
            tol=1e-4,
        )
    yield Case(
        name="ButterflyLinear fwd+bwd f32 vs nn.Linear",
        size=size,
        fn=_step(layer, x, g),
        baseline=_step(_dense_twin(layer, torch), x, g),
        baseline_name="torch.nn.Linear with the same dense matrix",
        work=work,
        baseline_work=3 * 2.0 * n * n * batch,
        unit="flop",
        dtype="float32",
        check=_agree,
        tol=1e-4,
    )


def monarch_cases(n: int, nblocks: int, batch: int) -> Iterator[Case]:
    import torch

    from structlin.interop.torch.nn import MonarchLinear

    torch.manual_seed(SEED + 1)
    layer = MonarchLinear(n, n, nblocks=nblocks)
    x = torch.randn(batch, n, requires_grad=True)
    g = torch.randn(batch, n)
    size = f"n={n} blocks={nblocks} batch={batch}"
    work = 3 * 2.0 * (layer.blkdiag1.numel() + layer.blkdiag2.numel()) * batch
    FlyMonarch = fly_monarch_linear()
    if FlyMonarch is not None:
        peer = FlyMonarch(n, n, nblocks=nblocks)
        peer.load_state_dict(layer.state_dict())
        yield Case(
            name="MonarchLinear fwd+bwd f32",
            size=size,
            fn=_step(layer, x, g),
            baseline=_step(peer, x, g),
            baseline_name="fly MonarchLinear (torch.bmm)",
            work=work,
            unit="flop",
            dtype="float32",
            check=_agree,
            tol=1e-4,
        )
    yield Case(
        name="MonarchLinear fwd+bwd f32 vs nn.Linear",
        size=size,
        fn=_step(layer, x, g),
        baseline=_step(_dense_twin(layer, torch), x, g),
        baseline_name="torch.nn.Linear with the same dense matrix",
        work=work,
        baseline_work=3 * 2.0 * n * n * batch,
        unit="flop",
        dtype="float32",
        check=_agree,
        tol=1e-4,
    )


def cases(quick: bool) -> Iterator[Case]:
    """The layer cases (none without PyTorch): n = 1024, batch 256 (quick: 256, 64)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    n, batch = (256, 64) if quick else (1024, 256)
    yield from butterfly_cases(n, batch)
    yield from monarch_cases(n, math.isqrt(n), batch)
