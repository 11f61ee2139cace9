"""Bridges from structlin's functions to other libraries.

Each submodule is imported on its own and imports its library only then, so that
``import structlin`` and ``import structlin.interop`` never import PyTorch, JAX, Dask or
scikit-learn:

- :mod:`structlin.interop.scipy`: ``scipy.sparse.linalg.LinearOperator`` views of the structured
  matrices (for ``gmres``, ``lsqr``, ``eigs`` ...).
- :mod:`structlin.interop.torch`: ``torch.autograd.Function`` wrappers (``torch`` extra).
- :mod:`structlin.interop.jax`: ``jax.custom_vjp`` wrappers over ``jax.pure_callback``
  (``jax`` extra).
- :mod:`structlin.interop.dask`: the products applied blockwise over the batch axes of a Dask
  array (``dask`` extra).
- :mod:`structlin.interop.sklearn`: scikit-learn transformers of the kernel feature maps
  (``QuadratureFeatures``; ``sklearn`` extra).

The framework wrappers only move arrays (through DLPack, without copies where the framework
allows it) and call the same functions and ``*_vjp`` as NumPy users do.
"""
