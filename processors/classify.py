"""Classification and enrichment of contacts the source did not describe: kind, category, topic, a
sentiment tag, a priority raised by urgent words, and error codes found in the text.

Rules live in a TOML file users edit (deploy/config/classification.toml). Matching is on stems
(Snowball, Russian or English by script, from the maintained `snowballstemmer`), lower case, ё -> е, so
one keyword covers its word forms. Each section scores its values: every keyword found adds its rule's
`weight` (default 1) to the rule's value, and the value with the highest score wins (a tie goes to the
value whose rule comes first). Several rules may name the same value with different weights: strong
cues ("feature request", "пришлите счёт") outweigh weak ones ("хотим", "how"), so "Хотим ещё 20
лицензий, пришлите счёт" is an order, not a feature request. A keyword right after a negation ("нам не
нужна новая функция", "we don't need a new feature") does not count. Pure: a rule set and an event in,
an enriched event out.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from processors.priority import derive_priority, one_step_up
from processors.stemming import Stemmer, words
from schemas.event import BusinessImpact, ContactEvent, ContactKind, EventType

DEFAULT_RULES_PATH: Final = (
    Path(__file__).resolve().parent.parent / "deploy" / "config" / "classification.toml"
)
NEGATION_REACH: Final = 1
"""How many words before a keyword a negation reaches: only the one right before ("не хотим"), so that
"не работают выгрузки" is still about exports."""


@dataclass(frozen=True)
class Rule:
    value: str
    phrases: tuple[tuple[str, ...], ...]
    weight: float = 1.0


def _occurrences(haystack: tuple[str, ...], needle: tuple[str, ...]) -> Iterable[int]:
    if not needle or len(needle) > len(haystack):
        return
    first = needle[0]
    for i in range(len(haystack) - len(needle) + 1):
        if haystack[i] == first and haystack[i : i + len(needle)] == needle:
            yield i


class Classifier:
    def __init__(self, rules: dict[str, Any]) -> None:
        self._stemmer = Stemmer()

        def compile_section(name: str) -> tuple[Rule, ...]:
            return tuple(
                Rule(
                    str(rule["value"]),
                    tuple(self._stems(str(k)) for k in rule.get("keywords", [])),
                    float(rule.get("weight", 1.0)),
                )
                for rule in rules.get(name, [])
            )

        self._kind = compile_section("kind")
        self._topic = compile_section("topic")
        self._category = compile_section("category")
        self._sentiment = compile_section("sentiment")
        self._negations = frozenset(self._stems(" ".join(rules.get("negations", []))))
        self._urgent = tuple(self._stems(str(k)) for k in rules.get("urgent", []))
        self._error_codes = tuple(re.compile(p) for p in rules.get("error_code_patterns", []))
        error_code_kind = rules.get("error_code_kind")
        self._error_code_kind = (
            Rule(str(error_code_kind["value"]), (), float(error_code_kind.get("weight", 1.0)))
            if error_code_kind
            else None
        )
        # Validate values against the contract once, at load time, not per event.
        for rule in self._kind:
            ContactKind(rule.value)
        if self._error_code_kind is not None:
            ContactKind(self._error_code_kind.value)
        for rule in self._category:
            BusinessImpact(rule.value)
        self._category_by_kind: dict[ContactKind | None, BusinessImpact] = {
            ContactKind(kind): BusinessImpact(category)
            for kind, category in rules.get("category_by_kind", {}).items()
        }

    @classmethod
    def from_file(cls, path: Path | None = None) -> Classifier:
        with (path or DEFAULT_RULES_PATH).open("rb") as handle:
            return cls(tomllib.load(handle))

    def _stems(self, text: str) -> tuple[str, ...]:
        return self._stemmer.stems(words(text))

    def _affirmed(self, stems: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
        """The phrase occurs somewhere not right after a negation."""
        return any(
            not self._negations.intersection(stems[max(0, at - NEGATION_REACH) : at])
            for at in _occurrences(stems, phrase)
        )

    def scores(self, rules: tuple[Rule, ...], stems: tuple[str, ...]) -> dict[str, float]:
        """Each value's score (insertion order = rule order, which breaks ties)."""
        totals: dict[str, float] = {}
        for rule in rules:
            found = sum(rule.weight for phrase in rule.phrases if self._affirmed(stems, phrase))
            if found:
                totals[rule.value] = totals.get(rule.value, 0.0) + found
        return totals

    def _best(self, rules: tuple[Rule, ...], stems: tuple[str, ...], bonus: Rule | None = None) -> str | None:
        totals = self.scores(rules, stems)
        if bonus is not None:
            totals[bonus.value] = totals.get(bonus.value, 0.0) + bonus.weight
        if not totals:
            return None
        top = max(totals.values())
        first_rule_order = [rule.value for rule in rules]
        candidates = [value for value, score in totals.items() if score == top]
        return min(
            candidates,
            key=lambda v: first_rule_order.index(v) if v in first_rule_order else len(first_rule_order),
        )

    def kind_of(self, text: str) -> ContactKind | None:
        """The kind the rules give a text (the evaluation bench calls this)."""
        found = self._best(self._kind, self._stems(text), self._error_code_bonus(self._error_code(text)))
        return ContactKind(found) if found else None

    def category_of(self, text: str, kind: ContactKind | None = None) -> BusinessImpact | None:
        """The category the rules give a text, else the usual one of its kind (its own or the rules')."""
        return self._category_for(self._stems(text), kind or self.kind_of(text))

    def _category_for(self, stems: tuple[str, ...], kind: ContactKind | None) -> BusinessImpact | None:
        """The category rules' verdict, else the usual category of `kind`."""
        found = self._best(self._category, stems)
        return BusinessImpact(found) if found else self._category_by_kind.get(kind)

    def _error_code(self, text: str) -> str | None:
        for pattern in self._error_codes:
            if match := pattern.search(text):
                return match.group(0)
        return None

    def _error_code_bonus(self, error_code: str | None) -> Rule | None:
        """What a quoted error code adds to the kinds' scores."""
        return self._error_code_kind if error_code else None

    def enrich(self, event: ContactEvent) -> ContactEvent:
        """Fill what the source left empty; only customer contacts carry words to classify."""
        if event.type is not EventType.CONTACT_RECEIVED:
            return event
        text = " ".join(part for part in (event.subject, event.text) if part)
        if not text:
            return event
        stems = self._stems(text)
        update: dict[str, Any] = {}
        error_code = self._error_code(text)
        if event.kind is None and (kind := self._best(self._kind, stems, self._error_code_bonus(error_code))):
            update["kind"] = ContactKind(kind)
        if event.topic is None and (topic := self._best(self._topic, stems)):
            update["topic"] = topic
        if event.category is None:
            category = self._category_for(stems, update.get("kind", event.kind))
            if category is not None:
                update["category"] = category
        if event.error_code is None and error_code is not None:
            update["error_code"] = error_code
        extra = dict(event.extra)
        if "sentiment" not in extra and (sentiment := self._best(self._sentiment, stems)):
            extra["sentiment"] = sentiment
        if event.priority is None and any(self._affirmed(stems, phrase) for phrase in self._urgent):
            derived = derive_priority(
                update.get("category", event.category), update.get("kind", event.kind), event.customer_tier
            )
            update["priority"] = one_step_up(derived)
            extra["urgent"] = True
        if extra != event.extra:
            update["extra"] = extra
        return event.model_copy(update=update) if update else event
