"""Unpaired image-to-image data (CycleGAN): two domains, A and B, sampled independently.

Layout under ``data_dir`` (default ``<root>/facades_unpaired``), as CycleGAN's download script makes it:
``trainA/ trainB/ testA/ testB/`` and optionally ``valA/ valB/``, each a flat folder of images. The default folder is
``facades_unpaired`` rather than the official ``facades``, because ``<root>/facades`` is the pix2pix (side-by-side)
facades that :class:`~datamodules.paired.PairedImageDataModule` reads; point ``data_dir`` at any other CycleGAN
dataset (``horse2zebra``...).

It matches junyanz/pytorch-CycleGAN-and-pix2pix ``data/unaligned_dataset.py``: in training, A is indexed by the
sample index (modulo its length) and B by an independent random index, an epoch has ``max(len(A), len(B))``
samples, and each image gets its own random crop and flip (``preprocess``/``load_size``/``crop_size``/``no_flip``
as in the official code). Grey, palette or RGBA files become RGB (alpha dropped), or grey with ``input_nc``/
``output_nc`` = 1. Deviations: validation uses ``valA``/``valB`` when both exist, else ``testA``/``testB`` (the
official code has no validation); validation/test pair index i with A[i % len(A)] and B[i % len(B)] and are
deterministic (resize to ``crop_size``, centre crop, no flip); the random B index comes from ``torch``'s RNG, so
Lightning's per-worker seeding applies.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, Dataset

from datamodules.base import DatasetNotFoundError, SplitFolderDataModule, missing_data_message, resolve_data_dir
from datamodules.transforms import (
    DIRECTIONS,
    PairTransform,
    PredictImageDataset,
    PredictItem,
    channels_to_mode,
    check_preprocess,
    list_images,
    load_image,
    to_signed_tensor,
)

PREDICT_DIRECTIONS = (*DIRECTIONS, "both")


class UnpairedImageDataset(Dataset):
    """Two domains: ``{"A": [C,H,W], "B": [C,H,W], "name_A": str, "name_B": str}``.

    Args:
        files_a: images of domain A.
        files_b: images of domain B.
        transform: preprocessing, drawn independently for the A and the B image.
        mode_a: PIL mode of A (``"RGB"`` or ``"L"``).
        mode_b: PIL mode of B.
        random_b: draw B at random (training); ``False`` pairs index i with B[i % len(B)].
    """

    def __init__(
        self,
        files_a: list[Path],
        files_b: list[Path],
        transform: PairTransform,
        mode_a: str = "RGB",
        mode_b: str = "RGB",
        random_b: bool = True,
    ):
        self.files_a, self.files_b = files_a, files_b
        self.transform = transform
        self.mode_a, self.mode_b = mode_a, mode_b
        self.random_b = random_b

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def image_files(self) -> list[Path]:
        """Every file of both domains."""
        return [*self.files_a, *self.files_b]

    def index_b(self, index: int) -> int:
        if self.random_b:
            return int(torch.randint(len(self.files_b), ()).item())
        return index % len(self.files_b)

    def _image(self, path: Path, mode: str) -> torch.Tensor:
        img = load_image(path, mode)
        return to_signed_tensor(self.transform(img, self.transform.draw(img.size, path)))

    def __getitem__(self, index: int) -> dict:
        path_a = self.files_a[index % len(self.files_a)]
        path_b = self.files_b[self.index_b(index)]
        return {
            "A": self._image(path_a, self.mode_a),
            "B": self._image(path_b, self.mode_b),
            "name_A": path_a.name,
            "name_B": path_b.name,
        }


class UnpairedImageDataModule(SplitFolderDataModule):
    """CycleGAN-style unpaired data: ``{"A", "B", "name_A", "name_B"}`` batches.

    ``image_shape`` is ``(output_nc, crop_size, crop_size)``, the images of domain B (what G_A->B makes);
    ``input_channels`` is ``input_nc``; ``num_classes`` is 0.

    Args:
        data_dir: folder holding ``trainA/``, ``trainB/``, ``testA/``, ``testB/`` and optionally ``valA/``, ``valB/``
            (default: ``<root>/facades_unpaired``, where ``<root>`` is ``$LIGHTNING_GANS_DATA_DIR`` or ``data/``).
        load_size: images are resized to this size before cropping (the width for ``scale_width*``); official 286.
        crop_size: side of the square training crop; official 256.
        preprocess: ``resize_and_crop`` | ``crop`` | ``scale_width`` | ``scale_width_and_crop`` | ``none``, as in
            the official code. Validation/test resize to ``crop_size`` and crop at the centre, without flipping.
        no_flip: turn off the random horizontal flip in training.
        input_nc: channels of domain A, 3 (RGB) or 1 (grey).
        output_nc: channels of domain B, 3 (RGB) or 1 (grey).
        predict_dir: folder of single images for ``predict``, all of the source domain of ``predict_direction``
            (default: ``testA`` for AtoB, ``testB`` for BtoA, both for ``both``). Predict batches hold one image,
            resized to ``crop_size`` x ``crop_size``, its file ``name``, original ``size`` (H, W) and ``direction``.
        predict_direction: ``"AtoB"``, ``"BtoA"`` or ``"both"`` (only without ``predict_dir``).
        batch_size: samples per batch; 1 in the CycleGAN paper.
        num_workers: data-loading worker processes (0: load in the main process).
        pin_memory: pin batches in page-locked memory for faster copies to the GPU.
        verify: decode every image of the splits a stage uses at setup, so a corrupt file fails before training
            (a full pass over the files; off by default).
        max_train_images: train on a fixed subset of this many images of EACH domain (``trainA/`` and ``trainB/``; None:
            all of them; e.g. 1000 for a small-data run): the first N of a permutation of ``trainA/`` and of one of
            ``trainB/``, drawn in turn from one generator seeded with ``subset_seed`` (so the two domains' subsets are
            independent draws). Validation and test are other folders, unchanged. Larger than either training domain: an
            error at setup.
        subset_seed: seed of that subset: the same seed and ``max_train_images`` always keep the same images (a larger
            ``max_train_images`` keeps a superset), whatever the run's seed or the worker count.
    """

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        load_size: int = 286,
        crop_size: int = 256,
        preprocess: str = "resize_and_crop",
        no_flip: bool = False,
        input_nc: int = 3,
        output_nc: int = 3,
        predict_dir: str | None = None,
        predict_direction: str = "AtoB",
        batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        verify: bool = False,
        max_train_images: int | None = None,
        subset_seed: int = 0,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            max_train_images=max_train_images,
            subset_seed=subset_seed,
            verify=verify,
        )
        check_preprocess(preprocess, load_size, crop_size)
        if predict_direction not in PREDICT_DIRECTIONS:
            raise ValueError(
                f"unknown predict_direction {predict_direction!r}; valid values: {', '.join(PREDICT_DIRECTIONS)}"
            )
        if predict_dir is not None and predict_direction == "both":
            raise ValueError(
                "predict_direction='both' reads testA and testB; with predict_dir (one folder of one domain) choose "
                "'AtoB' or 'BtoA'"
            )
        self.mode_a = channels_to_mode(input_nc, "input_nc")
        self.mode_b = channels_to_mode(output_nc, "output_nc")
        self.data_dir = resolve_data_dir(data_dir, "facades_unpaired")
        self.load_size = load_size
        self.crop_size = crop_size
        self.preprocess = preprocess
        self.no_flip = no_flip
        self.predict_dir = Path(predict_dir).expanduser() if predict_dir is not None else None
        self.predict_direction = predict_direction
        self.input_channels = input_nc
        self.image_shape = (output_nc, crop_size, crop_size)
        self.num_classes = 0

    def _domain(self, folder: str) -> list[Path]:
        path = self.data_dir / folder
        files = list_images(path)
        if not files:
            what = f"Images of domain {folder[-1]} ('{folder}/')" if path.is_dir() else f"The folder '{folder}/'"
            raise DatasetNotFoundError(
                missing_data_message(
                    what,
                    path if path.is_dir() else self.data_dir,
                    "the CycleGAN layout trainA/, trainB/, testA/, testB/ (optionally valA/, valB/), each a folder of "
                    ".jpg/.png images" + (" (this folder exists but holds no images)" if path.is_dir() else ""),
                )
            )
        return files

    def _split_dataset(self, split: str) -> UnpairedImageDataset:
        train = split == "train"
        if split == "val":
            split = "val" if (self.data_dir / "valA").is_dir() and (self.data_dir / "valB").is_dir() else "test"
        transform = PairTransform(self.preprocess, self.load_size, self.crop_size, flip=not self.no_flip, train=train)
        files_a, files_b = self._domain(split + "A"), self._domain(split + "B")
        if train:  # one generator for both domains: two independent draws
            generator = self._subset_generator()
            files_a = self._limit_train(files_a, "training images of domain A (trainA/)", generator)
            files_b = self._limit_train(files_b, "training images of domain B (trainB/)", generator)
        return UnpairedImageDataset(files_a, files_b, transform, self.mode_a, self.mode_b, random_b=train)

    def _predict_dataset(self) -> Dataset:
        directions = ("AtoB", "BtoA") if self.predict_direction == "both" else (self.predict_direction,)
        parts = []
        for direction in directions:
            mode = self.mode_a if direction == "AtoB" else self.mode_b
            if self.predict_dir is not None:
                files = list_images(self.predict_dir)
                if not files:
                    raise DatasetNotFoundError(
                        f"predict_dir '{self.predict_dir}' holds no images (.jpg/.png...): point predict_dir "
                        "(CLI: --data.init_args.predict_dir PATH) at a folder of input images"
                    )
            else:
                files = self._domain("testA" if direction == "AtoB" else "testB")
            parts.append(
                PredictImageDataset([PredictItem(f, mode=mode, direction=direction) for f in files], self.crop_size)
            )
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)
