"""EvaluationCallback in Lightning loops: logged keys, the real-feature cache, ModelCheckpoint on val/fid, balanced
labels, process-count-independent samples, mixtures with their scatter plot, translate mode, setup errors."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from datamodules.mixtures import GaussianMixtureDataModule
from lightning_gans.callbacks.evaluation import EvaluationCallback

SHAPE = (1, 4, 4)  # 16 identity features: FID needs > 16 samples, cheap everywhere


def uniform_images(n: int, seed: int, shape=SHAPE, spread: float = 1.0) -> torch.Tensor:
    return (torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1) * spread


class TinyData(L.LightningDataModule):
    """(images, labels) batches of uniform noise images: the 'real' distribution of these tests."""

    def __init__(self, n_val: int = 96, batch_size: int = 16, seed: int = 0) -> None:
        super().__init__()
        self.n_val, self.batch_size, self.seed = n_val, batch_size, seed
        self.image_shape, self.num_classes = SHAPE, 3

    def setup(self, stage: str) -> None:
        self.val_set = TensorDataset(uniform_images(self.n_val, self.seed), torch.arange(self.n_val) % 3)
        self.train_set = TensorDataset(uniform_images(64, self.seed + 1), torch.arange(64) % 3)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)


class TinyModel(L.LightningModule):
    """The training base's sampling interface, with a generator whose output spread we choose."""

    def __init__(self, spread: float = 1.0, conditional: bool = False, num_classes: int = 0) -> None:
        super().__init__()
        self.generator = nn.Linear(1, 1)  # something to optimise (and for DDP to wrap)
        self.spread, self.conditional, self.num_classes = spread, conditional, num_classes
        self.image_shape, self.latent_dim = SHAPE, 1
        self.sample_calls: list[tuple[int, torch.Tensor | None, bool]] = []

    def training_step(self, batch, batch_idx):
        return self.generator(torch.ones(1, 1, device=self.device)).pow(2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def validation_step(self, batch, batch_idx):
        return None

    @torch.no_grad()
    def sample(self, n=None, *, z=None, labels=None, use_ema=True):
        self.sample_calls.append((n, labels, use_ema))
        return (torch.rand(n, *self.image_shape, device=self.device) * 2 - 1) * self.spread


class MixtureModel(TinyModel):
    """A generator that samples a 2-D mixture exactly (or only its first ``modes`` components)."""

    def __init__(self, kind: str = "ring8", modes: int | None = None) -> None:
        super().__init__()
        self.dm = GaussianMixtureDataModule(kind)
        self.image_shape = (2,)
        self.modes = modes

    @torch.no_grad()
    def sample(self, n=None, *, z=None, labels=None, use_ema=True):
        points, _ = self.dm.sample(n)
        if self.modes is not None:
            centers = self.dm.mode_centers[: self.modes]
            points = centers[torch.arange(n) % self.modes] + self.dm.mode_std * torch.randn(n, 2)
        return points


def trainer(**kwargs) -> L.Trainer:
    opts = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    opts.update(kwargs)
    return L.Trainer(**opts)


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "real_stats")


def callback(cache_dir, **kwargs) -> EvaluationCallback:
    opts = dict(
        num_samples=64,
        batch_size=20,
        feature_extractor={"name": "identity"},
        real_cache={"dir": cache_dir},
        metric_options={"kid_subset_size": 32},
    )
    opts.update(kwargs)
    return EvaluationCallback(**opts)


def test_validate_logs_metrics_and_second_run_hits_the_cache(cache_dir):
    first = callback(cache_dir)
    results = trainer(callbacks=[first]).validate(TinyModel(), datamodule=TinyData(), verbose=False)[0]
    assert {"val/fid", "val/kid", "val/kid_std", "val/precision", "val/recall"} <= set(results)
    assert "val/is" not in results  # identity features have no logits
    assert results["val/num_real"] == 96 and results["val/num_generated"] == 64  # the counts FID depends on
    assert all(math.isfinite(v) for v in results.values())
    assert first.real_images_extracted == 96 and first.cache_saves == 1 and first.num_real == 96

    second = callback(cache_dir)  # a new run: real features come from disk
    again = trainer(callbacks=[second]).validate(TinyModel(), datamodule=TinyData(), verbose=False)[0]
    assert second.cache_hits == 1 and second.real_images_extracted == 0 and second.extractor.calls == 64
    assert again["val/fid"] == pytest.approx(results["val/fid"], rel=1e-6)  # same reals, same seeded fakes

    other = callback(cache_dir)  # other data (another seed): another key, no hit
    trainer(callbacks=[other]).validate(TinyModel(), datamodule=TinyData(seed=5), verbose=False)
    assert other.cache_hits == 0 and other.real_images_extracted == 96


def test_fid_separates_good_from_bad_generators(cache_dir):
    good = trainer(callbacks=[callback(cache_dir)]).validate(TinyModel(1.0), datamodule=TinyData(), verbose=False)
    bad = trainer(callbacks=[callback(cache_dir)]).validate(TinyModel(0.1), datamodule=TinyData(), verbose=False)
    assert bad[0]["val/fid"] > 5 * good[0]["val/fid"]
    assert bad[0]["val/recall"] < good[0]["val/recall"]


def test_fit_extracts_reals_once_and_checkpoints_on_val_fid(cache_dir, tmp_path):
    cb = callback(cache_dir, real_cache={"enabled": False})
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/fid", mode="min", save_top_k=1)
    t = trainer(
        callbacks=[cb, ckpt], max_epochs=2, limit_train_batches=2, enable_checkpointing=True, num_sanity_val_steps=2
    )
    t.fit(TinyModel(), datamodule=TinyData())
    assert cb.real_images_extracted == 96  # two validation epochs, one extraction; none in the sanity check
    assert ckpt.best_model_path and math.isfinite(float(ckpt.best_model_score))
    assert "val/fid" in t.callback_metrics


def test_num_real_samples_caps_the_real_set(cache_dir):
    cb = callback(cache_dir, num_real_samples=40)
    trainer(callbacks=[cb]).validate(TinyModel(), datamodule=TinyData(), verbose=False)
    assert cb.num_real == 40 and cb.real_images_extracted == 40


def test_conditional_models_get_balanced_labels_and_ema_flag(cache_dir):
    model = TinyModel(conditional=True, num_classes=3)
    cb = callback(cache_dir, num_samples=61, use_ema=False)
    trainer(callbacks=[cb]).validate(model, datamodule=TinyData(), verbose=False)
    labels = torch.cat([lab for _, lab, _ in model.sample_calls])
    assert torch.equal(labels, torch.arange(61) % 3)
    assert [n for n, _, _ in model.sample_calls] == [20, 20, 20, 1]
    assert not any(ema for _, _, ema in model.sample_calls)


def test_generated_set_does_not_depend_on_the_number_of_processes():
    """Chunks are seeded by their global index and dealt round-robin: 1 process and 3 draw the same samples."""
    cb = EvaluationCallback(num_samples=50, batch_size=8, feature_extractor={"name": "identity"}, metrics=["kid"])
    model = TinyModel()

    def drawn(world: int) -> torch.Tensor:
        out = []
        cb._update_fake = lambda fakes, trainer: out.append(fakes)  # noqa: E731
        for rank in range(world):
            cb._generate_all(SimpleNamespace(global_rank=rank, world_size=world, is_global_zero=rank == 0), model)
        return torch.cat(out)

    torch.manual_seed(123)
    state = torch.get_rng_state()
    one, three = drawn(1), drawn(3)
    assert one.shape == (50, *SHAPE)
    assert torch.equal(one.sum(0), three.sum(0)) or torch.allclose(one.sum(0), three.sum(0), atol=1e-5)
    assert sorted(one.flatten(1).sum(1).tolist()) == pytest.approx(sorted(three.flatten(1).sum(1).tolist()))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG stream is left alone


def test_mixture_modes_logged_with_scatter_plot(tmp_path, cache_dir):
    dm = GaussianMixtureDataModule("ring8", num_samples=256, num_val_samples=64, batch_size=32)
    good = callback(cache_dir, num_samples=800, batch_size=200, feature_extractor={"name": "inception"})  # unused
    logger = TensorBoardLogger(tmp_path / "logs")
    t = trainer(callbacks=[good], logger=logger)
    res = t.validate(MixtureModel("ring8"), datamodule=dm, verbose=False)[0]
    assert good.metrics == ("modes",) and good.evaluator is None
    assert res["val/modes_covered"] == 8 and res["val/high_quality"] > 0.95
    assert good.last_scatter is not None and good.last_scatter.shape == (3, 256, 256)
    assert (tmp_path / "logs" / "lightning_logs" / "version_0" / "evaluation" / "modes_epoch_000.png").is_file()

    collapsed = callback(cache_dir, num_samples=800, batch_size=200)
    res = trainer(callbacks=[collapsed]).validate(MixtureModel("ring8", modes=3), datamodule=dm, verbose=False)[0]
    assert res["val/modes_covered"] == 3 and res["val/mode_kl"] > 0.9


def test_mixture_with_identity_features_gives_fid_too(cache_dir):
    dm = GaussianMixtureDataModule("grid25", num_samples=256, num_val_samples=500, batch_size=100)
    cb = callback(cache_dir, num_samples=500, batch_size=250, metrics=["modes", "fid", "precision_recall"])
    res = trainer(callbacks=[cb]).validate(MixtureModel("grid25"), datamodule=dm, verbose=False)[0]
    assert res["val/modes_covered"] == 25 and res["val/fid"] < 0.01 and res["val/precision"] > 0.8


class Translator(TinyModel):
    def translate(self, batch):
        return batch[0] * 0.5


def test_translate_mode_uses_validation_batches(cache_dir):
    cb = callback(cache_dir, source="translate", metrics=["fid", "kid"])
    res = trainer(callbacks=[cb]).validate(Translator(), datamodule=TinyData(), verbose=False)[0]
    assert cb.evaluator.num_fake == 0  # reset after the epoch
    assert res["val/fid"] > 0.1 and math.isfinite(res["val/kid"])


def test_setup_errors_come_before_generation(cache_dir):
    dm = GaussianMixtureDataModule("ring8", num_samples=64, num_val_samples=64)
    cb = callback(cache_dir, feature_extractor={"name": "inception_local"}, metrics=["kid"])
    with pytest.raises(ValueError, match="points, not images"):
        trainer(callbacks=[cb]).validate(MixtureModel(), datamodule=dm, verbose=False)

    class NoSample(L.LightningModule):
        def validation_step(self, batch, batch_idx):
            return None

    with pytest.raises(TypeError, match="no sample"):
        trainer(callbacks=[callback(cache_dir)]).validate(NoSample(), datamodule=TinyData(), verbose=False)
    with pytest.raises(ValueError, match="mode_centers"):
        trainer(callbacks=[callback(cache_dir, metrics=["modes"])]).validate(
            TinyModel(), datamodule=TinyData(), verbose=False
        )
    with pytest.raises(ValueError, match="below the feature dimension 16"):  # identity: known at setup
        trainer(callbacks=[callback(cache_dir, num_samples=10)]).validate(
            TinyModel(), datamodule=TinyData(), verbose=False
        )


def test_a_reused_callback_never_keeps_another_runs_reals(cache_dir):
    cb = callback(cache_dir, real_cache={"enabled": False})
    trainer(callbacks=[cb]).validate(TinyModel(), datamodule=TinyData(seed=0), verbose=False)
    trainer(callbacks=[cb]).validate(TinyModel(), datamodule=TinyData(seed=9, n_val=80), verbose=False)
    assert cb.num_real == 80 and cb.real_images_extracted == 96 + 80


class CountedData(TinyData):
    """TinyData whose validation set the callback can count before the loop runs (``datasets["val"]``, as the
    project's datamodules have)."""

    def setup(self, stage: str) -> None:
        super().setup(stage)
        self.datasets = {"train": self.train_set, "val": self.val_set}


def test_counts_the_metrics_need_are_checked_before_anything_is_generated(cache_dir):
    """Too few held-out images for what the metrics need: an error before the first generated sample where a metric
    cannot mean anything (an empty split, precision/recall's k), a warning where KID runs on smaller subsets."""
    model = TinyModel()
    with pytest.raises(ValueError, match=r"gives 1 real image\(s\), but kid, precision_recall compare"):
        trainer(callbacks=[callback(cache_dir, metrics=["kid", "precision_recall"])]).validate(
            model, datamodule=CountedData(n_val=1), verbose=False
        )
    with pytest.raises(ValueError, match=r"pr_k=3 needs more than 3 real images .* got 3: lower metric_options.pr_k"):
        trainer(callbacks=[callback(cache_dir, metrics=["precision_recall"])]).validate(
            model, datamodule=CountedData(n_val=3), verbose=False
        )
    assert model.sample_calls == []  # nothing was generated
    with pytest.warns(
        UserWarning,
        match=r"KID's subsets shrink from metric_options.kid_subset_size=32 to the 12 real images.*"
        r"every evaluation still generates 64 samples. Training goes on",
    ):
        trainer(callbacks=[callback(cache_dir, metrics=["kid"])]).validate(
            model, datamodule=CountedData(n_val=12), verbose=False
        )


# ------------------------------------------------------------------------------- option groups and the 0.1 names
# The 0.1 constructor's flat options, with values other than the defaults, and the groups they moved into.
OLD_STYLE = dict(
    extractor="identity",
    extractor_path=None,
    resize="antialias",
    kid_subsets=7,
    kid_subset_size=12,
    is_splits=3,
    pr_k=2,
    coverage_threshold=0.2,
    mode_num_std=2.5,
    cache=False,
    cache_dir="/tmp/real_stats",
    cache_key="v2",
    image_key="target",
    input_key="input",
)
NEW_STYLE = dict(
    feature_extractor={"name": "identity", "path": None, "resize": "antialias"},
    metric_options={
        "kid_subsets": 7,
        "kid_subset_size": 12,
        "is_splits": 3,
        "pr_k": 2,
        "coverage_threshold": 0.2,
        "mode_num_std": 2.5,
    },
    real_cache={"enabled": False, "dir": "/tmp/real_stats", "key": "v2"},
    batch_keys={"images": "target", "inputs": "input"},
)
GROUPS = ("feature_extractor", "metric_options", "real_cache", "batch_keys")


def test_option_groups_take_a_dict_an_instance_or_none_and_check_their_values():
    from lightning_gans.callbacks.evaluation import BatchKeys, FeatureExtractorOptions, MetricOptions, RealCacheOptions

    cb = EvaluationCallback(
        metrics=["kid"],
        feature_extractor=FeatureExtractorOptions("identity"),
        metric_options={"kid_subset_size": 32},
        real_cache=None,
    )
    assert cb.feature_extractor == FeatureExtractorOptions(name="identity", path=None, resize="tf1")
    assert cb.metric_options == MetricOptions(kid_subset_size=32)  # the rest: the defaults
    assert cb.real_cache == RealCacheOptions() and cb.real_cache.enabled
    assert cb.batch_keys == BatchKeys(images=0, inputs=None)
    assert cb.extractor_name == "identity" and cb.mode_num_std == 3.0 and cb.coverage_threshold == 0.1
    with pytest.raises(ValueError, match=r"Unknown real_cache option\(s\) \['folder'\]"):
        EvaluationCallback(metrics=["kid"], feature_extractor={"name": "identity"}, real_cache={"folder": "x"})
    with pytest.raises(ValueError, match="feature_extractor.resize must be one of"):
        FeatureExtractorOptions(name="identity", resize="nearest")
    with pytest.raises(ValueError, match="Unknown feature extractor 'vgg'"):
        FeatureExtractorOptions(name="vgg")
    with pytest.raises(ValueError, match="metric_options.pr_k must be at least 1"):
        MetricOptions(pr_k=0)
    with pytest.raises(ValueError, match="metric_options.mode_num_std must be positive"):
        MetricOptions(mode_num_std=0)
    with pytest.raises(TypeError, match="positional argument"):  # past batch_size, by name (the order changed)
        EvaluationCallback(64, 20, "identity")


def test_the_0_1_names_warn_naming_the_new_options_and_build_the_same_callback():
    with pytest.warns(FutureWarning) as caught:
        old = EvaluationCallback(num_samples=64, metrics=["kid"], source="translate", **OLD_STYLE)
    message = " ".join(str(w.message) for w in caught)
    for name, new in [("extractor", "feature_extractor.name"), ("cache_dir", "real_cache.dir")]:
        assert f"'{name}'" in message and new in message
    for name in OLD_STYLE:  # every old name is named, with the option it moved to
        assert f"'{name}'" in message
    new = EvaluationCallback(num_samples=64, metrics=["kid"], source="translate", **NEW_STYLE)
    for group in GROUPS:
        assert getattr(old, group) == getattr(new, group), group
    assert (old.real.cache, old.real.image_key, old.real.cache_key) == (None, "target", "v2")
    assert vars(new.real) == vars(old.real)


def test_an_old_style_config_dict_is_upgraded_to_the_groups():
    from lightning_gans.renames import upgrade

    old = {"num_samples": 64, "metrics": ["kid"], "batch_size": 8, **OLD_STYLE}
    with pytest.warns(FutureWarning, match="feature_extractor.name"):
        upgraded = upgrade("EvaluationCallback", old)
    assert upgraded == {"num_samples": 64, "metrics": ["kid"], "batch_size": 8, **NEW_STYLE}
    # An option already in its group and an old one that moves next to it end up together.
    partial = upgrade("EvaluationCallback", {"real_cache": {"dir": "/x"}, "cache_key": "v3"}, warn=False)
    assert partial == {"real_cache": {"dir": "/x", "key": "v3"}}
    # The shipped evaluation configs use the new names only.
    import yaml

    for path in sorted((Path(__file__).parents[1] / "configs" / "evaluation").glob("*.yaml")):
        init_args = yaml.safe_load(path.read_text())["init_args"]
        assert upgrade("EvaluationCallback", init_args, warn=False) == init_args, path.name


def _val_trainer(dataset) -> SimpleNamespace:
    """What cache_parts reads of a Trainer."""
    return SimpleNamespace(
        datamodule=None, val_dataloaders=DataLoader(dataset, batch_size=2), limit_val_batches=1.0, world_size=1
    )


def test_cache_keys_are_those_of_0_1_so_existing_caches_stay_valid():
    """The keys below were computed by the 0.1 callback (flat options) for the same settings: a cache written then
    is found now, whichever names build the callback."""
    from lightning_gans.metrics.cache import cache_key
    from lightning_gans.metrics.extractors import IdentityExtractor

    images = torch.arange(6 * 16, dtype=torch.float32).reshape(6, 1, 4, 4) / 96
    t = _val_trainer(TensorDataset(images, torch.arange(6)))
    identity = IdentityExtractor(16)

    def key(cb: EvaluationCallback) -> str:
        return cache_key(cb.real.cache_parts(t, identity))

    defaults = EvaluationCallback(metrics=["kid"], feature_extractor={"name": "identity"})
    assert key(defaults) == "f0d7e7480014761ee363b97e32454ba081e7878c"
    new = EvaluationCallback(
        metrics=["kid"], num_real_samples=4, feature_extractor={"name": "identity"}, real_cache={"key": "v1"}
    )
    assert key(new) == "fafee0f5ece487268d6ec4c304df6b21c37b5f47"
    with pytest.warns(FutureWarning):
        old = EvaluationCallback(metrics=["kid"], num_real_samples=4, extractor="identity", cache_key="v1")
    assert key(old) == key(new)


def test_a_cache_written_with_the_old_names_is_hit_with_the_new_ones(cache_dir):
    with pytest.warns(FutureWarning, match="real_cache.dir"):
        first = EvaluationCallback(
            num_samples=64, batch_size=20, extractor="identity", cache_dir=cache_dir, kid_subset_size=32
        )
    results = trainer(callbacks=[first]).validate(TinyModel(), datamodule=TinyData(), verbose=False)[0]
    assert first.cache_saves == 1
    second = callback(cache_dir)  # the same settings under the new names
    again = trainer(callbacks=[second]).validate(TinyModel(), datamodule=TinyData(), verbose=False)[0]
    assert second.cache_hits == 1 and second.real_images_extracted == 0
    assert again == pytest.approx(results, rel=1e-6)
