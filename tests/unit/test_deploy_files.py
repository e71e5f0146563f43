"""docker-compose.yml and Grafana provisioning cannot run here (no Docker engine, no Grafana), so these
tests hold them to the code: services, ports, settings and credentials must agree."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from schemas.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def substitute(value: str) -> str:
    """Docker's ${VAR:-default} as its default, ${VAR:?message} and ${VAR} as a placeholder."""

    def one(match: re.Match[str]) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3)
        return rest if operator == ":-" else f"<{name.lower()}>"

    return re.sub(r"\$\{([A-Z_]+)(?:(:[?-])([^}]*))?\}", one, value)


def contactpulse_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    return {k: substitute(str(v)) for k, v in env.items() if k.startswith(ENV_PREFIX)}


def test_every_expected_service_is_there_with_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {
        "kafka",
        "clickhouse",
        "grafana",
        "worker",
        "simulator",
        "alertmanager-config",
        "alertmanager",
    }
    for name in ("kafka", "clickhouse", "grafana", "worker", "alertmanager"):
        assert services[name]["healthcheck"]["test"], name


def test_the_delivery_profile_renders_every_required_alertmanager_setting(compose: dict[str, Any]) -> None:
    import re

    from sinks.alertmanager_config import TEMPLATE

    required = set(re.findall(r"\$\{([A-Z0-9_]+)\}", TEMPLATE.read_text()))
    renderer = compose["services"]["alertmanager-config"]
    assert required <= set(renderer["environment"]), required - set(renderer["environment"])
    assert renderer["profiles"] == compose["services"]["alertmanager"]["profiles"] == ["delivery"]
    assert compose["services"]["alertmanager"]["image"] == "prom/alertmanager:v0.25.0"


def test_contactpulse_variables_are_real_settings(compose: dict[str, Any]) -> None:
    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    for name in ("worker", "simulator"):
        env = contactpulse_env(compose["services"][name])
        assert env, name
        assert set(env) <= fields, set(env) - fields
        # The values given must also pass validation as settings (a bare `NAME:` passes the shell's
        # value through and is absent when the shell has none).
        given = {key: value for key, value in env.items() if value != "None"}
        Settings(**{key.removeprefix(ENV_PREFIX).lower(): value for key, value in given.items()})


def test_worker_reaches_kafka_on_its_internal_listener(compose: dict[str, Any]) -> None:
    kafka_env = compose["services"]["kafka"]["environment"]
    advertised = dict(item.split("://") for item in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    for name in ("worker", "simulator"):
        env = contactpulse_env(compose["services"][name])
        assert env[f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS"] == advertised["INTERNAL"]
    assert advertised["EXTERNAL"] == "localhost:9092"
    assert "9092:9092" in compose["services"]["kafka"]["ports"]
    # Oversized events must reach the worker to be dead-lettered, as with the local broker.
    assert int(kafka_env["KAFKA_MESSAGE_MAX_BYTES"]) > 1024 * 1024


def test_worker_clickhouse_dsn_matches_the_clickhouse_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    dsn = urlsplit(contactpulse_env(services["worker"])[f"{ENV_PREFIX}CLICKHOUSE_DSN"])
    ch_env = services["clickhouse"]["environment"]
    assert (dsn.scheme, dsn.hostname, dsn.port) == ("http", "clickhouse", 8123)
    assert dsn.username == ch_env["CLICKHOUSE_USER"]
    assert dsn.password == "<clickhouse_password>"  # from the environment, not written down
    assert dsn.path.lstrip("/") == ch_env["CLICKHOUSE_DB"]
    assert "8123:8123" in services["clickhouse"]["ports"]


def test_worker_port_and_metrics_healthcheck_agree(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    env = contactpulse_env(worker)
    port = env[f"{ENV_PREFIX}WEB_PORT"]
    assert f"{port}:{port}" in worker["ports"]
    assert port == str(Settings.model_fields["web_port"].default)
    assert f"127.0.0.1:{port}/metrics" in " ".join(worker["healthcheck"]["test"])
    assert env[f"{ENV_PREFIX}WEB_HOST"] == "0.0.0.0"  # reachable from outside its container


def test_no_secret_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for key, value in service.get("environment", {}).items():
            if "PASSWORD" in key or "TOKEN" in key:
                # From the environment, a Docker secret's file, or passed through unset.
                assert value is None or str(value).startswith(("${", "/run/secrets/")), key


def test_grafana_datasource_matches_clickhouse(compose: dict[str, Any]) -> None:
    provisioning = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/clickhouse.yaml").read_text()
    )
    (source,) = provisioning["datasources"]
    ch_env = compose["services"]["clickhouse"]["environment"]
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["jsonData"]["host"] == "clickhouse"
    assert source["jsonData"]["port"] == 8123
    assert source["jsonData"]["protocol"] == "http"
    assert source["jsonData"]["username"] == ch_env["CLICKHOUSE_USER"]
    assert source["jsonData"]["defaultDatabase"] == ch_env["CLICKHOUSE_DB"]
    assert source["secureJsonData"]["password"] == "$CLICKHOUSE_PASSWORD"
    grafana = compose["services"]["grafana"]
    assert grafana["environment"]["GF_INSTALL_PLUGINS"] == "grafana-clickhouse-datasource"
    assert "CLICKHOUSE_PASSWORD" in grafana["environment"]
    mounts = grafana["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    dashboards = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/contactpulse.yaml").read_text()
    )
    path = dashboards["providers"][0]["options"]["path"]
    assert f"./deploy/grafana/dashboards:{path}:ro" in mounts


def test_every_panel_uses_the_provisioned_datasource() -> None:
    provisioning = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/clickhouse.yaml").read_text()
    )
    uid = provisioning["datasources"][0]["uid"]
    for path in (ROOT / "deploy/grafana/dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        assert dashboard["panels"], path
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid, (path.name, panel["title"])
                assert target["rawSql"].strip(), (path.name, panel["title"])
