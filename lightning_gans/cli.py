"""``lightning-gans fit|validate|test|predict``: LightningCLI with the GAN-specific wiring.

- Any family (``--model DCGAN`` or ``class_path`` in YAML) and any datamodule (``--data MNISTDataModule``).
- ``image_shape`` and ``num_classes`` come from the datamodule (linked when it is instantiated), never from YAML.
- The optimizers come from the family's ``configure_optimizers``: ``auto_configure_optimizers=False``, and a stray
  ``--optimizer``/``--lr_scheduler`` flag is refused (LightningCLI would otherwise replace a GAN's two optimizers
  by one over all parameters, with only a warning).
- ``parser_mode="omegaconf"``: ``${...}`` interpolation inside one config file.
- ``predict`` uses the datamodule's predict set when it has one (image-to-image), else the model's noise, and does
  not keep the images in memory (``return_predictions`` defaults to false: they go to files through the writer).
- ``--writer.*`` configures :class:`~lightning_gans.callbacks.ImageWriter` (where ``predict`` writes images).
- DDP: where Lightning would give a :class:`~lightning_gans.core.GANModule` its plain DDPStrategy
  (``--trainer.strategy ddp``, ``ddp_spawn``, ``ddp_fork``, ``ddp_notebook``, their ``_find_unused_parameters_*``
  variants, or ``auto`` on several devices), the Trainer gets :class:`~lightning_gans.strategy.GANDDPStrategy`
  with the same start method and options. Nothing is registered in Lightning's StrategyRegistry.
- The config of each run is saved in the run's own versioned folder (for W&B too), never over an earlier one,
  and sent to W&B when that is the logger.
- A ``--ckpt_path`` that does not exist is an error before anything is built.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden

import datamodules  # noqa: F401  (registers the datamodules as subclasses for --data NAME)
import lightning_gans.models  # noqa: F401  (registers the families for --model NAME)
from lightning_gans.callbacks.common import run_dir
from lightning_gans.callbacks.image_writer import ImageWriter
from lightning_gans.core import GANModule
from lightning_gans.strategy import GANDDPStrategy

_CKPT_KEYWORDS = ("last", "best", "hpc", "registry")


class RunConfigSaver(SaveConfigCallback):
    """Save the full config as ``config.yaml`` in the run's folder (``config_1.yaml``... if one exists) and log it to W&B."""

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
        kwargs.setdefault("parser_kwargs", {"parser_mode": "omegaconf"})
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

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.image_shape", "model.init_args.image_shape", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.add_lightning_class_args(ImageWriter, "writer")

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
                "last checkpoint of the config's ModelCheckpoint folder."
            )

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> L.Trainer:
        """The Trainer, with GANDDPStrategy where Lightning would give a GANModule its plain DDP."""
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
