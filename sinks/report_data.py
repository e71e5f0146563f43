"""The weekly report's numbers, read from ClickHouse (`ticket_outcomes`, `contacts_hourly`, `alerts`).

Every query reads with FINAL, so a ticket's latest state, one row per event and one row per alert state
count once however often they were delivered. Week boundaries are Mondays 00:00 in the business
calendar's time zone. The definitions are in `schemas.report`; the tests recompute each number in Python
from the same events.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from processors.alerting import listed_total
from processors.report_schedule import WEEK, week_bounds
from schemas.report import (
    Cause,
    ChannelWeek,
    FeatureCluster,
    Incident,
    NegativeRating,
    RepeatCustomer,
    SlaTicket,
    WeeklyReport,
    WeekMetrics,
)

TREND_WEEKS: Final = 12
TOP_CAUSES: Final = 10
WORST_TICKETS: Final = 10
TOP_REPEATS: Final = 10


# The tickets of the weeks asked for, with their opening, resolution and rating weeks. `ticket_outcomes` is
# `tickets` ordered by opening time, so the bound on `opened_at` prunes it (a ticket resolved or rated in
# a week was opened at most 90 days before). Tickets first seen mid-life are left out.
_TICKETS: Final = """
    SELECT *, toMonday(opened_at, {tz:String}) AS opened_week,
           toMonday(resolved_at, {tz:String}) AS resolved_week,
           toMonday(csat_at, {tz:String}) AS rated_week
    FROM ticket_outcomes FINAL
    WHERE opened_at >= {since:DateTime64(3, 'UTC')} - INTERVAL 90 DAY AND NOT first_seen_mid_life
"""

_OPENED_BY_WEEK: Final = f"""
    SELECT opened_week,
        count() AS opened,
        quantileExactLow(0.5)(first_response_sla_seconds) AS first_response,
        countIf(first_response_breached AND sla_policy != '') AS fr_breached,
        countIf(sla_policy != ''
                AND (first_response_sla_seconds IS NOT NULL OR first_response_breached)) AS fr_measured,
        countIf(escalations > 0) AS escalated
    FROM ({_TICKETS})
    WHERE opened_at >= {{since:DateTime64(3, 'UTC')}} AND opened_at < {{until:DateTime64(3, 'UTC')}}
    GROUP BY opened_week
"""

_RESOLVED_BY_WEEK: Final = f"""
    SELECT resolved_week,
        count() AS resolved,
        quantileExactLow(0.5)(resolution_sla_seconds) AS resolution,
        countIf(first_contact_resolution) AS first_contact,
        countIf(resolution_breached AND sla_policy != '') AS res_breached,
        countIf(sla_policy != '') AS res_measured
    FROM ({_TICKETS})
    WHERE resolved_at >= {{since:DateTime64(3, 'UTC')}} AND resolved_at < {{until:DateTime64(3, 'UTC')}}
    GROUP BY resolved_week
"""

# CSAT: each ticket's latest rating, in the week it came.
_RATED_BY_WEEK: Final = f"""
    SELECT rated_week, count() AS ratings, avg(csat_score) AS csat, countIf(csat_score >= 4) AS positive
    FROM ({_TICKETS})
    WHERE csat_at >= {{since:DateTime64(3, 'UTC')}} AND csat_at < {{until:DateTime64(3, 'UTC')}}
        AND csat_score IS NOT NULL
    GROUP BY rated_week
"""

# A ticket repeats when the same customer opened one on the same topic within the window before it.
_REPEATS: Final = f"""
    SELECT ticket_id, customer_id, topic, opened_at, opened_week,
        opened_at - lagInFrame(opened_at, 1, toDateTime64(0, 3, 'UTC')) OVER (
            PARTITION BY customer_id, topic ORDER BY opened_at, ticket_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS since_previous,
        row_number() OVER (PARTITION BY customer_id, topic ORDER BY opened_at, ticket_id) AS nth
    FROM ({_TICKETS})
    WHERE customer_id != '' AND topic != ''
"""

_REPEATS_BY_WEEK: Final = f"""
    SELECT opened_week, countIf(nth > 1 AND since_previous <= {{window:Float64}}) AS repeats
    FROM ({_REPEATS})
    WHERE opened_at >= {{since:DateTime64(3, 'UTC')}} AND opened_at < {{until:DateTime64(3, 'UTC')}}
    GROUP BY opened_week
"""

_CONTACTS_BY_WEEK: Final = """
    SELECT toMonday(hour, {tz:String}) AS week, uniqExactMerge(events) AS contacts
    FROM contacts_hourly
    WHERE type = 'contact_received'
        AND hour >= {since:DateTime64(3, 'UTC')} AND hour < {until:DateTime64(3, 'UTC')}
    GROUP BY week
"""

_CAUSES: Final = f"""
    SELECT category, topic, countIf(resolved_week = {{week:Date}}) AS tickets,
        ifNull(sumIf(resolution_sla_seconds, resolved_week = {{week:Date}}), 0) / 3600 AS hours,
        ifNull(sumIf(resolution_sla_seconds, resolved_week = {{previous:Date}}), 0) / 3600 AS previous_hours
    FROM ({_TICKETS})
    WHERE resolved_at >= {{since:DateTime64(3, 'UTC')}} AND resolved_at < {{until:DateTime64(3, 'UTC')}}
    GROUP BY category, topic
    HAVING tickets > 0
    ORDER BY hours DESC, tickets DESC, category, topic
"""

# Breached tickets of the week, the ones still open past due first, then by how far past due.
_WORST: Final = f"""
    SELECT ticket_id, channel, priority, team, topic, clock, target, spent, opened_at
    FROM (
        SELECT ticket_id, channel, priority, team, topic, opened_at, resolved_at, status,
            if(resolution_breached, 'resolution', 'first response') AS clock,
            if(resolution_breached, resolution_target_seconds, first_response_target_seconds) AS target,
            if(resolution_breached, resolution_sla_seconds, first_response_sla_seconds) AS spent
        FROM ({_TICKETS})
        WHERE (first_response_breached OR resolution_breached) AND sla_policy != ''
            AND opened_at < {{until:DateTime64(3, 'UTC')}}
            AND (opened_at >= {{since:DateTime64(3, 'UTC')}} OR resolved_at >= {{since:DateTime64(3, 'UTC')}}
                 OR status NOT IN ('resolved', 'closed'))
    )
    ORDER BY spent IS NOT NULL, spent / target DESC, opened_at, ticket_id
    LIMIT {{limit:UInt32}}
"""

_CHANNELS: Final = f"""
    SELECT channel,
        countIf(opened_week = {{week:Date}}) AS opened,
        quantileExactLowIf(0.5)(first_response_sla_seconds, opened_week = {{week:Date}}) AS first_response,
        countIf(opened_week = {{week:Date}} AND first_response_breached AND sla_policy != '') AS breached,
        countIf(opened_week = {{week:Date}} AND sla_policy != ''
                AND (first_response_sla_seconds IS NOT NULL OR first_response_breached)) AS measured
    FROM ({_TICKETS})
    WHERE opened_at >= {{since:DateTime64(3, 'UTC')}} AND opened_at < {{until:DateTime64(3, 'UTC')}}
        AND channel != ''
    GROUP BY channel
"""

_CHANNEL_CONTACTS: Final = """
    SELECT channel, uniqExactMergeIf(events, hour >= {starts:DateTime64(3, 'UTC')}) AS contacts,
        uniqExactMergeIf(events, hour < {starts:DateTime64(3, 'UTC')}) AS previous
    FROM contacts_hourly
    WHERE type = 'contact_received' AND channel != ''
        AND hour >= {since:DateTime64(3, 'UTC')} AND hour < {until:DateTime64(3, 'UTC')}
    GROUP BY channel
"""

_REPEAT_CUSTOMERS: Final = f"""
    SELECT customer_id, topic, count() AS repeats
    FROM ({_REPEATS})
    WHERE nth > 1 AND since_previous <= {{window:Float64}}
        AND opened_at >= {{since:DateTime64(3, 'UTC')}} AND opened_at < {{until:DateTime64(3, 'UTC')}}
    GROUP BY customer_id, topic
    ORDER BY repeats DESC, customer_id, topic
    LIMIT {{limit:UInt32}}
"""

# One row per alert: when it fired and when it resolved (if it did). Without FINAL: min, maxIf and "has a
# resolved row" are the same with a redelivered duplicate. An alert's rows all carry its `starts_at`, so
# the bound on it prunes the year to the weeks asked for.
_ALERTS: Final = """
    SELECT alert_id, min(starts_at) AS fired, maxIf(ends_at, status = 'resolved') AS ended
    FROM alerts
    WHERE rule = {rule:String} AND starts_at < {until:DateTime64(3, 'UTC')}
        AND starts_at >= {earliest:DateTime64(3, 'UTC')}
    GROUP BY alert_id
    HAVING fired >= {since:DateTime64(3, 'UTC')}
        OR ({active:Bool} AND (countIf(status = 'resolved') = 0 OR ended >= {since:DateTime64(3, 'UTC')}))
    ORDER BY fired, alert_id
"""

# Their details as first and last published, read for those alerts only: a feature cluster's details grow
# with every request, and reading them for every change of the quarter took seconds. The table is ordered
# by (rule, alert_id), so the list of ids is an index look-up.
_ALERT_DETAILS: Final = """
    SELECT alert_id, argMin(details, ingested_at) AS first_details,
        argMax(details, ingested_at) AS last_details, argMax(summary, ingested_at) AS last_summary,
        any(subject) AS subject
    FROM alerts
    WHERE rule = {rule:String} AND alert_id IN {ids:Array(String)}
    GROUP BY alert_id
"""

ACTIVE_LOOKBACK: Final = timedelta(days=90)
"""How far before the week an alert still firing in it may have started (a long-growing feature cluster)."""


def _utc(value: datetime) -> datetime:
    """ClickHouse returns naive UTC instants."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _rows(client: Client, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=parameters)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _median(value: float | None) -> float | None:
    # quantileExactLow of no rows is 0 (or NaN), not NULL: the count says whether there was anything.
    return None if value is None or value != value else float(value)


def weekly_metrics(
    client: Client, weeks: list[date], zone: ZoneInfo, repeat_window_seconds: float
) -> list[WeekMetrics]:
    since = datetime.combine(weeks[0], time(0), zone)
    until = datetime.combine(weeks[-1] + WEEK, time(0), zone)
    parameters = {"tz": zone.key, "since": since, "until": until, "window": repeat_window_seconds}
    opened = {r["opened_week"]: r for r in _rows(client, _OPENED_BY_WEEK, parameters)}
    resolved = {r["resolved_week"]: r for r in _rows(client, _RESOLVED_BY_WEEK, parameters)}
    repeats = {r["opened_week"]: r["repeats"] for r in _rows(client, _REPEATS_BY_WEEK, parameters)}
    contacts = {r["week"]: r["contacts"] for r in _rows(client, _CONTACTS_BY_WEEK, parameters)}
    rated = {r["rated_week"]: r for r in _rows(client, _RATED_BY_WEEK, parameters)}
    metrics = []
    for week in weeks:
        o = opened.get(week, {})
        r = resolved.get(week, {})
        c = rated.get(week, {})
        tickets_opened, tickets_resolved, ratings = (
            o.get("opened", 0),
            r.get("resolved", 0),
            c.get("ratings", 0),
        )
        metrics.append(
            WeekMetrics(
                week=week,
                contacts=contacts.get(week, 0),
                tickets_opened=tickets_opened,
                tickets_resolved=tickets_resolved,
                first_response_median_seconds=_median(o.get("first_response"))
                if o.get("fr_measured")
                else None,
                resolution_median_seconds=_median(r.get("resolution")) if tickets_resolved else None,
                first_contact_resolution_rate=_ratio(r.get("first_contact", 0), tickets_resolved),
                csat_average=float(c["csat"]) if ratings else None,
                csat_ratings=ratings,
                csat_positive_rate=_ratio(c.get("positive", 0), ratings),
                repeat_contact_rate=_ratio(repeats.get(week, 0), tickets_opened),
                first_response_sla_compliance=_compliance(o.get("fr_breached", 0), o.get("fr_measured", 0)),
                resolution_sla_compliance=_compliance(r.get("res_breached", 0), r.get("res_measured", 0)),
                escalation_rate=_ratio(o.get("escalated", 0), tickets_opened),
            )
        )
    return metrics


def _compliance(breached: int, measured: int) -> float | None:
    return 1 - breached / measured if measured else None


def causes(client: Client, week: date, zone: ZoneInfo) -> list[Cause]:
    parameters = {
        "tz": zone.key,
        "week": week,
        "previous": week - WEEK,
        "since": datetime.combine(week - WEEK, time(0), zone),
        "until": datetime.combine(week + WEEK, time(0), zone),
    }
    rows = _rows(client, _CAUSES, parameters)
    total = sum(r["hours"] for r in rows)
    found, cumulative = [], 0.0
    for row in rows[:TOP_CAUSES]:
        share = row["hours"] / total if total else 0.0
        cumulative += share
        found.append(
            Cause(
                category=row["category"],
                topic=row["topic"],
                tickets=row["tickets"],
                working_hours=float(row["hours"]),
                share=share,
                cumulative_share=cumulative,
                previous_week_hours=float(row["previous_hours"]),
            )
        )
    return found


def worst_sla_tickets(client: Client, starts: datetime, ends: datetime, zone: ZoneInfo) -> list[SlaTicket]:
    rows = _rows(client, _WORST, {"tz": zone.key, "since": starts, "until": ends, "limit": WORST_TICKETS})
    return [
        SlaTicket(
            ticket_id=r["ticket_id"],
            channel=r["channel"],
            priority=r["priority"],
            team=r["team"],
            topic=r["topic"],
            clock=r["clock"],
            target_seconds=r["target"],
            spent_seconds=r["spent"],
            opened_at=_utc(r["opened_at"]),
        )
        for r in rows
    ]


def channels(client: Client, week: date, zone: ZoneInfo) -> list[ChannelWeek]:
    starts = datetime.combine(week, time(0), zone)
    parameters = {
        "tz": zone.key,
        "week": week,
        "starts": starts,
        "since": starts - WEEK,
        "until": starts + WEEK,
    }
    tickets = {r["channel"]: r for r in _rows(client, _CHANNELS, parameters)}
    contacts = {r["channel"]: r for r in _rows(client, _CHANNEL_CONTACTS, parameters)}
    found = []
    for channel in sorted(set(tickets) | set(contacts)):
        t, c = tickets.get(channel, {}), contacts.get(channel, {})
        found.append(
            ChannelWeek(
                channel=channel,
                contacts=c.get("contacts", 0),
                previous_week_contacts=c.get("previous", 0),
                tickets_opened=t.get("opened", 0),
                first_response_median_seconds=_median(t.get("first_response")) if t.get("measured") else None,
                first_response_sla_compliance=_compliance(t.get("breached", 0), t.get("measured", 0)),
            )
        )
    return sorted(found, key=lambda c: (-c.contacts, c.channel))


def repeat_customers(
    client: Client, starts: datetime, ends: datetime, zone: ZoneInfo, window_seconds: float
) -> list[RepeatCustomer]:
    parameters = {
        "tz": zone.key,
        "since": starts,
        "until": ends,
        "window": window_seconds,
        "limit": TOP_REPEATS,
    }
    return [
        RepeatCustomer(customer_id=r["customer_id"], topic=r["topic"], tickets=r["repeats"])
        for r in _rows(client, _REPEAT_CUSTOMERS, parameters)
    ]


def _alerts(
    client: Client, rule: str, starts: datetime, ends: datetime, active: bool = False
) -> list[dict[str, Any]]:
    """The rule's alerts fired in [starts, ends), or with `active` also those fired up to
    ACTIVE_LOOKBACK earlier and still firing at `starts` (a feature cluster that keeps growing)."""
    earliest = starts - ACTIVE_LOOKBACK if active else starts
    parameters = {"rule": rule, "since": starts, "until": ends, "active": active, "earliest": earliest}
    rows = _rows(client, _ALERTS, parameters)
    if not rows:
        return rows
    ids = [row["alert_id"] for row in rows]
    details = {r["alert_id"]: r for r in _rows(client, _ALERT_DETAILS, {"rule": rule, "ids": ids})}
    for row in rows:
        more = details[row["alert_id"]]
        row["subject"] = json.loads(more["subject"])
        row["first_details"] = json.loads(more["first_details"])
        row["last_details"] = json.loads(more["last_details"])
        row["last_summary"] = more["last_summary"]
        row["fired"] = _utc(row["fired"])
        # maxIf over no resolved row gives the epoch, not NULL.
        ended = row["ended"]
        row["ended"] = _utc(ended) if ended is not None and ended.year > 1970 else None
    return rows


def negative_ratings(client: Client, starts: datetime, ends: datetime) -> list[NegativeRating]:
    found = []
    for row in _alerts(client, "negative_csat", starts, ends):
        details = row["first_details"]
        respond_by = details.get("respond_by")
        found.append(
            NegativeRating(
                ticket_id=row["subject"]["ticket_id"],
                score=int(details["score"]),
                rated_at=row["fired"],
                respond_by=datetime.fromisoformat(respond_by) if respond_by else None,
                answered_at=row["ended"],
            )
        )
    return found


def feature_clusters(client: Client, starts: datetime, ends: datetime) -> list[FeatureCluster]:
    found = []
    for row in _alerts(client, "feature_request_cluster", starts, ends, active=True):
        details = row["last_details"]
        found.append(
            FeatureCluster(
                summary=row["last_summary"],
                requests=int(details.get("count", 0)),
                customers=listed_total(details, "customers"),
                examples=[str(e) for e in details.get("examples", [])],
                first_seen=row["fired"],
            )
        )
    return sorted(found, key=lambda f: (-f.requests, f.first_seen))


def incidents(client: Client, starts: datetime, ends: datetime) -> list[Incident]:
    return [
        Incident(
            error_code=row["subject"]["error_code"],
            customers=int(row["last_details"].get("customers", 0)),
            tickets=listed_total(row["last_details"], "ticket_ids"),
            started_at=row["fired"],
            ended_at=row["ended"],
        )
        for row in _alerts(client, "incident_cluster", starts, ends)
    ]


def build_report(
    client: Client, iso_week: str, zone: ZoneInfo, lang: str, repeat_window_seconds: float
) -> WeeklyReport:
    """The report of `iso_week` from what ClickHouse holds now."""
    starts, ends = week_bounds(iso_week, zone)
    week = starts.date()
    weeks = [week - WEEK * n for n in range(TREND_WEEKS - 1, -1, -1)]
    return WeeklyReport(
        iso_week=iso_week,
        time_zone=zone.key,
        starts=starts,
        ends=ends,
        lang=lang,
        trend=weekly_metrics(client, weeks, zone, repeat_window_seconds),
        causes=causes(client, week, zone),
        worst_sla_tickets=worst_sla_tickets(client, starts, ends, zone),
        channels=channels(client, week, zone),
        repeat_customers=repeat_customers(client, starts, ends, zone, repeat_window_seconds),
        negative_ratings=negative_ratings(client, starts, ends),
        feature_clusters=feature_clusters(client, starts, ends),
        incidents=incidents(client, starts, ends),
    )
