"""ClickHouse through clickhouse-connect: the connection, the migrations and idempotent batch inserts.

The same SQL runs on the embedded engine (`chdb://PATH`, the default) and on a server (`http(s)://`).
This module is synchronous on purpose: the stream layer runs it in a worker thread, one client per
task, because one client shared by concurrent tasks fails ("concurrent queries within the same session").
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent.parent / "deploy" / "clickhouse" / "migrations"
_MIGRATION_NAME: Final = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def connect(dsn: str) -> Client:
    """Open a client for `dsn`; for chDB, create the data directory first."""
    parts = urlsplit(dsn)
    if parts.scheme == "chdb":
        # chdb://./data/ch and chdb:///abs/path both name a directory; clickhouse-connect wants the
        # absolute form (in chdb://host/db it would read "host" as the location and "db" as database).
        path = Path((parts.netloc + parts.path) or ".").resolve()
        path.mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(dsn=f"chdb://{path}")
    if parts.scheme not in ("http", "https"):
        raise ValueError(
            f"unsupported ClickHouse DSN scheme {parts.scheme!r}: use chdb://, http:// or https://"
        )
    return clickhouse_connect.get_client(dsn=dsn)


@contextlib.contextmanager
def connected(dsn: str) -> Iterator[Client]:
    """A client for the length of a `with` block (closed however the block ends)."""
    client = connect(dsn)
    try:
        yield client
    finally:
        client.close()


def redact_dsn(dsn: str) -> str:
    """The DSN without its credentials, for log lines."""
    parts = urlsplit(dsn)
    if parts.password is None and parts.username is None:
        return dsn
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=f"***@{host}").geturl()


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    def statements(self) -> list[str]:
        # Statements end with a semicolon at the end of a line; comments and blanks are dropped.
        text = "\n".join(
            line
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("--")
        )
        return [part.strip() for part in re.split(r";\s*(?:\n|$)", text) if part.strip()]


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name!r} is not named NNNN_description.sql")
        found.append(Migration(version=match.group(1), path=path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version in {directory}: {versions}")
    return found


def apply_migrations(client: Client, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations not yet recorded in `schema_migrations`, in order; return their versions."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version String, name String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    applied = {row[0] for row in client.query("SELECT version FROM schema_migrations FINAL").result_rows}
    newly_applied = []
    for migration in discover_migrations(directory):
        if migration.version in applied:
            continue
        for statement in migration.statements():
            client.command(statement)
        client.insert(
            "schema_migrations", [[migration.version, migration.path.name]], column_names=["version", "name"]
        )
        log.info("applied ClickHouse migration %s", migration.path.name)
        newly_applied.append(migration.version)
    return newly_applied


class ClickHouseWriter:
    """Batch inserts that are safe to retry: a retried batch carries the same deduplication token."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def insert(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], dedup_token: str
    ) -> int:
        if not rows:
            return 0
        self._client.insert(
            table,
            rows,
            column_names=list(columns),
            settings={"insert_deduplication_token": dedup_token},
        )
        return len(rows)

    def close(self) -> None:
        self._client.close()


def migrate(dsn: str) -> list[str]:
    """Apply the pending migrations to the database at `dsn`; the versions applied."""
    with connected(dsn) as client:
        return apply_migrations(client)
