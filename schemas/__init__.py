"""Public contracts of ContactPulse: the normalized contact event, the alert, the settings."""

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
    validate_contact_event,
)
from schemas.settings import Settings, settings_from_env

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
    "TicketStatus",
    "alert_id_for",
    "parse_contact_event",
    "settings_from_env",
    "validate_contact_event",
]
