"""One human sentence per alert, in English and Russian: `summary` in the configured `locale`, and both
in `summaries` (the notifier sends each as an annotation, so a message template can pick its language)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from mypy_extensions import mypyc_attr

_TEMPLATES: Final[dict[str, dict[str, str]]] = {
    "sla_first_response_at_risk": {
        "en": "Ticket {ticket_id} ({priority}, {channel}) is at risk: {percent}% of its {target} "
        "first-response target is used, due {due}.",
        "ru": "Тикет {ticket_id} ({priority}, {channel}) под угрозой: израсходовано {percent}% "
        "срока первого ответа {target}, срок {due}.",
    },
    "sla_first_response_queue": {
        "en": "Ticket {ticket_id} ({priority}, {channel}) is at risk: team {team}'s queue reaches it about "
        "{expected}, after its first-response due {due} (number {position} of {queued} waiting; one first "
        "reply every {per_reply} over the last hour, active agents: {agents}).",
        "ru": "Тикет {ticket_id} ({priority}, {channel}) под угрозой: очередь команды {team} дойдёт до него "
        "около {expected}, позже срока первого ответа {due} ({position}-й из {queued} ожидающих; за "
        "последний час один первый ответ каждые {per_reply}, активных агентов: {agents}).",
    },
    "sla_first_response_breached": {
        "en": "Ticket {ticket_id} ({priority}, {channel}) breached its {target} first-response target "
        "at {due}.",
        "ru": "Тикет {ticket_id} ({priority}, {channel}) нарушил срок первого ответа {target}: {due}.",
    },
    "sla_resolution_at_risk": {
        "en": "Ticket {ticket_id} ({priority}, {channel}) is at risk: {percent}% of its {target} "
        "resolution target is used, due {due}.",
        "ru": "Тикет {ticket_id} ({priority}, {channel}) под угрозой: израсходовано {percent}% "
        "срока решения {target}, срок {due}.",
    },
    "sla_resolution_breached": {
        "en": "Ticket {ticket_id} ({priority}, {channel}) breached its {target} resolution target at {due}.",
        "ru": "Тикет {ticket_id} ({priority}, {channel}) нарушил срок решения {target}: {due}.",
    },
    "volume_spike": {
        "en": "New contacts with {dimension} '{value}' rose {rise}% week over week ({current} vs "
        "{previous}).",
        "ru": "Новые обращения с {dimension} «{value}» выросли на {rise}% за неделю ({current} против "
        "{previous}).",
    },
    "resolution_time_spike": {
        "en": "Mean resolution time of '{value}' tickets rose {rise}% week over week ({current_hours} h "
        "vs {previous_hours} h).",
        "ru": "Среднее время решения тикетов «{value}» выросло на {rise}% за неделю ({current_hours} ч "
        "против {previous_hours} ч).",
    },
    "escalation_rate_high": {
        "en": "{percent}% of this week's '{value}' tickets were escalated ({escalated} of {tickets}).",
        "ru": "{percent}% тикетов «{value}» за неделю эскалированы ({escalated} из {tickets}).",
    },
    "fcr_low": {
        "en": "Only {percent}% of this week's resolved '{value}' tickets were resolved at first contact "
        "({first_contact} of {tickets}; target {limit}%).",
        "ru": "Лишь {percent}% решённых за неделю тикетов «{value}» решены с первого контакта "
        "({first_contact} из {tickets}; цель {limit}%).",
    },
    "misrouting_high": {
        "en": "Team {value} handed on {percent}% of the tickets it took first this week ({handed_on} of "
        "{tickets}; over {limit}%): tickets reach it that belong elsewhere.",
        "ru": "Команда {value} передала дальше {percent}% тикетов, взятых ею первой за неделю ({handed_on} "
        "из {tickets}; больше {limit}%): к ней попадают чужие тикеты.",
    },
    "repeat_rate_high": {
        "en": "{percent}% of this week's new '{value}' tickets are repeats of the customer's ticket on it "
        "within a week ({repeats} of {tickets}; over {limit}%).",
        "ru": "{percent}% новых за неделю тикетов «{value}» — повторные обращения клиента по той же теме "
        "в течение недели ({repeats} из {tickets}; больше {limit}%).",
    },
    "channel_silent": {
        "en": "No new contacts on {channel} for {silent_minutes} min; usually {expected} in this hour.",
        "ru": "Нет новых обращений в канале {channel} уже {silent_minutes} мин; обычно {expected} за "
        "этот час.",
    },
    "incident_cluster": {
        "en": "{customers} customers reported error {error_code} within {window} min ({tickets} tickets).",
        "ru": "{customers} клиентов сообщили об ошибке {error_code} за {window} мин (тикетов: {tickets}).",
    },
    "feature_request_cluster": {
        "en": '{customers} customers asked for the same feature: "{example}" ({count} requests).',
        "ru": "{customers} клиентов просят одну и ту же функцию: «{example}» (запросов: {count}).",
    },
    "negative_csat": {
        "en": "Ticket {ticket_id} got CSAT {score}/5; respond by {respond_by}.",
        "ru": "Тикет {ticket_id} получил оценку {score}/5; ответить до {respond_by}.",
    },
    "csat_response_overdue": {
        "en": "Ticket {ticket_id}: the CSAT {score}/5 given {rated} is still unanswered; it was due by "
        "{respond_by}.",
        "ru": "Тикет {ticket_id}: на оценку {score}/5 от {rated} так и не ответили; срок был до "
        "{respond_by}.",
    },
    "repeat_contact": {
        "en": "Customer {customer_id} opened ticket {ticket_id} on '{topic}' {gap} after "
        "ticket {previous_ticket_id}.",
        "ru": "Клиент {customer_id} открыл тикет {ticket_id} по теме «{topic}» через {gap} после "
        "тикета {previous_ticket_id}.",
    },
}


def local_time(instant: datetime, zone: ZoneInfo) -> str:
    """`2026-11-24 19:00 MSK`: the instant on the zone's wall clock, to the minute."""
    local = instant.astimezone(zone)
    return wall_clock(local, local.isoformat())


def wall_clock(local: datetime, iso: str) -> str:
    """`local_time` of a datetime already in its zone, given its isoformat (strftime costs 10x more)."""
    return f"{iso[:10]} {iso[11:16]} {local.tzname() or ''}".rstrip()


_UNITS: Final = {"en": ("min", "h", "days"), "ru": ("мин", "ч", "дн.")}


LOCALES: Final = ("en", "ru")


@mypyc_attr(native_class=False)
@dataclass(frozen=True, slots=True)
class Duration:
    """A length of time in a summary's values, written in each summary's language."""

    seconds: float
    days_from: float = math.inf
    """Written in days from this many seconds on (a repeat 3.5 days later, not "84 h"; one 3 hours
    later, not "0.1 days")."""


class Summary(NamedTuple):
    text: str
    """In the configured locale."""
    translations: dict[str, str]
    """In every locale of `LOCALES`."""


def duration_text(seconds: float, locale: str = "en", days_from: float = math.inf) -> str:
    minute, hour, day = _UNITS.get(locale, _UNITS["en"])
    if seconds >= days_from:
        return f"{seconds / 86400:.1f} {day}"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} {minute}"
    hours = seconds / 3600
    return f"{hours:g} {hour}" if hours == int(hours) else f"{hours:.1f} {hour}"


def summarize(rule: str, locale: str, values: dict[str, Any]) -> Summary:
    """The rule's sentence with `values` in every locale; a `Duration` value is written in each one's
    words."""
    templates = _TEMPLATES[rule]
    durations = [name for name, value in values.items() if isinstance(value, Duration)]
    translations = {}
    for language in LOCALES:
        local = values
        if durations:
            local = dict(values)
            for name in durations:
                duration = values[name]
                local[name] = duration_text(duration.seconds, language, duration.days_from)
        translations[language] = templates[language].format_map(local)
    return Summary(translations.get(locale, translations["en"]), translations)
