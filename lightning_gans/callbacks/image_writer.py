"""``lightning-gans predict``: write generated (or translated) images as PNG files plus one grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info

from lightning_gans.callbacks.common import make_grid_uint8, save_image, to_uint8


class ImageWriter(BasePredictionWriter):
    """Write each predicted image to ``output_dir/<name>`` and the first ``grid_size`` of them to ``grid.png``.

    ``predict_step`` returns ``{"images": Tensor in [-1, 1], "names": [relative file names]}`` and, for
    translation, ``"sizes"`` (H, W per image) to write each output at its input's size. Noise families read
    ``num_samples``, ``label`` and ``seed`` from here to build their noise.

    Args:
        output_dir: folder for the images; created if missing.
        num_samples: how many images to generate (noise families).
        label: the class to generate, for class-conditional families ("draw me a 7"); None draws random labels.
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
        self.label = label
        self.seed = seed
        self.batch_size = batch_size
        self.grid_size = grid_size
        self.overwrite = overwrite
        self._grid: list[torch.Tensor] = []
        self.written = 0

    def setup(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        if stage != "predict":
            return
        if self.output_dir.exists() and any(self.output_dir.iterdir()) and not self.overwrite:
            raise FileExistsError(
                f"{self.output_dir} already holds files; predict writes into an empty folder so nothing is replaced. "
                "Name a new folder (--writer.output_dir PATH) or pass --writer.overwrite true."
            )
        if hasattr(pl_module, "predict_request"):
            pl_module.predict_request.update(
                num_samples=self.num_samples, label=self.label, seed=self.seed, batch_size=self.batch_size
            )
        self._grid = []
        self.written = 0

    def write_on_batch_end(self, trainer, pl_module, prediction: dict, batch_indices, batch, batch_idx, dataloader_idx=0) -> None:
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
        room = self.grid_size - sum(len(g) for g in self._grid)
        if room > 0 and sizes is None:
            self._grid.append(images[:room].detach().cpu())

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
            save_image(make_grid_uint8(grid, nrow=int(max(1, round(len(grid) ** 0.5)))), self.output_dir / "grid.png")
            grid_note = " and grid.png"
        what = "points (points.csv)" if (self.output_dir / "points.csv").exists() else f"images{grid_note}"
        rank_zero_info(f"predict wrote {self.written} {what} to {self.output_dir.resolve()}")
