"""Per-ticket SLA: policy choice, clocks with pauses, thresholds, and the ticket metrics the sinks keep.

A ticket has two clocks, first response and resolution, each measured on the calendar of its policy
(24x7 or business hours). The resolution clock pauses while the ticket waits on the customer and
resumes on a reopen. A clock's threshold instant (75% or 100% of its target) is computed from the
working time already spent and the calendar, so it moves exactly when a pause or a priority change
moves it. Clocks keep instants as epoch seconds on the microsecond grid (`to_microsecond`): they are read
on every ticket event and at every threshold, and the calendar table works in epoch seconds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime

from processors.calendar import SlaCalendar, to_microsecond
from schemas.config import SlaConfig, SlaPolicy
from schemas.event import BusinessImpact, ContactEvent, ContactKind, CustomerTier, Priority

_PRIORITY_ORDER = (Priority.P1, Priority.P2, Priority.P3, Priority.P4)
_DONE = frozenset({"resolved", "closed"})


def _instant(epoch_seconds: float | None) -> datetime | None:
    return None if epoch_seconds is None else datetime.fromtimestamp(epoch_seconds, UTC)


FIRST_RESPONSE_AT_RISK = "sla_first_response_at_risk"
FIRST_RESPONSE_BREACHED = "sla_first_response_breached"
RESOLUTION_AT_RISK = "sla_resolution_at_risk"
RESOLUTION_BREACHED = "sla_resolution_breached"


@functools.cache  # a few dozen combinations; asked for at every SLA alert and ticket snapshot
def derive_priority(
    category: BusinessImpact | None, kind: ContactKind | None, tier: CustomerTier | None
) -> Priority:
    """The priority of a ticket whose events carry none: by business impact, a key account one up."""
    if category is BusinessImpact.BLOCKS_PROCESS:
        base = Priority.P1
    elif category is BusinessImpact.REVENUE_LOSS:
        base = Priority.P2
    elif kind is ContactKind.FEATURE_REQUEST:
        base = Priority.P4
    else:
        base = Priority.P3
    return one_step_up(base) if tier is CustomerTier.KEY else base


def priority_raised(before: str | None, after: str | None) -> bool:
    """Whether a change of priority made the ticket more urgent (from none to any counts): the
    escalation a source without an escalation flag of its own reports."""
    if after is None:
        return False
    return before is None or _PRIORITY_ORDER.index(Priority(after)) < _PRIORITY_ORDER.index(Priority(before))


def one_step_up(priority: Priority) -> Priority:
    """The next more urgent priority (p1 stays p1): a key account's, an urgent-sounding contact's."""
    return _PRIORITY_ORDER[max(0, _PRIORITY_ORDER.index(priority) - 1)]


def choose_policy(config: SlaConfig, ticket: TicketState) -> SlaPolicy | None:
    """The first policy whose conditions all hold (Zendesk's rule: order decides)."""
    for policy in config.policies:
        c = policy.conditions
        if c.channels and ticket.channel not in c.channels:
            continue
        if c.categories and ticket.category not in c.categories:
            continue
        if c.priorities and ticket.priority not in c.priorities:
            continue
        if c.customer_tiers and ticket.customer_tier not in c.customer_tiers:
            continue
        return policy
    return None


@dataclass(frozen=True, slots=True)
class SlaTargets:
    """What a ticket owes: its policy, the calendar its clocks run on and the two targets."""

    policy: str
    calendar: str
    first_response_seconds: float
    resolution_seconds: float


def sla_targets(config: SlaConfig, ticket: TicketState) -> SlaTargets | None:
    """The ticket's targets under the first matching policy (a fast channel's first response at most
    `fast_channel_first_response_minutes`); None when no policy applies."""
    policy = choose_policy(config, ticket)
    if policy is None:
        return None
    first_response = policy.first_response_minutes
    if ticket.channel in config.fast_channels:
        first_response = min(first_response, config.fast_channel_first_response_minutes)
    return SlaTargets(policy.name, policy.calendar, first_response * 60.0, policy.resolution_minutes * 60.0)


@dataclass(slots=True)
class SlaClock:
    """Working time spent against one target; stopped for good once met. Instants in epoch seconds."""

    target_seconds: float = 0.0
    spent_seconds: float = 0.0
    """Working time spent in spans that have ended (before the current pause or run)."""
    running_since: float | None = None
    met_at: float | None = None
    version: int = 0
    """Bumped whenever the thresholds may have moved: a threshold scheduled under an older one is void."""
    scheduled_from: tuple[object, ...] | None = None
    """The inputs the scheduled thresholds were computed from (calendar, target, spent, run, met)."""

    def spent(self, now: float, calendar: SlaCalendar) -> float:
        if self.running_since is None:
            return self.spent_seconds
        return self.spent_seconds + calendar.working_between(self.running_since, now)

    def crossing(self, fraction: float, calendar: SlaCalendar) -> float | None:
        """When `fraction` of the target is (or was) reached, if the clock runs; None while paused."""
        if self.running_since is None or self.met_at is not None or self.target_seconds <= 0:
            return None
        return to_microsecond(
            calendar.due_after(self.running_since, fraction * self.target_seconds - self.spent_seconds)
        )

    def pause(self, now: float, calendar: SlaCalendar) -> None:
        if self.running_since is not None:
            self.spent_seconds = self.spent(now, calendar)
            self.running_since = None

    def run(self, now: float) -> None:
        if self.running_since is None and self.met_at is None:
            self.running_since = now

    def meet(self, now: float, calendar: SlaCalendar) -> None:
        self.pause(now, calendar)
        self.met_at = now

    def reopen(self, now: float) -> None:
        self.met_at = None
        self.run(now)

    def met_late(self) -> bool:
        """Met after more working time than its target (a reply at the due instant is in time)."""
        return (
            self.met_at is not None and self.target_seconds > 0 and self.spent_seconds > self.target_seconds
        )


@dataclass(slots=True)
class TicketState:
    ticket_id: str
    opened_at: datetime
    first_seen_mid_life: bool
    last_event_at: datetime
    last_event_ts: float
    """`last_event_at` in epoch seconds (compared on every event; datetimes compare slowly)."""
    channel: str | None = None
    customer_id: str | None = None
    customer_tier: CustomerTier | None = None
    category: BusinessImpact | None = None
    kind: ContactKind | None = None
    topic: str | None = None
    explicit_priority: Priority | None = None
    error_code: str | None = None
    status: str = "new"
    policy: str | None = None
    calendar: str = "business"
    first_response: SlaClock = field(default_factory=SlaClock)
    resolution: SlaClock = field(default_factory=SlaClock)
    # metrics kept for the sinks
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution_sla_seconds: float | None = None
    resolution_calendar_seconds: float | None = None
    agent_replies: int = 0
    touches: int = 0
    teams: list[str] = field(default_factory=list)
    escalations: int = 0
    reopens: int = 0
    csat_score: int | None = None
    csat_at: datetime | None = None
    agent: str | None = None
    """The agent who last replied to or was assigned the ticket."""
    """When the latest rating came."""
    negative_csat_at: datetime | None = None
    resolution_recorded: bool = False
    firing_rules: set[str] = field(default_factory=set)
    """The ticket's rules firing now (mirrors the alert book, to skip look-ups on the hot path)."""
    opened_iso_text: str | None = None
    """`opened_at.isoformat()`, made at the ticket's first alert and kept for the next ones."""
    alerted: bool = False
    """Whether any rule ever fired on the ticket (else the alert book holds nothing to forget)."""

    def opened_iso(self) -> str:
        if self.opened_iso_text is None:
            self.opened_iso_text = self.opened_at.isoformat()
        return self.opened_iso_text

    @property
    def priority(self) -> Priority:
        return self.explicit_priority or derive_priority(self.category, self.kind, self.customer_tier)

    @property
    def done(self) -> bool:
        return self.status in _DONE

    @property
    def handoffs(self) -> int:
        return sum(1 for previous, team in zip(self.teams, self.teams[1:], strict=False) if team != previous)

    @property
    def first_contact_resolution(self) -> bool:
        return self.resolved_at is not None and self.agent_replies <= 1 and self.reopens == 0

    def absorb(self, event: ContactEvent) -> None:
        """Take the descriptive fields an event carries; later values win."""
        if event.channel is not None and self.channel is None:
            self.channel = str(event.channel)
        if event.customer_id is not None:
            self.customer_id = event.customer_id
        if event.customer_tier is not None:
            self.customer_tier = event.customer_tier
        if event.category is not None:
            self.category = event.category
        if event.kind is not None:
            self.kind = event.kind
        if event.topic is not None:
            self.topic = event.topic
        if event.priority is not None:
            self.explicit_priority = event.priority
        if event.error_code is not None:
            self.error_code = event.error_code

    def labels(self) -> dict[str, str]:
        """The routing labels of this ticket's alerts (what is known when the alert fires)."""
        known = {
            "priority": self.priority.value,
            "team": self.teams[-1] if self.teams else None,
            "topic": self.topic,
            "category": self.category.value if self.category else None,
            "channel": self.channel,
            "customer_tier": self.customer_tier.value if self.customer_tier else None,
            "error_code": self.error_code,
        }
        return {name: value for name, value in known.items() if value}

    def snapshot(self, calendar: SlaCalendar) -> dict[str, object]:
        """The row the ticket-state sink writes; `calendar` is the ticket's (for the due instants)."""
        return {
            "ticket_id": self.ticket_id,
            "opened_at": self.opened_at,
            "first_seen_mid_life": self.first_seen_mid_life,
            "last_event_at": self.last_event_at,
            "channel": self.channel or "",
            "customer_id": self.customer_id or "",
            "customer_tier": self.customer_tier.value if self.customer_tier else "",
            "category": self.category.value if self.category else "",
            "kind": self.kind.value if self.kind else "",
            "topic": self.topic or "",
            "priority": self.priority.value,
            "status": self.status,
            "sla_policy": self.policy or "",
            "sla_calendar": self.calendar,
            "team": self.teams[-1] if self.teams else "",
            "agent": self.agent or "",
            "first_response_target_seconds": self.first_response.target_seconds,
            "first_response_at": self.first_response_at,
            "first_response_sla_seconds": (
                self.first_response.spent_seconds
                if self.first_response_at is not None and self.first_response.met_at is not None
                else None
            ),
            "first_response_breached": self.first_response.met_late()
            or FIRST_RESPONSE_BREACHED in self.firing_rules,
            "resolution_target_seconds": self.resolution.target_seconds,
            "resolved_at": self.resolved_at,
            "resolution_sla_seconds": self.resolution_sla_seconds,
            "resolution_calendar_seconds": self.resolution_calendar_seconds,
            "resolution_breached": self.resolution.met_late() or RESOLUTION_BREACHED in self.firing_rules,
            # Where each running clock reaches its target (None: met, paused or not kept): "time left" on
            # the SLA board. It moves only with the ticket's own events, which write the row again.
            "first_response_due_at": _instant(self.first_response.crossing(1.0, calendar)),
            "resolution_due_at": _instant(self.resolution.crossing(1.0, calendar)),
            "touches": self.touches,
            "handoffs": self.handoffs,
            "escalations": self.escalations,
            "reopens": self.reopens,
            "agent_replies": self.agent_replies,
            "first_contact_resolution": self.first_contact_resolution,
            "csat_score": self.csat_score,
            "csat_at": self.csat_at,
        }
