"""The alert volume budget: how many messages each receiver of the shipped Alertmanager configuration gets
per day, for a simulated week of realistic traffic.

    .venv/bin/python bench/alert_volume.py [--days 7] [--seed 7]

Alertmanager cannot run a week in a minute, so this replays the week through the detectors (`replay`,
event time) and feeds the alert state changes to a model of Alertmanager's dispatcher, driven by the
rendered `deploy/alertmanager/alertmanager.yml` itself (its routes, matchers, group_by, group_wait,
group_interval, repeat_interval, send_resolved and inhibit rules):
- an alert is routed to the first matching child route, depth first, inheriting the parent's settings;
- a new group flushes after group_wait, then every group_interval; a flush sends a message when the set of
  firing (not inhibited) alerts changed since the last message, or alerts resolved since then and the
  receiver sends resolved ones, or repeat_interval has passed with alerts still firing;
- an alert is inhibited while a firing source alert matches an inhibit rule with equal labels.
It reports messages per receiver per day, and whether every breached SLA appeared in some message.
"""

from __future__ import annotations

import argparse
import heapq
import io
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.replay_throughput import make_stream
from processors.delivery import labels_of
from schemas.alert import Alert, AlertStatus
from schemas.config import load_config
from simulation.traffic import MOSCOW
from sinks.alertmanager_config import render_config
from stream.replay import replay

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"(.*)"\s*$')
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_EXAMPLE = {
    "CONTACTPULSE_AM_TELEGRAM_BOT_TOKEN": "0:bench",
    "CONTACTPULSE_AM_TELEGRAM_CHAT_ID": "-1",
    "CONTACTPULSE_AM_SMTP_SMARTHOST": "localhost:25",
    "CONTACTPULSE_AM_SMTP_FROM": "cp@example.org",
    "CONTACTPULSE_AM_ONCALL_EMAIL": "oncall@example.org",
    "CONTACTPULSE_AM_PRODUCT_EMAIL": "product@example.org",
    "CONTACTPULSE_AM_ENGINEERING_EMAIL": "engineering@example.org",
}


def seconds(text: str) -> float:
    return sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(str(text)))


def matches(matchers: list[str], labels: dict[str, str]) -> bool:
    for matcher in matchers:
        found = _MATCHER.match(matcher)
        assert found, matcher
        name, op, value = found.groups()
        actual = labels.get(name, "")
        ok = {
            "=": actual == value,
            "!=": actual != value,
            "=~": re.fullmatch(value, actual) is not None,
            "!~": re.fullmatch(value, actual) is None,
        }[op]
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Route:
    receiver: str
    name: str
    """The route's matchers: Alertmanager groups per route, so two routes to one receiver never share a
    group."""
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float


def routes_of(node: dict[str, Any], labels: dict[str, str], inherited: Route) -> list[Route]:
    here = Route(
        node.get("receiver", inherited.receiver),
        " ".join(node.get("matchers", [])) or inherited.name,
        tuple(node.get("group_by", inherited.group_by)),
        seconds(node["group_wait"]) if "group_wait" in node else inherited.group_wait,
        seconds(node["group_interval"]) if "group_interval" in node else inherited.group_interval,
        seconds(node["repeat_interval"]) if "repeat_interval" in node else inherited.repeat_interval,
    )
    found: list[Route] = []
    for child in node.get("routes") or []:
        if matches(child.get("matchers", []), labels):
            found += routes_of(child, labels, here)
            if not child.get("continue", False):
                break
    return found or [here]


@dataclass
class Group:
    route: Route
    alerts: dict[str, dict[str, str]] = field(default_factory=dict)
    """alert id -> labels, of the alerts firing in the group now."""
    resolved_since: set[str] = field(default_factory=set)
    last_sent_firing: frozenset[str] = frozenset()
    last_sent_at: float | None = None
    scheduled: bool = False


@dataclass(frozen=True)
class Delivery:
    """What the shipped configuration sends for a simulated stream."""

    messages: Counter[tuple[str, str]]
    """(receiver, local day "Mon 05 Oct") -> messages."""
    by_route: Counter[tuple[str, str]]
    """(receiver, route matchers) -> messages over the run."""
    breached: set[str]
    shown: set[str]
    changes: int
    alerts: int


def deliver(days: int, seed: int, tickets_per_peak_hour: float = 300.0) -> Delivery:
    config = yaml.safe_load(render_config(_EXAMPLE))
    # A receiver without an integration (the SLA board's) notifies no one: its groups send nothing.
    notifies = {
        r["name"]
        for r in config["receivers"]
        if any(r.get(kind) for kind in ("telegram_configs", "email_configs", "webhook_configs"))
    }
    sends_resolved = {
        r["name"]: any(
            c.get("send_resolved", False)
            for kind in ("telegram_configs", "email_configs")
            for c in r.get(kind, [])
        )
        for r in config["receivers"]
    }
    root = config["route"]
    top = Route(
        root["receiver"],
        "(default)",
        tuple(root.get("group_by", [])),
        seconds(root["group_wait"]),
        seconds(root["group_interval"]),
        seconds(root["repeat_interval"]),
    )
    inhibit = config.get("inhibit_rules", [])

    lines = make_stream(days, seed, tickets_per_peak_hour)
    out = io.BytesIO()
    replay(lines, load_config(), out, errors=io.StringIO())
    changes = [Alert.model_validate_json(line) for line in out.getvalue().splitlines()]

    # Alert state changes in event time: (instant, order, alert).
    timeline: list[tuple[float, int, Alert]] = []
    for n, alert in enumerate(changes):
        at = alert.ends_at if alert.status is AlertStatus.RESOLVED and alert.ends_at else alert.starts_at
        timeline.append((at.timestamp(), n, alert))
    timeline.sort(key=lambda item: (item[0], item[1]))

    firing: dict[str, dict[str, str]] = {}
    groups: dict[tuple[str, tuple[str, ...]], Group] = {}
    flushes: list[tuple[float, tuple[str, tuple[str, ...]]]] = []
    messages: Counter[tuple[str, str]] = Counter()
    by_route: Counter[tuple[str, str]] = Counter()
    shown: set[str] = set()
    breached: set[str] = set()

    # Per inhibit rule: how many firing source alerts have each tuple of `equal` label values.
    sources: list[Counter[tuple[str, ...]]] = [Counter() for _ in inhibit]

    def as_source(labels: dict[str, str], delta: int) -> None:
        for rule, index in zip(inhibit, sources, strict=True):
            if matches(rule.get("source_matchers", []), labels):
                index[tuple(labels.get(name, "") for name in rule.get("equal", []))] += delta

    def inhibited(labels: dict[str, str]) -> bool:
        for rule, index in zip(inhibit, sources, strict=True):
            equal = tuple(labels.get(name, "") for name in rule.get("equal", []))
            if index[equal] > 0 and matches(rule.get("target_matchers", []), labels):
                return True
        return False

    def flush(now: float, key: tuple[str, tuple[str, ...]]) -> None:
        group = groups[key]
        active = frozenset(i for i, labels in group.alerts.items() if not inhibited(labels))
        new = bool(active - group.last_sent_firing)
        # Alertmanager lists the group's alerts resolved since its last message, once it has sent one.
        resolved = (
            bool(group.resolved_since)
            and sends_resolved[group.route.receiver]
            and group.last_sent_at is not None
        )
        repeat = (
            bool(active)
            and group.last_sent_at is not None
            and now - group.last_sent_at >= group.route.repeat_interval
        )
        if (new or resolved or repeat) and group.route.receiver in notifies:
            day = datetime.fromtimestamp(now, MOSCOW).strftime("%a %d %b")
            messages[(group.route.receiver, day)] += 1
            by_route[(group.route.receiver, group.route.name)] += 1
            shown.update(active)
            if resolved:
                shown.update(group.resolved_since)
            group.last_sent_firing, group.last_sent_at = active, now
            group.resolved_since.clear()
        elif not active:
            group.last_sent_firing = active
            group.resolved_since.clear()
        if group.alerts:
            heapq.heappush(flushes, (now + group.route.group_interval, key))
        else:
            del groups[key]

    def advance(until: float) -> None:
        while flushes and flushes[0][0] <= until:
            at, key = heapq.heappop(flushes)
            if key in groups:
                flush(at, key)

    for at, _, alert in timeline:
        advance(at)
        labels = labels_of(alert)
        if alert.status is AlertStatus.FIRING:
            if alert.alert_id not in firing:
                as_source(labels, +1)
            firing[alert.alert_id] = labels
            if alert.rule.endswith("_breached"):
                breached.add(alert.alert_id)
        elif firing.pop(alert.alert_id, None) is not None:
            as_source(labels, -1)
        for route in routes_of(root, labels, top):
            key = (route.name, tuple(labels.get(name, "") for name in route.group_by))
            if alert.status is AlertStatus.FIRING:
                group = groups.get(key)
                if group is None:
                    group = groups[key] = Group(route)
                    heapq.heappush(flushes, (at + route.group_wait, key))
                group.alerts[alert.alert_id] = labels
            else:
                group = groups.get(key)
                if group is not None and alert.alert_id in group.alerts:
                    del group.alerts[alert.alert_id]
                    group.resolved_since.add(alert.alert_id)
    # Alerts still firing at the end keep their groups flushing forever: stop a day after the last change.
    advance(timeline[-1][0] + 86400 if timeline else 0.0)

    return Delivery(messages, by_route, breached, shown, len(changes), len({a.alert_id for a in changes}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--tickets-per-peak-hour",
        type=float,
        default=300.0,
        help="300: about 2,600 tickets a weekday; 120 (the realistic month's): about 1,350",
    )
    args = parser.parse_args()
    found = deliver(args.days, args.seed, args.tickets_per_peak_hour)
    messages = found.messages
    days = sorted({day for _, day in messages}, key=lambda d: datetime.strptime(d + " 2026", "%a %d %b %Y"))
    receivers = sorted({receiver for receiver, _ in messages})
    print(f"{found.changes} alert state changes ({found.alerts} alerts) over {args.days} simulated days")
    print(f"{'day':<12}" + "".join(f"{r:>16}" for r in receivers))
    for day in days:
        print(f"{day:<12}" + "".join(f"{messages[(r, day)]:>16}" for r in receivers))
    missing = found.breached - found.shown
    print(
        f"breached SLA alerts: {len(found.breached)}; shown in a message: "
        f"{len(found.breached & found.shown)}; never shown: {len(missing)} (inhibited while they fired, "
        "e.g. by an incident, or fired and resolved before their group's first message)"
    )
    per_day: defaultdict[str, int] = defaultdict(int)
    for (receiver, _day), count in messages.items():
        per_day[receiver] = max(per_day[receiver], count)
    print("busiest day per receiver: " + ", ".join(f"{r} {n}" for r, n in sorted(per_day.items())))
    print("messages over the whole run, by receiver and route:")
    for (receiver, route), count in sorted(found.by_route.items(), key=lambda item: -item[1]):
        print(f"  {receiver:<14} {count:>5}  {route}")


if __name__ == "__main__":
    main()
