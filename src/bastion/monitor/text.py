"""Per-row descriptors of free text, so text drift can be measured without keeping the text.

A text column is reduced to four descriptors per row: its length in characters, the share
of its tokens outside the reference vocabulary, the share of non-ASCII characters, and its
dominant script (Latin, Cyrillic, Arabic, CJK, ...) from ``unicodedata`` character names.
The first three are profiled as numeric features and the last as a categorical one, so the
same drift statistics apply: slang and typos raise the out-of-vocabulary rate, another
language shows up in the non-ASCII share and the script mix.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the reference vocabulary keeps at most this many most frequent tokens
VOCABULARY_SIZE = 20_000
#: the script of a row with no letters at all
NO_LETTERS = "none"

_TOKEN = re.compile(r"\w+", re.UNICODE)
# character-name prefixes that name a script in more than one word
_MULTI_WORD_SCRIPTS = ("CJK", "HANGUL", "HIRAGANA", "KATAKANA")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (``\\w+``, Unicode-aware)."""
    return _TOKEN.findall(text.lower())


def build_vocabulary(texts: Iterable[str], size: int = VOCABULARY_SIZE) -> frozenset[str]:
    """The `size` most frequent tokens of the reference texts (ties broken by the token)."""
    counts = Counter(token for text in texts for token in tokens(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return frozenset(token for token, _ in ranked[:size])


@functools.lru_cache(maxsize=65_536)
def script_of(char: str) -> str | None:
    """The script of a letter from its Unicode name (``LATIN SMALL LETTER A`` → ``latin``)."""
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    if not name:
        return "other"
    first = name.split(" ", 1)[0]
    if first in _MULTI_WORD_SCRIPTS:
        return "cjk" if first in ("CJK", "HIRAGANA", "KATAKANA") else first.lower()
    return first.lower()


def dominant_script(text: str) -> str:
    """The script most of the letters in `text` belong to; ``none`` without letters."""
    # one look-up per distinct character (texts repeat characters), each cached
    counts: Counter[str] = Counter()
    for char, n in Counter(text).items():
        script = script_of(char)
        if script is not None:
            counts[script] += n
    if not counts:
        return NO_LETTERS
    return max(counts.items(), key=lambda item: (item[1], item[0]))[0]


@dataclass(frozen=True)
class TextDescriptors:
    """Descriptors of a batch of texts, one entry per row; missing texts are NaN / None."""

    length: np.ndarray[Any, np.dtype[np.float64]]
    oov_rate: np.ndarray[Any, np.dtype[np.float64]]
    non_ascii: np.ndarray[Any, np.dtype[np.float64]]
    script: list[str | None]


def cross_fitted_oov(texts: Sequence[object]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Each reference text's out-of-vocabulary rate against a vocabulary built without it.

    Measured against a vocabulary built from the same texts, every reference rate would be
    0 and any fresh window — whose texts the vocabulary never saw — would look drifted.
    Two folds (even and odd rows), each measured against the other's vocabulary, give the
    rate a new text of the same kind really has.
    """
    present = [i for i, value in enumerate(texts) if isinstance(value, str)]
    folds = (present[0::2], present[1::2])
    vocabularies = [build_vocabulary(str(texts[i]) for i in fold) for fold in folds]
    oov = np.full(len(texts), np.nan)
    for fold, other in zip(folds, reversed(vocabularies), strict=True):
        for i in fold:
            words = tokens(str(texts[i]))
            oov[i] = sum(word not in other for word in words) / len(words) if words else 0.0
    return oov


def describe(texts: Sequence[object], vocabulary: frozenset[str]) -> TextDescriptors:
    """Compute the descriptors of `texts` against the reference `vocabulary`.

    A row with no tokens has out-of-vocabulary rate 0 and an empty text has non-ASCII
    share 0, so every present row gets finite descriptors.
    """
    rows = len(texts)
    length = np.full(rows, np.nan)
    oov = np.full(rows, np.nan)
    non_ascii = np.full(rows, np.nan)
    script: list[str | None] = [None] * rows
    for i, value in enumerate(texts):
        if not isinstance(value, str):
            continue
        length[i] = len(value)
        words = tokens(value)
        oov[i] = sum(word not in vocabulary for word in words) / len(words) if words else 0.0
        non_ascii[i] = (1.0 - len(value.encode("ascii", "ignore")) / len(value)) if value else 0.0
        script[i] = dominant_script(value)
    return TextDescriptors(length=length, oov_rate=oov, non_ascii=non_ascii, script=script)
