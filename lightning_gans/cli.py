"""``lightning-gans fit|validate|test|predict``: LightningCLI with the GAN-specific wiring.

- Any family (``--model DCGAN`` or ``class_path`` in YAML) and any datamodule (``--data MNISTDataModule``).
- Configs are deltas: :data:`DEFAULTS_FILE` (``lightning_gans/defaults.yaml``, shipped with the package) is every
  subcommand's default config, loaded before any ``--config``; an experiment config holds only what differs from
  it and from the classes' own defaults. ``--print_config`` shows the full, resolved config.
- One run folder: ``trainer.default_root_dir``. The defaults point the logger, the checkpoints and the predictions
  at ``${trainer.default_root_dir}``, resolved after every config and flag is merged (``parser_mode="omegaconf+"``),
  so ``--trainer.default_root_dir DIR`` moves them all. The same ``${...}`` interpolation works in and across
  config files (absolute paths from the subcommand's root, e.g. ``${trainer.max_epochs}``).
- The callbacks every run has are argument groups, not items of ``trainer.callbacks``: ``--checkpoint.*``
  (ModelCheckpoint; off with ``--trainer.enable_checkpointing false`` and under ``fast_dev_run``), ``--sample_grid.*``
  (:class:`~lightning_gans.callbacks.SampleGrid`) and ``--writer.*`` (:class:`~lightning_gans.callbacks.ImageWriter`,
  where ``predict`` writes images). ``trainer.callbacks`` holds only an experiment's own callbacks (its
  evaluation), so a config's list never has to repeat the shared ones. A later YAML list replaces an earlier one;
  ``--trainer.callbacks+=CLASS_OR_FILE`` on the command line appends one more.
- ``image_shape`` and ``num_classes`` come from the datamodule (linked when it is instantiated), never from YAML; so
  does ``vocabulary`` where both have one (the caption datamodules and the text-to-image models: the words of the
  training captions). A link whose source or target does not exist is skipped.
- The optimizers come from the family's ``configure_optimizers``: ``auto_configure_optimizers=False``, and a stray
  ``--optimizer``/``--lr_scheduler`` flag is refused (LightningCLI would otherwise replace a GAN's two optimizers
  by one over all parameters, with only a warning).
- DDP: where Lightning would give a :class:`~lightning_gans.core.GANModule` its plain DDPStrategy
  (``--trainer.strategy ddp``, ``ddp_spawn``, ``ddp_fork``, ``ddp_notebook``, their ``_find_unused_parameters_*``
  variants, or ``auto`` on several devices), the Trainer gets :class:`~lightning_gans.strategy.GANDDPStrategy`
  with the same start method and options. Nothing is registered in Lightning's StrategyRegistry.
- ``predict`` uses the datamodule's predict set when it has one (image-to-image), else the model's noise, and does
  not keep the images in memory (``return_predictions`` defaults to false: they go to files through the writer).
- The config of each run is saved in the run's own versioned folder (for W&B too), never over an earlier one,
  and sent to W&B when that is the logger.
- A ``--ckpt_path`` that does not exist is an error before anything is built.
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from jsonargparse import set_parsing_settings
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden

import datamodules  # noqa: F401  (registers the datamodules as subclasses for --data NAME)
import lightning_gans.models  # noqa: F401  (registers the families for --model NAME)
from lightning_gans.callbacks.common import run_dir
from lightning_gans.callbacks.image_writer import ImageWriter
from lightning_gans.callbacks.sample_grid import SampleGrid
from lightning_gans.core import GANModule
from lightning_gans.strategy import GANDDPStrategy

_CKPT_KEYWORDS = ("last", "best", "hpc", "registry")

#: The default config of every subcommand (see the module docstring and the file's own comments).
DEFAULTS_FILE = Path(__file__).resolve().with_name("defaults.yaml")

#: Argument groups that each add one callback to every run (``--checkpoint.*``, ``--sample_grid.*``, ``--writer.*``).
CALLBACK_GROUPS = {"checkpoint": ModelCheckpoint, "sample_grid": SampleGrid, "writer": ImageWriter}


class RunConfigSaver(SaveConfigCallback):
    """Save the full config as ``config.yaml`` in the run's folder (``config_1.yaml``... if one exists) and log it
    to W&B."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        if trainer.is_global_zero:
            folder = run_dir(trainer)
            folder.mkdir(parents=True, exist_ok=True)
            path, n = folder / self.config_filename, 0
            while path.exists():
                n += 1
                path = folder / f"{Path(self.config_filename).stem}_{n}.yaml"
            self.parser.save(self.config, str(path), skip_none=False, overwrite=False, multifile=False)
            self.saved_path = path
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
                    logger.experiment.config.update({"config": config}, allow_val_change=True)
            self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)


class GANCLI(LightningCLI):
    """LightningCLI for lightning-gans (see the module docstring)."""

    def __init__(self, args: list[str] | None = None, run: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("save_config_callback", RunConfigSaver)
        kwargs["parser_kwargs"] = self._with_defaults(kwargs.get("parser_kwargs") or {}, run)
        # `${trainer.default_root_dir}` in a config file means the same key in every file it is written in: the
        # interpolation is made relative to where it stands, so it resolves inside any subcommand (omegaconf+ resolves
        # from the root parser, where the key is `fit.trainer.default_root_dir`). Only omegaconf+ parsers read this.
        set_parsing_settings(omegaconf_absolute_to_relative_paths=True)
        super().__init__(
            model_class=GANModule,
            subclass_mode_model=True,
            datamodule_class=L.LightningDataModule,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            args=args,
            run=run,
            **kwargs,
        )

    @classmethod
    def _with_defaults(cls, parser_kwargs: dict[str, Any], run: bool) -> dict[str, Any]:
        """``parser_kwargs`` with omegaconf+ and :data:`DEFAULTS_FILE` for each subcommand's parser (or the one parser
        without subcommands); what the caller gives wins."""
        own = {"parser_mode": "omegaconf+", "default_config_files": [glob.escape(str(DEFAULTS_FILE))]}
        subcommands = cls.subcommands()
        main = {k: v for k, v in parser_kwargs.items() if k not in subcommands}
        if not run:
            return {**own, **main}
        merged = {"parser_mode": own["parser_mode"], **main}
        for name in subcommands:
            merged[name] = {**own, **parser_kwargs.get(name, {})}
        return merged

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.image_shape", "model.init_args.image_shape", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        # Text-to-image: the training captions' words. jsonargparse skips the link for a datamodule without the
        # attribute or a model without the argument.
        parser.link_arguments("data.vocabulary", "model.init_args.vocabulary", apply_on="instantiate")
        for key, callback_class in CALLBACK_GROUPS.items():
            parser.add_lightning_class_args(callback_class, key)

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any):
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "predict":
            # Images go to files through the writer; keeping them all in memory too is what runs out of RAM. (The
            # subcommand's own arguments exist only now, after add_arguments_to_parser.)
            parser.set_defaults(return_predictions=False)
        return parser

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        datamodule = kwargs.get("datamodule")
        if subcommand == "predict" and datamodule is not None and not is_overridden(
            "predict_dataloader", datamodule, L.LightningDataModule
        ):
            # No predict set in the data (MNIST, CelebA): noise families predict from their own noise loader.
            kwargs["datamodule"] = None
        return kwargs

    def before_instantiate_classes(self) -> None:
        config = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        ckpt_path = config.get("ckpt_path")
        if ckpt_path and ckpt_path not in _CKPT_KEYWORDS and not Path(ckpt_path).is_file():
            raise FileNotFoundError(
                f"--ckpt_path {ckpt_path}: no such checkpoint file (resolved to {Path(ckpt_path).resolve()}). "
                "Give the path of a .ckpt file (see the run's checkpoints/ folder), or 'last' to resume from the "
                "last checkpoint of the run folder's checkpoints/."
            )

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> L.Trainer:
        """The Trainer, with the group callbacks that apply and GANDDPStrategy where Lightning would use plain DDP."""
        if config.get("enable_checkpointing") is False or config.get("fast_dev_run"):
            # Off with Lightning's switch (which refuses a ModelCheckpoint otherwise), and under fast_dev_run, which
            # should write nothing: Lightning 2.6's ModelCheckpoint.on_train_end still saves last.ckpt there, which a
            # later `--ckpt_path last` would resume.
            checkpoint = self._get(self.config_init, "checkpoint")
            callbacks = [cb for cb in callbacks if cb is not checkpoint]
        own = config.get("callbacks")
        own = [] if own is None else list(own) if isinstance(own, list) else [own]

        def build(**changes: Any) -> L.Trainer:
            # A fresh list each time: LightningCLI extends it in place, and so does the Trainer.
            return super(GANCLI, self)._instantiate_trainer({**config, "callbacks": list(own), **changes}, callbacks)

        trainer = build()
        strategy = trainer.strategy
        if isinstance(config.get("strategy", "auto"), str) and isinstance(self.model, GANModule) and (
            type(strategy) is DDPStrategy
        ):
            # A ddp name or `auto` on several devices resolved, through Lightning's own rules and registry, to its
            # plain DDPStrategy, which stops GAN steps with the unused-parameters error: the same start method and
            # DDP options, one DDP per network (lightning_gans/strategy.py).
            trainer = build(strategy=GANDDPStrategy(start_method=strategy._start_method, **strategy._ddp_kwargs))
        return trainer


def _refuse_optimizer_flags(argv: list[str]) -> None:
    for arg in argv:
        name = arg.split("=", 1)[0]
        if name in ("--optimizer", "--lr_scheduler") or name.startswith(("--optimizer.", "--lr_scheduler.")):
            raise SystemExit(
                f"lightning-gans: {name} is not an option here: each family builds its own two optimizers. "
                "Set them on the model instead, e.g. --model.init_args.lr_g 1e-4 --model.init_args.lr_d 4e-4 "
                "--model.init_args.optimizer adam (see `lightning-gans fit --model DCGAN --help`)."
            )


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``lightning-gans`` command; ``main(["fit", "--config", ...])`` runs it in-process.

    (Use :class:`GANCLI` directly when you want the trainer and model back.)
    """
    _refuse_optimizer_flags(list(sys.argv[1:] if args is None else args))
    GANCLI(args=args)


if __name__ == "__main__":  # pragma: no cover
    main()
