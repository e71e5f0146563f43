"""Per-ticket SLA: the rules' names, the policy a ticket falls under, and its clocks with pauses.

A ticket has two clocks, first response and resolution, each measured on the calendar of its policy
(24x7 or business hours). The resolution clock pauses while the ticket waits on the customer and
resumes on a reopen. A clock's threshold instant (75% or 100% of its target) is computed from the
working time already spent and the calendar, so it moves exactly when a pause or a priority change
moves it. Clocks keep instants as epoch seconds on the microsecond grid (`to_microsecond`): they are read
on every ticket event and at every threshold, and the calendar table works in epoch seconds.

When the thresholds fire is `sla_schedule`'s; what their alerts say is `sla_alerts`'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mypy_extensions import mypyc_attr

from processors.calendar import SlaCalendar, to_microsecond
from schemas.config import SlaConfig, SlaPolicy

if TYPE_CHECKING:
    from processors.ticket_state import TicketState

FIRST_RESPONSE_AT_RISK = "sla_first_response_at_risk"
FIRST_RESPONSE_BREACHED = "sla_first_response_breached"
RESOLUTION_AT_RISK = "sla_resolution_at_risk"
RESOLUTION_BREACHED = "sla_resolution_breached"


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


@mypyc_attr(native_class=False)
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


@mypyc_attr(allow_interpreted_subclasses=True)
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
