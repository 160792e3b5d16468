"""ADA's adaptive p (lightning_gans/adaptive.py) on synthetic logits: it moves up when D is over-confident on reals
and down when not, by the paper's step, clamped to [0, 1); a fixed p stays; its state is in the state dict (so in
checkpoints); under DDP r_t is the mean over every rank's logits; the option group refuses bad values."""

from __future__ import annotations

import multiprocessing
import os

import pytest
import torch

from lightning_gans.adaptive import Ada, AdaptiveAugment


def _steps(ada: AdaptiveAugment, logits: torch.Tensor, d_steps: range, batch: int) -> None:
    for step in d_steps:
        ada.observe(logits)
        ada.adjust(step, batch)


def test_p_moves_up_when_d_is_over_confident_on_reals_and_down_when_not():
    ada = AdaptiveAugment("bgc", target=0.6, speed_images=1000, interval=4)
    confident = torch.full((8, 1), 3.0)  # sign +1 everywhere: r_t = 1 > 0.6
    _steps(ada, confident, range(1, 4), batch=8)
    assert float(ada.p) == 0.0  # no adjustment before `interval` D steps
    _steps(ada, confident, range(4, 5), batch=8)
    assert float(ada.r_t) == 1.0 and float(ada.p) == pytest.approx(8 * 4 / 1000)
    _steps(ada, confident, range(5, 13), batch=8)
    assert float(ada.p) == pytest.approx(3 * 8 * 4 / 1000)
    mixed = torch.tensor([1.0, 1.0, -1.0, -1.0])[:, None]  # r_t = 0 < 0.6: p comes down
    _steps(ada, mixed, range(13, 17), batch=8)
    assert float(ada.r_t) == 0.0 and float(ada.p) == pytest.approx(2 * 8 * 4 / 1000)
    _steps(ada, mixed, range(17, 41), batch=8)
    assert float(ada.p) == 0.0  # clamped at 0
    _steps(ada, confident, range(41, 4001), batch=8)
    assert float(ada.p) < 1.0  # and below 1


def test_a_fixed_p_does_not_adapt_but_r_t_is_measured():
    ada = AdaptiveAugment("bg", p=0.3, interval=2)
    _steps(ada, torch.ones(4, 1), range(1, 9), batch=4)
    assert float(ada.p) == pytest.approx(0.3) and float(ada.r_t) == 1.0


def test_the_schedule_is_in_the_state_dict_so_a_resume_continues_mid_interval():
    ada = AdaptiveAugment("bgc", speed_images=100, interval=4)
    _steps(ada, torch.ones(4, 1), range(1, 7), batch=4)  # one adjustment, then two steps accumulated
    state = ada.state_dict()
    assert set(state) == {"p", "r_t", "sign_sum", "sign_count"} and float(state["sign_count"]) == 8
    resumed = AdaptiveAugment("bgc", speed_images=100, interval=4)
    resumed.load_state_dict(state)
    for module in (ada, resumed):
        _steps(module, -torch.ones(4, 1), range(7, 9), batch=4)
    assert torch.equal(ada.p, resumed.p) and torch.equal(ada.r_t, resumed.r_t) and float(ada.r_t) == 0.0


def _rank(rank: int, path: str, queue) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=2)
    ada = AdaptiveAugment("bgc", speed_images=100, interval=2)
    logits = torch.ones(6, 1) if rank == 0 else torch.tensor([1.0, -1.0])[:, None]  # rank 1 alone: r_t = 0
    _steps(ada, logits, range(1, 3), batch=8)
    queue.put((rank, float(ada.r_t), float(ada.p)))
    torch.distributed.destroy_process_group()


@pytest.mark.ddp
def test_under_ddp_r_t_is_the_mean_over_every_ranks_logits(tmp_path):
    context = multiprocessing.get_context("fork")  # CPU only: forked ranks start at once
    queue = context.Queue()
    ranks = [context.Process(target=_rank, args=(r, str(tmp_path / "rendezvous"), queue)) for r in (0, 1)]
    for proc in ranks:
        proc.start()
    results = sorted(queue.get(timeout=60) for _ in ranks)
    for proc in ranks:
        proc.join(30)
    # over two steps rank 0 gives 12 positive logits, rank 1 two positive and two negative: r_t = 12 / 16 on both ranks
    # (rank 1 alone would have 0, rank 0 alone 1), above the target: p moved up alike
    assert [r[1] for r in results] == pytest.approx([12 / 16] * 2)
    assert [r[2] for r in results] == pytest.approx([8 * 2 / 100] * 2)
    assert all(proc.exitcode == 0 for proc in ranks), os.linesep.join(str(p.exitcode) for p in ranks)


def test_the_option_group_refuses_bad_values_and_diffaugment_together():
    assert Ada().build((3, 32, 32)) is None  # off by default
    assert isinstance(Ada.of({"policy": "bgc"}).build((3, 32, 32)), AdaptiveAugment)
    with pytest.raises(ValueError, match="both augment D's inputs: use one"):
        Ada.of({"policy": "bgc"}).build((3, 32, 32), diffaugment="color")
    with pytest.raises(ValueError, match="works on images"):
        Ada.of({"policy": "bgc"}).build((2,))
    for bad, words in [
        ({"policy": "xyz"}, "xyz"),
        ({"policy": "bgc", "target": 1.5}, "target must be in (0, 1)"),
        ({"policy": "bgc", "p": 1.0}, "fixed ada p must be in [0, 1)"),
        ({"policy": "bgc", "interval": 0}, "at least 1"),
    ]:
        with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            Ada.of(bad)
