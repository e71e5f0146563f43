"""The alert: one JSON object per state change of a rule on a subject.

Field names mirror Alertmanager's model (`startsAt`/`endsAt`, labels -> `subject`, annotations ->
`summary`/`details`) so a bridge to Alertmanager is a rename, not a translation.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field

ROUTING_LABELS: Final = ("team", "topic", "category", "channel", "priority", "customer_tier", "error_code")
"""What a router (Alertmanager) may match on besides rule, severity and audience, where known."""


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Audience(StrEnum):
    ONCALL = "oncall"
    PRODUCT = "product"
    ENGINEERING = "engineering"
    """Published with the on-call alerts (`alerts.oncall`); Alertmanager routes them to engineering."""


def alert_id_for(rule: str, subject: dict[str, str], episode: str = "") -> str:
    """Deterministic id: the same rule on the same subject (and episode) is the same alert.

    Replaying a stream or restarting a worker therefore never pages anyone twice for one alert.
    `episode` separates two distinct occurrences on one subject, e.g. the second breach of a reopened
    ticket, and is empty where a subject can only be in trouble once at a time.
    """
    canonical = orjson.dumps([rule, subject, episode], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:32]


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: str
    rule: str
    status: AlertStatus
    severity: Severity
    audience: Audience
    subject: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None = None
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Routing labels (team, topic, category, channel, priority, customer_tier, error_code) "
        "where known, taken from the ticket or the subject when the alert first fired and kept for its "
        "whole life (Alertmanager identifies an alert by its labels). Records without it still parse.",
    )
    summaries: dict[str, str] = Field(
        default_factory=dict,
        description="The summary in every language ContactPulse speaks, by locale (en, ru); `summary` is "
        "the configured locale's. Records without it still parse.",
    )

    @classmethod
    def trusted(
        cls,
        *,
        alert_id: str,
        rule: str,
        status: AlertStatus,
        severity: Severity,
        audience: Audience,
        subject: dict[str, str],
        starts_at: datetime,
        ends_at: datetime | None,
        summary: str,
        details: dict[str, Any],
        labels: dict[str, str],
        summaries: dict[str, str],
    ) -> Alert:
        """An alert from values the detectors built themselves, every field given, without validation.

        The detection engine makes about one alert state change per two events; validating what it just
        built cost a tenth of the replay. Values are taken as they are (the caller must not mutate
        `subject` or `details` afterwards). Input from outside goes through the constructor.
        """
        return cls._from_fields(
            {
                "alert_id": alert_id,
                "rule": rule,
                "status": status,
                "severity": severity,
                "audience": audience,
                "subject": subject,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "summary": summary,
                "details": details,
                "labels": labels,
                "summaries": summaries,
            }
        )

    def changed(self, **update: Any) -> Alert:
        """A copy with `update` applied, trusted like `trusted` (the engine's resolves and updates)."""
        fields = dict(self.__dict__)
        fields.update(update)
        return self._from_fields(fields)

    @classmethod
    def _from_fields(cls, fields: dict[str, Any]) -> Alert:
        # What pydantic's own construction leaves on an instance, set directly.
        alert = _new(cls)
        _set(alert, "__dict__", fields)
        _set(alert, "__pydantic_fields_set__", _ALL_SET)  # pydantic copies it before any change
        _set(alert, "__pydantic_extra__", None)
        _set(alert, "__pydantic_private__", None)
        return alert

    def to_json(self) -> bytes:
        # orjson straight from the fields: the bytes pydantic's JSON mode gives (UTC as `Z`, enums as
        # values), at a sixth of the cost; alerts are the replay's largest output.
        return orjson.dumps(self.__dict__, option=orjson.OPT_UTC_Z)

    def to_json_line(self) -> bytes:
        """`to_json` and a newline, in one buffer (a JSON-lines writer copies nothing more)."""
        return orjson.dumps(self.__dict__, option=orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE)


_ALL_SET: Final = set(Alert.model_fields)
_new = object.__new__
_set = object.__setattr__
