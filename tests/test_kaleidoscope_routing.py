"""Beneš routing of permutations into width-1 K-matrices (structlin.kaleidoscope_routing)."""

from __future__ import annotations

import time

import numpy as np
import pytest

import structlin as sl
from structlin._cpu.kaleidoscope_routing import route


def _apply_switches(sw, x):
    """Reference: swap pairs column by column (decreasing stride, then increasing)."""
    n = x.shape[-1]
    L = sw.shape[1]
    y = x.copy()
    order = [(1, k) for k in range(L - 1, -1, -1)] + [(0, k) for k in range(L)]
    for j, k in order:
        s = 1 << k
        for b in range(n // 2):
            a, c = divmod(b, s)
            i = a * 2 * s + c
            if sw[j, k, b]:
                y[[i, i + s]] = y[[i + s, i]]
    return y


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32, 128])
def test_switches_route_random_permutations(n):
    rng = np.random.default_rng(n)
    x = np.arange(n)
    for _ in range(30):
        p = rng.permutation(n).astype(np.int64)
        sw = route(p)
        assert sw.shape == (2, n.bit_length() - 1, n // 2)
        assert np.array_equal(_apply_switches(sw, x), x[p])
        if n > 1:
            assert not sw[0, 0].any()  # the redundant stride-1 column stays the identity


def test_permutations_of_8_spread_over_all_are_routed_exactly():
    import itertools

    x = np.arange(8.0)
    for p in itertools.islice(itertools.permutations(range(8)), 0, 40320, 53):
        tw = sl.kaleidoscope_permutation(list(p))
        assert np.array_equal(sl.kaleidoscope_multiply(tw, x), x[list(p)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_twiddle_is_zero_one_and_dense_matches(dtype):
    rng = np.random.default_rng(1)
    p = rng.permutation(16)
    tw = sl.kaleidoscope_permutation(p, dtype=dtype)
    assert tw.dtype == dtype and tw.shape == (1, 2, 4, 8, 2, 2)
    assert set(np.unique(tw).tolist()) <= {0, 1}
    assert np.array_equal(sl.kaleidoscope_to_dense(tw), np.eye(16, dtype=dtype)[p])
    x = rng.standard_normal((3, 2, 16)).astype(dtype)
    assert np.array_equal(sl.kaleidoscope_multiply(tw, x), x[..., p])


def test_inverse_and_composition():
    rng = np.random.default_rng(2)
    n = 64
    p, q = rng.permutation(n), rng.permutation(n)
    x = rng.standard_normal((4, n))
    tp, tq = sl.kaleidoscope_permutation(p), sl.kaleidoscope_permutation(q)
    ti = sl.kaleidoscope_permutation(p, inverse=True)
    assert np.array_equal(sl.kaleidoscope_multiply(ti, x[:, p]), x)
    # K(p) K(q) x = (x[q])... : K(q) x = x[q], then K(p) gives x[q][p] = x[q[p]]
    both = sl.kaleidoscope_product(tp, tq)
    assert both.shape[0] == 2
    assert np.array_equal(sl.kaleidoscope_multiply(both, x), x[:, q[p]])
    assert np.array_equal(sl.kaleidoscope_to_dense(both), np.eye(n)[q[p]])


@pytest.mark.parametrize("m", [3, 5, 6, 7, 9, 100])
def test_lengths_not_powers_of_two_are_embedded(m):
    rng = np.random.default_rng(m)
    p = rng.permutation(m)
    tw = sl.kaleidoscope_permutation(p)
    n = 1 << tw.shape[2]
    assert n == 1 << (m - 1).bit_length()
    x = rng.standard_normal((2, m))
    xp = sl.kaleidoscope_pad(x, n)
    assert xp.shape == (2, n) and np.array_equal(xp[:, :m], x) and not xp[:, m:].any()
    y = sl.kaleidoscope_multiply(tw, xp)
    assert np.array_equal(y[:, :m], x[:, p])
    assert not y[:, m:].any()  # the padding points are fixed


def test_large_routing_is_fast_and_exact():
    rng = np.random.default_rng(3)
    n = 1 << 16
    p = rng.permutation(n)
    sl.kaleidoscope_permutation(rng.permutation(8))  # compile
    t = time.perf_counter()
    tw = sl.kaleidoscope_permutation(p)
    assert time.perf_counter() - t < 2.0
    x = rng.standard_normal(n)
    assert np.array_equal(sl.kaleidoscope_multiply(tw, x), x[p])


def test_bad_permutations_name_the_index():
    with pytest.raises(ValueError, match="index 2 is repeated and index 1 is missing"):
        sl.kaleidoscope_permutation([0, 2, 2, 3])
    with pytest.raises(ValueError, match="index 3 is repeated and index 0 is missing"):
        sl.kaleidoscope_permutation([3, 1, 2, 3, 4, 3])
    with pytest.raises(ValueError, match=r"perm\[1\] = 7 is out of range"):
        sl.kaleidoscope_permutation([0, 7, 1])
    with pytest.raises(ValueError, match="out of range"):
        sl.kaleidoscope_permutation([0, -1])
    with pytest.raises(TypeError, match="integer dtype"):
        sl.kaleidoscope_permutation([0.0, 1.0])
    with pytest.raises(TypeError, match="integer dtype"):
        sl.kaleidoscope_permutation(np.array([True, False]))
    with pytest.raises(ValueError, match="one-dimensional"):
        sl.kaleidoscope_permutation([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="length between 1"):
        sl.kaleidoscope_permutation(np.zeros(0, dtype=int))
    with pytest.raises(TypeError, match="dtype"):
        sl.kaleidoscope_permutation([0, 1], dtype=np.int32)
    with pytest.raises(TypeError, match="inverse"):
        sl.kaleidoscope_permutation([0, 1], inverse="yes")


def test_huge_length_refused_before_allocating(monkeypatch):
    import structlin.kaleidoscope_routing as kr

    monkeypatch.setattr(kr, "MAX_ROUTING_SIZE", 8)
    with pytest.raises(ValueError, match="length between 1 and 8"):
        sl.kaleidoscope_permutation(np.arange(16))


def test_input_not_modified_and_cupy_refused():
    p = np.array([1, 0, 3, 2], dtype=np.int32)
    p.setflags(write=False)
    sl.kaleidoscope_permutation(p, inverse=True)
    assert p.tolist() == [1, 0, 3, 2]

    class FakeCupy:
        pass

    FakeCupy.__module__ = "cupy._core"
    with pytest.raises(TypeError, match="host"):
        sl.kaleidoscope_permutation(FakeCupy())


def test_pad_checks():
    with pytest.raises(ValueError, match="n must be at least 3"):
        sl.kaleidoscope_pad(np.ones(3), 2)
    with pytest.raises(ValueError, match="at least one axis"):
        sl.kaleidoscope_pad(np.float64(1.0), 2)
    x = np.ones((2, 3), np.float32)
    assert sl.kaleidoscope_pad(x, 4).dtype == np.float32
