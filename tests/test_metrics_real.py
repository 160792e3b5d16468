"""The real half of the metrics without a Trainer: batch picking, the expected real count, the sampler-order gather."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from lightning_gans.metrics import real
from lightning_gans.metrics.real import expected_real_count, gather_in_sampler_order, pick_from_batch


def test_pick_from_batch_takes_tensors_tuples_and_dicts():
    x = torch.zeros(2, 1, 4, 4)
    assert pick_from_batch(x, 0) is x
    assert pick_from_batch((x, "labels"), 0) is x and pick_from_batch([x, "labels"], "1") == "labels"
    assert pick_from_batch({"A": x}, "A") is x
    with pytest.raises(TypeError, match="set `image_key`"):
        pick_from_batch(object(), 0)


def trainer(limit=1.0, val=100, batch_size=16, fast_dev_run=False, datamodule=True):
    dm = SimpleNamespace(datasets={"val": range(val)}, batch_size=batch_size) if datamodule else None
    return SimpleNamespace(limit_val_batches=limit, fast_dev_run=fast_dev_run, datamodule=dm)


def test_expected_real_count_follows_the_validation_limit_and_the_cap():
    assert expected_real_count(trainer(), None) == 100
    assert expected_real_count(trainer(), 40) == 40
    assert expected_real_count(trainer(limit=0.5), None) == 50
    assert expected_real_count(trainer(limit=3), None) == 48  # 3 batches of 16
    assert expected_real_count(trainer(limit=3, batch_size=None), None) is None  # batch size unknown
    for unknown in (trainer(limit=0), trainer(fast_dev_run=True), trainer(datamodule=False)):
        assert expected_real_count(unknown, None) is None


def test_gather_restores_the_order_distributed_sampler_dealt(monkeypatch):
    rows = torch.arange(7.0).reshape(-1, 1)
    shards = [rows[0::2], torch.cat([rows[1::2], rows[:1]])]  # rank 0: 0 2 4 6, rank 1: 1 3 5 + padding 0
    monkeypatch.setattr(real, "gather_all_tensors", lambda t: shards)
    assert gather_in_sampler_order(shards[0], torch.device("cpu")).flatten().tolist() == [0, 1, 2, 3, 4, 5, 6, 0]
    shards = [rows[:4], rows[4:]]  # unequal shards (another sampler): rank after rank
    assert gather_in_sampler_order(shards[0], torch.device("cpu")).flatten().tolist() == list(range(7))
