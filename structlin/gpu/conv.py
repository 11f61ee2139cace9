"""CUDA long convolution, FlashFFTConv style (launchers of ``conv.cu``).

Contract (shared with :mod:`structlin._cpu.conv`; the public API in :mod:`structlin.conv`
validates, promotes and reshapes before calling):

- :func:`fft_size` ``(L, Lk) -> nfft``: the power of two ``>= L + Lk - 1`` used here.
- :func:`kernel_spectrum` ``(k, nfft, *, lazy=False) -> spec``: ``k`` is ``(H, Lk)`` of the
  compute dtype; ``spec`` is ``(H, nfft)`` complex (complex64 for float32/complex64,
  complex128 otherwise) holding ``fft(k, nfft)`` in *this module's digit-reversed order*
  (opaque to callers; :func:`spectrum_order` gives it).
- :func:`forward` ``(u, spec, nfft, Lk, offset, D, pregate, postgate, out) -> out``::

      out[b,h,t] = postgate[b,h,t] * (sum_j k[h,j] v[b,h,t+offset-j] + D[h] u[b,h,t]),
      v = pregate * u,  terms with t + offset - j outside [0, L) are zero.

- :func:`backward` ``(u, spec, nfft, Lk, offset, D, pregate, postgate, grad)`` returns
  ``(grad_u, grad_k, grad_D, grad_pregate, grad_postgate)``, gradients of ``sum(grad * out)``
  (complex dtypes: PyTorch's convention ``grad_w = sum conj(d out / d w) * grad``), ``None``
  for an absent ``D`` or gate.
- :func:`forward` and :func:`backward` take a keyword ``precision`` (``"highest"``,
  ``"fp16"``, ``"bf16"``; see *Tensor cores* below), as the CPU engine does (which computes
  in full precision whatever its value).

Algorithm (FlashFFTConv, Fu et al., arXiv:2311.05908)
------------------------------------------------------
The length ``N = nfft`` DFT is written as a Monarch decomposition: ``N = r_0 r_1 ... r_{p-1}``
with radices ``r_s <= 16`` (16 except possibly the first of a pass), and stage ``s`` applies
the dense ``r_s x r_s`` DFT matrix to vectors of stride ``M'_s`` followed by a diagonal of
twiddles (decimation in frequency). The output is left in digit-reversed order, and the
precomputed spectrum :func:`kernel_spectrum` is stored in that same order, so the pointwise
product needs no permutation; the inverse applies the adjoint stages in reverse order and ends
in natural order. Real rows use a real FFT of half the length when that fits one pass: row
``v`` of ``N`` samples is loaded as ``z[m] = v[2m] + i v[2m+1]`` (``N/2`` complex values),
and after the forward stages a pairing step rebuilds ``V[f]`` and ``V[f + N/2]`` from
``Z[f]`` and ``Z[-f]`` (their positions come from the digit maps), multiplies by the
kernel's ``K[f]`` and ``K[f + N/2]`` and folds the product back into the spectrum of
``y[2m] + i y[2m+1]`` for the inverse stages. In the multi-pass scheme (where ``Z[f]`` and
``Z[-f]`` lie in different tiles) real rows are instead packed two per complex sequence (batch
rows ``2m`` and ``2m + 1`` of one channel as real and imaginary parts: the kernel is real, so
the two convolutions separate exactly). Either way a real row costs half a complex FFT.

- **One launch** when the sequence fits in shared memory (:data:`MAX_SINGLE_PASS` complex
  values: ``nfft <= 2**15`` for float32, ``2**14`` for float64): each block loads one
  sequence with ``pregate`` applied and zero padding, does all forward stages, multiplies by
  the spectrum, does all inverse stages and writes ``out`` with the causal/centred shift,
  ``D u`` and ``postgate`` fused. Complex rows get one launch up to twice that
  (``nfft <= 2**15`` for complex64, ``2**14`` for complex128): ``2**15`` complex64 values
  (256 KiB) exceed a block's shared memory (227 KiB on H100/H200), so the block does the
  sequence in two halves, the even and the odd frequencies, each a one-pass transform of
  ``nfft / 2`` in shared memory: the first radix-2 stage is applied while loading, the
  inverse of the even half waits in a global scratch of ``nfft / 2`` values per sequence
  (read back by the thread that wrote it, so no synchronisation beyond the block), and the
  odd half's inverse is combined with it in the epilogue. The input is read twice.
- **Three launches** (a four-step FFT) beyond, up to any ``N`` (``L = 4M`` and more, memory
  permitting): ``N = N1 N2`` with ``N2`` the single-pass maximum of complex values. The
  first stages (radices of ``N1``) only mix positions equal modulo ``N2``: a *column pass* on
  tiles of ``N1 x W`` (``W`` consecutive columns, coalesced) loads the gated input, applies
  them and writes a complex buffer; an *inner pass* on contiguous blocks of ``N2`` applies the
  remaining stages, the spectrum and their inverses, in place in the buffer; a final column
  pass applies the inverse column stages and the fused epilogue. The buffer costs ``8 N``
  (complex64) bytes per sequence. The spectrum of the half-length mode is computed once per
  kernel with ``cupy.fft``; the others by the same stages as the data.

Backward: ``grad_u`` and ``grad_pregate`` are a correlation, i.e. the same pipeline with the
conjugate spectrum on ``grad * conj(postgate)`` shifted by ``offset``, with an epilogue that
writes both gradients; ``grad_postgate = grad * conj(conv + D u)`` is a forward pipeline with
another epilogue; ``grad_k`` is the inverse transform of the cross-spectrum
``sum_b fft(grad * conj(postgate)) conj(fft(v))`` (spectra by the forward stages only, the sum
over the batch by CuPy, the inverse by the inverse stages only); ``grad_D`` is a CuPy
reduction.

Tensor cores (``precision="fp16"|"bf16"``, float32/complex64 data): every radix-16 stage
is computed as ``Y = (F / 4) X`` with ``mma.sync.m16n8k16`` (half-precision operands, fp32
accumulation; four real mmas per complex product, 8 vectors per warp); the data stay fp32 in
shared memory, twiddles and the spectrum product are fp32, and the exact factor ``1/4`` keeps
each stage unitary so the fp16 operands keep the input's scale (the launcher folds
``4**stages`` into the output scale). Radix-2/4/8 stages run in fp32. The backward
(``backward(..., precision=)``) uses the same stages in its transforms of rows, in the
one-launch and the multi-pass schemes alike: the forward and inverse stages of the
correlation that gives ``grad_u`` and ``grad_pregate``, those of the convolution that gives
``grad_postgate``, and the forward stages of the two spectra of ``grad_k``. What stays fp32
there: the pointwise products, epilogues and gates, the batch sum of ``grad_k``'s
cross-spectrum and its inverse transform (``H`` sequences whatever ``B`` is, whose values,
products of two data scales summed over the batch, would leave fp16's range), and ``grad_D``
(a reduction, no transform). The half-precision operands have their format's range: fp16
keeps 11 bits for magnitudes between about ``6e-5`` and ``6.5e4`` (scale the loss, as in
mixed-precision training, when gradients are smaller); bf16 has fp32's range. Relative
error of the output and of each transformed gradient: about ``4e-4`` (fp16) and ``3e-3``
(bf16) in the emulator.

Cost: a radix-``r`` stage does ``r`` complex multiply-adds per element (dense DFT blocks, as
FlashFFTConv does to use matrix units), so a transform costs ``N sum_s r_s`` complex
multiply-adds, about ``4 N log2 N`` for radix 16. Twiddles are read from a table of ``N``
entries (``w_N^t``, computed once per size in float64).

Unverified: none of this code has run on a GPU. It is compiled by NVRTC (compute_80 and
compute_90) in the CPU suite, and ``tests/test_gpu_compile_conv.py`` executes it on the host
(a thread per CUDA thread; the mma by a scalar model of the PTX fragment layouts, so that test
checks our use of the layouts as we read them in the PTX ISA, not the hardware).
"""

from __future__ import annotations

import functools
from typing import Any

import cupy
import numpy as np

from structlin.gpu._compile import get_kernel, instantiations, launch, type_name

__all__ = [
    "NAME_EXPRESSIONS",
    "backward",
    "fft_size",
    "forward",
    "kernel_spectrum",
    "reference_forward",
]

NAME_EXPRESSIONS = instantiations("conv_pass")

#: largest radix (4 bits of log2 in the packed radix list; conv.cu instantiates 2, 4, 8, 16)
MAX_RADIX_LOG2 = 4
#: largest N done in one pass, by the itemsize of the complex working type (bytes = 8 N, 16 N)
MAX_SINGLE_PASS = {8: 1 << 14, 16: 1 << 13}  # with 1/16 padding: 136 KiB
#: a column of the column pass must fit shared memory: nfft <= 2**28 (complex64), 2**26
MAX_COLUMN_BYTES = 128 * 1024
#: shared memory of a column-pass tile
COLUMN_TILE_BYTES = 64 * 1024
#: threads per block at most (256 leaves 255 registers to a thread of a complex128 radix-16 stage)
MAX_THREADS = 256
#: bytes of the two spectra held at once while summing the cross-spectrum for grad_k
GRAD_K_BYTES = 512 * 1024 * 1024

#: precision keyword -> kernel code (0: fp32 on CUDA cores, 1/2: fp16/bf16 tensor cores)
PRECISIONS = {"highest": 0, "fp16": 1, "bf16": 2}

_LOAD_ROWS, _LOAD_BUFFER = 0, 1
_MUL_NONE, _MUL_SPEC, _MUL_CONJ_SPEC = 0, 1, 2
_STORE_FORWARD, _STORE_BACKWARD, _STORE_BUFFER, _STORE_PLAIN, _STORE_POSTGATE_GRAD = range(5)


def fft_size(L: int, Lk: int) -> int:
    """Return the transform length used for ``L`` samples and ``Lk`` kernel taps.

    The smallest power of two ``>= L + Lk - 1`` (so that the circular convolution is linear).
    """
    return 1 << max(0, (L + Lk - 2).bit_length())


def _complex_dtype(dtype: Any) -> np.dtype:
    return np.result_type(dtype, np.complex64)


def _radices(n: int) -> list[int]:
    """log2 of the radices of a pass of length ``n`` (a power of two): 16s, remainder first."""
    m = n.bit_length() - 1
    q, rem = divmod(m, MAX_RADIX_LOG2)
    return ([rem] if rem else []) + [MAX_RADIX_LOG2] * q


def _pack(lrs: list[int]) -> int:
    return sum(lr << (4 * i) for i, lr in enumerate(lrs))


def _split(nfft: int, cdtype: np.dtype) -> tuple[int, int]:
    """``(N1, N2)``: column-pass length and inner length; ``N1 = 1`` means one pass."""
    n2 = MAX_SINGLE_PASS[np.dtype(cdtype).itemsize]
    if nfft <= n2:
        return 1, nfft
    return nfft // n2, n2


def _use_half(nfft: int, dtype: Any) -> bool:
    """Real rows with ``nfft / 2`` complex values fitting one pass: the half-length mode."""
    cdtype = _complex_dtype(dtype)
    return (np.dtype(dtype).kind == "f" and nfft >= 2
            and nfft // 2 <= MAX_SINGLE_PASS[cdtype.itemsize])


def radix_plan(nfft: int, dtype: Any) -> list[int]:
    """Return log2 of the radices of all stages for ``nfft`` (column pass first)."""
    if _use_half(nfft, dtype):
        return _radices(nfft // 2)
    n1, n2 = _split(nfft, _complex_dtype(dtype))
    return (_radices(n1) if n1 > 1 else []) + _radices(n2)


def _digit_order(lrs: list[int]) -> np.ndarray:
    """Frequency at each position after DIF stages with radices ``2**lrs``."""
    pos = np.zeros(1, dtype=np.int64)
    freq = np.zeros(1, dtype=np.int64)
    # build from the last stage outwards: position = c_s M'_s + (inner), frequency = c_s + r_s f
    for lr in reversed(lrs):
        r = 1 << lr
        c = np.arange(r, dtype=np.int64)
        mp = pos.size
        pos = (c[:, None] * mp + pos[None, :]).ravel()
        freq = (c[:, None] + r * freq[None, :]).ravel()
    out = np.empty(pos.size, dtype=np.int64)
    out[pos] = freq
    return out


def spectrum_order(nfft: int, dtype: Any) -> np.ndarray:
    """Return ``freq`` with ``spec[:, pos] = fft(k, nfft)[:, freq[pos]]`` (digit reversal).

    In the half-length mode of real data the first ``nfft / 2`` positions hold the
    frequencies ``f < nfft / 2`` in the digit-reversed order of length ``nfft / 2`` and the
    last ``nfft / 2`` hold ``f + nfft / 2`` in the same order.
    """
    order = _digit_order(radix_plan(nfft, dtype))
    if _use_half(nfft, dtype):
        order = np.concatenate([order, order + nfft // 2])
    return order


@functools.cache
def _twiddles_host(nfft: int, cdtype: np.dtype) -> np.ndarray:
    t = np.arange(nfft, dtype=np.float64)
    return np.exp(-2j * np.pi * t / nfft).astype(cdtype)


_twiddle_cache: dict[tuple[int, str, int], Any] = {}


def _twiddles(nfft: int, cdtype: np.dtype) -> Any:
    key = (nfft, np.dtype(cdtype).str, cupy.cuda.Device().id)
    tab = _twiddle_cache.get(key)
    if tab is None:
        tab = cupy.asarray(_twiddles_host(nfft, np.dtype(cdtype)))
        _twiddle_cache[key] = tab
    return tab


def _threads(items: int) -> int:
    return int(min(MAX_THREADS, max(32, (items + 31) // 32 * 32)))


class _Pipeline:
    """Launches of ``conv_pass`` for one call: shapes, arrays and which pass does what."""

    def __init__(self, dtype, B, H, L, nfft, P, precision=0, half=False):
        self.dtype = np.dtype(dtype)
        self.cdtype = _complex_dtype(self.dtype)
        self.B, self.H, self.L, self.N, self.P = B, H, L, nfft, P
        self.S = H * ((B + P - 1) // P)
        self.half = half
        if half:  # one real row of nfft samples as nfft / 2 complex values, one pass
            self.n1, self.n2 = 1, nfft // 2
            lrs = _radices(nfft // 2)
        else:
            self.n1, self.n2 = _split(nfft, self.cdtype)
            if self.n1 * self.cdtype.itemsize > MAX_COLUMN_BYTES:
                limit = self.n2 * (MAX_COLUMN_BYTES // self.cdtype.itemsize)
                raise ValueError(
                    f"nfft = {nfft} is beyond the three-pass scheme's {limit} for {self.dtype}"
                )
            lrs = (_radices(self.n1) if self.n1 > 1 else []) + _radices(self.n2)
        # N = 2 N2 (complex rows at twice the one-pass size): one launch in two halves
        self.split = not half and self.n1 == 2
        self.tab = _twiddles(nfft, self.cdtype)
        self.precision = precision
        # a tensor-core stage computes (F / 4) X; undo it (forward and inverse) in the output
        self.tc_stages = sum(lr == MAX_RADIX_LOG2 for lr in lrs) if precision else 0
        self.out_scale = float(4.0 ** (2 * self.tc_stages) / (self.n2 if half else nfft))
        self.kernel = get_kernel("conv", NAME_EXPRESSIONS, f"conv_pass<{type_name(self.dtype)}>")

    def _launch(self, *, column, load_mode, mul, do_fwd, do_inv, store_mode, a=None,
                agate=None, a_conj=0, bufin=None, bufout=None, spec=None, out0=None, out1=None,
                u=None, pre=None, D=None, post=None, g=None, n_out=None, in_shift=0,
                out_shift=0, split=False):
        N, csize = self.N, self.cdtype.itemsize
        if split:
            n_rows, W, cs, tile_step, tiles = self.n2, 1, 1, 0, 1
        elif column:
            n_rows = self.n1
            W = max(1, min(self.n2, COLUMN_TILE_BYTES // (n_rows * csize)))
            cs, tile_step, tiles = self.n2, W, self.n2 // W
        else:
            n_rows, W, cs = self.n2, 1, 1
            tile_step, tiles = self.n2, self.n1
        lrs = _radices(n_rows)
        items = n_rows * W
        args = (
            a, agate, bufin, bufout, spec, self.tab, out0, out1, u, pre, D, post, g,
            np.int64(self.B), np.int32(self.H), np.int64(self.L),
            np.int64(self.L if n_out is None else n_out), np.int64(N), np.int32(self.P),
            np.int32(n_rows), np.int32(W), np.int64(cs), np.int64(tile_step), np.int32(tiles),
            np.int32(_pack(lrs)), np.int32(len(lrs)), np.int64(in_shift), np.int64(out_shift),
            np.int32(load_mode), np.int32(a_conj), np.int32(do_fwd), np.int32(mul),
            np.int32(do_inv), np.int32(store_mode), np.float64(self.out_scale),
            np.int32(self.precision), np.int32(self.half), np.int32(split),
        )
        launch(self.kernel, self.S * tiles, _threads(items), args, (items + items // 16) * csize)

    def run(self, *, fwd=True, mul=_MUL_NONE, inv=True, store_mode, **kw):
        """Forward stages, product, inverse stages, over one or three passes.

        Rows are loaded when ``fwd`` (else ``kw["bufin"]`` holds a spectrum); the result goes
        to ``store_mode`` when ``inv`` (else the spectrum is written to ``kw["bufout"]``).
        """
        load = _LOAD_ROWS if fwd else _LOAD_BUFFER
        if self.n1 == 1:
            self._launch(column=False, load_mode=load, mul=mul, do_fwd=fwd, do_inv=inv,
                         store_mode=store_mode if inv else _STORE_BUFFER, **kw)
            return
        if self.split and fwd and inv and mul != _MUL_NONE:
            scratch = cupy.empty((self.S, self.n2), dtype=self.cdtype)
            self._launch(column=False, load_mode=_LOAD_ROWS, mul=mul, do_fwd=1, do_inv=1,
                         store_mode=store_mode, split=True, bufin=scratch, bufout=scratch,
                         **kw)
            return
        rows_kw = {k: v for k, v in kw.items() if k not in ("bufin", "bufout", "spec")}
        buf = kw.get("bufout")
        if buf is None:
            buf = cupy.empty((self.S, self.N), dtype=self.cdtype)
        if fwd:
            self._launch(column=True, load_mode=_LOAD_ROWS, mul=_MUL_NONE, do_fwd=1, do_inv=0,
                         store_mode=_STORE_BUFFER, bufout=buf, **rows_kw)
        else:
            buf[...] = kw["bufin"]
        self._launch(column=False, load_mode=_LOAD_BUFFER, mul=mul, do_fwd=fwd, do_inv=inv,
                     store_mode=_STORE_BUFFER, bufin=buf, bufout=buf, spec=kw.get("spec"))
        if inv:
            self._launch(column=True, load_mode=_LOAD_BUFFER, mul=_MUL_NONE, do_fwd=0,
                         do_inv=1, store_mode=store_mode, bufin=buf, **rows_kw)


def _rows_pipeline(dtype, B, H, L, nfft, precision=0) -> _Pipeline:
    """The pipeline of a convolution of rows: real rows in the half-length mode when it fits
    one pass, else packed two per complex sequence; complex rows one per sequence."""
    if _use_half(nfft, dtype):
        return _Pipeline(dtype, B, H, L, nfft, 1, precision, half=True)
    return _Pipeline(dtype, B, H, L, nfft, 2 if np.dtype(dtype).kind == "f" else 1, precision)


def kernel_spectrum(k: Any, nfft: int, *, lazy: bool = False) -> Any:
    """Return the spectrum of the kernels ``k`` (``(H, Lk)``) for length ``nfft``, in this
    module's digit-reversed layout (``(H, nfft)`` complex; see :func:`spectrum_order`).

    ``lazy`` (a single call's spectrum rather than a plan's) is accepted for the contract's
    sake: the GPU engine always computes the spectrum at once."""
    if k.ndim != 2 or not k.flags.c_contiguous:
        raise ValueError(f"k must be C-contiguous (H, Lk), got shape {k.shape}")
    H, Lk = k.shape
    if Lk > nfft:
        raise ValueError(f"nfft must be >= Lk = {Lk}, got {nfft}")
    if _use_half(nfft, k.dtype):
        # K[f] and K[f + nfft/2] in the order of the half-length pass (computed once per kernel)
        order = cupy.asarray(spectrum_order(nfft, k.dtype))
        full = cupy.fft.fft(k, n=nfft)
        return cupy.ascontiguousarray(full[:, order].astype(_complex_dtype(k.dtype)))
    pipe = _Pipeline(k.dtype, 1, H, Lk, nfft, 1)
    spec = cupy.empty((H, nfft), dtype=pipe.cdtype)
    pipe.run(fwd=True, inv=False, store_mode=_STORE_BUFFER, a=k, bufout=spec)
    return spec


def reference_forward(u: Any, k: Any, offset: int, D: Any = None, pregate: Any = None,
                      postgate: Any = None) -> Any:
    """Return the gated convolution computed the plain way with ``cupy.fft`` (the reference).

    ``rfft``/``fft`` of ``pregate * u`` and ``k`` at length ``L + Lk - 1``, product, inverse,
    the window ``[offset, offset + L)``, then ``+ D u`` and ``* postgate``; each step is a pass
    over memory. Same shapes as :func:`forward`; returns a new array of ``u``'s dtype.
    """
    L, Lk = u.shape[-1], k.shape[-1]
    n = L + Lk - 1
    v = u if pregate is None else pregate * u
    if u.dtype.kind == "c" or k.dtype.kind == "c":
        y = cupy.fft.ifft(cupy.fft.fft(v, n=n) * cupy.fft.fft(k, n=n), n=n)
    else:
        y = cupy.fft.irfft(cupy.fft.rfft(v, n=n) * cupy.fft.rfft(k, n=n), n=n)
    y = y[..., offset:offset + L]
    if D is not None:
        y = y + D[:, None] * u
    if postgate is not None:
        y = y * postgate
    return y.astype(u.dtype, copy=False)


def _check(u, spec, nfft, Lk, offset, D, pregate, postgate, other, other_name):
    if u.ndim != 3 or not u.flags.c_contiguous:
        raise ValueError(f"u must be C-contiguous (B, H, L), got shape {u.shape}")
    _, H, L = u.shape
    if nfft < L + Lk - 1 or nfft & (nfft - 1):
        raise ValueError(f"nfft must be a power of two >= L + Lk - 1 = {L + Lk - 1}, got {nfft}")
    if not 0 <= offset < max(Lk, 1):
        raise ValueError(f"offset must be in [0, Lk) = [0, {Lk}), got {offset}")
    if spec.shape != (H, nfft) or spec.dtype != _complex_dtype(u.dtype):
        raise ValueError(
            f"spec must be ({H}, {nfft}) {_complex_dtype(u.dtype)} from kernel_spectrum, "
            f"got {spec.shape} {spec.dtype}"
        )
    for name, arr, shape in (("D", D, (H,)), ("pregate", pregate, u.shape),
                             ("postgate", postgate, u.shape), (other_name, other, u.shape)):
        if arr is None:
            continue
        if arr.shape != shape or arr.dtype != u.dtype or not arr.flags.c_contiguous:
            raise ValueError(
                f"{name} must be C-contiguous {shape} {u.dtype}, got {arr.shape} {arr.dtype}"
            )


def _precision_code(precision: str, dtype: np.dtype) -> int:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    if precision != "highest" and _complex_dtype(dtype) != np.complex64:
        raise ValueError(
            f"precision={precision!r} (tensor cores) needs float32 or complex64 data, got {dtype}"
        )
    return PRECISIONS[precision]


def forward(u: Any, spec: Any, nfft: int, Lk: int, offset: int, D: Any, pregate: Any,
            postgate: Any, out: Any, *, precision: str = "highest") -> Any:
    """Write the gated long convolution of ``u`` into ``out`` and return it (see the module
    docstring for the formula); one launch for ``nfft <= MAX_SINGLE_PASS``, three beyond."""
    _check(u, spec, nfft, Lk, offset, D, pregate, postgate, out, "out")
    B, H, L = u.shape
    if out is None:
        raise ValueError("out must be a preallocated (B, H, L) array")
    code = _precision_code(precision, u.dtype)
    if u.size == 0:
        return out
    pipe = _rows_pipeline(u.dtype, B, H, L, nfft, code)
    pipe.run(mul=_MUL_SPEC, store_mode=_STORE_FORWARD, a=u, agate=pregate, spec=spec, out0=out,
             u=u, D=D, post=postgate, out_shift=offset)
    return out


def backward(u: Any, spec: Any, nfft: int, Lk: int, offset: int, D: Any, pregate: Any,
             postgate: Any, grad: Any, *, precision: str = "highest"
             ) -> tuple[Any, Any, Any, Any, Any]:
    """Return ``(grad_u, grad_k, grad_D, grad_pregate, grad_postgate)`` of ``sum(grad * out)``
    (``None`` for an absent ``D`` or gate; ``grad_k`` is ``(H, Lk)``).

    ``precision`` as for :func:`forward`: the transforms of the rows (both pipelines and the
    two spectra of ``grad_k``) run their radix-16 stages on tensor cores; the inverse
    transform of ``grad_k``'s batch-summed cross-spectrum and ``grad_D`` stay fp32."""
    _check(u, spec, nfft, Lk, offset, D, pregate, postgate, grad, "grad")
    B, H, L = u.shape
    dtype = u.dtype
    code = _precision_code(precision, dtype)
    grad_u = cupy.empty_like(u)
    grad_pre = None if pregate is None else cupy.empty_like(u)
    grad_post = None if postgate is None else cupy.empty_like(u)
    if u.size == 0:
        grad_k = cupy.zeros((H, Lk), dtype=dtype)
        grad_D = None if D is None else cupy.zeros_like(D)
        return grad_u, grad_k, grad_D, grad_pre, grad_post
    pipe = _rows_pipeline(dtype, B, H, L, nfft, code)
    if postgate is not None:
        pipe.run(mul=_MUL_SPEC, store_mode=_STORE_POSTGATE_GRAD, a=u, agate=pregate, spec=spec,
                 out0=grad_post, u=u, D=D, g=grad, out_shift=offset)
    pipe.run(mul=_MUL_CONJ_SPEC, store_mode=_STORE_BACKWARD, a=grad, agate=postgate, a_conj=1,
             spec=spec, out0=grad_u, out1=grad_pre, u=u, pre=pregate, D=D, post=postgate,
             g=grad, in_shift=offset)
    gy = grad if postgate is None else grad * postgate.conj()
    grad_D = None if D is None else (gy * u.conj()).sum(axis=(0, 2)).astype(dtype)

    # grad_k: cross-spectrum of the gradient and v, one row per sequence (no packing), summed
    # over the batch in chunks that bound the memory of the two spectra
    cdtype = _complex_dtype(dtype)
    chunk = max(1, GRAD_K_BYTES // (2 * H * nfft * cdtype.itemsize))
    cross = cupy.zeros((H, nfft), dtype=cdtype)
    for b0 in range(0, B, chunk):
        b1 = min(B, b0 + chunk)
        part = _Pipeline(dtype, b1 - b0, H, L, nfft, 1, code)
        g_spec = cupy.empty(((b1 - b0) * H, nfft), dtype=cdtype)
        v_spec = cupy.empty_like(g_spec)
        part.run(inv=False, store_mode=_STORE_BUFFER, a=grad[b0:b1],
                 agate=None if postgate is None else postgate[b0:b1], a_conj=1, bufout=g_spec,
                 in_shift=offset)
        part.run(inv=False, store_mode=_STORE_BUFFER, a=u[b0:b1],
                 agate=None if pregate is None else pregate[b0:b1], bufout=v_spec)
        cross += (g_spec * v_spec.conj()).reshape(b1 - b0, H, nfft).sum(axis=0)
    grad_k = cupy.empty((H, Lk), dtype=dtype)
    # in fp32 even with tensor cores: the cross-spectrum grows with the batch and with the
    # product of two data scales (fp16's range), and it is H transforms whatever B is. Each
    # spectrum came out (1/4)^stages too small from the tensor-core stages: undo both here.
    inverse = _Pipeline(dtype, 1, H, Lk, nfft, 1)
    inverse.out_scale *= 16.0 ** part.tc_stages
    inverse.run(fwd=False, store_mode=_STORE_PLAIN, bufin=cross, out0=grad_k, n_out=Lk)
    return grad_u, grad_k, grad_D, grad_pre, grad_post
