"""Shared test data for the benchmarks: realistic signal records and a cached 1M-signal database.

Records follow the ingest contract (tiermeet/ingest/contract.py) for the demo plant: five
models with their own categories, lines, severities and id styles; most rows carry a
confidence, some a detail, a suggested action, an evidence URL or a field the contract does
not name (kept in ``extra``). Times come with an offset, in UTC (``Z``) or without an offset
(plant time), as real feeds mix them.

The baseline database holds 1,000,000 signals ingested through ``IngestService`` (so every
row is exactly what ingest writes) over a year of history, then closed the way a plant closes
them: most resolved with an outcome or dismissed with a disposition, a few thousand recent
ones (and a few hundred overdue stragglers) still on the boards, some acknowledged, some
actioned, some escalated to tiers 2 and 3 through ``SignalService.escalate``. It is built
once into the benchmark data dir and copied for every measured run.
"""

import fcntl
import json
import os
import random
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

#: Bump when the generator or the baseline recipe changes, so cached databases are rebuilt
#: (4: built at the page size this version gives a new database).
RECIPE = 4

UTC = timezone.utc

# source, model version, kind, categories (weighted), external id style, area (None = both)
MODELS = (
    ("pdm-spindle", "2.3.1", "prediction", ("quality", "quality", "cost", "delivery"), "seq", "machining"),
    ("pdm-toolwear", "1.8.0", "prediction", ("cost", "quality", "cost"), "seq", "machining"),
    ("vision-qc", "5.0.2", "detection", ("quality", "quality", "quality", "safety"), "uuid", None),
    ("energy-watch", "0.9.4", "anomaly", ("cost", "cost", "delivery"), "seq", None),
    ("ergo-cam", "1.1.0", "detection", ("safety", "people", "people"), "uuid", "assembly"),
)
LINES = {"machining": ("CNC1", "CNC2", "GRIND"), "assembly": ("ASM1", "PACK")}
ASSETS = {"CNC1": ("SP-101", "SP-102", "SP-104"), "CNC2": ("SP-201", "SP-202"), "GRIND": ("GR-301", "GR-302"),
          "ASM1": ("ST-10", "ST-20", "ST-30", "ST-40"), "PACK": ("PK-1", "PK-2")}
SEVERITIES = ("critical", "high", "high", "medium", "medium", "medium", "low", "low", "low", "low")
TITLES = {
    "pdm-spindle": ("Spindle vibration rising on {asset}", "Bearing temperature trending up on {asset}",
                    "Spindle load outside its normal band on {asset}"),
    "pdm-toolwear": ("Tool wear near limit on {asset}", "Insert breakage likely within 40 parts on {asset}"),
    "vision-qc": ("Surface scratches on {pct}% of parts at {asset}", "Burr detected on bore edge at {asset}",
                  "Missing chamfer on {pct}% of last 200 parts ({asset})"),
    "energy-watch": ("Compressed-air draw {pct}% above baseline at {asset}", "Idle power high on {asset}"),
    "ergo-cam": ("Repeated overhead reach at {asset}", "Operator in the robot zone at {asset}",
                 "Lift above guideline weight at {asset}"),
}
DETAILS = ("Model score crossed the alert threshold for three consecutive windows. "
           "Readings from the last shift are attached; similar patterns preceded two stops last quarter. ")
ACTIONS = ("Check bearing preload", "Swap the insert at the next tool change", "Inspect the last pallet",
           "Walk the air lines for leaks", "Review the station layout with the team lead")

OFFSET = timezone(timedelta(hours=1))  # the demo plant's winter offset


def _when_text(when: datetime, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.6:
        return when.astimezone(OFFSET).isoformat(timespec="seconds")
    if style < 0.9:
        return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return when.astimezone(OFFSET).replace(tzinfo=None).isoformat(timespec="seconds")


def records(n: int, *, start: datetime, end: datetime, seed: int, tag: str) -> Iterator[dict]:
    """``n`` valid contract records with ``detected_at`` spread from ``start`` to ``end``, in
    time order. ``tag`` makes the external ids of one data set distinct from another's."""
    rng = random.Random(seed)
    span = (end - start).total_seconds()
    counters = {m[0]: 0 for m in MODELS}
    for i in range(n):
        source, version, kind, categories, id_style, area = MODELS[rng.randrange(len(MODELS))]
        area = area or rng.choice(tuple(LINES))
        line = rng.choice(LINES[area])
        asset = rng.choice(ASSETS[line])
        counters[source] += 1
        if id_style == "seq":
            external_id = f"{tag}-{counters[source]:09d}"
        else:
            external_id = f"{rng.getrandbits(128):032x}"
        when = start + timedelta(seconds=span * i / max(n, 1) + rng.random())
        record = {
            "external_id": external_id,
            "source": source,
            "model_version": version,
            "kind": kind,
            "detected_at": _when_text(when, rng),
            "area": area,
            "line": line,
            "asset": asset,
            "category": rng.choice(categories),
            "severity": rng.choice(SEVERITIES),
            "title": rng.choice(TITLES[source]).format(asset=asset, pct=rng.randint(2, 30)),
        }
        if rng.random() < 0.1:  # an area-level signal
            del record["line"]
        if rng.random() < 0.9:
            record["confidence"] = round(rng.random(), 3)
        if rng.random() < 0.3:
            record["detail"] = DETAILS * rng.randint(1, 3)
        if rng.random() < 0.5:
            record["suggested_action"] = rng.choice(ACTIONS)
        if rng.random() < 0.2:
            record["evidence_url"] = f"https://evidence.riverside.example/{source}/{external_id}"
        if rng.random() < 0.1:
            record["shift_hint"] = rng.choice(("early", "late", "night"))
        yield record


def write_jsonl(path: Path, rows) -> Path:
    """Write ``rows`` as JSON Lines."""
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False))
            out.write("\n")
    return path


def default_workdir() -> Path:
    """Where generated files and cached databases live (outside the repository)."""
    env = os.environ.get("TIERMEET_BENCH_DIR")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "tiermeet-bench"


def log(message: str) -> None:
    """Progress on stderr, so result tables on stdout stay clean."""
    print(message, file=sys.stderr, flush=True)


def copy_db(source: Path, dest: Path) -> Path:
    """A copy of a closed database (no -wal left behind) for one measured run."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, dest)
    os.sync()  # a gigabyte of unwritten copy would otherwise compete with the measured fsyncs
    return dest


def _revision_key() -> str:
    from tiermeet.settings import load_config
    from tiermeet.store.migrate import HEAD_REVISION

    return f"r{RECIPE}-s{HEAD_REVISION}-p{load_config(None).governance.version}"


def baseline_db(workdir: Path, size: int = 1_000_000, *, active: int = 5_000, rebuild: bool = False) -> Path:
    """The cached database of ``size`` signals (built on first use; a few minutes at most).

    A build holds a lock file, so two benchmarks started together build once; a finished
    build leaves a ``.ok`` note next to the database, and a database without one (an
    interrupted build, a copy from elsewhere) is built again."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    active = min(active, size // 10)
    path = workdir / f"baseline-{size}-{_revision_key()}.db"
    done = Path(f"{path}.ok")
    with open(workdir / f"baseline-{size}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another process is building the baseline database; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists() and done.exists() and not rebuild:
            return path
        done.unlink(missing_ok=True)
        building = workdir / f"{path.name}.building-{os.getpid()}"
        older = None if rebuild else _older_schema(workdir, size)
        try:
            if older is not None:
                _upgrade(older, building)
            else:
                _build(building, size, active)
            for suffix in ("-wal", "-shm"):
                if Path(f"{building}{suffix}").exists():
                    raise RuntimeError(f"{building}{suffix} left behind: the database was not closed cleanly")
            building.replace(path)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{building}{suffix}").unlink(missing_ok=True)
        total, _ = _counts(path)
        done.write_text(f"{total} signals\n")
        for stale in workdir.glob(f"baseline-{size}-*.db*"):
            if not stale.name.startswith(path.name):
                log(f"removing {stale.name}, built for another schema, recipe or policy")
                stale.unlink()
    return path


def _older_schema(workdir: Path, size: int) -> Path | None:
    """A finished baseline of this recipe and policy built for an older schema revision:
    upgrading it through the migrations is what a plant's database goes through, and takes
    seconds where a fresh build takes minutes."""
    recipe, schema, policy = _revision_key().split("-")
    for candidate in sorted(workdir.glob(f"baseline-{size}-{recipe}-s*-{policy}.db"), reverse=True):
        # one built by a newer tiermeet (a later checkout run in the same folder) cannot be
        # brought down to this schema
        if candidate.name.split("-")[3] < schema and Path(f"{candidate}.ok").exists():
            return candidate
    return None


def _upgrade(older: Path, dest: Path) -> None:
    """Copy ``older`` to ``dest`` and migrate it to the head revision."""
    from tiermeet.store.engine import make_engine
    from tiermeet.store.migrate import upgrade

    log(f"upgrading {older.name} to the current schema (once; it is cached)")
    began = time.perf_counter()
    copy_db(older, dest)
    engine = make_engine(dest)
    upgrade(engine, dest)
    engine.dispose()
    with sqlite3.connect(dest) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
    conn.close()
    shutil.rmtree(f"{dest}.backups", ignore_errors=True)
    log(f"  done in {time.perf_counter() - began:.0f} s")


def _counts(path: Path) -> tuple[int, int]:
    """(all signals, active signals) in the database at ``path``."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        total = conn.execute("SELECT count(*) FROM signal").fetchone()[0]
        active = conn.execute("SELECT count(*) FROM signal WHERE status IN ('open', 'acknowledged', 'actioned')").fetchone()[0]
    conn.close()
    return total, active


def _build(path: Path, size: int, active: int) -> None:
    from tiermeet.domain.clock import FixedClock
    from tiermeet.ingest.readers import Row
    from tiermeet.services.bundle import open_services
    from tiermeet.settings import load_config

    log(f"building a baseline database of {size:,} signals in {path} (once; it is cached)")
    began = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    history_start = now - timedelta(days=365)
    clock = FixedClock(history_start)
    services = open_services(path, load_config(None), clock=clock, device_name="bench-history")
    chunk = 100_000
    done = 0
    while done < size:
        n = min(chunk, size - done)
        first = history_start + (now - history_start) * done / size
        last = history_start + (now - history_start) * (done + n) / size
        clock.at = min(last + timedelta(minutes=1), now)
        rows = (Row(i + 1, r) for i, r in enumerate(records(n, start=first, end=last, seed=done, tag=f"h{done}")))
        report = services.ingest.ingest(rows, origin=f"history-{done}.jsonl")
        if report.rejected or report.added != n:
            raise RuntimeError(f"baseline build: {report.summary()} {report.rejected[:3]}")
        done += n
        log(f"  ingested {done:,} ({time.perf_counter() - began:.0f} s)")
    clock.at = now
    _close_history(path, active, now)
    _escalate_some(services, active)
    services.ctx.engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
    conn.close()
    log(f"  done in {time.perf_counter() - began:.0f} s")


def _close_history(path: Path, active: int, now: datetime) -> None:
    """Close all but the newest ``active`` signals (plus a few hundred overdue stragglers) the
    way the services would: resolved with an outcome, or dismissed with a disposition."""
    from tiermeet.store.types import to_db_text

    rng = random.Random(7)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=FULL")
    ids = [row[0] for row in conn.execute("SELECT id FROM signal ORDER BY detected_at, id")]
    keep = set(ids[-active:]) | set(rng.sample(ids[:-active], min(300, len(ids) - active)))
    people = ("anna", "ben", "chen", "dana", "eli", "hana", "ivan", "julia", "karl")
    dispositions = ("false_positive", "false_positive", "duplicate", "not_actionable")
    conn.execute("BEGIN IMMEDIATE")
    closed, acknowledged, actioned = [], [], []
    for n, signal_id in enumerate(ids):
        if signal_id in keep:
            pick = rng.random()
            if pick < 0.25:
                acknowledged.append((signal_id, rng.choice(people)))
            elif pick < 0.45:
                actioned.append((signal_id, rng.choice(people)))
            continue
        closed.append((signal_id, rng.random() < 0.7, rng.choice(people), rng.choice(dispositions), rng.randint(0, 240)))
    stamp = f"{int(now.timestamp() * 1000) << 16:016x}"
    now_text = to_db_text(now)
    conn.executemany(
        "UPDATE signal SET status = 'resolved', acknowledged_at = tier_entered_at, acknowledged_by = ?, "
        "resolved_at = deadline, outcome = ?, updated_at = deadline, updated_hlc = ? WHERE id = ?",
        ((who, json.dumps({"downtime_minutes_avoided": float(minutes), "scrap_avoided": None, "yield_effect": None,
                           "note": "fixed at the next stop"}), stamp, signal_id)
         for signal_id, resolved, who, _, minutes in closed if resolved),
    )
    conn.executemany(
        "UPDATE signal SET status = 'dismissed', disposition = ?, updated_at = tier_entered_at, updated_hlc = ? WHERE id = ?",
        ((disposition, stamp, signal_id) for signal_id, resolved, _, disposition, _ in closed if not resolved),
    )
    conn.executemany(
        "UPDATE signal SET status = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?, updated_at = ?, updated_hlc = ? WHERE id = ?",
        ((now_text, who, now_text, stamp, signal_id) for signal_id, who in acknowledged),
    )
    conn.executemany(
        "UPDATE signal SET status = 'actioned', acknowledged_at = ?, acknowledged_by = ?, updated_at = ?, updated_hlc = ? WHERE id = ?",
        ((now_text, who, now_text, stamp, signal_id) for signal_id, who in actioned),
    )
    conn.execute("COMMIT")
    conn.close()
    log(f"  closed {len(closed):,}; {len(keep):,} stay active")


def _escalate_some(services, active: int) -> None:
    """Escalate a share of the active signals through the service, so tiers 2 and 3 have boards."""
    import uuid

    rng = random.Random(11)
    with sqlite3.connect(services.ctx.db_path) as conn:
        rows = conn.execute("SELECT id, tier FROM signal WHERE status IN ('open', 'acknowledged', 'actioned') ORDER BY id").fetchall()
    conn.close()
    picked = rng.sample(rows, min(len(rows), active // 4))
    for hex_id, tier in picked:
        signal_id = uuid.UUID(hex_id)
        services.signals.escalate(signal_id, actor="julia", reason="needs the area's decision")
        if tier == 1 and rng.random() < 0.5:
            services.signals.escalate(signal_id, actor="lena", reason="needs the plant's decision")
    log(f"  escalated {len(picked):,} through the service")
