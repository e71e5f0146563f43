"""Queue-aware first-response risk: warn about a ticket that its team's queue will not reach in time, before
75% of its target is spent.

The model, per team, every `evaluate_every_minutes` of the stream clock:
- the queue is the team's open tickets still waiting for a first reply (their first-response clock runs),
  in the order agents are expected to take them: earliest first-response due instant first;
- the pace is what the team did in the last `pace_minutes` (60): F first replies sent, so the team
  clears one waiting ticket every h = 60 min / F (its recent handle time per agent divided by its agents
  working in parallel, measured as one number: agents work for several teams and on follow-ups too, so
  counting heads would over-state a team's capacity);
- the ticket at queue position i (from 0) gets its reply after (i + 1) x h of working time (on the
  ticket's SLA calendar);
- a ticket whose expected reply falls after its due instant, due within `horizon_hours` and not past it
  yet (a breach is the breach rule's), fires
  `sla_first_response_at_risk` with label `reason=queue` (the time trigger, 75% spent, has no `reason`).
  It is the same alert as the time trigger's: it resolves at the first reply, and a breach follows it.
No estimate is made for a team with no agent active or fewer than `min_first_replies` first replies in
the pace window: with nothing to extrapolate from, the time trigger alone speaks. The agents active (on
the team's tickets: assigned or replying) are reported in the alert, for the lead to judge.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from mypy_extensions import mypyc_attr

from processors.alerting import AlertBook
from processors.calendar import SlaCalendar
from processors.detector import ALL_EVENT_TYPES, NO_EVENT_TYPES, Observation
from processors.sla import FIRST_RESPONSE_AT_RISK
from processors.summaries import Duration, summarize, wall_clock
from processors.ticket_alerts import TicketAlerts
from processors.ticket_state import TicketState
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig
from schemas.event import EventType

_AGENT_REPLIED: Final = EventType.AGENT_REPLIED
_ASSIGNED: Final = EventType.ASSIGNED
_QUEUE_SUMMARY: Final = "sla_first_response_queue"
"""The summary template of a queue-triggered at-risk alert (the rule stays `sla_first_response_at_risk`)."""


@mypyc_attr(native_class=False)
@dataclass(frozen=True, slots=True)
class Waiting:
    """A ticket in a team's queue: its first-response due instant (epoch seconds) and SLA calendar."""

    due: float
    ticket_id: str
    calendar: SlaCalendar


@mypyc_attr(native_class=False)
@dataclass(frozen=True, slots=True)
class Forecast:
    ticket_id: str
    position: int
    answer_at: float
    due: float

    @property
    def late(self) -> bool:
        return self.answer_at > self.due


def forecast(queue: Sequence[Waiting], seconds_per_reply: float, now: float) -> list[Forecast]:
    """When each waiting ticket can expect its first reply, if the team works earliest-due first at its
    recent pace (one first reply every `seconds_per_reply`)."""
    ordered = sorted(queue, key=lambda w: (w.due, w.ticket_id))
    return [
        Forecast(w.ticket_id, i, w.calendar.due_after(now, (i + 1) * seconds_per_reply), w.due)
        for i, w in enumerate(ordered)
    ]


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(slots=True)
class _Team:
    waiting: dict[str, TicketState] = field(default_factory=dict)
    agents: dict[str, float] = field(default_factory=dict)
    """agent -> when last active on one of the team's tickets (epoch seconds)."""
    first_replies: deque[float] = field(default_factory=deque)


@mypyc_attr(allow_interpreted_subclasses=True)
class QueueRisk:
    """The detector: keeps each team's queue and pace from the applied events; evaluates on a cadence."""

    def __init__(
        self,
        config: DetectionConfig,
        alerts: AlertBook,
        calendar_of: Callable[[TicketState], SlaCalendar],
    ) -> None:
        cfg = config.queue_risk
        # Turned off (the default), the engine neither calls it per event nor compares its bound.
        self.keeps_deadlines = cfg.enabled
        self.observes = ALL_EVENT_TYPES if cfg.enabled else NO_EVENT_TYPES
        self._every = cfg.evaluate_every_minutes * 60.0
        self._pace = cfg.pace_minutes * 60.0
        self._min_replies = cfg.min_first_replies
        self._horizon = cfg.horizon_hours * 3600.0
        self._retention = config.engine.open_ticket_retention_days * 86400.0
        self._locale = config.locale
        self._alerts = TicketAlerts(alerts)
        self._calendar_of = calendar_of
        self.teams: dict[str, _Team] = {}
        self._queued: dict[str, str] = {}
        """ticket id -> the team whose queue holds it."""
        self.due_bound = math.inf
        """The next evaluation (epoch seconds); inf until the first event, or when turned off."""

    def observe(self, seen: Observation, alerts: list[Alert]) -> None:
        ticket, ts = seen.ticket, seen.ts
        if self.due_bound == math.inf:
            self.due_bound = (math.floor(ts / self._every) + 1) * self._every
        team_name = ticket.teams[-1] if ticket.teams else None
        kind = seen.event.type
        agent = seen.event.agent
        if team_name is not None and agent and (kind is _AGENT_REPLIED or kind is _ASSIGNED):
            self._team(team_name).agents[agent] = ts
        clock = ticket.first_response
        waits = (
            team_name is not None
            and not ticket.first_seen_mid_life
            and clock.met_at is None
            and clock.running_since is not None
            and clock.target_seconds > 0
        )
        ticket_id = ticket.ticket_id
        queued_in = self._queued.get(ticket_id)
        if queued_in is not None and (not waits or queued_in != team_name):
            del self.teams[queued_in].waiting[ticket_id]
            del self._queued[ticket_id]
            if kind is _AGENT_REPLIED and clock.met_at is not None:
                self.teams[queued_in].first_replies.append(ts)
        if waits and team_name is not None and queued_in != team_name:
            self._team(team_name).waiting[ticket_id] = ticket
            self._queued[ticket_id] = team_name

    def next_due(self) -> float:
        return self.due_bound

    def fire_due(self, now: float, stream_start: datetime) -> list[Alert]:
        alerts: list[Alert] = []
        for name, team in self.teams.items():
            alerts += self._evaluate(name, team, now)
        self.due_bound = now + self._every
        return alerts

    def hourly(self, at: datetime, stream_start: datetime) -> list[Alert]:
        # Tickets the book forgot (expired) leave the queues here; activity older than the pace window too.
        now = at.timestamp()
        for name in list(self.teams):
            team = self.teams[name]
            team.agents = {a: t for a, t in team.agents.items() if t >= now - self._pace}
            forgotten = now - self._retention  # as the ticket book forgets a silent open ticket
            for ticket_id in [t for t, state in team.waiting.items() if state.last_event_ts < forgotten]:
                del team.waiting[ticket_id]
                self._queued.pop(ticket_id, None)
            if not team.waiting and not team.agents and not team.first_replies:
                del self.teams[name]
        return []

    def _evaluate(self, name: str, team: _Team, now: float) -> list[Alert]:
        since = now - self._pace
        replies = team.first_replies
        while replies and replies[0] < since:
            replies.popleft()
        agents = sum(1 for last in team.agents.values() if last >= since)
        if not team.waiting or agents == 0 or len(replies) < self._min_replies:
            return []
        per_reply = self._pace / len(replies)
        queue = []
        for ticket in team.waiting.values():
            calendar = self._calendar_of(ticket)
            due = ticket.first_response.crossing(1.0, calendar)
            if due is not None:
                queue.append(Waiting(due, ticket.ticket_id, calendar))
        alerts: list[Alert] = []
        waiting = team.waiting
        for estimate in forecast(queue, per_reply, now):
            ticket = waiting[estimate.ticket_id]
            if (
                not estimate.late
                or not now < estimate.due <= now + self._horizon
                or FIRST_RESPONSE_AT_RISK in ticket.firing_rules
            ):
                continue
            alert = self._fire(ticket, name, estimate, agents, per_reply, len(queue), now)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _fire(
        self,
        ticket: TicketState,
        team: str,
        estimate: Forecast,
        agents: int,
        per_reply: float,
        queued: int,
        now: float,
    ) -> Alert | None:
        zone = ticket.opened_at.tzinfo
        due = datetime.fromtimestamp(estimate.due, zone)
        answer = datetime.fromtimestamp(estimate.answer_at, zone)
        details: dict[str, Any] = {
            "reason": "queue",
            "priority": str(ticket.priority),
            "sla_policy": ticket.policy,
            "target_seconds": ticket.first_response.target_seconds,
            "due_at": due.isoformat(),
            "expected_reply_at": answer.isoformat(),
            "queue_position": estimate.position + 1,
            "queued": queued,
            "agents": agents,
            "seconds_per_reply": round(per_reply, 1),
            "channel": ticket.channel,
            "customer_id": ticket.customer_id,
            "topic": ticket.topic,
            "opened_at": ticket.opened_iso(),
        }
        values = {
            "ticket_id": ticket.ticket_id,
            "priority": str(ticket.priority),
            "channel": ticket.channel or "unknown channel",
            "team": team,
            "due": wall_clock(due, due.isoformat()),
            "expected": wall_clock(answer, answer.isoformat()),
            "position": estimate.position + 1,
            "queued": queued,
            "agents": agents,
            "per_reply": Duration(per_reply),
        }
        labels = ticket.labels()
        labels["reason"] = "queue"
        return self._alerts.fire(
            ticket,
            FIRST_RESPONSE_AT_RISK,
            severity=Severity.WARNING,
            audience=Audience.ONCALL,
            starts_at=datetime.fromtimestamp(now, zone),
            summary=summarize(_QUEUE_SUMMARY, self._locale, values),
            details=details,
            labels=labels,
        )

    def _team(self, name: str) -> _Team:
        team = self.teams.get(name)
        if team is None:
            team = self.teams[name] = _Team()
        return team
