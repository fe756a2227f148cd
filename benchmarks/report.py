"""Governance speed: the full report over 1,000,000 signals, and a sweep over 1,000,000
signals of which 10,000 have a breached window.

Targets (Governance issue, "Metrics and reports"): ``ReportService.report()`` over the
whole history ≤ 2 s; ``GovernanceService.sweep()`` escalating or flagging 10,000 breached
signals in a database of 1,000,000 ≤ 1 s.

Data. Both start from the cached baseline of benchmarks/_data.py (1,000,000 signals
ingested through the real services, then closed). The baseline closes its history with
bare UPDATEs, which leaves out what the report reads most, so the report runs on a
derived copy (built once, cached next to the baseline) holding the history as the
services would have left it: a person's decision on every closed signal (act or monitor
for resolved ones, dismiss with the signal's disposition for dismissed ones, some
shelve decisions), the first acknowledgement and decision times, reviews of half of the
autonomous decisions, follow-up actions (a few thousand overdue) and automatic
escalations by an earlier sweep. The sweep runs on a copy of the baseline to which
signals detected three days ago (high severity, tier 1: long breached) are added through
``IngestService`` until exactly 10,000 signals are breached at the sweep's moment; each
measured run gets a fresh copy, since a sweep changes the database.

Run ``python benchmarks/report.py --help``. It exits 0 even when a target is missed (it
is a measurement); ``--check`` makes a missed target exit 1. ``--profile FILE`` writes a
cProfile of one sweep.
"""

import argparse
import cProfile
import os
import platform
import pstats
import resource
import sqlite3
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _data  # noqa: E402

REPORT_TARGET_S = 2.0
SWEEP_TARGET_S = 1.0
BREACHED = 10_000
#: Bump when the derived report database's recipe changes.
REPORT_RECIPE = 2
UTC = timezone.utc


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Data (the cached baseline, the derived report database and per-run copies) goes "
                                            "to --workdir, by default $TIERMEET_BENCH_DIR or ~/.cache/tiermeet-bench.")
    parser.add_argument("--baseline", type=int, default=1_000_000, help="signals in the database (default: %(default)s)")
    parser.add_argument("--breached", type=int, default=BREACHED, help="breached signals for the sweep (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per case; the median is reported (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, default=None, help="where data and cached databases live")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached databases")
    parser.add_argument("--skip-report", action="store_true", help="skip the report")
    parser.add_argument("--skip-sweep", action="store_true", help="skip the sweep")
    parser.add_argument("--profile", type=Path, metavar="FILE", help="write a cProfile of one sweep to FILE")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


# ----- the report's database -----
_TIME = "strftime('%Y-%m-%dT%H:%M:%S', {}) || '.000000'"


def _later(column: str, minutes: str) -> str:
    """SQL: the stored time ``column`` plus ``minutes`` (an SQL integer), as stored text."""
    return _TIME.format(f"{column}, '+' || ({minutes}) || ' minutes'")


def report_db(workdir: Path, baseline: Path, rebuild: bool) -> Path:
    """The derived database of the module docstring (built once from the baseline)."""
    path = workdir / f"report-r{REPORT_RECIPE}-{baseline.stem}.db"
    if path.exists() and not rebuild:
        return path
    building = path.with_suffix(".building")
    _data.log(f"deriving the report database {path.name} from the baseline (once; it is cached)")
    began = time.perf_counter()
    _data.copy_db(baseline, building)
    conn = sqlite3.connect(building, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    people = ("anna", "ben", "chen", "dana", "eli", "farah", "goran", "hana", "ivan", "julia", "karl", "lena")
    pick_person = f"CASE abs(random()) % {len(people)} " + " ".join(f"WHEN {i} THEN '{p}'" for i, p in enumerate(people)) + " END"
    snapshot = ("json_object('source', s.source, 'model_version', s.model_version, 'kind', s.kind, 'detected_at', s.detected_at, "
                "'area', s.area, 'line', s.line, 'asset', s.asset, 'category', s.category, 'severity', s.severity, "
                "'confidence', s.confidence, 'title', s.title, 'detail', s.detail, 'suggested_action', s.suggested_action, "
                "'evidence_url', s.evidence_url, 'extra', s.extra)")
    conn.execute("BEGIN")
    # First acknowledgement and decision of every closed signal: most inside the window.
    conn.execute(f"""UPDATE signal SET
        first_acknowledged_at = {_later('detected_at', 'abs(random()) % 90')},
        acknowledged_by = coalesce(acknowledged_by, {pick_person})
        WHERE status IN ('resolved', 'dismissed')""")
    conn.execute(f"""UPDATE signal SET first_decided_at = CASE WHEN abs(random()) % 10 < 8
            THEN min(deadline, {_later('first_acknowledged_at', 'abs(random()) % 60')})
            ELSE {_later('deadline', '1 + abs(random()) % 600')} END
        WHERE status IN ('resolved', 'dismissed')""")
    # A person's decision on each of them (some act decisions are monitor, 1 % were first shelved).
    conn.execute(f"""INSERT INTO decision (id, signal_id, source, kind, rationale, disposition, shelved_until, decided_by, decided_at,
            tier, meeting_id, policy_version, ai_snapshot, supersedes, hlc)
        SELECT lower(hex(randomblob(16))), s.id, s.source,
               CASE WHEN s.status = 'dismissed' THEN 'dismiss' WHEN abs(random()) % 10 = 0 THEN 'monitor' ELSE 'act' END,
               CASE WHEN s.status = 'dismissed' THEN 'not worth a stop' ELSE coalesce(s.suggested_action, 'acting on it') END,
               CASE WHEN s.status = 'dismissed' THEN s.disposition END, NULL, s.acknowledged_by, s.first_decided_at, s.tier, NULL,
               s.policy_version, {snapshot}, NULL, s.updated_hlc
        FROM signal s WHERE s.status IN ('resolved', 'dismissed')""")
    conn.execute(f"""INSERT INTO decision (id, signal_id, source, kind, rationale, disposition, shelved_until, decided_by, decided_at,
            tier, meeting_id, policy_version, ai_snapshot, supersedes, hlc)
        SELECT lower(hex(randomblob(16))), s.id, s.source, 'shelve', 'waiting for the next planned stop', NULL,
               {_later('s.first_acknowledged_at', '60 * (1 + abs(random()) % 72)')}, s.acknowledged_by, s.first_acknowledged_at,
               s.tier, NULL, s.policy_version, {snapshot}, NULL, s.updated_hlc
        FROM signal s WHERE s.status = 'resolved' AND abs(random()) % 100 = 0""")
    # Reviews of half the autonomous decisions, a tenth of them overturned.
    conn.execute(f"""INSERT INTO decision_review (decision_id, outcome, reviewed_by, reviewed_at, note, meeting_id, hlc)
        SELECT d.id, CASE WHEN abs(random()) % 10 = 0 THEN 'overturned' ELSE 'confirmed' END, 'julia',
               {_later('d.decided_at', '60 * 20')}, '', NULL, d.hlc
        FROM decision d WHERE d.decided_by LIKE 'ai:%' AND abs(random()) % 2 = 0""")
    # Follow-up actions on a tenth of the act decisions; a few thousand still open and overdue.
    conn.execute(f"""INSERT INTO action (id, signal_id, decision_id, title, owner_id, due_at, status, status_epoch, created_by,
            created_at, started_at, done_at, verified_at, updated_at, updated_hlc)
        SELECT lower(hex(randomblob(16))), d.signal_id, d.id, 'Follow up: ' || d.rationale, {pick_person},
               {_later('d.decided_at', '60 * 24 * (1 + abs(random()) % 7)')},
               CASE WHEN abs(random()) % 40 = 0 THEN 'open' WHEN abs(random()) % 40 = 0 THEN 'in_progress' ELSE 'verified' END,
               0, d.decided_by, d.decided_at, NULL, NULL, NULL, d.decided_at, d.hlc
        FROM decision d WHERE d.kind = 'act' AND d.decided_by NOT LIKE 'ai:%' AND abs(random()) % 10 = 0""")
    # An earlier sweep's escalations: 1 % of the closed signals breached tier 1 and were closed at tier 2.
    conn.execute("""INSERT INTO escalation (id, signal_id, from_tier, to_tier, reason, automatic, raised_by, raised_at, context, hlc)
        SELECT lower(hex(randomblob(16))), s.id, 1, 2, 'response window breached at tier 1', 1, 'system:sweep',
               s.first_deadline, json_object('from_tier', 1, 'status', 'open', 'deadline', s.first_deadline,
               'window_breached', json('true'), 'decisions', json('[]'), 'actions', json('[]'), 'comments', json('[]')), s.updated_hlc
        FROM signal s WHERE s.status IN ('resolved', 'dismissed') AND s.tier = 1 AND abs(random()) % 100 = 0""")
    conn.execute("""UPDATE signal SET tier = 2 WHERE id IN (SELECT signal_id FROM escalation WHERE automatic = 1)""")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
              for table in ("signal", "decision", "decision_review", "action", "escalation")}
    conn.close()
    building.replace(path)
    for suffix in ("-wal", "-shm"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    _data.log(f"  {counts} in {time.perf_counter() - began:.0f} s")
    return path


def cpu_seconds() -> float:
    """CPU time of this process, all threads (the report reads with several)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_report(db: Path, runs: int) -> tuple[float, list[float], list[float], dict]:
    """(first call, later calls, their CPU seconds, the report) of ``ReportService.report()``."""
    from tiermeet.domain.clock import FixedClock
    from tiermeet.services.bundle import open_services
    from tiermeet.settings import load_config

    with sqlite3.connect(db) as conn:
        as_of = datetime.fromisoformat(conn.execute("SELECT max(ingested_at) FROM signal").fetchone()[0]).replace(tzinfo=UTC)
    conn.close()
    services = open_services(db, load_config(None), clock=FixedClock(as_of + timedelta(hours=1)), prepare=False)
    began = time.perf_counter()
    report = services.report.report()
    first = time.perf_counter() - began
    samples, cpu = [], []
    for _ in range(runs):
        began, began_cpu = time.perf_counter(), cpu_seconds()
        services.report.report()
        samples.append(time.perf_counter() - began)
        cpu.append(cpu_seconds() - began_cpu)
    return first, samples, cpu, report


def time_report_filtered(db: Path, runs: int) -> dict[str, float]:
    """Median seconds of a few narrowed reports (for information; no target)."""
    from tiermeet.services.bundle import open_services
    from tiermeet.settings import load_config

    services = open_services(db, load_config(None), prepare=False)
    now = datetime.now(UTC)
    cases = {"line CNC1": {"line": "CNC1"}, "source vision-qc": {"source": "vision-qc"},
             "last 30 days": {"since": now - timedelta(days=30)}, "start tier 2": {"tier": 2}}
    out = {}
    for label, kwargs in cases.items():
        samples = []
        for _ in range(runs):
            began = time.perf_counter()
            services.report.report(**kwargs)
            samples.append(time.perf_counter() - began)
        out[label] = statistics.median(samples)
    return out


# ----- the sweep's database -----
def sweep_db(workdir: Path, baseline: Path, breached: int, rebuild: bool) -> tuple[Path, datetime]:
    """A copy of the baseline with exactly ``breached`` breached signals at the returned moment."""
    from tiermeet.domain.clock import FixedClock
    from tiermeet.ingest.readers import Row
    from tiermeet.services.bundle import open_services
    from tiermeet.settings import load_config

    path = workdir / f"sweep-{breached}-{baseline.stem}.db"
    with sqlite3.connect(baseline) as conn:
        at = datetime.fromisoformat(conn.execute("SELECT max(ingested_at) FROM signal").fetchone()[0]).replace(tzinfo=UTC)
    conn.close()
    at += timedelta(minutes=1)
    # a copy cached from another build of the baseline breaches a different number then
    if path.exists() and not rebuild and count_breached(path, at) == breached:
        return path, at
    building = path.with_suffix(".building")
    _data.log(f"preparing the sweep database {path.name} (once; it is cached)")
    _data.copy_db(baseline, building)
    have = count_breached(building, at)
    missing = breached - have
    if missing < 0:
        raise SystemExit(f"the baseline already has {have:,} breached signals at {at:%Y-%m-%d %H:%M}; more than {breached:,}")
    services = open_services(building, load_config(None), clock=FixedClock(at), device_name="bench-sweep")
    detected = at - timedelta(days=3)
    rows = []
    for i, record in enumerate(_data.records(missing, start=detected, end=detected + timedelta(hours=1), seed=4242, tag="late")):
        record["severity"] = "high"  # tier 1 under the demo policy, 2 h window: long breached
        record["category"] = "quality"
        record.pop("confidence", None)
        rows.append(Row(i + 1, record))
    report = services.ingest.ingest(rows, origin="late.jsonl")
    if report.added != missing:
        raise RuntimeError(f"sweep data: {report.summary()} {report.rejected[:3]}")
    services.ctx.engine.dispose()
    with sqlite3.connect(building) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    got = count_breached(building, at)
    if got != breached:
        raise RuntimeError(f"sweep data: {got:,} breached, wanted {breached:,}")
    building.replace(path)
    for suffix in ("-wal", "-shm"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    return path, at


def count_breached(db: Path, at: datetime) -> int:
    """Signals the sweep would escalate or flag at ``at`` (its own condition, in SQL)."""
    from tiermeet.store.types import to_db_text

    with sqlite3.connect(db) as conn:
        n = conn.execute("SELECT count(*) FROM signal WHERE status IN ('open', 'acknowledged') AND deadline < ? "
                         "AND flagged_at IS NULL", (to_db_text(at),)).fetchone()[0]
    conn.close()
    return n


def time_sweep(source: Path, run_db: Path, at: datetime, profile: Path | None = None) -> tuple[float, object]:
    """Seconds of one ``GovernanceService.sweep(at)`` on a fresh copy of ``source`` (the
    services are opened and the write path loaded before the clock starts)."""
    from tiermeet.domain.clock import FixedClock
    from tiermeet.services.bundle import open_services
    from tiermeet.settings import load_config

    _data.copy_db(source, run_db)
    services = open_services(run_db, load_config(None), clock=FixedClock(at), device_name="bench-sweep")
    governance = services.governance
    governance.suspended_sources()  # the engine's first connection, outside the measurement
    profiler = cProfile.Profile() if profile else None
    began = time.perf_counter()
    if profiler:
        profiler.enable()
    result = governance.sweep(at)
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - began
    if profiler:
        profiler.dump_stats(profile)
    services.ctx.engine.dispose()
    return elapsed, result


def main(argv=None) -> int:
    args = parse_args(argv)
    workdir = (args.workdir or _data.default_workdir()).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    _data.log(f"workdir {workdir}")
    baseline = _data.baseline_db(workdir, args.baseline, rebuild=args.rebuild)
    ok = True
    lines = []

    if not args.skip_report:
        db = report_db(workdir, baseline, args.rebuild)
        _data.log("report over the whole history")
        first, samples, cpu, report = time_report(db, args.runs)
        median = statistics.median(samples)
        filtered = time_report_filtered(db, args.runs)
        with sqlite3.connect(db) as conn:
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("signal", "decision", "escalation", "action")}
        conn.close()
        passed = median <= REPORT_TARGET_S
        ok &= passed
        lines += ["report",
                  f"  database: {counts['signal']:,} signals, {counts['decision']:,} decisions, {counts['escalation']:,} escalations, "
                  f"{counts['action']:,} actions",
                  f"  covered {report['signals']['total']:,} signals; acted within window {report['acted_within_window']['acted']:,} "
                  f"of {report['acted_within_window']['closed']:,}",
                  f"  first call {first:.3f} s; then median {median:.3f} s over {args.runs} (min {min(samples):.3f}, max {max(samples):.3f}); "
                  f"CPU {statistics.median(cpu):.3f} s (all threads)",
                  *(f"  narrowed to {label}: median {seconds:.3f} s" for label, seconds in filtered.items()),
                  f"  {'PASS' if passed else 'FAIL'}  full report median {median:.3f} s ≤ {REPORT_TARGET_S} s"]

    if not args.skip_sweep:
        db, at = sweep_db(workdir, baseline, args.breached, args.rebuild)
        run_db = workdir / "sweep-run.db"
        samples = []
        for i in range(args.runs):
            _data.log(f"sweep of {args.breached:,} breached, run {i + 1}/{args.runs}")
            elapsed, result = time_sweep(db, run_db, at, args.profile if i == 0 else None)
            moved = len(result.escalated) + len(result.flagged)
            if moved != args.breached:
                raise RuntimeError(f"the sweep moved {moved:,} signals, expected {args.breached:,}: {result.summary()}")
            samples.append(elapsed)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{run_db}{suffix}").unlink(missing_ok=True)
        median = statistics.median(samples)
        passed = median <= SWEEP_TARGET_S
        ok &= passed
        lines += ["sweep",
                  f"  {args.breached:,} breached of {args.baseline:,}+ signals: {result.summary()}",
                  f"  median {median:.3f} s over {args.runs} (min {min(samples):.3f}, max {max(samples):.3f}); "
                  f"{args.breached / median:,.0f} signals/s",
                  f"  {'PASS' if passed else 'FAIL'}  sweep median {median:.3f} s ≤ {SWEEP_TARGET_S} s"]
        if args.profile:
            lines.append(f"  profile of run 1 written to {args.profile}; top functions by cumulative time:")
            stats = pstats.Stats(str(args.profile))
            stats.sort_stats("cumulative")
            for (filename, lineno, name), row in sorted(stats.stats.items(), key=lambda kv: -kv[1][3])[:25]:
                lines.append(f"    {row[3]:7.3f} s cum {row[2]:7.3f} s own  {Path(filename).name}:{lineno} {name}")

    print(f"tiermeet governance benchmark — Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("\n".join(lines))
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
