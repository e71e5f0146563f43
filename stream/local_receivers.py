"""A local Alertmanager with its receivers pointed at local stand-ins: a Telegram Bot API that records
`sendMessage` calls and an SMTP server (aiosmtpd) that records mail. The demo prints what they receive
(what on-call leads and product managers would have got); the tests assert on it."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiosmtpd.controller import Controller

from sinks.alertmanager_config import render_config

ALERTMANAGER = "prometheus-alertmanager"
BOT_TOKEN = "4242:test-bot-token"
CHAT_ID = "-1001234567"


@dataclass
class FakeTelegram:
    """The Bot API's `sendMessage`, answering as Telegram does; every call kept (and shown, if asked)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0
    on_message: Callable[[str], None] | None = None

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._call)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _call(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.content_type == "application/json":
            params = orjson.loads(body)
        else:
            params = dict(await request.post())
        params["_token"] = request.match_info["token"]
        params["_method"] = request.match_info["method"]
        params["_at"] = time.monotonic()
        if params["_method"] == "sendMessage":
            self.messages.append(params)
            if self.on_message is not None:
                self.on_message(str(params.get("text", "")))
        result = {
            "message_id": len(self.messages),
            "date": int(time.time()),
            "chat": {"id": int(CHAT_ID), "type": "supergroup"},
            "text": params.get("text", ""),
        }
        return web.json_response({"ok": True, "result": result})

    def texts(self) -> list[str]:
        return [str(m["text"]) for m in self.messages]


class _Recorder:
    def __init__(self) -> None:
        self.mail: list[EmailMessage] = []
        self.on_mail: Callable[[EmailMessage], None] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.mail.append(message)
        if self.on_mail is not None:
            self.on_mail(message)
        return "250 OK"


@dataclass
class FakeSmtp:
    recorder: _Recorder = field(default_factory=_Recorder)
    controller: Controller | None = None
    port: int = 0

    def start(self, port: int) -> None:
        self.port = port
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.recorder.mail if address in str(m["To"])]


@dataclass
class RunningAlertmanager:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def receiver_environment(telegram_port: int, smtp_port: int, **timings: str) -> dict[str, str]:
    return {
        "CONTACTPULSE_AM_TELEGRAM_API_URL": f"http://127.0.0.1:{telegram_port}",
        "CONTACTPULSE_AM_TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "CONTACTPULSE_AM_TELEGRAM_CHAT_ID": CHAT_ID,
        "CONTACTPULSE_AM_SMTP_SMARTHOST": f"127.0.0.1:{smtp_port}",
        "CONTACTPULSE_AM_SMTP_FROM": "contactpulse@example.org",
        "CONTACTPULSE_AM_SMTP_REQUIRE_TLS": "false",
        "CONTACTPULSE_AM_ONCALL_EMAIL": "oncall@example.org",
        "CONTACTPULSE_AM_PRODUCT_EMAIL": "product@example.org",
        "CONTACTPULSE_AM_ENGINEERING_EMAIL": "engineering@example.org",
        "CONTACTPULSE_AM_PRODUCT_ROUTES": "topic=billing:pm-billing@example.org",
        **{f"CONTACTPULSE_AM_{name.upper()}": value for name, value in timings.items()},
    }


def spawn_alertmanager(
    config: Path, storage: Path, port: int, workdir: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    """The Debian package's binary, without clustering, logging to `workdir`."""
    log_path = workdir / f"alertmanager-{port}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={config}",
                f"--storage.path={storage}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=info",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
    return process, log_path


async def start_alertmanager(
    workdir: Path, port: int, environment: Mapping[str, str], storage: Path | None = None
) -> RunningAlertmanager:
    """The Debian package's binary with the shipped configuration, rendered; waits until it is ready."""
    config = workdir / "alertmanager.yml"
    config.write_text(render_config(environment), encoding="utf-8")
    process, log_path = spawn_alertmanager(config, storage or workdir / "am-data", port, workdir)
    url = f"http://127.0.0.1:{port}"
    running = RunningAlertmanager(process, url, log_path)
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"Alertmanager exited:\n{running.log()[-3000:]}")
            try:
                async with session.get(f"{url}/-/ready") as response:
                    if response.status == 200:
                        return running
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    running.stop()
    raise RuntimeError(f"Alertmanager not ready in 30 s:\n{running.log()[-3000:]}")
