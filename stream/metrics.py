"""Every Prometheus metric the worker exports, in one place (like arroyo's metric_defs).

Labels are bounded enums (reason, topic, table); never a ticket, customer or agent id.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.errors import DeadLetterReason

LOOP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds, for what the event loop waits on or is kept from: a 20 ms tick late, a poll's phase."""


@dataclass(frozen=True)
class WorkerMetrics:
    records_consumed: Counter
    events_accepted: Counter
    dead_letters: Counter
    clickhouse_rows_written: Counter
    clickhouse_insert_failures: Counter
    clickhouse_insert_seconds: Histogram
    sink_records_skipped: Counter
    sink_buffered_records: Gauge
    detector_events: Counter
    ingest_requests: Counter
    ingest_ignored: Counter
    dead_letters_withheld: Counter
    dead_letter_budget_exceeded: Gauge
    raw_payloads_normalized: Counter
    imap_messages: Counter
    imap_poll_failures: Counter
    reports_sent: Counter
    report_failures: Counter
    alerts_sent: Counter
    detector_clock_lag_seconds: Gauge
    detector_checkpoint_seconds: Histogram
    detector_checkpoint_bytes: Gauge
    detector_buffered_events: Gauge
    detector_checkpoint_fork_seconds: Histogram
    detector_owner: Gauge
    detector_delivery_failures: Counter
    event_loop_stall_seconds: Histogram
    detector_poll_seconds: Histogram
    gc_pause_seconds: Histogram
    gc_collected_objects: Counter
    gc_frozen_objects: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> WorkerMetrics:
        metrics = cls(
            records_consumed=Counter(
                "contactpulse_records_consumed_total",
                "Records of contacts.events validated by the ClickHouse sink.",
                ["topic"],
                registry=registry,
            ),
            events_accepted=Counter(
                "contactpulse_events_accepted_total",
                "Records of contacts.events the ClickHouse sink admitted as normalized contact events.",
                registry=registry,
            ),
            dead_letters=Counter(
                "contactpulse_dead_letters_total",
                "Records sent to the dead-letter topic, by reason.",
                ["reason"],
                registry=registry,
            ),
            clickhouse_rows_written=Counter(
                "contactpulse_clickhouse_rows_written_total",
                "Rows ClickHouse acknowledged, by table (a retried batch counts once).",
                ["table"],
                registry=registry,
            ),
            clickhouse_insert_failures=Counter(
                "contactpulse_clickhouse_insert_failures_total",
                "INSERTs that failed and were retried with the same deduplication token.",
                ["table"],
                registry=registry,
            ),
            clickhouse_insert_seconds=Histogram(
                "contactpulse_clickhouse_insert_seconds",
                "Duration of one successful batch INSERT.",
                ["table"],
                registry=registry,
            ),
            sink_records_skipped=Counter(
                "contactpulse_sink_records_skipped_total",
                "Records of the worker's own topics (tickets, alerts, dead letters) the ClickHouse sink "
                "did not write because they are invalid.",
                ["table"],
                registry=registry,
            ),
            sink_buffered_records=Gauge(
                "contactpulse_sink_buffered_records",
                "Records the ClickHouse sink holds, not yet written (their offsets are not committed).",
                registry=registry,
            ),
            detector_events=Counter(
                "contactpulse_detector_events_total",
                "Records the detector read, by verdict (accepted, duplicate, late; invalid: refused by the "
                "admission check, dead-lettered by the ClickHouse sink).",
                ["verdict"],
                registry=registry,
            ),
            ingest_requests=Counter(
                "contactpulse_ingest_requests_total",
                "Requests to POST /ingest/{source}, by source and HTTP status.",
                ["source", "status"],
                registry=registry,
            ),
            ingest_ignored=Counter(
                "contactpulse_ingest_ignored_total",
                "Payloads accepted that are not contacts (documented non-contact events), by source.",
                ["source"],
                registry=registry,
            ),
            dead_letters_withheld=Counter(
                "contactpulse_dead_letters_withheld_total",
                "Dead letters kept as hash, size and reason without their bytes, by source and why "
                "(unverified_sender, over_budget).",
                ["source", "why"],
                registry=registry,
            ),
            dead_letter_budget_exceeded=Gauge(
                "contactpulse_dead_letter_budget_exceeded",
                "1 while a source's refused payloads are over its dead-letter budget (ratio or rate).",
                ["source"],
                registry=registry,
            ),
            raw_payloads_normalized=Counter(
                "contactpulse_raw_payloads_normalized_total",
                "Raw payloads turned into normalized events, by source.",
                ["source"],
                registry=registry,
            ),
            imap_messages=Counter(
                "contactpulse_imap_messages_total",
                "Messages read from the IMAP mailbox and acknowledged by Kafka.",
                registry=registry,
            ),
            imap_poll_failures=Counter(
                "contactpulse_imap_poll_failures_total",
                "IMAP polls that failed (connection, login, mailbox).",
                registry=registry,
            ),
            reports_sent=Counter(
                "contactpulse_reports_sent_total",
                "Weekly reports the schedule e-mailed.",
                registry=registry,
            ),
            report_failures=Counter(
                "contactpulse_report_failures_total",
                "Scheduled weekly reports that failed to build or send (retried at the next check).",
                registry=registry,
            ),
            alerts_sent=Counter(
                "contactpulse_alerts_sent_total",
                "Alert state changes published to the alert topics, by rule and status.",
                ["rule", "status"],
                registry=registry,
            ),
            detector_clock_lag_seconds=Gauge(
                "contactpulse_detector_clock_lag_seconds",
                "Wall clock minus the detector's stream clock, when it is caught up.",
                registry=registry,
            ),
            detector_checkpoint_seconds=Histogram(
                "contactpulse_detector_checkpoint_seconds",
                "Time to write one detector checkpoint.",
                registry=registry,
            ),
            detector_checkpoint_bytes=Gauge(
                "contactpulse_detector_checkpoint_bytes",
                "Size of the last detector checkpoint (compressed).",
                registry=registry,
            ),
            detector_checkpoint_fork_seconds=Histogram(
                "contactpulse_detector_checkpoint_fork_seconds",
                "Time the event loop spent forking a checkpoint's copy-on-write snapshot.",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
                registry=registry,
            ),
            detector_buffered_events=Gauge(
                "contactpulse_detector_buffered_events",
                "Events read but waiting for the other partitions' watermark (event-time merge).",
                registry=registry,
            ),
            detector_owner=Gauge(
                "contactpulse_detector_owner",
                "1 while this worker owns the detector, else 0.",
                registry=registry,
            ),
            detector_delivery_failures=Counter(
                "contactpulse_detector_delivery_failures_total",
                "Records the detector sent (alerts, ticket states, dead letters) that Kafka refused or "
                "gave up on; each time, the detector rewinds to its last checkpoint and sends again.",
                registry=registry,
            ),
            event_loop_stall_seconds=Histogram(
                "contactpulse_event_loop_stall_seconds",
                "How late a 20 ms timer fired: time the event loop could not serve anything else.",
                buckets=LOOP_BUCKETS,
                registry=registry,
            ),
            detector_poll_seconds=Histogram(
                "contactpulse_detector_poll_seconds",
                "One detector poll by phase: fetch (waiting for records), apply (admission, the merge and "
                "every detector), publish (ticket snapshots and alerts handed to the producer).",
                ["phase"],
                buckets=LOOP_BUCKETS,
                registry=registry,
            ),
            gc_pause_seconds=Histogram(
                "contactpulse_gc_pause_seconds",
                "Cyclic garbage collections and how long each held the process, by generation: a full "
                "collection walks the whole detection state.",
                ["generation"],
                buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
                registry=registry,
            ),
            gc_collected_objects=Counter(
                "contactpulse_gc_collected_objects",
                "Unreachable objects cyclic garbage collections found, by generation: the cycles this "
                "process leaves for the collector (what freezing would keep until the hourly thaw).",
                ["generation"],
                registry=registry,
            ),
            gc_frozen_objects=Gauge(
                "contactpulse_gc_frozen_objects",
                "Objects the detector froze out of cyclic garbage collection (stream/heap_freezer.py); "
                "growing across hourly thaws would mean cycles that only a full collection frees.",
                registry=registry,
            ),
        )
        # Pre-create the reason series so a dashboard shows 0, not "no data", before the first one.
        for reason in DeadLetterReason:
            metrics.dead_letters.labels(reason=reason.value)
        for verdict in ("accepted", "duplicate", "late", "invalid"):
            metrics.detector_events.labels(verdict=verdict)
        return metrics


def observe_gc_pauses(metrics: WorkerMetrics) -> None:
    """Time every cyclic collection of this process into `gc_pause_seconds`, and count what it found
    into `gc_collected_objects` (gc.callbacks)."""
    started = [0.0]
    series = {
        generation: metrics.gc_pause_seconds.labels(generation=str(generation)) for generation in range(3)
    }
    found = {
        generation: metrics.gc_collected_objects.labels(generation=str(generation)) for generation in range(3)
    }

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            generation = info["generation"]
            series[generation].observe(time.perf_counter() - started[0])
            found[generation].inc(info["collected"])

    gc.callbacks.append(on_collection)
