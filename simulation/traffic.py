"""A deterministic model of a B2B support organisation's contact traffic, for the demo and the tests.

Pure: a seed and the simulated instants asked for decide everything, so the same seed always yields the
same bytes. New tickets arrive as a Poisson process whose rate follows business hours in the support
team's time zone; each ticket then lives its life (assignment, replies, waits on the customer,
escalation, resolution, CSAT). Incidents bring many customers with one error code within minutes;
feature requests come in paraphrase families; planned anomalies add a topic's volume spike or silence a
channel. The simulator records every anomaly it injected (`injected`), so a test can require each one
found. A small share of records is deliberately broken or delivered twice, as real producers do.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson

from processors.calendar import AlwaysOpen, BusinessCalendar, SlaCalendar
from processors.features import FEATURE_REQUEST_CLUSTER
from processors.incidents import INCIDENT_CLUSTER, normalize_error_code
from processors.pii import Pseudonymizer
from processors.silence import CHANNEL_SILENT
from processors.sla import SlaTargets, sla_targets
from processors.ticket_state import TicketState
from processors.trends import VOLUME_SPIKE
from schemas.config import load_config
from schemas.event import BusinessImpact, ContactKind, CustomerTier, EventType, Priority, TicketStatus
from simulation.native_payloads import NATIVE_CHANNELS, native_source, native_ticket_id, render

MOSCOW: Final = ZoneInfo("Europe/Moscow")

# (topic, kind, category, russian text, english text)
_CONTACT_TEMPLATES: Final[Sequence[tuple[str, ContactKind, BusinessImpact, str, str]]] = (
    (
        "delivery",
        ContactKind.QUESTION,
        BusinessImpact.OPERATIONAL_COST,
        "Где мой заказ? Трек-номер не обновляется третий день.",
        "Where is my order? The tracking number has not moved for three days.",
    ),
    (
        "delivery",
        ContactKind.COMPLAINT,
        BusinessImpact.REVENUE_LOSS,
        "Курьер не приехал, клиенты ждут товар, мы теряем продажи.",
        "The courier never came, our customers are waiting and we are losing sales.",
    ),
    (
        "billing",
        ContactKind.QUESTION,
        BusinessImpact.OPERATIONAL_COST,
        "Пришёл счёт на двойную сумму за ноябрь, проверьте пожалуйста.",
        "We were invoiced twice for November, please check.",
    ),
    (
        "billing",
        ContactKind.COMPLAINT,
        BusinessImpact.REVENUE_LOSS,
        "Списали деньги за отключённый тариф, верните средства.",
        "You charged us for a plan we cancelled, please refund.",
    ),
    (
        "api_integration",
        ContactKind.INCIDENT,
        BusinessImpact.BLOCKS_PROCESS,
        "Не работает API, все запросы падают, склад стоит.",
        "The API is down, every request fails and our warehouse is blocked.",
    ),
    (
        "api_integration",
        ContactKind.QUESTION,
        BusinessImpact.DEVELOPMENT,
        "Как передать несколько адресов в одном запросе к API?",
        "How do we pass several addresses in one API request?",
    ),
    (
        "account",
        ContactKind.QUESTION,
        BusinessImpact.OPERATIONAL_COST,
        "Не могу добавить нового сотрудника в личный кабинет.",
        "I cannot add a new employee to our account.",
    ),
    (
        "reports",
        ContactKind.QUESTION,
        BusinessImpact.OPERATIONAL_COST,
        "Отчёт по отгрузкам показывает пустую таблицу за вчера.",
        "The shipments report shows an empty table for yesterday.",
    ),
    (
        "orders",
        ContactKind.ORDER,
        BusinessImpact.REVENUE_LOSS,
        "Хотим подключить ещё 20 лицензий, пришлите счёт.",
        "We want 20 more licences, please send an invoice.",
    ),
)

# Feature requests come in paraphrase families: same need, different words and languages.
_FEATURE_REQUESTS: Final[Sequence[Sequence[str]]] = (
    (
        "Добавьте, пожалуйста, экспорт отчётов в Excel.",
        "Нужна выгрузка отчетов в Excel",
        "Please add export of reports to Excel.",
        "Can you export the reports to Excel?",
        "Хотим экспортировать отчёты в Эксель.",
    ),
    (
        "Сделайте тёмную тему в личном кабинете.",
        "Нужна темная тема интерфейса",
        "Please add a dark theme to the dashboard.",
        "Dark mode for the dashboard would be great.",
    ),
    (
        "Добавьте двухфакторную аутентификацию для входа.",
        "Нужна двухфакторная авторизация",
        "Please add two-factor authentication for login.",
        "We need 2FA on sign-in.",
    ),
)

_FEATURE_REQUEST_SHARE: Final = 0.08
"""Of the tickets that are no incident: a feature request of one of the families above."""
_INCIDENT_CODES: Final = ("ERR-504", "ERR 502", "err-5031", "PAY-017")
_INCIDENT_TEXTS: Final = (
    "Ошибка {code} при оформлении заказа, ничего не работает!",
    "Getting {code} on every checkout since this morning.",
    "Срочно: {code}, клиенты не могут оплатить.",
    "Urgent, {code} when we call the orders API.",
)

_CHANNELS: Final = (
    ("email", 0.30),
    ("chat", 0.20),
    ("phone", 0.15),
    ("telegram", 0.12),
    ("whatsapp", 0.08),
    ("web_form", 0.10),
    ("social", 0.05),
)
_SOURCES: Final = {
    "email": "imap",
    "chat": "webchat",
    "phone": "pbx",
    "telegram": "telegram",
    "whatsapp": "whatsapp",
    "web_form": "zendesk",
    "social": "amocrm",
}
_TEAMS: Final = {
    "delivery": "logistics",
    "billing": "finance",
    "api_integration": "platform",
    "account": "tier1",
    "reports": "tier1",
    "orders": "sales",
    "product": "tier1",
}
_HOURLY_PROFILE: Final = (
    0.05,
    0.04,
    0.03,
    0.03,
    0.03,
    0.05,
    0.10,
    0.30,
    0.70,
    1.00,
    1.10,
    1.10,
    1.00,
    1.00,
    1.05,
    1.00,
    0.90,
    0.70,
    0.40,
    0.25,
    0.18,
    0.12,
    0.08,
    0.06,
)
_WEEKEND_FACTOR: Final = 0.2


def _rfc3339(instant: datetime) -> str:
    return instant.astimezone(MOSCOW).isoformat(timespec="seconds")


@dataclass(frozen=True)
class SimulatedRecord:
    """One Kafka record: key (ticket id), value (serialized event or a broken one), event time."""

    key: bytes
    value: bytes
    occurred_at: datetime
    valid: bool
    source: str | None = None
    """None: a normalized event for contacts.events; else the adapter whose native payload `value` is."""
    endpoint: str | None = None
    """Where a native payload is posted, under /ingest/ (`outbound/telegram` for a bot's reply)."""


@dataclass(frozen=True)
class VolumeSpike:
    """From `starts` to `ends`, a topic receives `extra` more of its usual new tickets (0.6: +60%)."""

    topic: str
    starts: datetime
    ends: datetime
    extra: float = 0.6


@dataclass(frozen=True)
class ChannelOutage:
    """From `starts` to `ends`, no new contact arrives on `channel` (its integration is down)."""

    channel: str
    starts: datetime
    ends: datetime


@dataclass(frozen=True)
class InjectedAnomaly:
    """What the simulator put in the stream, and the alert that should find it."""

    rule: str
    subject: dict[str, str] | None
    """The alert's subject, when the anomaly decides it (a feature cluster's id it does not)."""
    starts: datetime
    ends: datetime
    tickets: tuple[str, ...] = ()


@dataclass(order=True)
class _Scheduled:
    at: datetime
    seq: int
    event: dict[str, Any] = field(compare=False)


@dataclass
class TrafficSimulator:
    seed: int
    start: datetime
    new_tickets_per_peak_hour: float = 120.0
    incident_chance_per_business_hour: float = 0.15
    broken_share: float = 0.01
    duplicate_share: float = 0.01
    customers: int = 15000
    large_accounts: int = 300
    """Customers 1..large_accounts are large accounts: together they open `large_account_share` of the
    tickets. The rest open few each. A B2B base is skewed like this; with a uniform base every customer
    opened a ticket a day and most new tickets counted as repeat contacts (about 60%, against the 10-30%
    support teams see). Now about one in five does."""
    large_account_share: float = 0.1
    run_tag: str = ""
    """Goes into every ticket and event id, so two runs with one seed do not share ids."""
    native: bool = False
    """Render each ticket's first contact as its source would send it, where an adapter exists."""
    pii_key: bytes | None = None
    """With `native`: the worker's pseudonymization key, so the lifecycle that follows a native first
    contact continues on the ticket id the adapter derives (ids that name a person are keyed hashes)."""
    spikes: tuple[VolumeSpike, ...] = ()
    outages: tuple[ChannelOutage, ...] = ()

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if self.native and self.pii_key is None:
            raise ValueError("native payloads need the worker's pii_key to derive its ticket ids")
        self._pii = Pseudonymizer(self.pii_key) if self.pii_key is not None else None
        self._rng = random.Random(self.seed)
        self._id_prefix = f"{self.run_tag}-{self.seed}" if self.run_tag else str(self.seed)
        # Breakage and redelivery draw from their own stream, so that how `advance` is called (which
        # interleaves planning and emission) cannot change what is planned.
        self._delivery_rng = random.Random(self.seed + 1_000_003)
        self._cursor = self.start.replace(second=0, microsecond=0)
        self._queue: list[_Scheduled] = []
        self._seq = 0
        self._tickets = 0
        self._events = 0
        self._recent: list[bytes] = []
        self._key_customers = {f"cust-{n:04d}" for n in range(1, self.customers + 1) if n % 10 == 0}
        # Agents work to each ticket's targets, as the shipped SLA policies set them (see `_plan_lifecycle`).
        detection = load_config()
        self._sla = detection.sla
        self._calendars: dict[str, SlaCalendar] = {
            "24x7": AlwaysOpen(),
            "business": BusinessCalendar(detection.business_hours),
        }
        self._incidents: list[InjectedAnomaly] = []
        self._families: dict[int, list[str]] = {}
        self._topics = [template[0] for template in _CONTACT_TEMPLATES]

    @property
    def injected(self) -> list[InjectedAnomaly]:
        """Every anomaly in the stream so far: incidents, feature-request families, spikes, outages."""
        found = list(self._incidents)
        found += [
            InjectedAnomaly(FEATURE_REQUEST_CLUSTER, None, self.start, self._cursor, tuple(tickets))
            for _, tickets in sorted(self._families.items())
        ]
        found += [
            InjectedAnomaly(
                VOLUME_SPIKE, {"dimension": "topic", "value": spike.topic}, spike.starts, spike.ends
            )
            for spike in self.spikes
            if spike.starts < self._cursor
        ]
        found += [
            InjectedAnomaly(CHANNEL_SILENT, {"channel": outage.channel}, outage.starts, outage.ends)
            for outage in self.outages
            if outage.starts < self._cursor
        ]
        return found

    # -- public ---------------------------------------------------------------------------------------
    def advance(self, until: datetime) -> list[SimulatedRecord]:
        """Every record up to `until`, in event-time order.

        Arrivals are planned a whole minute at a time, so records of the minute `until` falls in wait for
        the next call. The stream is the same however the calls cut it.
        """
        while self._cursor + timedelta(minutes=1) <= until:
            self._plan_minute(self._cursor)
            self._cursor += timedelta(minutes=1)
        records: list[SimulatedRecord] = []
        while self._queue and self._queue[0].at <= until and self._queue[0].at < self._cursor:
            item = heapq.heappop(self._queue)
            records.extend(self._emit(item.at, item.event))
        return records

    # -- arrivals -------------------------------------------------------------------------------------
    def _rate_per_minute(self, minute: datetime) -> float:
        local = minute.astimezone(MOSCOW)
        factor = _HOURLY_PROFILE[local.hour] * (_WEEKEND_FACTOR if local.weekday() >= 5 else 1.0)
        return self.new_tickets_per_peak_hour * factor / 60.0

    def _poisson(self, lam: float) -> int:
        # Knuth's method: lam here is a few per minute at most.
        threshold, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self._rng.random()
            if p <= threshold:
                return k
            k += 1

    def _plan_minute(self, minute: datetime) -> None:
        for _ in range(self._poisson(self._rate_per_minute(minute))):
            self._open_ticket(minute + timedelta(seconds=self._rng.uniform(0, 59.999)))
        for spike in self.spikes:
            if spike.starts <= minute < spike.ends:
                # The topic's usual share of new tickets (feature requests aside), `extra` times over.
                share = (1 - _FEATURE_REQUEST_SHARE) * self._topics.count(spike.topic) / len(self._topics)
                for _ in range(self._poisson(self._rate_per_minute(minute) * share * spike.extra)):
                    at = minute + timedelta(seconds=self._rng.uniform(0, 59.999))
                    self._open_ticket(at, topic=spike.topic)
        local = minute.astimezone(MOSCOW)
        business = local.weekday() < 5 and 9 <= local.hour < 18
        if business and self._rng.random() < self.incident_chance_per_business_hour / 60.0:
            self._start_incident(minute)

    def _start_incident(self, minute: datetime) -> None:
        code = self._rng.choice(_INCIDENT_CODES)
        affected = self._rng.sample(range(1, self.customers + 1), k=self._rng.randint(6, 12))
        tickets = []
        for n in affected:
            text = self._rng.choice(_INCIDENT_TEXTS).format(code=code)
            at = minute + timedelta(seconds=self._rng.uniform(0, 20 * 60))
            tickets.append(self._open_ticket(at, customer=f"cust-{n:04d}", incident=(code, text)))
        subject = {"error_code": normalize_error_code(code)}
        self._incidents.append(
            InjectedAnomaly(
                INCIDENT_CLUSTER,
                subject,
                minute,
                minute + timedelta(minutes=20),
                tuple(t for t in tickets if t is not None),
            )
        )

    # -- a ticket's life ------------------------------------------------------------------------------
    def _schedule(self, at: datetime, event: dict[str, Any]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Scheduled(at, self._seq, event))

    def _pick_customer(self) -> str:
        rng = self._rng
        if rng.random() < self.large_account_share:
            number = rng.randint(1, self.large_accounts)
        else:
            number = rng.randint(self.large_accounts + 1, self.customers)
        return f"cust-{number:04d}"

    def _pick_channel(self) -> str:
        roll, acc = self._rng.random(), 0.0
        for channel, weight in _CHANNELS:
            acc += weight
            if roll < acc:
                return channel
        return _CHANNELS[-1][0]

    def _open_ticket(
        self,
        at: datetime,
        customer: str | None = None,
        incident: tuple[str, str] | None = None,
        topic: str | None = None,
    ) -> str | None:
        """Plan a new ticket's life; its id, or None when its channel is down (the contact never
        arrives)."""
        rng = self._rng
        self._tickets += 1
        ticket = f"T-{self._id_prefix}-{self._tickets:06d}"
        customer = customer or self._pick_customer()
        channel = self._pick_channel()
        if self._down(channel, at):
            return None
        native = self.native and channel in NATIVE_CHANNELS
        source_id = None
        source = _SOURCES[channel]
        if native:
            assert self._pii is not None
            source = native_source(channel, self._tickets)
            if source == "jira":
                channel = "other"  # as the Jira adapter labels a request: JSM does not say where it came from
            derived = native_ticket_id(source, self._id_prefix, self._tickets, self._pii)
            if derived is not None:
                ticket, source_id = derived
        russian = rng.random() < 0.7
        event: dict[str, Any] = {
            "type": EventType.CONTACT_RECEIVED,
            "ticket_id": ticket,
            "channel": channel,
            "source": source,
            "customer_id": customer,
            "customer_tier": CustomerTier.KEY if customer in self._key_customers else CustomerTier.STANDARD,
            "product_version": rng.choice(("5.2.1", "5.3.0", "5.3.1")),
        }
        if incident is not None:
            code, text = incident
            event.update(
                kind=ContactKind.INCIDENT,
                category=BusinessImpact.BLOCKS_PROCESS,
                topic="api_integration",
                error_code=code,
                subject=text[:60],
                text=text,
            )
        elif topic is None and rng.random() < _FEATURE_REQUEST_SHARE:
            family = rng.randrange(len(_FEATURE_REQUESTS))
            text = rng.choice(_FEATURE_REQUESTS[family])
            self._families.setdefault(family, []).append(ticket)
            event.update(
                kind=ContactKind.FEATURE_REQUEST,
                category=BusinessImpact.DEVELOPMENT,
                topic="product",
                subject=text[:60],
                text=text,
            )
        else:
            templates = _CONTACT_TEMPLATES
            if topic is not None:
                templates = tuple(template for template in templates if template[0] == topic)
            chosen, kind, category, ru, en = rng.choice(templates)
            text = ru if russian else en
            event.update(kind=kind, category=category, topic=chosen, subject=text[:60], text=text)
        if rng.random() < 0.3:
            event["priority"] = rng.choice((Priority.P1, Priority.P2, Priority.P3, Priority.P3, Priority.P4))
        # A native ticket's events carry what its rendering needs (underscored: never in an event).
        rendering: dict[str, Any] = {}
        if native:
            rendering = {"_native": True, "_customer": customer, "_priority": event.get("priority")}
            if source_id is not None:
                rendering["_source_id"] = source_id  # what the source itself calls the ticket
        self._schedule(at, {**event, **rendering, "_first": True} if native else event)
        self._plan_lifecycle(at, event, rendering)
        return ticket

    def _targets(self, opened: datetime, event: dict[str, Any]) -> tuple[SlaTargets | None, SlaCalendar]:
        """The targets the detectors will hold this ticket to (the same policy choice, one function)."""
        priority = event.get("priority")
        state = TicketState(
            ticket_id=str(event["ticket_id"]),
            opened_at=opened,
            first_seen_mid_life=False,
            last_event_at=opened,
            last_event_ts=opened.timestamp(),
            channel=str(event["channel"]),
            customer_tier=CustomerTier(event["customer_tier"]) if event.get("customer_tier") else None,
            category=BusinessImpact(event["category"]) if event.get("category") else None,
            kind=ContactKind(event["kind"]) if event.get("kind") else None,
            explicit_priority=Priority(priority) if priority else None,
        )
        targets = sla_targets(self._sla, state)
        return targets, self._calendars[targets.calendar if targets else "business"]

    def _fraction(self, shares: tuple[float, float, float]) -> float:
        """How much of a target an agent uses: most answer well within it, some late in it (an at-risk
        alert, then met), a few miss it. `shares` = (well within, late but met, missed)."""
        roll = self._rng.random()
        if roll < shares[0]:
            return self._rng.uniform(0.05, 0.7)
        if roll < shares[0] + shares[1]:
            return self._rng.uniform(0.76, 0.97)
        return self._rng.uniform(1.05, 1.8)

    def _plan_lifecycle(self, opened: datetime, event: dict[str, Any], rendering: dict[str, Any]) -> None:
        """The ticket's story, calibrated to what support teams report: about 90-95% of tickets meet
        their first-response target and 95-98% their resolution target (a few percent are at risk and
        then met), ~10% escalate, about a fifth need more than one exchange (first-contact resolution
        near 76%, above the 70-75% industry average), CSAT mostly 4-5 with 5-10% at 1-2, most of those
        called back within the working day."""
        rng = self._rng
        ticket, channel, topic = str(event["ticket_id"]), str(event["channel"]), str(event["topic"])
        team = _TEAMS.get(topic, "tier1")
        agent = f"agent-{rng.randint(1, 25):02d}"
        base = {
            "ticket_id": ticket,
            "channel": channel,
            "source": event["source"],
            "topic": topic,
            **rendering,
        }
        targets, calendar = self._targets(opened, event)
        first_target = targets.first_response_seconds if targets else 4 * 3600.0
        resolution_target = targets.resolution_seconds if targets else 27 * 3600.0
        replied = calendar.add(opened, self._fraction((0.88, 0.07, 0.05)) * first_target)
        assigned = opened + (replied - opened) * rng.uniform(0.2, 0.8)
        self._schedule(assigned, {**base, "type": EventType.ASSIGNED, "team": team, "agent": agent})
        self._schedule(replied, {**base, "type": EventType.AGENT_REPLIED, "agent": agent})
        fast = channel in ("chat", "phone", "telegram", "whatsapp")
        cursor = replied
        paused = timedelta()
        # The conversation: about a fifth of tickets need the customer to say more and the agent to
        # answer again, some of those more than once (about 5.5 events per ticket in all).
        while rng.random() < 0.22:
            cursor = calendar.add(cursor, rng.uniform(0.02, 0.12) * resolution_target)
            self._schedule(
                cursor, {**base, "type": EventType.CONTACT_RECEIVED, "text": "Уточнение / follow-up"}
            )
            cursor += timedelta(minutes=rng.expovariate(1 / (4 if fast else 20)))
            self._schedule(cursor, {**base, "type": EventType.AGENT_REPLIED, "agent": agent})
        if rng.random() < 0.2:
            # Waiting on the customer pauses the resolution clock.
            self._schedule(
                cursor, {**base, "type": EventType.STATUS_CHANGED, "status": TicketStatus.WAITING_CUSTOMER}
            )
            paused = timedelta(hours=rng.uniform(0.5, 20))
            cursor += paused
            self._schedule(
                cursor, {**base, "type": EventType.CONTACT_RECEIVED, "text": "Ответ клиента / reply"}
            )
            self._schedule(
                cursor, {**base, "type": EventType.STATUS_CHANGED, "status": TicketStatus.IN_PROGRESS}
            )
        if rng.random() < 0.10:
            cursor += timedelta(minutes=rng.uniform(5, 90))
            self._schedule(cursor, {**base, "type": EventType.ESCALATED, "team": "tier2", "agent": agent})
        due = calendar.add(opened, self._fraction((0.93, 0.04, 0.03)) * resolution_target) + paused
        resolved = max(due, cursor + timedelta(minutes=rng.uniform(2, 30)))
        self._schedule(resolved, {**base, "type": EventType.STATUS_CHANGED, "status": TicketStatus.RESOLVED})
        if rng.random() < 0.4:
            score = rng.choices((5, 4, 3, 2, 1), weights=(55, 27, 10, 5, 3))[0]
            rated = resolved + timedelta(hours=rng.uniform(0.1, 6))
            self._schedule(rated, {**base, "type": EventType.CSAT_SUBMITTED, "score": score})
            if score <= 2 and rng.random() < 0.85:
                # Most teams call back an unhappy customer within the working day; a few forget.
                answer = self._calendars["business"].add(rated, rng.uniform(0.5, 6) * 3600)
                self._schedule(answer, {**base, "type": EventType.AGENT_REPLIED, "agent": agent})

    def _down(self, channel: str, at: datetime) -> bool:
        return any(o.channel == channel and o.starts <= at < o.ends for o in self.outages)

    # -- serialization, breakage, redelivery ---------------------------------------------------------
    def _emit(self, at: datetime, event: dict[str, Any]) -> list[SimulatedRecord]:
        if self.outages and event["type"] == EventType.CONTACT_RECEIVED and self._down(event["channel"], at):
            return []  # a customer's message on a channel that is down never arrives
        # Ids are numbered in emission order, so they are stable for a seed.
        self._events += 1
        if event.get("_native"):
            native = render(event, at)
            if native is not None:
                key = str(event["ticket_id"]).encode()
                return [SimulatedRecord(key, native.body, at, True, native.source, native.endpoint)]
        event = {key: value for key, value in event.items() if not key.startswith("_")}
        event = {
            "event_id": f"sim-{self._id_prefix}-{self._events:08d}",
            "occurred_at": _rfc3339(at),
            **event,
        }
        key = str(event["ticket_id"]).encode()
        value = orjson.dumps(event)
        records = [SimulatedRecord(key, value, at, valid=True)]
        roll = self._delivery_rng.random()
        if roll < self.broken_share:
            records.append(SimulatedRecord(key, self._break(event), at, valid=False))
        elif roll < self.broken_share + self.duplicate_share and self._recent:
            # Redelivery: the exact bytes of a recent event, as an at-least-once producer sends them.
            records.append(SimulatedRecord(key, self._delivery_rng.choice(self._recent), at, valid=True))
        self._recent = [*self._recent[-49:], value]
        return records

    def _break(self, event: dict[str, Any]) -> bytes:
        broken = dict(event, event_id=str(event["event_id"]) + "-broken")
        flaw = self._delivery_rng.randrange(5)
        if flaw == 0:
            return orjson.dumps(broken)[:-7]  # truncated JSON
        if flaw == 1:
            broken.pop("ticket_id")
        elif flaw == 2:
            broken["channel"] = "pigeon"
        elif flaw == 3:
            broken["occurred_at"] = "24.11.2026 10:00"
        else:
            broken["type"] = "contact_recieved"
        return orjson.dumps(broken)


def realistic_month(seed: int = 7) -> TrafficSimulator:
    """Thirty days from Monday 5 October 2026 (MSK) of the calibrated organisation, with the anomalies a
    month brings: incidents and feature-request families as every run has them, the delivery topic's
    new tickets up 60% through the third week (a week-over-week spike), and web chat down 10:00-13:00 on
    the fourth Wednesday (a silent channel). Advance it to `realistic_month_end()`."""
    start = datetime(2026, 10, 5, tzinfo=MOSCOW)
    return TrafficSimulator(
        seed=seed,
        start=start,
        spikes=(VolumeSpike("delivery", start + timedelta(days=14), start + timedelta(days=21)),),
        outages=(
            ChannelOutage("chat", start + timedelta(days=23, hours=10), start + timedelta(days=23, hours=13)),
        ),
    )


def realistic_month_end() -> datetime:
    return datetime(2026, 10, 5, tzinfo=MOSCOW) + timedelta(days=30)
