"""ADA in the families (``ada``, lightning_gans/adaptive.py): every adversarial noise-to-image family that takes the
toolbox, and StyleGAN, sends every D input through its ADA module, feeds D's real logits to the controller after each D
step and logs p and r_t; p adapts in a real run; a resumed run continues with the same p and accumulators; the
checkpoint keeps the option as plain data and a pretrained folder leaves the ADA state out; bad combinations fail."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_gans.adaptive import Ada, AdaptiveAugment
from lightning_gans.host_reads import count_host_reads
from lightning_gans.models import DCGAN, FAMILIES
from lightning_gans.pretrained import CONFIG, WEIGHTS, from_pretrained
from lightning_gans.toolbox import Toolbox
from tests.conftest import quiet_trainer
from tests.families import TINY
from tests.test_resume import KWARGS as RESUME_KWARGS
from tests.test_resume import _data as resume_data

ADA_FAMILIES = ("ACGAN", "BiGAN", "CGAN", "DCGAN", "GAN", "SAGAN", "SNGAN", "StyleGAN", "WGAN", "WGANGP")


class Spy:
    """Wraps a model's ADA module: keeps what it returned (and whether that differs from its input) and the logits it
    was asked to observe; the discriminator's inputs are kept by a forward pre-hook."""

    def __init__(self, model) -> None:
        ada: AdaptiveAugment = model.ada
        self.outputs: list[torch.Tensor] = []
        self.changed: list[bool] = []
        self.observed: list[torch.Tensor] = []
        self.d_inputs: list[torch.Tensor] = []
        forward, observe = ada.forward, ada.observe

        def augment(images, generator=None):
            out = forward(images, generator)
            self.outputs.append(out)
            self.changed.append(not torch.equal(out, images))
            return out

        def watch(logits):
            self.observed.append(logits.detach().clone())
            observe(logits)

        ada.forward, ada.observe = augment, watch
        model.discriminator.register_forward_pre_hook(lambda module, args: self.d_inputs.append(args[0]))


def test_d_input_applies_ada_first_then_instance_noise():
    x = torch.ones(2, 1, 4, 4)
    toolbox = Toolbox(instance_noise=1.0)
    torch.manual_seed(0)
    seen = toolbox.d_input(x, 0, ada=torch.zeros_like)  # ADA's output gets the noise: not zero
    torch.manual_seed(0)
    assert torch.equal(seen, toolbox.d_input(torch.zeros_like(x), 0)) and seen.abs().sum() > 0
    assert torch.equal(Toolbox().d_input(x, 0, ada=None), x)


def test_exactly_the_adversarial_noise_to_image_families_take_ada():
    takes = sorted(name for name, cls in FAMILIES.items() if "ada" in inspect.signature(cls.__init__).parameters)
    assert takes == sorted(ADA_FAMILIES)
    for name in ADA_FAMILIES:  # off by default: no module, nothing in the state dict
        model = FAMILIES[name](**TINY[name].kwargs)
        assert model.ada is None and not any(k.startswith("ada.") for k in model.state_dict())


@pytest.mark.parametrize("name", ADA_FAMILIES)
def test_every_family_trains_with_ada_on_every_d_input(name: str, tmp_path: Path):
    spec = TINY[name]
    torch.manual_seed(0)
    model = FAMILIES[name](**spec.kwargs, ada={"policy": "bgc", "p": 0.5, "interval": 2})
    assert isinstance(model.ada, AdaptiveAugment) and model.hparams["ada"]["policy"] == "bgc"
    spy = Spy(model)
    before = {net: [p.detach().clone() for p in getattr(model, net).parameters()] for net in spec.trained}
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0)
    trainer.fit(model, DataLoader([spec.batch()] * 2, batch_size=None))

    assert model.d_steps == 2
    for net, params in before.items():
        after = list(getattr(model, net).parameters())
        assert any(not torch.equal(a, b) for a, b in zip(params, after)), f"{name}.{net} did not change"
    # every D input, real and fake, in D's and G's steps (and the penalties), came out of ADA, which changed some
    assert spy.d_inputs and all(any(x is out for out in spy.outputs) for x in spy.d_inputs)
    assert any(spy.changed)
    # the real logits of both D steps were observed (StyleGAN: D main's, and R1's at its first step); at D step 2
    # (interval 2) r_t was taken from them and the accumulators were reset
    observed = torch.cat([logits.flatten() for logits in spy.observed])
    assert len(spy.observed) == (3 if name == "StyleGAN" else 2)
    assert float(model.ada.sign_count) == 0.0 and float(model.ada.sign_sum) == 0.0
    assert torch.allclose(model.ada.r_t, observed.sign().mean())
    assert float(model.ada.p) == pytest.approx(0.5)  # fixed p: measured, not moved
    metrics = trainer.callback_metrics
    assert float(metrics["train/ada_p"]) == pytest.approx(0.5) and "train/ada_r_t" in metrics


def test_adaptive_p_moves_by_the_papers_rule_in_a_family(tmp_path: Path):
    torch.manual_seed(0)
    model = DCGAN(**TINY["DCGAN"].kwargs, ada={"policy": "bgc", "target": 0.3, "speed_images": 10, "interval": 1})
    moves: list[tuple[float, float, float]] = []  # (p before, r_t, p after) of each adjustment
    adjust = model.ada.adjust

    def watched(d_steps: int, batch_size: int) -> None:
        p = float(model.ada.p)
        adjust(d_steps, batch_size)
        moves.append((p, float(model.ada.r_t), float(model.ada.p)))

    model.ada.adjust = watched
    quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0).fit(
        model, DataLoader([TINY["DCGAN"].batch()] * 6, batch_size=None)
    )
    assert len(moves) == 6
    step = 4 * 1 / 10  # batch x interval / speed_images
    for p, r_t, p_after in moves:
        expected = min(max(p + step * (1 if r_t > 0.3 else -1 if r_t < 0.3 else 0), 0.0), 1 - 1e-6)
        assert p_after == pytest.approx(expected, abs=1e-6), moves
    assert any(p_after > 0 for _, _, p_after in moves), moves  # r_t above the target at some point: p went up


def _resume_run(root: Path, epochs: int, ckpt_path: str | None = None) -> DCGAN:
    """tests/test_resume.py's run (its data, its DCGAN with EMA and n_critic 2, a last checkpoint) with ADA adaptive:
    interval 3 over 4 D steps an epoch, so the checkpoint falls mid-interval."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    L.seed_everything(7)
    model = DCGAN(**RESUME_KWARGS, ada={"policy": "bgc", "speed_images": 100, "interval": 3})
    trainer = quiet_trainer(
        root,
        max_epochs=epochs,
        deterministic=True,
        enable_checkpointing=True,
        callbacks=[ModelCheckpoint(dirpath=root / "ckpt", save_last=True, save_top_k=0)],
    )
    trainer.fit(model, resume_data(), ckpt_path=ckpt_path)
    return model


def test_a_resumed_run_continues_with_the_same_p_and_accumulators(tmp_path: Path):
    straight = _resume_run(tmp_path / "straight", epochs=2)
    _resume_run(tmp_path / "split", epochs=1)
    ckpt = torch.load(tmp_path / "split" / "ckpt" / "last.ckpt", weights_only=True)
    assert float(ckpt["state_dict"]["ada.sign_count"]) == 8  # D step 4: one step into the second interval
    assert ckpt["hyper_parameters"]["ada"] == {"policy": "bgc", "speed_images": 100, "interval": 3}
    resumed = _resume_run(tmp_path / "split", epochs=2, ckpt_path=str(tmp_path / "split" / "ckpt" / "last.ckpt"))

    assert (resumed.d_steps, resumed.g_steps) == (straight.d_steps, straight.g_steps) == (8, 4)
    for buffer in ("p", "r_t", "sign_sum", "sign_count"):
        assert torch.equal(getattr(straight.ada, buffer), getattr(resumed.ada, buffer)), buffer
    assert float(straight.ada.sign_count) == 2 * 8  # D steps 7 and 8 since the adjustment at 6
    straight_state, resumed_state = straight.state_dict(), resumed.state_dict()
    assert straight_state.keys() == resumed_state.keys()
    for key in straight_state:  # G, D, EMA, ADA
        assert torch.equal(straight_state[key], resumed_state[key]), f"{key} differs after resume"


def test_ada_is_plain_data_in_checkpoints_and_stays_out_of_pretrained_folders(tmp_path: Path):
    torch.manual_seed(0)
    model = DCGAN(**TINY["DCGAN"].kwargs, ada=Ada(policy="bg", p=0.25))
    assert model.hparams["ada"] == dataclasses.asdict(Ada(policy="bg", p=0.25))  # an instance is kept as a mapping
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0)
    trainer.fit(model, DataLoader([TINY["DCGAN"].batch()], batch_size=None))
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    loaded = DCGAN.load_from_checkpoint(tmp_path / "model.ckpt", weights_only=True)
    assert loaded.ada.policy == "bg" and torch.equal(loaded.ada.p, model.ada.p)

    folder = model.save_pretrained(str(tmp_path / "pretrained"))
    from safetensors.torch import load_file

    assert not any(k.startswith("ada.") for k in load_file(str(folder / WEIGHTS)))
    assert json.loads((folder / CONFIG).read_text())["init_args"]["ada"]["policy"] == "bg"
    restored = from_pretrained(folder)
    assert restored.ada is None and restored.sample(2).shape == (2, *model.image_shape)


def test_a_steady_step_with_ada_reads_nothing_on_the_host_outside_the_pipeline(tmp_path: Path):
    """observe, adjust and the logged p and r_t stay on the device: only the last batch reports (its D and G update
    read their values once each)."""
    torch.manual_seed(0)
    model = DCGAN(**TINY["DCGAN"].kwargs, ada={"policy": "bgc", "interval": 2})
    with count_host_reads() as reads:
        quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0, log_every_n_steps=100).fit(
            model, DataLoader([TINY["DCGAN"].batch()] * 6, batch_size=None)
        )
    # ada.py's own reads are left out: on a CPU it reads p (a CPU tensor; not on an accelerator), see its docstring
    ours = {site: n for (what, site), n in reads.project.items() if not site.startswith("lightning_gans/ada.py")}
    assert set(ours) <= {"lightning_gans/loss_watch.py:87 in read"} and sum(ours.values()) <= 2, ours  # last batch


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("DCGAN", {"toolbox": {"diffaugment": "color"}}), ("StyleGAN", {"diffaugment": "color"})],
)
def test_ada_and_diffaugment_together_are_refused(name: str, kwargs: dict):
    with pytest.raises(ValueError, match=r"ada\.policy 'bgc' and diffaugment 'color' both augment D's inputs"):
        FAMILIES[name](**{**TINY[name].kwargs, **kwargs}, ada={"policy": "bgc"})


def test_bad_ada_options_are_refused():
    with pytest.raises(ValueError, match=r"Unknown ada option\(s\) \['polcy'\]"):
        DCGAN(**TINY["DCGAN"].kwargs, ada={"polcy": "bgc"})
    with pytest.raises(ValueError, match="Unknown ADA policy 'bgcfnc'"):
        DCGAN(**TINY["DCGAN"].kwargs, ada={"policy": "bgcfnc"})
    with pytest.raises(ValueError, match=r"ada works on images \(C, H, W\); this data has shape \(2,\)"):
        FAMILIES["GAN"](image_shape=(2,), latent_dim=2, ada={"policy": "b"})
