"""The ticket snapshot is built without validation, and published as orjson of its fields: both must be
exactly what validation and pydantic's serializer would give."""

from __future__ import annotations

from datetime import datetime, timedelta

from processors.engine import DetectionEngine
from schemas.config import load_config
from schemas.event import parse_contact_event
from schemas.ticket import TicketSnapshot
from simulation.traffic import MOSCOW, TrafficSimulator


def test_every_snapshot_of_a_simulated_day_serializes_as_its_validated_copy_byte_for_byte() -> None:
    engine = DetectionEngine(load_config())
    start = datetime(2026, 11, 16, 8, tzinfo=MOSCOW)
    compared = 0
    for record in TrafficSimulator(seed=7, start=start).advance(start + timedelta(days=1)):
        if not record.valid:
            continue
        engine.observe(parse_contact_event(record.value))
        book = engine.tickets
        for ticket in book.take_touched():
            built = book.snapshot(ticket)
            validated = TicketSnapshot.model_validate(built.model_dump())
            assert built.to_json() == validated.to_json()
            assert book.snapshot_json(ticket) == validated.to_json()
            assert built == validated
            compared += 1
    # Every kind of ticket state of a day (open, answered, paused, resolved, rated, escalated) was seen.
    assert compared > 1000
