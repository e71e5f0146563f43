from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest

from processors.alerting import AlertBook
from processors.features import FeatureClusters, TermExtractor, _Request
from processors.incidents import normalize_error_code
from schemas.alert import Audience, Severity
from schemas.config import FeatureClusterConfig
from simulation.traffic import _FEATURE_REQUESTS
from tests.unit.detection.helpers import Run, config, event, msk


@pytest.mark.parametrize("raw", ["ERR-504", "err 504", " Err_504 ", "ERR  -  504", "err.504"])
def test_error_codes_normalize_to_one_form(raw: str) -> None:
    assert normalize_error_code(raw) == "ERR-504"


def report(n: int, minute: int, code: str = "ERR 504", customer: str | None = None, hour: int = 10):
    return event(
        "contact_received",
        msk(24, hour, minute),
        ticket=f"I-{n}",
        customer_id=customer or f"c-{n}",
        error_code=code,
        kind="incident",
    )


def test_five_customers_one_code_in_thirty_minutes_is_an_incident() -> None:
    run = Run()
    codes = ["ERR 504", "err-504", "ERR_504", "Err 504", "ERR-504"]
    run.feed(*[report(n, 5 * n, code) for n, code in enumerate(codes)])
    (alert,) = run.of("incident_cluster")
    assert alert.subject == {"error_code": "ERR-504"}
    assert alert.severity is Severity.CRITICAL
    assert alert.starts_at == msk(24, 10, 20)
    assert alert.details["ticket_ids"] == ["I-0", "I-1", "I-2", "I-3", "I-4"]
    # The incident grows: same id, one more ticket to merge.
    run.feed(report(5, 40))
    grown = run.of("incident_cluster")[-1]
    assert grown.alert_id == alert.alert_id
    assert grown.details["ticket_ids"][-1] == "I-5"
    # Resolves 30 minutes after the last report.
    run.advance(msk(24, 11, 30))
    resolved = run.of("incident_cluster")[-1]
    assert (resolved.status.value, resolved.ends_at) == ("resolved", msk(24, 11, 10))


def test_one_customer_reporting_five_times_is_not_an_incident() -> None:
    run = Run()
    run.feed(*[report(n, n, customer="same") for n in range(5)])
    run.feed(*[report(n, 10 + n) for n in range(10, 13)])  # three more customers: four in all
    assert run.of("incident_cluster") == []


def test_reports_spread_over_more_than_thirty_minutes_are_not_an_incident() -> None:
    run = Run()
    run.feed(*[report(n, 8 * n) for n in range(5)])  # 0, 8, 16, 24, 32 minutes
    assert run.of("incident_cluster") == []


def test_a_later_incident_with_the_same_code_is_a_new_alert() -> None:
    run = Run()
    run.feed(*[report(n, n) for n in range(5)])
    run.feed(*[report(10 + n, n, hour=14) for n in range(5)])
    firing = [a for a in run.of("incident_cluster") if a.status.value == "firing"]
    assert len({a.alert_id for a in firing}) == 2


@pytest.fixture(scope="module")
def extractor() -> TermExtractor:
    return TermExtractor(FeatureClusterConfig())


def test_terms_fold_morphology_case_yo_and_synonyms(extractor: TermExtractor) -> None:
    a = extractor.terms("Добавьте, пожалуйста, ЭКСПОРТ отчётов в Excel!")
    b = extractor.terms("Нужна выгрузка отчетов в эксель")
    c = extractor.terms("Please add export of reports to Excel.")
    assert a == b == c
    assert extractor.similarity(a, extractor.terms("Сделайте тёмную тему")) == 0.0


REQUESTS = [
    "Добавьте, пожалуйста, экспорт отчётов в Excel.",
    "Нужна выгрузка отчетов в Excel",
    "Please add export of reports to Excel.",
    "Can you export the reports to Excel?",
    "Хотим экспортировать отчёты в Эксель.",
]


def feature(n: int, text: str, customer: str | None = None, day: int = 24):
    return event(
        "contact_received",
        msk(day, 10, n),
        ticket=f"F-{day}-{n}",
        customer_id=customer or f"c-{n}",
        kind="feature_request",
        text=text,
    )


def test_five_customers_asking_for_the_same_feature_in_different_words() -> None:
    run = Run()
    run.feed(*[feature(n, text) for n, text in enumerate(REQUESTS)])
    (alert,) = run.of("feature_request_cluster")
    assert alert.audience is Audience.PRODUCT
    assert alert.details["count"] == 5
    assert alert.details["customers"] == ["c-0", "c-1", "c-2", "c-3", "c-4"]
    assert alert.details["examples"] == REQUESTS
    run.feed(feature(7, "Выгрузка отчётов в xlsx очень нужна"))
    grown = run.of("feature_request_cluster")[-1]
    assert grown.alert_id == alert.alert_id
    assert grown.details["count"] == 6


def test_unrelated_requests_are_not_merged_to_reach_five() -> None:
    run = Run()
    run.feed(
        *[
            feature(n, text)
            for n, text in enumerate(
                [
                    "Добавьте экспорт отчётов в Excel",
                    "Сделайте тёмную тему в личном кабинете",
                    "Please add two-factor authentication for login",
                    "Нужна интеграция с 1С",
                    "Add a mobile app for couriers",
                    "Хотим API для выгрузки накладных",
                ]
            )
        ]
    )
    assert run.of("feature_request_cluster") == []


def test_one_customer_asking_five_times_is_not_a_cluster() -> None:
    run = Run()
    run.feed(*[feature(n, text, customer="same") for n, text in enumerate(REQUESTS)])
    assert run.of("feature_request_cluster") == []


def test_requests_older_than_thirty_days_do_not_count() -> None:
    within = Run()
    within.feed(*[feature(n, text, day=1 + n) for n, text in enumerate(REQUESTS)])  # 1-5 November
    assert len(within.of("feature_request_cluster")) == 1

    spread = Run()
    spread.feed(*[feature(n, text, day=1) for n, text in enumerate(REQUESTS[:3])])
    spread.feed(
        *[
            event(
                "contact_received",
                msk(1, 12, n, month=12),
                ticket=f"late-{n}",
                customer_id=f"x-{n}",
                kind="feature_request",
                text=text,
            )
            for n, text in enumerate(REQUESTS[3:])
        ]
    )
    assert spread.of("feature_request_cluster") == []


def test_negative_csat_asks_for_a_response_within_one_business_day() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(27, 14), priority="p2"),
        event("agent_replied", msk(27, 14, 10)),
        event("status_changed", msk(27, 14, 30), status="resolved"),
        event("csat_submitted", msk(27, 15), score=2),  # Friday 15:00
    )
    (alert,) = run.of("negative_csat")
    assert alert.severity is Severity.WARNING
    assert alert.details["respond_by"] == msk(30, 15).isoformat()  # Monday 15:00
    run.feed(event("agent_replied", msk(30, 10)))
    assert run.states("negative_csat")[-1] == ("resolved", msk(27, 15), msk(30, 10))


def test_a_negative_csat_unanswered_by_its_respond_by_instant_is_overdue_until_the_reply() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(27, 14), priority="p2"),
        event("agent_replied", msk(27, 14, 10)),
        event("status_changed", msk(27, 14, 30), status="resolved"),
        event("csat_submitted", msk(27, 15), score=1),  # Friday 15:00: due Monday 15:00
    )
    run.advance(msk(30, 14, 59))
    assert run.of("csat_response_overdue") == []
    run.advance(msk(30, 16))
    (overdue,) = run.of("csat_response_overdue")
    assert (overdue.status.value, overdue.starts_at) == ("firing", msk(30, 15))
    assert overdue.subject == {"ticket_id": "T-1"}
    assert overdue.summary == (
        "Ticket T-1: the CSAT 1/5 given 2026-11-27 15:00 MSK is still unanswered; it was due by "
        "2026-11-30 15:00 MSK."
    )
    assert overdue.details["rated_at"] == msk(27, 15).isoformat()
    run.feed(event("agent_replied", msk(30, 17)))
    assert run.states("csat_response_overdue")[-1] == ("resolved", msk(30, 15), msk(30, 17))
    assert run.states("negative_csat")[-1] == ("resolved", msk(27, 15), msk(30, 17))


def test_a_negative_csat_answered_in_time_is_never_overdue() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(27, 14)),
        event("csat_submitted", msk(27, 15), score=2),
        event("agent_replied", msk(30, 11)),
        event("csat_submitted", msk(30, 12), score=5),  # the customer is happy now
    )
    run.advance(msk(30, 23))
    assert run.of("csat_response_overdue") == []
    assert len(run.of("negative_csat")) == 2  # fired, then resolved at the reply


def test_a_second_bad_rating_restarts_the_respond_by_clock() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(24, 10)),
        event("csat_submitted", msk(24, 11), score=2),  # due Wednesday 11:00
        event("csat_submitted", msk(24, 17), score=1),  # due Wednesday 17:00
    )
    run.advance(msk(25, 16))
    assert run.of("csat_response_overdue") == []
    run.advance(msk(25, 18))
    (overdue,) = run.of("csat_response_overdue")
    assert (overdue.starts_at, overdue.details["score"]) == (msk(25, 17), 1)


def test_csat_after_hours_counts_from_the_next_opening() -> None:
    run = Run()
    run.feed(event("contact_received", msk(24, 19)), event("csat_submitted", msk(24, 20), score=1))
    assert run.of("negative_csat")[0].details["respond_by"] == msk(25, 18).isoformat()


def test_good_csat_is_not_an_alert() -> None:
    run = Run()
    run.feed(event("contact_received", msk(24, 10)), event("csat_submitted", msk(24, 11), score=3))
    assert run.of("negative_csat") == []


def test_repeat_contact_within_seven_days_on_the_same_topic() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(20, 10), ticket="A", customer_id="c1", topic="billing"),
        event("contact_received", msk(24, 10), ticket="B", customer_id="c1", topic="billing"),
        event("contact_received", msk(24, 11), ticket="C", customer_id="c1", topic="delivery"),
        event("contact_received", msk(24, 12), ticket="D", customer_id="c2", topic="billing"),
    )
    (alert,) = run.of("repeat_contact")
    assert alert.subject == {"customer_id": "c1", "topic": "billing"}
    assert alert.details["previous_ticket_id"] == "A"
    assert alert.details["ticket_id"] == "B"
    assert alert.summaries["en"] == "Customer c1 opened ticket B on 'billing' 4.0 days after ticket A."
    assert alert.summaries["ru"] == "Клиент c1 открыл тикет B по теме «billing» через 4.0 дн. после тикета A."
    run.feed(event("status_changed", msk(24, 15), ticket="B", status="resolved"))
    assert run.states("repeat_contact")[-1] == ("resolved", msk(24, 10), msk(24, 15))


def test_a_repeat_within_a_day_says_how_many_hours_not_zero_days() -> None:
    """The quickstart said "0.0 days after ticket ..." for a repeat three hours later."""
    run = Run()
    run.feed(
        event("contact_received", msk(24, 9), ticket="A", customer_id="c1", topic="billing"),
        event("contact_received", msk(24, 12), ticket="B", customer_id="c1", topic="billing"),
        event("contact_received", msk(24, 12, 40), ticket="C", customer_id="c1", topic="billing"),
    )
    first, second = run.of("repeat_contact")
    assert first.summaries["en"] == "Customer c1 opened ticket B on 'billing' 3 h after ticket A."
    assert first.summaries["ru"] == "Клиент c1 открыл тикет B по теме «billing» через 3 ч после тикета A."
    assert second.summaries["en"] == "Customer c1 opened ticket C on 'billing' 40 min after ticket B."


def test_a_new_ticket_after_seven_days_is_not_a_repeat() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(16, 10), ticket="A", customer_id="c1", topic="billing"),
        event("contact_received", msk(23, 10, 1), ticket="B", customer_id="c1", topic="billing"),
    )
    assert run.of("repeat_contact") == []


def test_follow_up_messages_on_the_same_ticket_are_not_repeats() -> None:
    run = Run()
    run.feed(
        event("contact_received", msk(24, 10), ticket="A", customer_id="c1", topic="billing"),
        event("contact_received", msk(24, 12), ticket="A", customer_id="c1", topic="billing"),
    )
    assert run.of("repeat_contact") == []


class _EveryRequest(FeatureClusters):
    """The reference: every stored request is compared (what the term-set index must reproduce)."""

    def _joined_clusters(self, request: _Request) -> set[str]:
        return {
            self._cluster_of[ticket]
            for ticket, other in self._requests.items()
            if self.alike(request.terms, other.terms)
        }


def test_the_term_index_clusters_exactly_like_comparing_with_every_request() -> None:
    rng = random.Random(3)
    words = [
        "export",
        "excel",
        "report",
        "api",
        "token",
        "webhook",
        "dashboard",
        "filter",
        "csv",
        "pdf",
        "dark",
        "theme",
        "sso",
        "mobile",
    ]
    texts = [text for family in _FEATURE_REQUESTS for text in family]
    texts += [" ".join(rng.sample(words, rng.randint(1, 4))) for _ in range(150)]
    cfg = config()
    indexed, reference = FeatureClusters(cfg, AlertBook()), _EveryRequest(cfg, AlertBook())
    at = msk(1, 9)
    for n in range(600):
        text, customer = rng.choice(texts), f"c-{rng.randint(1, 40)}"
        at += timedelta(minutes=rng.randint(1, 180))
        for clusters in (indexed, reference):
            alerts = clusters.request(f"e-{n}", f"T-{n}", customer, text, at)
            assert all(a.rule == "feature_request_cluster" for a in alerts)
        if n % 50 == 0:
            assert [a.to_json() for a in indexed.expire(at)] == [a.to_json() for a in reference.expire(at)]
    assert {c: [m.ticket_id for m in k.members] for c, k in indexed.clusters.items()} == {
        c: [m.ticket_id for m in k.members] for c, k in reference.clusters.items()
    }
    assert len(indexed.clusters) > 10
    # The index the detector keeps through merges, splits and expiry is the one its requests give.
    recount: dict[frozenset[str], Counter[str]] = {}
    for ticket, request in indexed._requests.items():
        recount.setdefault(request.terms, Counter())[indexed._cluster_of[ticket]] += 1
    assert indexed._holders == recount


class _Counting(FeatureClusters):
    compared = 0

    def alike(self, a: frozenset[str], b: frozenset[str]) -> bool:
        self.compared += 1
        return super().alike(a, b)


def test_a_request_is_compared_once_with_each_wording_not_with_each_request() -> None:
    """A large cluster of requests worded alike, and a request that shares a term with them without
    being alike: one comparison (comparing it with every member cost the detector more the larger the
    cluster grew)."""
    clusters = _Counting(config(), AlertBook())
    at = msk(1, 9)
    for n in range(300):
        clusters.request(f"e-{n}", f"T-{n}", f"c-{n % 60}", "Add export of invoices to Excel", at)
        at += timedelta(minutes=1)
    assert [len(c.members) for c in clusters.clusters.values()] == [300]
    clusters.compared = 0
    clusters.request("e-x", "T-x", "c-x", "Excel dark theme for the mobile app", at)
    assert clusters.compared == 1
    assert sorted(len(c.members) for c in clusters.clusters.values()) == [1, 300]


def test_requests_leave_their_cluster_after_thirty_days_and_empty_clusters_go() -> None:
    clusters = FeatureClusters(config(), AlertBook())
    for n, text in enumerate(REQUESTS):
        clusters.request(f"e-{n}", f"T-{n}", f"c-{n}", text, msk(1, 10 + n))
    assert [len(c.members) for c in clusters.clusters.values()] == [5]
    resolved = clusters.expire(msk(1, 12, month=12))  # 30 days after the first three requests
    assert [(a.status, a.details["count"]) for a in resolved] == [("resolved", 2)]
    assert [len(c.members) for c in clusters.clusters.values()] == [2]
    # The lists every update of the alert carries follow the members out.
    assert resolved[0].details["ticket_ids"] == ["T-3", "T-4"]
    assert resolved[0].details["customers"] == ["c-3", "c-4"]
    assert clusters.expire(msk(2, 0, month=12)) == []
    assert clusters.clusters == {}
    assert clusters._by_term == {}
    assert clusters._holders == {}
    assert clusters._seen_tickets == set()


def test_a_large_incident_lists_its_latest_fifty_tickets_and_counts_them_all() -> None:
    """Every report re-sends the alert: listing every ticket made each update grow without bound (a
    feature cluster of 3,000 requests sent 57 kB an update; about 60,000 pass Kafka's 1 MiB limit)."""
    run = Run()
    run.feed(*[report(n, n % 60, hour=10 + n // 60) for n in range(120)])
    latest = run.of("incident_cluster")[-1]
    assert latest.details["ticket_ids"] == [f"I-{n}" for n in range(70, 120)]
    assert latest.details["ticket_ids_total"] == 120
    assert latest.details["customers"] == 120
    assert "120 tickets" in latest.summaries["en"]


def test_a_large_feature_cluster_lists_fifty_tickets_and_customers_and_counts_them_all() -> None:
    run = Run()
    wordings = [*REQUESTS, "Выгрузка отчётов в xlsx очень нужна"]
    run.feed(*[feature(n, wordings[n % len(wordings)], customer=f"c-{n:03}") for n in range(59)])
    run.feed(*[feature(n, wordings[n % len(wordings)], day=25, customer=f"c-{n:03}") for n in range(59)])
    latest = run.of("feature_request_cluster")[-1]
    assert latest.details["count"] == latest.details["ticket_ids_total"] == 118
    assert latest.details["ticket_ids"] == [f"F-25-{n}" for n in range(9, 59)]
    assert latest.details["customers"] == [f"c-{n:03}" for n in range(50)]
    assert latest.details["customers_total"] == 59


def test_a_long_repeat_streak_lists_its_latest_fifty_tickets_and_counts_them_all() -> None:
    run = Run()
    run.feed(
        *[
            event(
                "contact_received",
                msk(20, 9) + timedelta(minutes=n),
                ticket=f"R-{n}",
                customer_id="c1",
                topic="billing",
            )
            for n in range(60)
        ]
    )
    latest = run.of("repeat_contact")[-1]
    assert latest.details["ticket_ids"] == [f"R-{n}" for n in range(10, 60)]
    assert latest.details["ticket_ids_total"] == 60
    assert latest.details["ticket_id"] == "R-59"
