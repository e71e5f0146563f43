"""The dead-letter budget: over by ratio (after enough payloads) or by rate, and back under once the
window has moved past the flood."""

from __future__ import annotations

import hashlib

from processors.dead_letter_budget import BudgetLimits, DeadLetterBudget
from schemas.errors import DeadLetterReason
from stream.dead_letter import HEADER_SHA256, HEADER_WITHHELD, DeadLetter, read_headers


def test_ratio_counts_only_after_enough_payloads() -> None:
    budget = DeadLetterBudget(BudgetLimits(max_ratio=0.5, max_per_second=100, min_payloads=20))
    for n in range(19):
        budget.record(1000.0 + n * 0.1, refused=n % 3 != 0)  # 12 of 19 refused
    assert not budget.exceeded(1002.0)
    budget.record(1002.0, refused=True)  # 13 of 20
    assert budget.exceeded(1002.0)


def test_a_mostly_good_source_stays_within_its_ratio() -> None:
    budget = DeadLetterBudget(BudgetLimits(max_ratio=0.5, max_per_second=100, min_payloads=20))
    for n in range(100):
        budget.record(1000.0 + n * 0.1, refused=n % 4 == 0)  # a quarter refused
    assert not budget.exceeded(1010.0)


def test_rate_is_the_average_over_the_window_and_the_flood_ages_out() -> None:
    budget = DeadLetterBudget(BudgetLimits(max_ratio=1.0, max_per_second=0.5, window_seconds=60))
    for n in range(30):
        budget.record(1000.0 + n, refused=True)
    assert not budget.exceeded(1029.5)  # 30 refusals: exactly the budget
    budget.record(1030.0, refused=True)
    assert budget.exceeded(1030.0)
    assert budget.exceeded(1059.0)  # all 31 still inside the minute
    assert not budget.exceeded(1060.0)  # the first has left it
    assert not budget.exceeded(2000.0)


def test_a_withheld_letter_keeps_hash_size_and_why_not_the_bytes() -> None:
    body = b'{"phone": "+7 926 111 22 33"}'
    letter, value = DeadLetter(DeadLetterReason.UNPARSABLE_PAYLOAD, "x", "http:/ingest/pbx", 0, 0).withhold(
        "over_budget", body
    )
    headers = read_headers(letter.headers())
    assert value == b""
    assert headers[HEADER_WITHHELD] == "over_budget"
    assert headers[HEADER_SHA256] == hashlib.sha256(body).hexdigest()
    assert headers["contactpulse.original-size"] == str(len(body))
