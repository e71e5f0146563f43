"""A worker runs the sink, the detector or both, as CONTACTPULSE_WORKER_ROLES says."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.config import load_config
from schemas.settings import Settings
from stream.app import create_app
from stream.cli import worker_services


def _service_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, roles: str | None) -> list[str]:
    if roles is not None:
        monkeypatch.setenv("CONTACTPULSE_WORKER_ROLES", roles)
    monkeypatch.setenv("CONTACTPULSE_ALERTMANAGER_URL", "http://127.0.0.1:9093")
    settings = Settings(data_dir=tmp_path)
    config = load_config(settings.config_file)
    built = create_app(settings)
    return [type(service).__name__ for service in worker_services(settings, config, built)]


def test_a_worker_runs_the_sink_and_the_detector_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _service_names(tmp_path, monkeypatch, None) == ["ClickHouseSink", "DetectorService", "Notifier"]


def test_a_sink_worker_leaves_detection_and_paging_to_the_detector_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _service_names(tmp_path, monkeypatch, "sink") == ["ClickHouseSink"]
    assert _service_names(tmp_path, monkeypatch, "detector") == ["DetectorService", "Notifier"]


@pytest.mark.parametrize("roles", ["", "sinks", "sink,", "sink,detector,sink", "ingest"])
def test_an_unknown_role_is_refused(monkeypatch: pytest.MonkeyPatch, roles: str) -> None:
    monkeypatch.setenv("CONTACTPULSE_WORKER_ROLES", roles)
    with pytest.raises(ValueError, match="worker_roles"):
        Settings()
