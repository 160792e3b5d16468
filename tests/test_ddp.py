"""DDP on CPU with 2 processes (gloo): GANDDPStrategy trains GANs with manual optimisation.

Plain Lightning DDP fails here with "Expected to have finished reduction in the prior iteration" (the D step
leaves G's parameters unused); GANDDPStrategy wraps each network on its own (lightning_gans/strategy.py). A plain
Trainer takes it as ``strategy=GANDDPStrategy()``, the documented one-liner these scripts use; the CLI puts it in
place of ``--trainer.strategy ddp`` by itself (tests/test_cli.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.ddp
ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import sys, torch, lightning as L
    from pathlib import Path
    from torch.utils.data import DataLoader, TensorDataset
    from lightning_gans import GANDDPStrategy
    from lightning_gans.callbacks import SampleGrid
    from lightning_gans.models import DCGAN
    from lightning.pytorch.callbacks import ModelCheckpoint

    out = Path(sys.argv[1])
    L.seed_everything(0)
    model = DCGAN(image_shape=(1, 28, 28), latent_dim=8, g_channels=4, d_channels=4, ema_decay=0.9)
    data = TensorDataset(torch.rand(64, 1, 28, 28) * 2 - 1, torch.zeros(64, dtype=torch.long))
    grid = SampleGrid(every_n_steps=2)
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy=GANDDPStrategy(), max_epochs=2, logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=out,
        callbacks=[grid, ModelCheckpoint(dirpath=out / "ckpt", save_last=True, save_top_k=-1)],
    )
    trainer.fit(model, DataLoader(data, batch_size=8))
    rank = trainer.global_rank
    assert type(trainer.strategy).__name__ == "GANDDPStrategy"
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, out / f"rank{rank}.pt")
    ema = model.generator_ema.module
    params = [n for n, _ in model.named_parameters()] + [f"generator_ema.module.{n}" for n, _ in ema.named_parameters()]
    (out / "params.txt").write_text(" ".join(params))
    (out / f"rank{rank}.steps").write_text(f"{model.d_steps} {model.g_steps}")
    """
)


def test_ddp_two_cpu_processes(tmp_path: Path):
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert rank0.keys() == rank1.keys()
    wrapped = [k for k in rank0 if k.startswith(("generator.module.", "discriminator.module."))]
    assert not wrapped, f"state dict keys must stay those of the plain networks: {wrapped[:3]}"
    # Parameters (and their EMA) agree; batch-norm running statistics are broadcast from rank 0 at the start of
    # each forward, so after the last step they hold each rank's own last update (standard DDP behaviour).
    params = (tmp_path / "params.txt").read_text().split()
    assert len(params) > 10
    for key in params:
        assert torch.equal(rank0[key], rank1[key]), f"{key} differs between ranks"
    # 64 images / 2 ranks / batch 8 = 4 steps an epoch, 2 epochs
    assert (tmp_path / "rank0.steps").read_text() == (tmp_path / "rank1.steps").read_text() == "8 8"
    # grids and checkpoints written once (rank 0), with plain keys
    grids = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    assert grids == ["final.png", "g_step_000002.png", "g_step_000004.png", "g_step_000006.png", "g_step_000008.png"]
    ckpts = sorted(p.name for p in (tmp_path / "ckpt").glob("*.ckpt"))
    assert ckpts == ["epoch=0-step=8.ckpt", "epoch=1-step=16.ckpt", "last.ckpt"]
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["state_dict"]
    assert state.keys() == rank0.keys()


CYCLEGAN_SCRIPT = textwrap.dedent(
    """
    import sys, torch, lightning as L
    from pathlib import Path
    from torch.utils.data import DataLoader, Dataset
    from lightning_gans import GANDDPStrategy
    from lightning_gans.models import CycleGAN

    class Unpaired(Dataset):
        def __len__(self):
            return 16
        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return {"A": torch.rand(3, 32, 32, generator=g) * 2 - 1, "B": torch.rand(3, 32, 32, generator=g) * 2 - 1}

    out = Path(sys.argv[1])
    L.seed_everything(0)
    model = CycleGAN(image_shape=(3, 32, 32), input_channels=3, num_blocks=1, g_channels=4, d_channels=4,
                     pool_size=4, n_epochs=1, n_epochs_decay=1)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy=GANDDPStrategy(), max_epochs=2, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                        default_root_dir=out, limit_val_batches=0)
    trainer.fit(model, DataLoader(Unpaired(), batch_size=2))
    rank = trainer.global_rank
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, out / f"rank{rank}.pt")
    torch.save(before, out / f"before{rank}.pt")
    (out / "params.txt").write_text(" ".join(n for n, _ in model.named_parameters()))
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    (out / f"rank{rank}.steps").write_text(f"{model.d_steps} {model.g_steps} {lr}")
    """
)


def test_ddp_cyclegan_four_networks_stay_in_sync(tmp_path: Path):
    """CycleGAN under DDP: two generators and two discriminators, each its own DDP; the image pools differ per rank
    (each holds its own fakes) but the all-reduced gradients keep every parameter identical on both ranks."""
    script = tmp_path / "train_cyclegan_ddp.py"
    script.write_text(CYCLEGAN_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rank0, rank1, before = (torch.load(tmp_path / f) for f in ("rank0.pt", "rank1.pt", "before0.pt"))
    params = (tmp_path / "params.txt").read_text().split()
    nets = {p.split(".")[0] for p in params}
    assert nets == {"generator_ab", "generator_ba", "discriminator_a", "discriminator_b"}
    for key in params:
        assert torch.equal(rank0[key], rank1[key]), f"{key} differs between ranks"
    for net in nets:  # every network trained
        assert any(not torch.equal(rank0[k], before[k]) for k in params if k.startswith(net + ".")), net
    # 16 pairs / 2 ranks / batch 2 = 4 steps an epoch, 2 epochs; the LR decayed to 0 after the last epoch
    assert (tmp_path / "rank0.steps").read_text() == (tmp_path / "rank1.steps").read_text()
    assert (tmp_path / "rank0.steps").read_text().startswith("8 8 ")


STYLEGAN_SCRIPT = textwrap.dedent(
    """
    import sys, torch, lightning as L
    from pathlib import Path
    from torch.utils.data import DataLoader, TensorDataset
    from lightning_gans import GANDDPStrategy
    from lightning_gans.models import StyleGAN
    from tests.families import TINY

    out = Path(sys.argv[1])
    L.seed_everything(0)
    model = StyleGAN(**TINY["StyleGAN"].kwargs)  # R1 every 2 D steps, path length every 2 G steps
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    data = TensorDataset(torch.rand(64, 3, 16, 16) * 2 - 1, torch.zeros(64, dtype=torch.long))
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy=GANDDPStrategy(), max_epochs=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                        default_root_dir=out, limit_val_batches=0)
    trainer.fit(model, DataLoader(data, batch_size=8))
    rank = trainer.global_rank
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, out / f"rank{rank}.pt")
    torch.save(before, out / f"before{rank}.pt")
    ema = model.generator_ema.module
    params = [n for n, _ in model.named_parameters()] + [f"generator_ema.module.{n}" for n, _ in ema.named_parameters()]
    (out / "params.txt").write_text(" ".join(params))
    (out / f"rank{rank}.steps").write_text(f"{model.d_steps} {model.g_steps} {int(model.images_seen)}")
    """
)


SUPERRES_SCRIPT = textwrap.dedent(
    """
    import sys, torch, lightning as L
    from pathlib import Path
    from torch.utils.data import DataLoader, Dataset
    from lightning_gans import GANDDPStrategy
    from lightning_gans.models import FAMILIES

    class Pairs(Dataset):
        def __len__(self):
            return 16
        def __getitem__(self, i):
            hr = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(i)) * 2 - 1
            return {"input": torch.nn.functional.avg_pool2d(hr[None], 4)[0], "target": hr, "name": f"{i}.png"}

    out, name = Path(sys.argv[1]), sys.argv[2]
    L.seed_everything(0)
    content = dict(lambda_vgg=0.0, lambda_d_features=1.0, lambda_ssim=1.0)
    kwargs = dict(image_shape=(3, 32, 32), g_channels=4, num_blocks=1, d_channels=4, d_dense_features=8)
    if name == "SRGAN":
        kwargs.update(kernel_size=3, content={**content, "lambda_pixel": 1.0})
    else:
        kwargs.update(growth=4, ema_decay=0.9, content=content)
    model = FAMILIES[name](**kwargs)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy=GANDDPStrategy(), max_epochs=2, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                        default_root_dir=out, limit_val_batches=0)
    trainer.fit(model, DataLoader(Pairs(), batch_size=2))
    rank = trainer.global_rank
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, out / f"rank{rank}.pt")
    torch.save(before, out / "before.pt")
    (out / "params.txt").write_text(" ".join(n for n, p in model.named_parameters() if p.requires_grad))
    (out / f"rank{rank}.steps").write_text(f"{model.d_steps} {model.g_steps}")
    """
)


def test_ddp_stylegan_regularisation_only_backward_passes_keep_ranks_in_sync(tmp_path: Path):
    """StyleGAN's lazy R1 and path-length steps are backward passes of a penalty alone, which leave some parameters
    out of the graph (DDP's "expected to have finished reduction" error) unless ``0 * output`` keeps them in: both
    ranks run them and end with identical parameters and EMA."""
    script = tmp_path / "train_stylegan_ddp.py"
    script.write_text(STYLEGAN_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rank0, rank1, before = (torch.load(tmp_path / f) for f in ("rank0.pt", "rank1.pt", "before0.pt"))
    params = (tmp_path / "params.txt").read_text().split()
    for key in params:
        assert torch.equal(rank0[key], rank1[key]), f"{key} differs between ranks"
    for net in ("generator.mapping", "generator.synthesis", "discriminator", "generator_ema"):
        assert any(not torch.equal(rank0[k], before[k]) for k in params if k.startswith(net)), net
    assert rank0["pl_mean"] > 0 and rank1["pl_mean"] > 0  # the path-length steps ran on both ranks
    # 64 images / 2 ranks / batch 8 = 4 steps; the images seen count the global batch of 16
    assert (tmp_path / "rank0.steps").read_text() == (tmp_path / "rank1.steps").read_text() == "4 4 64"


@pytest.mark.parametrize("name", [pytest.param("SRGAN", marks=pytest.mark.slow), "ESRGAN"])  # one in the default run
def test_ddp_superres_gans_stay_in_sync(name: str, tmp_path: Path):
    """SRGAN (batch norm in G and D, D feature matching) and ESRGAN (relativistic loss: D on real and fake twice per
    step, EMA G) under 2-process DDP: each network its own DDP, every parameter identical on both ranks."""
    script = tmp_path / "train_superres_ddp.py"
    script.write_text(SUPERRES_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path), name], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rank0, rank1, before = (torch.load(tmp_path / f) for f in ("rank0.pt", "rank1.pt", "before.pt"))
    params = (tmp_path / "params.txt").read_text().split()
    assert {p.split(".")[0] for p in params} == {"generator", "discriminator"}
    for key in params:
        assert torch.equal(rank0[key], rank1[key]), f"{key} differs between ranks"
    for net in ("generator", "discriminator"):
        assert any(not torch.equal(rank0[k], before[k]) for k in params if k.startswith(net + ".")), net
    if name == "ESRGAN":  # the EMA copy follows the synchronised G, so it agrees too
        for key in (k for k in rank0 if k.startswith("generator_ema.") and rank0[k].is_floating_point()):
            torch.testing.assert_close(rank0[key], rank1[key])
    # 16 pairs / 2 ranks / batch 2 = 4 steps an epoch, 2 epochs
    assert (tmp_path / "rank0.steps").read_text() == (tmp_path / "rank1.steps").read_text() == "8 8"
