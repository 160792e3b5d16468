"""A word vocabulary for captions: built from the training captions, stored as a plain list of words.

Tokenisation is deliberately simple and the same everywhere (datamodules, models, ``predict`` prompts): lower case,
words are runs of letters, digits and apostrophes (``"o'clock"``), everything else separates them. Id 0 is the
padding token ``<pad>``, id 1 the unknown token ``<unk>``; the words follow by decreasing count in the training
captions, ties in alphabetical order, so the same captions always give the same ids.

A vocabulary is saved with every checkpoint that uses it as its list of words (plain data, ``weights_only``-safe),
so a model turns new prompts into the ids it was trained on. Words it has never seen become ``<unk>``, and
:meth:`Vocabulary.encode_batch` warns once per call with how many there were and which.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
_WORD = re.compile(r"[a-z0-9']+")


def tokenize(text: str) -> list[str]:
    """``"A thick 7, slanted!"`` -> ``["a", "thick", "7", "slanted"]``."""
    return _WORD.findall(text.lower())


class UnknownWordsWarning(UserWarning):
    """Some caption words are not in the vocabulary (they map to ``<unk>``), or captions were cut to max_length."""


class Vocabulary:
    """Words <-> ids, with ``<pad>`` = 0 and ``<unk>`` = 1.

    Args:
        words: every entry in id order, starting with ``<pad>`` and ``<unk>`` (what :attr:`words` returns and
            checkpoints store), or only the words (the two special tokens are put in front).
    """

    def __init__(self, words: Sequence[str]) -> None:
        words = list(words)
        if words[:2] != [PAD, UNK]:
            words = [PAD, UNK, *(w for w in words if w not in (PAD, UNK))]
        if len(set(words)) != len(words):
            raise ValueError("a vocabulary lists each word once; got duplicates")
        self.words: list[str] = words
        self.index = {w: i for i, w in enumerate(words)}

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> Vocabulary:
        """The words of ``captions`` that occur at least ``min_count`` times, most frequent first."""
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        counts = Counter(w for caption in captions for w in tokenize(caption))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if not kept:
            raise ValueError("no word occurs often enough to build a vocabulary: are the captions empty?")
        return cls(kept)

    def __len__(self) -> int:
        return len(self.words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other.words == self.words

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} entries: {', '.join(self.words[2:8])}{', ...' if len(self) > 8 else ''})"

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``'s words (unknown words -> ``<unk>``), without padding."""
        return [self.index.get(w, UNK_ID) for w in tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """The words of ``ids``, padding dropped."""
        return " ".join(self.words[int(i)] for i in ids if int(i) != PAD_ID)

    def encode_batch(self, texts: Sequence[str], max_length: int, what: str = "captions") -> torch.Tensor:
        """Long[len(texts), max_length]: the ids of each text, cut to ``max_length`` words and padded with 0.

        A text without any word keeps one ``<unk>`` (a caption is never empty for the encoder). Warns once, with
        counts, about unknown words and about texts longer than ``max_length``.
        """
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        rows, unknown, cut, index = [], Counter(), 0, self.index
        for text in texts:
            words = tokenize(text)
            ids = [index.get(w, UNK_ID) for w in words] or [UNK_ID]
            if UNK_ID in ids and words:
                unknown.update(w for w in words if w not in index)
            cut += len(ids) > max_length
            rows.append(ids[:max_length] + [PAD_ID] * (max_length - len(ids)))
        out = torch.tensor(rows, dtype=torch.long).view(len(texts), max_length)
        if unknown or cut:
            parts = []
            if unknown:
                shown = ", ".join(f"'{w}' x{c}" for w, c in unknown.most_common(8))
                more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
                parts.append(
                    f"{sum(unknown.values())} words of {len(texts)} {what} are not in the vocabulary of "
                    f"{len(self)} entries and map to {UNK} ({shown}{more})"
                )
            if cut:
                parts.append(f"{cut} of {len(texts)} {what} are longer than max_length={max_length} words and are cut")
            warnings.warn("; ".join(parts) + ".", UnknownWordsWarning, stacklevel=2)
        return out


def lengths(tokens: torch.Tensor) -> torch.Tensor:
    """Long[N]: the number of words of each row of padded ids (at least 1)."""
    return (tokens != PAD_ID).sum(dim=1).clamp_min(1)


__all__ = ["PAD", "PAD_ID", "UNK", "UNK_ID", "UnknownWordsWarning", "Vocabulary", "lengths", "tokenize"]
