"""Numba (CPU) kernels, one module per family; called through structlin._backend.kernels."""
