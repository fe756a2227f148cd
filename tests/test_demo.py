"""The demo plant: built once, through the services, with every situation a board can show.

Building takes a few seconds, so one demo database (at the fixed test time NOW) is shared
by the read-only tests of this module.
"""

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from conftest import NOW, signal_record
from tiermeet.demo.build import MARKER, build_demo
from tiermeet.domain.clock import FixedClock
from tiermeet.domain.enums import ACTIVE_STATUSES, DecisionKind, Disposition
from tiermeet.ingest.readers import Row
from tiermeet.services.bundle import Services, open_services
from tiermeet.settings import load_config
from tiermeet.store.models import (
    Action,
    AuditEntry,
    Comment,
    Decision,
    Escalation,
    Meeting,
    MeetingAttendance,
    OutboxMutation,
    Person,
    Signal,
    SyncState,
)
from tiermeet.store.queries import Scope

TABLES = (Person, Signal, Decision, Action, Escalation, Comment, Meeting, MeetingAttendance, AuditEntry,
          OutboxMutation, SyncState)
ACTIVE = {s.value for s in ACTIVE_STATUSES}


def build_at(path: Path, at: datetime) -> Services:
    services = open_services(path, load_config(None), clock=FixedClock(at), device_name="test-kiosk")
    assert build_demo(services) is True
    return services


def counts(services: Services) -> dict[str, int]:
    with services.ctx.read() as session:
        return {t.__name__: session.scalar(select(func.count()).select_from(t)) for t in TABLES}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Services:
    """One demo plant built at NOW, shared by the module's read-only tests."""
    return build_at(tmp_path_factory.mktemp("demo") / "demo.db", NOW)


def test_a_second_build_adds_nothing(demo):
    before = counts(demo)
    assert build_demo(demo) is False
    assert counts(demo) == before
    with demo.ctx.read() as session:
        assert session.get(SyncState, MARKER).value == NOW.isoformat()


def test_a_database_with_history_of_its_own_is_left_alone(services):
    assert services.ingest.ingest([Row(1, signal_record())], origin="test").added == 1
    before = counts(services)
    assert build_demo(services) is False
    assert counts(services) == before


def test_plant_size_models_and_people(demo):
    with demo.ctx.read() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == 12
        sources = Counter(session.scalars(select(Signal.source)))
        total = sum(sources.values())
        first, last = session.execute(select(func.min(Signal.detected_at), func.max(Signal.detected_at))).one()
        grounded = session.scalars(select(Signal.extra).where(Signal.source.like("pdm-%"))).all()
    assert 600 <= total <= 1500
    assert len(set(sources) - {"manual"}) >= 3 and {"pdm-spindle", "pdm-toolwear", "vision-qc", "yield-model"} <= set(sources)
    assert 13 <= (NOW - first).days <= 14 and last < NOW
    # Predictive-maintenance signals carry the machine reading they were made from.
    assert grounded and all(e["dataset"] == "AI4I 2020" and e["dataset_udi"] > 0 for e in grounded)


def test_every_decision_kind_and_disposition(demo):
    with demo.ctx.read() as session:
        kinds = Counter(session.scalars(select(Decision.kind)))
        dispositions = set(session.scalars(select(Decision.disposition).where(Decision.disposition.is_not(None))))
        by_ai = session.scalar(select(func.count()).select_from(Decision).where(Decision.decided_by.like("ai:%")))
        resolved = session.scalars(select(Signal.outcome).where(Signal.status == "resolved")).all()
    assert set(kinds) == {k.value for k in DecisionKind}
    assert dispositions == {d.value for d in Disposition}
    assert by_ai > 0  # autonomous tool-wear calls
    assert resolved and all(o is not None and o["note"] for o in resolved)
    assert any(o["downtime_minutes_avoided"] for o in resolved) and any(o["scrap_avoided"] for o in resolved)
    assert any(o["yield_effect"] for o in resolved)


def test_meetings_have_attendance_and_decisions(demo):
    with demo.ctx.read() as session:
        meetings = session.scalars(select(Meeting)).all()
        attendance = Counter(session.scalars(select(MeetingAttendance.meeting_id)))
        in_meetings = Counter(session.scalars(select(Decision.meeting_id).where(Decision.meeting_id.is_not(None))))
    assert {m.tier for m in meetings} == {1, 2, 3}
    assert {m.scope for m in meetings if m.tier == 1} == set(load_config(None).line_area)
    assert all(m.ended_at is not None and m.started_at < m.ended_at < NOW and m.notes for m in meetings)
    assert all(attendance[m.id] >= 1 for m in meetings)
    assert sum(attendance.values()) > len(meetings)  # more than the facilitators
    assert in_meetings and set(in_meetings) <= {m.id for m in meetings}


def test_actions_have_owners_some_overdue_some_verified(demo):
    with demo.ctx.read() as session:
        actions = session.scalars(select(Action)).all()
    statuses = Counter(a.status for a in actions)
    overdue = [a for a in actions if a.status in ("open", "in_progress") and a.due_at < NOW]
    assert all(a.owner_id for a in actions)
    assert overdue
    assert statuses["done"] and statuses["verified"]
    assert all(a.created_at < a.due_at for a in actions)


def test_escalations_both_ways_up_with_context(demo):
    with demo.ctx.read() as session:
        escalations = session.scalars(select(Escalation)).all()
    steps = {(e.from_tier, e.to_tier) for e in escalations}
    assert {(1, 2), (2, 3)} <= steps
    assert any(e.automatic for e in escalations) and any(not e.automatic for e in escalations)
    for e in escalations:
        assert e.reason
        assert e.context["from_tier"] == e.from_tier
        assert {"decisions", "actions", "comments", "deadline", "window_breached"} <= set(e.context)
    # Some packets carry what the lower tier did: decisions, actions and comments.
    assert any(e.context["actions"] and e.context["comments"] for e in escalations)


def test_todays_boards_are_alive(demo):
    for line in load_config(None).line_area:
        board = demo.board.page(Scope(tier=1, line=line))
        assert 5 <= len(board) <= 15, (line, len(board))
        assert all(s.status in ACTIVE for s in board)
    tier1 = demo.board.page(Scope(tier=1))
    waiting = [s for s in tier1 if s.status in ("open", "acknowledged")]
    assert any(s.deadline < NOW for s in waiting), "a window already closed"
    assert any(0 < (s.deadline - NOW).total_seconds() <= 3600 for s in waiting), "a window about to close"
    assert demo.board.page(Scope(tier=2)) and demo.board.page(Scope(tier=3))


def test_every_change_is_audited_and_queued_for_sync(demo):
    with demo.ctx.read() as session:
        decisions = set(session.scalars(select(Decision.id)))
        audited = {a.after["decision_id"] for a in session.scalars(select(AuditEntry).where(AuditEntry.op.like("decide:%")))}
        mutations = Counter(session.scalars(select(OutboxMutation.name)))
        seqs = session.scalars(select(OutboxMutation.seq).order_by(OutboxMutation.seq)).all()
        devices = set(session.scalars(select(AuditEntry.device)))
        violations = session.execute(text("PRAGMA foreign_key_check")).all()
    assert {str(d) for d in decisions} == audited
    assert {"signal.ingest", "signal.decide", "signal.resolve", "signal.escalate", "signal.acknowledge",
            "action.set_status", "comment.add", "meeting.start", "meeting.attend", "meeting.end"} <= set(mutations)
    assert seqs == list(range(1, len(seqs) + 1))
    assert devices == {"demo-builder"}
    assert violations == []


def test_the_same_plant_every_time(demo, tmp_path):
    again = build_at(tmp_path / "again.db", NOW)

    def story(services: Services) -> list[tuple]:
        with services.ctx.read() as session:
            signals = session.execute(select(Signal.external_id, Signal.title, Signal.status, Signal.tier, Signal.deadline)
                                      .order_by(Signal.source, Signal.external_id)).all()
            decisions = session.execute(select(Decision.kind, Decision.decided_by, Decision.decided_at)
                                        .order_by(Decision.decided_at, Decision.kind)).all()
        return [tuple(r) for r in signals] + [tuple(r) for r in decisions]

    assert story(again) == story(demo)


def test_builds_at_an_awkward_moment(tmp_path):
    """Sunday night at the end of daylight saving time: no night shift, clocks going back."""
    at = datetime(2026, 10, 25, 1, 30, tzinfo=timezone.utc)
    services = build_at(tmp_path / "dst.db", at)
    for line in services.ctx.config.line_area:
        assert services.board.page(Scope(tier=1, line=line)), line
    with services.ctx.read() as session:
        assert session.execute(text("PRAGMA foreign_key_check")).all() == []


def test_demo_command_builds_once_then_reuses(tmp_path):
    db = tmp_path / "cli" / "demo.db"
    env = {**os.environ, "PYTHONUTF8": "1", "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("TIERMEET_DB", None)
    env.pop("TIERMEET_CONFIG", None)

    def run():
        return subprocess.run([sys.executable, "-m", "tiermeet", "demo", "--no-open", "--db", str(db)],
                              capture_output=True, text=True, encoding="utf-8", env=env, timeout=180)

    first = run()
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"Built demo plant database: {db}"
    assert db.exists()
    second = run()
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"Using demo plant database: {db}"
