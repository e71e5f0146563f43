"""Personal names inside free text (a customer signing "Сергей Иванов", "Thanks, Mary Smith"): found so
`Pseudonymizer.scrub` can replace them with keyed tokens before text leaves `contacts.raw`.

Dictionaries, not a hand-made list: Russian names, surnames and patronymics come from pymorphy3's
OpenCorpora dictionary (the `Name`, `Surn`, `Patr` grammemes, in every case form: "Смирновой",
"Алексею"); Latin-script first names from the US Census lists the `names` package ships, and Russian
names written in Latin ("Sergey Ivanov") through cyrtranslit's transliteration back into that same
dictionary (only words the dictionary knows count, so "Excel" is not a name). A heavier NER model
(Natasha/Slovnet) was measured out: it is Russian-only, adds 35 MB and milliseconds per message on the
raw agent's path, where a dictionary lookup with a cache costs microseconds.

Context decides what a dictionary alone cannot: a word is a name when it is capitalized where a
common noun would not be (inside a sentence), when it stands next to another name ("Роман Иванов"),
or right after a cue ("меня зовут", "my name is", "Regards,"). A sentence-initial "Вера" or "Bill"
that the dictionary mostly reads as a common word stays. Recall and false scrubs are measured on a
labelled sample (`tests/data/names_sample.jsonl`, `bench/name_scrub_recall.py`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from processors.stemming import morphology

_NAME_GRAMMEMES: Final = frozenset({"Name", "Surn", "Patr"})
_WORD: Final = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)?")
_SENTENCE_END: Final = re.compile(r"[.!?\n:;]\s*[\"'«(]*\s*$")
_CYRILLIC: Final = re.compile(r"[а-яё]", re.IGNORECASE)
_STRONG_CUE: Final = re.compile(
    r"\b(?:меня\s+зовут|зовут\s+меня|моя\s+фамилия|my\s+name\s+is|this\s+is|i\s+am|i'm|it's|"
    r"mr\.?|mrs\.?|ms\.?|dr\.?|господин|госпожа|г-н|г-жа|это|я)[\s,:\-–—]*$",
    re.IGNORECASE,
)
"""After these any capitalized word is a name, in the dictionary or not."""
_WEAK_CUE: Final = re.compile(
    r"\b(?:с\s+уважением|с\s+наилучшими\s+пожеланиями|спасибо|regards|best\s+wishes|sincerely|cheers|"
    r"thanks|thank\s+you|hi|hello|hey|dear|привет|здравствуйте|добрый\s+день)[\s,:\-–—]*$",
    re.IGNORECASE,
)
"""After these a word with any name reading is one ("Thanks, Bill"; not "Thanks, Support Team")."""
_CUE_REACH: Final = 40
# English words that are also US Census first names: a name only beside another name or after a cue.
_COMMON_ENGLISH: Final = frozenset(
    [
        "will",
        "bill",
        "may",
        "mark",
        "june",
        "april",
        "august",
        "rose",
        "grace",
        "joy",
        "hope",
        "art",
        "max",
        "chase",
        "dawn",
        "guy",
        "jack",
        "frank",
        "gene",
        "ray",
        "drew",
        "lane",
        "page",
        "dean",
        "miles",
        "long",
        "summer",
        "berry",
        "king",
        "prince",
        "sol",
        "gay",
        "else",
        "major",
        "sterling",
        "price",
        "young",
        "white",
        "green",
        "brown",
        "black",
        "hall",
        "wood",
        "love",
        "early",
        "case",
        "carol",
        "lee",
        "christian",
        "son",
        "sunny",
        "best",
        "my",
        "can",
        "an",
        "in",
        "so",
        "do",
        "no",
        "see",
    ]
)
_MIDSENTENCE_NAME_SCORE: Final = 0.1
"""A capitalized word inside a Russian sentence is a name if the dictionary gives that reading this
much of its probability ("Вера" 0.30, "Надежда" 0.46 pass; "Тинькофф" 0.04 as a surname does not)."""


@dataclass(frozen=True, slots=True)
class _Word:
    start: int
    end: int
    text: str
    sentence_start: bool


@functools.cache
def _census_first_names() -> frozenset[str]:
    import names

    found: set[str] = set()
    for key in ("first:male", "first:female"):
        with open(names.FILES[key], encoding="ascii") as lines:
            found.update(line.split()[0].lower() for line in lines if line.strip())
    return frozenset(found)


@functools.lru_cache(maxsize=65536)
def _name_score(word: str) -> tuple[float, bool]:
    """(probability the dictionary gives to a personal-name reading, whether that reading is its
    best one) for one capitalized word."""
    lower = word.lower()
    if not _CYRILLIC.search(lower):
        if lower in _census_first_names():
            common = lower in _COMMON_ENGLISH
            return (0.5, False) if common else (1.0, True)
        import cyrtranslit

        lower = cyrtranslit.to_cyrillic(lower, "ru")
        if not _CYRILLIC.fullmatch(lower[:1] or "x") or not morphology().word_is_known(lower):
            return (0.0, False)
        # Never a best reading: "Best" and "Can" transliterate to dictionary names too, so a Latin
        # word found this way is a name only after a cue or beside another name ("Regards, Sergey").
        return (_morph_name_score(lower)[0], False)
    return _morph_name_score(lower)


def _morph_name_score(lower: str) -> tuple[float, bool]:
    parses = morphology().parse(lower)
    score = sum(p.score for p in parses if _NAME_GRAMMEMES & p.tag.grammemes)
    best = bool(parses) and bool(_NAME_GRAMMEMES & parses[0].tag.grammemes)
    if not best and not morphology().word_is_known(lower):
        # A word the dictionary guesses from its ending ("Тинькофф", "Битрикс"): a name only when
        # that guess is the best one (a rare surname in -ов, -ская).
        return (0.0, False)
    return (score, best)


def _words(text: str) -> Iterator[_Word]:
    # Only the text since the previous word can end a sentence (a word breaks the pattern), so each word
    # looks at that gap rather than at the whole prefix: linear in the text, not quadratic.
    previous_end = 0
    for match in _WORD.finditer(text):
        gap = text[previous_end : match.start()]
        first = previous_end == 0 and not gap.strip()
        start = first or bool(_SENTENCE_END.search(gap))
        yield _Word(match.start(), match.end(), match.group(0), start)
        previous_end = match.end()


def _capitalized(word: str) -> bool:
    return word[:1].isupper() and not (len(word) > 1 and word.isupper())


def known_forms(names: Iterable[str]) -> frozenset[str]:
    """The words of names a source gave for its sender (a Telegram first and last name, an e-mail
    display name), with their dictionary forms, so "Пантелеймоновой" matches "Пантелеймонова"."""
    forms: set[str] = set()
    for name in names:
        for word in _WORD.findall(name):
            if len(word) >= 2:
                forms.add(word.lower())
                forms.update(_normal_forms(word.lower()))
    return frozenset(forms)


@functools.lru_cache(maxsize=65536)
def _normal_forms(lower: str) -> frozenset[str]:
    if not _CYRILLIC.search(lower):
        return frozenset()
    return frozenset(p.normal_form for p in morphology().parse(lower))


def name_spans(text: str, known: frozenset[str] = frozenset()) -> list[tuple[int, int]]:
    """Character spans of personal names in `text`, adjacent name words merged into one span; `known`
    (from `known_forms`) are names the source itself gave, found in any case form."""
    words = [w for w in _words(text)]
    if not words:
        return []
    scores = [_name_score(w.text) if _capitalized(w.text) else (0.0, False) for w in words]
    is_name = [False] * len(words)
    for i, (word, (score, best)) in enumerate(zip(words, scores, strict=True)):
        before = text[max(0, word.start - _CUE_REACH) : word.start]
        if _capitalized(word.text) and _STRONG_CUE.search(before):
            is_name[i] = True
            continue
        lower = word.text.lower()
        if known and (lower in known or _normal_forms(lower) & known):
            is_name[i] = True
            continue
        if score <= 0:
            continue
        if _WEAK_CUE.search(before) or (best and not word.sentence_start):
            is_name[i] = True
        elif word.sentence_start:
            # "Сергей, добрый день", "Kevin reported" yes; "Вера в продукт", "Bill is wrong" no: at a
            # sentence start only a word whose best reading is a name.
            is_name[i] = best
        else:
            is_name[i] = score >= _MIDSENTENCE_NAME_SCORE and _CYRILLIC.search(word.text) is not None
    # A word with any name reading beside a name is part of it ("Роман Иванов", "Mary Smith").
    changed = True
    while changed:
        changed = False
        for i, word in enumerate(words):
            if is_name[i] or not _capitalized(word.text):
                continue
            neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(words) and is_name[j]]
            adjacent = any(_only_space_between(text, words[min(i, j)], words[max(i, j)]) for j in neighbours)
            if adjacent and (scores[i][0] > 0 or (not word.sentence_start and i - 1 in neighbours)):
                is_name[i] = changed = True
    return _merge(text, [(w.start, w.end) for w, name in zip(words, is_name, strict=True) if name])


def _only_space_between(text: str, left: _Word, right: _Word) -> bool:
    return not text[left.end : right.start].strip()


def _merge(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and not text[merged[-1][1] : start].strip():
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
