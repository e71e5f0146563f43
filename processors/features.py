"""`feature_request_cluster` (audience product, subject `{"cluster_id"}`): the same ask from many customers.

A request's text becomes a set of terms: lower case, ё -> е, punctuation dropped, each word stemmed by
the Snowball stemmer of its script (Russian or English, from the maintained `snowballstemmer`
package), stopwords ("please", "добавьте", ...) dropped and configured synonyms folded into one term
(so "выгрузка" and "export" meet). A request joins the cluster whose members it resembles most
(average Dice coefficient >= 0.5 and at least 2 shared terms with the best member), else it starts
one. Average linkage keeps a chain of loosely related requests from merging unrelated ones.

Fires when a cluster holds 5 requests from 5 distinct customers within 30 days; the alert is re-sent
with the same id as the cluster grows. Resolves when the 30-day window no longer holds that many.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from processors.alerting import AlertBook, changes
from processors.detector import Observation, WithoutDeadlines
from processors.stemming import HYPHENATED_WORD, Stemmer, words
from processors.summaries import summarize
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig, FeatureClusterConfig
from schemas.event import ContactKind, EventType

FEATURE_REQUEST_CLUSTER = "feature_request_cluster"
_LINKAGE_SAMPLE = 20


class TermExtractor:
    def __init__(self, config: FeatureClusterConfig) -> None:
        self._stemmer = Stemmer()
        self._stop = set(self._stemmer.stems(words(" ".join(config.stopwords), HYPHENATED_WORD)))
        self._canonical: dict[str, str] = {}
        for group in config.synonyms:
            stems = self._stemmer.stems(words(" ".join(group), HYPHENATED_WORD))
            for stem in stems:
                self._canonical[stem] = stems[0]

    def terms(self, text: str) -> frozenset[str]:
        found = set()
        for word in words(text, HYPHENATED_WORD):
            stem = self._stemmer.stem(word)
            if stem in self._stop or (len(stem) < 2 and not stem.isdigit()):
                continue
            found.add(self._canonical.get(stem, stem))
        return frozenset(found)


def dice(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return 2 * len(a & b) / (len(a) + len(b))


@dataclass
class _Request:
    at: datetime
    ticket_id: str
    customer: str
    text: str
    terms: frozenset[str]
    labels: tuple[tuple[str, str], ...] = ()
    """The ticket's topic and category (how product managers split their areas)."""


@dataclass
class FeatureCluster:
    cluster_id: str
    order: int = 0
    """Creation order: ties between equally similar clusters go to the oldest."""
    members: list[_Request] = field(default_factory=list)
    customers: Counter[str] = field(default_factory=Counter)
    terms: Counter[str] = field(default_factory=Counter)
    """How many members hold each term (the inverted index is built from it)."""
    oldest: datetime | None = None
    """The earliest member's time (members are only nearly in time order)."""
    ticket_ids: list[str] = field(default_factory=list)
    """The members' tickets, in member order (kept alongside: every update of the alert lists them)."""
    customer_names: list[str] = field(default_factory=list)
    """The distinct customers, sorted (kept sorted as they come and go, for the same reason)."""

    def add(self, request: _Request) -> None:
        self.members.append(request)
        self.ticket_ids.append(request.ticket_id)
        if not self.customers[request.customer]:
            bisect.insort(self.customer_names, request.customer)
        self.customers[request.customer] += 1
        self.terms.update(request.terms)
        if self.oldest is None or request.at < self.oldest:
            self.oldest = request.at

    def drop_before(self, horizon: datetime) -> list[_Request]:
        """Forget members at or before `horizon`; return them."""
        keep = 0
        while keep < len(self.members) and self.members[keep].at <= horizon:
            keep += 1
        gone, self.members = self.members[:keep], self.members[keep:]
        del self.ticket_ids[:keep]
        for request in gone:
            self.customers[request.customer] -= 1
            if not self.customers[request.customer]:
                del self.customers[request.customer]
                del self.customer_names[bisect.bisect_left(self.customer_names, request.customer)]
            self.terms.subtract(request.terms)
        if gone:
            self.oldest = min((m.at for m in self.members), default=None)
        return gone


_CONTACT_RECEIVED: Final = EventType.CONTACT_RECEIVED
_FEATURE_REQUEST: Final = ContactKind.FEATURE_REQUEST


class FeatureClusters(WithoutDeadlines):
    def __init__(self, config: DetectionConfig, alerts: AlertBook) -> None:
        self._cfg = config.feature_cluster
        self._locale = config.locale
        self._alerts = alerts
        self._terms = TermExtractor(self._cfg)
        self._window = timedelta(days=self._cfg.window_days)
        self.clusters: dict[str, FeatureCluster] = {}
        self._by_term: dict[str, set[str]] = {}
        """term -> ids of clusters with a member holding it: only those can resemble a request."""
        self._created = 0
        self._seen_tickets: set[str] = set()

    # -- the detector protocol: requests at each event, expiry at whole hours ---------------------------
    observes = True

    def observe(self, seen: Observation, alerts: list[Alert]) -> None:
        event, ticket = seen.event, seen.ticket
        if event.type is not _CONTACT_RECEIVED or (event.kind or ticket.kind) is not _FEATURE_REQUEST:
            return
        text = event.text or event.subject
        if not text:
            return
        area = {}
        if ticket.topic:
            area["topic"] = ticket.topic
        if ticket.category is not None:
            area["category"] = ticket.category.value
        alerts += self.request(
            event.event_id, ticket.ticket_id, ticket.customer_id, text, event.occurred_at, area
        )

    def hourly(self, at: datetime, stream_start: datetime) -> list[Alert]:
        return self.expire(at)

    def request(
        self,
        event_id: str,
        ticket_id: str,
        customer_id: str | None,
        text: str,
        at: datetime,
        labels: dict[str, str] | None = None,
    ) -> list[Alert]:
        if ticket_id in self._seen_tickets:
            return []  # one ticket is one request, however many messages it has
        terms = self._terms.terms(text)
        if not terms:
            return []
        self._seen_tickets.add(ticket_id)
        routing = tuple(sorted(labels.items())) if labels else ()
        request = _Request(at, ticket_id, customer_id or f"ticket:{ticket_id}", text, terms, routing)
        cluster = self._best_cluster(terms)
        if cluster is None:
            cluster_id = "fr-" + hashlib.sha256(event_id.encode()).hexdigest()[:12]
            self._created += 1
            cluster = self.clusters[cluster_id] = FeatureCluster(cluster_id, self._created)
        cluster.add(request)
        for term in terms:
            holders = self._by_term.get(term)
            if holders is None:
                holders = self._by_term[term] = set()
            holders.add(cluster.cluster_id)
        return self._evaluate(cluster, at)

    def _candidates(self, terms: frozenset[str]) -> list[FeatureCluster]:
        """Clusters sharing a term with the request, oldest first; no other can reach the similarity."""
        ids: set[str] = set()
        for term in terms:
            ids |= self._by_term.get(term, set())
        return sorted((self.clusters[i] for i in ids), key=lambda cluster: cluster.order)

    def _unindex(self, cluster: FeatureCluster, gone: list[_Request]) -> None:
        for term in {term for request in gone for term in request.terms}:
            if cluster.terms[term] <= 0:
                del cluster.terms[term]
                holders = self._by_term.get(term)
                if holders is not None:
                    holders.discard(cluster.cluster_id)
                    if not holders:
                        del self._by_term[term]

    def _best_cluster(self, terms: frozenset[str]) -> FeatureCluster | None:
        best, best_score = None, 0.0
        for cluster in self._candidates(terms):
            # Average linkage over the latest members: a cluster's current wording, at bounded cost.
            members = cluster.members[-_LINKAGE_SAMPLE:]
            scores = [dice(terms, m.terms) for m in members]
            shared = max(len(terms & m.terms) for m in members)
            average = sum(scores) / len(scores)
            if average >= self._cfg.similarity and shared >= self._min_shared(terms) and average > best_score:
                best, best_score = cluster, average
        return best

    def _min_shared(self, terms: frozenset[str]) -> int:
        # A one-word request ("экспорт") can only share one term.
        return min(self._cfg.min_shared_terms, len(terms))

    def _evaluate(self, cluster: FeatureCluster, at: datetime) -> list[Alert]:
        horizon = at - self._window
        if cluster.oldest is not None and cluster.oldest > horizon:
            # The usual case (members leave hourly): all are recent, the counts are at hand.
            recent, customers = cluster.members, len(cluster.customers)
        else:
            recent = [m for m in cluster.members if m.at > horizon]
            customers = len({m.customer for m in recent})
        subject = {"cluster_id": cluster.cluster_id}
        if len(recent) < self._cfg.min_requests or customers < self._cfg.min_customers:
            if self._alerts.is_firing(FEATURE_REQUEST_CLUSTER, subject):
                alert = self._alerts.resolve(FEATURE_REQUEST_CLUSTER, subject, at, self._details(cluster))
                return changes(alert)
            return []
        details = self._details(cluster)
        summary = summarize(
            FEATURE_REQUEST_CLUSTER,
            self._locale,
            {
                "customers": customers,
                "count": len(recent),
                "example": recent[0].text[:120],
            },
        )
        alert = self._alerts.fire(
            FEATURE_REQUEST_CLUSTER,
            subject,
            severity=Severity.INFO,
            audience=Audience.PRODUCT,
            starts_at=at,
            summary=summary,
            details=details,
            # Fixed when the alert starts (an update keeps them): counted only then, not at every request
            # a growing cluster takes (that cost a sixth of replay's time).
            labels=None
            if self._alerts.is_firing(FEATURE_REQUEST_CLUSTER, subject)
            else _common_labels(recent),
        )
        return changes(alert)

    def _details(self, cluster: FeatureCluster) -> dict[str, Any]:
        members = cluster.members
        return {
            "ticket_ids": list(cluster.ticket_ids),
            "count": len(members),
            "customers": list(cluster.customer_names),
            "examples": [m.text for m in members[: self._cfg.max_examples]],
        }

    def expire(self, now: datetime) -> list[Alert]:
        alerts: list[Alert] = []
        for cluster_id in list(self.clusters):
            cluster = self.clusters[cluster_id]
            gone = cluster.drop_before(now - self._window)
            if gone:
                self._unindex(cluster, gone)
                self._seen_tickets.difference_update(request.ticket_id for request in gone)
                alerts += self._evaluate(cluster, now)
            if not cluster.members:
                del self.clusters[cluster_id]
        return alerts


def _common_labels(members: list[_Request]) -> dict[str, str]:
    """Each label's most frequent value among the members (the area a PM subscribes to)."""
    counts: dict[str, Counter[str]] = {}
    for member in members:
        for name, value in member.labels:
            counts.setdefault(name, Counter())[value] += 1
    return {name: values.most_common(1)[0][0] for name, values in sorted(counts.items())}
