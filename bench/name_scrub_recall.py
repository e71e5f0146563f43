"""How well free-text scrubbing finds personal names: recall over two labelled samples of realistic
support messages in Russian and English, each with the name words it contains
(`tests/data/names_sample.jsonl`, the one the rules were tuned on; `tests/data/names_heldout.jsonl`,
written afterwards and not tuned on), the capitalized words it scrubs that are not names, and its cost
per message.

    .venv/bin/python bench/name_scrub_recall.py

A name word counts as found when it no longer appears in the scrubbed text. The unit test
`tests/unit/test_pii.py` holds the floor on the same sample; this prints the figures for the README.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processors.pii import Pseudonymizer

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SAMPLE = DATA / "names_sample.jsonl"
HELD_OUT = DATA / "names_heldout.jsonl"
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)?")


@dataclass(frozen=True)
class Scores:
    names: int
    found: int
    missed: list[str]
    false_scrubs: list[str]
    messages: int

    @property
    def recall(self) -> float:
        return self.found / self.names


def score(sample: Path = SAMPLE) -> Scores:
    pii = Pseudonymizer(b"bench-key-of-sixteen-bytes")
    names = found = messages = 0
    missed: list[str] = []
    false_scrubs: list[str] = []
    for line in sample.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        text, labelled = row["text"], row["names"]
        scrubbed_words = set(_WORD.findall(pii.scrub(text)))
        messages += 1
        for name in labelled:
            names += 1
            if name in scrubbed_words:
                missed.append(f"{name} in {text!r}")
            else:
                found += 1
        for word in _WORD.findall(text):
            if word not in scrubbed_words and word not in labelled and word[:1].isupper():
                false_scrubs.append(f"{word} in {text!r}")
    return Scores(names, found, missed, false_scrubs, messages)


def main() -> None:
    pii = Pseudonymizer(b"bench-key-of-sixteen-bytes")
    texts = [json.loads(line)["text"] for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    pii.scrub(texts[0])  # load the dictionaries outside the timing
    started = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for text in texts:
            pii.scrub(text)
    per_message = (time.perf_counter() - started) / (rounds * len(texts))
    for title, path in (("tuned-on sample", SAMPLE), ("held-out sample", HELD_OUT)):
        result = score(path)
        print(f"{title}: {result.messages} messages, {result.names} labelled name words")
        print(f"  recall: {result.recall:.3f} ({result.found}/{result.names})")
        print(f"  capitalized non-name words scrubbed: {len(result.false_scrubs)}")
        for miss in result.missed:
            print("    missed:", miss)
        for wrong in result.false_scrubs:
            print("    scrubbed, not labelled a name:", wrong)
    print(f"scrub cost: {per_message * 1e6:.0f} µs per message (dictionary lookups cached)")


if __name__ == "__main__":
    main()
