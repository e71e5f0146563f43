"""The weekly report for the head of support, as data: what `contactpulse report` reads from ClickHouse
and renders to HTML. Plain values, so the numbers can be checked without parsing the page.

Cohorts (each metric says which tickets it counts):
- opened in the week: first response, first-response SLA compliance, escalation and repeat rates;
- resolved in the week: resolution time, resolution SLA compliance, first-contact resolution, causes;
- each ticket's latest rating, in the week it came: CSAT.
Times are working time on each ticket's SLA calendar (what its SLA measures), medians are the lower
median. Tickets the stream first saw mid-life are left out (their opening and clocks were not seen). SLA
compliance counts tickets with a policy whose clock concluded: met, or breached (late, or past due open).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WeekMetrics(_Frozen):
    """The five metrics and SLA compliance of one week (None: nothing to measure that week)."""

    week: date
    """The Monday the week starts on, in the report's time zone."""
    contacts: int
    tickets_opened: int
    tickets_resolved: int
    first_response_median_seconds: float | None
    resolution_median_seconds: float | None
    first_contact_resolution_rate: float | None
    csat_average: float | None
    csat_ratings: int
    csat_positive_rate: float | None
    """Share of ratings of 4 or 5."""
    repeat_contact_rate: float | None
    first_response_sla_compliance: float | None
    resolution_sla_compliance: float | None
    escalation_rate: float | None


class Cause(_Frozen):
    """A topic's share of the week's working time to resolution (the Pareto of causes)."""

    category: str
    topic: str
    tickets: int
    working_hours: float
    share: float
    cumulative_share: float
    previous_week_hours: float


class SlaTicket(_Frozen):
    ticket_id: str
    channel: str
    priority: str
    team: str
    topic: str
    clock: str
    """"first response" or "resolution"."""
    target_seconds: float
    spent_seconds: float | None
    """None while the ticket is still open: it is past due and counting."""
    opened_at: datetime


class ChannelWeek(_Frozen):
    channel: str
    contacts: int
    previous_week_contacts: int
    tickets_opened: int
    first_response_median_seconds: float | None
    first_response_sla_compliance: float | None


class RepeatCustomer(_Frozen):
    customer_id: str
    topic: str
    tickets: int
    """Tickets the customer opened on the topic this week that came within the window of the previous."""


class NegativeRating(_Frozen):
    ticket_id: str
    score: int
    rated_at: datetime
    respond_by: datetime | None
    answered_at: datetime | None

    @property
    def answered_in_time(self) -> bool:
        return (
            self.answered_at is not None
            and self.respond_by is not None
            and self.answered_at <= self.respond_by
        )


class FeatureCluster(_Frozen):
    """A cluster active in the week: fired in it, or earlier and still firing then."""

    summary: str
    requests: int
    customers: int
    examples: list[str]
    first_seen: datetime


class Incident(_Frozen):
    error_code: str
    customers: int
    tickets: int
    started_at: datetime
    ended_at: datetime | None


class WeeklyReport(_Frozen):
    iso_week: str
    """e.g. "2026-W47"."""
    time_zone: str
    starts: datetime
    ends: datetime
    lang: str
    trend: list[WeekMetrics]
    """Twelve weeks ending with the report's week (oldest first); the last two give the deltas."""
    causes: list[Cause]
    worst_sla_tickets: list[SlaTicket]
    channels: list[ChannelWeek]
    repeat_customers: list[RepeatCustomer]
    negative_ratings: list[NegativeRating]
    feature_clusters: list[FeatureCluster]
    incidents: list[Incident]

    @property
    def this_week(self) -> WeekMetrics:
        return self.trend[-1]

    @property
    def previous_week(self) -> WeekMetrics:
        return self.trend[-2]
