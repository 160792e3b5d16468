"""DDP on CPU with 2 processes (gloo) for the text-to-image families: DF-GAN's MA-GP (a double backward through
D's DDP wrapper) and a fine-tuned text encoder (its own DDP wrapper, stepped with G) train in step on both ranks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.ddp

SCRIPT = textwrap.dedent(
    """
    import sys, torch, lightning as L
    from pathlib import Path
    from torch.utils.data import DataLoader
    from lightning_gans import GANDDPStrategy
    from lightning_gans.models import DFGAN, GANINTCLS
    from tests.families import TINY
    from tests.test_resume import _Samples

    out, name = Path(sys.argv[1]), sys.argv[2]
    L.seed_everything(0)
    spec = TINY[name]
    text = {**spec.kwargs["text"], "finetune": True}
    model = {"DFGAN": DFGAN, "GANINTCLS": GANINTCLS}[name](**{**spec.kwargs, "text": text})
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy=GANDDPStrategy(), max_epochs=2, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, default_root_dir=out,
    )
    trainer.fit(model, DataLoader(_Samples(spec.batch(), repeats=4), batch_size=2))
    assert type(model.text_encoder).__name__ == "TextEncoder"  # unwrapped after fit
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    torch.save(params, out / f"rank{trainer.global_rank}.pt")
    (out / f"rank{trainer.global_rank}.steps").write_text(f"{model.d_steps} {model.g_steps}")
    """
)


@pytest.mark.parametrize("name", ["DFGAN"])  # GANINTCLS shares the text plumbing; DF-GAN adds MA-GP
def test_text_families_train_under_ddp_with_a_fine_tuned_encoder(name: str, tmp_path: Path):
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path), name],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert any(k.startswith("text_encoder.") for k in rank0)
    for key in rank0:  # G, D and the fine-tuned text encoder agree across ranks
        assert torch.equal(rank0[key], rank1[key]), f"{key} differs between ranks"
    # 16 samples / 2 ranks / batch 2 = 4 steps an epoch, 2 epochs
    assert (tmp_path / "rank0.steps").read_text() == (tmp_path / "rank1.steps").read_text() == "8 8"
