"""The governance engine: the sweep of breached windows, the kill switch, autonomous
decisions and their review, role refusals and shadowed rules (design.md §3)."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import NOW, cli_env, signal_record
from tiermeet.domain.errors import DomainError
from tiermeet.ingest.readers import Row
from tiermeet.services.bundle import open_services
from tiermeet.services.governance import BREACH_REASON, SWEEP_ACTOR
from tiermeet.settings import demo_config_text, parse_config
from tiermeet.store.models import AuditEntry, Decision, Escalation, OutboxMutation, Signal
from tiermeet.store.queries import Scope

WRITER = Path(__file__).with_name("writer_child.py")
ROOT = Path(__file__).resolve().parent.parent


def dump(db: Path) -> dict[str, list]:
    """Every row of every table, in rowid order: the whole database as data."""
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}
    finally:
        conn.close()


def get(services, signal_id) -> Signal:
    with services.ctx.read() as session:
        return session.get(Signal, signal_id)


def escalations_of(services, signal_id) -> list[Escalation]:
    with services.ctx.read() as session:
        return list(session.scalars(select(Escalation).where(Escalation.signal_id == signal_id).order_by(Escalation.raised_at)))


# ----- the sweep -----
@pytest.fixture
def swept_board(services, clock, make_signal):
    """A board with one signal in each situation the sweep tells apart, and its first sweep
    five hours on."""
    s = {
        "open": make_signal(1),  # high at tier 1: 2 h window from 06:40 UTC
        "acknowledged": make_signal(2),
        "actioned": make_signal(3),
        "top": make_signal(4, severity="critical"),
        "shelved": make_signal(5),
        "autonomous": make_signal(6, source="pdm-toolwear", line="CNC2", severity="low", confidence=0.99, category="cost"),
        "fresh": make_signal(7, severity="low"),  # 1 d window: not breached yet
    }
    services.signals.acknowledge(s["acknowledged"].id, actor="anna", note="looking")
    services.signals.decide(s["actioned"].id, actor="anna", kind="act", rationale="swapping the bearing")
    services.comments.add("signal", s["open"].id, actor="farah", body="vibration audible at the spindle")
    services.signals.escalate(s["top"].id, actor="julia", reason="needs the area")
    services.signals.escalate(s["top"].id, actor="lena", reason="needs the plant")
    services.signals.decide(s["shelved"].id, actor="anna", kind="shelve", rationale="planned stop at noon",
                            shelve_until=NOW + timedelta(hours=1))
    clock.at = NOW + timedelta(hours=5)
    result = services.governance.sweep()
    return s, result


def test_sweep_escalates_breached_undecided_signals_one_tier(services, clock, swept_board):
    s, result = swept_board
    at = NOW + timedelta(hours=5)
    assert set(result.escalated) == {s["open"].id, s["acknowledged"].id}
    assert result.flagged == [s["top"].id]
    assert result.unshelved == [s["shelved"].id]
    assert result.summary() == "2 escalated, 1 flagged at the top tier, 1 back from shelving"
    for key in ("open", "acknowledged"):
        signal = get(services, s[key].id)
        assert (signal.tier, signal.status, signal.tier_entered_at) == (2, "open", at)
        assert signal.acknowledged_at is None and signal.acknowledged_by is None
        assert signal.deadline == at + timedelta(hours=4)  # high at tier 2
        assert signal.first_deadline == s[key].first_deadline  # the report's unit does not move
        assert signal.first_decided_at is None  # an escalation by the sweep is not a decision
        (escalation,) = escalations_of(services, s[key].id)
        assert (escalation.from_tier, escalation.to_tier, escalation.automatic) == (1, 2, True)
        assert escalation.raised_by == SWEEP_ACTOR and escalation.raised_at == at
        assert escalation.reason == BREACH_REASON.format(tier=1)
        packet = escalation.context
        assert packet["from_tier"] == 1 and packet["window_breached"] is True
        assert packet["deadline"].startswith(s[key].deadline.isoformat()[:19])
    assert escalations_of(services, s["acknowledged"].id)[0].context["acknowledged_by"] == "anna"
    assert escalations_of(services, s["acknowledged"].id)[0].context["status"] == "acknowledged"
    comments = escalations_of(services, s["open"].id)[0].context["comments"]
    assert [c["body"] for c in comments] == ["vibration audible at the spindle"]


def test_sweep_flags_at_the_top_tier_and_leaves_decided_signals_alone(services, clock, swept_board):
    s, _result = swept_board
    top = get(services, s["top"].id)
    assert (top.tier, top.flagged_at, top.status) == (3, NOW + timedelta(hours=5), "open")
    assert len(escalations_of(services, s["top"].id)) == 2  # the two people's, none by the sweep
    for key, status in (("actioned", "actioned"), ("autonomous", "actioned"), ("fresh", "open")):
        signal = get(services, s[key].id)
        assert (signal.tier, signal.status, signal.flagged_at) == (1, status, None), key
        assert signal.updated_at < NOW + timedelta(hours=5), key
        assert escalations_of(services, s[key].id) == []


def test_sweep_brings_back_expired_shelving(services, clock, swept_board):
    s, _result = swept_board
    signal = get(services, s["shelved"].id)
    at = NOW + timedelta(hours=5)
    assert (signal.status, signal.tier, signal.tier_entered_at, signal.deadline) == ("open", 1, at, at + timedelta(hours=2))


def test_sweep_records_what_it_did_for_the_audit_and_for_sync(services, clock, swept_board):
    s, _result = swept_board
    with services.ctx.read() as session:
        audits = list(session.scalars(select(AuditEntry).where(AuditEntry.actor == SWEEP_ACTOR)))
        mutations = list(session.scalars(select(OutboxMutation).where(OutboxMutation.actor == SWEEP_ACTOR)))
    assert sorted((a.op, a.entity_id) for a in audits) == sorted(
        [("escalate", str(s["open"].id)), ("escalate", str(s["acknowledged"].id)), ("flag", str(s["top"].id)),
         ("unshelve", str(s["shelved"].id))])
    # Escalations and the end of shelving travel to the server; the top-tier flag stays local.
    assert sorted((m.name, m.entity_id) for m in mutations) == sorted(
        [("signal.escalate", str(s["open"].id)), ("signal.escalate", str(s["acknowledged"].id)),
         ("signal.reopen", str(s["shelved"].id))])


def test_sweep_is_idempotent(services, clock, swept_board, db_path):
    """A second sweep at the same moment finds nothing: not one row of any table changes."""
    before = dump(db_path)
    again = services.governance.sweep()
    assert (again.escalated, again.flagged, again.unshelved) == ([], [], [])
    assert dump(db_path) == before
    # A day later the escalated signals breach tier 2 too; the flagged one is not flagged twice.
    s, _ = swept_board
    clock.at = NOW + timedelta(days=1, hours=5)
    later = services.governance.sweep()
    assert set(later.escalated) == {s["open"].id, s["acknowledged"].id, s["shelved"].id, s["fresh"].id}
    assert later.flagged == []
    assert get(services, s["top"].id).flagged_at == NOW + timedelta(hours=5)
    before = dump(db_path)
    assert services.governance.sweep().summary() == "0 escalated, 0 flagged at the top tier, 0 back from shelving"
    assert dump(db_path) == before


def test_sweep_works_through_many_batches(services, clock):
    """More breached signals than one batch: all are escalated, once each."""
    from tiermeet.services import governance

    count = governance.BATCH * 2 + 7
    rows = [Row(i + 1, signal_record(i, detected_at="2026-11-24T06:00:00+01:00")) for i in range(count)]
    assert services.ingest.ingest(rows, origin="t").added == count
    result = services.governance.sweep()
    assert len(result.escalated) == count
    assert len(set(result.escalated)) == count
    with services.ctx.read() as session:
        assert {t for (t,) in session.execute(select(Signal.tier))} == {2}
        assert len(list(session.scalars(select(Escalation.id)))) == count


@pytest.mark.parametrize("merged", [True, False], ids=["boards merged", "too many boards to merge"])
def test_sweep_reads_breached_signals_board_by_board_earliest_first(services, clock, monkeypatch, merged):
    from tiermeet.services import governance

    monkeypatch.setattr(governance, "BATCH", 7)
    if not merged:
        monkeypatch.setattr(governance, "MAX_BOARDS", 0)
    places = [("machining", "CNC1"), ("assembly", "ASM1"), ("assembly", None), ("machining", "GRIND")]
    rows = [Row(n + 1, signal_record(n, area=places[n % 4][0], line=places[n % 4][1], severity=("high", "low")[n % 2],
                                     detected_at=f"2026-11-24T{6 + n % 9:02d}:{n:02d}:00+01:00")) for n in range(30)]
    assert services.ingest.ingest(rows, origin="t").added == 30
    with services.ctx.read() as session:
        signals = {s.id: s for s in session.scalars(select(Signal))}
        statement = str(governance._breached(session, clock.now()))
    assert ("UNION ALL" in statement) is merged
    breached = sorted(i for i, s in signals.items() if s.deadline < clock.now())
    assert len(breached) > 14 and {signals[i].area for i in breached} == {"machining", "assembly"}
    result = services.governance.sweep()
    # every breached one escalated once, batch by batch in the order of their windows
    assert sorted(result.escalated) == breached
    deadlines = [signals[i].deadline for i in result.escalated]
    assert [sorted(deadlines[i:i + 7]) for i in range(0, len(deadlines), 7)] == [
        sorted(deadlines)[i:i + 7] for i in range(0, len(deadlines), 7)]


def test_a_reopened_signal_breaching_again_at_the_top_tier_is_flagged_again(services, clock, make_signal):
    signal = make_signal(1, severity="critical")
    services.signals.escalate(signal.id, actor="julia", reason="area")
    services.signals.escalate(signal.id, actor="lena", reason="plant")
    clock.at = NOW + timedelta(hours=5)
    assert services.governance.sweep().flagged == [signal.id]
    services.signals.decide(signal.id, actor="lena", kind="dismiss", rationale="sensor glitch", disposition="not_actionable")
    services.signals.reopen(signal.id, actor="lena", reason="it came back")
    clock.at = NOW + timedelta(hours=10)  # the new 4 h window at tier 3 has closed too
    assert services.governance.sweep().flagged == [signal.id]


def test_sweep_changes_reach_the_server_as_the_device_holds_them(tmp_path):
    """Each escalation and each end of shelving is its own mutation, in sequence, that the
    server applies: afterwards the server's records equal the device's, and every audit
    entry of the sweep pairs with its signal's new HLC."""
    from tests.sync_helpers import central_rows, client_for, device_rows, diff, make_central, make_device

    central = make_central(f"sqlite:///{tmp_path / 'central.db'}")
    device = make_device(tmp_path, "k1", at=NOW)
    rows = [Row(i + 1, signal_record(i, detected_at="2026-11-25T06:00:00+01:00")) for i in range(6)]
    assert device.ingest.ingest(rows, origin="t").added == 6
    with device.ctx.read() as session:
        signals = list(session.scalars(select(Signal).order_by(Signal.external_id)))
    device.signals.acknowledge(signals[0].id, actor="anna", note="looking")
    device.signals.decide(signals[1].id, actor="anna", kind="shelve", rationale="planned stop", shelve_until=NOW + timedelta(hours=1))
    assert client_for(device, central).run_round().ok
    device.ctx.clock.at = NOW + timedelta(hours=5)
    result = device.governance.sweep()
    assert (len(result.escalated), result.unshelved) == (5, [signals[1].id])
    with device.ctx.read() as session:
        audits = {a.entity_id: a for a in session.scalars(select(AuditEntry).where(AuditEntry.actor == SWEEP_ACTOR))}
        moved = list(session.scalars(select(Signal).where(Signal.id.in_(result.escalated + result.unshelved))))
        mutations = list(session.scalars(select(OutboxMutation).where(OutboxMutation.actor == SWEEP_ACTOR)
                                         .order_by(OutboxMutation.seq)))
    assert {str(s.id): s.updated_hlc for s in moved} == {key: a.hlc for key, a in audits.items()}
    assert [m.hlc for m in mutations] == sorted(a.hlc for a in audits.values())
    assert [m.seq for m in mutations] == list(range(mutations[0].seq, mutations[0].seq + 6))
    round_ = client_for(device, central).run_round()
    assert round_.ok and not round_.rejected, round_
    assert diff(device_rows(device), central_rows(central)) == []
    acknowledged = audits[str(signals[0].id)]
    assert (acknowledged.before["status"], acknowledged.before["acknowledged_by"], acknowledged.before["tier"]) == ("acknowledged", "anna", 1)
    assert (acknowledged.after["status"], acknowledged.after["acknowledged_by"], acknowledged.after["tier"]) == ("open", None, 2)
    unshelved = audits[str(signals[1].id)]
    assert (unshelved.op, unshelved.before["status_epoch"] + 1, unshelved.after["status"]) == ("unshelve", unshelved.after["status_epoch"], "open")


def test_sweep_command(run_cli, services, make_signal, db_path):
    make_signal(1)
    services.ctx.engine.dispose()
    result = run_cli("--db", db_path, "sweep", "--at", "2026-11-25T14:00:00")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 escalated, 0 flagged at the top tier, 0 back from shelving"
    again = run_cli("--db", db_path, "sweep", "--at", "2026-11-25T14:00:00")
    assert again.stdout.strip() == "0 escalated, 0 flagged at the top tier, 0 back from shelving"
    bad = run_cli("--db", db_path, "sweep", "--at", "teatime")
    assert bad.returncode == 2 and "--at: 'teatime' is not an ISO 8601 time" in bad.stderr


@pytest.mark.timeout(120)
def test_sweep_in_a_process_while_another_process_writes(services, db_path):
    """`tiermeet sweep` run again and again in one process while a kiosk process ingests,
    acknowledges and comments in another: both succeed, nothing is lost or locked out."""
    rows = [Row(i + 1, signal_record(i, detected_at="2026-11-24T06:00:00+01:00")) for i in range(1500)]
    assert services.ingest.ingest(rows, origin="t").added == 1500
    services.ctx.engine.dispose()
    env = cli_env()
    env.pop("TIERMEET_DB", None)
    seconds = 4
    start_at = time.time() + 2.0
    writer = subprocess.Popen([sys.executable, str(WRITER), "loop", str(db_path), "kiosk-w", str(seconds), str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    sweeps = []
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + seconds
    hour = 0
    while time.time() < deadline or not sweeps:
        hour += 1  # each sweep a little later, so every run has breached windows to escalate
        sweeps.append(subprocess.run([sys.executable, "-m", "tiermeet", "--db", str(db_path), "sweep",
                                      "--at", f"2026-11-{26 + hour // 24:02d}T{hour % 24:02d}:30:00"],
                                     capture_output=True, text=True, env=env, timeout=60))
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert out.splitlines()[-1].startswith("done ")
    writes = int(out.splitlines()[-1].split()[1])
    assert writes >= 9, f"the writer managed only {writes} writes"
    for result in sweeps:
        assert result.returncode == 0, result.stderr
        assert "locked" not in result.stderr
    assert sum(int(r.stdout.split()[0]) for r in sweeps) >= 1500  # every breached signal went up at least once
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        seqs = [s for (s,) in conn.execute("SELECT seq FROM outbox ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))
        comments = {c for (c,) in conn.execute("SELECT id FROM comment")}
        acked = {row[0] for row in conn.execute("SELECT entity_id FROM audit_log WHERE op = 'acknowledge'")}
    finally:
        conn.close()
    for line in out.splitlines()[:-1]:
        kind, key = line.split()
        if kind == "comment":
            assert key.replace("-", "") in comments
        elif kind == "ack":
            assert key in acked


# ----- the kill switch -----
def test_suspend_and_resume_by_role(services, clock, make_signal):
    with pytest.raises(DomainError) as refused:
        services.governance.suspend("pdm-toolwear", actor="anna", reason="odd calls")
    assert "rule governance.rights.suspend_model" in str(refused.value) and "anna (shift lead)" in str(refused.value)
    row = services.governance.suspend("pdm-toolwear", actor="100260", reason="insert calls drifting")  # Julia's badge
    assert (row.source, row.suspended_by, row.suspended_at, row.reason) == ("pdm-toolwear", "julia", NOW, "insert calls drifting")
    assert set(services.governance.suspended_sources()) == {"pdm-toolwear"}
    with pytest.raises(DomainError, match="already suspended"):
        services.governance.suspend("pdm-toolwear", actor="lena", reason="again")

    suspended = make_signal(1, source="pdm-toolwear", line="CNC2", severity="low", confidence=0.99, category="cost")
    assert (suspended.autonomy, suspended.status) == ("sign_off", "open")
    assert suspended.policy_rule == "confident tool-wear calls (autonomy suspended)"
    with services.ctx.read() as session:
        assert list(session.scalars(select(Decision).where(Decision.signal_id == suspended.id))) == []

    with pytest.raises(DomainError, match="rule governance.rights.suspend_model"):
        services.governance.resume("pdm-toolwear", actor="farah", reason="fine")
    clock.at = NOW + timedelta(hours=1)
    resumed = services.governance.resume("pdm-toolwear", actor="lena", reason="retrained")
    assert (resumed.resumed_by, resumed.resumed_at, resumed.resume_reason) == ("lena", NOW + timedelta(hours=1), "retrained")
    assert services.governance.suspended_sources() == {}
    again = make_signal(2, source="pdm-toolwear", line="CNC2", severity="low", confidence=0.99, category="cost")
    assert (again.autonomy, again.status) == ("autonomous", "actioned")
    with pytest.raises(DomainError, match="not suspended"):
        services.governance.resume("pdm-toolwear", actor="lena", reason="twice")
    with services.ctx.read() as session:
        ops = [a.op for a in session.scalars(select(AuditEntry).where(AuditEntry.entity == "model").order_by(AuditEntry.hlc))]
    assert ops == ["suspend", "resume"]


def test_model_commands(run_cli, services, db_path):
    services.ctx.engine.dispose()
    refused = run_cli("--db", db_path, "model", "suspend", "vision-qc", "--by", "anna", "--reason", "glare")
    assert refused.returncode == 1 and "rule governance.rights.suspend_model" in refused.stderr
    ok = run_cli("--db", db_path, "model", "suspend", "vision-qc", "--by", "julia", "--reason", "glare")
    assert ok.returncode == 0 and "vision-qc: autonomy suspended" in ok.stdout
    back = run_cli("--db", db_path, "model", "resume", "vision-qc", "--by", "julia", "--reason", "lens cleaned")
    assert back.returncode == 0 and "vision-qc: autonomy resumed" in back.stdout


# ----- autonomy in practice -----
def test_autonomous_ingest_decides_alone_and_waits_for_review(services, clock, make_signal):
    signal = make_signal(1, source="pdm-toolwear", line="CNC2", severity="medium", confidence=0.97, category="cost",
                         suggested_action="Swap the insert at the next tool change")
    assert (signal.autonomy, signal.status, signal.policy_rule) == ("autonomous", "actioned", "confident tool-wear calls")
    with services.ctx.read() as session:
        (decision,) = session.scalars(select(Decision).where(Decision.signal_id == signal.id))
    assert (decision.decided_by, decision.kind, decision.tier) == ("ai:pdm-toolwear", "act", 1)
    assert "Swap the insert at the next tool change" in decision.rationale
    assert decision.policy_version == services.ctx.config.governance.version
    assert signal.first_decided_at is None  # a model's decision is not a person's
    with services.ctx.read() as session:  # in the signal's own history, by the model
        history = session.execute(select(AuditEntry.op, AuditEntry.after)
                                  .where(AuditEntry.entity == "signal", AuditEntry.entity_id == str(signal.id))).all()
    assert ("decide:act", {"decision_id": str(decision.id), "by": "ai:pdm-toolwear"}) in [tuple(h) for h in history]

    pending = services.views.autonomous_to_review(1, Scope(tier=1, line="CNC2"))
    assert [(d.id, s.id) for d, s in pending] == [(decision.id, signal.id)]
    assert services.views.autonomous_to_review(1, Scope(tier=1, line="CNC1")) == []

    with pytest.raises(DomainError, match="reason for overturning"):
        services.governance.review(decision.id, actor="anna", outcome="overturned")
    clock.at = NOW + timedelta(minutes=10)
    services.governance.review(decision.id, actor="anna", outcome="overturned", note="insert has 200 parts left")
    reopened = get(services, signal.id)
    assert (reopened.status, reopened.tier_entered_at) == ("open", NOW + timedelta(minutes=10))
    assert reopened.deadline == datetime(2026, 11, 25, 13, 0, tzinfo=timezone.utc)  # medium: the early shift ends 14:00
    assert services.views.autonomous_to_review(1, Scope()) == []
    with pytest.raises(DomainError, match="already been reviewed"):
        services.governance.review(decision.id, actor="julia", outcome="confirmed")


def test_an_autonomous_signal_ingested_again_is_decided_once(services, db_path):
    toolwear = dict(source="pdm-toolwear", line="CNC2", severity="medium", confidence=0.97, category="cost")
    first = services.ingest.ingest([Row(1, signal_record(1, **toolwear)), Row(2, signal_record(2))], origin="a")
    again = services.ingest.ingest([Row(1, signal_record(3, **toolwear)), Row(2, signal_record(1, **toolwear)),
                                    Row(3, signal_record(2))], origin="b")
    assert (first.summary(), again.summary()) == ("2 added, 0 duplicates, 0 rejected", "1 added, 2 duplicates, 0 rejected")
    with services.ctx.read() as session:
        decided = session.execute(select(Signal.external_id, Decision.decided_by).join(Decision, Decision.signal_id == Signal.id)
                                  .order_by(Signal.external_id)).all()
    assert [tuple(d) for d in decided] == [("ext-1", "ai:pdm-toolwear"), ("ext-3", "ai:pdm-toolwear")]
    ingests = [json.loads(args) for (args,) in sqlite3.connect(db_path).execute(
        "SELECT args FROM outbox WHERE name = 'signal.ingest' ORDER BY seq")]
    assert [(len(a["signal_ids"]), len(a["autonomous_decisions"])) for a in ingests] == [(2, 1), (1, 1)]


def test_a_persons_decision_is_not_reviewed(services, make_signal):
    signal = make_signal(1)
    decision = services.signals.decide(signal.id, actor="anna", kind="act", rationale="on it")
    with pytest.raises(DomainError, match="made by a person"):
        services.governance.review(decision.id, actor="julia", outcome="confirmed")


def test_escalate_rules_place_signals_higher_at_once(services, make_signal):
    signal = make_signal(1, category="safety", severity="critical")
    assert (signal.tier, signal.autonomy, signal.policy_rule) == (2, "escalate", "safety goes to the area")
    assert signal.deadline - signal.tier_entered_at == timedelta(minutes=15)  # the rule's own window at tier 2


# ----- role refusals -----
def test_reopen_needs_a_boss(services, make_signal):
    signal = make_signal(1)
    services.signals.decide(signal.id, actor="anna", kind="dismiss", rationale="duplicate of S-1", disposition="duplicate")
    with pytest.raises(DomainError) as refused:
        services.signals.reopen(signal.id, actor="anna", reason="it is back")
    assert str(refused.value) == ("anna (shift lead) may not reopen — rule governance.rights.reopen allows: "
                                  "supervisor, manager, admin")
    assert get(services, signal.id).status == "dismissed"
    services.signals.reopen(signal.id, actor="julia", reason="it is back")
    assert get(services, signal.id).status == "open"


def test_shelving_is_for_leads_and_has_a_limit(services, make_signal):
    signal = make_signal(1)
    with pytest.raises(DomainError) as refused:
        services.signals.decide(signal.id, actor="farah", kind="shelve", rationale="later", shelve_until=NOW + timedelta(hours=2))
    assert "farah (operator) may not shelve — rule governance.rights.shelve allows: shift lead" in str(refused.value)
    with pytest.raises(DomainError) as too_long:
        services.signals.decide(signal.id, actor="anna", kind="shelve", rationale="later", shelve_until=NOW + timedelta(days=8))
    assert "shelving is limited to 7d (rule governance.rights.max_shelve)" in str(too_long.value)
    with pytest.raises(DomainError, match="needs an end time in the future"):
        services.signals.decide(signal.id, actor="anna", kind="shelve", rationale="later", shelve_until=NOW - timedelta(hours=1))
    assert get(services, signal.id).status == "open"
    services.signals.decide(signal.id, actor="anna", kind="shelve", rationale="later", shelve_until=NOW + timedelta(days=7))
    assert get(services, signal.id).status == "shelved"


def test_rights_limited_to_tiers_name_the_rule(tmp_path, clock):
    text = demo_config_text() + '\n[governance.rights]\nclose = { roles = ["supervisor", "manager"], tiers = [2, 3] }\nmax_shelve = "1d"\n'
    config = parse_config(text, "plant.toml")
    services = open_services(tmp_path / "t.db", config, clock=clock)
    services.ingest.ingest([Row(1, signal_record(1))], origin="t")
    with services.ctx.read() as session:
        signal_id = session.scalars(select(Signal.id)).one()
    with pytest.raises(DomainError) as refused:
        services.signals.decide(signal_id, actor="julia", kind="dismiss", rationale="no", disposition="false_positive")
    assert str(refused.value) == "julia may not close at tier 1 — rule governance.rights.close allows tiers 2, 3"
    with pytest.raises(DomainError, match=r"rule governance.rights.close allows: supervisor, manager"):
        services.signals.decide(signal_id, actor="anna", kind="dismiss", rationale="no", disposition="false_positive")
    with pytest.raises(DomainError, match=r"limited to 1d \(rule governance.rights.max_shelve\)"):
        services.signals.decide(signal_id, actor="anna", kind="shelve", rationale="later", shelve_until=NOW + timedelta(days=2))
    services.signals.escalate(signal_id, actor="anna", reason="needs the area")
    services.signals.decide(signal_id, actor="julia", kind="dismiss", rationale="no", disposition="false_positive")


# ----- the policy itself -----
SHADOWED = """
[[governance.rules]]
name = "all safety to the area"
category = ["safety"]
autonomy = "escalate"
start_tier = 2

[[governance.rules]]
name = "critical safety to the plant"
category = ["safety"]
severity = ["critical"]
autonomy = "escalate"
start_tier = 3
"""


def test_config_check_warns_about_a_rule_that_can_never_match(run_cli, tmp_path):
    text = demo_config_text()
    start = text.index("[[governance.rules]]")
    end = text.index("[governance.default]")
    path = tmp_path / "plant.toml"
    path.write_text(text[:start] + SHADOWED.lstrip() + "\n" + text[end:], encoding="utf-8")
    result = run_cli("--config", path, "config", "check")
    assert result.returncode == 0, result.stderr
    assert (f"{path}: warning: governance.rules[1] ('critical safety to the plant') can never match: "
            f"governance.rules[0] ('all safety to the area') comes first and covers every signal it matches") in result.stdout
    assert "OK" in result.stdout.splitlines()[-1]
    shown = run_cli("--config", path, "policy", "show")
    assert "warning: governance.rules[1] ('critical safety to the plant') can never match" in shown.stdout
    clean = run_cli("config", "check")
    assert "warning" not in clean.stdout


def test_every_decision_records_the_policy_version(services, make_signal):
    signal = make_signal(1)
    decision = services.signals.decide(signal.id, actor="anna", kind="monitor", rationale="watch it")
    assert decision.policy_version == signal.policy_version == services.ctx.config.governance.version


# ----- deployment files -----
def test_systemd_timer_runs_the_sweep_every_minute():
    service = (ROOT / "deploy" / "systemd" / "tiermeet-sweep.service").read_text(encoding="utf-8")
    timer = (ROOT / "deploy" / "systemd" / "tiermeet-sweep.timer").read_text(encoding="utf-8")
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert exec_start.split()[-1] == "sweep" and "--db" in exec_start and "--config" in exec_start
    assert "Type=oneshot" in service
    assert "OnCalendar=*-*-* *:*:00" in timer and "Unit=tiermeet-sweep.service" in timer
    assert "WantedBy=timers.target" in timer
    assert os.path.exists(ROOT / "deploy" / "README.md")
