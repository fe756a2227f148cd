"""Shared fixtures: a fresh SQLite file per test, the demo config, services at a fixed time."""

from datetime import datetime, timezone
from pathlib import Path

import pytest

from tiermeet.domain.clock import FixedClock
from tiermeet.services.bundle import Services, open_services
from tiermeet.settings import Config, load_config

#: A Wednesday morning in the demo plant (Europe/Berlin, UTC+1): the early shift is running.
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Keep the developer's own config and database out of every test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("TIERMEET_DB", raising=False)
    monkeypatch.delenv("TIERMEET_CONFIG", raising=False)


@pytest.fixture
def config() -> Config:
    """The built-in demo plant's config."""
    return load_config(None)


@pytest.fixture
def clock() -> FixedClock:
    """A clock the test can move: ``clock.at = ...``."""
    return FixedClock(NOW)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database file of this test's own."""
    return tmp_path / "tiermeet.db"


@pytest.fixture
def services(db_path: Path, config: Config, clock: FixedClock) -> Services:
    """Services on a fresh, migrated database with the demo plant's people."""
    return open_services(db_path, config, clock=clock, device_name="test-kiosk")


def signal_record(n: int = 1, **overrides) -> dict:
    """A valid ingest record; ``overrides`` replace fields."""
    record = {
        "external_id": f"ext-{n}",
        "source": "pdm-spindle",
        "model_version": "2.3.1",
        "detected_at": "2026-11-25T07:40:00+01:00",
        "area": "machining",
        "line": "CNC1",
        "asset": "SP-104",
        "category": "quality",
        "severity": "high",
        "confidence": 0.87,
        "title": f"Spindle vibration rising on SP-104 ({n})",
        "suggested_action": "Check bearing preload",
    }
    record.update(overrides)
    return record


# --- Shared helpers for the foundation tests -------------------------------------------

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402


def cli_env(**extra: str) -> dict[str, str]:
    """The environment a ``tiermeet`` subprocess runs in: this test's isolated user dirs,
    UTF-8 output whatever the machine's locale, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONUTF8"] = "1"
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


@pytest.fixture
def run_cli():
    """Run ``python -m tiermeet ARGS…`` in a real subprocess; returns the CompletedProcess
    (text mode) or, with ``binary=True``, bytes."""

    def run(*args, input=None, cwd=None, env=None, timeout=120, binary=False):
        return subprocess.run(
            [sys.executable, "-m", "tiermeet", *map(str, args)],
            input=input,
            capture_output=True,
            text=not binary,
            encoding=None if binary else "utf-8",
            cwd=cwd,
            env=env or cli_env(),
            timeout=timeout,
        )

    return run


@pytest.fixture
def make_signal(services: Services):
    """Ingest one valid signal (``signal_record(n, **overrides)``) and return it as stored."""

    # Imported here, not at the top: the ORM stays unloaded for tests that do not ask for it.
    from sqlalchemy import select

    from tiermeet.ingest.readers import Row
    from tiermeet.store.models import Signal

    def make(n: int = 1, **overrides):
        record = signal_record(n, **overrides)
        report = services.ingest.ingest([Row(1, record)], origin="test")
        assert report.added == 1, report.rejected
        with services.ctx.read() as session:
            return session.scalars(
                select(Signal).where(Signal.source == record["source"], Signal.external_id == record["external_id"])
            ).one()

    return make
