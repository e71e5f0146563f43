"""The Grafana dashboards, defined once here and written as provisioning JSON
(`contactpulse dashboards --out deploy/grafana/dashboards`; a test keeps the committed files equal).

Every panel reads the aggregate tables of migration 0006 where one exists: `contacts_hourly` (events per
hour and dimension), `agent_daily`, `ticket_outcomes` (tickets by opening time, read with FINAL). Every
dashboard has the same filters: channel, category, topic, team and priority, multi-select with "All";
ticket panels apply all five (the ticket's latest values), contact panels those a contact carries itself
(channel and its classification: category, topic, priority), agent panels channel and team. "All" is the
custom value `'__all'`, which Grafana inserts verbatim.

Stat panels compare the chosen range with the same range a week earlier ("week before", "change").
Alert panels read `alerts` without FINAL: each aggregates per alert id in a way a duplicate row cannot
change (any, max, argMax, uniqExact, "has a resolved row"), and FINAL over a year of alert changes is
what made them the slowest panels.
Definitions match the weekly report's (`schemas/report.py`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

DATASOURCE: Final = {"type": "grafana-clickhouse-datasource", "uid": "contactpulse-clickhouse"}
FILTERS: Final = ("channel", "category", "topic", "team", "priority")
ALL: Final = "'__all'"

PanelType = Literal["stat", "timeseries", "table", "barchart"]


_EVENT_FILTERS: Final = ("channel", "category", "topic", "priority")
"""What a contact event carries itself (its channel and its classification); the team is the ticket's."""


def filters(*columns: str, prefix: str = "") -> str:
    """The dashboard filters over `columns` (default: all five), as one SQL condition."""
    return " AND ".join(
        f"({ALL} IN (${{{c}:singlequote}}) OR {prefix}{c} IN (${{{c}:singlequote}}))"
        for c in columns or FILTERS
    )


# A period and the same period a week earlier, for "this period / week before / change".
_CUR: Final = "{col} >= $__fromTime AND {col} < $__toTime"
_PREV: Final = "{col} >= $__fromTime - INTERVAL 7 DAY AND {col} < $__toTime - INTERVAL 7 DAY"
_BOTH: Final = "{col} >= $__fromTime - INTERVAL 7 DAY AND {col} < $__toTime"


def compared(value: str, col: str, source: str, where: str, digits: int = 1) -> str:
    """A stat over two periods: `value` is an expression over `{period}`, a condition on `col`."""
    now = value.format(period=_CUR.format(col=col))
    before = value.format(period=_PREV.format(col=col))
    return (
        f"SELECT round({now}, {digits}) AS `this period`, round({before}, {digits}) AS `week before`,\n"
        f"    round(`this period` - `week before`, {digits}) AS change\n"
        f"FROM {source}\nWHERE {_BOTH.format(col=col)} AND {where}"
    )


_OPENED: Final = "ticket_outcomes FINAL"
_SEEN_OPENING: Final = "NOT first_seen_mid_life"
# Resolved tickets were opened before they were resolved: 90 days back keeps the scan to a few partitions.
_RESOLVED_WHERE: Final = f"opened_at >= $__fromTime - INTERVAL 97 DAY AND {_SEEN_OPENING} AND {filters()}"
_FR_MEASURED: Final = (
    "sla_policy != '' AND (first_response_sla_seconds IS NOT NULL OR first_response_breached)"
)
# A repeat: the customer opened a ticket on the same topic within 7 days before this one.
_REPEATS: Final = """(
    SELECT *, opened_at - lagInFrame(opened_at, 1, toDateTime64(0, 3, 'UTC')) OVER (
            PARTITION BY customer_id, topic ORDER BY opened_at, ticket_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) <= 7 * 86400
        AND row_number() OVER (PARTITION BY customer_id, topic ORDER BY opened_at, ticket_id) > 1
        AND customer_id != '' AND topic != '' AS repeat
    FROM ticket_outcomes FINAL
    WHERE opened_at >= $__fromTime - INTERVAL 14 DAY AND opened_at < $__toTime
)"""


@dataclass(frozen=True)
class Panel:
    title: str
    kind: PanelType
    sql: str
    description: str
    width: int = 12
    height: int = 8
    unit: str | None = None


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: Sequence[Panel]
    time_from: str = "now-7d"

    @property
    def filename(self) -> str:
        return f"{self.uid}.json"


def _stat(title: str, sql: str, description: str, unit: str | None = None) -> Panel:
    return Panel(title, "stat", sql, description, width=6, height=5, unit=unit)


OVERVIEW: Final = Dashboard(
    "contactpulse-overview",
    "ContactPulse — support overview",
    [
        _stat(
            "First response, median (min)",
            compared(
                "quantileExactLowIf(0.5)(first_response_sla_seconds, {period}) / 60",
                "opened_at",
                _OPENED,
                f"{_SEEN_OPENING} AND {filters()}",
            ),
            "Working time on the ticket's SLA calendar to the first reply, tickets opened in the range.",
        ),
        _stat(
            "Resolution, median (h)",
            compared(
                "quantileExactLowIf(0.5)(resolution_sla_seconds, {period}) / 3600",
                "resolved_at",
                _OPENED,
                _RESOLVED_WHERE,
            ),
            "Working time to resolution, tickets resolved in the range.",
        ),
        _stat(
            "First-contact resolution (%)",
            compared(
                "100 * countIf(first_contact_resolution AND {period}) / nullIf(countIf({period}), 0)",
                "resolved_at",
                _OPENED,
                _RESOLVED_WHERE,
            ),
            "Resolved with at most one agent reply and never reopened, of the tickets resolved in the range.",
        ),
        _stat(
            "CSAT, average (1-5)",
            compared(
                "avgIf(csat_score, {period})",
                "csat_at",
                _OPENED,
                f"csat_score IS NOT NULL AND opened_at >= $__fromTime - INTERVAL 97 DAY AND {_SEEN_OPENING}"
                f" AND {filters()}",
                2,
            ),
            "Each ticket's latest rating, rated in the range.",
        ),
        _stat(
            "Repeat contacts (%)",
            compared(
                "100 * countIf(repeat AND {period}) / nullIf(countIf({period}), 0)",
                "opened_at",
                _REPEATS,
                f"{_SEEN_OPENING} AND {filters()}",
            ),
            "Tickets opened in the range whose customer opened one on the same topic within 7 days before.",
        ),
        _stat(
            "First-response SLA met (%)",
            compared(
                "100 * (1 - countIf(first_response_breached AND {period}) / nullIf(countIf({period}), 0))",
                "opened_at",
                _OPENED,
                f"{_SEEN_OPENING} AND {_FR_MEASURED} AND {filters()}",
            ),
            "Tickets opened in the range under a policy whose first-response clock concluded: met in time.",
        ),
        _stat(
            "Resolution SLA met (%)",
            compared(
                "100 * (1 - countIf(resolution_breached AND {period}) / nullIf(countIf({period}), 0))",
                "resolved_at",
                _OPENED,
                f"sla_policy != '' AND {_RESOLVED_WHERE}",
            ),
            "Tickets resolved in the range under a policy: resolved within the target.",
        ),
        _stat(
            "Escalation rate (%)",
            compared(
                "100 * countIf(escalations > 0 AND {period}) / nullIf(countIf({period}), 0)",
                "opened_at",
                _OPENED,
                f"{_SEEN_OPENING} AND {filters()}",
            ),
            "Tickets opened in the range that were escalated at least once.",
        ),
        Panel(
            "New contacts by channel",
            "timeseries",
            "SELECT $__timeInterval(hour) AS time, channel, uniqExactMerge(events) AS contacts\n"
            "FROM contacts_hourly\n"
            f"WHERE $__timeFilter(hour) AND type = 'contact_received' AND {filters(*_EVENT_FILTERS)}\n"
            "GROUP BY time, channel ORDER BY time, channel",
            "Contacts per interval (at least an hour), one series per channel.",
            width=24,
        ),
        Panel(
            "Weekly trend, last 90 days (%)",
            "timeseries",
            "SELECT toMonday(opened_at) AS time,\n"
            "    round(100 * (1 - countIf(first_response_breached AND first_response_measured)\n"
            "        / nullIf(countIf(first_response_measured), 0)), 1) AS `first-response SLA met`,\n"
            "    round(100 * countIf(first_contact_resolution) / nullIf(countIf(resolved_at IS NOT NULL), 0), 1)\n"
            "        AS `first-contact resolution`,\n"
            "    round(100 * countIf(escalations > 0) / count(), 1) AS `escalated`\n"
            f"FROM (SELECT *, {_FR_MEASURED} AS first_response_measured FROM {_OPENED}\n"
            f"      WHERE opened_at >= now() - INTERVAL 90 DAY AND {_SEEN_OPENING} AND {filters()})\n"
            "GROUP BY time ORDER BY time",
            "Week by week over the last 90 days, by opening week, whatever the chosen range.",
            width=24,
        ),
        Panel(
            "The five metrics by team",
            "table",
            "SELECT if(team = '', '(none)', team) AS team, count() AS opened,\n"
            "    round(quantileExactLow(0.5)(first_response_sla_seconds) / 60, 1) AS `first response, min`,\n"
            "    round(quantileExactLow(0.5)(resolution_sla_seconds) / 3600, 2) AS `resolution, h`,\n"
            "    round(100 * countIf(first_contact_resolution) / nullIf(countIf(resolved_at IS NOT NULL), 0), 1)\n"
            "        AS `FCR %`,\n"
            "    round(avg(csat_score), 2) AS csat,\n"
            "    round(100 * (1 - countIf(first_response_breached) / nullIf(countIf(sla_policy != ''), 0)), 1)\n"
            "        AS `first-response SLA %`\n"
            f"FROM {_OPENED}\nWHERE $__timeFilter(opened_at) AND {_SEEN_OPENING} AND {filters()}\n"
            "GROUP BY team ORDER BY opened DESC, team",
            "Tickets opened in the range, by the team holding them last.",
            width=24,
        ),
    ],
)

_OPEN: Final = "status NOT IN ('resolved', 'closed')"

SLA: Final = Dashboard(
    "contactpulse-sla",
    "ContactPulse — SLA board and causes",
    [
        Panel(
            "Open tickets by time left",
            "table",
            "SELECT priority,\n"
            "    countIf(left < 0) AS `past due`, countIf(left >= 0 AND left < 3600) AS `< 1 h`,\n"
            "    countIf(left >= 3600 AND left < 4 * 3600) AS `1-4 h`,\n"
            "    countIf(left >= 4 * 3600 AND left < 24 * 3600) AS `4-24 h`, countIf(left >= 24 * 3600) AS `> 24 h`\n"
            "FROM (SELECT priority, dateDiff('second', now64(3), least(\n"
            "          ifNull(first_response_due_at, resolution_due_at), ifNull(resolution_due_at, first_response_due_at)))\n"
            "          AS left\n"
            f"      FROM {_OPENED}\n"
            f"      WHERE {_OPEN} AND opened_at >= now() - INTERVAL 90 DAY AND {filters()}\n"
            "        AND (first_response_due_at IS NOT NULL OR resolution_due_at IS NOT NULL))\n"
            "GROUP BY priority ORDER BY priority",
            "Open tickets by wall-clock time to their next SLA target (a paused clock has none).",
        ),
        Panel(
            "At risk and breached now",
            "table",
            "SELECT if(t.team = '', '(none)', t.team) AS team, t.priority AS priority,\n"
            "    countIf(a.alert_rule LIKE '%_at_risk') AS `at risk`, countIf(a.alert_rule LIKE '%_breached') AS breached\n"
            "FROM (SELECT alert_id, any(rule) AS alert_rule,\n"
            "             JSONExtractString(any(subject), 'ticket_id') AS ticket_id\n"
            "      FROM alerts\n"
            "      WHERE rule LIKE 'sla_%' AND starts_at >= now() - INTERVAL 30 DAY\n"
            "      GROUP BY alert_id HAVING countIf(status = 'resolved') = 0) AS a\n"
            f"INNER JOIN (SELECT ticket_id, team, priority, channel, category, topic FROM {_OPENED}\n"
            f"            WHERE opened_at >= now() - INTERVAL 60 DAY AND {filters()}) AS t\n"
            "    ON a.ticket_id = t.ticket_id\n"
            "GROUP BY team, priority ORDER BY breached DESC, `at risk` DESC, team, priority",
            "SLA alerts firing now (the engine's own judgement), by the ticket's team and priority.",
        ),
        Panel(
            "SLA compliance by team and priority",
            "table",
            "SELECT if(team = '', '(none)', team) AS team, priority, count() AS opened,\n"
            "    round(100 * (1 - countIf(first_response_breached AND fr) / nullIf(countIf(fr), 0)), 1)\n"
            "        AS `first response met %`,\n"
            "    round(100 * (1 - countIf(resolution_breached AND resolved_at IS NOT NULL)\n"
            "        / nullIf(countIf(resolved_at IS NOT NULL), 0)), 1) AS `resolution met %`\n"
            f"FROM (SELECT *, {_FR_MEASURED} AS fr FROM {_OPENED}\n"
            f"      WHERE $__timeFilter(opened_at) AND {_SEEN_OPENING} AND sla_policy != '' AND {filters()})\n"
            "GROUP BY team, priority ORDER BY team, priority",
            "Tickets opened in the range under a policy.",
        ),
        Panel(
            "Causes by working time (Pareto)",
            "table",
            "SELECT category, topic, tickets, round(hours, 1) AS hours,\n"
            "    round(100 * hours / sum(hours) OVER (), 1) AS `share %`,\n"
            "    round(100 * sum(hours) OVER (ORDER BY hours DESC, category, topic\n"
            "        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) / sum(hours) OVER (), 1) AS `cumulative %`\n"
            "FROM (SELECT if(category = '', '(none)', category) AS category, if(topic = '', '(none)', topic) AS topic,\n"
            "             count() AS tickets, sum(resolution_sla_seconds) / 3600 AS hours\n"
            f"      FROM {_OPENED} WHERE $__timeFilter(resolved_at) AND {_RESOLVED_WHERE}\n"
            "      GROUP BY category, topic)\n"
            "ORDER BY hours DESC, category, topic",
            "Working time to resolution of the tickets resolved in the range: the few causes that take most of it.",
        ),
        Panel(
            "Causes by volume",
            "barchart",
            "SELECT if(topic = '', '(none)', topic) AS topic, count() AS tickets\n"
            f"FROM {_OPENED}\nWHERE $__timeFilter(opened_at) AND {_SEEN_OPENING} AND {filters()}\n"
            "GROUP BY topic ORDER BY tickets DESC, topic LIMIT 15",
            "Tickets opened in the range by topic.",
        ),
        Panel(
            "Resolution by cause",
            "table",
            "SELECT if(category = '', '(none)', category) AS category, if(topic = '', '(none)', topic) AS topic,\n"
            "    count() AS resolved, round(quantileExactLow(0.5)(resolution_sla_seconds) / 3600, 2) AS `median h`,\n"
            "    round(quantileExact(0.9)(resolution_sla_seconds) / 3600, 2) AS `p90 h`,\n"
            "    round(100 * countIf(resolution_breached) / count(), 1) AS `breached %`\n"
            f"FROM {_OPENED}\nWHERE $__timeFilter(resolved_at) AND {_RESOLVED_WHERE}\n"
            "GROUP BY category, topic ORDER BY `median h` DESC, category, topic",
            "Tickets resolved in the range: working time to resolution by category and topic.",
        ),
        Panel(
            "Worst SLA tickets",
            "table",
            "SELECT ticket_id, channel, priority, team, topic,\n"
            "    if(resolution_breached, 'resolution', 'first response') AS clock,\n"
            "    round(if(resolution_breached, resolution_target_seconds, first_response_target_seconds) / 3600, 2)\n"
            "        AS `target h`,\n"
            "    round(if(resolution_breached, resolution_sla_seconds, first_response_sla_seconds) / 3600, 2)\n"
            "        AS `spent h`, opened_at, status\n"
            f"FROM {_OPENED}\n"
            "WHERE (first_response_breached OR resolution_breached) AND sla_policy != ''\n"
            f"    AND $__timeFilter(opened_at) AND {filters()}\n"
            "ORDER BY `spent h` IS NOT NULL, `spent h` / `target h` DESC, opened_at, ticket_id LIMIT 25",
            "Breached tickets opened in the range: open ones (still counting) first, then by overrun.",
            width=24,
        ),
    ],
)

CUSTOMERS: Final = Dashboard(
    "contactpulse-customers",
    "ContactPulse — customers, product and agents",
    [
        Panel(
            "Repeat contacts by customer",
            "table",
            "SELECT customer_id, topic, countIf(repeat) AS `repeat tickets`, count() AS tickets\n"
            f"FROM {_REPEATS}\n"
            f"WHERE $__timeFilter(opened_at) AND {_SEEN_OPENING} AND {filters()}\n"
            "GROUP BY customer_id, topic HAVING `repeat tickets` > 0\n"
            "ORDER BY `repeat tickets` DESC, tickets DESC, customer_id, topic LIMIT 25",
            "Customers back on the same topic within 7 days, tickets opened in the range.",
        ),
        Panel(
            "CSAT by channel",
            "table",
            "SELECT channel, round(avg(csat_score), 2) AS average, count() AS ratings,\n"
            "    countIf(csat_score <= 2) AS `negative (1-2)`, round(100 * countIf(csat_score >= 4) / count(), 1)\n"
            "        AS `4-5 %`\n"
            f"FROM {_OPENED}\n"
            "WHERE csat_score IS NOT NULL AND $__timeFilter(csat_at) AND opened_at >= $__fromTime - INTERVAL 97 DAY\n"
            f"    AND {_SEEN_OPENING} AND {filters()}\n"
            "GROUP BY channel ORDER BY ratings DESC, channel",
            "Each ticket's latest rating, rated in the range, by the ticket's channel.",
        ),
        Panel(
            "Key accounts",
            "table",
            "SELECT customer_id, count() AS tickets,\n"
            "    countIf(first_response_breached OR resolution_breached) AS breached,\n"
            f"    countIf({_OPEN}) AS open, round(avg(csat_score), 2) AS csat, countIf(csat_score <= 2) AS negative\n"
            f"FROM {_OPENED}\n"
            f"WHERE customer_tier = 'key' AND $__timeFilter(opened_at) AND {filters()}\n"
            "GROUP BY customer_id ORDER BY breached DESC, tickets DESC, customer_id LIMIT 25",
            "Customers of the key tier: tickets opened in the range.",
        ),
        Panel(
            "Feature requests",
            "table",
            "SELECT argMax(summary, ingested_at) AS cluster,\n"
            "    JSONExtractUInt(argMax(details, ingested_at), 'count') AS requests,\n"
            "    arrayStringConcat(JSONExtractArrayRaw(argMax(details, ingested_at), 'examples'), ' · ') AS examples,\n"
            "    min(starts_at) AS since\n"
            "FROM alerts\n"
            "WHERE rule = 'feature_request_cluster' AND alert_id IN (\n"
            "    SELECT alert_id FROM alerts\n"
            "    WHERE rule = 'feature_request_cluster' AND starts_at < $__toTime\n"
            "        AND starts_at >= $__fromTime - INTERVAL 90 DAY\n"
            "    GROUP BY alert_id\n"
            "    HAVING countIf(status = 'resolved') = 0 OR maxIf(ends_at, status = 'resolved') >= $__fromTime)\n"
            "GROUP BY alert_id ORDER BY requests DESC, since, alert_id LIMIT 25",
            "Feature-request clusters active in the range, with their latest count and examples.",
            width=24,
        ),
        Panel(
            "Error codes",
            "table",
            "SELECT upper(replaceRegexpAll(error_code, '[\\\\s_]+', '-')) AS error_code,\n"
            "    uniqExact(customer_id) AS customers, uniqExact(ticket_id) AS tickets,\n"
            "    min(occurred_at) AS first_seen, max(occurred_at) AS last_seen\n"
            "FROM contact_events\n"
            f"WHERE $__timeFilter(occurred_at) AND error_code != '' AND {filters('channel', 'category', 'topic')}\n"
            f"    AND ({ALL} IN (${{team:singlequote}}) AND {ALL} IN (${{priority:singlequote}})\n"
            f"         OR ticket_id IN (SELECT ticket_id FROM {_OPENED}\n"
            "                          WHERE opened_at >= $__fromTime - INTERVAL 97 DAY\n"
            f"                            AND {filters('team', 'priority')}))\n"
            "GROUP BY error_code ORDER BY customers DESC, error_code LIMIT 25",
            "Error codes customers reported in the range (each customer and ticket once); team and priority "
            "are the ticket's (an incident report seldom states a priority: its ticket is p1).",
        ),
        Panel(
            "Agents",
            "table",
            "SELECT agent, arraySort(groupUniqArray(team)) AS teams, uniqExactIfMerge(replies) AS replies,\n"
            "    uniqExactMerge(tickets) AS `tickets touched`, uniqExactIfMerge(resolutions) AS resolved\n"
            "FROM agent_daily\n"
            f"WHERE day >= toDate($__fromTime) AND day <= toDate($__toTime) AND {filters('channel', 'team')}\n"
            "GROUP BY agent ORDER BY `tickets touched` DESC, agent LIMIT 50",
            "Per agent over the range (whole days): replies sent, tickets touched, tickets resolved.",
        ),
        Panel(
            "Agents: resolution and CSAT",
            "table",
            "SELECT agent, count() AS resolved,\n"
            "    round(quantileExactLow(0.5)(resolution_sla_seconds) / 3600, 2) AS `median resolution h`,\n"
            "    round(100 * countIf(first_contact_resolution) / count(), 1) AS `FCR %`,\n"
            "    round(avg(csat_score), 2) AS csat, countIf(csat_score <= 2) AS `negative (1-2)`\n"
            f"FROM {_OPENED}\n"
            f"WHERE agent != '' AND $__timeFilter(resolved_at) AND {_RESOLVED_WHERE}\n"
            "GROUP BY agent ORDER BY resolved DESC, agent LIMIT 50",
            "Tickets resolved in the range, by the agent who last replied to or was assigned each.",
        ),
    ],
)

OPERATIONS: Final = Dashboard(
    "contactpulse-operations",
    "ContactPulse — operations",
    [
        Panel(
            "Ingest delay (s)",
            "timeseries",
            "SELECT $__timeInterval(hour) AS time,\n"
            "    quantilesMerge(0.5, 0.95)(ingest_delay_ms)[1] / 1000 AS p50,\n"
            "    quantilesMerge(0.5, 0.95)(ingest_delay_ms)[2] / 1000 AS p95\n"
            f"FROM contacts_hourly\nWHERE $__timeFilter(hour) AND {filters(*_EVENT_FILTERS)}\n"
            "GROUP BY time ORDER BY time",
            "From the event's own time to its row in ClickHouse.",
        ),
        Panel(
            "Contacts per channel vs their usual level (%)",
            "timeseries",
            "SELECT cur.hour AS time, cur.channel AS channel,\n"
            "    round(100 * cur.contacts / nullIf(usual.contacts, 0)) AS `% of usual`\n"
            "FROM (SELECT hour, channel, toDayOfWeek(hour) AS weekday, toHour(hour) AS hour_of_day,\n"
            "             uniqExactMerge(events) AS contacts\n"
            "      FROM contacts_hourly\n"
            f"      WHERE type = 'contact_received' AND $__timeFilter(hour) AND {filters(*_EVENT_FILTERS)}\n"
            "      GROUP BY hour, channel) AS cur\n"
            "LEFT JOIN (SELECT channel, toDayOfWeek(hour) AS weekday, toHour(hour) AS hour_of_day,\n"
            "                  uniqExactMerge(events) / 4 AS contacts\n"
            "           FROM contacts_hourly WHERE type = 'contact_received'\n"
            "               AND hour >= $__fromTime - INTERVAL 28 DAY AND hour < $__fromTime\n"
            f"               AND {filters(*_EVENT_FILTERS)}\n"
            "           GROUP BY channel, weekday, hour_of_day) AS usual\n"
            "    ON cur.channel = usual.channel AND cur.weekday = usual.weekday\n"
            "        AND cur.hour_of_day = usual.hour_of_day\n"
            "ORDER BY time, channel",
            "Each channel's contacts per hour against the same hour of the week over the 4 weeks before.",
        ),
        Panel(
            "Dead letters by reason",
            "timeseries",
            "SELECT $__timeInterval(dead_lettered_at) AS time, reason, count() AS records\n"
            "FROM dead_letters FINAL\nWHERE $__timeFilter(dead_lettered_at)\n"
            "GROUP BY time, reason ORDER BY time, reason",
            "Records refused (bad JSON, schema, late, duplicate, unverified sender...): the record itself is on"
            " the dead-letter topic at the row's offset.",
        ),
        Panel(
            "Dead letters by source",
            "table",
            "SELECT source_topic, reason, count() AS records, countIf(withheld) AS withheld,\n"
            "    formatReadableSize(sum(size_bytes)) AS size, max(dead_lettered_at) AS last\n"
            "FROM dead_letters FINAL\nWHERE $__timeFilter(dead_lettered_at)\n"
            "GROUP BY source_topic, reason ORDER BY records DESC, source_topic, reason",
            "Where refused records came from, and why.",
        ),
        Panel(
            "Events by type",
            "table",
            "SELECT type, uniqExactMerge(events) AS events\n"
            f"FROM contacts_hourly\nWHERE $__timeFilter(hour) AND {filters(*_EVENT_FILTERS)}\n"
            "GROUP BY type ORDER BY events DESC, type",
            "Normalized events in the range by type.",
        ),
        Panel(
            "Alert changes per hour by rule",
            "timeseries",
            "SELECT toStartOfHour(starts_at) AS time, rule, uniqExact(alert_id) AS alerts\n"
            "FROM alerts\nWHERE $__timeFilter(starts_at)\n"
            "GROUP BY time, rule ORDER BY time, rule",
            "Alerts fired, by rule: a rule that suddenly fires much more is worth a look.",
        ),
        Panel(
            "Alerts firing now",
            "table",
            "SELECT rule, any(severity) AS severity, any(subject) AS subject, min(starts_at) AS since,\n"
            "    argMax(summary, kafka_offset) AS summary\n"
            "FROM alerts\nWHERE starts_at >= $__fromTime - INTERVAL 30 DAY\n"
            "GROUP BY alert_id, rule HAVING countIf(status = 'resolved') = 0\n"
            "ORDER BY since DESC, alert_id LIMIT 100",
            "Alerts without a resolution yet.",
            width=24,
        ),
    ],
)

DASHBOARDS: Final = (OVERVIEW, SLA, CUSTOMERS, OPERATIONS)


def _variable(name: str) -> dict[str, Any]:
    values = f"SELECT DISTINCT {name} FROM ticket_outcomes WHERE {name} != '' ORDER BY {name}"
    return {
        "name": name,
        "label": name.capitalize(),
        "type": "query",
        "datasource": DATASOURCE,
        "query": values,
        "definition": values,
        "refresh": 2,  # on time range change
        "multi": True,
        "includeAll": True,
        "allValue": ALL,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "sort": 1,
        "hide": 0,
    }


def _panel(panel: Panel, number: int, x: int, y: int) -> dict[str, Any]:
    table = panel.kind != "timeseries"
    defaults: dict[str, Any] = {"unit": panel.unit} if panel.unit else {}
    return {
        "id": number,
        "title": panel.title,
        "type": panel.kind,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "editorType": "sql",
                "format": 1 if table else 0,
                "queryType": "table" if table else "timeseries",
                "rawSql": panel.sql,
            }
        ],
        "options": {},
        "fieldConfig": {"defaults": defaults, "overrides": []},
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    panels, x, y, row_height = [], 0, 0, 0
    for number, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel(panel, number, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "tags": ["contactpulse"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": dashboard.time_from, "to": "now"},
        "editable": False,
        "templating": {"list": [_variable(name) for name in FILTERS]},
        "annotations": {"list": []},
        "links": [
            {"title": "ContactPulse", "type": "dashboards", "tags": ["contactpulse"], "asDropdown": False}
        ],
        "panels": panels,
    }


def expand(sql: str, starts: datetime, ends: datetime, selected: dict[str, list[str]] | None = None) -> str:
    """A panel's SQL as Grafana and the ClickHouse plugin send it for the range [starts, ends] (hourly
    intervals): the plugin's time macros, and the filter variables, where "All" is the custom value
    inserted verbatim and a selection its quoted values joined by commas (`singlequote`). The tests and
    `bench/analytics_scale.py` run the panels through this."""
    start, end = int(starts.timestamp()), int(ends.timestamp())
    sql = re.sub(
        r"\$__timeFilter\((\w+)\)",
        lambda m: f"{m.group(1)} >= toDateTime({start}) AND {m.group(1)} <= toDateTime({end})",
        sql,
    )
    sql = re.sub(
        r"\$__timeInterval\((\w+)\)",
        lambda m: f"toStartOfInterval(toDateTime({m.group(1)}), INTERVAL 3600 second)",
        sql,
    )
    sql = sql.replace("$__fromTime", f"toDateTime({start})").replace("$__toTime", f"toDateTime({end})")
    for name in FILTERS:
        values = (selected or {}).get(name)
        text = ",".join("'" + v.replace("'", "\\'") + "'" for v in values) if values else ALL
        sql = sql.replace(f"${{{name}:singlequote}}", text)
    return sql


def rendered() -> dict[str, str]:
    """Each dashboard's file name and its JSON text, as committed under deploy/grafana/dashboards."""
    return {
        d.filename: json.dumps(dashboard_json(d), indent=2, ensure_ascii=False) + "\n" for d in DASHBOARDS
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
