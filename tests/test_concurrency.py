"""Several processes on one database file (design.md §5): two writers at once both
succeed, and a writer killed with SIGKILL again and again leaves an intact database
holding every write it reported as committed.

The writers are ``writer_child.py`` processes; they print a line after each commit.
"""

import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tiermeet.services.bundle import open_services

CHILD = Path(__file__).with_name("writer_child.py")
KILLS = 120


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TIERMEET_DB", None)
    env.pop("TIERMEET_CONFIG", None)
    return env


def check_journal(db: Path) -> dict:
    """Integrity and the outbox invariants; returns what the database holds."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        outbox = conn.execute("SELECT seq, name, entity_id, hlc FROM outbox ORDER BY seq").fetchall()
        seqs = [r[0] for r in outbox]
        assert seqs == list(range(1, len(seqs) + 1)), "outbox sequence numbers have a gap or a duplicate"
        state = dict(conn.execute("SELECT key, value FROM sync_state").fetchall())
        assert int(state["next_seq"]) == len(seqs) + 1
        hlcs = [r[3] for r in outbox]
        assert hlcs == sorted(hlcs) and len(set(hlcs)) == len(hlcs), "HLC stamps do not rise with seq"
        assert state["hlc"] == hlcs[-1]
        audit = conn.execute("SELECT count(*) FROM audit_log WHERE entity != 'person'").fetchone()[0]
        assert audit == len(seqs), "every mutation has exactly one audit entry"
        return {
            "outbox": {r[0]: (r[1], r[2]) for r in outbox},
            "signals": dict(conn.execute("SELECT external_id, status FROM signal").fetchall()),
            "signal_ids": {r[0]: r[1] for r in conn.execute("SELECT id, status FROM signal")},
            "comments": {r[0] for r in conn.execute("SELECT id FROM comment")},
            "devices": [r[0] for r in conn.execute("SELECT device FROM audit_log WHERE entity != 'person' ORDER BY hlc")],
            "times": _times(conn),
        }
    finally:
        conn.close()


def _times(conn: sqlite3.Connection) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for device, at in conn.execute("SELECT device, at FROM audit_log WHERE entity != 'person'"):
        times.setdefault(device, []).append(datetime.fromisoformat(at).replace(tzinfo=timezone.utc).timestamp())
    return times


def hex_id(text: str) -> str:
    return text.replace("-", "")


@pytest.mark.timeout(90)
def test_two_processes_writing_at_once_both_succeed(services, db_path):
    start_at = time.time() + 2.5  # both have imported and opened by then
    children = [
        subprocess.Popen([sys.executable, str(CHILD), "loop", str(db_path), device, "3", str(start_at)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
        for device in ("kiosk-a", "kiosk-b")
    ]
    outputs = [child.communicate(timeout=60) for child in children]
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert "locked" not in err and "busy" not in err.lower(), err
        assert out.splitlines()[-1].startswith("done ")
    held = check_journal(db_path)
    for (out, _), device in zip(outputs, ("kiosk-a", "kiosk-b"), strict=True):
        lines = out.splitlines()
        writes = int(lines[-1].split()[1])
        assert writes >= 30, f"{device} wrote only {writes} times in 3 s"
        for line in lines[:-1]:
            kind, key = line.split()
            if kind == "ingest":
                assert held["signals"][key] == "acknowledged"
            elif kind == "ack":
                assert held["signal_ids"][hex_id(key)] == "acknowledged"
            else:
                assert hex_id(key) in held["comments"]
    devices = held["devices"]
    assert set(devices) == {"kiosk-a", "kiosk-b"}
    switches = sum(1 for a, b in zip(devices, devices[1:]) if a != b)
    assert switches >= 3, f"the writers took turns only {switches} times"
    # and they really wrote during the same seconds
    spans = {d: (min(ts), max(ts)) for d in ("kiosk-a", "kiosk-b") for ts in [held["times"][d]]}
    overlap = min(spans["kiosk-a"][1], spans["kiosk-b"][1]) - max(spans["kiosk-a"][0], spans["kiosk-b"][0])
    assert overlap > 1.0, f"the writers overlapped for {overlap:.2f}s only"


@pytest.mark.timeout(120)
def test_writer_killed_again_and_again_loses_no_committed_write(services, db_path, config):
    zygote = subprocess.Popen([sys.executable, str(CHILD), "zygote", str(db_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, env=child_env())
    lines: "queue.Queue[str]" = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        for line in zygote.stdout:
            lines.put(line.rstrip("\n"))
        lines.put("EOF")

    threading.Thread(target=pump, daemon=True).start()

    def wait_for(prefix: str, timeout: float = 20) -> str:
        end = time.monotonic() + timeout
        while True:
            line = lines.get(timeout=max(0.01, end - time.monotonic()))
            seen.append(line)
            if line == "EOF":
                raise AssertionError(f"writer stopped: {zygote.stderr.read()}")
            if line.startswith(prefix):
                return line

    rng = random.Random(20261125)
    started = time.monotonic()
    try:
        for k in range(KILLS):
            zygote.stdin.write(f"run {k}\n")
            zygote.stdin.flush()
            pid = int(wait_for(f"pid {k} ").split()[2])
            wait_for(f"ready {k}")
            wait_for(f"ingest kill-{k}-1 ")  # it is writing now…
            time.sleep(rng.uniform(0, 0.05))  # …and dies at some random point of its next writes
            os.kill(pid, signal.SIGKILL)
        zygote.stdin.write("quit\n")
        zygote.stdin.flush()
        zygote.wait(timeout=30)
    finally:
        if zygote.poll() is None:
            zygote.kill()
    while True:
        line = lines.get(timeout=10)
        if line == "EOF":
            break
        seen.append(line)
    elapsed = time.monotonic() - started
    assert zygote.returncode == 0, zygote.stderr.read()
    errors = zygote.stderr.read()
    assert "Traceback" not in errors, errors

    held = check_journal(db_path)
    reported = [line.split() for line in seen if line.split()[0] in ("ingest", "ack", "comment")]
    assert len(reported) >= KILLS, f"only {len(reported)} writes in {KILLS} runs ({elapsed:.1f}s)"
    mutation = {"ingest": "signal.ingest", "ack": "signal.acknowledge", "comment": "comment.add"}
    for kind, key, seq in reported:
        name, entity_id = held["outbox"][int(seq)]
        assert name == mutation[kind], (kind, key, seq)
        if kind == "ingest":
            assert key in held["signals"]
        elif kind == "ack":
            assert hex_id(key) == hex_id(entity_id)
            assert held["signal_ids"][hex_id(key)] == "acknowledged"
        else:
            assert hex_id(key) == hex_id(entity_id)
            assert hex_id(key) in held["comments"]
    # Writes that were cut off left nothing half-done: every signal is open or acknowledged,
    # and the database takes new work at once.
    assert set(held["signals"].values()) <= {"open", "acknowledged"}
    after = open_services(db_path, config, device_name="after")
    for signal_id in held["signal_ids"]:
        after.comments.add("signal", uuid.UUID(signal_id), actor="anna", body="still readable and writable")
    assert len(check_journal(db_path)["comments"]) == len(held["comments"]) + len(held["signal_ids"])
    print(json.dumps({"kills": KILLS, "writes": len(reported), "seconds": round(elapsed, 1)}))


@pytest.mark.timeout(120)
def test_two_processes_opening_a_new_database_at_once(tmp_path):
    failures = []
    for round_ in range(3):
        db = tmp_path / f"fresh-{round_}.db"
        start_at = time.time() + 2.0
        children = [
            subprocess.Popen([sys.executable, str(CHILD), "open", str(db), device, str(start_at)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
            for device in ("kiosk-a", "kiosk-b")
        ]
        for child in children:
            out, err = child.communicate(timeout=60)
            if child.returncode != 0:
                failures.append(next((ln for ln in reversed(err.splitlines()) if "Error" in ln), err[-300:]))
    assert failures == []


def test_connections_racing_to_switch_a_new_database_to_wal_all_open(tmp_path):
    """The race behind the test above, made frequent: four connections open each of many
    new files at the same instant. SQLite refuses the losers of the WAL switch at once
    rather than on the busy timeout; without the engine's retry a few of them fail."""
    from tiermeet.store.engine import make_engine

    failures = []
    for round_ in range(100):
        db = tmp_path / f"race-{round_}.db"
        start = threading.Barrier(4)

        def open_one() -> None:
            engine = make_engine(db)
            start.wait()
            try:
                with engine.connect() as connection:
                    mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
                    assert mode == "wal"
            except Exception as exc:  # noqa: BLE001 - every failure is collected and shown
                failures.append(f"{db.name}: {exc!r}")
            finally:
                engine.dispose()

        threads = [threading.Thread(target=open_one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
