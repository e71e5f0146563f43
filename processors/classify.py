"""Classification and enrichment of contacts the source did not describe: kind, category, topic, a
sentiment tag, a priority raised by urgent words, and error codes found in the text.

Rules live in a TOML file users edit (deploy/config/classification.toml). Matching is on stems
(Snowball, Russian or English by script, from the maintained `snowballstemmer`), lower case, ё -> е, so
one keyword covers its word forms. Pure: a rule set and an event in, an enriched event out.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from processors.priority import derive_priority, one_step_up
from processors.stemming import Stemmer, words
from schemas.event import BusinessImpact, ContactEvent, ContactKind, EventType

DEFAULT_RULES_PATH: Final = (
    Path(__file__).resolve().parent.parent / "deploy" / "config" / "classification.toml"
)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    if not needle or len(needle) > len(haystack):
        return False
    first = needle[0]
    return any(
        haystack[i] == first and haystack[i : i + len(needle)] == needle
        for i in range(len(haystack) - len(needle) + 1)
    )


@dataclass(frozen=True)
class Rule:
    value: str
    phrases: tuple[tuple[str, ...], ...]


class Classifier:
    def __init__(self, rules: dict[str, Any]) -> None:
        self._stemmer = Stemmer()

        def compile_section(name: str) -> tuple[Rule, ...]:
            return tuple(
                Rule(str(rule["value"]), tuple(self._stems(str(k)) for k in rule.get("keywords", [])))
                for rule in rules.get(name, [])
            )

        self._kind = compile_section("kind")
        self._topic = compile_section("topic")
        self._category = compile_section("category")
        self._sentiment = compile_section("sentiment")
        self._urgent = tuple(self._stems(str(k)) for k in rules.get("urgent", []))
        self._error_codes = tuple(re.compile(p) for p in rules.get("error_code_patterns", []))
        # Validate values against the contract once, at load time, not per event.
        for rule in self._kind:
            ContactKind(rule.value)
        for rule in self._category:
            BusinessImpact(rule.value)

    @classmethod
    def from_file(cls, path: Path | None = None) -> Classifier:
        with (path or DEFAULT_RULES_PATH).open("rb") as handle:
            return cls(tomllib.load(handle))

    def _stems(self, text: str) -> tuple[str, ...]:
        return self._stemmer.stems(words(text))

    def _first(self, rules: tuple[Rule, ...], stems: tuple[str, ...]) -> str | None:
        for rule in rules:
            if any(_contains(stems, phrase) for phrase in rule.phrases):
                return rule.value
        return None

    def enrich(self, event: ContactEvent) -> ContactEvent:
        """Fill what the source left empty; only customer contacts carry words to classify."""
        if event.type is not EventType.CONTACT_RECEIVED:
            return event
        text = " ".join(part for part in (event.subject, event.text) if part)
        if not text:
            return event
        stems = self._stems(text)
        update: dict[str, Any] = {}
        if event.kind is None and (kind := self._first(self._kind, stems)):
            update["kind"] = ContactKind(kind)
        if event.topic is None and (topic := self._first(self._topic, stems)):
            update["topic"] = topic
        if event.category is None and (category := self._first(self._category, stems)):
            update["category"] = BusinessImpact(category)
        if event.error_code is None:
            for pattern in self._error_codes:
                if match := pattern.search(text):
                    update["error_code"] = match.group(0)
                    break
        extra = dict(event.extra)
        if "sentiment" not in extra and (sentiment := self._first(self._sentiment, stems)):
            extra["sentiment"] = sentiment
        if event.priority is None and any(_contains(stems, phrase) for phrase in self._urgent):
            derived = derive_priority(
                update.get("category", event.category), update.get("kind", event.kind), event.customer_tier
            )
            update["priority"] = one_step_up(derived)
            extra["urgent"] = True
        if extra != event.extra:
            update["extra"] = extra
        return event.model_copy(update=update) if update else event
