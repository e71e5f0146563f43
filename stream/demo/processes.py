"""The demo's processes and its run's isolation: the local Kafka broker (deploy/kafka/kafkactl) when none
answers, a local Alertmanager with the shipped configuration, the worker as a child process, and topics,
consumer groups and credentials of this run alone (earlier runs' topics deleted)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final

from pydantic import SecretStr

from processors.adapters import ADAPTERS
from schemas.settings import ENV_PREFIX, Settings, settings_to_env
from simulation.native_payloads import SUPPORT_DOMAIN
from sinks.alertmanager_config import render_config
from stream.ingest import source_secret, source_token
from stream.local_receivers import ALERTMANAGER, free_port, receiver_environment, spawn_alertmanager
from stream.topics import delete_topics_where

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
KAFKACTL: Final = REPO_ROOT / "deploy" / "kafka" / "kafkactl"


def _first_server(settings: Settings) -> tuple[str, int]:
    host, _, port = settings.kafka_bootstrap_servers.split(",")[0].strip().rpartition(":")
    return host or "127.0.0.1", int(port or 9092)


def broker_answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


@contextlib.contextmanager
def local_kafka(settings: Settings, out: IO[str]) -> Iterator[bool]:
    """Yield True when this demo started the broker (and will stop it)."""
    host, port = _first_server(settings)
    if broker_answers(host, port):
        yield False
        return
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"no Kafka broker answers at {host}:{port} and it is not local: start it first")
    print(f"starting local Kafka on {host}:{port} (first run fetches the jars with Maven)...", file=out)
    env = {**os.environ, "KAFKA_PORT": str(port)}
    subprocess.run([str(KAFKACTL), "start"], check=True, env=env)
    try:
        yield True
    finally:
        print("stopping local Kafka...", file=out)
        subprocess.run([str(KAFKACTL), "stop"], check=False, env=env)


@dataclass(frozen=True)
class DemoDelivery:
    """Where the demo's Alertmanager sends: local stand-ins for Telegram and SMTP that print."""

    telegram_port: int
    smtp_port: int


_DEMO_TIMINGS: Final = {
    "group_wait": "10s",
    "group_interval": "1m",
    "incident_group_wait": "5s",
    "product_group_wait": "10s",
    "digest_group_wait": "30s",
    # The shipped SLA digests wait 1 h and 2 h between messages; the demo's simulated clock runs faster,
    # so its digests come every minute and two.
    "sla_group_wait": "10s",
    "sla_urgent_interval": "1m",
    "sla_digest_interval": "2m",
}


@contextlib.contextmanager
def local_alertmanager(settings: Settings, out: IO[str]) -> Iterator[tuple[Settings, DemoDelivery | None]]:
    """Alertmanager from the Debian package with the shipped configuration, when it is installed."""
    if shutil.which(ALERTMANAGER) is None:
        print(
            "Alertmanager is not installed (Debian: apt install prometheus-alertmanager): alerts are "
            "listed below but not delivered",
            file=out,
            flush=True,
        )
        yield settings, None
        return
    delivery = DemoDelivery(free_port(), free_port())
    port = free_port()
    workdir = settings.data_dir / "demo-alertmanager"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    environment = receiver_environment(delivery.telegram_port, delivery.smtp_port, **_DEMO_TIMINGS)
    config.write_text(render_config(environment), encoding="utf-8")
    config.chmod(0o600)
    process, log_path = spawn_alertmanager(config, workdir / "data", port, workdir)
    print(
        f"starting Alertmanager on 127.0.0.1:{port} (log: {log_path}); its Telegram and e-mail "
        "notifications go to local stand-ins and are printed below (on-call e-mails repeat the Telegram "
        "messages and are not shown)",
        file=out,
        flush=True,
    )
    update = {"alertmanager_url": f"http://127.0.0.1:{port}", "notifier_resend_seconds": 30.0}
    try:
        yield settings.model_copy(update=update), delivery
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def worker_process(settings: Settings, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        process = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**env, **settings_to_env(settings)},
            cwd=Path.cwd(),
            start_new_session=True,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def run_tag() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


_RUN_TAG: Final = re.compile(r"\d{14}")


def earlier_run_topic(name: str, settings: Settings, tag: str) -> bool:
    """A topic of an earlier demo run of these settings, as `demo_settings` names them: one of the
    worker's topics under `demo-<tag>.`, or an internal topic of the run's app id (tables, lease)."""
    for prefix in ("demo-", f"{settings.app_id}-demo-"):
        if not name.startswith(prefix):
            continue
        earlier, rest = name[len(prefix) : len(prefix) + 14], name[len(prefix) + 14 :]
        if not _RUN_TAG.fullmatch(earlier) or earlier >= tag:
            continue
        if prefix == "demo-" and rest[:1] == "." and rest[1:] in _run_topics(settings):
            return True
        if prefix != "demo-" and rest[:1] == "-":
            return True
    return False


def _topic_fields() -> list[str]:
    return [
        name for name in Settings.model_fields if name.startswith("topic_") and name != "topic_partitions"
    ]


def _run_topics(settings: Settings) -> set[str]:
    return {getattr(settings, name) for name in _topic_fields()}


def forget_earlier_runs(settings: Settings, tag: str, out: IO[str]) -> None:
    """Each run replays into topics of its own; the broker would otherwise keep every earlier run's."""

    def doomed(name: str) -> bool:
        return earlier_run_topic(name, settings, tag)

    try:
        gone = asyncio.run(delete_topics_where(settings.kafka_bootstrap_servers, doomed))
    except Exception as error:  # tidying up is no reason to refuse to run
        print(f"could not delete earlier demo runs' topics ({error!r}); going on", file=out, flush=True)
        return
    if gone:
        print(f"deleted {len(gone)} topics of earlier demo runs", file=out, flush=True)


def demo_settings(settings: Settings, tag: str) -> Settings:
    """Topics, consumer groups and checkpoints of this run alone.

    The demo replays the last hours each time it starts; a detector that remembered an earlier run's
    clock and event ids would call all of it late or duplicate.
    """
    topics = {name: f"demo-{tag}.{getattr(settings, name)}" for name in _topic_fields()}
    # The simulator derives the ids the adapters hash (Telegram chats, Message-IDs) with the worker's key:
    # without a configured key, the run gets one of its own rather than each process a random one.
    pii_key = settings.pii_key or SecretStr(secrets.token_hex(16))
    # The endpoint takes no unsigned payloads: the simulated sources authenticate with a token of this
    # run's (a vendor secret the simulator cannot sign with is left to its source).
    tokens: dict[str, object] = {
        f"{source}_token": SecretStr(secrets.token_hex(16))
        for source in ADAPTERS
        if f"{source}_token" in Settings.model_fields
        and source_token(settings, source) is None
        and source_secret(settings, source) is None
    }
    # The simulated bots report their replies to the outbound endpoint, signed with this run's secret;
    # the simulated team answers e-mail from its own domain.
    if settings.outbound_webhook_secret is None:
        tokens["outbound_webhook_secret"] = SecretStr(secrets.token_hex(16))
    if not settings.email_support_domains:
        tokens["email_support_domains"] = SUPPORT_DOMAIN
    return settings.model_copy(
        update={"app_id": f"{settings.app_id}-demo-{tag}", "pii_key": pii_key, **topics, **tokens}
    )
