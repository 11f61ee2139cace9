"""GPU side of the DCT/DST passes: none (every function of the contract ``fft_r2r`` is
``cpu_only``).

On CuPy input :mod:`structlin.fft` runs the same algorithms (Makhoul's reordering, the
half-length DCT-IV, the even and odd extensions of type 1) as CuPy array operations around
cuFFT transforms (``structlin.fft._r2r_array_ops``), one more pass over the data each than the
fused CPU passes of :mod:`structlin._cpu.fft_r2r`.
"""

from __future__ import annotations

__all__: list[str] = []
