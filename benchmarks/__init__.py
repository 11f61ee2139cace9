"""structlin's benchmarks (``python benchmarks/run.py``) and the GPU check
(``python -m benchmarks.gpu_check``); see ``benchmarks/README.md``.

The modules import each other as top-level modules (``run.py`` puts this directory on
``sys.path``), so that each also runs as a script; this file only lets ``python -m
benchmarks.<module>`` find them.
"""
