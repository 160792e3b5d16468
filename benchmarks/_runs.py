"""Running a config through the CLI in-process and collecting what its evaluation logged (the zoo, the sweep).

:func:`fit` runs ``lightning-gans fit --config CONFIG ARGS...`` in this process, with a callback that records the
results of the config's :class:`~lightning_gans.callbacks.EvaluationCallback` at every validation, and returns a
:class:`Run` (final metrics, their history, G/D steps, wall time, the run folder and its final sample grid).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch

from lightning_gans.callbacks.evaluation import EvaluationCallback


@dataclass
class Run:
    """What one fit gave."""

    name: str
    final: dict[str, float]
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (G steps, metrics) per evaluation
    g_steps: int = 0
    d_steps: int = 0
    wall_s: float = 0.0
    batch_size: int = 0
    run_dir: str = ""
    grid: str | None = None  # the final sample grid (samples/final.png), when written
    hparams: dict[str, Any] = field(default_factory=dict)
    loss: str = ""
    evaluation: Any = None  # the run's EvaluationCallback (its settings, the last mixture scatter plot)
    mode_centers: Any = None  # the datamodule's, for 2-D mixtures
    args: list[str] = field(default_factory=list)  # a sweep variant's own CLI arguments (set by the sweep)
    threads: int = 0  # torch threads it trained with


# What a table needs from a run, saved as JSON beside it so that a table can be rebuilt without training.
_RESULT_FIELDS = (
    "name",
    "final",
    "history",
    "g_steps",
    "d_steps",
    "wall_s",
    "batch_size",
    "run_dir",
    "grid",
    "args",
    "threads",
)


def save_run(run: Run, path: Path) -> None:
    """The table's fields of ``run`` as JSON at ``path`` (read back by :func:`load_run`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: getattr(run, k) for k in _RESULT_FIELDS}))


def load_run(path: Path) -> Run:
    """The run saved at ``path``; its folder and grid are found beside the file when the runs were moved since."""
    data = json.loads(path.read_text())
    data["history"] = [tuple(row) for row in data["history"]]
    here = Path(path).parent
    for key in ("run_dir", "grid"):
        saved = data.get(key)
        if saved and not Path(saved).exists() and f"/{here.name}/" in saved:
            moved = here / saved.rsplit(f"/{here.name}/", 1)[1]  # the part below the run's own folder
            data[key] = str(moved) if moved.exists() else saved
    return Run(**data)


class EvaluationHistory(L.Callback):
    """Records the EvaluationCallback's results after each validation (not the sanity check)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, float]]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        for callback in trainer.callbacks:  # on_validation_end runs after every callback's on_validation_epoch_end
            if isinstance(callback, EvaluationCallback) and callback.last_results:
                self.rows.append((int(getattr(pl_module, "g_steps", trainer.global_step)), dict(callback.last_results)))
                return


def fit(
    config: str | Path | list[str | Path],
    run_dir: str | Path,
    args: list[str] = (),
    name: str | None = None,
    final_validation: bool = False,
) -> Run:
    """Fit ``config`` (plus CLI ``args``) into ``run_dir`` in this process and return its :class:`Run`.

    ``config``: one config file, or several composed in order (``--config A --config B``: a base, then a delta).
    ``final_validation``: validate once more after training when the last evaluation was not at the final step (a run
    stopped by ``max_time`` in the middle of an epoch); its time is not part of ``wall_s``."""
    from lightning_gans.cli import GANCLI

    configs = [config] if isinstance(config, (str, Path)) else list(config)
    history = EvaluationHistory()
    argv, sys.argv = sys.argv, ["lightning-gans"]  # the CLI reads its arguments from `args`, not from ours
    try:
        start = time.perf_counter()
        cli = GANCLI(
            # the run folder after every config file: a later file's default_root_dir would win over an earlier flag
            args=["fit", *(a for c in configs for a in ("--config", str(c)))]
            + ["--trainer.default_root_dir", str(run_dir), *args],
            trainer_defaults={"callbacks": [history]},
        )
        wall = time.perf_counter() - start
    finally:
        sys.argv = argv
    trainer, model = cli.trainer, cli.model
    if final_validation and (not history.rows or history.rows[-1][0] != model.g_steps):
        trainer.validate(model, datamodule=cli.datamodule, verbose=False)
    if not history.rows:
        raise RuntimeError(f"{configs[-1]}: no evaluation ran; the config needs an EvaluationCallback and a validation")
    log_dir = Path(trainer.logger.log_dir) if trainer.logger is not None else Path(run_dir)
    grid = log_dir / "samples" / "final.png"
    evaluation = next(cb for cb in trainer.callbacks if isinstance(cb, EvaluationCallback))
    return Run(
        name=name or Path(configs[-1]).stem,
        final=history.rows[-1][1],
        history=history.rows,
        g_steps=int(model.g_steps),
        d_steps=int(model.d_steps),
        wall_s=wall,
        batch_size=int(getattr(cli.datamodule, "batch_size", 0) or 0),
        run_dir=str(log_dir),
        grid=str(grid) if grid.is_file() else None,
        hparams=dict(model.hparams),
        loss=str(getattr(model, "loss", "")),
        evaluation=evaluation,
        mode_centers=getattr(trainer.datamodule, "mode_centers", None),
        threads=torch.get_num_threads(),
    )


def replace_between(text: str, begin: str, end: str, new: str) -> str:
    """``text`` with what lies between the ``begin`` and ``end`` markers replaced by ``new`` (markers appended if
    absent)."""
    if begin in text and end in text:
        return text[: text.index(begin) + len(begin)] + "\n" + new.strip() + "\n" + text[text.index(end) :]
    return text.rstrip() + f"\n\n{begin}\n{new.strip()}\n{end}\n"
