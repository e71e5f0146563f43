"""How well feature requests are grouped: pairwise precision, recall and F1 of the clusters
`processors/features.py` forms over a labelled set of realistic requests in Russian and English
(`tests/data/feature_clusters.jsonl`: 27 needs, each asked for in 8-11 phrasings, word forms,
abbreviations, transliterations and languages, plus singletons, some of which share words with a need:
"выгрузка клиентской базы в Excel" is not "экспорт отчётов в Excel"; the shipped vocabulary was tuned on
it), on a held-out set written afterwards (`tests/data/feature_clusters_heldout.jsonl`: 84 requests, six
of the needs in new words and five needs the vocabulary does not know, plus near-miss singletons), and
whether the clusters depend on the order the requests arrive in.

    .venv/bin/python bench/feature_cluster_eval.py [--errors]

A pair of requests counts as found when both land in one cluster; precision is the share of pairs in one
cluster that share a need, recall the share of same-need pairs in one cluster. Goal (issue 12): F1 >= 0.9
and precision >= 0.95; tests/unit/detection/test_feature_cluster_eval.py holds it, and the order property.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processors.alerting import AlertBook
from processors.features import FeatureClusters
from schemas.config import DetectionConfig

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SET = DATA / "feature_clusters.jsonl"
HELD_OUT = DATA / "feature_clusters_heldout.jsonl"
START = datetime(2026, 11, 2, 9, tzinfo=UTC)


@dataclass(frozen=True)
class Request:
    index: int
    text: str
    need: str | None
    """None: a singleton (a need nobody else asked for)."""


@dataclass(frozen=True)
class PairScores:
    precision: float
    recall: float
    clusters: int
    split: list[tuple[str, str]]
    """Same-need pairs put apart (a sample, for --errors)."""
    merged: list[tuple[str, str]]
    """Different-need pairs put together."""

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def load(path: Path = SET) -> list[Request]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [Request(n, row["text"], row["group"]) for n, row in enumerate(rows)]


def cluster(requests: list[Request], config: DetectionConfig | None = None) -> list[frozenset[int]]:
    """Feed the requests in the given order (one customer each, a minute apart) and return the clusters
    as sets of request indexes (order-free, so two runs compare with ==)."""
    clusters = FeatureClusters(config or DetectionConfig(), AlertBook())
    for n, request in enumerate(requests):
        at = START + timedelta(minutes=n)
        clusters.request(f"e-{request.index}", f"T-{request.index}", f"c-{request.index}", request.text, at)
    return sorted(
        (frozenset(int(t.removeprefix("T-")) for t in c.ticket_ids) for c in clusters.clusters.values()),
        key=min,
    )


def score(requests: list[Request], found: list[frozenset[int]]) -> PairScores:
    by_index = {r.index: r for r in requests}
    groups: dict[str, list[int]] = defaultdict(list)
    for request in requests:
        if request.need is not None:
            groups[request.need].append(request.index)
    true_pairs = {frozenset(p) for members in groups.values() for p in combinations(members, 2)}
    found_pairs = {frozenset(p) for members in found for p in combinations(sorted(members), 2)}
    together = true_pairs & found_pairs
    precision = len(together) / len(found_pairs) if found_pairs else 1.0
    recall = len(together) / len(true_pairs) if true_pairs else 1.0

    def texts(pair: frozenset[int]) -> tuple[str, str]:
        a, b = sorted(pair)
        return by_index[a].text, by_index[b].text

    split = [texts(p) for p in sorted(true_pairs - found_pairs, key=sorted) if len(p) == 2]
    merged = [texts(p) for p in sorted(found_pairs - true_pairs, key=sorted)]
    return PairScores(precision, recall, len(found), split, merged)


def main() -> None:
    for path in (SET, HELD_OUT):
        requests = load(path)
        needs = {r.need for r in requests if r.need}
        singletons = sum(r.need is None for r in requests)
        print(f"{path.name}: {len(requests)} requests, {len(needs)} needs, {singletons} singletons")
        config = DetectionConfig()
        cluster(requests, config)  # the first run loads the Russian dictionary
        started = time.perf_counter()
        FeatureClusters(config, AlertBook())
        building = time.perf_counter() - started
        started = time.perf_counter()
        found = cluster(requests, config)
        took = time.perf_counter() - started - building
        scores = score(requests, found)
        print(
            f"  pairwise precision {scores.precision:.3f}  recall {scores.recall:.3f}  F1 {scores.f1:.3f}  "
            f"({scores.clusters} clusters, {took / len(requests) * 1e6:.0f} µs per request)"
        )
        rng = random.Random(12)
        orders = 20
        same = sum(cluster(rng.sample(requests, len(requests))) == found for _ in range(orders))
        print(f"  the same clusters in {same} of {orders} random arrival orders")
        if "--errors" in sys.argv:
            print("  put together, different needs:")
            for a, b in scores.merged:
                print(f"    {a}  <>  {b}")
            print("  put apart, same need (first 60):")
            for a, b in scores.split[:60]:
                print(f"    {a}  <>  {b}")


if __name__ == "__main__":
    main()
