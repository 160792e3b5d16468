"""``lightning-gans predict``: write generated (or translated) images as PNG files plus one grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info

from lightning_gans.callbacks.common import captioned_grid_uint8, make_grid_uint8, save_image, to_uint8
from lightning_gans.core import PredictRequest


class ImageWriter(BasePredictionWriter):
    """Write each predicted image to ``output_dir/<name>`` and the first ``grid_size`` of them to ``grid.png``.

    ``predict_step`` returns ``{"images": Tensor in [-1, 1], "names": [relative file names]}`` and, for
    translation, ``"sizes"`` (H, W per image) to write each output at its input's size; with ``"captions"`` (one
    text per image) the grid's rows carry their captions (``"nrow"``: images per row) and ``captions.txt`` lists
    ``name<TAB>caption``. Noise families read ``num_samples``, ``label``, ``seed``, ``text`` and
    ``interpolation_steps`` from here (the model's ``predict_request``).

    Prompts (text-to-image families, ``takes_text``)::

        lightning-gans predict --config configs/gan_int_cls_mnist.yaml --ckpt_path last \
            --writer.text "a thick seven slanted to the right" --writer.num_samples 8
        lightning-gans predict ... --writer.prompts_file prompts.txt          # one prompt a line
        lightning-gans predict ... --writer.text '["a thin one", "a thick eight"]' --writer.interpolation_steps 8

    write ``num_samples`` images per prompt into ``<output_dir>/<NNN>_<prompt>/``, or, with
    ``interpolation_steps`` and exactly two prompts, rows of that many images from the first prompt to the second
    (``interpolation/``), plus the captioned ``grid.png``.

    Args:
        output_dir: folder for the images; created if missing.
        num_samples: how many images to generate (noise families); per prompt when prompts are given.
        label: the class to generate, for class-conditional families ("draw me a 7"); None draws random labels.
        text: a prompt or a list of prompts, for text-to-image families.
        prompts_file: a text file of prompts, one a line (blank lines and lines starting with # are skipped); its
            prompts follow those of ``text``.
        interpolation_steps: with two prompts, images per row from the first to the second (0: no interpolation).
        seed: seed of the noise, so the same command writes the same images.
        batch_size: images generated per step.
        grid_size: images in grid.png.
        overwrite: allow writing into a folder that already holds images (off: a second run never replaces
            the files of a first).
    """

    def __init__(
        self,
        output_dir: str = "predictions",
        num_samples: int = 64,
        label: int | None = None,
        text: list[str] | str | None = None,
        prompts_file: str | None = None,
        interpolation_steps: int = 0,
        seed: int = 0,
        batch_size: int = 64,
        grid_size: int = 64,
        overwrite: bool = False,
    ) -> None:
        super().__init__(write_interval="batch")
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        self.output_dir = Path(output_dir)
        self.num_samples = num_samples
        if interpolation_steps < 0 or interpolation_steps == 1:
            raise ValueError(f"interpolation_steps must be 0 (off) or at least 2, got {interpolation_steps}")
        self.label = label
        self.text = [text] if isinstance(text, str) else list(text or [])
        self.prompts_file = prompts_file
        self.interpolation_steps = interpolation_steps
        self.seed = seed
        self.batch_size = batch_size
        self.grid_size = grid_size
        self.overwrite = overwrite
        self._grid: list[torch.Tensor] = []
        self.written = 0
        self._captions: list[str] = []
        self._nrow: int | None = None

    def prompts(self) -> list[str]:
        """The prompts of ``text`` and then of ``prompts_file``."""
        prompts = [p.strip() for p in self.text if p.strip()]
        if self.prompts_file is not None:
            path = Path(self.prompts_file).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"prompts_file '{path}' does not exist (one prompt a line)")
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            prompts += [line for line in lines if line and not line.startswith("#")]
            if not prompts:
                raise ValueError(f"prompts_file '{path}' holds no prompt")
        return prompts

    def setup(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        if stage != "predict":
            return
        if self.output_dir.exists() and any(self.output_dir.iterdir()) and not self.overwrite:
            raise FileExistsError(
                f"{self.output_dir} already holds files; predict writes into an empty folder so nothing is replaced. "
                "Name a new folder (--writer.output_dir PATH) or pass --writer.overwrite true."
            )
        prompts = self.prompts()
        if prompts and not getattr(pl_module, "takes_text", False):
            raise ValueError(
                f"{type(pl_module).__name__} does not take text prompts (--writer.text, "
                "--writer.prompts_file); the text-to-image families do (GANINTCLS, DFGAN)"
            )
        if self.interpolation_steps and len(prompts) != 2:
            raise ValueError(f"--writer.interpolation_steps interpolates between two prompts; got {len(prompts)}")
        if hasattr(pl_module, "predict_request"):
            pl_module.predict_request = PredictRequest(
                num_samples=self.num_samples,
                label=self.label,
                seed=self.seed,
                batch_size=self.batch_size,
                text=prompts or None,
                interpolation_steps=self.interpolation_steps,
            )
        self._grid, self._captions, self._nrow = [], [], None
        self.written = 0

    def write_on_batch_end(
        self, trainer, pl_module, prediction: dict, batch_indices, batch, batch_idx, dataloader_idx=0
    ) -> None:
        images, names = prediction["images"], prediction["names"]
        sizes = prediction.get("sizes")
        if images.dim() == 2:  # points (the 2-D mixtures), not images: one CSV row each
            self._write_points(images, names, trainer.global_rank)
            return
        for i, name in enumerate(names):
            image = images[i : i + 1]
            if sizes is not None:
                h, w = (int(s) for s in sizes[i])
                if image.shape[-2:] != (h, w):
                    image = F.interpolate(image.float(), size=(h, w), mode="bicubic", align_corners=False)
            save_image(to_uint8(image)[0], self.output_dir / name)
            self.written += 1
        captions = prediction.get("captions")
        if captions is not None:
            lines = "".join(f"{name}\t{caption}\n" for name, caption in zip(names, captions))
            with open(self.output_dir / "captions.txt", "a", encoding="utf-8") as f:
                f.write(lines)
            self._nrow = prediction.get("nrow", self._nrow)
        room = self.grid_size - sum(len(g) for g in self._grid)
        if room > 0 and sizes is None:
            self._grid.append(images[:room].detach().cpu())
            if captions is not None:
                self._captions += list(captions[:room])

    def _write_points(self, points: torch.Tensor, names: list[str], rank: int) -> None:
        path = self.output_dir / ("points.csv" if rank == 0 else f"points_rank{rank}.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            if f.tell() == 0:
                f.write("name," + ",".join(f"x{j}" for j in range(points.shape[1])) + "\n")
            for name, row in zip(names, points.detach().cpu().tolist()):
                f.write(f"{Path(name).stem}," + ",".join(f"{v:.6g}" for v in row) + "\n")
        self.written += len(names)

    def on_predict_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        grid_note = ""
        if self._grid and trainer.is_global_zero:
            grid = torch.cat(self._grid)
            nrow = self._nrow or int(max(1, round(len(grid) ** 0.5)))
            if len(self._captions) == len(grid):
                picture = captioned_grid_uint8(grid, self._captions, nrow)
            else:
                picture = make_grid_uint8(grid, nrow=nrow)
            save_image(picture, self.output_dir / "grid.png")
            grid_note = " and grid.png"
        what = "points (points.csv)" if (self.output_dir / "points.csv").exists() else f"images{grid_note}"
        rank_zero_info(f"predict wrote {self.written} {what} to {self.output_dir.resolve()}")
