"""The IMAP poller against a real Dovecot: unseen mail becomes normalized events, once, and is flagged
seen only after Kafka has it."""

from __future__ import annotations

import asyncio
import imaplib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from processors.pii import Pseudonymizer
from schemas.settings import Settings
from stream.topics import ensure_topics
from tests.integration.conftest import WorkerProcess, consume_all, free_port, wait_for_metrics
from tests.integration.imap_server import ImapServer, start_dovecot, stop_dovecot

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "adapters" / "fixtures" / "email"


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    # Dovecot's own users must reach its files: pytest's tmp_path is private to root, /tmp is not.
    root = Path(tempfile.mkdtemp(prefix="contactpulse-dovecot-"))
    server = start_dovecot(root, free_port())
    yield server
    stop_dovecot(server)
    shutil.rmtree(root, ignore_errors=True)


def mailbox(server: ImapServer) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.port)
    client.login(server.user, server.password)
    client.select("INBOX")
    return client


def imap_settings(settings: Settings, server: ImapServer, **more: object) -> Settings:
    return settings.model_copy(
        update={
            "imap_host": "127.0.0.1",
            "imap_port": server.port,
            "imap_ssl": False,
            "imap_user": server.user,
            "imap_password": server.password,
            "imap_poll_seconds": 0.5,
            "pii_key": "imap-test-key-0123456789",
            **more,
        }
    )


async def test_unseen_mail_becomes_events_and_is_marked_seen(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess], imap_server: ImapServer
) -> None:
    client = mailbox(imap_server)
    for name in ("koi8r_plain.eml", "cp1251_html_reply.eml", "auto_reply.eml"):
        client.append("INBOX", None, None, (FIXTURES / name).read_bytes())
    client.logout()

    settings = imap_settings(isolated_settings, imap_server)
    await ensure_topics(settings)
    worker = start_worker(settings)
    await wait_for_metrics(
        worker,
        lambda m: (
            m.get("contactpulse_imap_messages_total") == 3
            and m.get("contactpulse_raw_payloads_normalized_total{source=email}") == 3
        ),
    )
    events = await consume_all(settings.kafka_bootstrap_servers, settings.topic_events, 2)
    pii = Pseudonymizer(b"imap-test-key-0123456789")
    ids = sorted(orjson.loads(r.value)["event_id"] for r in events)
    assert ids == sorted(
        f"email:{pii.identifier('msgid', message_id)}"
        for message_id in ("CAF1x2y3@mail.example.ru", "reply-2@mail.example.ru")
    )  # the auto-reply is no contact; Message-IDs (they carry addresses) only as keyed hashes
    tickets = {orjson.loads(r.value)["ticket_id"] for r in events}
    assert tickets == {
        f"email:{pii.identifier('msgid', 'CAF1x2y3@mail.example.ru')}"
    }  # one thread, one ticket
    assert not any(b"mail.example.ru" in r.value for r in events)

    client = mailbox(imap_server)
    _, unseen = client.uid("SEARCH", "UNSEEN")
    client.logout()
    assert unseen == [b""]
    worker.stop()


async def test_what_agents_send_from_the_sent_folder_answers_the_customers_ticket_once(
    isolated_settings: Settings, start_worker: Callable[[Settings], WorkerProcess], imap_server: ImapServer
) -> None:
    client = mailbox(imap_server)
    client.create("Sent")
    client.append("INBOX", None, None, (FIXTURES / "koi8r_plain.eml").read_bytes())
    # Mail clients file what they send already seen: the poller cannot go by \Seen there.
    client.append("Sent", "(\\Seen)", None, (FIXTURES / "agent_reply.eml").read_bytes())
    client.logout()
    settings = imap_settings(isolated_settings, imap_server, imap_sent_mailbox="Sent")
    await ensure_topics(settings)
    worker = start_worker(settings)
    await wait_for_metrics(
        worker, lambda m: m.get("contactpulse_raw_payloads_normalized_total{source=email}") == 2
    )
    events = [
        orjson.loads(r.value)
        for r in await consume_all(settings.kafka_bootstrap_servers, settings.topic_events, 2)
    ]
    pii = Pseudonymizer(b"imap-test-key-0123456789")
    ticket = f"email:{pii.identifier('msgid', 'CAF1x2y3@mail.example.ru')}"
    assert sorted((e["type"], e["ticket_id"], e["occurred_at"]) for e in events) == [
        ("agent_replied", ticket, "2026-11-24T10:32:00+03:00"),
        ("contact_received", ticket, "2026-11-24T10:15:00+03:00"),
    ]
    reply = next(e for e in events if e["type"] == "agent_replied")
    assert reply["customer_id"] == pii.email("irina@example.ru")
    assert reply["agent"] == pii.email("anna.petrova@contactpulse.example")

    # A later reply is read; the earlier one is not read again (the position moved past it).
    later = (FIXTURES / "agent_reply.eml").read_bytes().replace(b"agent-1@", b"agent-2@")
    client = mailbox(imap_server)
    client.append("Sent", "(\\Seen)", None, later)
    client.logout()
    await wait_for_metrics(
        worker, lambda m: m.get("contactpulse_raw_payloads_normalized_total{source=email}") == 3
    )
    await asyncio.sleep(2)  # a few more polls
    values = await wait_for_metrics(worker, lambda m: True)
    assert values["contactpulse_imap_messages_total"] == 3
    position = orjson.loads((settings.data_dir / "imap-sent-position.json").read_bytes())
    assert position["last_uid"] == 2
    assert position["uid_validity"] > 0
    worker.stop()
