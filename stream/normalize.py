"""`contactpulse normalize`: one native payload -> normalized events, verified as the endpoint would."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from processors.adapters import ADAPTERS
from processors.classify import Classifier
from processors.normalize import Refused, normalize_payload
from schemas.errors import DeadLetterReason
from schemas.settings import Settings
from stream.ingest import adapter_context, source_secret


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
    if secret is None:
        print(f"warning: no secret configured for {source}: the signature is not verified", file=errors)
    context = adapter_context(settings, lambda m: print(f"warning: {m}", file=errors))
    classifier = Classifier.from_file(settings.classification_file)
    outcome = normalize_payload(adapter, body, headers, context, classifier, secret, datetime.now(UTC))
    if isinstance(outcome, Refused):
        what = {
            DeadLetterReason.BAD_SIGNATURE: "signature rejected",
            DeadLetterReason.UNPARSABLE_PAYLOAD: f"cannot parse the {source} payload",
            DeadLetterReason.ADAPTER_ERROR: f"the {source} adapter failed on the payload",
        }.get(outcome.reason, outcome.reason.value)
        print(f"normalize: {what}: {outcome.detail}", file=errors)
        return 2
    if outcome.ignored is not None:
        print(f"normalize: not a customer contact: {outcome.ignored}", file=errors)
    for event in outcome.events:
        out.write(event.to_json().decode() + "\n")
    return 0
