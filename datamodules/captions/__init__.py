"""Images with captions for text-to-image GANs: MNIST and CelebA captioned by rule, and a folder layout for real
caption datasets (CUB, Oxford-102 or your own).

Every caption datamodule yields ``(image, tokens, text)`` batches: images Float[B, C, S, S] in [-1, 1], tokens
Long[B, max_length] (word ids of :class:`~datamodules.vocabulary.Vocabulary`, 0-padded) and the caption texts
(a list of B strings). Its ``vocabulary`` is built from the *training* captions (the CLI links it into the model,
which saves it in its checkpoints), and ``example_captions`` (eight validation captions) become the model's
fixed sample-grid prompts.

**Training pairs.** An image has several captions. The training set holds every (image, caption) pair once, so an
epoch sees each caption of each image once, in an order fixed by the resumable loader's seed: no random draw in
``__getitem__``, hence exact resume with or without worker processes (AttnGAN/DF-GAN draw one random caption per
image per visit instead; in expectation the same). Validation and test hold each image once with its first caption.

**Captions by rule** (seeded, so the same data always gives the same captions and vocabulary):

- :class:`MNISTCaptionsDataModule`: the digit and properties measured from the 28x28 image (:func:`measure_digits`):
  stroke thickness (twice the ink area over its perimeter), slant (the shear of the ink's second moments: positive
  leans right) and size (the area of the ink's bounding box). Thickness and size are split at per-digit tertiles
  (quartiles for size) of the training digits, so "thick" means thick for that digit; slant at fixed shears (right
  above 0.25, left below -0.1, upright within 0.05 of 0). A property in the neutral middle is never mentioned; an
  extreme one is mentioned with probability 0.8 per caption: ``"a small thick seven slanted to the right"``,
  ``"the digit seven, thin and written upright"``, ``"an eight"``.
- :class:`CelebACaptionsDataModule`: CelebA's 40 attributes through a small grammar (:func:`celeba_caption`): a
  subject from ``Male`` ("a man" / "a woman"), adjectives in front ("is": smiling, young / older, attractive,
  chubby, pale, bald), a ``with`` group ("has": hair colour and texture as one phrase, bangs, a big nose, a beard
  from ``No_Beard``, ...) and a ``wearing`` group (glasses, a hat, earrings, lipstick, ...), each a random subset of
  the face's attributes (at most 2, 3 and 2 items), lists joined as "x", "x and y", "x, y and z", the article
  agreeing with the next word. A face with no attribute set is still "a man" or "a woman": never empty (the
  MM-CelebA-HQ template script breaks there). ``Blurry`` is never mentioned.
- Each caption carries its *facts* (``dataset.facts[i]``: ``{"digit": 7, "thickness": "thick", ...}`` or
  ``{"Male": 1, "Smiling": 1, ...}``), which the faithfulness metrics check generated images against.

**Folder layout** (:class:`CaptionFolderDataModule`), as the CUB and Oxford-102 caption releases use: an image folder
(sub-folders allowed) and a text folder with one ``.txt`` per image, one caption per line, at the same relative path
(``images/001.Black_footed_Albatross/x.jpg`` <-> ``text/001.Black_footed_Albatross/x.txt``) or, failing that, a
unique file of the same name anywhere under the text folder (Oxford-102: ``jpg/image_00001.jpg`` <->
``text_c10/class_00001/image_00001.txt``).

This module never imports ``lightning_gans``.
"""

from datamodules.captions.base import CaptionDataModule, CaptionDataset, CaptionFolderDataModule
from datamodules.captions.celeba import CELEBA_ATTRIBUTES, CelebACaptionsDataModule, celeba_caption
from datamodules.captions.mnist import (
    DIGIT_WORDS,
    MNISTCaptionRules,
    MNISTCaptionsDataModule,
    measure_digits,
    mnist_caption,
)

__all__ = [
    "CELEBA_ATTRIBUTES",
    "DIGIT_WORDS",
    "CaptionDataModule",
    "CaptionDataset",
    "CaptionFolderDataModule",
    "CelebACaptionsDataModule",
    "MNISTCaptionRules",
    "MNISTCaptionsDataModule",
    "celeba_caption",
    "measure_digits",
    "mnist_caption",
]
