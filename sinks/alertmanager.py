"""Posting alerts to Alertmanager's API v2 (`POST /api/v2/alerts`), to every member of an HA pair.

Alertmanager members do not forward alerts to each other (they gossip silences and what was notified),
so a client posts to each. A post counts as delivered only when every member answered 200.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import aiohttp
import orjson

_CHUNK: Final = 500
"""Alerts per request: a large firing set is several modest posts, not one huge body."""


class AlertmanagerError(Exception):
    """A member did not take the alerts (connection failed, timed out, or answered other than 200)."""


class AlertmanagerClient:
    def __init__(self, urls: Sequence[str], session: aiohttp.ClientSession, timeout: float = 10.0) -> None:
        if not urls:
            raise ValueError("no Alertmanager URL")
        self._urls = list(urls)
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def post(self, alerts: list[dict[str, Any]]) -> None:
        """Deliver to every member; raise AlertmanagerError naming each member that failed."""
        failures = []
        for url in self._urls:
            for start in range(0, len(alerts), _CHUNK):
                body = orjson.dumps(alerts[start : start + _CHUNK])
                try:
                    async with self._session.post(
                        f"{url}/api/v2/alerts",
                        data=body,
                        headers={"Content-Type": "application/json"},
                        timeout=self._timeout,
                    ) as response:
                        if response.status != 200:
                            text = (await response.text())[:300]
                            failures.append(f"{url}: HTTP {response.status} {text}")
                            break
                except (aiohttp.ClientError, TimeoutError) as exc:
                    failures.append(f"{url}: {type(exc).__name__} {exc}")
                    break
        if failures:
            raise AlertmanagerError("; ".join(failures))
