"""structlin.interop.dask on a real ``distributed.LocalCluster`` (2 worker processes, one
thread each): products of arrays built chunk by chunk on the workers (the client fetches the
inputs only afterwards, to check the results), larger than one chunk, every chunk's result
checked (or a sample of the chunks), and the tasks seen running on both workers.

One cluster serves the whole module (starting it costs a few seconds); the sizes are small
(a few MB per array) so that the file runs in well under a minute on 2 loaded cores.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import structlin as sl  # noqa: E402
from structlin.interop import dask as sd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

#: the workers' kernels single-threaded, as ``threads_per_worker=1`` means: two processes of
#: Numba's default thread count would oversubscribe the cores
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=logging.ERROR, env=WORKER_ENV)
    c = distributed.Client(cluster)
    try:
        c.wait_for_workers(2, timeout=120)
        yield c
    finally:
        c.close()
        cluster.close()


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _ran_on_both(client, stream: list[dict], chunks: int) -> None:
    """The task stream of one computation: at least one task per chunk, on both workers.

    (Dask fuses the chunk's generation, the structlin product and the reduction into one task
    named after the fused layers, so the stream is not filtered by name.)"""
    assert len(stream) >= chunks
    assert {t["worker"] for t in stream} == set(client.scheduler_info()["workers"])


def test_cluster_has_two_single_threaded_worker_processes(client):
    import os

    info = client.run(lambda: (os.getpid(), os.environ.get("NUMBA_NUM_THREADS")))
    assert len(info) == 2 and len({pid for pid, _ in info.values()}) == 2
    assert {threads for _, threads in info.values()} == {"1"}


def test_monarch_product_of_an_array_built_on_the_workers_in_many_chunks(client):
    n, rows, per_chunk = 256, 12_000, 750  # 16 chunks of 750 x 256 float32
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((16, 16, 16)).astype(np.float32) / 4
    w2 = rng.standard_normal((16, 8, 16)).astype(np.float32) / 4  # output 128: length changes
    x = da.random.default_rng(1).standard_normal((rows, n), chunks=(per_chunk, n),
                                                  dtype=np.float32)
    y = sd.monarch_multiply(w1, w2, x)
    assert y.shape == (rows, 128) and y.numblocks == (16, 1)
    with distributed.get_task_stream(client) as ts:
        norms = (y.astype(np.float64) ** 2).sum(axis=1).compute()  # only (rows,) comes back
    # every chunk against the NumPy call on the same chunk (x fetched afterwards: 12 MB)
    a = x.compute()
    for i in range(x.numblocks[0]):
        block = a[i * per_chunk:(i + 1) * per_chunk]
        expected = (sl.monarch_multiply(w1, w2, block).astype(np.float64) ** 2).sum(axis=1)
        np.testing.assert_allclose(norms[i * per_chunk:(i + 1) * per_chunk], expected,
                                   rtol=1e-4)
    _ran_on_both(client, ts.data, 16)


def test_butterfly_chunks_computed_on_both_workers_equal_numpy(client):
    n = 128
    tw = sl.random_butterfly(n, rng=2).astype(np.float32)
    x = da.random.default_rng(3).standard_normal((8_000, n), chunks=(500, n), dtype=np.float32)

    def where(b):
        # the chunk's product tagged with the address of the worker that computed it
        try:
            port = _port(distributed.get_worker().address)
        except ValueError:  # map_batch's call on one zero vector, on the client
            port = -1
        return np.full((b.shape[0], 1), port, dtype=np.int64)

    y = sd.butterfly_multiply(tw, x)
    tags = sd.map_batch(where, y).compute()
    assert {int(t) for t in np.unique(tags)} == set(map(_port, client.scheduler_info()["workers"]))
    sample = [x.blocks[i] for i in (0, 7, 15)]
    got, blocks = client.compute([[y.blocks[i] for i in (0, 7, 15)], sample], sync=True)
    for g, b in zip(got, blocks, strict=True):
        np.testing.assert_allclose(g, sl.butterfly_multiply(tw, b), rtol=1e-5, atol=1e-5)


def test_fftconv_over_batches_with_a_gate(client):
    rng = np.random.default_rng(4)
    B, H, L = 24, 4, 256
    k, D = rng.standard_normal((H, 64)) / 8, rng.standard_normal(H)
    u = da.random.default_rng(5).standard_normal((B, H, L), chunks=(3, H, L))
    gate = da.random.default_rng(6).standard_normal((B, H, L), chunks=(4, H, L))
    y = sd.fftconv(u, k, D, postgate=gate)
    assert y.numblocks == (8, 1, 1)
    with distributed.get_task_stream(client) as ts:
        got = y.compute()
    np.testing.assert_allclose(got, sl.fftconv(u.compute(), k, D, postgate=gate.compute()),
                               rtol=1e-10, atol=1e-12)
    _ran_on_both(client, ts.data, 8)


def test_selective_scan_over_batch_chunks_returns_both_outputs(client):
    rng = np.random.default_rng(7)
    b, d, n, L = 8, 4, 3, 32
    u = da.random.default_rng(8).standard_normal((b, d, L), chunks=(2, d, L))
    dt = da.random.default_rng(9).random((b, d, L), chunks=(2, d, L))
    A, C = -rng.random((d, n)), rng.standard_normal((d, n))
    Bv = rng.standard_normal((b, n, L))
    y, last = sd.selective_scan(u, dt, A, Bv, C, return_last_state=True)
    got_y, got_last = client.compute([y, last], sync=True)
    ey, elast = sl.selective_scan(u.compute(), dt.compute(), A, Bv, C, return_last_state=True)
    np.testing.assert_allclose(got_y, ey, atol=1e-12)
    np.testing.assert_allclose(got_last, elast, atol=1e-12)


def test_benchmark_measures_throughput_on_this_cluster(client):
    import bench_dask

    rec = bench_dask.cluster_throughput(client, rows=4_000, n=128, chunk_rows=500, repeat=2)
    assert rec["chunks"] == 8 and rec["workers"] == 2
    assert rec["rows_per_s"]["median"] > 0 and rec["gb_per_s"]["median"] > 0
    assert rec["check_rel_error"] < 1e-4
