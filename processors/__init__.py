"""Pure domain logic: no Kafka, no ClickHouse, no asyncio. Time comes from an injected clock.

The modules in `NATIVE_MODULES` may also run compiled: `deploy/native/build` compiles these same files
with mypyc (the mypy project's compiler for type-annotated Python) into `build/native/`, about a third
faster for replay and the detector. The compiled modules are used only while they were built from the
sources as they are now (a digest of processors/ and schemas/ recorded at build time); after any edit,
or with `CONTACTPULSE_BUILD=sources`, the sources run, never stale code. `BUILD` says which runs.

What the compiler needs of these modules (no-ops when the sources run): their classes carry
`@mypyc_attr(allow_interpreted_subclasses=True)`, without which a compiled class's `__new__` runs
`__init__` and pickle (the detector's checkpoints) cannot rebuild an instance, and tests could not
subclass a detector; frozen dataclasses stay Python classes (`native_class=False`), since pickle sets
their fields one by one.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Final

NATIVE_MODULES: Final = (
    "alerting",
    "calendar",
    "csat",
    "engine",
    "features",
    "incidents",
    "ordering",
    "rates",
    "repeats",
    "silence",
    "sla",
    "sla_alerts",
    "sla_queue",
    "sla_schedule",
    "stemming",
    "summaries",
    "ticket_alerts",
    "ticket_state",
    "tickets",
    "trends",
    "windows",
)
"""The detection engine and everything it calls per event. (Adapters, classification and names run once
per contact at the edge; `detector` holds a Protocol and a per-event record and stays interpreted.)"""

_ROOT: Final = Path(__file__).resolve().parent.parent
NATIVE_DIR: Final = _ROOT / "build" / "native"
NATIVE_STAMP: Final = NATIVE_DIR / "SOURCES"
"""The digest of the sources the compiled modules were built from."""


def sources_digest() -> str:
    """The Python version and every source file the compiled modules were built from or against."""
    digest = hashlib.sha256(sys.implementation.cache_tag.encode())
    for package in ("processors", "schemas"):
        for path in sorted((_ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _choose_build() -> tuple[str, str]:
    if os.environ.get("CONTACTPULSE_BUILD", "") == "sources":
        return "sources", "CONTACTPULSE_BUILD=sources"
    try:
        stamp = NATIVE_STAMP.read_text().strip()
    except OSError:
        return "sources", "not compiled (deploy/native/build)"
    if stamp != sources_digest():
        return "sources", "the sources changed since the compiled build (deploy/native/build)"
    sys.path.append(str(NATIVE_DIR))  # the compiled modules' shared library
    __path__.insert(0, str(NATIVE_DIR / "processors"))  # found before the sources
    return "compiled", "compiled with mypyc"


BUILD, BUILD_NOTE = _choose_build()
"""`compiled` or `sources`, and why."""
