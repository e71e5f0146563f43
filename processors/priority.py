"""Ticket priority: the order p1 > p4, the priority a ticket without one gets, and what counts as raising it.

Classification (the urgent-words bump), the SLA policy choice and three helpdesk adapters (a raised
priority is their escalation) all read these, so each rule is written here once.
"""

from __future__ import annotations

import functools

from schemas.event import BusinessImpact, ContactKind, CustomerTier, Priority

_ORDER = (Priority.P1, Priority.P2, Priority.P3, Priority.P4)
"""Most urgent first."""


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
    return before is None or _ORDER.index(Priority(after)) < _ORDER.index(Priority(before))


def one_step_up(priority: Priority) -> Priority:
    """The next more urgent priority (p1 stays p1): a key account's, an urgent-sounding contact's."""
    return _ORDER[max(0, _ORDER.index(priority) - 1)]
