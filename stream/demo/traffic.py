"""The demo's traffic: simulated contacts, the past hours faster than real time and then at the wall
clock's pace, posted to the worker's ingestion endpoints as each source would send them, or produced to
the events topic (`contactpulse simulate` runs only this, for a worker elsewhere)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import IO, Final

import aiohttp
from aiokafka import AIOKafkaProducer

from processors.adapters.outbound import signed_headers
from schemas.settings import Settings
from simulation.traffic import MOSCOW, SimulatedRecord, TrafficSimulator
from stream.demo.processes import run_tag
from stream.ingest import TOKEN_HEADER, source_token
from stream.topics import ensure_topics

TICK_SECONDS: Final = 0.25


class TrafficPump:
    """Produce simulated traffic: the past `history` at `speed`, then in real time.

    With `ingest_url`, every event of a ticket that its source can say is posted to the worker's
    ingestion endpoint as that source would send it (agents' replies on Telegram and WhatsApp to the
    outbound endpoint), so adapters and endpoints run too; the rest (a Telegram chat's status, broken
    and redelivered records) goes to the events topic as normalized events.
    """

    def __init__(
        self,
        settings: Settings,
        seed: int,
        history: timedelta,
        speed: float,
        run_tag: str = "",
        ingest_url: str | None = None,
    ) -> None:
        self._settings = settings
        self._speed = speed
        self._wall_start = time.monotonic()
        self.sim_start = datetime.now(UTC) - history
        self.sim_now = self.sim_start
        self._ingest_url = ingest_url
        native = ingest_url is not None
        pii_key = settings.pii_key.get_secret_value().encode() if native and settings.pii_key else None
        self._simulator = TrafficSimulator(
            seed=seed, start=self.sim_start, run_tag=run_tag, native=native, pii_key=pii_key
        )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=20
        )
        self._session: aiohttp.ClientSession | None = None
        self._outbox: list[SimulatedRecord] = []
        self._blocked = False
        self._paused = 0.0
        self._last_tick = time.monotonic()
        self.produced = 0
        self.produced_broken = 0
        self.posted = 0
        self._stopped = False

    async def start(self) -> None:
        await self._producer.start()
        if self._ingest_url is not None:
            self._session = aiohttp.ClientSession()
        self._wall_start = self._last_tick = time.monotonic()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        await self._producer.flush()
        await self._producer.stop()
        if self._session is not None:
            await self._session.close()

    async def pump(self, raw_path_ready: bool = True) -> None:
        """Advance the simulation to now and send what is due.

        Until `raw_path_ready` (the worker has normalized a posted payload: its raw agent is consuming)
        only native payloads go out, and while the worker takes nothing (not up yet, 429, 503) the
        simulated clock stands still: normalized events sent ahead would move the detector's clock past
        the payloads still on their way through the raw topic, and those would arrive late.
        """
        now = time.monotonic()
        if self._blocked or (not raw_path_ready and self.posted > 0):
            self._paused += now - self._last_tick
        self._last_tick = now
        elapsed = now - self._wall_start - self._paused
        self.sim_now = min(datetime.now(UTC), self.sim_start + timedelta(seconds=elapsed * self._speed))
        self._outbox.extend(self._simulator.advance(self.sim_now))
        sent, self._blocked = 0, False
        for record in self._outbox:  # in simulated-time order
            if record.source is not None:
                if not await self._post(record):
                    self._blocked = True
                    break
            elif not raw_path_ready and self._ingest_url is not None:
                break
            else:
                await self._producer.send(self._settings.topic_events, key=record.key, value=record.value)
                self.produced_broken += not record.valid
            self.produced += 1
            sent += 1
        del self._outbox[:sent]

    async def _post(self, record: SimulatedRecord) -> bool:
        """Post one native payload; False when the worker did not take it (to be posted again)."""
        if self._session is None:
            return False
        try:
            async with self._session.post(
                f"{self._ingest_url}/{record.endpoint or record.source}",
                data=record.value,
                headers=self._credentials(record),
                timeout=aiohttp.ClientTimeout(total=5),
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            return False
        if status in (429, 503):
            return False
        self.posted += 1
        return True

    def _credentials(self, record: SimulatedRecord) -> dict[str, str]:
        """What the source sends to prove itself: the shared token, or the outbound signature."""
        outbound = self._settings.outbound_webhook_secret
        if record.source == "outbound" and outbound is not None:
            return signed_headers(outbound.get_secret_value(), int(time.time()), record.value)
        token = source_token(self._settings, record.source or "")
        return {TOKEN_HEADER: token} if token else {}


async def simulate(
    settings: Settings, duration: float | None, speed: float, history: timedelta, seed: int, out: IO[str]
) -> int:
    """`contactpulse simulate`: only the traffic, for a worker that runs elsewhere (docker-compose)."""
    await ensure_topics(settings)
    pump = TrafficPump(settings, seed, history, speed, run_tag=run_tag())
    await pump.start()
    started = time.monotonic()
    last_report = 0.0
    try:
        while duration is None or time.monotonic() - started < duration:
            await pump.pump()
            if time.monotonic() - last_report >= 10:
                last_report = time.monotonic()
                print(
                    f"simulated {pump.sim_now.astimezone(MOSCOW):%a %d %b %H:%M} MSK: produced "
                    f"{pump.produced} records to {settings.topic_events}",
                    file=out,
                    flush=True,
                )
            await asyncio.sleep(TICK_SECONDS)
    finally:
        await pump.stop()
    return pump.produced
