"""The governance report (ReportService, ``tiermeet report``) and ``tiermeet policy``.

The central property: on random histories built through the real services on a real
SQLite file, every number the report computes in SQL equals the definition in
``tiermeet.domain.metrics`` applied to plain records read from the same database.
"""

import csv
import io
import json
import shutil
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.conftest import NOW, signal_record
from tiermeet.domain import metrics
from tiermeet.domain.clock import FixedClock
from tiermeet.domain.errors import DomainError
from tiermeet.ingest.readers import Row
from tiermeet.services import reports
from tiermeet.services.bundle import open_services
from tiermeet.services.requests import ActionSpec, Outcome
from tiermeet.settings import load_config
from tiermeet.store.models import Decision, DecisionReview, Escalation, Signal
from tiermeet.store.queries import Scope

UTC = timezone.utc
ZONE = ZoneInfo("Europe/Berlin")
PEOPLE = ("anna", "farah", "hana", "julia", "lena")
#: (source, area, line) combinations the demo plant accepts.
PLACES = (("pdm-spindle", "machining", "CNC1"), ("pdm-toolwear", "machining", "CNC2"), ("vision-qc", "assembly", "ASM1"),
          ("vision-qc", "machining", None), ("ergo-cam", "assembly", "PACK"))


# ----- building histories through the services -----
@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """A migrated database with the demo plant's people, copied for each history."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    services = open_services(path, load_config(None), clock=FixedClock(NOW), device_name="template")
    services.ctx.engine.dispose()
    return path


def fresh_services(template: Path, folder: Path, clock: FixedClock, config=None):
    for suffix in ("", "-wal", "-shm"):
        Path(f"{folder / 'h.db'}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, folder / "h.db")
    return open_services(folder / "h.db", config or load_config(None), clock=clock, device_name="history")


@dataclass(frozen=True)
class NewSignal:
    place: int
    category: str
    severity: str
    confidence: float | None
    minutes_before: int


@dataclass(frozen=True)
class Step:
    minutes_later: int
    op: str
    target: int
    who: str
    detail: int


new_signals = st.builds(NewSignal, st.integers(0, len(PLACES) - 1), st.sampled_from(["safety", "quality", "cost"]),
                        st.sampled_from(["critical", "high", "medium", "low"]),
                        st.one_of(st.none(), st.sampled_from([0.5, 0.96])), st.integers(0, 300))
#: What a history is made of; common steps appear more than once, to come up more often.
OPS = ("ack", "ack", "act", "act", "act", "monitor", "dismiss", "dismiss", "shelve", "escalate", "decide_escalate",
       "resolve", "resolve", "resolve", "reopen", "sweep", "sweep", "review", "review", "action", "comment", "suspend")
steps = st.builds(Step, st.integers(0, 150), st.sampled_from(OPS), st.integers(0, 11), st.sampled_from(PEOPLE),
                  st.integers(0, 5))


def build_history(services, clock: FixedClock, signals: list[NewSignal], plan: list[Step]) -> list:
    """Ingest ``signals`` at NOW, then play ``plan`` with the clock moving forward;
    refused steps (a DomainError) are skipped, as a person would be told no."""
    rows = []
    for i, s in enumerate(signals):
        source, area, line = PLACES[s.place]
        record = signal_record(i, source=source, area=area, line=line, category=s.category, severity=s.severity,
                               confidence=s.confidence,
                               detected_at=(NOW - timedelta(minutes=s.minutes_before)).isoformat())
        if line is None:
            del record["line"]
        rows.append(Row(i + 1, record))
    clock.at = NOW
    report = services.ingest.ingest(rows, origin="history")
    assert report.added == len(signals), report.rejected
    with services.ctx.read() as session:
        ids = list(session.scalars(select(Signal.id).order_by(Signal.external_id)))
    for step in plan:
        clock.at += timedelta(minutes=step.minutes_later)
        if not ids:
            break
        target = ids[step.target % len(ids)]
        try:
            play(services, clock, step, target)
        except DomainError:
            pass
    return ids


def play(services, clock: FixedClock, step: Step, target) -> None:
    who, op = step.who, step.op
    if op == "ack":
        services.signals.acknowledge(target, actor=who)
    elif op in ("act", "monitor"):
        action = ActionSpec("Check it", PEOPLE[step.detail % len(PEOPLE)], clock.at + timedelta(hours=step.detail - 2)) \
            if op == "act" and step.detail % 2 else None
        if action is not None and action.due_at <= clock.at:
            action = ActionSpec("Check it", action.owner, clock.at + timedelta(minutes=5))
        services.signals.decide(target, actor=who, kind=op, rationale="seen it", action=action)
    elif op == "dismiss":
        disposition = ("false_positive", "duplicate", "not_actionable")[step.detail % 3]
        services.signals.decide(target, actor=who, kind="dismiss", rationale="no", disposition=disposition)
    elif op == "shelve":
        services.signals.decide(target, actor=who, kind="shelve", rationale="later",
                                shelve_until=clock.at + timedelta(hours=1 + step.detail * 40))
    elif op == "escalate":
        services.signals.escalate(target, actor=who, reason="needs the next tier")
    elif op == "decide_escalate":
        services.signals.decide(target, actor=who, kind="escalate", rationale="needs the next tier")
    elif op == "resolve":
        services.signals.resolve(target, actor=who, outcome=Outcome(
            downtime_minutes_avoided=None if step.detail == 0 else 10.0 * step.detail,
            scrap_avoided=float(step.detail) if step.detail % 2 else None,
            yield_effect=None if step.detail % 3 == 0 else 0.01 * step.detail))
    elif op == "reopen":
        services.signals.reopen(target, actor=who, reason="not fixed")
    elif op == "sweep":
        services.governance.sweep(clock.at)
    elif op == "review":
        pending = to_review(services)
        if pending:
            decision, _signal = pending[step.detail % len(pending)]
            outcome = "overturned" if step.detail % 2 else "confirmed"
            services.governance.review(decision.id, actor=who, outcome=outcome, note="wrong call" if outcome == "overturned" else "")
    elif op == "action":
        services.actions.create(actor=who, title="Follow up", owner=PEOPLE[step.detail % len(PEOPLE)],
                                due_at=clock.at + timedelta(minutes=30 * (step.detail + 1)), signal=target)
    elif op == "comment":
        services.comments.add("signal", target, actor=who, body="looked at it")
    elif op == "suspend":
        services.governance.suspend("pdm-toolwear", actor=who, reason="drifting")


def to_review(services) -> list:
    """Autonomous decisions no person has reviewed yet, at any tier, oldest first."""
    return [pair for tier in range(1, 5) for pair in services.views.autonomous_to_review(tier, Scope())]


# ----- the oracle: plain records from the database -----
def records(services, *, since=None, until=None, tier=None, line=None, source=None, area=None):
    """(SignalRecord, signal) pairs and DecisionRecords of the covered signals, by the
    report's own covering rules (module docstring of services/reports.py)."""
    with services.ctx.read() as session:
        escalations = defaultdict(list)
        for e in session.scalars(select(Escalation)):
            escalations[e.signal_id].append(e)
        picked = []
        for s in session.scalars(select(Signal)):
            start_tier = min((e.from_tier for e in escalations[s.id]), default=s.tier)
            if since is not None and s.detected_at < since or until is not None and s.detected_at >= until:
                continue
            if tier is not None and start_tier != tier or line is not None and s.line != line:
                continue
            if source is not None and s.source != source or area is not None and s.area != area:
                continue
            picked.append((metrics.SignalRecord(
                source=s.source, start_tier=start_tier, line=s.line, category=s.category, autonomous=s.autonomy == "autonomous",
                detected_at=s.detected_at, first_deadline=s.first_deadline or s.deadline,
                first_acknowledged_at=s.first_acknowledged_at, first_decided_at=s.first_decided_at,
                escalated=bool(escalations[s.id])), s))
        covered = {s.id: s for _r, s in picked}
        decisions = [metrics.DecisionRecord(source=covered[d.signal_id].source, kind=d.kind, disposition=d.disposition,
                                            decided_by=d.decided_by, by_person=not d.decided_by.startswith(("ai:", "system:")))
                     for d in session.scalars(select(Decision)) if d.signal_id in covered]
        reviews = {r.decision_id: r.outcome for r in session.scalars(select(DecisionReview))}
        ai = [(covered[d.signal_id].source, reviews.get(d.id)) for d in session.scalars(select(Decision))
              if d.signal_id in covered and d.decided_by.startswith("ai:")]
    return picked, decisions, ai


def assert_matches_oracle(services, report: dict, as_of: datetime, **filters) -> None:
    picked, decisions, ai = records(services, **filters)
    signals = [r for r, _s in picked]
    acted, closed = metrics.acted_within_window(signals, as_of)
    got = report["acted_within_window"]
    assert (got["acted"], got["closed"]) == (acted, closed)
    assert got["rate"] == metrics.rate(acted, closed)
    for dim, key, name in (("by_tier", lambda r: (r.start_tier,), ("tier",)), ("by_category", lambda r: (r.category,), ("category",)),
                           ("by_model", lambda r: (r.source,), ("source",))):
        expected = defaultdict(list)
        for r in signals:
            expected[key(r)].append(r)
        assert {tuple(row[n] for n in name): (row["acted"], row["closed"]) for row in got[dim]} == \
            {k: metrics.acted_within_window(v, as_of) for k, v in expected.items()}
    by_line = defaultdict(list)
    for r, s in picked:
        by_line[(s.area, s.line)].append(r)
    assert {(row["area"], row["line"]): (row["acted"], row["closed"]) for row in got["by_line"]} == \
        {k: metrics.acted_within_window(v, as_of) for k, v in by_line.items()}

    times = metrics.response_times(signals)
    for name, value in times.items():
        assert report["response_times"][name] == (pytest.approx(value, abs=1e-9) if value is not None else None), name
    assert report["escalations"]["rate"] == metrics.escalation_rate(signals)
    assert report["signals"]["total"] == len(signals)

    models = metrics.per_model(signals, decisions)
    got_models = {m["source"]: m for m in report["models"]}
    assert set(got_models) == set(models)
    for source, m in models.items():
        for name in ("volume", "action_rate", "false_positive_rate", "decided"):
            assert got_models[source][name] == m[name], (source, name)
        made = [outcome for src, outcome in ai if src == source]
        assert got_models[source]["autonomous_decisions"] == len(made)
        assert got_models[source]["reviewed"] == sum(o is not None for o in made)
        assert got_models[source]["overturned"] == sum(o == "overturned" for o in made)
    assert report["bad_actors"] == metrics.bad_actors(models)
    assert [p["person"] for p in report["automation_bias"]["flagged"]] == metrics.automation_bias(decisions)

    # The trend: per local day of detection, the same rule on that day's signals.
    days = {d["day"]: d for d in report["trend"]["days"]}
    per_day = defaultdict(list)
    for r in signals:
        per_day[r.detected_at.astimezone(ZONE).date().isoformat()].append(r)
    for day, row in days.items():
        assert (row["acted"], row["closed"]) == metrics.acted_within_window(per_day.get(day, []), as_of), day
        assert row["signals"] == len(per_day.get(day, []))

    # Outcomes: sums and means over the resolved signals that recorded one.
    for dim, key in (("by_model", lambda s: {"source": s.source}), ("by_line", lambda s: {"area": s.area, "line": s.line})):
        expected = defaultdict(lambda: {"resolved": 0, "down": [], "scrap": [], "yield": []})
        for _r, s in picked:
            if s.resolved_at is not None and s.outcome is not None:
                cell = expected[tuple(key(s).values())]
                cell["resolved"] += 1
                for name, field in (("down", "downtime_minutes_avoided"), ("scrap", "scrap_avoided"), ("yield", "yield_effect")):
                    if s.outcome.get(field) is not None:
                        cell[name].append(s.outcome[field])
        got_rows = {tuple(row[k] for k in key_names(dim)): row for row in report["outcomes"][dim]}
        assert set(got_rows) == set(expected)
        for k, cell in expected.items():
            row = got_rows[k]
            assert row["resolved"] == cell["resolved"]
            assert row["downtime_minutes_avoided"] == (pytest.approx(sum(cell["down"])) if cell["down"] else None)
            assert row["scrap_avoided"] == (pytest.approx(sum(cell["scrap"])) if cell["scrap"] else None)
            assert row["yield_effect_mean"] == (pytest.approx(sum(cell["yield"]) / len(cell["yield"])) if cell["yield"] else None)


def key_names(dim: str) -> tuple:
    return ("source",) if dim == "by_model" else ("area", "line")


#: Most reports cover everything; the rest narrow by one or more filters.
filters = st.just({}) | st.just({}) | st.fixed_dictionaries({}, optional={
    "tier": st.integers(1, 3), "line": st.sampled_from(["CNC1", "ASM1"]), "source": st.sampled_from(["vision-qc", "pdm-toolwear"]),
    "area": st.sampled_from(["machining", "assembly"]),
    "since": st.integers(0, 3000).map(lambda m: NOW - timedelta(minutes=m)),
    "until": st.integers(-600, 2000).map(lambda m: NOW - timedelta(minutes=m)),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          database=None)
@given(signals=st.lists(new_signals, min_size=3, max_size=12), plan=st.lists(steps, min_size=6, max_size=30),
       as_of_later=st.integers(-60, 3000), narrowed=filters, chunked=st.booleans())
def test_report_equals_the_metric_definitions(template_db, tmp_path, monkeypatch, signals, plan, as_of_later, narrowed, chunked):
    monkeypatch.setattr(reports, "CHUNK_MIN_ROWS", 0 if chunked else 50_000)  # rowid ranges read side by side, or not
    clock = FixedClock(NOW)
    services = fresh_services(template_db, tmp_path, clock)
    build_history(services, clock, signals, plan)
    as_of = clock.at + timedelta(minutes=as_of_later)
    report = services.report.report(as_of=as_of, **narrowed)
    assert_matches_oracle(services, report, as_of, **narrowed)
    services.ctx.engine.dispose()


# ----- deterministic cases the random histories rarely reach -----
def test_automation_bias_and_bad_actors(services, clock, make_signal):
    """20 agreeing decisions by one person flag them; a model with ≥ 10 decided signals,
    most dismissed as false positives, is a bad actor."""
    for i in range(21):
        signal = make_signal(100 + i, source="vision-qc", area="assembly", line="ASM1", category="quality")
        services.signals.decide(signal.id, actor="farah", kind="act", rationale="fix it")
    for i in range(12):
        signal = make_signal(200 + i, source="ergo-cam", area="assembly", line="PACK", category="people")
        services.signals.decide(signal.id, actor="hana", kind="dismiss", rationale="no", disposition="false_positive" if i < 9 else "duplicate")
    report = services.report.report()
    assert [p["person"] for p in report["automation_bias"]["flagged"]] == ["farah"]
    assert report["automation_bias"]["flagged"][0] | {"share": 1.0} == {"person": "farah", "name": "Farah Nasser", "decisions": 21,
                                                                        "agreeing": 21, "share": 1.0}
    assert report["bad_actors"] == ["ergo-cam", "vision-qc"]
    models = {m["source"]: m for m in report["models"]}
    assert models["ergo-cam"]["false_positive_rate"] == 9 / 12
    assert models["vision-qc"]["action_rate"] == 1.0


def test_overturns_shelved_time_and_overdue_actions(services, clock, make_signal):
    confident = make_signal(1, source="pdm-toolwear", line="CNC2", severity="low", confidence=0.97, category="cost")
    make_signal(2, source="pdm-toolwear", line="CNC2", severity="medium", confidence=0.99, category="cost")
    assert confident.autonomy == "autonomous"
    (first, _), (second, _) = to_review(services)
    services.governance.review(first.id, actor="julia", outcome="overturned", note="the insert was fine")
    services.governance.review(second.id, actor="julia", outcome="confirmed")
    shelved = make_signal(3)
    services.signals.decide(shelved.id, actor="anna", kind="shelve", rationale="next stop", shelve_until=NOW + timedelta(hours=2))
    early = make_signal(4)
    services.signals.decide(early.id, actor="anna", kind="shelve", rationale="next stop", shelve_until=NOW + timedelta(hours=5))
    clock.at = NOW + timedelta(minutes=30)
    services.signals.unshelve(early.id, actor="anna")  # back after half an hour, not five hours
    acted = make_signal(5)
    services.signals.decide(acted.id, actor="anna", kind="act", rationale="on it",
                            action=ActionSpec("Check preload", "hana", NOW + timedelta(hours=1)))
    services.actions.create(actor="anna", title="Replace belt", owner="hana", due_at=NOW + timedelta(hours=2))
    services.actions.create(actor="anna", title="Train the team", owner="anna", due_at=NOW + timedelta(days=3))
    clock.at = NOW + timedelta(hours=4)
    services.governance.sweep()
    report = services.report.report()
    models = {m["source"]: m for m in report["models"]}
    assert (models["pdm-toolwear"]["autonomous_decisions"], models["pdm-toolwear"]["reviewed"],
            models["pdm-toolwear"]["overturned"], models["pdm-toolwear"]["overturn_rate"]) == (2, 2, 1, 0.5)
    assert models["pdm-spindle"]["shelved_hours"] == pytest.approx(2.5)
    assert report["overdue_actions"] == [{"owner": "hana", "name": "Hana Sato", "overdue": 2,
                                          "oldest_due_at": (NOW + timedelta(hours=1)).isoformat().replace("+00:00", "Z")}]
    assert services.report.report(source="vision-qc")["overdue_actions"] == []  # actions follow their signal's filters


def test_escalation_sources_and_flags(services, clock, make_signal):
    manual = make_signal(1, line="CNC1")
    services.signals.escalate(manual.id, actor="julia", reason="needs the area")
    make_signal(2, line="CNC1", severity="critical")
    make_signal(3, source="vision-qc", area="assembly", line="ASM1", severity="critical", category="quality")
    clock.at = NOW + timedelta(hours=1)
    services.governance.sweep()  # both critical signals breached 30 minutes at tier 1
    clock.at = NOW + timedelta(days=2)
    services.governance.sweep()  # ... then all three breached tier 2
    clock.at = NOW + timedelta(days=5)
    services.governance.sweep()  # ... and tier 3, the top: flagged
    report = services.report.report()
    esc = report["escalations"]
    assert (esc["escalated_signals"], esc["manual"]) == (3, 1)
    assert esc["automatic"] == 4 + 1  # two signals up two tiers each, the manual one once more
    assert esc["flagged_at_top_tier"] == 3
    top = esc["sources"][0]
    assert (top["from_tier"], top["area"], top["line"]) == (1, "machining", "CNC1")
    assert {(s["from_tier"], s["line"], s["automatic"], s["manual"]) for s in esc["sources"]} == {
        (1, "CNC1", 1, 1), (1, "ASM1", 1, 0), (2, "CNC1", 2, 0), (2, "ASM1", 1, 0)}
    assert sum(s["total"] for s in esc["sources"]) == esc["total"]
    tier1 = {row["tier"]: row for row in report["acted_within_window"]["by_tier"]}
    # Judged at the first window: only the signal a person escalated in time was acted on.
    assert (tier1[1]["acted"], tier1[1]["closed"]) == (1, 3)


def test_unknown_lines_fall_back_to_grouping_on_text(template_db, tmp_path, monkeypatch):
    """A line the config no longer names still gets its own rows (the slower path)."""
    clock = FixedClock(NOW)
    services = fresh_services(template_db, tmp_path, clock)
    build_history(services, clock, [NewSignal(i % len(PLACES), "quality", "high", None, 30 * i) for i in range(10)],
                  [Step(5, "act", i, "anna", 0) for i in range(6)])
    before = services.report.report(as_of=NOW + timedelta(days=1))
    services.ctx.engine.dispose()
    text = (Path(__file__).resolve().parent.parent / "tiermeet" / "demo" / "demo.toml").read_text(encoding="utf-8")
    from tiermeet.settings import parse_config

    shrunk = parse_config(text.replace('  { id = "PACK", name = "Packing" },\n', "").replace('scope = "PACK"', 'scope = "ASM1"'),
                          "shrunk")
    assert "PACK" not in shrunk.line_area
    fallbacks = []
    original = reports._signal_text_sql
    monkeypatch.setattr(reports, "_signal_text_sql", lambda *a: fallbacks.append(a) or original(*a))
    after = open_services(tmp_path / "h.db", shrunk, clock=clock).report.report(as_of=NOW + timedelta(days=1))
    assert len(fallbacks) == 1
    for key in ("signals", "acted_within_window", "response_times", "models", "outcomes", "trend"):
        assert after[key] == before[key], key


def test_trend_days_follow_the_plant_clock_across_dst(services, clock):
    """Local days, not UTC days: 23:30 UTC on the night clocks go back is already the next
    local day in Berlin, and each day is listed, empty or not."""
    rows = [Row(1, signal_record(1, detected_at="2026-10-24T23:30:00+00:00")),  # Sunday 01:30 CEST
            Row(2, signal_record(2, detected_at="2026-10-25T22:59:00+00:00")),  # Sunday 23:59 CET
            Row(3, signal_record(3, detected_at="2026-10-25T23:00:00+00:00"))]  # Monday 00:00 CET
    clock.at = datetime(2026, 10, 27, 12, tzinfo=UTC)
    services.ingest.ingest(rows, origin="t")
    trend = services.report.report(since=datetime(2026, 10, 24, tzinfo=ZONE), until=datetime(2026, 10, 27, tzinfo=ZONE))["trend"]
    assert (trend["from"], trend["to"]) == ("2026-10-24", "2026-10-26")
    assert [(d["day"], d["signals"]) for d in trend["days"]] == [("2026-10-24", 0), ("2026-10-25", 2), ("2026-10-26", 1)]
    assert len(services.report.report()["trend"]["days"]) == reports.TREND_DAYS


def test_whole_history_reads_decisions_and_response_times_in_index_order(services, clock, make_signal, monkeypatch):
    """Over the whole history the decision counts, the shelved time and the response-time
    percentiles are read along their indexes: no statement of theirs sorts (a sort of a
    million rows is what these indexes exist to avoid), and none reads every decision."""
    for n in range(3):
        signal = make_signal(n)
        services.signals.acknowledge(signal.id, actor="anna", note="seen")
        services.signals.decide(signal.id, actor="anna", kind="act" if n else "shelve", rationale="on it",
                                **({} if n else {"shelve_until": NOW + timedelta(hours=1)}))
    statements = []
    connect = reports._connect

    def traced(path):
        conn = connect(path)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(reports, "_connect", traced)
    report = services.report.report(as_of=NOW + timedelta(days=1))
    assert (report["response_times"]["acknowledged"], report["response_times"]["decided"]) == (3, 3)
    indexed = [sql for sql in statements if "INDEXED BY" in sql and sql.lstrip().upper().startswith("SELECT")]
    assert {index for index in ("ix_decision_report", "ix_signal_ack_time", "ix_signal_decide_time")
            if any(index in sql for sql in indexed)} == {"ix_decision_report", "ix_signal_ack_time", "ix_signal_decide_time"}
    conn = sqlite3.connect(services.ctx.db_path)
    try:
        for sql in indexed:
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            assert not any("TEMP B-TREE" in step or step in ("SCAN d", "SCAN s") for step in plan), (sql, plan)
    finally:
        conn.close()


def test_local_day_sql_matches_zoneinfo():
    """The SQL for a local day agrees with zoneinfo at, and a second either side of, every
    offset change over two years, in zones that change by an hour or by 30 minutes."""
    import sqlite3

    conn = sqlite3.connect(":memory:")
    for name in ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"):
        zone = ZoneInfo(name)
        start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
        first_day = start.astimezone(zone).date()
        sql = reports.local_day_sql("?", zone, start, end, first_day)
        _first, changes = reports.offset_changes(zone, start, end)
        moments = [start, end - timedelta(seconds=1)]
        for at, _offset in changes:
            moments += [at - timedelta(seconds=1), at, at + timedelta(seconds=1)]
            local_midnight = datetime.combine(at.astimezone(zone).date(), datetime.min.time(), zone).astimezone(UTC)
            moments += [local_midnight - timedelta(microseconds=1000), local_midnight]
        for moment in moments:
            expected = (moment.astimezone(zone).date() - first_day).days + 1
            got = conn.execute(f"SELECT {sql.replace('?', ':t')}", {"t": reports.to_db_text(moment)}).fetchone()[0]
            assert got == expected, (name, moment)


# ----- the command line -----
REPORT_KEYS = ["report", "generated_at", "as_of", "plant", "policy_version", "filters", "signals", "acted_within_window",
               "response_times", "escalations", "models", "bad_actors", "automation_bias", "overdue_actions", "outcomes", "trend"]


@pytest.fixture
def demo_history(services, clock, make_signal, db_path):
    """A small history on the services' database file, for the command line to read."""
    a = make_signal(1)
    services.signals.acknowledge(a.id, actor="anna")
    services.signals.decide(a.id, actor="anna", kind="act", rationale="fix",
                            action=ActionSpec("Check preload", "hana", NOW + timedelta(minutes=30)))
    b = make_signal(2, source="vision-qc", area="assembly", line="ASM1")
    services.signals.decide(b.id, actor="farah", kind="dismiss", rationale="glare", disposition="false_positive")
    clock.at = NOW + timedelta(minutes=20)
    services.signals.resolve(a.id, actor="anna", outcome=Outcome(downtime_minutes_avoided=45, yield_effect=0.02))
    make_signal(3, source="pdm-toolwear", line="CNC2", severity="low", confidence=0.99, category="cost")
    services.ctx.engine.dispose()
    return db_path


def test_report_json_keys_are_stable(run_cli, demo_history):
    result = run_cli("--db", demo_history, "report", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == REPORT_KEYS
    assert data["report"] == 1
    assert list(data["signals"]) == ["total", "autonomous", "placed_up", "acknowledged", "decided", "flagged", "resolved_with_outcome"]
    assert list(data["acted_within_window"]) == ["acted", "closed", "rate", "by_tier", "by_line", "by_category", "by_model"]
    assert list(data["response_times"]) == ["ack_median_min", "ack_p90_min", "decide_median_min", "decide_p90_min",
                                            "acknowledged", "decided"]
    assert list(data["escalations"]) == ["escalated_signals", "rate", "total", "automatic", "manual", "flagged_at_top_tier", "sources"]
    assert list(data["models"][0]) == ["source", "volume", "decided", "acted", "action_rate", "false_positives",
                                       "false_positive_rate", "escalated", "autonomous_decisions", "reviewed", "overturned",
                                       "overturn_rate", "shelved_hours", "suspended"]
    assert list(data["automation_bias"]) == ["share", "min_decisions", "flagged"]
    assert list(data["outcomes"]) == ["by_model", "by_line"]
    assert list(data["outcomes"]["by_model"][0]) == ["source", "resolved", "downtime_minutes_avoided", "scrap_avoided",
                                                     "yield_effect_mean"]
    assert list(data["trend"]) == ["from", "to", "days"]
    assert list(data["trend"]["days"][0]) == ["day", "signals", "closed", "acted", "rate"]
    assert data["signals"]["total"] == 3 and data["signals"]["autonomous"] == 1
    assert data["outcomes"]["by_model"] == [{"source": "pdm-spindle", "resolved": 1, "downtime_minutes_avoided": 45.0,
                                             "scrap_avoided": None, "yield_effect_mean": 0.02}]
    narrowed = json.loads(run_cli("--db", demo_history, "report", "--format", "json", "--line", "ASM1",
                                  "--since", "2026-11-25").stdout)
    assert narrowed["filters"] == {"since": "2026-11-24T23:00:00Z", "until": None, "tier": None, "line": "ASM1", "source": None,
                                   "area": None}
    assert narrowed["signals"]["total"] == 1


def test_report_renders_as_table_md_and_csv(run_cli, demo_history):
    table = run_cli("--db", demo_history, "report")
    assert table.returncode == 0, table.stderr
    assert "Governance report — riverside — whole history" in table.stdout
    for title in ("Summary", "Acted within window by tier", "Models", "Outcomes by line", "Trend by day"):
        assert title in table.stdout
    assert "acted-within-window rate" in table.stdout and "Overdue actions by owner" in table.stdout

    md = run_cli("--db", demo_history, "report", "--format", "md").stdout
    assert md.startswith("# Governance report")
    assert "## Models\n\n| source | volume | decided |" in md
    assert "| vision-qc | 1 | 1 | 0.0% | 100.0% |" in md

    rows = list(csv.DictReader(io.StringIO(run_cli("--db", demo_history, "report", "--format", "csv").stdout)))
    assert set(rows[0]) == {"section", "group", "metric", "value"}
    assert {"section": "models", "group": "source=vision-qc", "metric": "false_positive_rate", "value": "1.0"} in rows
    assert {"section": "summary", "group": "", "metric": "signals", "value": "3"} in rows
    assert {"section": "acted_within_window.by_line", "group": "area=assembly;line=ASM1", "metric": "closed", "value": "1"} in rows
    assert {r["section"] for r in rows} >= {"summary", "acted_within_window.by_tier", "models", "outcomes.by_line", "trend.days"}


def test_report_refuses_bad_times(run_cli, demo_history):
    result = run_cli("--db", demo_history, "report", "--since", "last tuesday")
    assert result.returncode == 2 and "--since: 'last tuesday' is not an ISO 8601 date or time" in result.stderr
    result = run_cli("--db", demo_history, "report", "--since", "2026-11-25", "--until", "2026-11-01")
    assert result.returncode == 2 and "--since must be before --until" in result.stderr


def test_policy_show(run_cli):
    result = run_cli("policy", "show")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    version = load_config(None).governance.version
    assert f"Decision-rights policy {version}" in out
    assert "safety goes to the area" in out and "category=safety; severity=critical,high" in out
    assert "confidence≥0.95" in out and "critical T2 15m" in out
    assert "Default (when no rule matches)" in out and "Response windows" in out and "end_of_shift" in out
    lines = out.splitlines()
    rule_rows = [ln for ln in lines if ln.startswith(("1 ", "2 "))]
    assert rule_rows[0].split()[:2] == ["1", "safety"] and rule_rows[1].split()[:2] == ["2", "confident"]
    md = run_cli("policy", "show", "--format", "md").stdout
    assert "| order | name | match | autonomy | start_tier | window_overrides |" in md
    assert json.loads(run_cli("policy", "show", "--format", "json").stdout)["version"] == version


# ----- policy replay -----
def replay_file(tmp_path: Path) -> Path:
    """Six past signals with the times a person first decided on them (plant time)."""
    lines = [
        # high, tier 1, 2 h window: decided after 1 h (met) / after 3 h (breached) / never (breached by now)
        signal_record(1, detected_at="2026-11-20T08:00:00", decided_at="2026-11-20T09:00:00"),
        signal_record(2, detected_at="2026-11-20T08:00:00", decided_at="2026-11-20T11:00:00"),
        signal_record(3, detected_at="2026-11-20T08:00:00"),
        # safety, critical: the escalate rule puts it at tier 2 with a 15 m window; decided after 20 m
        signal_record(4, category="safety", severity="critical", detected_at="2026-11-20T08:00:00",
                      decided_at="2026-11-20T08:20:00"),
        # confident tool-wear call, low: autonomous now
        signal_record(5, source="pdm-toolwear", line="CNC2", severity="low", confidence=0.97,
                      detected_at="2026-11-20T08:00:00"),
        # vision, medium: end of shift (early shift ends 14:00); decided 13:00
        signal_record(6, source="vision-qc", area="assembly", line="ASM1", severity="medium",
                      detected_at="2026-11-20T08:00:00", decided_at="2026-11-20T13:00:00"),
    ]
    path = tmp_path / "past.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return path


PROPOSED = """
[governance.windows]
high = { 1 = "4h" }

[[governance.rules]]
name = "vision calls act alone"
source = ["vision-qc"]
autonomy = "autonomous"

[[governance.rules]]
name = "safety to the plant"
category = ["safety"]
autonomy = "escalate"
start_tier = 3
"""


def test_policy_replay_on_a_known_history(run_cli, tmp_path):
    (tmp_path / "new.toml").write_text(PROPOSED, encoding="utf-8")
    result = run_cli("policy", "replay", replay_file(tmp_path), "--config", tmp_path / "new.toml", "--format", "json",
                     "--at", "2026-11-25T08:00:00")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["signals"] == 6 and data["rejected"] == 0
    current = {t["tier"]: t for t in data["current"]["tiers"]}
    proposed = {t["tier"]: t for t in data["proposed"]["tiers"]}
    strip = lambda t: {k: v for k, v in t.items() if k != "breach_rate"}  # noqa: E731
    # Now: five at tier 1 (one autonomous), #2 and #3 breached, #6 met by end of shift; #4 at tier 2, breached.
    assert strip(current[1]) == {"tier": 1, "signals": 5, "autonomous": 1, "sign_off": 4, "escalate": 0, "decided": 3, "breached": 2}
    assert strip(current[2]) == {"tier": 2, "signals": 1, "autonomous": 0, "sign_off": 0, "escalate": 1, "decided": 1, "breached": 1}
    # Proposed: high gets 4 h at tier 1 (#2 met), vision acts alone, tool wear loses its rule
    # (a day at tier 1, never decided: breached), safety starts at tier 3 (4 h: met).
    assert strip(proposed[1]) == {"tier": 1, "signals": 5, "autonomous": 1, "sign_off": 4, "escalate": 0, "decided": 2, "breached": 2}
    assert 2 not in proposed
    assert strip(proposed[3]) == {"tier": 3, "signals": 1, "autonomous": 0, "sign_off": 0, "escalate": 1, "decided": 1, "breached": 0}
    assert proposed[3]["breach_rate"] == 0.0 and current[1]["breach_rate"] == 0.5

    table = run_cli("policy", "replay", replay_file(tmp_path), "--config", tmp_path / "new.toml")
    assert table.returncode == 0 and "Replay by start tier" in table.stdout and "proposed" in table.stdout


def test_policy_replay_of_the_database_history(run_cli, tmp_path, demo_history):
    (tmp_path / "new.toml").write_text(PROPOSED, encoding="utf-8")
    result = run_cli("--db", demo_history, "policy", "replay", "--since", "2026-11-01", "--config", tmp_path / "new.toml",
                     "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["signals"] == 3
    current, proposed = data["current"]["tiers"], data["proposed"]["tiers"]
    assert sum(t["autonomous"] for t in current) == sum(t["autonomous"] for t in proposed) == 1  # tool wear now, vision then
    assert sum(t["decided"] for t in current) == 2
    assert sum(t["decided"] for t in proposed) == 1  # the dismissed vision signal would have been the model's call


def test_policy_replay_refusals(run_cli, tmp_path):
    (tmp_path / "new.toml").write_text('[[governance.rules]]\nname = "x"\nautonomy = "sometimes"\n', encoding="utf-8")
    result = run_cli("policy", "replay", replay_file(tmp_path), "--config", tmp_path / "new.toml")
    assert result.returncode == 2 and "governance.rules[0].autonomy" in result.stderr
    (tmp_path / "ok.toml").write_text(PROPOSED, encoding="utf-8")
    result = run_cli("policy", "replay", "--config", tmp_path / "ok.toml")
    assert result.returncode == 2 and "name the signals to replay" in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(signal_record(1)) + "\n" + json.dumps(signal_record(2, severity="urgent")) + "\n", encoding="utf-8")
    result = run_cli("policy", "replay", bad, "--config", tmp_path / "ok.toml", "--format", "json")
    assert result.returncode == 1 and "bad.jsonl:2: severity" in result.stderr
    assert json.loads(result.stdout)["signals"] == 1



# ----- the metrics screen -----
def test_metrics_screen_shows_the_report_of_the_board(services, clock, make_signal):
    """From a Tier 2 area board, ``g`` opens the governance metrics of that area: the
    headline rate, sparklines by day, model bars, people; ``p`` changes the period."""
    from textual.widgets import Sparkline

    from tiermeet.ui.screens.metrics import MetricsScreen
    from ui_helpers import JULIA, WIDE, make_app, settle, start, text_of, ui_test, wait_until

    for i in range(12):
        signal = make_signal(i, source="vision-qc", area="machining", line="CNC2", category="quality",
                             detected_at=(NOW - timedelta(days=i % 4, minutes=30)).isoformat())
        services.signals.decide(signal.id, actor="hana", kind="dismiss", rationale="glare",
                                disposition="false_positive" if i % 3 else "duplicate")
    make_signal(99, source="ergo-cam", area="assembly", line="PACK", category="people")  # another area: left out
    services.governance.suspend("vision-qc", actor="julia", reason="lens fogging")

    @ui_test
    async def run():
        app = make_app(services, tier=2, scope="machining")
        async with app.run_test(size=WIDE) as pilot:
            await start(pilot, JULIA)
            await pilot.press("g")
            await wait_until(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.report is not None,
                             what="the metrics")
            await settle(pilot)
            screen = app.screen
            assert screen.report["filters"]["area"] == "machining" and screen.report["filters"]["line"] is None
            assert "Acted on within the window" in text_of(screen.query_one("#headline"))
            assert "12 signals" in text_of(screen.query_one("#headline"))
            models_text = text_of(screen.query_one("#models"))
            assert "vision-qc" in models_text and "ergo-cam" not in models_text
            assert "autonomy suspended" in models_text and "Most false positives" in models_text
            assert len(screen.query_one("#volume-trend", Sparkline).data) == 28
            assert "nobody flagged" in text_of(screen.query_one("#people"))
            await pilot.press("p")
            await wait_until(pilot, lambda: len(screen.query_one("#volume-trend", Sparkline).data) == 7, what="7 days")
            assert "last 7 days" in text_of(screen.query_one("#topbar"))
            await pilot.press("escape")
            await wait_until(pilot, lambda: not isinstance(app.screen, MetricsScreen), what="back to the board")

    run()


def test_metrics_text_helpers():
    from tiermeet.ui.screens.metrics import bar, minutes, pct

    assert bar(0.5, 10) == "█████░░░░░" and bar(None, 4) == "····" and bar(1.7, 3) == "███"
    assert (pct(None), pct(0.874)) == ("—", "87%")
    assert (minutes(None), minutes(45), minutes(180), minutes(3 * 1440)) == ("—", "45 min", "3.0 h", "3.0 d")


def test_a_report_reads_one_snapshot_while_kiosks_write(services, clock, monkeypatch):
    """The passes run on several connections; they must agree with each other even while
    another thread acknowledges and decides signals between and during them."""
    import threading

    monkeypatch.setattr(reports, "CHUNK_MIN_ROWS", 0)
    rows = [Row(i + 1, signal_record(i)) for i in range(400)]
    services.ingest.ingest(rows, origin="t")
    with services.ctx.read() as session:
        ids = list(session.scalars(select(Signal.id)))
    stop = threading.Event()

    def kiosk():
        for signal_id in ids:
            if stop.is_set():
                return
            services.signals.acknowledge(signal_id, actor="anna")
            services.signals.decide(signal_id, actor="anna", kind="act", rationale="on it")

    writer = threading.Thread(target=kiosk)
    writer.start()
    try:
        seen = set()
        for _ in range(8):
            report = services.report.report()
            times, totals = report["response_times"], report["signals"]
            assert (times["acknowledged"], times["decided"]) == (totals["acknowledged"], totals["decided"])
            assert sum(m["decided"] for m in report["models"]) == totals["decided"]  # one act decision per decided signal
            seen.add(totals["decided"])
    finally:
        stop.set()
        writer.join()
    assert len(seen) > 1, "the writer did not write while the reports ran"
