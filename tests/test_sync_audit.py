"""The audit log across replicas (sync-protocol §2.6): append-only, and the union of every
device's entries is the truth. Entries travel with the mutation written in the same
transaction, reach the plant's other devices in their pulls, are logged once however often
a push is retried, and config reference data stays on the device that loaded it.
"""

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text

from conftest import signal_record
from sync_helpers import (
    NOW, central_audit, client_for, device_audit, http, make_central, make_device, outbox_size, push_body,
)
from tiermeet.ingest.readers import Row
from tiermeet.services.requests import ActionSpec
from tiermeet.store.models import Signal

#: A record the demo policy lets its model act on alone.
AUTONOMOUS = {"source": "pdm-toolwear", "line": "CNC2", "severity": "low", "confidence": 0.99, "category": "cost"}


@pytest.fixture
def central(tmp_path):
    return make_central(f"sqlite:///{tmp_path / 'central.db'}")


def outbox(device) -> list[tuple[str, str]]:
    with device.ctx.read() as session:
        return [(name, str(uuid.UUID(mid))) for name, mid in session.execute(text("SELECT name, mutation_id FROM outbox ORDER BY seq"))]


def carriers(device) -> dict[str, str | None]:
    """Each audit entry's carrying mutation, by entry id."""
    with device.ctx.read() as session:
        return {str(uuid.UUID(i)): (str(uuid.UUID(m)) if m else None)
                for i, m in session.execute(text("SELECT id, mutation_id FROM audit_log"))}


def test_what_one_kiosk_did_shows_in_the_signal_history_on_another(central, tmp_path):
    k1, k2 = make_device(tmp_path, "k1"), make_device(tmp_path, "k2")
    k1.ingest.ingest([Row(1, signal_record(1))], origin="feed.jsonl")
    assert client_for(k1, central).run_round().ok
    assert client_for(k2, central).run_round().ok
    with k2.ctx.read() as session:
        signal_id = session.scalars(select(Signal)).one().id
    k1.signals.acknowledge(signal_id, actor="anna")
    k1.signals.decide(signal_id, actor="anna", kind="act", rationale="bearing noise",
                      action=ActionSpec("Check preload", "ben", NOW.replace(hour=18)))
    k2.comments.add("signal", signal_id, actor="ben", body="heard it too")
    for device in (k1, k2, k1):
        assert client_for(device, central).run_round().ok

    history = k2.views.story(signal_id).audit
    assert [(e.device, e.actor, e.op) for e in history] == [
        ("k1", "system:ingest", "ingest"), ("k1", "anna", "acknowledge"), ("k1", "anna", "decide:act")]
    ack = history[1]
    assert (ack.before["status"], ack.after["status"]) == ("open", "acknowledged")
    # every device holds every entry, each once, exactly as it was written
    assert device_audit(k1, travelling_only=True) == device_audit(k2, travelling_only=True)
    logged = [e["id"] for e in central_audit(central)]
    assert sorted(logged) == sorted(device_audit(k1, travelling_only=True)) and len(logged) == len(set(logged))


def test_a_push_retried_after_its_answer_was_lost_logs_its_entries_once(central, tmp_path):
    device = make_device(tmp_path, "k1")
    device.ingest.ingest([Row(i, signal_record(i)) for i in range(3)], origin="t")

    class AnswerLostOnce(httpx.BaseTransport):
        """The first push reaches the server and commits; its answer never arrives."""

        def __init__(self, inner):
            self.inner, self.lost = inner, False

        def handle_request(self, request):
            response = self.inner.handle_request(request)
            if request.url.path.endswith("/push") and not self.lost:
                self.lost = True
                raise httpx.ReadError("connection reset after the server answered")
            return response

    transport = AnswerLostOnce(central.transport())
    result = client_for(device, central, transport=transport).run_round()
    assert transport.lost and result.ok and result.duplicates == 1
    logged = [e["id"] for e in central_audit(central)]
    assert len(logged) == 1 and logged == list(device_audit(device, travelling_only=True))


def test_autonomous_decisions_ride_on_their_ingest_and_a_kill_switch_on_its_own_append(central, tmp_path):
    k1, k2 = make_device(tmp_path, "k1"), make_device(tmp_path, "k2")
    k1.ingest.ingest([Row(1, signal_record(1, **AUTONOMOUS)), Row(2, signal_record(2))], origin="t")
    ((name, ingest_id),) = outbox(k1)
    assert name == "signal.ingest"
    ops = {entry["op"]: carriers(k1)[entry_id] for entry_id, entry in device_audit(k1, travelling_only=True).items()}
    assert ops == {"decide:act": ingest_id, "ingest": ingest_id}

    k1.governance.suspend("pdm-toolwear", actor="julia", reason="insert calls drifting")
    (_, (name, append_id)) = outbox(k1)
    assert name == "audit.append"
    suspend = next(i for i, e in device_audit(k1).items() if e["op"] == "suspend")
    assert carriers(k1)[suspend] == append_id

    assert client_for(k1, central).run_round().ok and client_for(k2, central).run_round().ok
    assert outbox_size(k1) == 0
    seen = {e["op"]: (e["device"], e["actor"]) for e in device_audit(k2, travelling_only=True).values()}
    assert seen == {"ingest": ("k1", "system:ingest"), "decide:act": ("k1", "system:ingest"), "suspend": ("k1", "julia")}


def test_config_reference_data_stays_on_the_device_that_loaded_it(central, tmp_path):
    device = make_device(tmp_path, "k1")
    local = [e for e in device_audit(device).values() if e["op"] == "config"]
    assert len(local) == 12 and all(e["entity"] == "person" for e in local)
    assert outbox_size(device) == 0  # loading the config leaves nothing to push
    device.ingest.ingest([Row(1, signal_record(1))], origin="t")
    assert client_for(device, central).run_round().ok
    assert {e["op"] for e in central_audit(central)} == {"ingest"}
    assert carriers(device)[next(i for i, e in device_audit(device).items() if e["op"] == "config")] is None


def test_a_malformed_audit_entry_is_refused_naming_where_it_is(central):
    mutation = {"seq": 1, "mutation_id": str(uuid.uuid4()), "name": "audit.append", "entity": "audit",
                "entity_id": "x", "hlc": "0000000000000001", "actor": "anna", "created_at": NOW.isoformat(),
                "args": {"audit_ids": ["x"]}, "payload_sha256": "0" * 64,
                "audit": [{"id": "x", "at": NOW.isoformat(), "actor": "anna", "device": "k1", "entity": "model",
                           "entity_id": "pdm", "op": "suspend", "before": None, "after": None, "hlc": "not a clock"}]}
    with http(central) as client:
        answer = client.post("/v1/sync/push", json=push_body("k1", [mutation]))
    assert answer.status_code == 422
    assert "mutations.0.audit.0.hlc" in answer.text
    assert central_audit(central) == []


def test_signals_posted_by_an_ai_system_reach_the_kiosks_with_their_audit_entry(central, tmp_path):
    with http(central) as client:
        posted = client.post("/v1/signals", json={"signals": [signal_record(i) for i in range(3)] + [signal_record(0)]})
    assert posted.status_code == 200 and posted.json()["added"] == 3
    ids = [r["signal_id"] for r in posted.json()["results"][:3]]
    kiosk = make_device(tmp_path, "k1")
    assert client_for(kiosk, central).run_round().ok
    (entry,) = [e for e in device_audit(kiosk, travelling_only=True).values()]
    assert (entry["actor"], entry["device"], entry["op"], entry["entity_id"]) == ("system:api", "server", "ingest", ids[0])
    assert entry["after"] == {"origin": "POST /v1/signals", "count": 3, "last_id": ids[2]}


def test_a_refused_change_shows_in_every_history_with_the_servers_refusal(central, tmp_path):
    a, b = make_device(tmp_path, "a"), make_device(tmp_path, "b")
    action = a.actions.create(actor="anna", title="Fix", owner="ben", due_at=NOW + timedelta(days=1))
    a.actions.done(action.id, actor="ben")
    assert client_for(a, central).run_round().ok and client_for(b, central).run_round().ok
    a.actions.reopen(action.id, actor="anna")
    b.actions.reopen(action.id, actor="chen")  # from the same epoch: stale once a's reopen lands
    assert client_for(a, central).run_round().ok
    assert client_for(b, central).run_round().rejected == 1
    assert client_for(a, central).run_round().ok
    for device in (a, b):
        history = sorted((e for e in device_audit(device, travelling_only=True).values()
                          if e["entity_id"] == str(action.id)), key=lambda e: e["hlc"])
        made = [(e["device"], e["actor"], e["op"]) for e in history]
        assert made[-1] == ("server", "system:server", "refuse:stale_epoch")
        assert ("b", "chen", "reopen") in made[:-1] and ("a", "anna", "reopen") in made[:-1]
        assert history[-1]["after"]["mutation"] == "action.reopen" and "epoch" in history[-1]["after"]["detail"]
    assert device_audit(a, travelling_only=True) == device_audit(b, travelling_only=True)
