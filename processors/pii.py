"""Pseudonymization: phone numbers, e-mail addresses and names become keyed hashes before events leave
`contacts.raw`.

A keyed hash (HMAC-SHA256 with a secret key from the environment) maps the same person to the same
token every time, so a customer's contacts still group together, while nobody without the key can
test a guessed phone number against the token (a plain hash of a phone number is reversible by
enumeration: there are only ~10^10 of them). Free text is scrubbed of phone numbers, e-mail
addresses and personal names (`processors/names.py`) the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Final

from processors.names import known_forms, name_spans

_EMAIL: Final = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Runs of 10-15 digits with the separators people type; short numbers (order ids, codes) stay.
_PHONE: Final = re.compile(r"(?<![\w])\+?\d(?:[\s\-().]*\d){9,14}(?![\w])")


def normalize_phone(raw: str) -> str:
    """Digits only; a Russian trunk prefix 8 becomes the country code 7 (8 916 ... = +7 916 ...)."""
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    if len(digits) == 10:
        digits = "7" + digits  # a Russian number written without country code
    return digits


def normalize_email(raw: str) -> str:
    return raw.strip().lower()


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonymization key must be at least 16 bytes")
        self._key = key

    def token(self, kind: str, value: str) -> str:
        digest = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}_{digest[:20]}"

    def phone(self, raw: str) -> str:
        return self.token("phone", normalize_phone(raw))

    def email(self, raw: str) -> str:
        return self.token("email", normalize_email(raw))

    def name(self, raw: str) -> str:
        return self.token("name", " ".join(raw.lower().split()))

    def identifier(self, kind: str, value: str) -> str:
        """An id that names or embeds a person (a Telegram chat id is the user's id in a private chat; an
        e-mail Message-ID often carries an address; a WhatsApp message id encodes the phone number): the
        same token every time, so deduplication and threading still work, and nothing readable."""
        return self.token(kind, value)

    def account(self, source: str, account_id: str) -> str:
        """A source's own user id (a Telegram user id, a Zendesk requester id)."""
        return self.token(source, account_id)

    def scrub(self, text: str, known_names: Iterable[str] = ()) -> str:
        """Replace e-mail addresses, phone numbers and personal names inside free text with their
        tokens. `known_names` are the sender's names as the source gave them (found in every form)."""
        text = _EMAIL.sub(lambda m: self.email(m.group(0)), text)
        text = _PHONE.sub(lambda m: self.phone(m.group(0)), text)
        for start, end in reversed(name_spans(text, known_forms(known_names))):
            text = text[:start] + self.name(text[start:end]) + text[end:]
        return text
