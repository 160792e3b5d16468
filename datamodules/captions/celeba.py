"""CelebA faces captioned from their 40 attributes: the grammar and :class:`CelebACaptionsDataModule`.

This module never imports ``lightning_gans``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from datamodules.base import DatasetNotFoundError
from datamodules.captions.base import CaptionDataModule, _article, _Indexed, _join, _to_uint8
from datamodules.celeba import CelebADataModule

# ============================================================================================ CelebA captions
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)

#: "is": adjectives before the noun. (attribute, value that earns the word, word)
_ADJECTIVES = [
    ("Smiling", 1, "smiling"),
    ("Young", 1, "young"),
    ("Young", 0, "older"),
    ("Attractive", 1, "attractive"),
    ("Chubby", 1, "chubby"),
    ("Pale_Skin", 1, "pale"),
    ("Bald", 1, "bald"),
]
_HAIR_COLOURS = [("Black_Hair", "black"), ("Blond_Hair", "blond"), ("Brown_Hair", "brown"), ("Gray_Hair", "gray")]
_HAIR_TEXTURES = [("Wavy_Hair", "wavy"), ("Straight_Hair", "straight")]
#: "has": the ``with`` group.
_FEATURES = [
    ("Bangs", 1, "bangs"),
    ("Receding_Hairline", 1, "a receding hairline"),
    ("Big_Lips", 1, "big lips"),
    ("Big_Nose", 1, "a big nose"),
    ("Pointy_Nose", 1, "a pointy nose"),
    ("Narrow_Eyes", 1, "narrow eyes"),
    ("Bushy_Eyebrows", 1, "bushy eyebrows"),
    ("Arched_Eyebrows", 1, "arched eyebrows"),
    ("High_Cheekbones", 1, "high cheekbones"),
    ("Oval_Face", 1, "an oval face"),
    ("Double_Chin", 1, "a double chin"),
    ("Rosy_Cheeks", 1, "rosy cheeks"),
    ("Bags_Under_Eyes", 1, "bags under the eyes"),
    ("5_o_Clock_Shadow", 1, "stubble"),
    ("Goatee", 1, "a goatee"),
    ("Mustache", 1, "a mustache"),
    ("Sideburns", 1, "sideburns"),
    ("Mouth_Slightly_Open", 1, "an open mouth"),
    ("No_Beard", 0, "a beard"),
]
#: "wears": the ``wearing`` group.
_WEARING = [
    ("Eyeglasses", "glasses"),
    ("Wearing_Hat", "a hat"),
    ("Wearing_Earrings", "earrings"),
    ("Wearing_Lipstick", "lipstick"),
    ("Wearing_Necklace", "a necklace"),
    ("Wearing_Necktie", "a tie"),
    ("Heavy_Makeup", "heavy makeup"),
]
_MAX_ADJECTIVES, _MAX_FEATURES, _MAX_WEARING = 2, 3, 2
_CELEBA_MENTION = 0.6


def _pick(rng: np.random.Generator, items: list, most: int) -> list:
    """A random subset of ``items`` (each kept with probability 0.6, at most ``most``), in a random order."""
    order = [items[i] for i in rng.permutation(len(items))]
    return [x for x in order if rng.random() < _CELEBA_MENTION][:most]


def celeba_caption(attributes: dict[str, int], rng: np.random.Generator) -> tuple[str, dict[str, int]]:
    """One caption of a face from its attributes (``{"Male": 1, "Smiling": 0, ...}``, 0/1), and its facts: the
    value of every attribute the caption mentions (``Male`` always).

    ``"a smiling young woman with wavy blond hair, bangs and high cheekbones, wearing earrings"``; a face with no
    attribute set: ``"a woman"``.
    """
    male = int(attributes.get("Male", 0))
    facts: dict[str, int] = {"Male": male}
    adjectives = _pick(rng, [(a, v, w) for a, v, w in _ADJECTIVES if attributes.get(a, 0) == v], _MAX_ADJECTIVES)
    # The with group: one hair phrase ("wavy blond hair") counts as one item; never hair on a bald head.
    features = [(a, v, w) for a, v, w in _FEATURES if attributes.get(a, 0) == v]
    colours = [c for c in _HAIR_COLOURS if attributes.get(c[0], 0) == 1]
    textures = [t for t in _HAIR_TEXTURES if attributes.get(t[0], 0) == 1]
    if (colours or textures) and not attributes.get("Bald", 0):
        hair_parts = []
        if textures:
            hair_parts.append(textures[int(rng.integers(len(textures)))])
        if colours:
            hair_parts.append(colours[int(rng.integers(len(colours)))])
        features.append(("hair", hair_parts, " ".join(w for _, w in hair_parts) + " hair"))
    chosen = _pick(rng, features, _MAX_FEATURES)
    wearing = _pick(rng, [(a, 1, w) for a, w in _WEARING if attributes.get(a, 0) == 1], _MAX_WEARING)

    for a, v, _ in adjectives + wearing:
        facts[a] = v
    for a, v, _ in chosen:
        if a == "hair":
            facts.update({name: 1 for name, _ in v})
        else:
            facts[a] = v
    head = " ".join([w for _, _, w in adjectives] + ["man" if male else "woman"])
    text = f"{_article(head)} {head}"
    if chosen:
        text += " with " + _join([w for _, _, w in chosen])
    if wearing:
        text += (", " if chosen else " ") + "wearing " + _join([w for _, _, w in wearing])
    return text, facts


class CelebACaptionsDataModule(CaptionDataModule):
    """CelebA faces captioned from their 40 attributes by a small seeded grammar (module docstring).

    Reads CelebA like :class:`~datamodules.CelebADataModule` (torchvision's layout or a plain folder, the official
    partition file or a seeded hold-out). The attribute file must use CelebA's attribute names. Faces without an
    attribute row are left out (with the warning of the CelebA datamodule). ``image_shape`` is
    ``(3, image_size, image_size)``.

    Args:
        data_dir: the CelebA folder (default ``<root>/celeba``).
        image_folder: folder of aligned face images inside ``data_dir``.
        attr_file: attribute file inside ``data_dir``.
        partition_file: train/val/test partition file inside ``data_dir`` (else ``val_fraction`` is held out).
        image_size: side of the square images (32, 64, ...).
        crop_fraction: side of the centre square crop as a fraction of the shorter image side.
        val_fraction: share of images held out for validation when there is no partition file.
        seed: seed of that hold-out.
        captions_per_image: captions per face (each a different random subset of its attributes).
        caption_seed: seed of the captions.
        in_memory: decode and resize every image once at setup and keep them as uint8 (fast epochs on a CPU;
            10,000 faces at 64x64 take 120 MB).
        max_length, min_word_count: see :class:`CaptionDataModule`.
        batch_size, num_workers, pin_memory: the loaders'.
        streaming_dir: read the splits from LitData chunks written by ``lightning-gans optimize`` from this
            datamodule (a local folder or an s3://, gs://, azure:// URI) instead of the folders: sharded across ranks
            and nodes, resumable mid-epoch; the vocabulary comes with the chunks. A streamed training epoch is one
            pass over the images, each with one of its captions drawn at random (DF-GAN's sampling), where the
            folder's is every (image, caption) pair.
        streaming_cache_dir: where chunks of a remote ``streaming_dir`` are cached (default: a folder in the temp dir).
        max_train_images: train on a fixed subset of this many training faces with attributes (None: all of them;
            e.g. 1000 for a small-data run), the first N of a permutation seeded with ``subset_seed``, drawn after the
            validation faces are held out (the partition file's, or ``val_fraction``), so validation and test are
            unchanged and never enter it: the faces :class:`~datamodules.CelebADataModule` keeps with the same options
            when every face has attributes. Each kept face keeps all its captions, and the vocabulary is built from
            theirs. Larger than the training split: an error at setup. Not with ``streaming_dir``: optimize a subset
            instead.
        subset_seed: seed of that subset: the same seed and ``max_train_images`` always keep the same faces (a larger
            ``max_train_images`` keeps a superset), whatever the run's seed or the worker count.
    """

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        image_folder: str = "img_align_celeba",
        attr_file: str = "list_attr_celeba.txt",
        partition_file: str | None = "list_eval_partition.txt",
        image_size: int = 64,
        crop_fraction: float = 1.0,
        val_fraction: float = 0.05,
        seed: int = 0,
        captions_per_image: int = 5,
        caption_seed: int = 0,
        in_memory: bool = False,
        max_length: int = 24,
        min_word_count: int = 1,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        streaming_dir: str | None = None,
        streaming_cache_dir: str | None = None,
        max_train_images: int | None = None,
        subset_seed: int = 0,
    ) -> None:
        super().__init__(
            max_length=max_length,
            min_word_count=min_word_count,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            max_train_images=max_train_images,
            subset_seed=subset_seed,
        )
        if captions_per_image < 1:
            raise ValueError(f"captions_per_image must be at least 1, got {captions_per_image}")
        self.faces = CelebADataModule(
            data_dir=data_dir,
            image_folder=image_folder,
            attr_file=attr_file,
            partition_file=partition_file,
            image_size=image_size,
            crop_fraction=crop_fraction,
            attribute=None,
            val_fraction=val_fraction,
            seed=seed,
        )
        self.image_size, self.image_shape = image_size, (3, image_size, image_size)
        self.captions_per_image, self.caption_seed, self.in_memory = captions_per_image, caption_seed, in_memory
        self.crop_fraction = crop_fraction
        self.streaming_dir, self.streaming_cache_dir = streaming_dir, streaming_cache_dir

    @property
    def attribute_names(self) -> list[str]:
        return self.faces.attribute_names

    def _build(self, split: str) -> tuple[Any, list[list[str]], list[list[dict]]]:
        if not self.faces.datasets:
            self.faces.setup()
            missing = sorted(set(CELEBA_ATTRIBUTES) - set(self.faces.attribute_names))
            if missing:
                raise DatasetNotFoundError(
                    f"the attribute file of '{self.faces.data_dir}' lacks CelebA's attributes {', '.join(missing[:5])}"
                    f"{' ...' if len(missing) > 5 else ''}: captions are made from CelebA's 40 attribute names "
                    "(list_attr_celeba.txt or Kaggle's CSV). Point attr_file at that file."
                )
        faces = self.faces.datasets[split]
        keep = [i for i in range(len(faces)) if int(faces.targets[i][0]) >= 0]  # rows of -1: no attributes
        if split == "train":
            keep = self._limit_train(keep, "training faces")
        names = self.faces.attribute_names
        rng = np.random.default_rng([self.caption_seed, {"train": 0, "val": 1, "test": 2}[split]])
        captions, facts = [], []
        for i in keep:
            attributes = dict(zip(names, (int(v) for v in faces.targets[i])))
            made = [celeba_caption(attributes, rng) for _ in range(self.captions_per_image)]
            captions.append([t for t, _ in made])
            facts.append([f for _, f in made])
        self._files[split] = [faces.folder / faces.names[i] for i in keep]
        images: Dataset = torch.utils.data.Subset(_Indexed(faces), keep)
        if self.in_memory:
            images = _to_uint8(images)
        return images, captions, facts

    def streaming_meta(self) -> dict:
        return super().streaming_meta() | {"attribute_names": self.attribute_names}

    def load_streaming_meta(self, manifest: dict) -> None:
        super().load_streaming_meta(manifest)
        self.faces.attribute_names = list(manifest["meta"]["attribute_names"])

    def attributes(self, split: str) -> Tensor:
        """Long[N, 40]: the 0/1 attributes of the split's captioned faces (CelebA's order, ``attribute_names``)."""
        self._raw_split(split)
        faces = self.faces.datasets[split]
        return torch.stack([faces.targets[i] for i in range(len(faces)) if int(faces.targets[i][0]) >= 0])
