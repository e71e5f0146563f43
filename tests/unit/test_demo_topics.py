"""Which topics the demo may delete at start: only those of its own earlier runs."""

from __future__ import annotations

from schemas.settings import Settings
from stream.demo.processes import demo_settings, earlier_run_topic


def test_the_demo_deletes_the_topics_of_its_own_earlier_runs_only() -> None:
    settings = Settings()
    earlier = demo_settings(settings, "20261130120000")
    now = "20261130130000"
    running = demo_settings(settings, now)

    assert earlier_run_topic(earlier.topic_raw, settings, now)
    assert earlier_run_topic(earlier.topic_alerts_oncall, settings, now)
    assert earlier_run_topic(f"{earlier.app_id}-detector-checkpoint", settings, now)
    # This run's own, a later run's, the production topics and another app's demo stay.
    assert not earlier_run_topic(running.topic_raw, settings, now)
    assert not earlier_run_topic(f"{running.app_id}-detector-lease", settings, now)
    assert not earlier_run_topic(demo_settings(settings, "20261130140000").topic_raw, settings, now)
    assert not earlier_run_topic(settings.topic_raw, settings, now)
    other = settings.model_copy(update={"app_id": "billing-pulse", "topic_raw": "billing.raw"})
    assert not earlier_run_topic(demo_settings(other, "20261130120000").topic_raw, settings, now)
    assert not earlier_run_topic(f"{demo_settings(other, '20261130120000').app_id}-lease", settings, now)
    assert not earlier_run_topic("demo-2026113012.contacts.raw", settings, now)
