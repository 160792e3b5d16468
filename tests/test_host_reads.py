"""No host read in a steady-state training step: on a GPU each one waits for every queued kernel.

Every family in tests/families.py trains a few batches with the CLI's default callbacks (checkpoint, sample grid,
preemption, divergence guard, ...), a TensorBoard logger and the progress bar, while
:func:`lightning_gans.host_reads.count_host_reads` counts the reads of each batch. Between reports (the logging
interval) the project's code reads nothing, and the whole step reads no more than a bare LightningModule that logs
the same values the plain way; on a reporting batch the family reads once per update (the loss check and the logged
values in one copy).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader

from lightning_gans.cli import CALLBACK_GROUPS, default_callbacks
from lightning_gans.host_reads import HostReads, count_host_reads
from lightning_gans.models import FAMILIES
from tests.families import TINY

LOG_EVERY = 3
BATCHES = 8
#: batches that neither report (log_every_n_steps, the last one) nor come before the first report
STEADY = [i for i in range(LOG_EVERY, BATCHES - 1) if (i + 1) % LOG_EVERY]


class PerBatch(L.Callback):
    """Snapshot the counts at each batch start, so each batch's reads (hooks, logging, the next fetch) are its own."""

    def __init__(self, reads: HostReads) -> None:
        self.reads, self.batches = reads, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append((self.reads.total, self.reads.total_project, dict(self.reads.project)))


def per_batch_reads(model: L.LightningModule, batch, root: Path) -> list[tuple[int, int, dict]]:
    """(reads, project reads, project sites) of each batch but the last, training ``BATCHES`` copies of ``batch``."""
    with count_host_reads() as reads:
        recorder = PerBatch(reads)
        trainer = L.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=1,
            log_every_n_steps=LOG_EVERY,
            callbacks=[recorder, *default_callbacks(root)],
            logger=TensorBoardLogger(root, name="logs"),
            default_root_dir=root,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(model, DataLoader([batch] * BATCHES, batch_size=None))
    snaps = recorder.batches
    return [
        (b[0] - a[0], b[1] - a[1], {k: v - a[2].get(k, 0) for k, v in b[2].items() if v - a[2].get(k, 0)})
        for a, b in zip(snaps, snaps[1:])
    ]


class Bare(L.LightningModule):
    """A bare GAN-like module with manual optimisation: one D and one G step per batch, logging ``names`` (tensors on
    the module's device, the progress bar for the losses) at every step, as a plain Lightning module does."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.names = names
        self.generator, self.discriminator = nn.Linear(4, 4), nn.Linear(4, 1)
        self.register_buffer("z", torch.randn(2, 4))

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        with self.toggled_optimizer(opt_d):
            d_loss = self.discriminator(self.generator(self.z).detach()).mean()
            opt_d.zero_grad()
            self.manual_backward(d_loss)
            opt_d.step()
        with self.toggled_optimizer(opt_g):
            g_loss = -self.discriminator(self.generator(self.z)).mean()
            opt_g.zero_grad()
            self.manual_backward(g_loss)
            opt_g.step()
        for name in self.names:
            self.log(name, d_loss.detach(), prog_bar=name.endswith("loss"))

    def grid_images(self):  # for the sample-grid callback
        return torch.zeros(1, 1, 4, 4)

    def configure_optimizers(self):
        return torch.optim.Adam(self.generator.parameters()), torch.optim.Adam(self.discriminator.parameters())


_BARE: dict[tuple[str, ...], list] = {}


def test_the_default_callbacks_are_the_clis():
    callbacks = default_callbacks("runs/x")
    assert [type(c) for c in callbacks] == list(CALLBACK_GROUPS.values())
    checkpoint = callbacks[0]
    assert Path(checkpoint.dirpath) == Path("runs/x/checkpoints").resolve() and checkpoint.save_last


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_a_steady_training_step_reads_nothing_on_the_host(name: str, tmp_path: Path):
    spec = TINY[name]
    torch.manual_seed(0)
    model = FAMILIES[name](**spec.kwargs)
    updates: list[int] = []
    report = model.report
    model.report = lambda network, losses: (updates.append(model.trainer.fit_loop.batch_idx), report(network, losses))
    family = per_batch_reads(model, spec.batch(), tmp_path / "family")

    logged = sorted(k for k in model.trainer.callback_metrics if k.startswith("train/"))
    assert {"train/g_steps"} < set(logged)  # the last batch reported
    if tuple(logged) not in _BARE:
        _BARE[tuple(logged)] = per_batch_reads(Bare(logged), spec.batch(), tmp_path / "bare")
    bare = _BARE[tuple(logged)]

    for i in STEADY:
        reads, project, sites = family[i]
        assert project == 0, f"{name} batch {i}: the project read the device {project} times: {sites}"
        assert reads <= bare[i][0], f"{name} batch {i}: {reads} host reads, a bare module {bare[i][0]}"
    for i in range(LOG_EVERY - 1, BATCHES - 1, LOG_EVERY):  # reporting batches: one read per update
        assert family[i][1] <= updates.count(i), f"{name} batch {i}: {family[i][2]} for {updates.count(i)} updates"
