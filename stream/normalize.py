"""`contactpulse normalize`: one native payload -> normalized events, verified as the endpoint would."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from processors.adapters import ADAPTERS, AdapterContext, AdapterError, SignatureError
from processors.classify import Classifier
from schemas.settings import Settings
from stream.ingest import pseudonymizer_from, source_secret


def normalize_file(
    settings: Settings, source: str, path: Path, header_args: list[str], out: IO[str], errors: IO[str]
) -> int:
    adapter = ADAPTERS.get(source)
    if adapter is None:
        print(f"normalize: unknown source {source!r}; known: {', '.join(sorted(ADAPTERS))}", file=errors)
        return 2
    headers = {}
    for item in header_args:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"normalize: --header {item!r} is not K=V", file=errors)
            return 2
        headers[key.strip()] = value.strip()
    try:
        body = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        print(f"normalize: cannot read {path}: {exc}", file=errors)
        return 2
    secret = source_secret(settings, source)
    try:
        if secret is None:
            print(f"warning: no secret configured for {source}: the signature is not verified", file=errors)
        else:
            adapter.verify(body, headers, secret)
        context = AdapterContext(
            pseudonymizer_from(settings, lambda m: print(f"warning: {m}", file=errors)),
            ZoneInfo(settings.time_zone),
            secret,
        )
        events = adapter.parse(body, headers, context)
    except SignatureError as exc:
        print(f"normalize: signature rejected: {exc}", file=errors)
        return 2
    except AdapterError as exc:
        print(f"normalize: cannot parse the {source} payload: {exc}", file=errors)
        return 2
    classifier = Classifier.from_file(settings.classification_file)
    for event in events:
        out.write(classifier.enrich(event).to_json().decode() + "\n")
    return 0
