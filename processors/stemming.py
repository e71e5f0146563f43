"""One stemmer for classification and feature clustering: the Snowball stemmer of the word's script
(Russian or English, from the maintained `snowballstemmer`), after lower case and ё -> е, cached per word
(support text repeats a small vocabulary)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import snowballstemmer

WORD: Final = re.compile(r"[0-9a-zа-я]+")
HYPHENATED_WORD: Final = re.compile(r"[0-9a-zа-я]+(?:-[0-9a-zа-я]+)*")
"""Keeps "two-factor" and "e-mail" whole (feature names)."""
_CYRILLIC: Final = re.compile(r"[а-я]")


def words(text: str, pattern: re.Pattern[str] = WORD) -> list[str]:
    return pattern.findall(text.lower().replace("ё", "е"))


class Stemmer:
    def __init__(self) -> None:
        self._russian = snowballstemmer.stemmer("russian")
        self._english = snowballstemmer.stemmer("english")
        self._cache: dict[str, str] = {}

    def stem(self, word: str) -> str:
        stem = self._cache.get(word)
        if stem is None:
            stemmer = self._russian if _CYRILLIC.search(word) else self._english
            stem = self._cache[word] = stemmer.stemWord(word)
        return stem

    def stems(self, found: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.stem(word) for word in found)
