"""``tiermeet signals`` output (table, JSON Lines, CSV), its option checks, and ``--help``.

Signals are put in with the services; the listing is read by running the command line
in a subprocess on the same database file.
"""

import csv
import io
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conftest import NOW, cli_env
from tiermeet.domain.refs import short_ref
from tiermeet.ingest.contract import FIELDS

STATUSES = "open, acknowledged, actioned, resolved, dismissed, shelved"


@pytest.fixture
def plant(services, make_signal):
    """Five signals: three lines, one safety signal that starts at tier 2, one dismissed."""
    made = {
        "cnc1": make_signal(1, severity="high", title="Spindle vibration rising on SP-104"),
        "cnc2": make_signal(2, line="CNC2", severity="critical", confidence=0.99, title="Coolant pressure drop",
                            evidence_url="https://pdm.local/2", detail="Pressure 1.2 bar; limit 2.0"),
        "asm1": make_signal(3, area="assembly", line="ASM1", category="delivery", severity="medium", source="yield-asm",
                            title="Takt time drifting: مثال עברית 🔧"),
        "safety": make_signal(4, category="safety", severity="critical", line=None, title="Guard door open during cycle",
                              source="vision-guard", kind="detection"),
        "gone": make_signal(5, severity="low", title="Duplicate of ext-1"),
    }
    services.signals.decide(made["gone"].id, actor="anna", kind="dismiss", rationale="dup", disposition="duplicate")
    return made


def listing(run_cli, db_path, *args):
    result = run_cli("--db", db_path, "signals", *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def as_json(out: str) -> list[dict]:
    assert out.endswith("\n") or out == ""
    return [json.loads(line) for line in out.splitlines()]


def test_json_is_one_object_per_signal_with_contract_fields(run_cli, db_path, plant):
    rows = as_json(listing(run_cli, db_path, "--format", "json"))
    assert len(rows) == 4
    for row in rows:
        assert set(row) == {"id", "tier", "status", "deadline", *FIELDS}
        assert datetime.fromisoformat(row["deadline"]).utcoffset() == timedelta(0)
        assert datetime.fromisoformat(row["detected_at"]) == datetime.fromisoformat("2026-11-25T07:40:00+01:00")
    by_id = {r["external_id"]: r for r in rows}
    assert set(by_id) == {"ext-1", "ext-2", "ext-3", "ext-4"}
    assert by_id["ext-1"]["id"] == str(plant["cnc1"].id)
    assert (by_id["ext-4"]["tier"], by_id["ext-4"]["status"], by_id["ext-4"]["line"]) == (2, "open", None)
    assert (by_id["ext-2"]["confidence"], by_id["ext-2"]["evidence_url"], by_id["ext-2"]["detail"]) == (0.99, "https://pdm.local/2", "Pressure 1.2 bar; limit 2.0")
    assert by_id["ext-3"]["title"] == "Takt time drifting: مثال עברית 🔧"
    assert by_id["ext-4"]["kind"] == "detection"
    # board order: deadline, then severity
    keys = [(datetime.fromisoformat(r["deadline"]), ["critical", "high", "medium", "low"].index(r["severity"])) for r in rows]
    assert keys == sorted(keys)


def test_csv_has_the_same_columns_and_rows(run_cli, db_path, plant):
    out = listing(run_cli, db_path, "--format", "csv")
    reader = csv.DictReader(io.StringIO(out))
    assert tuple(reader.fieldnames) == ("id", "tier", "status", "deadline", *FIELDS)
    rows = list(reader)
    as_lines = as_json(listing(run_cli, db_path, "--format", "json"))
    assert [r["id"] for r in rows] == [r["id"] for r in as_lines]
    assert {r["external_id"]: r["title"] for r in rows}["ext-3"] == "Takt time drifting: مثال עברית 🔧"


def test_table_shows_references_and_titles(run_cli, db_path, plant):
    out = listing(run_cli, db_path)
    header = out.splitlines()[0].split()
    assert header == ["ref", "tier", "sev", "cat", "line", "title", "source", "left", "status"]
    for key in ("cnc1", "cnc2", "asm1", "safety"):
        assert short_ref("signal", plant[key].id) in out
    assert short_ref("signal", plant["gone"].id) not in out
    assert "Coolant pressure drop" in out and "machining" in out  # an area-level signal shows its area


def test_empty_listing(run_cli, db_path, services):
    assert listing(run_cli, db_path).strip() == "no signals"
    assert listing(run_cli, db_path, "--format", "json") == ""
    assert listing(run_cli, db_path, "--format", "csv").splitlines() == [",".join(("id", "tier", "status", "deadline", *FIELDS))]


@pytest.mark.parametrize(("args", "expected"), [
    (["--tier", "2"], {"ext-4"}),
    (["--tier", "1"], {"ext-1", "ext-2", "ext-3"}),
    (["--scope", "CNC1"], {"ext-1"}),
    (["--scope", "machining"], {"ext-1", "ext-2", "ext-4"}),
    (["--scope", "assembly", "--tier", "1"], {"ext-3"}),
    (["--scope", "plant"], {"ext-1", "ext-2", "ext-3", "ext-4"}),
    (["--category", "delivery"], {"ext-3"}),
    (["--status", "dismissed"], {"ext-5"}),
    (["--status", "open", "--scope", "CNC2"], {"ext-2"}),
    (["--status", "resolved"], set()),
])
def test_filters(run_cli, db_path, plant, args, expected):
    rows = as_json(listing(run_cli, db_path, "--format", "json", *args))
    assert {r["external_id"] for r in rows} == expected


def test_limit_keeps_board_order(run_cli, db_path, plant):
    everything = as_json(listing(run_cli, db_path, "--format", "json"))
    first_two = as_json(listing(run_cli, db_path, "--format", "json", "--limit", "2"))
    assert first_two == everything[:2]


def test_db_from_environment(run_cli, db_path, plant):
    result = run_cli("signals", "--format", "json", env=cli_env(TIERMEET_DB=str(db_path)))
    assert result.returncode == 0
    assert len(as_json(result.stdout)) == 4


@pytest.mark.parametrize(("args", "message"), [
    (["--status", "closed"], f"--status: 'closed' is not one of {STATUSES}\n"),
    (["--status", "OPEN"], f"--status: 'OPEN' is not one of {STATUSES}\n"),
    (["--scope", "paint-shop"], "--scope: 'paint-shop' is not a configured line, area or 'plant'\n"),
    (["--scope", "cnc1"], "--scope: 'cnc1' is not a configured line, area or 'plant'\n"),
])
def test_option_checks(run_cli, db_path, services, args, message):
    result = run_cli("--db", db_path, "signals", *args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message)


@pytest.mark.parametrize("args", [["--category", "speed"], ["--format", "xml"], ["--limit", "0"], ["--tier", "5"], ["--tier", "x"]])
def test_click_option_checks(run_cli, db_path, args):
    result = run_cli("--db", db_path, "signals", *args)
    assert result.returncode == 2
    assert "Error: Invalid value for" in result.stderr
    assert result.stdout == ""


def test_a_bad_option_creates_no_database(run_cli, tmp_path):
    db = tmp_path / "typo.db"
    assert run_cli("--db", db, "signals", "--status", "closed").returncode == 2
    assert not db.exists()


def test_help_lists_the_commands(run_cli):
    result = run_cli("--help")
    assert result.returncode == 0
    commands = result.stdout.split("Commands:")[1]
    listed = {line.split()[0] for line in commands.splitlines() if line.startswith("  ") and line.split()}
    assert {"config", "db", "demo", "ingest", "signals"} <= listed
    for option in ("--db", "--config", "TIERMEET_DB", "TIERMEET_CONFIG"):
        assert option in result.stdout
    short = run_cli("-h")
    assert short.stdout == result.stdout


@pytest.mark.parametrize(("group", "commands"), [("db", {"upgrade", "current", "check", "backup"}), ("config", {"check"})])
def test_group_help(run_cli, group, commands):
    result = run_cli(group, "--help")
    assert result.returncode == 0
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].strip().splitlines()}
    assert listed == commands


def test_ingest_and_signals_help(run_cli):
    ingest = run_cli("ingest", "--help").stdout
    assert "FILE:LINE: field: reason" in ingest and "--format" in ingest
    signals = run_cli("signals", "--help").stdout
    for option in ("--tier", "--scope", "--status", "--category", "--format", "--limit"):
        assert option in signals


def test_version(run_cli):
    result = run_cli("--version")
    assert result.returncode == 0
    assert "0.1.0" in result.stdout


def test_help_touches_no_files(run_cli, tmp_path):
    home = Path(os.environ["HOME"])
    before = sorted(home.rglob("*"))
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert sorted(home.rglob("*")) == before
    assert list(tmp_path.iterdir()) == []


def test_unknown_command(run_cli):
    result = run_cli("sweep-all")
    assert result.returncode == 2
    assert "No such command 'sweep-all'" in result.stderr


def test_signals_listing_after_lifecycle_moves(run_cli, db_path, services, plant, clock):
    clock.at = NOW + timedelta(minutes=5)
    services.signals.acknowledge(plant["cnc1"].id, actor="anna")
    services.signals.escalate(plant["cnc2"].id, actor="ben", reason="needs area")
    rows = {r["external_id"]: r for r in as_json(listing(run_cli, db_path, "--format", "json"))}
    assert rows["ext-1"]["status"] == "acknowledged"
    assert (rows["ext-2"]["tier"], rows["ext-2"]["status"]) == (2, "open")
