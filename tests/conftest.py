"""Test configuration: hypothesis profiles and the ``gpu`` marker.

Profiles (select with ``--hypothesis-profile NAME`` or ``STRUCTLIN_HYPOTHESIS_PROFILE``):

- ``ci`` (default): derandomized, few examples, no deadline — repeatable and bounded in time.
- ``dev``: random, a moderate number of examples.
- ``thorough``: many examples, for a night run.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("STRUCTLIN_HYPOTHESIS_PROFILE", "ci"))


def _gpu_usable() -> bool:
    """True when CuPy imports and a kernel actually runs (not merely when the import works)."""
    try:
        import cupy

        a = cupy.arange(4, dtype=cupy.float32)
        return float((a * 2).sum().get()) == 12.0
    except Exception:
        return False


GPU_AVAILABLE = _gpu_usable()


def pytest_collection_modifyitems(config, items):
    if GPU_AVAILABLE:
        return
    skip = pytest.mark.skip(reason="needs a usable CUDA GPU with CuPy")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
