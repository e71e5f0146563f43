"""The IMAP poller: unseen messages of a support mailbox -> `contacts.raw` (source `email`).

Every `CONTACTPULSE_IMAP_POLL_SECONDS` it logs in (the standard library's `imaplib`, in a thread),
fetches unseen messages without marking them (`BODY.PEEK[]`), produces each to `contacts.raw` and waits
for Kafka's acknowledgement, and only then flags it `\\Seen`. A crash between the two re-reads the
message next time; its `Message-ID` makes the event id the same, so the detectors count it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from mode import Service

from schemas.settings import Settings
from stream.ingest import HEADER_SOURCE, HEADER_VERIFIED
from stream.metrics import WorkerMetrics

log = logging.getLogger(__name__)
_BATCH = 200


class Mailbox:
    """A short IMAP session: connect, log in, select; used from one worker thread."""

    def __init__(self, settings: Settings) -> None:
        assert settings.imap_host is not None
        assert settings.imap_password is not None
        cls = imaplib.IMAP4_SSL if settings.imap_ssl else imaplib.IMAP4
        self._client = cls(settings.imap_host, settings.imap_port)
        self._client.login(settings.imap_user or "", settings.imap_password.get_secret_value())
        status, _ = self._client.select(settings.imap_mailbox)
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot select mailbox {settings.imap_mailbox!r}")

    def unseen(self) -> list[tuple[str, bytes]]:
        _, data = self._client.uid("SEARCH", "UNSEEN")
        messages = []
        for uid in (data[0] or b"").decode().split()[:_BATCH]:
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
            max_request_size=8 * 1024 * 1024,
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
        assert self._producer is not None
        mailbox = await asyncio.to_thread(Mailbox, self._settings)
        try:
            messages = await asyncio.to_thread(mailbox.unseen)
            for uid, raw in messages:
                await self._producer.send_and_wait(
                    self._settings.topic_raw,
                    raw,
                    key=b"email",
                    headers=[(HEADER_SOURCE, b"email"), (HEADER_VERIFIED, b"1")],
                )
                await asyncio.to_thread(mailbox.mark_seen, uid)
                self._metrics.imap_messages.inc()
            return len(messages)
        finally:
            await asyncio.to_thread(mailbox.close)
