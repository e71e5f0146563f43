"""The on-call lead's message budget with the shipped Alertmanager configuration (bench/alert_volume.py
prints the week): a few dozen messages on a weekday, and every breached SLA in one of them."""

from __future__ import annotations

import pytest

from bench.alert_volume import Delivery, deliver

ONCALL_CHAT = ("oncall", "oncall-sla", "oncall-quiet")
"""Receivers that post to the on-call chat (and its e-mail)."""


@pytest.fixture(scope="module")
def three_days() -> Delivery:
    # Monday to Wednesday of the realistic organisation (about 1,350 tickets a weekday).
    return deliver(days=3, seed=7, tickets_per_peak_hour=120.0)


def test_the_on_call_chat_gets_a_few_dozen_messages_a_weekday(three_days: Delivery) -> None:
    for day in ("Mon 05 Oct", "Tue 06 Oct", "Wed 07 Oct"):
        chat = sum(three_days.messages[(receiver, day)] for receiver in ONCALL_CHAT)
        assert 10 <= chat <= 48, (day, chat)  # about 350 a weekday before the digests
    # SLA digests are bounded by their intervals: one urgent an hour, one other every two hours.
    assert max(three_days.messages[("oncall-sla", day)] for day in ("Tue 06 Oct", "Wed 07 Oct")) <= 36


def test_every_breached_sla_is_in_a_message(three_days: Delivery) -> None:
    assert len(three_days.breached) > 100
    assert three_days.breached <= three_days.shown
