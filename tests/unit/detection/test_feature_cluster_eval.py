"""Feature-request clusters against the labelled sets (bench/feature_cluster_eval.py prints the figures):
the goal of issue 12, independence from arrival order, and what happens when clusters meet and part."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.feature_cluster_eval import HELD_OUT, SET, Request, cluster, load, score
from processors.alerting import AlertBook
from processors.features import FeatureClusters, TermExtractor
from schemas.config import DetectionConfig, FeatureClusterConfig
from tests.unit.detection.helpers import msk

CONFIG = DetectionConfig()
REQUESTS = load(SET)
TERMS = TermExtractor(FeatureClusterConfig())


def test_the_set_is_what_the_goal_is_measured_on() -> None:
    needs = {r.need for r in REQUESTS if r.need}
    assert len(REQUESTS) >= 250
    assert len(needs) >= 25
    assert sum(r.need is None for r in REQUESTS) >= 20


def test_pairwise_precision_and_f1_meet_the_goal() -> None:
    scores = score(REQUESTS, cluster(REQUESTS, CONFIG))
    assert scores.precision >= 0.95, scores.merged
    assert scores.f1 >= 0.9, scores.split[:20]


def test_the_held_out_set_does_not_regress() -> None:
    # Written after the vocabulary was tuned, with five needs it does not know: a floor, not the goal
    # (the README reports the figure and what it means).
    requests = load(HELD_OUT)
    scores = score(requests, cluster(requests, CONFIG))
    assert scores.precision >= 0.8
    assert scores.recall >= 0.55


_SAMPLE = [r for r in REQUESTS if r.need in {"excel_export", "csv_orders", "sms_report", "sso"}] + [
    r for r in REQUESTS if r.need is None
][:10]


@settings(max_examples=30, deadline=None)
@given(st.permutations(_SAMPLE))
def test_the_same_requests_form_the_same_clusters_in_any_arrival_order(order: list[Request]) -> None:
    assert cluster(order, CONFIG) == cluster(_SAMPLE, CONFIG)


def test_word_forms_abbreviations_transliterations_and_languages_meet() -> None:
    clusters = FeatureClusters(CONFIG, AlertBook())
    pairs = [
        ("Нужна выгрузка отчётов в Excel", "Хотим выгружать отчёты в Эксель"),
        ("Добавьте вход через SSO", "Please support single sign-on"),
        ("We need 2FA on sign-in", "Добавьте двухфакторную аутентификацию"),
        ("Нужна выгрузка заказов в CSV", "Добавьте экспорт списка заказов в ЦСВ"),
        ("Нужна печать этикеток для возвратов", "Хотим печатать этикетки возврата"),
    ]
    for a, b in pairs:
        assert clusters.alike(TERMS.terms(a), TERMS.terms(b)), (a, b)


def test_different_needs_that_share_common_words_do_not_meet() -> None:
    clusters = FeatureClusters(CONFIG, AlertBook())
    pairs = [
        ("Добавьте отчёт в Excel", "Добавьте отчёт по SMS"),
        ("Нужна выгрузка отчётов в Excel", "Нужна выгрузка заказов в CSV"),
        ("Сделайте тёмную тему", "Нужен офлайн-режим в приложении"),
    ]
    for a, b in pairs:
        assert not clusters.alike(TERMS.terms(a), TERMS.terms(b)), (a, b)


def _ask(clusters: FeatureClusters, n: int, text: str, day: int = 2) -> list:  # type: ignore[type-arg]
    return clusters.request(f"e-{n}", f"T-{n}", f"c-{n}", text, msk(day, 10, n, month=11))


def test_a_request_alike_to_two_clusters_joins_them_and_the_younger_alert_resolves() -> None:
    clusters = FeatureClusters(CONFIG, AlertBook())
    for n in range(5):
        _ask(clusters, n, "Нужна выгрузка отчётов в Excel")
    for n in range(5, 10):
        _ask(clusters, n, "Please add export of orders to CSV")
    assert len(clusters.clusters) == 2
    older, younger = sorted(clusters.clusters.values(), key=lambda c: c.order)
    # "reports to Excel and orders to CSV" is alike to both: one cluster, the older id.
    alerts = _ask(clusters, 10, "Выгрузка отчётов в Excel и заказов в CSV")
    assert list(clusters.clusters) == [older.cluster_id]
    assert clusters.clusters[older.cluster_id].ticket_ids == [f"T-{n}" for n in range(11)]
    resolved = [a for a in alerts if a.status.value == "resolved"]
    assert [(a.subject, a.details["merged_into"]) for a in resolved] == [
        ({"cluster_id": younger.cluster_id}, older.cluster_id)
    ]
    (grown,) = [a for a in alerts if a.status.value == "firing"]
    assert grown.subject == {"cluster_id": older.cluster_id}
    assert grown.details["count"] == 11


def test_when_the_request_joining_two_groups_leaves_the_window_the_cluster_parts() -> None:
    clusters = FeatureClusters(CONFIG, AlertBook())
    _ask(clusters, 0, "Выгрузка отчётов в Excel и заказов в CSV", day=1)
    for n in range(1, 4):
        _ask(clusters, n, "Нужна выгрузка отчётов в Excel", day=2)
    for n in range(4, 6):
        _ask(clusters, n, "Please add export of orders to CSV", day=2)
    (whole,) = clusters.clusters.values()
    assert len(whole.members) == 6
    clusters.expire(msk(1, 10) + timedelta(days=30, minutes=1))  # the bridge is 30 days old
    pieces = sorted(([m.ticket_id for m in c.members] for c in clusters.clusters.values()), key=len)
    assert pieces == [["T-4", "T-5"], ["T-1", "T-2", "T-3"]]
    assert clusters.clusters[whole.cluster_id].ticket_ids == ["T-1", "T-2", "T-3"]  # the largest keeps it
    assert clusters._seen_tickets == {f"T-{n}" for n in range(1, 6)}
