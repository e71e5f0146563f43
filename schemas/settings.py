"""Runtime settings, read from `CONTACTPULSE_*` environment variables (and nothing at import time).

Every field has a description: the README's settings table is generated from this model and a test
keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CONTACTPULSE_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port."
    )
    clickhouse_dsn: SecretStr = Field(
        SecretStr("chdb://./data/clickhouse"),
        description=(
            "Where aggregates and events land. `chdb://PATH` runs the embedded ClickHouse engine in the "
            "worker process (one process may open a path at a time); `http(s)://user:pass@host:port/db` "
            "talks to a ClickHouse server. Treated as a secret: never logged."
        ),
    )
    app_id: str = Field(
        "contactpulse", description="Faust application id: the consumer group and the prefix of its topics."
    )
    data_dir: Path = Field(Path("data"), description="Local state of the worker (Faust table stores).")
    topic_raw: str = Field("contacts.raw", description="Native payloads as the sources sent them.")
    raw_retention_hours: float = Field(
        168.0, gt=0, description="How long contacts.raw keeps native payloads (the only place PII stays)."
    )
    topic_events: str = Field("contacts.events", description="Normalized contact events (the contract).")
    topic_tickets: str = Field(
        "contacts.tickets",
        description="Ticket state and SLA metrics, one record per change, keyed by ticket.",
    )
    topic_dead_letter: str = Field(
        "contacts.dead-letter",
        description="Records that could not be processed: original bytes, reason in headers.",
    )
    dead_letter_retention_hours: float = Field(
        168.0,
        gt=0,
        description="How long contacts.dead-letter keeps refused records (their bytes may hold personal "
        "data). Applied when the worker starts, to an existing topic too.",
    )
    dead_letter_budget_ratio: float = Field(
        0.5,
        gt=0,
        le=1,
        description="POST /ingest: once more than this share of a source's payloads in the last minute "
        "(at least 20) were refused, its further refusals are dead-lettered as hash and reason only, "
        "without their bytes, and contactpulse_dead_letter_budget_exceeded{source} is 1.",
    )
    dead_letter_budget_per_second: float = Field(
        5.0,
        gt=0,
        description="POST /ingest: the same once a source's refusals over the last minute exceed this "
        "many per second on average.",
    )
    allow_unsigned_sources: str = Field(
        "",
        description="Sources whose POST /ingest is accepted with neither a vendor signature secret nor a "
        "CONTACTPULSE_<SOURCE>_TOKEN configured: comma-separated names, or `*` for all. Empty: such a "
        "source answers 403, so an endpoint is never open to anyone by omission.",
    )
    amocrm_token: SecretStr | None = Field(
        None,
        description="Shared token amoCRM must send: header X-ContactPulse-Token, or "
        "query parameter `token` for senders that cannot set headers. Secret.",
    )
    email_token: SecretStr | None = Field(
        None,
        description="Shared token of POST /ingest/email (the IMAP poller needs none): header "
        "X-ContactPulse-Token, or "
        "query parameter `token` for senders that cannot set headers. Secret.",
    )
    freshdesk_token: SecretStr | None = Field(
        None,
        description="Shared token Freshdesk must send: header X-ContactPulse-Token, or "
        "query parameter `token` for senders that cannot set headers. Secret.",
    )
    jira_token: SecretStr | None = Field(
        None,
        description="Shared token Jira must send when its webhook has no secret: header "
        "X-ContactPulse-Token, or query parameter `token` for senders that cannot set headers. Secret.",
    )
    pbx_token: SecretStr | None = Field(
        None,
        description="Shared token the PBX must send: header X-ContactPulse-Token, or "
        "query parameter `token` for senders that cannot set headers. Secret.",
    )
    telegram_token: SecretStr | None = Field(
        None,
        description="Shared token Telegram (besides its secret) must send: header X-ContactPulse-Token, or "
        "query parameter `token` for senders that cannot set headers. Secret.",
    )
    webchat_token: SecretStr | None = Field(
        None,
        description="Shared token the web chat must send: header X-ContactPulse-Token, or "
        "query parameter `token` for senders that cannot set headers. Secret.",
    )
    whatsapp_token: SecretStr | None = Field(
        None,
        description="Shared token WhatsApp (besides its signature) sends: header X-ContactPulse-Token, or "
        "query parameter `token` for senders that cannot set headers. Secret.",
    )
    zendesk_token: SecretStr | None = Field(
        None,
        description="Shared token Zendesk (besides its signature) must send: header X-ContactPulse-Token, or "
        "query parameter `token` for senders that cannot set headers. Secret.",
    )
    topic_alerts_oncall: str = Field("alerts.oncall", description="Alert state changes for on-call leads.")
    topic_alerts_product: str = Field(
        "alerts.product", description="Alert state changes for product managers."
    )
    topic_partitions: int = Field(
        4, ge=1, description="Partitions of the topics the worker declares (all co-partitioned)."
    )
    kafka_session_timeout_seconds: float = Field(
        30.0,
        ge=6,
        description="How long the consumer groups wait for a silent worker before they hand its "
        "partitions to another (a crashed worker's partitions stall this long).",
    )
    web_host: str = Field("127.0.0.1", description="Bind address of the worker's HTTP server.")
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the worker's HTTP server (/metrics).")
    sink_max_batch_rows: int = Field(
        20000, ge=1, description="ClickHouse sink: rows per INSERT at most (one INSERT per batch)."
    )
    sink_flush_interval_seconds: float = Field(
        1.0, gt=0, description="ClickHouse sink: how long a partial batch may wait before it is written."
    )
    sink_retry_max_backoff_seconds: float = Field(
        30.0, gt=0, description="ClickHouse sink: longest pause between retries of a failed INSERT."
    )
    sink_niceness: int = Field(
        10,
        ge=0,
        le=19,
        description="ClickHouse sink: how far its writing thread (and chDB's threads it starts) is niced "
        "below the event loops, so on a busy machine the detector's alerts go first; a worker that runs "
        "only the sink (`CONTACTPULSE_WORKER_ROLES=sink`) is niced by this as a whole.",
    )
    config_file: Path | None = Field(
        None, description="Detection config (TOML); unset means deploy/config/contactpulse.toml."
    )
    classification_file: Path | None = Field(
        None, description="Classification rules (TOML); unset means deploy/config/classification.toml."
    )
    sources_file: Path | None = Field(
        None,
        description="Field mappings for admin-written webhook bodies (TOML); unset means "
        "deploy/config/sources.toml.",
    )
    worker_roles: str = Field(
        "sink,detector",
        pattern=r"^(sink|detector)(,(sink|detector))?$",
        description="What this worker runs besides ingest and the normalizing agent: the ClickHouse sink "
        "(which validates contacts.events and dead-letters what it refuses), the detector (with the "
        "notifier, reports and IMAP polling), or both (the default). One process "
        "with `sink` and one with `detector` give each its own core.",
    )
    detector_checkpoint_seconds: float = Field(
        60.0, gt=0, description="How often the detector checkpoints its state to Kafka."
    )
    detector_fetch_wait_seconds: float = Field(
        0.025,
        ge=0,
        le=0.5,
        description="How long the broker may hold the detector's fetch to gather events (a steady stream "
        "then comes in fewer, larger polls: a quarter less CPU an event; an alert up to this much later). "
        "0: each fetch answered as soon as one event is there.",
    )
    detector_ticket_states_seconds: float = Field(
        1.0,
        ge=0,
        description="How often the detector publishes the state of the tickets changed since (one record "
        "a ticket however many events it had; the `tickets` table lags by up to this). 0: every poll.",
    )
    detector_partition_idle_seconds: float = Field(
        2.0,
        ge=0,
        description="An input partition of the detector that is caught up and has delivered nothing for "
        "this long stops holding back the others' events (the event-time merge's idleness). Keep it well "
        "above the detector's longest poll under load (0.2 s made a backlog's events late).",
    )
    detector_idle_advance_seconds: float = Field(
        300.0,
        ge=0,
        description="Once the detector's input has been quiet for longer than this many seconds, its "
        "clock follows the time that passes (this far behind), so deadlines fire during silence; a backlog "
        "being read never moves it. 0 turns it off (the clock is then event time only).",
    )
    pii_key: SecretStr | None = Field(
        None,
        description="Key of the keyed hash that pseudonymizes phone numbers, e-mail addresses and names "
        "(at least 16 bytes). Unset: a random key per process, with a warning (tokens then differ "
        "between runs).",
    )
    telegram_secret_token: SecretStr | None = Field(
        None, description="Telegram webhook secret (X-Telegram-Bot-Api-Secret-Token)."
    )
    whatsapp_app_secret: SecretStr | None = Field(
        None,
        description="Meta app secret that signs WhatsApp webhooks (X-Hub-Signature-256); "
        "unset: not verified.",
    )
    whatsapp_verify_token: SecretStr | None = Field(
        None, description="Token Meta sends in the WhatsApp subscription handshake (GET /ingest/whatsapp)."
    )
    jira_webhook_secret: SecretStr | None = Field(
        None, description="Jira webhook secret (X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>)."
    )
    zendesk_webhook_secret: SecretStr | None = Field(
        None, description="Zendesk webhook signing secret (X-Zendesk-Webhook-Signature)."
    )
    ingest_max_in_flight: int = Field(
        512, ge=1, description="POST /ingest answers 429 beyond this many requests in flight."
    )
    ingest_ack_timeout_seconds: float = Field(
        10.0, gt=0, description="POST /ingest answers 503 when Kafka has not acknowledged within this."
    )
    alertmanager_url: str | None = Field(
        None,
        description="Alertmanager base URL(s), comma-separated (every member of an HA pair is posted "
        "to). Set: the worker also runs the notifier, which posts the alerts to `POST /api/v2/alerts`.",
    )
    notifier_resend_seconds: float = Field(
        60.0,
        gt=0,
        description="How often the notifier re-sends every firing alert (Alertmanager forgets one not "
        "re-sent before its endsAt, which the notifier sets 4 intervals ahead).",
    )
    notifier_web_port: int = Field(
        6067, ge=1, le=65535, description="Port of `contactpulse notify`'s /metrics when run on its own."
    )
    ticket_url_template: str | None = Field(
        None,
        description="Link to a ticket in your helpdesk, with `{ticket_id}`, e.g. "
        "`https://support.example.com/tickets/{ticket_id}`: the `ticket_url` annotation of ticket alerts.",
    )
    ticket_url_templates: str = Field(
        "",
        description="Links per source, winning over ticket_url_template for that source's tickets: "
        "comma-separated `source=template`, where `{number}` is the vendor's own id, e.g. "
        "`zendesk=https://acme.zendesk.com/agent/tickets/{number},jira=https://acme.atlassian.net/browse/{number}`.",
    )
    dashboard_url: str | None = Field(
        None, description="The Grafana dashboard URL: every alert's `dashboard_url` and `generatorURL`."
    )
    imap_host: str | None = Field(None, description="IMAP server of the support mailbox; unset: no polling.")
    imap_port: int = Field(993, ge=1, le=65535, description="IMAP port.")
    imap_ssl: bool = Field(True, description="IMAP over TLS (IMAPS).")
    imap_user: str | None = Field(None, description="IMAP login.")
    imap_password: SecretStr | None = Field(None, description="IMAP password. Secret.")
    imap_mailbox: str = Field("INBOX", description="Mailbox to read unseen messages from.")
    imap_poll_seconds: float = Field(30.0, gt=0, description="Pause between two IMAP polls.")
    imap_sent_mailbox: str | None = Field(
        None,
        description="The support mailbox's sent folder (e.g. `Sent`): the poller also reads the messages "
        "agents send from it, as `agent_replied` on their thread. Unset: not read.",
    )
    imap_sent_lookback_hours: float = Field(
        24.0,
        ge=0,
        description="The first poll of the sent folder (or one after its UIDVALIDITY changed) reads the "
        "messages of this many hours back; later polls read only messages added since.",
    )
    email_support_domains: str = Field(
        "",
        description="E-mail domains of the support team, comma-separated: a message from one of them is "
        "an agent's reply on its thread, not a customer's contact.",
    )
    whatsapp_sent_is_reply: bool = Field(
        False,
        description="A WhatsApp status receipt (`sent`/`delivered`/`read`) of a message the business sent "
        "in a customer-service conversation counts as the agent's reply. Off: only the outbound endpoint "
        "reports WhatsApp replies.",
    )
    outbound_webhook_secret: SecretStr | None = Field(
        None,
        description="Secret that signs `POST /ingest/outbound/{channel}` (an agent's message sent from a "
        "bot or console): header X-ContactPulse-Signature `sha256=<hex HMAC-SHA256(secret, "
        "timestamp + '.' + body)>` with X-ContactPulse-Timestamp (unix seconds, within 5 minutes).",
    )
    smtp_host: str | None = Field(None, description="SMTP server the weekly report is sent through.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="SMTP transport security: STARTTLS, implicit TLS (port 465) or none."
    )
    smtp_username: str | None = Field(None, description="SMTP login; unset: no authentication.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password. Secret.")
    smtp_from: str = Field("contactpulse@localhost", description="The weekly report's From address.")
    report_to: str = Field(
        "", description="Who receives the weekly report (the head of support): addresses, comma-separated."
    )
    report_lang: Literal["en", "ru"] = Field("en", description="Language of the weekly report.")
    report_schedule: str = Field(
        "",
        description="When the worker e-mails the last full week's report, in the business calendar's time "
        "zone: a weekday and a time, e.g. `MON 09:00`. Sent at most once per week, across restarts and "
        "workers (recorded in ClickHouse's `reports_sent`). Empty: never by itself.",
    )
    time_zone: str = Field(
        "Europe/Moscow", description="Time zone of source timestamps that carry no offset."
    )
    locale: Literal["en", "ru"] = Field("en", description="Language of alert summaries.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")

    def dsn(self) -> str:
        return self.clickhouse_dsn.get_secret_value()

    def runs(self, role: str) -> bool:
        """Whether this worker runs `role` ("sink" or "detector")."""
        return role in self.worker_roles.split(",")

    def alertmanager_urls(self) -> list[str]:
        return [url.strip().rstrip("/") for url in (self.alertmanager_url or "").split(",") if url.strip()]

    def report_recipients(self) -> list[str]:
        return addresses(self.report_to)

    def support_domains(self) -> frozenset[str]:
        return frozenset(
            d.strip().lower().lstrip("@") for d in self.email_support_domains.split(",") if d.strip()
        )

    def unsigned_allowed(self, source: str) -> bool:
        allowed = {name.strip() for name in self.allow_unsigned_sources.split(",") if name.strip()}
        return "*" in allowed or source in allowed


def addresses(text: str) -> list[str]:
    """E-mail addresses written comma-separated (a setting, or a repeated command-line option)."""
    return [address.strip() for address in text.split(",") if address.strip()]


def settings_to_env(settings: Settings) -> dict[str, str]:
    """The environment variables that make a child process read exactly these settings."""
    env = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env


def settings_from_env() -> Settings:
    """Read settings now (never at import time, so tests and the CLI decide when)."""
    return Settings()
