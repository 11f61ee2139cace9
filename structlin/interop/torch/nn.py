"""PyTorch layers on structlin's structured products: drop-ins for ``torch.nn.Linear``.

Each layer takes inputs of shape ``(..., in_features)`` and returns ``(..., out_features)``,
like :class:`torch.nn.Linear`, for any sizes: the structured matrix has the family's next
admissible size ``(out_ext, in_ext)`` (stated in each class's docstring), the input is
zero-padded from ``in_features`` to ``in_ext`` and the output truncated from ``out_ext`` to
``out_features``, so the layer computes ``x @ W.T + bias`` with ``W = to_dense()``, the
``(out_features, in_features)`` top-left corner of the structured matrix.

Every forward calls the :mod:`structlin.interop.torch` function of the family (the fast
kernels and their VJPs; no NumPy in the layer itself), so a layer runs where those functions
do (CPU and CUDA tensors) and compiles where they do. The layers share:

- ``reset_parameters()`` (the ``init`` given at construction; the bias, when present, is
  initialised as :class:`torch.nn.Linear`'s: uniform in ``+-1/sqrt(in_features)``);
- ``to_dense()``: the ``(out_features, in_features)`` matrix, computed by the family's dense
  reference (``structlin.<family>_to_dense``, independent of the fast product; detached);
- the classmethod ``from_dense(linear, **options)``: the layer closest to a trained
  ``nn.Linear`` by the family's projection or fitting routine, bias copied;
- float32, float64, complex64 and complex128 parameters (``dtype``); others raise
  ``TypeError``. A shape that does not fit the layer raises ``ValueError`` naming the
  argument, at trace time under :func:`torch.compile` too.

Loading the peers' weights: :class:`MonarchLinear` has the parameter names and shapes of
HazyResearch/fly's ``MonarchLinear`` (``blkdiag1``, ``blkdiag2``, ``bias``) and the same
product, so ``load_state_dict`` takes fly's state dicts unchanged
(:meth:`MonarchLinear.from_fly` builds the layer from a fly ``MonarchLinear`` or
``BlockdiagLinear``); :class:`ButterflyLinear` has those of torch_butterfly's ``Butterfly``
(``twiddle`` of shape ``(nstacks, nblocks, log_n, n/2, 2, 2)``, ``bias``)
(:meth:`ButterflyLinear.from_torch_butterfly`).

Examples
--------
>>> import torch
>>> from structlin.interop.torch.nn import MonarchLinear
>>> layer = MonarchLinear(100, 60, nblocks=4, dtype=torch.float64)
>>> layer
MonarchLinear(in_features=100, out_features=60, bias=True, nblocks=4, init='uniform', ...)
>>> x = torch.randn(8, 100, dtype=torch.float64)
>>> y = layer(x)
>>> y.shape
torch.Size([8, 60])
>>> bool(torch.allclose(y, x @ layer.to_dense().T + layer.bias))
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from structlin._validate import check_bool, check_choice, check_int
from structlin.interop import torch as _st

__all__ = [
    "ButterflyLinear",
    "KaleidoscopeLinear",
    "MonarchLinear",
    "PixelflyLinear",
]

_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


# --------------------------------------------------------------------------- shared helpers


def _check_dtype(dtype: Any) -> torch.dtype:
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if dtype not in _DTYPES:
        raise TypeError(
            "dtype must be torch.float32, torch.float64, torch.complex64 or torch.complex128 "
            f"(the dtypes of structlin's kernels), got {dtype}"
        )
    return dtype


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().resolve_conj().numpy()


def _dense_weight(linear: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The ``(out, in)`` weight and the bias (or None) of an ``nn.Linear``-like module."""
    weight = getattr(linear, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise TypeError(
            "linear must be a torch.nn.Linear (a module with a 2-d weight of shape "
            f"(out_features, in_features)), got {type(linear).__name__}"
        )
    bias = getattr(linear, "bias", None)
    return weight.detach(), (bias.detach() if isinstance(bias, torch.Tensor) else None)


def _padded(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``a`` zero-padded at the bottom and right to ``shape``."""
    out = np.zeros(shape, dtype=a.dtype)
    out[: a.shape[0], : a.shape[1]] = a
    return out


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)


@torch.no_grad()
def _fill_uniform_(t: torch.Tensor, bound: float) -> None:
    """Entries uniform in ``[-bound, bound]`` (complex: real and imaginary parts so, over
    sqrt(2), keeping the variance)."""
    if t.is_complex():
        re, im = (torch.empty(t.shape, dtype=_real_dtype(t.dtype), device=t.device)
                  .uniform_(-bound, bound) for _ in range(2))
        t.copy_(torch.complex(re, im) / math.sqrt(2.0))
    else:
        t.uniform_(-bound, bound)


@torch.no_grad()
def _fill_normal_(t: torch.Tensor, std: float) -> None:
    """Entries with ``E|t|^2 = std**2`` (complex normal when complex)."""
    t.copy_(torch.randn(t.shape, dtype=t.dtype, device=t.device) * std)


@torch.no_grad()
def _fill_orthogonal_(t: torch.Tensor) -> None:
    """Each trailing ``(a, b)`` matrix Haar-distributed with orthonormal columns (``a >= b``)
    or rows (``a < b``), unitary when complex: QR of a Gaussian matrix with the signs (phases)
    of R's diagonal moved into Q."""
    a, b = t.shape[-2:]
    z = torch.randn(t.shape, dtype=t.dtype, device=t.device)
    if a < b:
        z = z.transpose(-1, -2)
    q, r = torch.linalg.qr(z)
    d = torch.diagonal(r, dim1=-2, dim2=-1)
    q = q * (d / d.abs().clamp_min(torch.finfo(_real_dtype(t.dtype)).tiny)).unsqueeze(-2)
    t.copy_(q.transpose(-1, -2) if a < b else q)


@torch.no_grad()
def _fill_identity_blocks_(t: torch.Tensor) -> None:
    """Every trailing 2x2 block the identity."""
    t.zero_()
    t[..., 0, 0] = 1
    t[..., 1, 1] = 1


class _StructuredLinear(nn.Module):
    """What every layer shares: sizes, bias, the padding of the input and the truncation of
    the output, the input check, ``to_dense`` from the structured reference."""

    in_features: int
    out_features: int
    in_ext: int
    out_ext: int

    def __init__(self, in_features: int, out_features: int, bias: bool, device: Any,
                 dtype: Any) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", minimum=1)
        self.out_features = check_int(out_features, "out_features", minimum=1)
        check_bool(bias, "bias")
        self._factory = {"device": device, "dtype": _check_dtype(dtype)}
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **self._factory))
        else:
            self.register_parameter("bias", None)

    def _reset_bias(self) -> None:
        if self.bias is not None:
            _fill_uniform_(self.bias, 1.0 / math.sqrt(self.in_features))

    def _check_input(self, x: Any) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"input must have shape (..., in_features) = (..., {self.in_features}) for "
                f"{type(self).__name__}, got {tuple(x.shape)}"
            )

    def _structured(self, x: torch.Tensor) -> torch.Tensor:
        """The structured product of the ``(..., in_ext)`` padded input."""
        raise NotImplementedError

    def _structured_dense(self) -> np.ndarray:
        """The ``(out_ext, in_ext)`` structured matrix by the family's dense reference."""
        raise NotImplementedError

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input(input)
        x = input
        if self.in_ext > self.in_features:
            x = F.pad(x, (0, self.in_ext - self.in_features))
        y = self._structured(x)
        if self.out_ext > self.out_features:
            y = y[..., : self.out_features]
        if self.bias is not None:
            y = y + self.bias
        return y

    def to_dense(self) -> torch.Tensor:
        """Return the ``(out_features, in_features)`` weight matrix ``W``: the layer computes
        ``x @ W.T + bias``.

        Computed by the family's dense reference function (not by the fast product), as a
        detached tensor of the parameters' dtype and device: for inspection and tests, not for
        training.
        """
        ref = next(self.parameters())
        dense = self._structured_dense()[: self.out_features, : self.in_features]
        return torch.from_numpy(np.ascontiguousarray(dense)).to(device=ref.device)

    def _common_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

    def _copy_bias(self, bias: torch.Tensor | None) -> None:
        if self.bias is not None and bias is not None:
            with torch.no_grad():
                self.bias.copy_(bias.to(self.bias.dtype))
        elif self.bias is not None:
            with torch.no_grad():
                self.bias.zero_()


# --------------------------------------------------------------------------- Monarch


class MonarchLinear(_StructuredLinear):
    """A linear layer whose weight is a Monarch matrix, on
    :func:`structlin.interop.torch.monarch_multiply`.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output (any positive integers).
    bias : bool, default True
        Whether to add a learned bias of shape ``(out_features,)``.
    nblocks : int, default 4
        Number of blocks of each block-diagonal factor.
    init : {"uniform", "ortho"}, default "uniform"
        ``"uniform"``: every block uniform in ``+-1/sqrt(fan_in)``, ``fan_in`` its number of
        columns (fly's initialisation, PyTorch's Kaiming-uniform per factor). ``"ortho"``:
        every block with Haar-random orthonormal columns or rows, so that the Monarch matrix
        of square blocks is orthogonal (unitary).
    precision : {"highest", "tf32", "bf16"}, default "highest"
        Passed to :func:`structlin.interop.torch.monarch_multiply` (tensor cores for float32
        CUDA tensors; no effect on the CPU).
    device, dtype
        Of the parameters (float32, float64, complex64 or complex128; default
        ``torch.get_default_dtype()``).

    Attributes
    ----------
    blkdiag1 : torch.nn.Parameter, shape (nblocks, q, in_blk)
    blkdiag2 : torch.nn.Parameter, shape (nblocks, out_blk, r)
        The factors ``w1 = blkdiag1``, ``w2 = blkdiag2`` of :func:`structlin.monarch_multiply`
        (``x`` viewed as ``(nblocks, in_blk)``, multiplied block by block by ``w1``, the
        ``nblocks*q`` results viewed as ``(r, nblocks)`` and transposed, multiplied by ``w2``
        and the ``(out_blk, nblocks)`` result flattened). With ``in_blk =
        ceil(in_features / nblocks)`` and ``out_blk = ceil(out_features / nblocks)``: ``q = r =
        in_blk`` when ``in_ext < out_ext``, else ``q = r = out_blk``. These are the names,
        shapes and product of HazyResearch/fly's ``MonarchLinear``, whose state dicts
        ``load_state_dict`` takes unchanged.
    bias : torch.nn.Parameter or None, shape (out_features,)

    Notes
    -----
    Structured size: ``in_ext = nblocks * ceil(in_features / nblocks)`` and ``out_ext =
    nblocks * ceil(out_features / nblocks)`` (fly's rule); the input is zero-padded to
    ``in_ext`` and the output truncated to ``out_features``. Parameters ``nblocks (q in_blk +
    out_blk r)`` instead of ``in_features * out_features``; with ``nblocks = sqrt(n)`` on a
    square ``n x n`` layer, ``2 n^1.5`` (Dao et al. 2022, arXiv:2204.00595).

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch.nn import MonarchLinear
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> dense = torch.nn.Linear(64, 64, dtype=torch.float64)
    >>> layer = MonarchLinear.from_dense(dense, nblocks=8)
    >>> layer.blkdiag1.shape, layer.blkdiag2.shape
    (torch.Size([8, 8, 8]), torch.Size([8, 8, 8]))
    >>> err = torch.linalg.norm(layer.to_dense() - dense.weight) / torch.linalg.norm(dense.weight)
    >>> bool(0 < err < 1)
    True
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        nblocks: int = 4,
        init: str = "uniform",
        precision: str = "highest",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(in_features, out_features, bias, device, dtype)
        self.nblocks = check_int(nblocks, "nblocks", minimum=1)
        self.init = check_choice(init, "init", ("uniform", "ortho"))
        self.precision = check_choice(precision, "precision", ("highest", "tf32", "bf16"))
        in_blk = -(-self.in_features // self.nblocks)
        out_blk = -(-self.out_features // self.nblocks)
        self.in_ext = in_blk * self.nblocks
        self.out_ext = out_blk * self.nblocks
        mid = in_blk if self.in_ext < self.out_ext else out_blk
        self.blkdiag1 = nn.Parameter(torch.empty(self.nblocks, mid, in_blk, **self._factory))
        self.blkdiag2 = nn.Parameter(torch.empty(self.nblocks, out_blk, mid, **self._factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise the factors as ``init`` says and the bias as ``nn.Linear``'s."""
        for w in (self.blkdiag1, self.blkdiag2):
            if self.init == "uniform":
                _fill_uniform_(w, 1.0 / math.sqrt(w.shape[-1]))
            else:
                _fill_orthogonal_(w)
        self._reset_bias()

    def _structured(self, x: torch.Tensor) -> torch.Tensor:
        return _st.monarch_multiply(self.blkdiag1, self.blkdiag2, x, precision=self.precision)

    def _structured_dense(self) -> np.ndarray:
        from structlin import monarch_to_dense

        return monarch_to_dense(_to_numpy(self.blkdiag1), _to_numpy(self.blkdiag2))

    def extra_repr(self) -> str:
        return (f"{self._common_repr()}, nblocks={self.nblocks}, init={self.init!r}, "
                f"precision={self.precision!r}")

    @classmethod
    def from_dense(cls, linear: nn.Module, *, nblocks: int = 4, precision: str = "highest",
                   tol: float = 1e-10, max_iter: int = 200) -> MonarchLinear:
        """Return the Monarch layer closest to ``linear``'s weight in the Frobenius norm.

        Parameters
        ----------
        linear : torch.nn.Linear
            The dense layer (any module with a 2-d ``weight`` and an optional ``bias``).
        nblocks, precision
            As for :class:`MonarchLinear`.
        tol, max_iter
            Passed to :func:`structlin.monarch_project`.

        Returns
        -------
        MonarchLinear
            Of ``linear``'s sizes, dtype and device, the bias copied; its factors are
            :func:`structlin.monarch_project` of the weight zero-padded to ``(out_ext,
            in_ext)``: the optimal Monarch matrix (Dao et al. 2022, Theorem 1), exactly so
            when the sizes are multiples of ``nblocks`` (else optimal for the padded matrix,
            whose extra rows and columns the layer never uses); a Monarch weight is recovered
            to rounding.
        """
        from structlin import monarch_project

        weight, bias = _dense_weight(linear)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, bias is not None, nblocks=nblocks, precision=precision,
                    device=weight.device, dtype=weight.dtype)
        A = _padded(_to_numpy(weight), (layer.out_ext, layer.in_ext))
        w1, w2 = monarch_project(A, tuple(layer.blkdiag1.shape), tuple(layer.blkdiag2.shape),
                                 tol=tol, max_iter=max_iter)
        with torch.no_grad():
            layer.blkdiag1.copy_(torch.from_numpy(np.ascontiguousarray(w1)))
            layer.blkdiag2.copy_(torch.from_numpy(np.ascontiguousarray(w2)))
        layer._copy_bias(bias)
        return layer

    @classmethod
    def from_fly(cls, module: nn.Module, *, precision: str = "highest") -> MonarchLinear:
        """Return the layer with the weights of a HazyResearch/fly ``MonarchLinear`` or
        ``BlockdiagLinear`` ``module``.

        Parameters
        ----------
        module : fly's ``MonarchLinear`` or ``BlockdiagLinear``
            Or any module with ``in_features``, ``out_features``, ``bias`` (possibly None)
            and either ``blkdiag1`` and ``blkdiag2`` (``MonarchLinear``) or a 3-d ``weight``
            of shape ``(nblocks, out_blk, in_blk)`` (``BlockdiagLinear`` without
            ``shuffle``) in fly's layout.
        precision
            As for :class:`MonarchLinear`.

        Returns
        -------
        MonarchLinear
            On ``module``'s device and dtype, computing the same function. fly's
            ``MonarchLinear`` product is the one of :func:`structlin.monarch_multiply`, with
            the same padding of the input and truncation of the output, so its tensors are
            copied unchanged (``load_state_dict(module.state_dict())`` on a layer of the same
            sizes does the same). A ``BlockdiagLinear`` weight becomes ``blkdiag1`` unchanged,
            with identity blocks as ``blkdiag2``: the Monarch product with identity second
            factor is exactly the block-diagonal one.

        Raises
        ------
        TypeError
            If ``module`` lacks these attributes, or is a ``BlockdiagLinear`` with
            ``shuffle=True``.
        ValueError
            If the shapes of the tensors are not the ones fly's rule gives for its sizes and
            ``nblocks = blkdiag1.shape[0]`` (or ``weight.shape[0]``), or if a
            ``BlockdiagLinear`` has ``in_ext < out_ext`` (a block-diagonal matrix with more
            block rows than columns is not a Monarch matrix of that layout: use
            :meth:`from_dense` on its dense weight).
        """
        sizes = ("in_features", "out_features")
        blockdiag = (not hasattr(module, "blkdiag1") and isinstance(
            getattr(module, "weight", None), torch.Tensor) and module.weight.ndim == 3)
        names = sizes + (("weight",) if blockdiag else ("blkdiag1", "blkdiag2"))
        missing = [n for n in names if not hasattr(module, n)]
        if missing:
            raise TypeError(
                "module must be a fly MonarchLinear (with in_features, out_features, blkdiag1, "
                "blkdiag2 and bias) or BlockdiagLinear (with a 3-d weight), got "
                f"{type(module).__name__} without {', '.join(missing)}"
            )
        if blockdiag and getattr(module, "shuffle", False):
            raise TypeError("module is a BlockdiagLinear with shuffle=True, which is not "
                            "supported (its channel shuffle permutes the input first)")
        w1 = module.weight if blockdiag else module.blkdiag1
        bias = getattr(module, "bias", None)
        if w1.ndim != 3:
            raise ValueError(f"module.blkdiag1 must be 3-d, got shape {tuple(w1.shape)}")
        layer = cls(int(module.in_features), int(module.out_features), bias is not None,
                    nblocks=int(w1.shape[0]), precision=precision, device=w1.device,
                    dtype=w1.dtype)
        if blockdiag and layer.in_ext < layer.out_ext:
            raise ValueError(
                f"module is a BlockdiagLinear with in_features={layer.in_features} < "
                f"out_features={layer.out_features} (padded {layer.in_ext} < {layer.out_ext}): "
                "not a MonarchLinear of fly's layout; use MonarchLinear.from_dense"
            )
        if blockdiag:
            w2 = torch.eye(layer.blkdiag2.shape[-1], dtype=w1.dtype, device=w1.device).expand(
                layer.blkdiag2.shape)
            pairs = (("weight", w1, layer.blkdiag1),)
        else:
            w2 = module.blkdiag2
            pairs = (("blkdiag1", w1, layer.blkdiag1), ("blkdiag2", w2, layer.blkdiag2))
        for name, got, want in pairs:
            if tuple(got.shape) != tuple(want.shape):
                raise ValueError(
                    f"module.{name} has shape {tuple(got.shape)}; fly's "
                    f"{'BlockdiagLinear' if blockdiag else 'MonarchLinear'} of "
                    f"in_features={layer.in_features}, out_features={layer.out_features}, "
                    f"nblocks={layer.nblocks} has {tuple(want.shape)}"
                )
        with torch.no_grad():
            layer.blkdiag1.copy_(w1)
            layer.blkdiag2.copy_(w2)
        layer._copy_bias(bias.detach() if bias is not None else None)
        return layer


# --------------------------------------------------------------------------- butterfly


class ButterflyLinear(_StructuredLinear):
    """A linear layer whose weight is a product of butterflies, on
    :func:`structlin.interop.torch.butterfly_multiply`.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output (any positive integers).
    bias : bool, default True
        Whether to add a learned bias of shape ``(out_features,)``.
    increasing_stride : bool, default True
        The stride order of the first butterfly (strides ``1, 2, ..., n/2`` when True); the
        following ones alternate, as in torch_butterfly.
    nblocks : int, default 1
        The number of butterflies in each product (``B_{nblocks-1} ... B_1 B_0``).
    init : {"randn", "ortho", "identity"}, default "randn"
        ``"randn"``: independent entries of variance 1/2, so that each factor keeps the
        expected squared norm of a vector; ``"ortho"``: Haar-random orthogonal (unitary) 2x2
        blocks, an orthogonal matrix; ``"identity"``: the identity (torch_butterfly's
        initialisations of the same names).
    device, dtype
        Of the parameters (float32, float64, complex64 or complex128; default
        ``torch.get_default_dtype()``).

    Attributes
    ----------
    twiddle : torch.nn.Parameter, shape (nstacks, nblocks, log_n, n//2, 2, 2)
        torch_butterfly's ``Butterfly`` layout, whose state dicts ``load_state_dict`` takes
        unchanged: ``twiddle[s, b, i]`` are the 2x2 blocks of the ``i``-th factor *applied*
        by butterfly ``b`` of stack ``s``, of stride ``2**i`` when that butterfly has
        increasing strides and ``2**(log_n - 1 - i)`` when it has decreasing ones; block ``j =
        a*stride + c`` maps ``(x[t], x[t + stride])``, ``t = 2*a*stride + c``, as in
        :func:`structlin.butterfly_multiply` (whose twiddle, indexed by stride, is
        ``twiddle[s, b]`` or ``twiddle[s, b].flip(0)``).
    bias : torch.nn.Parameter or None, shape (out_features,)

    Notes
    -----
    Structured size: ``n = 2**ceil(log2(in_features))``, ``nstacks = ceil(out_features / n)``:
    ``in_ext = n``, ``out_ext = nstacks * n``; each stack is an ``n x n`` product of
    butterflies applied to the zero-padded input, the stacks' outputs are concatenated and
    truncated to ``out_features`` (torch_butterfly's rule). ``3 n log2(n)`` real flops and
    ``2 n log2(n)`` parameters per butterfly (Dao et al. 2019, arXiv:1903.05895).

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch.nn import ButterflyLinear
    >>> layer = ButterflyLinear(100, 300, init="ortho", dtype=torch.float64)
    >>> layer.twiddle.shape       # n = 128, 3 stacks
    torch.Size([3, 1, 7, 64, 2, 2])
    >>> layer(torch.randn(5, 100, dtype=torch.float64)).shape
    torch.Size([5, 300])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        increasing_stride: bool = True,
        nblocks: int = 1,
        init: str = "randn",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(in_features, out_features, bias, device, dtype)
        self.increasing_stride = check_bool(increasing_stride, "increasing_stride")
        self.nblocks = check_int(nblocks, "nblocks", minimum=1, maximum=1 << 12)
        self.init = check_choice(init, "init", ("randn", "ortho", "identity"))
        self.log_n = (self.in_features - 1).bit_length()
        self.n = 1 << self.log_n
        self.nstacks = -(-self.out_features // self.n)
        self.in_ext = self.n
        self.out_ext = self.nstacks * self.n
        self.twiddle = nn.Parameter(torch.empty(
            self.nstacks, self.nblocks, self.log_n, self.n // 2, 2, 2, **self._factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise the twiddle as ``init`` says and the bias as ``nn.Linear``'s."""
        if self.init == "randn":
            _fill_normal_(self.twiddle, math.sqrt(0.5))
        elif self.init == "ortho":
            _fill_orthogonal_(self.twiddle)
        else:
            _fill_identity_blocks_(self.twiddle)
        self._reset_bias()

    def _increasing(self, b: int) -> bool:
        return self.increasing_stride != (b % 2 == 1)

    def _stride_indexed(self, tw: torch.Tensor, increasing: bool) -> torch.Tensor:
        """torch_butterfly's application-ordered factors as structlin's stride-indexed ones."""
        return tw if increasing else tw.flip(0)

    def _structured(self, x: torch.Tensor) -> torch.Tensor:
        if self.log_n == 0:  # n = 1: every butterfly is the empty product
            return x.expand(*x.shape[:-1], self.nstacks).to(torch.result_type(x, self.twiddle))
        outs = []
        for s in range(self.nstacks):
            y = x
            for b in range(self.nblocks):
                inc = self._increasing(b)
                y = _st.butterfly_multiply(self._stride_indexed(self.twiddle[s, b], inc), y,
                                           increasing_stride=inc)
            outs.append(y)
        return outs[0] if self.nstacks == 1 else torch.cat(outs, dim=-1)

    def _structured_dense(self) -> np.ndarray:
        from structlin import butterfly_to_dense

        tw = _to_numpy(self.twiddle)
        dtype = np.result_type(tw.dtype, np.float32)
        stacks = []
        for s in range(self.nstacks):
            M = np.eye(self.n, dtype=dtype)
            for b in range(self.nblocks):
                inc = self._increasing(b)
                t = tw[s, b] if inc else tw[s, b][::-1]
                if self.log_n:
                    M = butterfly_to_dense(np.ascontiguousarray(t), increasing_stride=inc) @ M
            stacks.append(M)
        return np.concatenate(stacks, axis=0)

    def extra_repr(self) -> str:
        return (f"{self._common_repr()}, increasing_stride={self.increasing_stride}, "
                f"nblocks={self.nblocks}, init={self.init!r}")

    @classmethod
    def from_dense(cls, linear: nn.Module, *, increasing_stride: bool = True,
                   nblocks: int = 1) -> ButterflyLinear:
        """Return a butterfly layer approximating ``linear``'s weight.

        Parameters
        ----------
        linear : torch.nn.Linear
            The dense layer (any module with a 2-d ``weight`` and an optional ``bias``).
        increasing_stride, nblocks
            As for :class:`ButterflyLinear`.

        Returns
        -------
        ButterflyLinear
            Of ``linear``'s sizes, dtype and device, the bias copied. The weight is
            zero-padded to ``(out_ext, in_ext)`` and each stack's ``n x n`` slice factorized
            by :func:`structlin.butterfly_factorize` (the hierarchical algorithm, ``O(n^2)``;
            exact when the slice is a butterfly of that stride order) into the first
            butterfly of the stack; the others (``nblocks > 1``) are the identity, so the
            error is the single butterfly's, a starting point for fine-tuning.
        """
        from structlin import butterfly_factorize

        weight, bias = _dense_weight(linear)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, bias is not None, increasing_stride=increasing_stride,
                    nblocks=nblocks, init="identity", device=weight.device, dtype=weight.dtype)
        A = _padded(_to_numpy(weight), (layer.out_ext, layer.in_ext))
        if layer.log_n:
            with torch.no_grad():
                for s in range(layer.nstacks):
                    tw = butterfly_factorize(A[s * layer.n:(s + 1) * layer.n],
                                             increasing_stride=layer.increasing_stride).twiddle
                    tw = np.ascontiguousarray(tw if layer.increasing_stride else tw[::-1])
                    layer.twiddle[s, 0].copy_(torch.from_numpy(tw))
        else:
            with torch.no_grad():
                layer.twiddle.zero_()  # (0-size) nothing to fit; n = 1 is the 1 x 1 identity
        layer._copy_bias(bias)
        return layer

    @classmethod
    def from_torch_butterfly(cls, module: nn.Module) -> ButterflyLinear:
        """Return the layer with the weights of torch_butterfly's ``Butterfly`` ``module``.

        Parameters
        ----------
        module : torch_butterfly.Butterfly
            Or any module with ``in_size``, ``out_size``, ``increasing_stride``, ``twiddle``
            of shape ``(nstacks, nblocks, log_n, n//2, 2, 2)`` and ``bias`` (possibly None).

        Returns
        -------
        ButterflyLinear
            On ``module``'s device and dtype (complex for a complex ``Butterfly``), computing
            ``module(x)`` (its forward without ``transpose``/``conjugate``/``subtwiddle``).
            ``load_state_dict(module.state_dict())`` on a layer of the same sizes,
            ``increasing_stride`` and ``nblocks`` does the same.

        Raises
        ------
        TypeError
            If ``module`` lacks one of these attributes.
        ValueError
            If ``twiddle``'s shape does not fit the sizes.
        """
        names = ("in_size", "out_size", "increasing_stride", "twiddle")
        missing = [n for n in names if not hasattr(module, n)]
        if missing:
            raise TypeError(
                f"module must be a torch_butterfly Butterfly (with {', '.join(names)} and "
                f"bias), got {type(module).__name__} without {', '.join(missing)}"
            )
        tw = module.twiddle
        bias = getattr(module, "bias", None)
        if tw.ndim != 6:
            raise ValueError(
                "module.twiddle must have shape (nstacks, nblocks, log_n, n//2, 2, 2), got "
                f"{tuple(tw.shape)}"
            )
        layer = cls(int(module.in_size), int(module.out_size), bias is not None,
                    increasing_stride=bool(module.increasing_stride), nblocks=int(tw.shape[1]),
                    init="identity", device=tw.device, dtype=tw.dtype)
        if tuple(tw.shape) != tuple(layer.twiddle.shape):
            raise ValueError(
                f"module.twiddle has shape {tuple(tw.shape)}; a Butterfly of in_size="
                f"{layer.in_features}, out_size={layer.out_features}, nblocks={layer.nblocks} "
                f"has {tuple(layer.twiddle.shape)}"
            )
        with torch.no_grad():
            layer.twiddle.copy_(tw)
        layer._copy_bias(bias.detach() if bias is not None else None)
        return layer


# --------------------------------------------------------------------------- Pixelfly


def _pixelfly_sizes(in_features: int, out_features: int, block: int) -> tuple[int, int]:
    """The smallest ``(out_ext, in_ext) >= (out, in)`` that a flat block butterfly mask of
    ``block`` fits: multiples of ``block`` whose block counts have a power-of-two minimum
    that divides the maximum."""
    nbo, nbi = -(-out_features // block), -(-in_features // block)
    m = 1 << (min(nbo, nbi) - 1).bit_length()
    # the smaller count rounds up to m itself, the larger to a multiple of m
    nbo, nbi = -(-nbo // m) * m, -(-nbi // m) * m
    return nbo * block, nbi * block


class PixelflyLinear(_StructuredLinear):
    """A linear layer whose weight is a Pixelfly matrix (block-sparse on a flat block
    butterfly mask plus low rank), on :func:`structlin.interop.torch.pixelfly_multiply`.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output (any positive integers).
    bias : bool, default True
        Whether to add a learned bias of shape ``(out_features,)``.
    block_size : int, default 32
        The side of the sparse part's square blocks.
    n_factors : int, optional
        Butterfly factors whose supports make the mask
        (:func:`structlin.flat_block_butterfly_mask`; default all of them).
    rank : int, default 4
        Rank of the low-rank term ``U @ V.T`` (0: none).
    init : {"uniform"}, default "uniform"
        Blocks uniform in ``+-1/sqrt(row_nnz)``, ``row_nnz`` the stored entries of a row of
        the sparse part (as ``nn.Linear``'s bound over its fan-in); ``U`` uniform in
        ``+-1/(2 sqrt(rank))`` and ``V`` in ``+-1/sqrt(in_ext)``, so that the low-rank term
        adds about a twelfth of the sparse part's output variance.
    device, dtype
        Of the parameters.

    Attributes
    ----------
    blocks : torch.nn.Parameter, shape (nnz_blocks, block_size, block_size)
        The nonzero blocks, in row-major order of ``mask``
        (:func:`structlin.pixelfly_multiply`'s convention).
    U : torch.nn.Parameter, shape (out_ext, rank)
    V : torch.nn.Parameter, shape (in_ext, rank)
    mask : torch.Tensor (buffer) of bool, shape (out_ext // block_size, in_ext // block_size)
    bias : torch.nn.Parameter or None, shape (out_features,)

    Notes
    -----
    Structured size: ``in_ext`` and ``out_ext`` the smallest multiples of ``block_size`` at
    least ``in_features`` and ``out_features`` whose block counts have a power-of-two minimum
    ``m`` dividing the maximum (the mask's requirement). Cost per vector ``2 nnz_blocks
    block_size^2 + 2 rank (in_ext + out_ext)`` flops (Chen et al. 2022, arXiv:2112.00029).

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch.nn import PixelflyLinear
    >>> layer = PixelflyLinear(100, 64, block_size=16, rank=2, dtype=torch.float64)
    >>> layer.mask.shape, layer.blocks.shape     # 7 block columns round up to 8
    (torch.Size([4, 8]), torch.Size([24, 16, 16]))
    >>> layer(torch.randn(3, 100, dtype=torch.float64)).shape
    torch.Size([3, 64])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        block_size: int = 32,
        n_factors: int | None = None,
        rank: int = 4,
        init: str = "uniform",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        from structlin import flat_block_butterfly_mask

        super().__init__(in_features, out_features, bias, device, dtype)
        self.block_size = check_int(block_size, "block_size", minimum=1, maximum=1 << 16)
        self.init = check_choice(init, "init", ("uniform",))
        self.out_ext, self.in_ext = _pixelfly_sizes(self.in_features, self.out_features,
                                                    self.block_size)
        self.rank = check_int(rank, "rank", minimum=0, maximum=min(self.in_ext, self.out_ext))
        mask = flat_block_butterfly_mask(self.out_ext, self.in_ext, self.block_size, n_factors)
        self.n_factors = n_factors
        self.register_buffer("mask", torch.as_tensor(mask, device=device))
        nnz = int(mask.sum())
        self._row_nnz = int(mask.sum(axis=1).max()) * self.block_size
        bs = self.block_size
        self.blocks = nn.Parameter(torch.empty(nnz, bs, bs, **self._factory))
        self.U = nn.Parameter(torch.empty(self.out_ext, self.rank, **self._factory))
        self.V = nn.Parameter(torch.empty(self.in_ext, self.rank, **self._factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise the blocks and the low-rank factors as ``init`` says, the bias as
        ``nn.Linear``'s."""
        _fill_uniform_(self.blocks, 1.0 / math.sqrt(self._row_nnz))
        if self.rank:
            _fill_uniform_(self.U, 0.5 / math.sqrt(self.rank))
            _fill_uniform_(self.V, 1.0 / math.sqrt(self.in_ext))
        self._reset_bias()

    def _structured(self, x: torch.Tensor) -> torch.Tensor:
        return _st.pixelfly_multiply(self.blocks, self.mask, self.U, self.V, x)

    def _structured_dense(self) -> np.ndarray:
        from structlin import pixelfly_to_dense

        return pixelfly_to_dense(_to_numpy(self.blocks), _to_numpy(self.mask),
                                 _to_numpy(self.U), _to_numpy(self.V))

    def extra_repr(self) -> str:
        return (f"{self._common_repr()}, block_size={self.block_size}, "
                f"n_factors={self.n_factors}, rank={self.rank}, init={self.init!r}")

    @classmethod
    def from_dense(cls, linear: nn.Module, *, block_size: int = 32, n_factors: int | None = None,
                   rank: int = 4, max_iter: int = 100, tol: float = 1e-6) -> PixelflyLinear:
        """Return a Pixelfly layer approximating ``linear``'s weight.

        Parameters
        ----------
        linear : torch.nn.Linear
            The dense layer (any module with a 2-d ``weight`` and an optional ``bias``).
        block_size, n_factors, rank
            As for :class:`PixelflyLinear`.
        max_iter, tol
            Passed to :func:`structlin.pixelfly_project`.

        Returns
        -------
        PixelflyLinear
            Of ``linear``'s sizes, dtype and device, the bias copied; its parameters are
            :func:`structlin.pixelfly_project` of the weight zero-padded to ``(out_ext,
            in_ext)``: alternating projections (the sparse part exactly on the mask, the
            low-rank part by truncated SVD), whose error never increases; with ``rank = 0``
            the exact projection onto the mask.
        """
        from structlin import pixelfly_project

        weight, bias = _dense_weight(linear)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, bias is not None, block_size=block_size, n_factors=n_factors,
                    rank=rank, device=weight.device, dtype=weight.dtype)
        A = _padded(_to_numpy(weight), (layer.out_ext, layer.in_ext))
        blocks, U, V, _errors = pixelfly_project(A, _to_numpy(layer.mask), layer.rank,
                                                 max_iter=max_iter, tol=tol)
        with torch.no_grad():
            for p, a in ((layer.blocks, blocks), (layer.U, U), (layer.V, V)):
                p.copy_(torch.from_numpy(np.ascontiguousarray(a)))
        layer._copy_bias(bias)
        return layer


# --------------------------------------------------------------------------- Kaleidoscope


class KaleidoscopeLinear(_StructuredLinear):
    """A linear layer whose weight is a Kaleidoscope matrix (K-matrix), on
    :func:`structlin.interop.torch.kaleidoscope_multiply`.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output (any positive integers).
    bias : bool, default True
        Whether to add a learned bias of shape ``(out_features,)``.
    width : int, default 1
        The number of ``B B^H`` pairs.
    init : {"randn", "ortho", "identity"}, default "randn"
        Of each of the ``2 width`` butterflies, as for :class:`ButterflyLinear`:
        ``"randn"`` keeps the expected squared norm of a vector, ``"ortho"`` makes the
        K-matrix orthogonal (unitary), ``"identity"`` the identity.
    device, dtype
        Of the parameters.

    Attributes
    ----------
    twiddle : torch.nn.Parameter, shape (width, 2, log_n, n//2, 2, 2)
        In the convention of :func:`structlin.kaleidoscope_multiply`: ``K = B(tw[0, 0])
        B(tw[0, 1])^H ... B(tw[w-1, 0]) B(tw[w-1, 1])^H``.
    bias : torch.nn.Parameter or None, shape (out_features,)

    Notes
    -----
    Structured size: ``n = 2**ceil(log2(max(in_features, out_features)))``, ``in_ext =
    out_ext = n`` (a K-matrix is square). ``6 width n log2(n)`` real flops per vector (Dao
    et al. 2020, arXiv:2012.14966).

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch.nn import KaleidoscopeLinear
    >>> layer = KaleidoscopeLinear(20, 10, init="identity", bias=False, dtype=torch.float64)
    >>> layer.twiddle.shape
    torch.Size([1, 2, 5, 16, 2, 2])
    >>> x = torch.randn(2, 20, dtype=torch.float64)
    >>> bool(torch.allclose(layer(x), x[:, :10]))
    True
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        width: int = 1,
        init: str = "randn",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(in_features, out_features, bias, device, dtype)
        self.width = check_int(width, "width", minimum=1, maximum=1 << 16)
        self.init = check_choice(init, "init", ("randn", "ortho", "identity"))
        self.log_n = max(1, (max(self.in_features, self.out_features) - 1).bit_length())
        self.n = 1 << self.log_n
        self.in_ext = self.out_ext = self.n
        self.twiddle = nn.Parameter(torch.empty(
            self.width, 2, self.log_n, self.n // 2, 2, 2, **self._factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise the twiddle as ``init`` says and the bias as ``nn.Linear``'s."""
        if self.init == "randn":
            _fill_normal_(self.twiddle, math.sqrt(0.5))
        elif self.init == "ortho":
            _fill_orthogonal_(self.twiddle)
        else:
            _fill_identity_blocks_(self.twiddle)
        self._reset_bias()

    def _structured(self, x: torch.Tensor) -> torch.Tensor:
        return _st.kaleidoscope_multiply(self.twiddle, x)

    def _structured_dense(self) -> np.ndarray:
        from structlin import kaleidoscope_to_dense

        return kaleidoscope_to_dense(_to_numpy(self.twiddle))

    def extra_repr(self) -> str:
        return f"{self._common_repr()}, width={self.width}, init={self.init!r}"

    @classmethod
    def from_dense(cls, linear: nn.Module, *, width: int = 1, restarts: int = 1,
                   maxiter: int = 500, tol: float = 1e-6, rng: Any = None) -> KaleidoscopeLinear:
        """Return a K-matrix layer fitted to ``linear``'s weight.

        Parameters
        ----------
        linear : torch.nn.Linear
            The dense layer (any module with a 2-d ``weight`` and an optional ``bias``); its
            padded size ``n`` at most 4096 (the fit's limit).
        width
            As for :class:`KaleidoscopeLinear`.
        restarts, maxiter, tol, rng
            Passed to :func:`structlin.kaleidoscope_fit` (L-BFGS from several starts, a
            permutation start when the matrix is close to a scaled permutation; each
            evaluation costs ``O(width n^2 log n)``: keep ``maxiter`` small for large ``n``).

        Returns
        -------
        KaleidoscopeLinear
            Of ``linear``'s sizes, dtype and device, the bias copied; its twiddle the fit of
            the weight zero-padded to ``n x n`` (non-convex: the error depends on ``rng``).
        """
        from structlin import kaleidoscope_fit

        weight, bias = _dense_weight(linear)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, bias is not None, width=width, device=weight.device,
                    dtype=weight.dtype)
        A = _padded(_to_numpy(weight), (layer.n, layer.n))
        if not np.any(A):
            with torch.no_grad():
                layer.twiddle.zero_()
        else:
            fit = kaleidoscope_fit(A, layer.width, restarts=restarts, maxiter=maxiter, tol=tol,
                                   rng=rng)
            with torch.no_grad():
                layer.twiddle.copy_(torch.from_numpy(np.ascontiguousarray(fit.twiddle)))
        layer._copy_bias(bias)
        return layer


# --- N2 re-exports ---
# the low-displacement-rank and sequence layers (structlin/interop/torch/_nn_sequence.py)
from structlin.interop.torch._nn_sequence import (  # noqa: E402
    FFTLongConv,
    LDRLinear,
    MambaBlock,
    S4DLayer,
)

__all__ += ["FFTLongConv", "LDRLinear", "MambaBlock", "S4DLayer"]
# --- end of N2 re-exports ---
