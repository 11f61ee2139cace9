"""PyTorch layers on structlin's displacement-rank and sequence operators (``torch`` extra).

:class:`LDRLinear` (a low-displacement-rank ``nn.Linear``), :class:`FFTLongConv` (an
H3/Hyena-style gated long convolution), :class:`S4DLayer` (S4D's diagonal state space layer)
and :class:`MambaBlock` (Mamba's selective-scan block). Each forward pass reaches structlin
only through the :mod:`structlin.interop.torch` functions (``ldr_multiply``, ``fftconv``,
``ssm_kernel_diag``, ``selective_scan``); everything else in it is plain PyTorch (no NumPy),
so a layer is as traceable by ``torch.compile`` as those functions are. The classes are
re-exported by :mod:`structlin.interop.torch.nn`, the public place to import them from.

Examples
--------
The examples run in the doctests when PyTorch is installed (the module is skipped otherwise).

>>> import torch
>>> from structlin.interop.torch.nn import S4DLayer
>>> _ = torch.manual_seed(0)
>>> layer = S4DLayer(4, d_state=8)
>>> layer(torch.randn(2, 4, 16)).shape
torch.Size([2, 4, 16])
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import structlin.interop.torch as _tsl

__all__ = ["FFTLongConv", "LDRLinear", "MambaBlock", "S4DLayer"]

_FLOAT = (torch.float32, torch.float64)
_FLOAT_COMPLEX = (torch.float32, torch.float64, torch.complex64, torch.complex128)

#: the operator arrays of each LDR kind (learnable; the subdiagonals of length n - 1, others n)
_LDR_OPERATORS = {"toeplitz": (), "hankel": (), "vandermonde": ("nodes",), "cauchy": ("s", "t"),
                  "subdiagonal": ("subdiag_A", "subdiag_B")}
#: the scalar operator parameters of each kind and this layer's defaults
_LDR_SCALARS = {"toeplitz": {}, "hankel": {}, "vandermonde": {"f": -1.0}, "cauchy": {},
                "subdiagonal": {"f_A": 0.0, "f_B": 0.0}}


def _check_input(x: Any, name: str, ndim: int | None, last: tuple[int, str] | None,
                 dtype: torch.dtype, layer: str) -> None:
    """Raise ``TypeError``/``ValueError`` naming ``name`` when ``x`` does not fit the layer."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the parameters of this {layer} are {dtype}; cast "
            f"one to the other (e.g. {name}.to({dtype}) or layer.to({x.dtype}))"
        )
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if last is not None:
        size, what = last
        if x.dim() < 1 or x.shape[-1] != size:
            raise ValueError(
                f"{name} must have {what} = {size} along its last axis, got shape "
                f"{tuple(x.shape)}"
            )


def _check_dtype(dtype: Any, allowed: tuple = _FLOAT) -> torch.dtype:
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if dtype not in allowed:
        names = ", ".join(str(d) for d in allowed)
        raise TypeError(f"dtype must be one of {names}, got {dtype}")
    return dtype


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


# ------------------------------------------------------------------------------------ LDR


class LDRLinear(nn.Module):
    """An ``nn.Linear`` whose weight has low displacement rank (Thomas et al., 2018).

    ``y = M[:out_features, :in_features] x + bias`` with ``M`` the ``n x n`` LDR matrix of
    generators ``G``, ``H`` (``rank x n``) for the displacement ``kind``, applied by
    :func:`structlin.interop.torch.ldr_multiply` without forming ``M``.

    Parameters
    ----------
    in_features, out_features : int
        The sizes of ``nn.Linear``. The structured size is ``n = max(in_features,
        out_features)``: the input is zero-padded to ``n`` and the output truncated to
        ``out_features`` (so the weight is the leading ``out x in`` block of ``M``).
    bias : bool, default True
        Add a learnable bias of shape ``(out_features,)``.
    rank : int, default 4
        The displacement rank ``r``, ``1 <= r <= n``: ``2 r n`` weights (plus the operators).
    kind : {"toeplitz", "hankel", "subdiagonal", "cauchy", "vandermonde"}, default "toeplitz"
        The displacement structure of :func:`structlin.ldr_multiply`. The operator arrays of
        the kind are learnable parameters: ``subdiag_A``, ``subdiag_B`` (length ``n - 1``,
        initialised to ones: the shift, the paper's LDR-SD), ``s``, ``t`` (Cauchy nodes,
        interleaved on ``[-1, 1]``), ``nodes`` (Vandermonde, uniform on ``[-0.9, 0.9]``).
        Set ``learn_operators=False`` to keep them fixed (buffers).
    f : float, default -1.0
        The corner of ``Z_f`` for "vandermonde" (not structlin's default 0: with ``f = -1``
        the factor ``1 / (nodes**n - f)`` stays bounded for nodes inside ``(-1, 1)`` at
        every ``n``).
    f_A, f_B : float, default 0.0
        The corners of the subdiagonal operators for "subdiagonal".
    learn_operators : bool, default True
    init : {"random"}, default "random"
        Normal generators scaled so that ``M``'s entries have the variance of
        ``nn.Linear``'s default weights, ``1 / (3 in_features)`` (the scale measured on
        random probes, since it depends on the kind and the operators); the bias as
        ``nn.Linear``'s.
    device, dtype
        Factory keywords; float32, float64, complex64 or complex128 (complex generators,
        operators and bias; the Vandermonde nodes and Cauchy nodes start real).

    Attributes
    ----------
    G, H : nn.Parameter, shape (rank, n)
    bias : nn.Parameter, shape (out_features,), or None

    Notes
    -----
    A forward pass costs ``O(r n log n)`` per vector for "toeplitz"/"hankel", ``O(r n log^2
    n)`` for "subdiagonal" and ``O(r n^2)`` for "cauchy"/"vandermonde" (see
    :func:`structlin.ldr_multiply`), against ``n^2`` for the dense weight; the gradients are
    those of :func:`structlin.ldr_multiply_vjp`. Reference: A. T. Thomas, A. Gu, T. Dao, A.
    Rudra, C. Ré, "Learning Compressed Transforms with Low Displacement Rank", NeurIPS 2018,
    arXiv:1810.02309.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch.nn import LDRLinear
    >>> _ = torch.manual_seed(0)
    >>> layer = LDRLinear(6, 4, rank=2, dtype=torch.float64)
    >>> x = torch.randn(3, 6, dtype=torch.float64)
    >>> y = layer(x)
    >>> y.shape, bool(torch.allclose(y, x @ layer.to_dense().T + layer.bias))
    (torch.Size([3, 4]), True)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 rank: int = 4, kind: str = "toeplitz", f: float = -1.0, f_A: float = 0.0,
                 f_B: float = 0.0, learn_operators: bool = True, init: str = "random",
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        if kind not in _LDR_OPERATORS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, _LDR_OPERATORS))}, "
                             f"got {kind!r}")
        if init != "random":
            raise ValueError(f"init must be 'random', got {init!r}")
        self.kind, self.init = kind, init
        self.n = n = max(self.in_features, self.out_features)
        self.rank = _positive_int(rank, "rank")
        if self.rank > n:
            raise ValueError(f"rank must be at most n = max(in_features, out_features) = {n}, "
                             f"got {rank}")
        given = {"f": f, "f_A": f_A, "f_B": f_B}
        self.scalars = {k: float(given[k]) for k in _LDR_SCALARS[kind]}
        self.learn_operators = bool(learn_operators)
        factory = {"device": device, "dtype": _check_dtype(dtype, _FLOAT_COMPLEX)}
        self.G = nn.Parameter(torch.empty(self.rank, n, **factory))
        self.H = nn.Parameter(torch.empty(self.rank, n, **factory))
        for name in _LDR_OPERATORS[kind]:
            length = n - 1 if name.startswith("subdiag") else n
            t = torch.empty(length, **factory)
            if self.learn_operators:
                self.register_parameter(name, nn.Parameter(t))
            else:
                self.register_buffer(name, t)
        self.bias = nn.Parameter(torch.empty(self.out_features, **factory)) if bias else None
        self.reset_parameters()

    def _params(self) -> dict:
        params = {name: getattr(self, name) for name in _LDR_OPERATORS[self.kind]}
        params.update(self.scalars)
        return params

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draw the generators (``init``), reset the operators and the bias."""
        n, dev = self.n, self.G.device
        real = self.G.real.dtype
        if self.kind == "subdiagonal":
            self.subdiag_A.fill_(1.0)
            self.subdiag_B.fill_(1.0)
        elif self.kind == "cauchy":
            grid = torch.linspace(-1.0, 1.0, 2 * n + 1, dtype=real, device=dev)
            self.s.copy_(grid[1::2][:n])
            self.t.copy_(grid[0::2][:n])
        elif self.kind == "vandermonde":
            self.nodes.copy_(torch.empty(n, dtype=real, device=dev).uniform_(-0.9, 0.9))
        self.G.normal_()
        self.H.normal_()
        # E ||M z||^2 = ||M||_F^2 for standard normal z (complex: E |z_i|^2 = 1): the scale
        # that gives entries of variance 1 / (3 in_features), nn.Linear's, whatever the kind
        # and the operators
        probes = torch.randn(16, n, dtype=self.G.dtype, device=dev)
        y = _tsl.ldr_multiply(self.G, self.H, probes, self.kind, **self._params())
        frob2 = float(y.abs().square().sum(-1).mean())
        target = n * n / (3.0 * self.in_features)
        if frob2 > 0 and math.isfinite(frob2):
            scale = (target / frob2) ** 0.25
            self.G.mul_(scale)
            self.H.mul_(scale)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            self.bias.copy_(torch.empty(self.out_features, dtype=real, device=dev)
                            .uniform_(-bound, bound))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Return ``input @ W.T + bias`` for ``input`` of shape ``(..., in_features)``."""
        _check_input(input, "input", None, (self.in_features, "in_features"), self.G.dtype,
                     "LDRLinear")
        x = input
        if self.n > self.in_features:
            x = F.pad(x, (0, self.n - self.in_features))
        y = _tsl.ldr_multiply(self.G, self.H, x, self.kind, **self._params())
        y = y[..., : self.out_features]
        return y + self.bias if self.bias is not None else y

    def to_dense(self) -> torch.Tensor:
        """Return the weight, the ``(out_features, in_features)`` matrix (differentiable).

        The products of the layer's operator with the identity (``n`` products).
        """
        eye = torch.eye(self.n, dtype=self.G.dtype, device=self.G.device)
        cols = _tsl.ldr_multiply(self.G, self.H, eye, self.kind, **self._params())
        return cols.T[: self.out_features, : self.in_features]

    @classmethod
    def from_dense(cls, linear: nn.Linear, *, rank: int = 4, kind: str = "toeplitz",
                   **options: Any) -> LDRLinear:
        """Return the LDRLinear of ``linear``'s weight projected to displacement rank ``rank``.

        The weight, zero-padded to ``n x n``, is compressed by :func:`structlin.ldr_compress`
        (the best rank-``rank`` approximation of its displacement, for the layer's initial
        operators of ``kind``); the bias is copied. ``options`` are the constructor's
        keywords (``f``, ``f_A``, ``f_B``, ``learn_operators``).

        Examples
        --------
        >>> import torch
        >>> from structlin.interop.torch.nn import LDRLinear
        >>> lin = torch.nn.Linear(4, 4, dtype=torch.float64)
        >>> c = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
        >>> idx = torch.arange(4)
        >>> with torch.no_grad():
        ...     _ = lin.weight.copy_(c[(idx[:, None] - idx).abs()])  # a Toeplitz matrix
        >>> layer = LDRLinear.from_dense(lin, rank=2)
        >>> bool(torch.allclose(layer.to_dense(), lin.weight))
        True
        """
        import numpy as np

        from structlin import ldr_compress

        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
        W = linear.weight.detach()
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None,
                    rank=rank, kind=kind, device=W.device, dtype=W.dtype, **options)
        n = layer.n
        wide = np.complex128 if W.is_complex() else np.float64
        M = np.zeros((n, n), dtype=wide)
        M[: linear.out_features, : linear.in_features] = W.cpu().resolve_conj().numpy()
        arrays = {k: getattr(layer, k).detach().cpu().resolve_conj().numpy().astype(wide)
                  for k in _LDR_OPERATORS[kind]}
        G, H = ldr_compress(M, kind, layer.rank, **arrays, **layer.scalars)
        with torch.no_grad():
            layer.G.copy_(torch.as_tensor(G))
            layer.H.copy_(torch.as_tensor(H))
            if linear.bias is not None:
                layer.bias.copy_(linear.bias.detach())
        return layer

    def extra_repr(self) -> str:
        scalars = "".join(f", {k}={v}" for k, v in self.scalars.items())
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, rank={self.rank}, kind={self.kind!r}"
                f"{scalars}, n={self.n}")


# -------------------------------------------------------------------------- long convolution


class FFTLongConv(nn.Module):
    """A Hyena/H3-style long convolution with gates, on :func:`structlin.interop.torch.fftconv`.

    Input and output of shape ``(batch, L, d_model)`` (Hyena's and Mamba's layout, that of
    ``nn.TransformerEncoderLayer(batch_first=True)``), any ``L >= 1``.

    With ``gated=True`` (the order-2 Hyena operator with an explicit kernel; H3 without its
    shift SSM): ``x0, x1, v = split(short_conv(in_proj(u)))`` along the features (a
    depthwise causal convolution of ``short_filter_order`` taps over ``3 d_model``
    channels), then::

        w = dropout(x1 * v)
        y = out_proj(x0 * (k * w + D * w))                         (* the long convolution)

    which is Hyena's ``HyenaOperator.forward`` for ``order=2``, one head and one block, with
    ``k`` a learned kernel of ``l_max`` taps per channel instead of Hyena's implicit MLP
    filter, and H3's ``q * (ssm(k * v) + D * (k * v))`` with the diagonal SSM kernel replaced
    by ``k``. The gated product ``w`` is formed before :func:`fftconv` (so that ``D``
    multiplies the gated signal, as in Hyena and H3: ``fftconv``'s ``pregate`` leaves ``D``
    on the ungated input), and ``x0`` is ``fftconv``'s ``postgate``.

    With ``gated=False``: ``y = k * u + D * u`` per channel, no projections (a drop-in for a
    depthwise ``nn.Conv1d`` with an ``l_max``-tap kernel, causal padding).

    Parameters
    ----------
    d_model : int
        The channels ``H``.
    l_max : int
        The kernel length. Inputs of any length are accepted: with ``causal=True`` the kernel
        is truncated to ``L`` for shorter inputs (the same result, less work).
    gated : bool, default True
    bias : bool, default True
        The skip ``D`` (Hyena's filter bias, H3's and S4's ``D``), shape ``(d_model,)``,
        standard normal at initialisation as in Hyena.
    causal : bool, default True
        As for :func:`structlin.fftconv`: ``False`` gives the centred convolution.
    short_filter_order : int, default 3
        The taps of the depthwise short convolution (``gated=True``; Hyena's default).
    init : {"decay", "random"}, default "decay"
        The kernel: standard normal times an exponential decay in time whose rate goes
        from slow to fast across the channels (``exp(-a_h t / l_max)``, ``a_h`` linear from
        ``decay_min`` to ``decay_max``; Hyena's modulation), each channel normalised to unit
        norm; or ``"random"``, standard normal scaled by ``1 / sqrt(l_max)``.
    decay_min, decay_max : float, default 3.0, 15.0
    dropout : float, default 0.0
        On the gated product ``w`` (Hyena's ``dropout``), ``gated=True`` only.
    device, dtype
        Factory keywords; float32 or float64.

    Attributes
    ----------
    kernel : nn.Parameter, shape (d_model, l_max)
    D : nn.Parameter, shape (d_model,), or None
    in_proj, out_proj : nn.Linear; short_filter : nn.Conv1d (``gated=True``)

    Notes
    -----
    One :func:`fftconv` call per forward pass, ``O(B H (L + l_max) log(L + l_max))``, the
    gradients by :func:`structlin.fftconv_vjp`. References: D. Y. Fu, T. Dao, K. K. Saab,
    A. W. Thomas, A. Rudra, C. Ré, "Hungry Hungry Hippos", arXiv:2212.14052; M. Poli et al.,
    "Hyena Hierarchy", arXiv:2302.10866; D. Y. Fu et al., "Simple Hardware-Efficient Long
    Convolutions for Sequence Modeling", arXiv:2302.06646.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch.nn import FFTLongConv
    >>> _ = torch.manual_seed(0)
    >>> layer = FFTLongConv(8, l_max=32)
    >>> layer(torch.randn(2, 20, 8)).shape
    torch.Size([2, 20, 8])
    """

    def __init__(self, d_model: int, l_max: int, *, gated: bool = True, bias: bool = True,
                 causal: bool = True, short_filter_order: int = 3, init: str = "decay",
                 decay_min: float = 3.0, decay_max: float = 15.0, dropout: float = 0.0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.d_model = _positive_int(d_model, "d_model")
        self.l_max = _positive_int(l_max, "l_max")
        if init not in ("decay", "random"):
            raise ValueError(f"init must be 'decay' or 'random', got {init!r}")
        if not isinstance(causal, bool):
            raise TypeError(f"causal must be a bool, got {type(causal).__name__}")
        self.gated, self.causal, self.init = bool(gated), causal, init
        self.decay_min, self.decay_max = float(decay_min), float(decay_max)
        factory = {"device": device, "dtype": _check_dtype(dtype)}
        self.kernel = nn.Parameter(torch.empty(self.d_model, self.l_max, **factory))
        self.D = nn.Parameter(torch.empty(self.d_model, **factory)) if bias else None
        if self.gated:
            self.short_filter_order = _positive_int(short_filter_order, "short_filter_order")
            width = 3 * self.d_model
            self.in_proj = nn.Linear(self.d_model, width, **factory)
            self.short_filter = nn.Conv1d(width, width, self.short_filter_order, groups=width,
                                          padding=self.short_filter_order - 1, **factory)
            self.out_proj = nn.Linear(self.d_model, self.d_model, **factory)
            self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draw the kernel (``init``) and ``D``; reset the projections as ``nn.Linear``'s."""
        k = self.kernel
        k.normal_()
        if self.init == "decay":
            t = torch.arange(self.l_max, dtype=k.dtype, device=k.device) / self.l_max
            rate = torch.linspace(self.decay_min, self.decay_max, self.d_model, dtype=k.dtype,
                                  device=k.device)
            k.mul_(torch.exp(-rate[:, None] * t))
            k.div_(k.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(k.dtype).tiny))
        else:
            k.mul_(1 / math.sqrt(self.l_max))
        if self.D is not None:
            self.D.normal_()
        if self.gated:
            self.in_proj.reset_parameters()
            self.short_filter.reset_parameters()
            self.out_proj.reset_parameters()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Return the layer's output, shape ``(batch, L, d_model)`` like ``u``."""
        _check_input(u, "u", 3, (self.d_model, "d_model"), self.kernel.dtype, "FFTLongConv")
        L = u.shape[1]
        k = self.kernel[:, :L] if self.causal and L < self.l_max else self.kernel
        if not self.gated:
            y = _tsl.fftconv(u.transpose(1, 2), k, self.D, causal=self.causal)
            return y.transpose(1, 2)
        z = self.short_filter(self.in_proj(u).transpose(1, 2))[..., :L]
        x0, x1, v = z.split(self.d_model, dim=1)
        w = self.dropout(x1 * v)
        y = _tsl.fftconv(w, k, self.D, postgate=x0, causal=self.causal)
        return self.out_proj(y.transpose(1, 2))

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, l_max={self.l_max}, gated={self.gated}, "
                f"bias={self.D is not None}, causal={self.causal}, init={self.init!r}")


# ------------------------------------------------------------------------------------- S4D


class _S4DKernel(nn.Module):
    """The parameters of S4D's kernel, under s4's names (``C`` as (re, im) pairs)."""

    def __init__(self, d_model: int, d_state: int, dt_min: float, dt_max: float,
                 init: str, factory: dict) -> None:
        super().__init__()
        H, N2 = d_model, d_state // 2
        self.init, self.dt_min, self.dt_max = init, dt_min, dt_max
        self.C = nn.Parameter(torch.empty(H, N2, 2, **factory))
        self.log_dt = nn.Parameter(torch.empty(H, **factory))
        self.log_A_real = nn.Parameter(torch.empty(H, N2, **factory))
        self.A_imag = nn.Parameter(torch.empty(H, N2, **factory))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        from structlin import s4d_init

        H, N2 = self.A_imag.shape
        lam = torch.as_tensor(s4d_init(2 * N2, self.init))
        self.log_A_real.copy_(torch.log(-lam.real).expand(H, N2))
        self.A_imag.copy_(lam.imag.expand(H, N2))
        lo, hi = math.log(self.dt_min), math.log(self.dt_max)
        self.log_dt.uniform_(lo, hi)
        # s4's C: complex standard normal, E|C|^2 = 1 (each part of variance 1/2)
        self.C.normal_(std=math.sqrt(0.5))

    def forward(self, L: int) -> torch.Tensor:
        Lambda = torch.complex(-torch.exp(self.log_A_real), self.A_imag)
        C = torch.view_as_complex(self.C)
        B = torch.ones_like(C)
        return _tsl.ssm_kernel_diag(Lambda, B, C, torch.exp(self.log_dt), L)


_S4D_INITS = {"S4D-Lin": "lin", "S4D-Inv": "inv", "S4D-LegS": "legs", "S4D-Real": "real"}


class S4DLayer(nn.Module):
    """S4D, the diagonal state space layer (Gu, Gupta, Goel, Ré, 2022), on structlin's kernel.

    The forward pass of state-spaces/s4's ``models/s4/s4d.py`` ``S4D``: per channel the
    kernel ``K[h, l] = 2 Re sum_n C[h, n] (exp(dt_h A[h, n]) - 1) / A[h, n] exp(l dt_h
    A[h, n])`` (``A = -exp(log_A_real) + i A_imag``, ``dt = exp(log_dt)``, ZOH with
    ``B = 1``) by :func:`structlin.interop.torch.ssm_kernel_diag`, the causal convolution
    with the skip ``D`` by :func:`structlin.interop.torch.fftconv`, then GELU, dropout and
    the position-wise ``Conv1d(H, 2H, 1)`` with a GLU. The parameters have s4's names and
    shapes (``D``; ``kernel.C`` as (re, im) pairs, ``kernel.log_dt``,
    ``kernel.log_A_real``, ``kernel.A_imag``; ``output_linear.0.weight``/``.bias``), so an
    s4 ``S4D`` state dict loads unchanged; the output is the tensor ``y`` (s4 returns
    ``(y, None)``).

    Parameters
    ----------
    d_model : int
        The channels ``H``.
    d_state : int, default 64
        The state size ``N`` (even): ``N // 2`` complex modes per channel.
    l_max : int, optional
        If given, inputs longer than ``l_max`` raise ``ValueError`` (the kernel is always as
        long as the input, as in s4's S4D).
    init : {"S4D-Lin", "S4D-Inv", "S4D-LegS", "S4D-Real"}, default "S4D-Lin"
        The modes ``A`` at initialisation, from :func:`structlin.s4d_init`; ``C`` complex
        standard normal, ``log_dt`` uniform on ``[log dt_min, log dt_max]``, ``D`` standard
        normal (s4's).
    dt_min, dt_max : float, default 0.001, 0.1
    dropout : float, default 0.0
        After the GELU, one mask per (batch, channel) shared over time (s4's ``DropoutNd``).
    transposed : bool, default True
        Input and output ``(batch, d_model, L)`` (s4's default); False: ``(batch, L,
        d_model)``.
    device, dtype
        Factory keywords; float32 or float64 (the modes and ``C`` are then complex64 or
        complex128 in the forward pass).

    Notes
    -----
    The kernel costs ``O(H N L)`` (never the ``H x N x L`` powers), the convolution
    ``O(B H L log L)``; s4's learning-rate and weight-decay hints (``_optim``) are not set.
    Reference: A. Gu, A. Gupta, K. Goel, C. Ré, "On the Parameterization and Initialization
    of Diagonal State Space Models", arXiv:2206.11893.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch.nn import S4DLayer
    >>> _ = torch.manual_seed(0)
    >>> layer = S4DLayer(3, d_state=4, transposed=False)
    >>> layer(torch.randn(2, 10, 3)).shape
    torch.Size([2, 10, 3])
    >>> sorted(layer.state_dict())[:3]
    ['D', 'kernel.A_imag', 'kernel.C']
    """

    def __init__(self, d_model: int, d_state: int = 64, l_max: int | None = None, *,
                 init: str = "S4D-Lin", dt_min: float = 0.001, dt_max: float = 0.1,
                 dropout: float = 0.0, transposed: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        self.d_model = self.h = _positive_int(d_model, "d_model")
        self.d_state = self.n = _positive_int(d_state, "d_state", minimum=2)
        if d_state % 2:
            raise ValueError(f"d_state must be even (d_state // 2 complex modes), got {d_state}")
        self.l_max = None if l_max is None else _positive_int(l_max, "l_max")
        if init not in _S4D_INITS:
            raise ValueError(f"init must be one of {', '.join(map(repr, _S4D_INITS))}, got "
                             f"{init!r}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"dt_min and dt_max must satisfy 0 < dt_min <= dt_max, got "
                             f"{dt_min}, {dt_max}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.init, self.dropout, self.transposed = init, float(dropout), bool(transposed)
        factory = {"device": device, "dtype": _check_dtype(dtype)}
        self.D = nn.Parameter(torch.empty(self.h, **factory))
        self.kernel = _S4DKernel(self.h, self.n, float(dt_min), float(dt_max),
                                 _S4D_INITS[init], factory)
        self.activation = nn.GELU()
        self.output_linear = nn.Sequential(nn.Conv1d(self.h, 2 * self.h, 1, **factory),
                                           nn.GLU(dim=-2))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Re-draw every parameter as at construction."""
        self.D.normal_()
        self.kernel.reset_parameters()
        self.output_linear[0].reset_parameters()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Return the layer's output, shaped like ``u``."""
        layout = ("d_model", 1) if self.transposed else ("d_model", 2)
        _check_input(u, "u", 3, None, self.D.dtype, "S4DLayer")
        if u.shape[layout[1]] != self.h:
            shape = "(batch, d_model, L)" if self.transposed else "(batch, L, d_model)"
            raise ValueError(f"u must have shape {shape} with d_model = {self.h} "
                             f"(transposed={self.transposed}), got shape {tuple(u.shape)}")
        if not self.transposed:
            u = u.transpose(-1, -2)
        L = u.shape[-1]
        if self.l_max is not None and L > self.l_max:
            raise ValueError(f"u has length L = {L} above l_max = {self.l_max}")
        k = self.kernel(L)
        y = self.activation(_tsl.fftconv(u, k, self.D))
        if self.training and self.dropout > 0:
            keep = 1.0 - self.dropout
            mask = torch.rand((*y.shape[:-1], 1), device=y.device, dtype=y.dtype) < keep
            y = y * mask / keep
        y = self.output_linear(y)
        return y if self.transposed else y.transpose(-1, -2)

    def extra_repr(self) -> str:
        return (f"d_model={self.h}, d_state={self.n}, l_max={self.l_max}, init={self.init!r}, "
                f"transposed={self.transposed}")


# ---------------------------------------------------------------------------------- Mamba


class MambaBlock(nn.Module):
    """Mamba's selective state space block (Gu and Dao, 2023), scan by structlin.

    The forward pass of state-spaces/mamba's ``Mamba`` (``mamba_ssm/modules/mamba_simple.py``)
    on its non-fused path: ``x, z = in_proj(u)``, ``x = silu(causal depthwise conv1d(x))``,
    ``dt, B, C = x_proj(x)`` (``dt`` of ``dt_rank`` features, ``B``, ``C`` of ``d_state``),
    ``delta = dt_proj.weight @ dt``, then :func:`structlin.interop.torch.selective_scan`
    ``(x, delta, A = -exp(A_log), B, C, D, z, delta_bias=dt_proj.bias,
    delta_softplus=True)`` and ``out_proj``. Input and output ``(batch, L, d_model)``. The
    parameters have mamba's names and shapes (``in_proj``, ``conv1d``, ``x_proj``,
    ``dt_proj``, ``A_log``, ``D``, ``out_proj``), so a ``Mamba`` state dict loads unchanged.
    No inference cache (``inference_params``/``step``): the whole sequence at once.

    Parameters
    ----------
    d_model : int
    d_state : int, default 16
    d_conv : int, default 4
        Taps of the causal depthwise convolution.
    expand : int, default 2
        ``d_inner = expand * d_model``.
    dt_rank : int or "auto", default "auto"
        ``ceil(d_model / 16)`` for "auto".
    dt_min, dt_max, dt_init, dt_scale, dt_init_floor
        mamba's initialisation of ``dt_proj``: weight uniform on ``+-dt_rank**-0.5 *
        dt_scale`` ("random") or that constant ("constant"); bias the inverse softplus of
        steps log-uniform on ``[dt_min, dt_max]`` (floored at ``dt_init_floor``).
    conv_bias : bool, default True
    bias : bool, default False
        Biases of ``in_proj`` and ``out_proj``.
    device, dtype
        Factory keywords; float32 or float64.

    Notes
    -----
    ``A_log`` starts at ``log(1, ..., d_state)`` per channel (S4D-Real), ``D`` at ones. The
    scan is ``O(B L d_inner d_state)``, its gradients by :func:`structlin.selective_scan_vjp`.
    Reference: A. Gu, T. Dao, "Mamba: Linear-Time Sequence Modeling with Selective State
    Spaces", arXiv:2312.00752.

    Examples
    --------
    >>> import torch
    >>> from structlin.interop.torch.nn import MambaBlock
    >>> _ = torch.manual_seed(0)
    >>> block = MambaBlock(8, d_state=4)
    >>> block(torch.randn(2, 12, 8)).shape
    torch.Size([2, 12, 8])
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: int | str = "auto", dt_min: float = 0.001, dt_max: float = 0.1,
                 dt_init: str = "random", dt_scale: float = 1.0, dt_init_floor: float = 1e-4,
                 conv_bias: bool = True, bias: bool = False, *, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        self.d_model = _positive_int(d_model, "d_model")
        self.d_state = _positive_int(d_state, "d_state")
        self.d_conv = _positive_int(d_conv, "d_conv")
        self.expand = _positive_int(expand, "expand")
        self.d_inner = self.expand * self.d_model
        self.dt_rank = (math.ceil(self.d_model / 16) if dt_rank == "auto"
                        else _positive_int(dt_rank, "dt_rank"))
        if dt_init not in ("random", "constant"):
            raise ValueError(f"dt_init must be 'random' or 'constant', got {dt_init!r}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"dt_min and dt_max must satisfy 0 < dt_min <= dt_max, got "
                             f"{dt_min}, {dt_max}")
        self.dt_min, self.dt_max, self.dt_init = float(dt_min), float(dt_max), dt_init
        self.dt_scale, self.dt_init_floor = float(dt_scale), float(dt_init_floor)
        factory = {"device": device, "dtype": _check_dtype(dtype)}
        d_in = self.d_inner
        self.in_proj = nn.Linear(self.d_model, 2 * d_in, bias=bias, **factory)
        self.conv1d = nn.Conv1d(d_in, d_in, self.d_conv, groups=d_in, bias=conv_bias,
                                padding=self.d_conv - 1, **factory)
        self.x_proj = nn.Linear(d_in, self.dt_rank + 2 * self.d_state, bias=False, **factory)
        self.dt_proj = nn.Linear(self.dt_rank, d_in, bias=True, **factory)
        self.A_log = nn.Parameter(torch.empty(d_in, self.d_state, **factory))
        self.D = nn.Parameter(torch.empty(d_in, **factory))
        self.out_proj = nn.Linear(d_in, self.d_model, bias=bias, **factory)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Re-draw every parameter with mamba's initialisation."""
        for m in (self.in_proj, self.conv1d, self.x_proj, self.out_proj):
            m.reset_parameters()
        std = self.dt_rank ** -0.5 * self.dt_scale
        w = self.dt_proj.weight
        if self.dt_init == "constant":
            w.fill_(std)
        else:
            w.uniform_(-std, std)
        lo, hi = math.log(self.dt_min), math.log(self.dt_max)
        dt = torch.exp(torch.rand(self.d_inner, dtype=w.dtype, device=w.device) * (hi - lo)
                       + lo).clamp(min=self.dt_init_floor)
        # softplus(dt + log(1 - exp(-dt))) = dt
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        n = torch.arange(1, self.d_state + 1, dtype=w.dtype, device=w.device)
        self.A_log.copy_(torch.log(n).expand(self.d_inner, -1))
        self.D.fill_(1.0)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Return the block's output, shape ``(batch, L, d_model)`` like ``u``."""
        _check_input(u, "u", 3, (self.d_model, "d_model"), self.D.dtype, "MambaBlock")
        L = u.shape[1]
        x, z = self.in_proj(u).transpose(1, 2).chunk(2, dim=1)
        x = F.silu(self.conv1d(x)[..., :L])
        dt, B, C = self.x_proj(x.transpose(1, 2)).split(
            [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = (dt @ self.dt_proj.weight.T).transpose(1, 2)
        y = _tsl.selective_scan(x, delta, -torch.exp(self.A_log), B.transpose(1, 2),
                                C.transpose(1, 2), self.D, z, self.dt_proj.bias, True)
        return self.out_proj(y.transpose(1, 2))

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={self.d_state}, d_conv={self.d_conv}, "
                f"expand={self.expand}, dt_rank={self.dt_rank}")
