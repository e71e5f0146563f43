"""Render the shipped Alertmanager configuration with the receivers' secrets and addresses.

Alertmanager 0.25 reads a Telegram bot token only inline and expands no environment variables, so the
repository ships a template (`deploy/alertmanager/alertmanager.yml`) and this fills it where it runs:
`${NAME}` must be set, `${NAME:-default}` falls back. Product managers' subscriptions
(`CONTACTPULSE_AM_PRODUCT_ROUTES="topic=billing:pm@example.org,..."`) become sub-routes and receivers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

TEMPLATE: Final = Path(__file__).resolve().parent.parent / "deploy" / "alertmanager" / "alertmanager.yml"
TEMPLATES_DIR: Final = TEMPLATE.parent / "templates"
_PLACEHOLDER: Final = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")
_LABEL: Final = re.compile(r"^[a-z_]+$")
ROUTES_VARIABLE: Final = "CONTACTPULSE_AM_PRODUCT_ROUTES"


class MissingSetting(ValueError):
    """A variable the configuration needs is not set (or a subscription is malformed)."""


def product_subscriptions(raw: str) -> list[tuple[str, str, str]]:
    """`topic=billing:pm@example.org,...` -> [(label, value, address)]."""
    found = []
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        matcher, _, address = entry.partition(":")
        label, _, value = matcher.partition("=")
        if not (_LABEL.match(label) and value and "@" in address):
            raise MissingSetting(f"{ROUTES_VARIABLE}: {entry!r} is not label=value:address")
        found.append((label, value, address))
    return found


def _routes(subscriptions: list[tuple[str, str, str]]) -> tuple[str, str]:
    routes, receivers = [], []
    for n, (label, value, address) in enumerate(subscriptions):
        name = f"product-{n + 1}-{label}-{re.sub(r'[^a-z0-9]+', '-', value.lower())}"
        routes.append(
            f"        - receiver: {json.dumps(name)}\n"
            f"          matchers: [{json.dumps(f'{label}={json.dumps(value)}')}]"
        )
        receivers.append(
            f"  - name: {json.dumps(name)}\n"
            "    email_configs:\n"
            f"      - to: {json.dumps(address)}\n"
            "        headers:\n"
            "          Subject: '{{ template \"contactpulse.email.subject\" . }}'\n"
            "        html: '{{ template \"contactpulse.email.html\" . }}'\n"
            "        send_resolved: false"
        )
    return "\n".join(routes), "\n".join(receivers)


def render_config(environment: Mapping[str, str], template: Path = TEMPLATE) -> str:
    text = template.read_text(encoding="utf-8")
    routes, receivers = _routes(product_subscriptions(environment.get(ROUTES_VARIABLE, "")))
    if routes:
        text = text.replace("        # PRODUCT_ROUTES", routes)
        text = text.replace("  # PRODUCT_RECEIVERS", receivers)
    environment = {"CONTACTPULSE_AM_TEMPLATES_DIR": str(TEMPLATES_DIR), **environment}
    missing = []

    def fill(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environment.get(name)
        if value is None or value == "":
            if default is None:
                missing.append(name)
                return ""
            value = default
        return value

    rendered = _PLACEHOLDER.sub(fill, text)
    if missing:
        raise MissingSetting("set " + ", ".join(sorted(set(missing))))
    return rendered
