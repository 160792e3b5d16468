"""Under DDP (2 CPU processes, gloo) the metrics equal the single-process ones on the same samples."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_gans.metrics import GenerativeMetrics
from tests.test_metrics import LogitExtractor

pytestmark = pytest.mark.ddp

METRICS = ["fid", "kid", "is", "precision_recall", "class_coverage"]
D, K = 8, 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data() -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, D, generator=g)
    sizes = [40, 37, 50, 23, 61, 29]  # uneven chunks: the two processes end with 111 and 89 samples
    fakes = [torch.randn(n, D, generator=g) * 1.2 + 0.3 for n in sizes]
    return real, fakes


def make_metrics() -> GenerativeMetrics:
    return GenerativeMetrics(LogitExtractor(D, K), METRICS, kid_subsets=20, kid_subset_size=50, is_splits=2)


def single_process(order: list[int]) -> dict[str, float]:
    real, fakes = data()
    m = make_metrics()
    m.update_real(real, real[:, :K])
    for i in order:
        m.update_fake(fakes[i], fakes[i][:, :K])
    return {k: float(v) for k, v in m.compute().items()}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        real, fakes = data()
        m = make_metrics()
        if rank == 0:  # the callback's layout: rank 0 holds the real features
            m.update_real(real, real[:, :K])
        for chunk in fakes[rank::world]:  # round-robin chunks, as the callback deals them
            m.update_fake(chunk, chunk[:, :K])
        result = {k: float(v) for k, v in m.compute().items()}
        if rank == 0:
            torch.save(result, out)
    finally:
        dist.destroy_process_group()


def test_two_process_metrics_equal_single_process(tmp_path):
    out = str(tmp_path / "ddp.pt")
    # fork: the children inherit the imports (spawn would re-import torch and Lightning in each, ~5 s of CPU);
    # the worker sets one thread first, as DataLoader workers do.
    method = "fork" if "fork" in mp.get_all_start_methods() and os.name == "posix" else "spawn"
    mp.start_processes(_worker, args=(2, free_port(), out), nprocs=2, join=True, start_method=method)
    ddp = torch.load(out)
    single = single_process(list(range(6)))  # chunks in their natural order; the processes saw 0,2,4 and 1,3,5
    assert (
        set(ddp)
        == set(single)
        == {
            "fid",
            "kid",
            "kid_std",
            "is",
            "is_std",
            "precision",
            "recall",
            "classes_covered",
            "class_kl",
            "confident_share",
        }
    )
    for key, value in single.items():
        assert ddp[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert single_process([5, 3, 1, 0, 2, 4]) == pytest.approx(single, rel=1e-9)  # order never matters


@pytest.mark.slow
def test_ddp_spawn_validate_equals_single_process(tmp_path):
    """The whole callback under Lightning's ddp_spawn: sharded reals regathered in order, fakes dealt by chunk."""
    from tests.test_evaluation_callback import TinyData, TinyModel, callback, trainer

    def run(**kwargs) -> dict[str, float]:
        cb = callback(str(tmp_path / "cache"), cache=False, num_samples=90, batch_size=20)
        t = trainer(callbacks=[cb], **kwargs)
        t.validate(TinyModel(), datamodule=TinyData(), verbose=False)
        return {k: float(v) for k, v in t.callback_metrics.items()}

    single = run()
    ddp = run(strategy="ddp_spawn", devices=2)
    for key in ("val/fid", "val/precision", "val/recall", "val/kid"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-5), key
