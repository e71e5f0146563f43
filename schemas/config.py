"""Detection config: SLA policies, the business calendar and every detector's thresholds.

Loaded from a TOML file users edit (default: deploy/config/contactpulse.toml). Every field has the
default the product promises, so an empty file is a valid config.
"""

from __future__ import annotations

import tomllib
from datetime import date, time
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.event import BusinessImpact, Channel, CustomerTier, Priority

DEFAULT_CONFIG_PATH: Final = (
    Path(__file__).resolve().parent.parent / "deploy" / "config" / "contactpulse.toml"
)

FEATURE_VOCABULARY_PATH: Final = DEFAULT_CONFIG_PATH.parent / "feature_vocabulary.toml"

CalendarName = Literal["24x7", "business"]


def _feature_vocabulary(name: str) -> Any:
    """One list of the shipped feature-request vocabulary (a file of its own: it is long, and users
    edit it more often than the thresholds)."""
    with FEATURE_VOCABULARY_PATH.open("rb") as handle:
        found = tomllib.load(handle)[name]
    return tuple(tuple(group) if isinstance(group, list) else group for group in found)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BusinessHours(_Frozen):
    time_zone: str = "Europe/Moscow"
    weekdays: tuple[int, ...] = Field((0, 1, 2, 3, 4), description="0 = Monday ... 6 = Sunday")
    opens: time = time(9, 0)
    closes: time = time(18, 0)
    holiday_country: str | None = Field(
        "RU",
        description="Public holidays (and substituted days off) from the `holidays` package for this "
        "ISO country code; None for none.",
    )
    holidays: tuple[date, ...] = Field((), description="More non-working dates, e.g. a company day off.")
    extra_working_days: tuple[date, ...] = Field(
        (), description="Weekend dates worked as ordinary days (transferred working days)."
    )

    @model_validator(mode="after")
    def _opens_before_closes(self) -> BusinessHours:
        if self.opens >= self.closes:
            raise ValueError("business hours must open before they close")
        return self


class SlaConditions(_Frozen):
    """A policy matches a ticket when every listed condition holds (an empty list matches anything)."""

    channels: tuple[Channel, ...] = ()
    categories: tuple[BusinessImpact, ...] = ()
    priorities: tuple[Priority, ...] = ()
    customer_tiers: tuple[CustomerTier, ...] = ()


class SlaPolicy(_Frozen):
    name: str
    conditions: SlaConditions = SlaConditions()
    first_response_minutes: float = Field(gt=0)
    resolution_minutes: float = Field(gt=0)
    calendar: CalendarName = "business"


def _default_policies() -> tuple[SlaPolicy, ...]:
    return (
        SlaPolicy(
            name="p1",
            conditions=SlaConditions(priorities=(Priority.P1,)),
            first_response_minutes=15,
            resolution_minutes=4 * 60,
            calendar="24x7",
        ),
        SlaPolicy(
            name="p2",
            conditions=SlaConditions(priorities=(Priority.P2,)),
            first_response_minutes=60,
            resolution_minutes=8 * 60,
            calendar="24x7",
        ),
        SlaPolicy(
            name="p3",
            conditions=SlaConditions(priorities=(Priority.P3,)),
            first_response_minutes=4 * 60,
            resolution_minutes=27 * 60,
            calendar="business",
        ),
        SlaPolicy(
            name="p4",
            conditions=SlaConditions(priorities=(Priority.P4,)),
            first_response_minutes=8 * 60,
            resolution_minutes=45 * 60,
            calendar="business",
        ),
    )


class SlaConfig(_Frozen):
    policies: tuple[SlaPolicy, ...] = Field(default_factory=_default_policies)
    fast_channels: tuple[Channel, ...] = (Channel.CHAT, Channel.TELEGRAM, Channel.WHATSAPP, Channel.PHONE)
    fast_channel_first_response_minutes: float = 15
    at_risk_fraction: float = Field(0.75, gt=0, lt=1)


class VolumeSpikeConfig(_Frozen):
    dimensions: tuple[Literal["category", "topic", "channel", "kind", "error_code"], ...] = (
        "category",
        "topic",
        "channel",
        "kind",
        "error_code",
    )
    threshold: float = 0.25
    threshold_by_dimension: dict[str, float] = Field(default_factory=lambda: {"channel": 0.20})
    resolve_below: float = 0.10
    min_current: int = 30
    max_p_value: float = 0.001
    for_evaluations: int = Field(6, ge=1)
    window_days: int = 7


class ResolutionTimeSpikeConfig(_Frozen):
    threshold: float = 0.20
    resolve_below: float = 0.10
    min_tickets: int = 20
    window_days: int = 7
    warmup_days: int = Field(
        7,
        description="The previous window starts at least this long after the stream: a stream's first "
        "resolutions are its fast tickets, the slow ones having opened before it.",
    )


class RateRuleConfig(_Frozen):
    """What every rate rule (`processors/rates.py`) has: a window, a minimum volume, and how sure the share
    must be past its threshold before it fires."""

    min_tickets: int = Field(30, ge=1)
    window_days: int = Field(7, ge=1)
    confidence: float = Field(
        0.9, ge=0, lt=1, description="One-sided Wilson bound's confidence (0: the observed share decides)."
    )


class EscalationRateConfig(RateRuleConfig):
    threshold: float = 0.20
    resolve_at_or_below: float = 0.15
    min_tickets: int = Field(20, ge=1)


class ChannelSilenceConfig(_Frozen):
    silence_minutes: int = 60
    min_average_contacts: float = 10
    history_weeks: int = 4


class IncidentClusterConfig(_Frozen):
    min_customers: int = 5
    window_minutes: int = 30
    resolve_after_quiet_minutes: int = 30


class FeatureClusterConfig(_Frozen):
    min_requests: int = 5
    min_customers: int = 5
    window_days: int = 30
    similarity: float = Field(
        0.6,
        gt=0,
        le=1,
        description="Two requests are alike when the weighted Dice coefficient of their terms reaches this.",
    )
    min_shared_terms: int = Field(
        2, description="...and they share this many terms (fewer when a request has fewer)."
    )
    generic_weight: float = Field(
        0.5, gt=0, le=1, description="What a generic term (shared by many needs) counts for."
    )
    max_examples: int = 5
    synonyms: tuple[tuple[str, ...], ...] = Field(
        default_factory=lambda: _feature_vocabulary("synonyms"),
        description="Groups of words or phrases that name one need-word; the first is the term.",
    )
    generic_terms: tuple[str, ...] = Field(default_factory=lambda: _feature_vocabulary("generic_terms"))
    stopwords: tuple[str, ...] = Field(default_factory=lambda: _feature_vocabulary("stopwords"))
    library_stopwords: bool = Field(
        True, description="Also drop the Russian and English stopwords of the `stop-words` package."
    )


class RepeatContactConfig(_Frozen):
    window_days: int = 7


class RepeatRateConfig(RateRuleConfig):
    """`repeat_rate_high`: the share of a topic's new tickets (trailing window) that repeat the customer's
    ticket on that topic within `repeat_contact.window_days`."""

    threshold: float = Field(0.15, gt=0, lt=1)
    resolve_at_or_below: float = Field(0.12, ge=0, lt=1)


class FirstContactResolutionConfig(RateRuleConfig):
    """`fcr_low`: the share of a topic's tickets resolved in the trailing window with one agent reply at
    most and no reopen."""

    target: float = Field(0.70, gt=0, lt=1)
    resolve_at_or_above: float = Field(0.75, gt=0, le=1)


class MisroutingConfig(RateRuleConfig):
    """`misrouting_high`: the share of the tickets a team first took, resolved in the trailing window,
    that were handed on to another team."""

    threshold: float = Field(0.15, gt=0, lt=1)
    resolve_at_or_below: float = Field(0.12, ge=0, lt=1)


class NegativeCsatConfig(_Frozen):
    max_score: int = Field(2, ge=1, le=5)
    respond_within_business_days: float = 1


class QueueRiskConfig(_Frozen):
    """The queue trigger of `sla_first_response_at_risk` (`processors/sla_queue.py`). Off by default: its
    precision depends on how a team really works its queue, which only the team's own history shows
    (`contactpulse replay` with it on, compared with the breaches)."""

    enabled: bool = False
    evaluate_every_minutes: float = Field(5, gt=0)
    pace_minutes: float = Field(60, gt=0, description="How far back a team's agents and first replies count.")
    min_first_replies: int = Field(3, ge=1)
    horizon_hours: float = Field(8, gt=0, description="Only tickets due within this long are forecast.")


class EngineConfig(_Frozen):
    allowed_lateness_minutes: float = 5
    reorder_seconds: float = Field(0, ge=0)
    future_tolerance_minutes: float = 5
    dedupe_hours: float = 24
    closed_ticket_retention_days: float = 8
    open_ticket_retention_days: float = 60


class DetectionConfig(_Frozen):
    engine: EngineConfig = EngineConfig()
    business_hours: BusinessHours = BusinessHours()
    sla: SlaConfig = SlaConfig()
    volume_spike: VolumeSpikeConfig = VolumeSpikeConfig()
    resolution_time_spike: ResolutionTimeSpikeConfig = ResolutionTimeSpikeConfig()
    escalation_rate: EscalationRateConfig = EscalationRateConfig()
    channel_silence: ChannelSilenceConfig = ChannelSilenceConfig()
    incident_cluster: IncidentClusterConfig = IncidentClusterConfig()
    feature_cluster: FeatureClusterConfig = FeatureClusterConfig()
    repeat_contact: RepeatContactConfig = RepeatContactConfig()
    repeat_rate: RepeatRateConfig = RepeatRateConfig()
    first_contact_resolution: FirstContactResolutionConfig = FirstContactResolutionConfig()
    misrouting: MisroutingConfig = MisroutingConfig()
    negative_csat: NegativeCsatConfig = NegativeCsatConfig()
    queue_risk: QueueRiskConfig = QueueRiskConfig()
    locale: Literal["en", "ru"] = "en"


def load_config(path: Path | None = None) -> DetectionConfig:
    """Read a TOML config; `None` reads the shipped default file."""
    with (path or DEFAULT_CONFIG_PATH).open("rb") as handle:
        return DetectionConfig.model_validate(tomllib.load(handle))
