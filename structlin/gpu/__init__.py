"""CUDA kernels (NVRTC through CuPy) behind the public functions for CuPy arrays.

One ``<family>.cu`` source and one launcher module ``<family>.py`` per family; the launchers
expose the same functions as :mod:`structlin._cpu` on 2-D C-contiguous CuPy arrays and only
compute grid sizes. :mod:`structlin.gpu._compile` compiles the sources (and, for the CPU test
suite, compiles them to PTX without a GPU). Nothing here is imported by ``import structlin``.
"""
