"""``tiermeet db check``: is this database file sound and set up as tiermeet needs?"""

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tiermeet.store.engine import BUSY_TIMEOUT_MS, make_engine
from tiermeet.store.migrate import HEAD_REVISION, current_revision


#: What every tiermeet connection must run with (synchronous 2 = FULL).
EXPECTED_PRAGMAS = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 5000}


@dataclass(frozen=True)
class Finding:
    """One check and its result."""

    name: str
    ok: bool
    detail: str


def check_database(path: Path) -> list[Finding]:
    """Run integrity_check, foreign_key_check, the pragma values and the revision check."""
    findings = []
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        findings.append(Finding("integrity_check", integrity == ["ok"], "; ".join(integrity[:5])))
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
        findings.append(Finding("foreign_key_check", not fk, "no violations" if not fk else f"{len(fk)} rows violate a foreign key, e.g. {fk[0]}"))
    finally:
        conn.close()
    engine = make_engine(path)
    with engine.connect() as tiermeet_conn:
        values = {name: tiermeet_conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in EXPECTED_PRAGMAS}
    engine.dispose()
    for name, wanted in EXPECTED_PRAGMAS.items():
        value = values[name]
        ok = value >= wanted if name == "busy_timeout" else value == wanted
        findings.append(Finding(name, ok, f"{value} (expected {'at least ' if name == 'busy_timeout' else ''}{wanted})"))
    revision = current_revision(path)
    findings.append(Finding("revision", revision == HEAD_REVISION, f"{revision} (this tiermeet expects {HEAD_REVISION})"))
    return findings
