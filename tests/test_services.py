"""Services: each call is one transaction holding the change, one audit entry and one
outbox mutation; a failure anywhere leaves nothing. Plus the board query and people.

The journal is read back with sqlite3 straight from the file, not through the models.
"""

import json
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import NOW, signal_record
from tiermeet.domain.errors import DomainError
from tiermeet.domain.hlc import Timestamp
from tiermeet.ingest.readers import Row
from tiermeet.services.bundle import open_services
from tiermeet.services.requests import ActionSpec, Outcome
from tiermeet.settings import demo_config_text, parse_config
from tiermeet.store.models import Signal
from tiermeet.store.queries import Cursor, Filters, Scope, board_sql, plant_areas

# --------------------------------------------------------------------------------------
# Reading the journal straight from the file.
# --------------------------------------------------------------------------------------


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def journal(path: Path) -> dict:
    """Audit rows, outbox rows and sync state, oldest first."""
    with _connect(path) as conn:
        audit = [dict(r) for r in conn.execute("SELECT * FROM audit_log ORDER BY hlc, rowid")]
        outbox = [dict(r) for r in conn.execute("SELECT * FROM outbox ORDER BY seq")]
        state = dict(conn.execute("SELECT key, value FROM sync_state").fetchall())
    conn.close()
    return {"audit": audit, "outbox": outbox, "state": state}


def table_rows(path: Path, table: str) -> list[dict]:
    with _connect(path) as conn:
        rows = [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    conn.close()
    return rows


def _new(before: list[dict], after: list[dict], key: str) -> list[dict]:
    seen = {r[key] for r in before}
    return [r for r in after if r[key] not in seen]


# --------------------------------------------------------------------------------------
# One audit entry and one mutation per call.
# --------------------------------------------------------------------------------------


def test_every_call_writes_change_audit_and_one_outbox_mutation(services, db_path, make_signal, clock):
    sig = make_signal(1, severity="critical")
    other = make_signal(2)
    third = make_signal(3)
    state: dict = {}

    def act():
        decision = services.signals.decide(sig.id, actor="anna", kind="act", rationale="fix",
                                           action=ActionSpec("Swap bearing", "ben", NOW + timedelta(days=1)))
        with services.ctx.read() as session:
            from tiermeet.store.models import Action

            state["action"] = session.scalars(select(Action).where(Action.decision_id == decision.id)).one().id

    def meeting_start():
        state["meeting"] = services.meetings.start(actor="anna", tier=1, scope="CNC1").id

    steps = [
        # name, call, actor, mutation, entity
        ("acknowledge", lambda: services.signals.acknowledge(sig.id, actor="anna"), "anna", "signal.acknowledge", "signal"),
        ("comment", lambda: services.comments.add("signal", sig.id, actor="100232", body="seen it"), "ben", "comment.add", "comment"),
        ("decide act", act, "anna", "signal.decide", "signal"),
        ("action start", lambda: services.actions.start(state["action"], actor="ben"), "ben", "action.set_status", "action"),
        ("action reassign", lambda: services.actions.reassign(state["action"], actor="anna", owner="chen"), "anna", "action.set_owner", "action"),
        ("action due", lambda: services.actions.change_due(state["action"], actor="anna", due_at=NOW + timedelta(days=2)), "anna", "action.set_due", "action"),
        ("action done", lambda: services.actions.done(state["action"], actor="chen"), "chen", "action.set_status", "action"),
        ("action verify", lambda: services.actions.verify(state["action"], actor="anna"), "anna", "action.set_status", "action"),
        ("action reopen", lambda: services.actions.reopen(state["action"], actor="anna"), "anna", "action.reopen", "action"),
        ("action cancel", lambda: services.actions.cancel(state["action"], actor="anna"), "anna", "action.set_status", "action"),
        ("action comment", lambda: services.comments.add("action", state["action"], actor="anna", body="not needed"), "anna", "comment.add", "comment"),
        ("resolve", lambda: services.signals.resolve(sig.id, actor="anna", outcome=Outcome(downtime_minutes_avoided=30)), "anna", "signal.resolve", "signal"),
        ("reopen", lambda: services.signals.reopen(sig.id, actor="julia", reason="again"), "julia", "signal.reopen", "signal"),
        ("monitor", lambda: services.signals.decide(other.id, actor="anna", kind="monitor"), "anna", "signal.decide", "signal"),
        ("dismiss", lambda: services.signals.decide(sig.id, actor="anna", kind="dismiss", rationale="dup", disposition="duplicate"), "anna", "signal.decide", "signal"),
        ("shelve", lambda: services.signals.decide(third.id, actor="anna", kind="shelve", rationale="overhaul",
                                                   shelve_until=NOW + timedelta(days=3)), "anna", "signal.decide", "signal"),
        ("decide escalate", lambda: services.signals.decide(other.id, actor="anna", kind="escalate", rationale="too big"), "anna", "signal.decide", "signal"),
        ("escalate", lambda: services.signals.escalate(other.id, actor="julia", reason="plant"), "julia", "signal.escalate", "signal"),
        ("action create", lambda: services.actions.create(actor="lena", title="Audit spindles", owner="hana", due_at=NOW + timedelta(days=7)),
         "lena", "action.create", "action"),
        ("meeting start", meeting_start, "anna", "meeting.start", "meeting"),
        ("meeting attend", lambda: services.meetings.attend(state["meeting"], actor="anna", person="100240"), "anna", "meeting.attend", "meeting"),
        ("meeting end", lambda: services.meetings.end(state["meeting"], actor="anna", notes="ok"), "anna", "meeting.end", "meeting"),
        ("ingest", lambda: services.ingest.ingest([Row(1, signal_record(10)), Row(2, signal_record(11))], origin="f.jsonl"),
         "system:ingest", "signal.ingest", "signal"),
    ]
    before = journal(db_path)
    seen_hlcs = [Timestamp.unpack(r["hlc"]) for r in before["audit"]]
    for number, (name, call, actor, mutation, entity) in enumerate(steps):
        if number % 3 == 0:  # the clock moves on for some steps and stands still for others
            clock.at = clock.at + timedelta(seconds=7)
        call()
        after = journal(db_path)
        audit = _new(before["audit"], after["audit"], "id")
        outbox = _new(before["outbox"], after["outbox"], "seq")
        assert len(audit) == 1, name
        assert len(outbox) == 1, name
        (entry,), (mutation_row,) = audit, outbox
        expected_seq = int(before["state"]["next_seq"])
        assert mutation_row["seq"] == expected_seq, name
        assert int(after["state"]["next_seq"]) == expected_seq + 1, name
        assert [r["seq"] for r in after["outbox"]] == list(range(1, expected_seq + 1)), name
        assert (mutation_row["name"], mutation_row["entity"], mutation_row["actor"]) == (mutation, entity, actor), name
        assert (entry["actor"], entry["device"], entry["entity"]) == (actor, "test-kiosk", entity), name
        assert entry["entity_id"] == mutation_row["entity_id"], name
        assert entry["hlc"] == mutation_row["hlc"] == after["state"]["hlc"], name
        stamp = Timestamp.unpack(entry["hlc"])
        assert all(stamp > s for s in seen_hlcs), name
        assert stamp.l >= int(clock.at.timestamp() * 1000), name
        assert entry["at"] == clock.at.replace(tzinfo=None).isoformat(timespec="microseconds"), name
        assert json.loads(mutation_row["args"]), name
        assert re.fullmatch(r"[0-9a-f]{64}", mutation_row["payload_sha256"]), name
        assert after["state"]["client_id"] == before["state"]["client_id"], name
        seen_hlcs.append(stamp)
        before = after


def test_hlc_keeps_rising_when_the_wall_clock_goes_back(services, db_path, make_signal, clock):
    signal = make_signal()
    services.signals.acknowledge(signal.id, actor="anna")
    clock.at = NOW - timedelta(hours=5)  # someone set the kiosk clock back
    services.comments.add("signal", signal.id, actor="anna", body="one")
    services.comments.add("signal", signal.id, actor="anna", body="two")
    stamps = [Timestamp.unpack(r["hlc"]) for r in journal(db_path)["outbox"]]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_change_rows_carry_the_stamp_of_their_mutation(services, db_path, make_signal):
    signal = make_signal()
    decision = services.signals.decide(signal.id, actor="anna", kind="act", rationale="r",
                                       action=ActionSpec("Fix", "ben", NOW + timedelta(hours=2)))
    last = journal(db_path)["outbox"][-1]
    stored = services.signals.get(signal.id)
    assert stored.updated_hlc == decision.hlc == last["hlc"]
    args = json.loads(last["args"])
    assert args["decision"]["id"] == str(decision.id)
    assert args["action"]["owner_id"] == "ben"


def test_audit_before_and_after_images(services, db_path, make_signal):
    signal = make_signal()
    services.signals.acknowledge(signal.id, actor="anna")
    entry = journal(db_path)["audit"][-1]
    before, after = json.loads(entry["before"]), json.loads(entry["after"])
    assert (before["status"], after["status"]) == ("open", "acknowledged")
    assert (before["acknowledged_by"], after["acknowledged_by"]) == (None, "anna")
    assert (entry["entity"], entry["entity_id"], entry["op"]) == ("signal", str(signal.id), "acknowledge")


def test_story_lists_a_signals_audit_entries(services, make_signal):
    signal = make_signal()
    services.signals.acknowledge(signal.id, actor="anna")
    services.signals.decide(signal.id, actor="anna", kind="monitor")
    story = services.views.story(signal.id)
    assert [e.op for e in story.audit] == ["ingest", "acknowledge", "decide:monitor"]
    assert [d.kind for d in story.decisions] == ["monitor"]


# --------------------------------------------------------------------------------------
# A failure midway leaves nothing.
# --------------------------------------------------------------------------------------


def _everything(path: Path) -> dict:
    tables = ("signal", "decision", "action", "escalation", "comment", "audit_log", "outbox", "sync_state", "meeting", "meeting_attendance")
    return {t: table_rows(path, t) for t in tables}


def test_decide_with_unknown_action_owner_leaves_nothing(services, db_path, make_signal):
    signal = make_signal()
    services.signals.acknowledge(signal.id, actor="anna")
    before = _everything(db_path)
    with pytest.raises(DomainError, match="^no person with id or badge 'zoe'$"):
        services.signals.decide(signal.id, actor="anna", kind="act", rationale="fix",
                                action=ActionSpec("Swap bearing", "zoe", NOW + timedelta(hours=2)))
    assert _everything(db_path) == before


def test_escalate_at_top_tier_leaves_nothing(services, db_path, make_signal):
    signal = make_signal()
    services.signals.escalate(signal.id, actor="anna", reason="a")
    services.signals.escalate(signal.id, actor="anna", reason="b")
    before = _everything(db_path)
    with pytest.raises(DomainError):
        services.signals.decide(signal.id, actor="lena", kind="escalate", rationale="c")
    assert _everything(db_path) == before


@pytest.fixture
def failing_record(monkeypatch):
    """Make ``Tx.record`` fail right after it has added the audit and outbox rows."""
    from tiermeet.services import unit

    original = unit.Tx.record

    def record(self, **kw):
        original(self, **kw)
        self.session.flush()  # the change, the audit entry and the mutation reach the file…
        raise RuntimeError("power cut")  # …and then the transaction dies

    monkeypatch.setattr(unit.Tx, "record", record)


@pytest.mark.parametrize("call", [
    "acknowledge", "decide-act", "decide-escalate", "escalate", "resolve", "reopen", "comment",
    "action-create", "action-start", "meeting-start", "ingest",
])
def test_failure_after_the_change_leaves_nothing(services, db_path, make_signal, monkeypatch, call, request):
    signal = make_signal()
    if call in ("resolve",):
        services.signals.decide(signal.id, actor="anna", kind="monitor")
    if call == "reopen":
        services.signals.decide(signal.id, actor="anna", kind="dismiss", rationale="r", disposition="duplicate")
    action = services.actions.create(actor="anna", title="t", owner="ben", due_at=NOW + timedelta(hours=1))
    before = _everything(db_path)
    request.getfixturevalue("failing_record")
    calls = {
        "acknowledge": lambda: services.signals.acknowledge(signal.id, actor="anna"),
        "decide-act": lambda: services.signals.decide(signal.id, actor="anna", kind="act", rationale="r",
                                                      action=ActionSpec("x", "ben", NOW + timedelta(hours=1))),
        "decide-escalate": lambda: services.signals.decide(signal.id, actor="anna", kind="escalate", rationale="r"),
        "escalate": lambda: services.signals.escalate(signal.id, actor="anna", reason="r"),
        "resolve": lambda: services.signals.resolve(signal.id, actor="anna", outcome=Outcome(note="n")),
        "reopen": lambda: services.signals.reopen(signal.id, actor="julia", reason="r"),
        "comment": lambda: services.comments.add("signal", signal.id, actor="anna", body="b"),
        "action-create": lambda: services.actions.create(actor="anna", title="t2", owner="ben", due_at=NOW + timedelta(hours=1)),
        "action-start": lambda: services.actions.start(action.id, actor="ben"),
        "meeting-start": lambda: services.meetings.start(actor="anna", tier=1, scope="CNC1"),
        "ingest": lambda: services.ingest.ingest([Row(1, signal_record(77))], origin="x"),
    }
    with pytest.raises(RuntimeError, match="power cut"):
        calls[call]()
    assert _everything(db_path) == before
    # and the database is still usable afterwards
    monkeypatch.undo()
    services.comments.add("signal", signal.id, actor="anna", body="still here")


# --------------------------------------------------------------------------------------
# The audit log is append-only.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"])
def test_audit_log_refuses_update_and_delete(services, db_path, make_signal, statement):
    signal = make_signal()
    services.signals.acknowledge(signal.id, actor="anna")
    before = table_rows(db_path, "audit_log")
    conn = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.DatabaseError, match="the audit log is append-only"):
        conn.execute(statement)
    conn.rollback()
    conn.close()
    assert table_rows(db_path, "audit_log") == before
    assert len(before) >= 2


def test_audit_log_refuses_update_through_the_orm(services, make_signal):
    from sqlalchemy.exc import IntegrityError

    from tiermeet.store.engine import write_session
    from tiermeet.store.models import AuditEntry

    make_signal()
    with pytest.raises(IntegrityError, match="append-only"), write_session(services.ctx.engine) as session:
        session.scalars(select(AuditEntry)).first().actor = "mallory"


# --------------------------------------------------------------------------------------
# Snapshots and context packets.
# --------------------------------------------------------------------------------------


def test_decision_snapshot_holds_the_ai_output(services, make_signal):
    signal = make_signal(1, confidence=0.91, detail="RMS 7.1 mm/s", evidence_url="https://pdm.local/sp-104", plant_cell="B4")
    decision = services.signals.decide(signal.id, actor="anna", kind="monitor", rationale="watch it")
    snap = decision.ai_snapshot
    record = signal_record(1)
    for name in ("source", "model_version", "area", "line", "asset", "category", "severity", "title", "suggested_action"):
        assert snap[name] == record[name], name
    assert snap["confidence"] == 0.91 and snap["kind"] == "anomaly"
    assert snap["detail"] == "RMS 7.1 mm/s" and snap["evidence_url"] == "https://pdm.local/sp-104"
    assert snap["extra"] == {"plant_cell": "B4"}
    from datetime import datetime

    assert datetime.fromisoformat(snap["detected_at"]) == datetime.fromisoformat("2026-11-25T07:40:00+01:00")
    with services.ctx.read() as session:
        from tiermeet.store.models import Decision

        assert session.get(Decision, decision.id).ai_snapshot == snap


def test_escalation_carries_what_the_lower_tier_saw_and_did(services, make_signal, clock):
    signal = make_signal(severity="high")
    services.signals.acknowledge(signal.id, actor="anna")
    clock.at = NOW + timedelta(minutes=10)
    services.comments.add("signal", signal.id, actor="farah", body="noise is audible at the spindle")
    services.signals.decide(signal.id, actor="anna", kind="act", rationale="change bearing",
                            action=ActionSpec("Order bearing", "hana", NOW + timedelta(days=1)))
    clock.at = NOW + timedelta(hours=3)  # past the 2 h window of a high signal at tier 1
    escalation = services.signals.escalate(signal.id, actor="anna", reason="bearing not in stock")
    packet = escalation.context
    assert packet["from_tier"] == 1 and packet["status"] == "actioned"
    assert packet["acknowledged_by"] == "anna"
    assert packet["window_breached"] is True
    assert [(d["kind"], d["by"], d["rationale"]) for d in packet["decisions"]] == [("act", "anna", "change bearing")]
    assert [(a["title"], a["owner"], a["status"]) for a in packet["actions"]] == [("Order bearing", "hana", "open")]
    assert [(c["by"], c["body"]) for c in packet["comments"]] == [("farah", "noise is audible at the spindle")]
    # At tier 2 the next packet holds what tier 2 saw, not tier 1's story again.
    clock.at = NOW + timedelta(hours=4)
    services.comments.add("signal", signal.id, actor="julia", body="spare from plant 2 on the way")
    services.signals.decide(signal.id, actor="julia", kind="monitor", rationale="wait for the spare")
    second = services.signals.escalate(signal.id, actor="julia", reason="plant must approve the spend")
    assert second.context["from_tier"] == 2
    assert [d["by"] for d in second.context["decisions"]] == ["julia"]
    assert [c["body"] for c in second.context["comments"]] == ["spare from plant 2 on the way"]
    assert second.context["window_breached"] is False


# --------------------------------------------------------------------------------------
# The board query: order, keyset pages, index.
# --------------------------------------------------------------------------------------

SEVERITIES = ("critical", "high", "medium", "low")


@pytest.fixture
def board_signals(services, clock):
    """60 signals on CNC1 at tier 1 with mixed severities and times (many equal deadlines),
    five of them closed, one escalated; returns the active tier-1 CNC1 ones in board order."""
    rows = []
    for n in range(60):
        minutes = (n * 7) % 45  # several signals share a detection time
        rows.append(Row(n + 1, signal_record(n, severity=SEVERITIES[n % 4], detected_at=f"2026-11-25T08:{minutes:02d}:00+01:00")))
    rows.append(Row(99, signal_record(99, line="CNC2")))
    report = services.ingest.ingest(rows, origin="board")
    assert report.added == 61
    with services.ctx.read() as session:
        signals = list(session.scalars(select(Signal).where(Signal.line == "CNC1")))
    for s in signals[:3]:
        services.signals.decide(s.id, actor="anna", kind="dismiss", rationale="r", disposition="duplicate")
    for s in signals[3:5]:
        services.signals.decide(s.id, actor="anna", kind="shelve", rationale="r", shelve_until=NOW + timedelta(days=1))
    services.signals.escalate(signals[5].id, actor="anna", reason="r")
    services.signals.acknowledge(signals[6].id, actor="anna")
    services.signals.decide(signals[7].id, actor="anna", kind="monitor")
    with services.ctx.read() as session:
        active = list(session.scalars(select(Signal).where(Signal.line == "CNC1", Signal.tier == 1,
                                                           Signal.status.in_(("open", "acknowledged", "actioned")))))
    active.sort(key=lambda s: (s.deadline, s.severity_rank, s.id))
    assert len(active) == 54
    assert len({s.deadline for s in active}) < len(active)  # ties on deadline exist
    return active


def test_board_order_is_deadline_then_severity(services, board_signals):
    page = services.board.page(Scope(tier=1, line="CNC1"), limit=500)
    assert [s.id for s in page] == [s.id for s in board_signals]
    keys = [(s.deadline, s.severity_rank) for s in page]
    assert keys == sorted(keys)


@pytest.mark.parametrize("page_size", [1, 7, 54])
def test_keyset_pages_return_every_active_signal_once(services, board_signals, page_size):
    seen, after = [], None
    for _ in range(100):
        page = services.board.page(Scope(tier=1, line="CNC1"), after=after, limit=page_size)
        if not page:
            break
        seen.extend(page)
        after = Cursor.after(page[-1])
    assert [s.id for s in seen] == [s.id for s in board_signals]


@pytest.mark.parametrize("page_size", [1, 7, 500])
@pytest.mark.parametrize("merged", [True, False], ids=["areas merged", "too many areas to merge"])
def test_plant_board_is_every_area_in_board_order(services, db_path, monkeypatch, page_size, merged):
    from tiermeet.store import queries

    if not merged:
        monkeypatch.setattr(queries, "_MAX_AREAS", 1)
    found = []
    monkeypatch.setattr(queries, "plant_areas", lambda *a: found.append(plant_areas(*a)) or found[-1])
    places = [("machining", "CNC1"), ("machining", "GRIND"), ("assembly", "ASM1"), ("assembly", None)]
    rows = [Row(n + 1, signal_record(n, area=places[n % 4][0], line=places[n % 4][1], severity=SEVERITIES[n % 3],
                                     detected_at=f"2026-11-25T08:{(n * 7) % 30:02d}:00+01:00")) for n in range(40)]
    assert services.ingest.ingest(rows, origin="plant").added == 40
    with services.ctx.read() as session:
        signals = list(session.scalars(select(Signal)))
    services.signals.escalate(signals[0].id, actor="anna", reason="r")  # on the tier-2 board now
    services.signals.decide(signals[1].id, actor="anna", kind="dismiss", rationale="r", disposition="duplicate")
    expected = sorted((s for s in signals[2:]), key=lambda s: (s.deadline, s.severity_rank, s.id))

    def paged(scope: Scope) -> list:
        seen, after = [], None
        for _ in range(100):
            page = services.board.page(scope, after=after, limit=page_size)
            if not page:
                return seen
            seen.extend(page)
            after = Cursor.after(page[-1])
        raise AssertionError("the board never ended")

    seen = paged(Scope(tier=1))
    assert [s.id for s in seen] == [s.id for s in expected]
    assert {s.area for s in seen} == {"machining", "assembly"}
    # an area's board (its line and its signals on no line), and a line's, page the same way
    assert [s.id for s in paged(Scope(tier=1, area="assembly"))] == [s.id for s in expected if s.area == "assembly"]
    assert [s.id for s in paged(Scope(tier=1, line="CNC1"))] == [s.id for s in expected if s.line == "CNC1"]
    assert [s.id for s in services.board.page(Scope(tier=2))] == [signals[0].id]
    # read area by area and merged, in order, when it can be; else in one sorted statement
    assert found[0] == (["assembly", "machining"] if merged else None)
    plan = _plan(db_path, Scope(tier=1))
    assert ("MERGE (UNION ALL)" in plan and "TEMP B-TREE" not in plan) if merged else "TEMP B-TREE" in plan, plan


def test_board_filters(services, board_signals):
    everything = services.board.page(Scope(), limit=500)
    assert len(everything) == 54 + 1 + 1  # CNC1 tier 1, CNC2 and the escalated one
    tier2 = services.board.page(Scope(tier=2, area="machining"))
    assert len(tier2) == 1 and tier2[0].tier == 2
    assert services.board.page(Scope(tier=1, line="CNC2"))[0].external_id == "ext-99"
    dismissed = services.board.page(Scope(tier=1, line="CNC1"), Filters(statuses=("dismissed",)))
    assert len(dismissed) == 3
    critical_quality = services.board.page(Scope(tier=1, line="CNC1"), Filters(category="quality"))
    assert len(critical_quality) == 54
    assert services.board.page(Scope(tier=1, line="CNC1"), Filters(category="safety")) == []
    assert services.board.page(Scope(tier=1, line="CNC1"), Filters(source="vision")) == []
    assert services.board.scope_for(1, "CNC1") == Scope(tier=1, line="CNC1")
    assert services.board.scope_for(2, "machining") == Scope(tier=2, area="machining")
    assert services.board.scope_for(3, "plant") == Scope(tier=3)


def _plan(db_path, scope, filters=Filters(), **kw) -> str:
    conn = sqlite3.connect(db_path)
    sql, params = board_sql(scope, filters, areas=plant_areas(conn, scope, filters), **kw)
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    conn.close()
    return " | ".join(r[-1] for r in rows)


@pytest.mark.parametrize(("scope", "index"), [
    (Scope(tier=1, line="CNC1"), "ix_signal_board_line"),
    (Scope(tier=2, area="machining"), "ix_signal_board_area"),
    (Scope(tier=1), "ix_signal_board_area"),  # the plant's board: its areas' boards merged
])
def test_board_query_plan_uses_a_board_index(db_path, board_signals, scope, index):
    first = _plan(db_path, scope)
    assert f"USING INDEX {index}" in first, first
    assert "TEMP B-TREE" not in first, first  # the index gives the order too
    s = board_signals[10]
    later = _plan(db_path, scope, Filters(category="quality"), after=Cursor(s.deadline, s.severity_rank, s.id), limit=50)
    assert f"USING INDEX {index}" in later, later
    assert "TEMP B-TREE" not in later, later


# --------------------------------------------------------------------------------------
# People from the config.
# --------------------------------------------------------------------------------------


def _config_without(person_id: str, extra: str = ""):
    text = demo_config_text()
    block = re.search(r'\[\[people\]\]\nid = "%s"\n(?:[a-z]+ = .*\n)+' % person_id, text).group(0)
    return parse_config(text.replace(block, extra), "test.toml")


def test_people_are_found_by_id_or_badge(services):
    assert services.people.find("100231").id == "anna"
    assert services.people.find(" anna ").badge == "100231"
    assert len(services.people.all_active()) == 12
    with pytest.raises(DomainError, match="^no person with id or badge '424242'$"):
        services.people.find("424242")


def test_people_sync_deactivates_and_moves_badges(services, db_path, clock, make_signal):
    signal = make_signal()
    services.signals.acknowledge(signal.id, actor="farah")
    outbox_before = journal(db_path)["outbox"]
    # Farah leaves; her badge goes to a new colleague.
    newcomer = '[[people]]\nid = "mia"\nname = "Mia Braun"\nbadge = "100240"\nrole = "operator"\nscope = "CNC1"\n\n'
    config = _config_without("farah", newcomer)
    again = open_services(db_path, config, clock=clock, device_name="test-kiosk")
    with pytest.raises(DomainError, match="^no person with id or badge 'farah'$"):
        again.people.find("farah")
    assert again.people.find("100240").id == "mia"
    assert {p.id for p in again.people.all_active()} == {p.id for p in config.people}
    # Her past acknowledgement still names her.
    assert again.signals.get(signal.id).acknowledged_by == "farah"
    with pytest.raises(DomainError, match="^no person with id or badge 'farah'$"):
        again.comments.add("signal", signal.id, actor="farah", body="back")
    people = {r["id"]: r for r in table_rows(db_path, "person")}
    assert people["farah"]["active"] == 0
    audit = [r for r in journal(db_path)["audit"] if r["entity"] == "person"]
    assert {"farah", "mia"} <= {r["entity_id"] for r in audit}
    assert all(r["actor"] == "system:config" for r in audit)
    # Reference data is local: no sync mutation for it.
    assert journal(db_path)["outbox"] == outbox_before
    # Opening again with the same config changes nothing.
    assert again.people.sync_from_config() == 0
    # And she can come back.
    back = open_services(db_path, services.ctx.config, clock=clock, device_name="test-kiosk")
    assert back.people.find("100240").id == "farah"
    with pytest.raises(DomainError, match="^no person with id or badge 'mia'$"):
        back.people.find("mia")
