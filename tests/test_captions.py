"""Caption data: the vocabulary, the MNIST and CelebA caption grammars, the measured digit properties, and the three
caption datamodules (MNIST and CelebA on small synthetic copies, the folder layout on files written here)."""

from __future__ import annotations

import itertools
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.captions import (
    CELEBA_ATTRIBUTES,
    DIGIT_WORDS,
    CaptionFolderDataModule,
    CelebACaptionsDataModule,
    MNISTCaptionsDataModule,
    celeba_caption,
    measure_digits,
    mnist_caption,
)
from datamodules.vocabulary import PAD_ID, UNK_ID, UnknownWordsWarning, Vocabulary, lengths, tokenize
from tests.test_configs import fake_mnist


# ------------------------------------------------------------------------------------------------ vocabulary
def test_vocabulary_orders_words_by_count_then_alphabet_after_pad_and_unk():
    vocab = Vocabulary.build(["a thick seven", "a thin seven", "A seven!"])
    assert vocab.words == ["<pad>", "<unk>", "a", "seven", "thick", "thin"]
    assert Vocabulary(vocab.words) == vocab and Vocabulary(vocab.words[2:]) == vocab  # specials put in front
    assert Vocabulary.build(["b a", "a"], min_count=2).words == ["<pad>", "<unk>", "a"]
    assert tokenize("A five o'clock-shadow, 7!") == ["a", "five", "o'clock", "shadow", "7"]


def test_unknown_words_map_to_unk_with_one_warning_that_counts_them():
    vocab = Vocabulary(["a", "thick", "seven"])
    with pytest.warns(UnknownWordsWarning, match=r"3 words of 2 prompts .*'purple' x2, 'dog' x1"):
        ids = vocab.encode_batch(["a purple seven", "purple dog"], max_length=4, what="prompts")
    assert ids.tolist() == [[2, UNK_ID, 4, PAD_ID], [UNK_ID, UNK_ID, PAD_ID, PAD_ID]]
    with pytest.warns(UnknownWordsWarning, match="1 of 1 captions are longer than max_length=2"):
        assert vocab.encode_batch(["a thick seven"], max_length=2).tolist() == [[2, 3]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = vocab.encode_batch(["", "a seven"], max_length=3)  # known words: no warning
    assert empty[0].tolist() == [UNK_ID, 0, 0] and lengths(empty).tolist() == [1, 2]  # never an empty caption


# ------------------------------------------------------------------------------------------------ grammars
def _grammatical(text: str) -> None:
    assert text and text == text.strip() and "  " not in text, text
    assert not re.search(r"\b(a|an|and|with|wearing)$", text) and " ," not in text and ",," not in text, text
    assert not re.search(r"\band,|, and and\b|\band and\b", text), text
    for article, word in re.findall(r"\b(a|an) (\w+)", text):
        vowel = word[0] in "aeiou" and not word.startswith("one")
        assert article == ("an" if vowel else "a"), text


def test_every_mnist_caption_is_grammatical_and_says_its_facts():
    rng = np.random.default_rng(0)
    for digit, thickness, slant, size in itertools.product(
        range(10), ("thin", "thick", None), ("left", "right", "upright", None), ("small", "large", None)
    ):
        words = {"thickness": thickness, "slant": slant, "size": size}
        for _ in range(4):
            text, facts = mnist_caption(digit, words, rng)
            _grammatical(text)
            assert DIGIT_WORDS[digit] in tokenize(text) and facts["digit"] == digit
            for key in ("thickness", "size"):
                assert (key in facts) == (words[key] is not None and words[key] in tokenize(text))
            if "slant" in facts:
                assert ("upright" if facts["slant"] == "upright" else f"to the {facts['slant']}") in text
            assert set(facts) - {"digit"} <= {k for k, v in words.items() if v is not None}
    assert mnist_caption(8, {"thickness": None, "slant": None, "size": None}, rng)[0] in ("an eight", "the digit eight")
    assert mnist_caption(1, {"thickness": None, "slant": None, "size": None}, rng)[0] in ("a one", "the digit one")


def test_celeba_caption_of_a_face_with_no_attribute_is_a_man_or_a_woman():
    rng = np.random.default_rng(0)
    for male in (0, 1):
        noun = "man" if male else "woman"
        face = {name: 0 for name in CELEBA_ATTRIBUTES} | {"Male": male, "No_Beard": 1, "Young": 1}  # only "young"
        made = [celeba_caption(face, rng) for _ in range(20)]
        assert {t for t, _ in made} == {f"a {noun}", f"a young {noun}"}
        assert all(f in ({"Male": male}, {"Male": male, "Young": 1}) for _, f in made)


def test_celeba_captions_are_grammatical_and_their_facts_are_the_face_s():
    rng = np.random.default_rng(1)
    words = set()
    for _ in range(400):
        face = {name: int(v) for name, v in zip(CELEBA_ATTRIBUTES, rng.integers(0, 2, len(CELEBA_ATTRIBUTES)))}
        text, facts = celeba_caption(face, rng)
        _grammatical(text)
        assert all(face[name] == value for name, value in facts.items()), (text, facts)
        assert ("man" in tokenize(text)) == bool(face["Male"]) and "Blurry" not in facts
        assert not ("Bald" in facts and "hair" in tokenize(text)), text  # never hair on a bald head
        assert len(tokenize(text)) <= 24
        words |= set(tokenize(text))
    assert {"older", "beard", "wearing", "with", "blond"} <= words


# ------------------------------------------------------------------------------------------------ measurements
def test_measure_digits_sees_thickness_slant_and_size():
    canvas = torch.zeros(4, 28, 28, dtype=torch.uint8)
    canvas[0, 4:24, 13:15] = 255  # thin upright bar
    canvas[1, 4:24, 11:17] = 255  # thick upright bar
    for row in range(4, 24):  # top leans right: x grows as y shrinks
        canvas[2, row, 20 - (row - 4) // 2 : 22 - (row - 4) // 2] = 255
    canvas[3, 10:16, 13:15] = 255  # small bar
    m = measure_digits(canvas)
    assert m["thickness"][1] > 2 * m["thickness"][0]
    assert abs(float(m["slant"][0])) < 0.01 and float(m["slant"][2]) > 0.3
    assert m["size"][3] < m["size"][0] < m["size"][1]


# ------------------------------------------------------------------------------------------------ datamodules
@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    return fake_mnist(tmp_path_factory.mktemp("mnist_captions"))


def test_mnist_captions_datamodule_yields_images_tokens_and_texts(mnist_dir: Path):
    dm = MNISTCaptionsDataModule(
        data_dir=str(mnist_dir), download=False, val_size=16, captions_per_image=3, batch_size=8, image_size=32
    )
    words = dm.vocabulary  # built from the training captions before any setup
    assert words[:2] == ["<pad>", "<unk>"] and "digit" in words
    dm.setup("fit")
    train, val = dm.datasets["train"], dm.datasets["val"]
    assert len(train) == 48 * 3 and len(val) == 16  # every (image, caption) pair; validation: first captions
    images, tokens, texts = next(iter(dm.train_dataloader()))
    assert images.shape == (8, 1, 32, 32) and images.min() >= -1 and images.max() <= 1
    assert tokens.shape == (8, dm.max_length) and len(texts) == 8
    assert [Vocabulary(words).decode(t) for t in tokens] == [" ".join(tokenize(t)) for t in texts]
    assert dm.rules is not None and len(dm.rules.thickness) == 10
    assert 1 <= len(dm.example_captions) <= 8 and len(set(dm.example_captions)) == len(dm.example_captions)
    again = MNISTCaptionsDataModule(data_dir=str(mnist_dir), download=False, val_size=16, captions_per_image=3)
    assert again.vocabulary == words and again.dataset("train").captions == train.captions  # seeded


def _fake_celeba(root: Path, n: int = 12) -> Path:
    folder = root / "faces"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1, n + 1):
        Image.fromarray(rng.integers(0, 256, (40, 32, 3), dtype=np.uint8)).save(folder / f"{i:06d}.jpg")
        rows.append(f"{i:06d}.jpg " + " ".join(str(v) for v in rng.choice([-1, 1], 40)))
    (root / "list_attr_celeba.txt").write_text("\n".join([str(n), " ".join(CELEBA_ATTRIBUTES), *rows]) + "\n")
    return root


def test_celeba_captions_datamodule_keeps_captions_and_their_facts(tmp_path: Path):
    root = _fake_celeba(tmp_path)
    dm = CelebACaptionsDataModule(
        data_dir=str(root),
        image_folder="faces",
        image_size=16,
        val_fraction=0.25,
        captions_per_image=2,
        in_memory=True,
        batch_size=4,
    )
    dm.setup("fit")
    train = dm.datasets["train"]
    assert len(train) == 9 * 2 and len(dm.datasets["val"]) == 3
    image, _, text = train[3]
    assert image.shape == (3, 16, 16) and text == train.captions[1][1]
    attributes = dm.attributes("train")
    assert attributes.shape == (9, 40)
    for i, facts in enumerate(train.facts):
        for f in facts:
            assert all(int(attributes[i, CELEBA_ATTRIBUTES.index(a)]) == v for a, v in f.items())


def test_celeba_captions_need_celeba_s_attribute_names(tmp_path: Path):
    root = _fake_celeba(tmp_path)
    text = (root / "list_attr_celeba.txt").read_text().replace("Male", "Man")
    (root / "list_attr_celeba.txt").write_text(text)
    with pytest.raises(Exception, match="lacks CelebA's attributes Male"):
        _ = CelebACaptionsDataModule(data_dir=str(root), image_folder="faces", image_size=16).vocabulary


def test_caption_folder_pairs_images_with_their_text_files(tmp_path: Path):
    rng = np.random.default_rng(0)
    for sub, name, captions in [
        ("001.Albatross", "a", "a white bird\n\na bird with long wings\n"),
        ("002.Finch", "b", "a small red bird\n"),
        ("002.Finch", "c", None),
        ("002.Finch", "d", "  \n"),
    ]:
        (tmp_path / "images" / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
            tmp_path / "images" / sub / f"{name}.jpg"
        )
        if captions is not None:
            (tmp_path / "text" / sub).mkdir(parents=True, exist_ok=True)
            (tmp_path / "text" / sub / f"{name}.txt").write_text(captions)
    # Oxford-102 style: the caption file lives under another sub-folder, found by its unique name.
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "images" / "e.png")
    (tmp_path / "text" / "class_00001").mkdir()
    (tmp_path / "text" / "class_00001" / "e.txt").write_text("a yellow flower\n")
    dm = CaptionFolderDataModule(data_dir=str(tmp_path), image_size=8, val_fraction=0.0, batch_size=2)
    with pytest.warns(UserWarning, match="1 of 5 images .* have no caption file .* and 1 an empty one"):
        dm.setup("fit")
    train = dm.datasets["train"]
    assert sorted(c for cs in train.captions for c in cs) == [
        "a bird with long wings",
        "a small red bird",
        "a white bird",
        "a yellow flower",
    ]
    assert train[0][0].shape == (3, 8, 8)
    with pytest.raises(Exception, match="an image folder 'pictures/'"):
        _ = CaptionFolderDataModule(data_dir=str(tmp_path), image_folder="pictures").vocabulary
