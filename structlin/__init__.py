"""structlin: structured linear algebra on NumPy (Numba kernels) and CuPy (CUDA kernels).

The public names are those of every family's public modules, as the family registry
(:mod:`structlin._registry`) lists them, and its namespace modules (``structlin.fft``, whose
names follow ``scipy.fft`` and stay there); nothing heavy is imported here beyond NumPy, SciPy
and Numba's decorators (kernels compile on first use).
"""

from __future__ import annotations

import importlib as _importlib

from structlin._registry import families as _families

__version__ = "0.1.0"


def _public_names() -> dict[str, object]:
    names: dict[str, object] = {}
    for fam in _families():
        for module_name in fam.modules:
            module = _importlib.import_module(module_name)
            if not fam.flatten:  # a namespace (structlin.fft): the import binds the attribute
                continue
            for name in module.__all__:
                if name in names and names[name] is not getattr(module, name):
                    raise ImportError(f"{module_name} exports {name!r}, another module too")
                names[name] = getattr(module, name)
    return names


_names = _public_names()
globals().update(_names)
__all__ = sorted(_names)
del _names
