"""E-mail (RFC 5322 messages as `.eml` bytes, as an IMAP poller or a mail webhook hands them over).

Python's own `email` package does the hard parts (MIME, RFC 2047 encoded words, transfer encodings,
charsets such as koi8-r and windows-1251); here: which part is the customer's text, what of it is the
quoted history, which thread it belongs to, and which messages are machines talking.

- Text: the first text/plain part that is not an attachment; else the first text/html part, turned into
  text (tags dropped, block elements as line breaks, entities decoded).
- Quoted replies are cut: from the first attribution line ("On ... wrote:", "... написал(а):",
  "-----Original Message-----", "От: ...") or the first block of ">"-quoted lines; then the signature:
  from the `-- ` separator, a mobile footer ("Sent from my iPhone", "Отправлено с iPhone"), or a closing
  phrase ("С уважением,", "Best regards,") followed by at most six lines.
- Threading: a conversation is one ticket, named by its root message: the first id of `References`,
  else `In-Reply-To`, else the message's own `Message-ID`.
- Agents' replies: a message from an address of the support team's domains
  (`CONTACTPULSE_EMAIL_SUPPORT_DOMAINS`), or one the IMAP poller read from the mailbox's sent folder
  (`CONTACTPULSE_IMAP_SENT_MAILBOX`; it marks the record `X-ContactPulse-Mailbox: sent`), is
  `agent_replied` on its thread's ticket: the customer is its first recipient outside those domains,
  the agent the sender (both keyed hashes); its text is not kept (the customer's words are the signal).
- Not contacts: auto-replies (`Auto-Submitted` other than "no", `X-Autoreply`, `X-Autorespond`,
  `Precedence: auto_reply`), delivery reports (`multipart/report; report-type=delivery-status`,
  mailer-daemon senders), and a message of the team that answers no thread (it starts no ticket).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Final

from processors.adapters.base import AdapterContext, AdapterError, NotAContact, build_event, lower_headers
from schemas.event import ContactEvent

_ATTRIBUTION: Final = re.compile(
    r"^\s*(?:On .{3,200} wrote:|.{3,200} (?:написал|написала|написал\(а\)):|"
    r"-{2,}\s*(?:Original Message|Исходное сообщение|Пересылаемое сообщение)\s*-{2,}|"
    r"(?:From|От):\s.+)\s*$",
    re.IGNORECASE,
)
_MESSAGE_ID: Final = re.compile(r"<([^<>\s]+)>")
MAILBOX_HEADER: Final = "x-contactpulse-mailbox"
"""Set to `sent` by the IMAP poller on messages of the support mailbox's sent folder."""
_BLOCKS: Final = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "table"})


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._quoted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "blockquote":
            self._quoted += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "blockquote":
            self._quoted = max(0, self._quoted - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._quoted:
            # Quoted history in HTML mail sits in <blockquote>: mark it as a text reply would.
            data = "\n".join("> " + line for line in data.splitlines() if line.strip())
        self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return "\n".join(line for line in lines if line)


def strip_quoted(text: str) -> str:
    """The new part of a reply: everything before the attribution line or the quoted block."""
    kept: list[str] = []
    for line in text.splitlines():
        if _ATTRIBUTION.match(line) or line.lstrip().startswith(">"):
            break
        kept.append(line)
    return "\n".join(kept).strip()


_SIGNATURE_SEPARATOR: Final = re.compile(r"^--\s?$")
_MOBILE_FOOTER: Final = re.compile(
    r"^\s*(?:Sent from my|Sent from Mail for|Get Outlook for|Отправлено (?:с|из)|Отправлено через)\b",
    re.IGNORECASE,
)
_CLOSING: Final = re.compile(
    r"^\s*(?:с уважением|с наилучшими пожеланиями|всего доброго|best regards|kind regards|regards|"
    r"best wishes|sincerely|cheers)\s*[,.!]?\s*\S{0,40}\s*$",
    re.IGNORECASE,
)
_SIGNATURE_LINES: Final = 6
"""A closing phrase starts the signature only when at most this many lines follow it (name, title,
company, phone), so a "Regards" inside the body keeps what comes after it."""


def strip_signature(text: str) -> str:
    """The message without its signature: from the RFC 3676 `-- ` separator, a mobile client's footer,
    or a closing phrase ("С уважением,", "Best regards,") followed by a short block, to the end."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if index == 0:
            continue
        if _SIGNATURE_SEPARATOR.match(line) or _MOBILE_FOOTER.match(line):
            return "\n".join(lines[:index]).strip()
        if (
            _CLOSING.match(line)
            and len([rest for rest in lines[index + 1 :] if rest.strip()]) <= _SIGNATURE_LINES
        ):
            return "\n".join(lines[:index]).strip()
    return text.strip()


def _ids(value: str | None) -> list[str]:
    return _MESSAGE_ID.findall(value or "")


def thread_root(message: Message) -> str | None:
    references = _ids(str(message.get("References", "")))
    if references:
        return references[0]
    reply_to = _ids(str(message.get("In-Reply-To", "")))
    if reply_to:
        return reply_to[0]
    own = _ids(str(message.get("Message-ID", "")))
    return own[0] if own else None


def is_automatic(message: Message) -> bool:
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    if auto and auto != "no":
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    if str(message.get("Precedence", "")).strip().lower() in ("auto_reply", "auto-reply"):
        return True
    if message.get_content_type() == "multipart/report":
        return True
    sender = str(message.get("From", "")).lower()
    return "mailer-daemon@" in sender or "postmaster@" in sender


def body_text(message: EmailMessage) -> str:
    plain = message.get_body(preferencelist=("plain",))
    if plain is not None:
        return str(plain.get_content())
    html = message.get_body(preferencelist=("html",))
    if html is not None:
        return html_to_text(str(html.get_content()))
    return ""


class EmailAdapter:
    name = "email"

    def verify(self, body: bytes, headers: Mapping[str, str], secret: str, now: datetime) -> None:
        return None  # mail arrives from the mailbox the poller reads: nothing to verify per message

    def parse(self, body: bytes, headers: Mapping[str, str], context: AdapterContext) -> list[ContactEvent]:
        if not body.strip():
            raise AdapterError("empty message")
        message = message_from_bytes(body, policy=policy.default)
        assert isinstance(message, EmailMessage)
        if not message.keys():
            raise AdapterError("not an RFC 5322 message: no header fields")
        if is_automatic(message):
            raise NotAContact("automatic e-mail (auto-reply, bounce or list traffic)")
        senders = getaddresses([str(message.get("From", ""))])
        address = next((addr for _, addr in senders if "@" in addr), None)
        if address is None:
            raise AdapterError("message without a From address")
        occurred = self._date(message, context)
        own_id = _ids(str(message.get("Message-ID", "")))
        event_id = own_id[0] if own_id else hashlib.sha256(body).hexdigest()[:32]
        root = thread_root(message) or event_id
        sent = lower_headers(headers).get(MAILBOX_HEADER, "").strip().lower() == "sent"
        if sent or _domain(address) in context.support_domains:
            return [self._agent_reply(message, address, event_id, root, occurred, context)]
        try:
            text = strip_signature(strip_quoted(body_text(message)))
        except (LookupError, UnicodeError) as exc:
            raise AdapterError(f"cannot decode the body: {exc}") from None
        subject = str(message.get("Subject", "")).strip() or None
        known = [name for name, _ in senders if name]  # the display names of From
        return [
            build_event(
                {
                    "event_id": f"email:{context.pii.identifier('msgid', event_id)}",
                    "type": "contact_received",
                    "occurred_at": occurred,
                    "ticket_id": f"email:{context.pii.identifier('msgid', root)}",
                    "channel": "email",
                    "source": "email",
                    "customer_id": context.pii.email(address),
                    "subject": context.pii.scrub(subject, known)[:1024] if subject else None,
                    "text": context.pii.scrub(text, known) if text else None,
                    "email_in_reply_to": [
                        context.pii.identifier("msgid", reply)
                        for reply in _ids(str(message.get("In-Reply-To", "")))[:1]
                    ]
                    or None,
                }
            )
        ]

    @staticmethod
    def _agent_reply(
        message: Message, agent: str, event_id: str, root: str, occurred: str, context: AdapterContext
    ) -> ContactEvent:
        if root == event_id:
            raise NotAContact("an e-mail of the support team that answers no thread")
        recipients = getaddresses([str(message.get(field, "")) for field in ("To", "Cc")])
        customer = next(
            (addr for _, addr in recipients if "@" in addr and _domain(addr) not in context.support_domains),
            None,
        )
        return build_event(
            {
                "event_id": f"email:{context.pii.identifier('msgid', event_id)}",
                "type": "agent_replied",
                "occurred_at": occurred,
                "ticket_id": f"email:{context.pii.identifier('msgid', root)}",
                "channel": "email",
                "source": "email",
                "customer_id": context.pii.email(customer) if customer else None,
                "agent": context.pii.email(agent),
            }
        )

    @staticmethod
    def _date(message: Message, context: AdapterContext) -> str:
        raw = message.get("Date")
        if raw is None:
            raise AdapterError("message without a Date header")
        try:
            parsed = parsedate_to_datetime(str(raw))
        except (TypeError, ValueError, IndexError):
            raise AdapterError(f"Date {str(raw)!r} is not an RFC 5322 date") from None
        if parsed.tzinfo is None:
            # "-0000" or no zone: the sender's zone is unknown; read it in the configured zone.
            parsed = parsed.replace(tzinfo=context.time_zone)
        return datetime.isoformat(parsed)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()
