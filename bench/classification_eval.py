"""How well the rules classify what the source did not: per-class precision and recall of `kind` and
`category` over two labelled samples of realistic support messages in Russian and English
(`tests/data/classification_dev.jsonl`, the one the rules in deploy/config/classification.toml were
tuned on; `tests/data/classification_heldout.jsonl`, written afterwards and not tuned on), with the
hard cases a keyword list gets wrong: purchases that say "хотим", bug reports that say "добавьте",
negations ("нам не нужна новая функция"), how-to questions about features that exist.

    .venv/bin/python bench/classification_eval.py [--errors]

Goal (issue 12): feature_request precision >= 0.95 and recall >= 0.85 on each sample; the unit test
tests/unit/adapters/test_classification_eval.py holds it. `--errors` lists every misclassified message.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processors.classify import Classifier

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
DEV = DATA / "classification_dev.jsonl"
HELD_OUT = DATA / "classification_heldout.jsonl"
NONE = "(none)"


@dataclass(frozen=True)
class ClassScores:
    label: str
    support: int
    predicted: int
    correct: int

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.support if self.support else 1.0


@dataclass(frozen=True)
class Evaluation:
    field: str
    classes: dict[str, ClassScores]
    errors: list[tuple[str, str, str]]
    """(text, labelled, predicted) of every miss."""
    messages: int

    @property
    def accuracy(self) -> float:
        return 1 - len(self.errors) / self.messages


def load(sample: Path) -> list[dict[str, str | None]]:
    return [json.loads(line) for line in sample.read_text(encoding="utf-8").splitlines() if line]


def evaluate(field: str, sample: Path = DEV, classifier: Classifier | None = None) -> Evaluation:
    rules = classifier or Classifier.from_file()
    guess = rules.kind_of if field == "kind" else rules.category_of
    support: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    errors = []
    rows = load(sample)
    for row in rows:
        text = str(row["text"])
        labelled = row[field] or NONE
        found = guess(text)
        answer = found.value if found is not None else NONE
        support[labelled] += 1
        predicted[answer] += 1
        if answer == labelled:
            correct[labelled] += 1
        else:
            errors.append((text, labelled, answer))
    labels = sorted(set(support) | set(predicted))
    classes = {
        label: ClassScores(label, support[label], predicted[label], correct[label]) for label in labels
    }
    return Evaluation(field, classes, errors, len(rows))


def _table(evaluation: Evaluation) -> str:
    lines = [f"  {'class':<18}{'support':>8}{'precision':>11}{'recall':>8}"]
    for scores in evaluation.classes.values():
        lines.append(f"  {scores.label:<18}{scores.support:>8}{scores.precision:>11.3f}{scores.recall:>8.3f}")
    lines.append(f"  accuracy {evaluation.accuracy:.3f} over {evaluation.messages} messages")
    return "\n".join(lines)


def main() -> None:
    show_errors = "--errors" in sys.argv
    classifier = Classifier.from_file()
    for sample in (DEV, HELD_OUT):
        if not sample.exists():
            continue
        for field in ("kind", "category"):
            evaluation = evaluate(field, sample, classifier)
            print(f"{sample.name}: {field}")
            print(_table(evaluation))
            if show_errors:
                for text, labelled, answer in evaluation.errors:
                    print(f"    {labelled:>16} -> {answer:<16} {text}")
    texts = [str(row["text"]) for row in load(DEV)] * 20
    started = time.perf_counter()
    for text in texts:
        classifier.kind_of(text)
    took = time.perf_counter() - started
    print(f"cost: {took / len(texts) * 1e6:.0f} µs per message (kind, {len(texts)} messages)")


if __name__ == "__main__":
    main()
