"""Layering rules (design.md §5), checked in fresh interpreters:

- ``domain/`` imports neither Textual nor SQLAlchemy/SQLModel;
- ``store/``, ``services/``, ``ingest/`` and ``settings`` never import Textual;
- importing makes no engine and no file: work starts when a command or a test asks.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import importlib, json, pkgutil, sys

forbidden = json.loads(sys.argv[1])
blame = {}
imported = []
for target in sys.argv[2:]:
    names = [target]
    module = importlib.import_module(target)
    if hasattr(module, "__path__"):
        names += [info.name for info in pkgutil.walk_packages(module.__path__, target + ".")]
    for name in names:
        importlib.import_module(name)
        imported.append(name)
        for bad in forbidden:
            if bad in sys.modules and bad not in blame:
                blame[bad] = name

import gc
engines = 0
if "sqlalchemy" in sys.modules:
    from sqlalchemy.engine import Engine
    engines = sum(isinstance(o, Engine) for o in gc.get_objects())
print(json.dumps({"imported": imported, "blame": blame, "engines": engines}))
"""


def run_isolated(tmp_path: Path, forbidden: list[str], *targets: str) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    work = tmp_path / "cwd"
    work.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"))
    env.pop("TIERMEET_DB", None)
    env.pop("TIERMEET_CONFIG", None)
    result = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(forbidden), *targets],
                            capture_output=True, text=True, cwd=work, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    report["files"] = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    return report


LAYERS = {
    "tiermeet.domain": ["textual", "sqlalchemy", "sqlmodel", "httpx", "alembic"],
    "tiermeet.store": ["textual"],
    "tiermeet.services": ["textual"],
    "tiermeet.ingest": ["textual"],
    "tiermeet.settings": ["textual", "sqlalchemy", "sqlmodel"],
}


@pytest.mark.parametrize(("package", "forbidden"), list(LAYERS.items()), ids=list(LAYERS))
def test_layer_imports(tmp_path, package, forbidden):
    report = run_isolated(tmp_path, forbidden, package)
    assert report["blame"] == {}, f"importing {report['blame']} pulls in a forbidden package"
    assert len(report["imported"]) >= 1
    assert report["engines"] == 0
    assert report["files"] == []


def test_every_module_was_checked(tmp_path):
    report = run_isolated(tmp_path, [], *LAYERS)
    imported = set(report["imported"])
    root = Path(__file__).resolve().parent.parent / "tiermeet"
    for package in ("domain", "store", "services", "ingest"):
        on_disk = {f"tiermeet.{package}.{p.stem}" for p in (root / package).glob("*.py") if p.stem != "__init__"}
        assert on_disk <= imported, on_disk - imported


def test_importing_the_command_line_does_no_work(tmp_path):
    report = run_isolated(tmp_path, ["textual", "sqlalchemy", "sqlmodel", "alembic"], "tiermeet.cli")
    assert report["blame"] == {}
    assert report["engines"] == 0
    assert report["files"] == []


def test_building_services_makes_no_engine_until_asked(tmp_path):
    code = (
        "import gc, sys\n"
        "from tiermeet.services.bundle import Services\n"
        "from tiermeet.settings import load_config\n"
        "config = load_config(None)\n"
        "from sqlalchemy.engine import Engine\n"
        "print(sum(isinstance(o, Engine) for o in gc.get_objects()), 'textual' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env=dict(os.environ, HOME=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "False"]
    assert list(tmp_path.iterdir()) == []


def test_the_reading_process_of_a_large_ingest_works_without_the_config_models(tmp_path):
    """That process is handed its job as plain values and loads neither pydantic's models
    nor the ORM: pydantic alone took longer to load than a tenth of a large file takes to
    read. Here it reads and prepares a small file, autonomous signals included."""
    import marshal
    import pickle
    from datetime import datetime, timezone

    from conftest import signal_record
    from tiermeet.ingest.prepare import Preparer, plan_of
    from tiermeet.settings import load_config

    config = load_config(None)
    path = tmp_path / "signals.jsonl"
    path.write_text("".join(json.dumps(signal_record(n, source="pdm-toolwear", severity="medium", confidence=0.97)) + "\n"
                            for n in range(5)))
    job = pickle.dumps((str(path), "jsonl", "signals.jsonl", plan_of(config), Preparer.of(config, datetime.now(timezone.utc)),
                        2, 0, 1)) + pickle.dumps({})
    code = ("import io, sys\n"
            "from tiermeet.ingest.prepare import read_and_prepare\n"
            "out = io.BytesIO()\n"
            "read_and_prepare(sys.stdin.buffer, out)\n"
            "sys.stdout.buffer.write(out.getvalue())\n"
            "print(sorted(m for m in ('pydantic', 'sqlalchemy', 'tiermeet.settings', 'tiermeet.domain.policy') "
            "if m in sys.modules), file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-P", "-c", code], input=job, capture_output=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.decode().strip() == "[]"
    output, messages = result.stdout, []
    while output:
        size = int.from_bytes(output[:8], "big")
        messages.append(marshal.loads(output[8:8 + size]))
        output = output[8 + size:]
    assert [(kind, len(payload[0]) if payload else 0, rejected) for kind, payload, rejected in messages] == [
        ("part", 2, []), ("part", 2, []), ("part", 1, []), ("done", 0, [])]
    assert all(len(payload[2]) == len(payload[0]) for kind, payload, _ in messages if kind == "part"), "not all autonomous"
