"""`feature_request_cluster` (audience product, subject `{"cluster_id"}`): the same ask from many customers.

A request's text becomes a set of terms: lower case, ё -> е, each word stemmed by the Snowball stemmer
of its script (Russian or English, from the maintained `snowballstemmer` package), then folded by the
shipped vocabulary (deploy/config/feature_vocabulary.toml): words and phrases that name one need-word
become one term (выгрузка/выгружать/export, SSO/single sign-on, 2FA/two-factor/двухфакторная,
Excel/Эксель/xlsx, CSV/ЦСВ), stopwords and stop-phrases ("please add", "хотим") go. Terms many needs
share ("report", "order") are generic and weigh less.

Two requests are alike when the weighted Dice coefficient of their terms reaches `similarity` (0.6),
they share `min_shared_terms` terms (fewer for a shorter request) and at least one shared term is not
generic: "отчёт в Excel" and "отчёт по SMS" share only the generic "report". A cluster is a connected
group of alike requests (single linkage over that graph), so the same requests form the same clusters
in any arrival order (a property test permutes them). A request alike to members of several clusters
joins them: the oldest cluster keeps its id, and a merged cluster's firing alert is resolved (its
requests are in the survivor's alert now). When requests leave the 30-day window, what remains of a
cluster is split again into its connected groups; the largest keeps the id.

Fires when a cluster holds 5 requests from 5 distinct customers within 30 days; the alert is re-sent
with the same id as the cluster grows. Resolves when the 30-day window no longer holds that many.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from mypy_extensions import mypyc_attr
from stop_words import get_stop_words

from processors.alerting import AlertBook, changes, listing
from processors.detector import NEW_CONTACTS, Observation, WithoutDeadlines
from processors.stemming import Stemmer, words
from processors.summaries import summarize
from schemas.alert import Alert, Audience, Severity
from schemas.config import DetectionConfig, FeatureClusterConfig
from schemas.event import ContactKind, EventType

FEATURE_REQUEST_CLUSTER = "feature_request_cluster"


@mypyc_attr(allow_interpreted_subclasses=True)
class TermExtractor:
    """Text -> the set of need-words it names, and what each weighs."""

    def __init__(self, config: FeatureClusterConfig) -> None:
        self._config = config
        self._stemmer = Stemmer(lemmas=True)
        # An entry matches as written (its words) or inflected (its stems); as written first, because
        # stems collide ("customer" and "custom" are both "custom" to the English stemmer).
        self._words: dict[tuple[str, ...], str | None] = {}
        self._phrases: dict[tuple[str, ...], str | None] = {}
        """Words or stems of an entry -> its term (None: a stopword)."""
        if config.library_stopwords:
            # Function words of both languages from the maintained `stop-words` package; below the
            # vocabulary, so a need-word that is also on its list ("order", "несколько") stays.
            for language in ("ru", "en"):
                for stop in get_stop_words(language):
                    self._learn(stop, None)
        for stop in config.stopwords:
            self._learn(stop, None)
        for group in config.synonyms:
            term = group[0].lower().replace("ё", "е")
            for entry in group:
                self._learn(entry, term)
        self._longest = max((len(phrase) for phrase in self._words), default=1)
        self.generic = frozenset(term for entry in config.generic_terms for term in self.terms(entry))
        self._generic_weight = config.generic_weight

    def __getstate__(self) -> FeatureClusterConfig:
        # Tables built from the config (thousands of entries): a checkpoint keeps the config only.
        return self._config

    def __setstate__(self, config: FeatureClusterConfig) -> None:
        self.__init__(config)  # type: ignore[misc]

    def _learn(self, entry: str, term: str | None) -> None:
        found = tuple(words(entry))
        if found:
            self._words[found] = term
            self._phrases[self._stemmer.stems(found)] = term

    def _fold(self, found: list[str]) -> Iterable[str]:
        stems = self._stemmer.stems(found)
        at = 0
        while at < len(found):
            for length in range(min(self._longest, len(found) - at), 0, -1):
                written = tuple(found[at : at + length])
                if written in self._words:
                    term = self._words[written]
                elif (stemmed := stems[at : at + length]) in self._phrases:
                    term = self._phrases[stemmed]
                else:
                    continue
                if term is not None:
                    yield term
                at += length
                break
            else:
                stem = stems[at]
                if len(stem) >= 2 or stem.isdigit():
                    yield stem
                at += 1

    def terms(self, text: str) -> frozenset[str]:
        return frozenset(self._fold(words(text)))

    def weight(self, term: str) -> float:
        return self._generic_weight if term in self.generic else 1.0

    def distinctive(self, terms: frozenset[str]) -> frozenset[str]:
        return terms - self.generic

    def similarity(self, a: frozenset[str], b: frozenset[str]) -> float:
        """Weighted Dice: twice the weight the two share over the weight both hold."""
        if not a or not b:
            return 0.0
        shared = sum((self.weight(t) for t in a & b), 0.0)
        return 2 * shared / (sum(map(self.weight, a), 0.0) + sum(map(self.weight, b), 0.0))


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class _Request:
    at: datetime
    ticket_id: str
    customer: str
    text: str
    terms: frozenset[str]
    labels: tuple[tuple[str, str], ...] = ()
    """The ticket's topic and category (how product managers split their areas)."""
    event_id: str = ""
    """Names a cluster this request founds (also when a cluster splits)."""


def _cluster_id(founder: _Request) -> str:
    return "fr-" + hashlib.sha256(founder.event_id.encode()).hexdigest()[:12]


def _by_time(request: _Request) -> tuple[datetime, str]:
    return request.at, request.ticket_id


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class FeatureCluster:
    cluster_id: str
    order: int = 0
    """Creation order: when clusters merge, the oldest keeps its id."""
    members: list[_Request] = field(default_factory=list)
    """In time order (ties by ticket id), whatever order they came in."""
    customers: Counter[str] = field(default_factory=Counter)
    ticket_ids: list[str] = field(default_factory=list)
    """The members' tickets, in member order (kept alongside: every update of the alert lists them)."""
    customer_names: list[str] = field(default_factory=list)
    """The distinct customers, sorted (kept sorted as they come and go, for the same reason)."""

    def add(self, request: _Request) -> None:
        if self.members and _by_time(request) < _by_time(self.members[-1]):
            at = bisect.bisect(self.members, _by_time(request), key=_by_time)
        else:
            at = len(self.members)
        self.members.insert(at, request)
        self.ticket_ids.insert(at, request.ticket_id)
        if not self.customers[request.customer]:
            bisect.insort(self.customer_names, request.customer)
        self.customers[request.customer] += 1

    def remove(self, gone: list[_Request]) -> None:
        leaving = {id(request) for request in gone}
        self.members = [m for m in self.members if id(m) not in leaving]
        self.ticket_ids = [m.ticket_id for m in self.members]
        for request in gone:
            self.customers[request.customer] -= 1
            if not self.customers[request.customer]:
                del self.customers[request.customer]
                del self.customer_names[bisect.bisect_left(self.customer_names, request.customer)]

    @property
    def oldest(self) -> datetime | None:
        return self.members[0].at if self.members else None


_CONTACT_RECEIVED: Final = EventType.CONTACT_RECEIVED
_FEATURE_REQUEST: Final = ContactKind.FEATURE_REQUEST


@mypyc_attr(allow_interpreted_subclasses=True)
class FeatureClusters(WithoutDeadlines):
    def __init__(self, config: DetectionConfig, alerts: AlertBook) -> None:
        self._cfg = config.feature_cluster
        self._locale = config.locale
        self._alerts = alerts
        self._terms = TermExtractor(self._cfg)
        self._window = timedelta(days=self._cfg.window_days)
        self.clusters: dict[str, FeatureCluster] = {}
        self._cluster_of: dict[str, str] = {}
        """ticket id -> the id of the cluster holding its request."""
        self._requests: dict[str, _Request] = {}
        self._holders: dict[frozenset[str], Counter[str]] = {}
        """A request's terms -> the clusters holding requests with exactly those terms (how many each).
        Whether two requests are alike depends on their terms only, so a request is compared once with
        each distinct set of terms, not once with each request: a form or a template repeats its
        wording, and a cluster of many requests holds few distinct sets."""
        self._by_term: dict[str, set[frozenset[str]]] = {}
        """distinctive term -> the term sets (keys of `_holders`) holding it: only those can be alike."""
        self._created = 0

    # -- the detector protocol: requests at each event, expiry at whole hours ---------------------------
    observes = NEW_CONTACTS

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

    @property
    def _seen_tickets(self) -> set[str]:
        return set(self._requests)

    def alike(self, a: frozenset[str], b: frozenset[str]) -> bool:
        """The edge of the cluster graph (symmetric, so clusters do not depend on arrival order)."""
        shared = a & b
        if not self._terms.distinctive(shared):
            return False
        if len(shared) < min(self._cfg.min_shared_terms, len(a), len(b)):
            return False
        return self._terms.similarity(a, b) >= self._cfg.similarity

    def request(
        self,
        event_id: str,
        ticket_id: str,
        customer_id: str | None,
        text: str,
        at: datetime,
        labels: dict[str, str] | None = None,
    ) -> list[Alert]:
        if ticket_id in self._requests:
            return []  # one ticket is one request, however many messages it has
        terms = self._terms.terms(text)
        if not terms:
            return []
        routing = tuple(sorted(labels.items())) if labels else ()
        request = _Request(
            at, ticket_id, customer_id or f"ticket:{ticket_id}", text, terms, routing, event_id
        )
        joined = sorted(
            self._joined_clusters(request), key=lambda cluster_id: self.clusters[cluster_id].order
        )
        alerts: list[Alert] = []
        if joined:
            cluster = self.clusters[joined[0]]
            for absorbed in joined[1:]:
                alerts += self._merge(cluster, self.clusters.pop(absorbed), at)
        else:
            cluster = self._new_cluster(request)
        self._add(cluster, request)
        return alerts + self._evaluate(cluster, at)

    def _joined_clusters(self, request: _Request) -> set[str]:
        """The clusters holding a request alike to `request`: one comparison with each distinct term set
        that shares a distinctive term with it (no other can be alike), none with a term set whose
        clusters are all joined already. Its cost follows the distinct wordings, not the requests:
        comparing with each request sharing a term cost the worker bench's detector 3 us an event in a
        first steady stream and 26 us a million events later (clusters of thousands of requests)."""
        joined: set[str] = set()
        terms = request.terms
        compared: set[frozenset[str]] = set()
        for term in self._terms.distinctive(terms):
            for other in self._by_term.get(term, ()):
                if other in compared:
                    continue
                compared.add(other)
                holders = self._holders[other]
                if not joined.issuperset(holders) and self.alike(terms, other):
                    joined.update(holders)
        return joined

    def _new_cluster(self, founder: _Request) -> FeatureCluster:
        self._created += 1
        cluster = FeatureCluster(_cluster_id(founder), self._created)
        self.clusters[cluster.cluster_id] = cluster
        return cluster

    def _add(self, cluster: FeatureCluster, request: _Request) -> None:
        cluster.add(request)
        self._requests[request.ticket_id] = request
        self._cluster_of[request.ticket_id] = cluster.cluster_id
        holders = self._holders.get(request.terms)
        if holders is None:
            holders = self._holders[request.terms] = Counter()
            for term in self._terms.distinctive(request.terms):
                same = self._by_term.get(term)
                if same is None:
                    same = self._by_term[term] = set()
                same.add(request.terms)
        holders[cluster.cluster_id] += 1

    def _move(self, request: _Request, to: FeatureCluster) -> None:
        """`request` now belongs to `to` (a merge, or a split after expiry): the index follows it."""
        to.add(request)
        holders = self._holders[request.terms]
        was = self._cluster_of[request.ticket_id]
        holders[was] -= 1
        if not holders[was]:
            del holders[was]
        holders[to.cluster_id] += 1
        self._cluster_of[request.ticket_id] = to.cluster_id

    def _merge(self, survivor: FeatureCluster, absorbed: FeatureCluster, at: datetime) -> list[Alert]:
        """Move `absorbed`'s requests into `survivor`; its alert, if firing, resolves."""
        alerts: list[Alert] = []
        subject = {"cluster_id": absorbed.cluster_id}
        if self._alerts.is_firing(FEATURE_REQUEST_CLUSTER, subject):
            details = {**self._details(absorbed), "merged_into": survivor.cluster_id}
            alerts += changes(self._alerts.resolve(FEATURE_REQUEST_CLUSTER, subject, at, details))
        for request in absorbed.members:
            self._move(request, survivor)
        return alerts

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
        details: dict[str, Any] = {}
        listing(details, "ticket_ids", cluster.ticket_ids, newest_last=True)
        details["count"] = len(members)
        listing(details, "customers", cluster.customer_names, newest_last=False)
        details["examples"] = [m.text for m in members[: self._cfg.max_examples]]
        return details

    def expire(self, now: datetime) -> list[Alert]:
        alerts: list[Alert] = []
        horizon = now - self._window
        for cluster_id in sorted(self.clusters, key=lambda c: self.clusters[c].order):
            cluster = self.clusters[cluster_id]
            if cluster.oldest is None or cluster.oldest > horizon:
                continue
            gone = [m for m in cluster.members if m.at <= horizon]
            cluster.remove(gone)
            for request in gone:
                self._forget(request)
            pieces = self._connected(cluster.members)
            for piece in pieces[1:]:
                split = self._new_cluster(piece[0])
                cluster.remove(piece)
                for request in piece:
                    self._move(request, split)
            alerts += self._evaluate(cluster, now)
            for piece in pieces[1:]:
                alerts += self._evaluate(self.clusters[self._cluster_of[piece[0].ticket_id]], now)
            if not cluster.members:
                del self.clusters[cluster_id]
        return alerts

    def _forget(self, request: _Request) -> None:
        del self._requests[request.ticket_id]
        cluster_id = self._cluster_of.pop(request.ticket_id)
        holders = self._holders[request.terms]
        holders[cluster_id] -= 1
        if holders[cluster_id]:
            return
        del holders[cluster_id]
        if holders:
            return
        del self._holders[request.terms]
        for term in self._terms.distinctive(request.terms):
            same = self._by_term[term]
            same.discard(request.terms)
            if not same:
                del self._by_term[term]

    def _connected(self, members: list[_Request]) -> list[list[_Request]]:
        """The connected groups of alike requests among `members`, the largest first (ties: the one
        with the earliest request), each in time order. Stops comparing once all are connected (the
        usual case: a cluster stays whole)."""
        if len(members) < 2:
            return [members] if members else []
        parent = list(range(len(members)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        groups = len(members)
        local: dict[str, list[int]] = {}
        for i, request in enumerate(members):
            for term in self._terms.distinctive(request.terms):
                local.setdefault(term, []).append(i)
        for i, request in enumerate(members):
            if groups == 1:
                break
            others = {j for term in self._terms.distinctive(request.terms) for j in local[term] if j > i}
            for j in sorted(others):
                a, b = root(i), root(j)
                if a != b and self.alike(request.terms, members[j].terms):
                    parent[b] = a
                    groups -= 1
        pieces: dict[int, list[_Request]] = {}
        for i, request in enumerate(members):
            pieces.setdefault(root(i), []).append(request)
        return sorted(pieces.values(), key=lambda piece: (-len(piece), _by_time(piece[0])))


def _common_labels(members: list[_Request]) -> dict[str, str]:
    """Each label's most frequent value among the members (the area a PM subscribes to)."""
    counts: dict[str, Counter[str]] = {}
    for member in members:
        for name, value in member.labels:
            counts.setdefault(name, Counter())[value] += 1
    return {name: values.most_common(1)[0][0] for name, values in sorted(counts.items())}
