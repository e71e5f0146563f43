"""The weekly report as an e-mail (HTML with a plain-text part) and its delivery over SMTP (stdlib
`smtplib`: one message a week needs no async client). Credentials come from settings only."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from schemas.report import WeeklyReport
from schemas.settings import Settings
from sinks.report_html import plain_summary, title


def report_message(report: WeeklyReport, page: str, sender: str, recipients: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"ContactPulse · {title(report)} · {report.iso_week}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "contactpulse")
    message.set_content(plain_summary(report))
    message.add_alternative(page, subtype="html")
    return message


def send(message: EmailMessage, settings: Settings, timeout: float = 30.0) -> None:
    """Deliver through the configured SMTP server; raises on any refusal (the caller retries later)."""
    if not settings.smtp_host:
        raise ValueError("CONTACTPULSE_SMTP_HOST is not set: nowhere to send the report")
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.smtp_security == "ssl":
        smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with smtp:
        if settings.smtp_security == "starttls":
            smtp.starttls(context=context)
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)
        smtp.send_message(message)
