"""One stemmer for classification and feature clustering: the Snowball stemmer of the word's script
(Russian or English, from the maintained `snowballstemmer`), after lower case and ё -> е, cached per word
(support text repeats a small vocabulary). With `lemmas`, a Russian word is first brought to its
dictionary form by pymorphy3 (OpenCorpora), which the stemmer alone does not do for every inflection:
"этикеток"/"этикетки", "заявок"/"заявки", "печать"/"печатать" meet."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any, Final

import snowballstemmer
from mypy_extensions import mypyc_attr

WORD: Final = re.compile(r"[0-9a-zа-я]+")
_CYRILLIC: Final = re.compile(r"[а-я]")


def words(text: str, pattern: re.Pattern[str] = WORD) -> list[str]:
    return pattern.findall(text.lower().replace("ё", "е"))


_STEMS: Final[dict[bool, dict[str, str]]] = {False: {}, True: {}}
"""word -> stem, without and with lemmas first."""


@functools.cache
def morphology() -> Any:
    """pymorphy3's analyzer of Russian (loaded once: about half a second and 15 MB)."""
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


@mypyc_attr(allow_interpreted_subclasses=True)
class Stemmer:
    def __init__(self, lemmas: bool = False) -> None:
        self._russian = snowballstemmer.stemmer("russian")
        self._english = snowballstemmer.stemmer("english")
        self._lemmas = lemmas
        self._morph = morphology() if lemmas else None
        # A word's stem is a pure function of the word: one cache per mode for the whole process (every
        # detection engine a test builds, every classifier), not one per instance.
        self._cache = _STEMS[lemmas]

    def __getstate__(self) -> dict[str, Any]:
        # The analyzer and the cache are shared and derivable: a checkpoint names the mode only.
        return {"_lemmas": self._lemmas}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["_lemmas"])  # type: ignore[misc]

    def stem(self, word: str) -> str:
        stem = self._cache.get(word)
        if stem is None:
            if _CYRILLIC.search(word):
                if self._morph is not None:
                    word_form = self._morph.parse(word)[0].normal_form.replace("ё", "е")
                    stem = self._russian.stemWord(word_form)
                else:
                    stem = self._russian.stemWord(word)
            else:
                stem = self._english.stemWord(word)
            self._cache[word] = stem
        return stem

    def stems(self, found: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.stem(word) for word in found)
