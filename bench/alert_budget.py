"""The alert budget of a realistic month: new alerts per rule per day, per-ticket SLA alerts against the
breach rates the simulator is calibrated to, and every anomaly it injected found by its rule.

    .venv/bin/python bench/alert_budget.py [--seed 7]

The month is `simulation.traffic.realistic_month` (30 days of the calibrated organisation with its
incidents and feature-request families, a +60% delivery spike through the third week and web chat down
for three hours on the fourth Wednesday), replayed through the detectors (`replay`, event time). The test
tests/unit/detection/test_alert_budget.py holds the same figures.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processors.features import FEATURE_REQUEST_CLUSTER
from schemas.alert import Alert, AlertStatus
from schemas.config import load_config
from simulation.traffic import MOSCOW, InjectedAnomaly, realistic_month, realistic_month_end
from stream.replay import replay

PER_TICKET_SLA = (
    "sla_first_response_at_risk",
    "sla_first_response_breached",
    "sla_resolution_at_risk",
    "sla_resolution_breached",
)
FOUND_WITHIN = timedelta(hours=12)
"""How long after an anomaly's end its alert may first fire and still count as finding it (a weekly
spike needs six hourly evaluations over the threshold; an incident's alert fires within minutes)."""


@dataclass(frozen=True)
class Month:
    alerts: list[Alert]
    """Every alert state change, in order."""
    injected: list[InjectedAnomaly]
    tickets_per_day: dict[date, int]
    valid_events: int


def simulate(seed: int = 7) -> Month:
    simulator = realistic_month(seed)
    records = simulator.advance(realistic_month_end())
    out = io.BytesIO()
    replay((record.value for record in records), load_config(), out, errors=io.StringIO())
    alerts = [Alert.model_validate(orjson.loads(line)) for line in out.getvalue().splitlines()]
    opened: Counter[date] = Counter()
    seen: set[str] = set()
    for record in records:
        if not record.valid or record.source is not None:
            continue
        event = orjson.loads(record.value)
        if event.get("type") == "contact_received" and event["ticket_id"] not in seen:
            seen.add(event["ticket_id"])
            opened[record.occurred_at.astimezone(MOSCOW).date()] += 1
    return Month(alerts, simulator.injected, dict(opened), sum(r.valid for r in records))


def new_alerts_per_rule_per_day(alerts: list[Alert]) -> dict[str, Counter[date]]:
    """Alerts that started firing, by rule and local day of their start (updates of one alert and its
    resolution are not new alerts)."""
    first: dict[str, Alert] = {}
    for alert in alerts:
        if alert.status is AlertStatus.FIRING and alert.alert_id not in first:
            first[alert.alert_id] = alert
    table: dict[str, Counter[date]] = defaultdict(Counter)
    for alert in first.values():
        table[alert.rule][alert.starts_at.astimezone(MOSCOW).date()] += 1
    return table


def finds(anomaly: InjectedAnomaly, alerts: list[Alert]) -> Alert | None:
    """The alert that finds the anomaly: its rule, its subject when the anomaly names one (else, for a
    feature family, five or more of its tickets in the cluster), firing at some point from the anomaly's
    start to `FOUND_WITHIN` after its end, and started no earlier than an hour before it (a second
    incident of one code while the first's alert still fires is in that alert)."""
    ended_at = {a.alert_id: a.ends_at for a in alerts if a.status is AlertStatus.RESOLVED}
    for alert in alerts:
        if alert.rule != anomaly.rule or alert.status is not AlertStatus.FIRING:
            continue
        if not anomaly.starts - timedelta(hours=1) <= alert.starts_at <= anomaly.ends + FOUND_WITHIN:
            continue
        ended = ended_at.get(alert.alert_id)
        if ended is not None and ended < anomaly.starts:
            continue
        if anomaly.subject is not None and alert.subject == anomaly.subject:
            return alert
        if anomaly.rule == FEATURE_REQUEST_CLUSTER:
            members = set(alert.details.get("ticket_ids", ()))
            if len(members & set(anomaly.tickets)) >= 5:
                return alert
    return None


def _label(day: date) -> str:
    return day.strftime("%a %d.%m")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    month = simulate(args.seed)
    table = new_alerts_per_rule_per_day(month.alerts)
    days = sorted(month.tickets_per_day)
    rules = sorted(table)
    width = max(len(rule) for rule in rules)
    print(f"{'new alerts per day':<{width}} " + " ".join(f"{d.day:>4}" for d in days) + "  total")
    for rule in rules:
        counts = [table[rule][d] for d in days]
        print(f"{rule:<{width}} " + " ".join(f"{c:>4}" for c in counts) + f"  {sum(counts):>5}")
    opened = [month.tickets_per_day[d] for d in days]
    print(f"{'(tickets opened)':<{width}} " + " ".join(f"{c:>4}" for c in opened) + f"  {sum(opened):>5}")
    tickets = sum(month.tickets_per_day.values())
    print(f"\n{tickets} tickets opened, {month.valid_events} valid events")
    for rule in PER_TICKET_SLA:
        total = sum(table[rule].values())
        print(f"  {rule}: {total} ({total / tickets:.1%} of tickets)")
    print("\ninjected anomalies:")
    for anomaly in month.injected:
        found = finds(anomaly, month.alerts)
        what = anomaly.subject or f"{len(anomaly.tickets)} requests of one need"
        when = found.starts_at.astimezone(MOSCOW).strftime("%d.%m %H:%M") if found else "NOT FOUND"
        print(f"  {anomaly.rule:<24} {what!s:<48} {_label(anomaly.starts.date())}  found {when}")


if __name__ == "__main__":
    main()
