"""Public contracts of ContactPulse: the contact event, the alert, the ticket snapshot, the settings."""

from schemas.alert import Alert, AlertStatus, Audience, Severity, alert_id_for
from schemas.errors import DeadLetterReason, InvalidEvent
from schemas.event import (
    BusinessImpact,
    Channel,
    ContactEvent,
    ContactKind,
    CustomerTier,
    EventType,
    Priority,
    TicketStatus,
    parse_contact_event,
)
from schemas.settings import Settings, settings_from_env
from schemas.ticket import TicketSnapshot

__all__ = [
    "Alert",
    "AlertStatus",
    "Audience",
    "BusinessImpact",
    "Channel",
    "ContactEvent",
    "ContactKind",
    "CustomerTier",
    "DeadLetterReason",
    "EventType",
    "InvalidEvent",
    "Priority",
    "Settings",
    "Severity",
    "TicketSnapshot",
    "TicketStatus",
    "alert_id_for",
    "parse_contact_event",
    "settings_from_env",
]
