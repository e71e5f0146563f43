"""The IMAP poller: unseen messages of a support mailbox -> `contacts.raw` (source `email`).

Every `CONTACTPULSE_IMAP_POLL_SECONDS` it logs in (the standard library's `imaplib`, in a thread),
fetches unseen messages without marking them (`BODY.PEEK[]`), produces each to `contacts.raw` and waits
for Kafka's acknowledgement, and only then flags it `\\Seen`. A crash between the two re-reads the
message next time; its `Message-ID` makes the event id the same, so the detectors count it once.

With `CONTACTPULSE_IMAP_SENT_MAILBOX` it also reads the sent folder, where what agents send is filed
already seen: there the position is the highest UID produced (kept in `data_dir`, with the folder's
UIDVALIDITY), advanced only after Kafka acknowledged. Those records carry `X-ContactPulse-Mailbox: sent`,
which the e-mail adapter reads as an agent's reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaProducer
from mode import Service

from processors.adapters.email import MAILBOX_HEADER
from schemas.settings import Settings
from stream.dead_letter import DEAD_LETTER_MAX_BYTES, RECORD_HEADROOM_BYTES
from stream.ingest import HEADER_SOURCE, HEADER_VERIFIED, http_header
from stream.metrics import WorkerMetrics

log = logging.getLogger(__name__)
_BATCH = 200
SENT_HEADER: Final = http_header(MAILBOX_HEADER)


@dataclass(frozen=True)
class SentPosition:
    """How far the sent folder has been read: UIDs are only comparable within one UIDVALIDITY."""

    uid_validity: int
    last_uid: int


class Mailbox:
    """A short IMAP session: connect, log in, select; used from one worker thread."""

    def __init__(self, settings: Settings, mailbox: str | None = None) -> None:
        assert settings.imap_host is not None
        assert settings.imap_password is not None
        cls = imaplib.IMAP4_SSL if settings.imap_ssl else imaplib.IMAP4
        self._client = cls(settings.imap_host, settings.imap_port)
        self._client.login(settings.imap_user or "", settings.imap_password.get_secret_value())
        name = mailbox or settings.imap_mailbox
        status, _ = self._client.select(_quoted(name), readonly=mailbox is not None)
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot select mailbox {name!r}")
        _, validity = self._client.response("UIDVALIDITY")
        self.uid_validity = int(validity[0]) if validity and validity[0] else 0

    def unseen(self) -> list[tuple[str, bytes]]:
        _, data = self._client.uid("SEARCH", "UNSEEN")
        return self._fetch((data[0] or b"").decode().split()[:_BATCH])

    def added_since(self, position: SentPosition | None, lookback: timedelta) -> list[tuple[str, bytes]]:
        """Messages after `position` (or, without one for this UIDVALIDITY, of the lookback)."""
        if position is not None and position.uid_validity == self.uid_validity:
            _, data = self._client.uid("SEARCH", f"UID {position.last_uid + 1}:*")
            # "N:*" always matches the last message, even when its UID is below N.
            uids = [uid for uid in (data[0] or b"").decode().split() if int(uid) > position.last_uid]
        else:
            since = (datetime.now(UTC) - lookback).strftime("%d-%b-%Y")
            _, data = self._client.uid("SEARCH", "SINCE", since)
            uids = (data[0] or b"").decode().split()
        return self._fetch(sorted(uids, key=int)[:_BATCH])

    def _fetch(self, uids: list[str]) -> list[tuple[str, bytes]]:
        messages = []
        for uid in uids:
            _, fetched = self._client.uid("FETCH", uid, "(BODY.PEEK[])")
            for part in fetched:
                if isinstance(part, tuple):
                    messages.append((uid, bytes(part[1])))
        return messages

    def mark_seen(self, uid: str) -> None:
        self._client.uid("STORE", uid, "+FLAGS", "(\\Seen)")

    def close(self) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self._client.logout()


class ImapPoller(Service):
    def __init__(self, settings: Settings, metrics: WorkerMetrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._settings = settings
        self._metrics = metrics
        self._producer: AIOKafkaProducer | None = None

    async def on_start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            acks="all",
            max_request_size=DEAD_LETTER_MAX_BYTES + RECORD_HEADROOM_BYTES,
        )
        await self._producer.start()

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    @Service.task
    async def _poll(self) -> None:
        while not self.should_stop:
            try:
                await self.poll_once()
            except (imaplib.IMAP4.error, OSError) as exc:
                log.warning("IMAP poll of %s failed: %s", self._settings.imap_host, exc)
                self._metrics.imap_poll_failures.inc()
            await self.sleep(self._settings.imap_poll_seconds)

    async def poll_once(self) -> int:
        received = await self._poll_inbox()
        if self._settings.imap_sent_mailbox:
            received += await self._poll_sent(self._settings.imap_sent_mailbox)
        return received

    async def _produce(self, raw: bytes, *extra: tuple[str, bytes]) -> None:
        assert self._producer is not None
        await self._producer.send_and_wait(
            self._settings.topic_raw,
            raw,
            key=b"email",
            headers=[(HEADER_SOURCE, b"email"), (HEADER_VERIFIED, b"1"), *extra],
        )
        self._metrics.imap_messages.inc()

    async def _poll_inbox(self) -> int:
        mailbox = await asyncio.to_thread(Mailbox, self._settings)
        try:
            messages = await asyncio.to_thread(mailbox.unseen)
            for uid, raw in messages:
                await self._produce(raw)
                await asyncio.to_thread(mailbox.mark_seen, uid)
            return len(messages)
        finally:
            await asyncio.to_thread(mailbox.close)

    async def _poll_sent(self, name: str) -> int:
        mailbox = await asyncio.to_thread(Mailbox, self._settings, name)
        state = self._settings.data_dir / "imap-sent-position.json"
        try:
            position = _read_position(state)
            lookback = timedelta(hours=self._settings.imap_sent_lookback_hours)
            messages = await asyncio.to_thread(mailbox.added_since, position, lookback)
            for uid, raw in messages:
                await self._produce(raw, (SENT_HEADER, b"sent"))
                _write_position(state, SentPosition(mailbox.uid_validity, int(uid)))
            if not messages and (position is None or position.uid_validity != mailbox.uid_validity):
                _write_position(state, SentPosition(mailbox.uid_validity, 0))
            return len(messages)
        finally:
            await asyncio.to_thread(mailbox.close)


def _quoted(mailbox: str) -> str:
    """imaplib sends a mailbox name as is: one with spaces ("Sent Items") must be quoted."""
    return f'"{mailbox}"' if " " in mailbox and not mailbox.startswith('"') else mailbox


def _read_position(path: Path) -> SentPosition | None:
    try:
        data = orjson.loads(path.read_bytes())
        return SentPosition(int(data["uid_validity"]), int(data["last_uid"]))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # none yet, or unreadable: read the lookback again (event ids absorb repeats)


def _write_position(path: Path, position: SentPosition) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_bytes(orjson.dumps({"uid_validity": position.uid_validity, "last_uid": position.last_uid}))
    partial.replace(path)
