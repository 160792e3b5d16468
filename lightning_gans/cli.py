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
- A ``--ckpt_path`` that does not exist is an error before anything is built. The config, not the checkpoint, builds
  the model: a checkpoint of another family or with other network shapes is refused with a message naming both, and
  options changed on resume (learning rates included) take effect; ``config.yaml`` is what ran.
- Errors a user can act on (a bad option value, an unknown config key, missing or corrupt data, a checkpoint that
  does not fit the config, a diverged run) are printed as one line, ``lightning-gans: error: ...``, with exit status
  1 (2 for a bad command line); ``LIGHTNING_GANS_DEBUG=1`` shows the whole traceback. A run stopped by a signal
  (:mod:`lightning_gans.callbacks.preemption`) says where it saved and exits with ``128 + signal``.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import sys
import traceback
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
from lightning_gans.callbacks.divergence import DivergenceGuard
from lightning_gans.callbacks.image_writer import ImageWriter
from lightning_gans.callbacks.performance import Performance
from lightning_gans.callbacks.preemption import Preempted, Preemption
from lightning_gans.callbacks.sample_grid import SampleGrid
from lightning_gans.checkpointing import (
    CheckpointMismatchError,
    CheckpointReadError,
    CheckpointWriteError,
    DivergenceError,
)
from lightning_gans.core import GANModule
from lightning_gans.renames import upgrade_argv
from lightning_gans.strategy import GANDDPStrategy

_CKPT_KEYWORDS = ("last", "best", "hpc", "registry")

#: The default config of every subcommand (see the module docstring and the file's own comments).
DEFAULTS_FILE = Path(__file__).resolve().with_name("defaults.yaml")

#: Argument groups that each add one callback to every run (``--checkpoint.*``, ``--sample_grid.*``, ``--writer.*``,
#: ``--preemption.*``: a checkpoint and a clean stop on SIGTERM/SIGINT/SIGUSR1, and ``last`` refreshed every 30 min;
#: ``--divergence.*``: stop when a loss explodes past ``max_abs_loss``; ``--performance.*``: channels-last and
#: torch.compile of the networks, off by default).
_NO_DATA = "lightning.pytorch.LightningDataModule"

CALLBACK_GROUPS = {
    "checkpoint": ModelCheckpoint,
    "sample_grid": SampleGrid,
    "writer": ImageWriter,
    "preemption": Preemption,
    "divergence": DivergenceGuard,
    "performance": Performance,
}


def default_callbacks(default_root_dir: str | Path) -> list[Callback]:
    """The callbacks every ``lightning-gans`` run has (:data:`CALLBACK_GROUPS` with :data:`DEFAULTS_FILE`'s settings),
    for a Trainer built in Python: ``L.Trainer(callbacks=default_callbacks("runs/x"), default_root_dir="runs/x")``."""
    import yaml

    defaults = yaml.safe_load(DEFAULTS_FILE.read_text())
    root = str(default_root_dir)

    def resolve(value: Any) -> Any:
        return value.replace("${trainer.default_root_dir}", root) if isinstance(value, str) else value

    return [
        cls(**{k: resolve(v) for k, v in (defaults.get(key) or {}).items()}) for key, cls in CALLBACK_GROUPS.items()
    ]


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
            self.parser.save(self.config, str(path), skip_unset=False, overwrite=False, multifile=False)
            self.saved_path = path
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    config = yaml.safe_load(self.parser.dump(self.config, skip_unset=False))
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
        self._pretrained: tuple[Path, dict[str, Any]] | None = None  # predict --pretrained: (folder, config.json)
        if args is None:  # options renamed in 0.2.0 still work, with a warning; predict --pretrained DIR
            sys.argv[1:] = self._pretrained_model(upgrade_argv(sys.argv[1:]))
        elif isinstance(args, list):
            args = self._pretrained_model(upgrade_argv(list(args)))
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
        own = {
            "parser_mode": "omegaconf+",
            "default_config_files": [glob.escape(str(DEFAULTS_FILE))],
            "exit_on_error": False,
        }  # main() prints parse errors as one line
        subcommands = cls.subcommands()
        main = {k: v for k, v in parser_kwargs.items() if k not in subcommands}
        if not run:
            return {**own, **main}
        merged = {"parser_mode": own["parser_mode"], "exit_on_error": False, **main}
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
        if (
            subcommand == "predict"
            and datamodule is not None
            and not is_overridden("predict_dataloader", datamodule, L.LightningDataModule)
        ):
            # No predict set in the data (MNIST, CelebA): noise families predict from their own noise loader.
            kwargs["datamodule"] = None
        return kwargs

    def _parse_ckpt_path(self) -> None:
        """Nothing: the config builds the model. (LightningCLI would replace the config's model arguments, class
        included, by the checkpoint's hyperparameters, so a checkpoint of another family or options changed on resume
        silently won over what the config asks for, while config.yaml recorded the config.) The checkpoint is checked
        against the model when it loads (:func:`lightning_gans.checkpointing.check_matches`): another family or other
        network shapes fail with a message naming both; learning rates changed on resume take effect."""

    def _pretrained_model(self, args: list[str]) -> list[str]:
        """``predict --pretrained DIR``: the model of a pretrained folder (its config.json) instead of ``--config`` +
        ``--ckpt_path``; its weights are loaded once the classes are built (:meth:`instantiate_classes`)."""
        flags = [i for i, a in enumerate(args) if a == "--pretrained" or a.startswith("--pretrained=")]
        if not flags:
            return args
        i = flags[-1]
        folder = args[i].partition("=")[2] if "=" in args[i] else (args[i + 1] if i + 1 < len(args) else "")
        rest = args[:i] + args[i + (1 if "=" in args[i] else 2) :]
        if rest[:1] != ["predict"]:
            raise ValueError("--pretrained is a predict option: lightning-gans predict --pretrained DIR [...]")
        if any(a == "--ckpt_path" or a.startswith("--ckpt_path=") for a in rest):
            raise ValueError("--pretrained DIR holds the weights: give it or --ckpt_path, not both")
        from lightning_gans.pretrained import read_config

        path = Path(folder).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"--pretrained {folder}: no such folder (resolved to {path.resolve()})")
        config = read_config(path)
        self._pretrained = (path, config)
        model = {"class_path": f"lightning_gans.models.{config['family']}", "init_args": config["init_args"]}
        # Families that draw noise need no data: the base LightningDataModule (no loaders, nothing linked from it)
        data = [] if any(a == "--data" or a.startswith("--data=") for a in rest) else ["--data", _NO_DATA]
        return ["predict", "--model", json.dumps(model), *data, *rest[1:]]

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        if self._pretrained is not None:
            from lightning_gans.pretrained import load_weights, read_weights

            folder, config = self._pretrained
            load_weights(self.model, read_weights(folder, config), folder)

    def before_instantiate_classes(self) -> None:
        config = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        ckpt_path = config.get("ckpt_path")
        if ckpt_path and ckpt_path not in _CKPT_KEYWORDS and not Path(ckpt_path).is_file():
            raise FileNotFoundError(
                f"--ckpt_path {ckpt_path}: no such checkpoint file (resolved to {Path(ckpt_path).resolve()}). "
                "Give the path of a .ckpt file (see the run's checkpoints/ folder), or 'last' to resume from the "
                "last checkpoint of the run folder's checkpoints/."
            )

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            remove_empty_run_folder(self.trainer)
            raise

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
        if (
            isinstance(config.get("strategy", "auto"), str)
            and isinstance(self.model, GANModule)
            and (type(strategy) is DDPStrategy)
        ):
            # A ddp name or `auto` on several devices resolved, through Lightning's own rules and registry, to its
            # plain DDPStrategy, which stops GAN steps with the unused-parameters error: the same start method and
            # DDP options, one DDP per network (lightning_gans/strategy.py).
            trainer = build(strategy=GANDDPStrategy(start_method=strategy._start_method, **strategy._ddp_kwargs))
        return trainer


#: What a run folder holds before anything was trained: the logger's bookkeeping and the saved config.
_BOOKKEEPING = ("events.out.tfevents.*", "hparams.yaml", "config*.yaml", "metrics.csv")


def remove_empty_run_folder(trainer: L.Trainer) -> Path | None:
    """After a failed start, remove the run's log folder (``logs/version_N``) if it holds only bookkeeping, so failed
    attempts leave no empty versions behind; a folder with samples, grids or checkpoints is always kept."""
    if not trainer.is_global_zero or trainer.logger is None:
        return None
    folder = run_dir(trainer)
    if not folder.is_dir() or folder.resolve() == Path(trainer.default_root_dir).resolve():
        return None
    files = [p for p in folder.rglob("*") if p.is_file()]
    if any(not any(p.match(pattern) for pattern in _BOOKKEEPING) for p in files):
        return None
    shutil.rmtree(folder)
    for parent in (folder.parent, folder.parent.parent):  # logs/, then the run root, if nothing else is there
        if parent.is_dir() and not any(parent.iterdir()) and parent.resolve() != Path.cwd().resolve():
            parent.rmdir()
    return folder


def _refuse_optimizer_flags(argv: list[str]) -> None:
    for arg in argv:
        name = arg.split("=", 1)[0]
        if name in ("--optimizer", "--lr_scheduler") or name.startswith(("--optimizer.", "--lr_scheduler.")):
            raise SystemExit(
                f"lightning-gans: error: {name} is not an option here: each family builds its own optimizers. "
                "Set them on the model instead, e.g. --model.init_args.optimizer_g adam --model.init_args.lr_g 1e-4 "
                "--model.init_args.lr_d 4e-4 (see `lightning-gans fit --model DCGAN --help`)."
            )


#: Errors whose message says what to fix: printed as one line unless LIGHTNING_GANS_DEBUG is set.
_USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, CheckpointMismatchError, DivergenceError)


def _short_message(err: BaseException) -> str:
    """The part of an error message a user acts on. jsonargparse wraps an error in reports that list every Union
    subtype it tried and dump the whole namespace; the innermost report that names a class says what is wrong
    (``Problem with given class_path '...DCGAN': Option 'foo' is not accepted``, or a constructor's own message)."""
    if not any(mark in str(err) for mark in ("Does not validate", "Parser key", "Problem with given class_path")):
        return str(err).strip()  # not a jsonargparse report: the error's own message
    chain, e = [], err
    while e is not None and len(chain) < 20:
        chain.append(" ".join(line.strip() for line in str(e).strip().splitlines()))
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    keys = [m.group(1) for m in map(re.compile(r'Parser key "([^"]+)"').search, chain) if m]
    where = f"--{keys[0]}: " if keys and keys[0] not in ("model", "data") else ""
    for message in reversed(chain):
        if message.startswith("Problem with given class_path"):
            return message
    for message in reversed(chain):
        if message and "Does not validate against any of the Union subtypes" not in message:
            message = message.split(" Given value", 1)[0]
            return message if message.startswith("Parser key") else where + message
    return chain[0]


def _user_error(err: BaseException) -> bool:
    """An error of the command line or a config, or one raised by this package's own checks (not a crash)."""
    own = (CheckpointMismatchError, CheckpointReadError, CheckpointWriteError, DivergenceError)
    if type(err).__name__ == "ArgumentError" or isinstance(err, own):
        return True
    if not isinstance(err, _USER_ERRORS):
        return False
    frames = traceback.extract_tb(err.__traceback__)
    where = frames[-1].filename if frames else ""
    return any(
        part in where
        for part in (f"{os.sep}lightning_gans{os.sep}", f"{os.sep}datamodules{os.sep}", f"{os.sep}jsonargparse{os.sep}")
    )


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``lightning-gans`` command; ``main(["fit", "--config", ...])`` runs it in-process.

    (Use :class:`GANCLI` directly when you want the trainer and model back.)
    """
    argv = list(sys.argv[1:] if args is None else args)
    _refuse_optimizer_flags(argv)
    try:
        if argv[:1] == ["optimize"]:  # not Trainer subcommands: LitData chunks (optimize.py), pretrained folders
            from lightning_gans.optimize import main as optimize_main

            return optimize_main(argv[1:])
        if argv[:1] == ["export"]:  # (export.py)
            from lightning_gans.export import main as export_main

            return export_main(argv[1:])
        if argv[:1] in (["serve"], ["demo"]):  # an HTTP server (serve.py), a Gradio app (demo.py)
            from importlib import import_module

            return import_module(f"lightning_gans.{argv[0]}").main(argv[1:])
        GANCLI(args=args)
    except Preempted as stop:
        print(f"lightning-gans: {stop}", file=sys.stderr)
        raise SystemExit(stop.exit_code) from None
    except Exception as err:
        if os.environ.get("LIGHTNING_GANS_DEBUG") or not _user_error(err):
            raise
        print(
            f"lightning-gans: error: {_short_message(err)}\n(LIGHTNING_GANS_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        raise SystemExit(2 if type(err).__name__ == "ArgumentError" else 1) from None


if __name__ == "__main__":  # pragma: no cover
    main()
