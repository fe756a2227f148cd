"""The central API in process, on SQLite and (when provided) PostgreSQL: tokens, plant
isolation, push semantics (exactly once, seq_reused, gaps, rejections that advance the
seq, one transaction per request, 409), pull (pages, scopes, 410), signals in, limits,
and the OpenAPI description (fuzzed with schemathesis: no 5xx).
"""

import copy
import json
import threading
import uuid
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from conftest import signal_record
from sync_helpers import (
    NOW, add_plant, central_rows, client_for, device_rows, diff, http, make_central, make_device,
    other_plant_config, push_body,
)
from tiermeet.domain import hlc
from tiermeet.ingest.readers import Row
from tiermeet.server.apply import Hooks
from tiermeet.server.db import new_epoch
from tiermeet.server.tokens import MAX_LIVE, TokenError, create_token, list_tokens, revoke_token, token_hash
from tiermeet.services.requests import ActionSpec
from tiermeet.store.models import Signal
from tiermeet.store.models_sync import ApiToken, ProcessedMutation, SyncEntity
from tiermeet.sync import local
from tiermeet.sync.protocol import MAX_PUSH_MUTATIONS


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'central.db'}"
    from sync_helpers import pg_url_or_skip

    return pg_url_or_skip(f"tm_api_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def central(db_url):
    return make_central(db_url)


def signal_on(device, n=1, **overrides):
    device.ingest.ingest([Row(1, signal_record(n, **overrides))], origin="t")
    with device.ctx.read() as session:
        return session.scalars(select(Signal).where(Signal.external_id == overrides.get("external_id", f"ext-{n}"))).one()


# --------------------------------------------------------------------------------------
# Health, OpenAPI, tokens
# --------------------------------------------------------------------------------------


def test_health_needs_no_token_and_the_openapi_describes_every_route(central):
    with http(central, "") as client:
        health = client.get("/v1/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"/v1/health", "/v1/sync/push", "/v1/sync/pull", "/v1/signals", "/v1/sync/status"} <= set(paths)
    assert set(paths["/v1/sync/push"]["post"]["responses"]) >= {"200", "401", "403", "409", "413", "422", "503"}
    assert "410" in paths["/v1/sync/pull"]["get"]["responses"]
    assert schema["components"]["schemas"]["PushRequest"]["properties"]["mutations"]["maxItems"] == MAX_PUSH_MUTATIONS == 1000
    assert schema["components"]["schemas"]["SignalsRequest"]["properties"]["signals"]["maxItems"] == 1000


def test_tokens_are_stored_hashed_two_live_at_most_and_revocation_is_immediate(central):
    second = create_token(central.engine, "riverside", label="rotation")
    with pytest.raises(TokenError, match="live tokens"):
        create_token(central.engine, "riverside")
    with central.engine.connect() as conn:
        stored = conn.execute(select(ApiToken.sha256)).scalars().all()
        dump = " ".join(str(v) for row in conn.execute(select(ApiToken)) for v in row)
    assert token_hash(central.token) in stored and token_hash(second) in stored
    assert central.token not in dump and second not in dump
    for token in (central.token, second):
        with http(central, token) as client:
            assert client.get("/v1/sync/status").status_code == 200
    first_id = next(t.id for t in list_tokens(central.engine, "riverside") if central.token.startswith(t.hint))
    assert revoke_token(central.engine, first_id) == "riverside"
    with http(central) as client:
        refused = client.get("/v1/sync/status")
    assert refused.status_code == 401 and refused.json()["code"] == "bad_token"
    with http(central, second) as client:
        assert client.get("/v1/sync/status").status_code == 200
    assert len([t for t in list_tokens(central.engine) if t.revoked_at is None]) == MAX_LIVE - 1


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer tmp_riverside_forged"])
def test_requests_without_a_valid_token_are_refused(central, header):
    headers = {"Authorization": header} if header else {}
    with http(central, "") as client:
        for method, path in (("GET", "/v1/sync/status"), ("GET", "/v1/sync/pull"), ("POST", "/v1/sync/push"),
                             ("POST", "/v1/signals")):
            response = client.request(method, path, headers={**headers, "X-Client-Id": "x"}, json={})
            assert response.status_code == 401, (method, path, response.text)


# --------------------------------------------------------------------------------------
# Isolation between plants
# --------------------------------------------------------------------------------------


def test_a_plant_token_sees_and_touches_nothing_of_another_plant(central, tmp_path):
    kiosk = make_device(tmp_path, "a1")
    signal = signal_on(kiosk)
    action = kiosk.actions.create(actor="anna", title="Fix", owner="ben", due_at=NOW + timedelta(days=1), signal=signal.id)
    assert client_for(kiosk, central).run_round().ok
    client_a = local.read_state(kiosk.ctx.engine)["client_id"]
    other = add_plant(central, other_plant_config())
    # B pulls: nothing of A
    with http(central, other) as b:
        page = b.get("/v1/sync/pull", params={"cursor": 0}, headers={"X-Client-Id": "b-kiosk"}).json()
        assert page["changes"] == []
        # B's token with A's device id: refused
        assert b.get("/v1/sync/pull", headers={"X-Client-Id": client_a}).status_code == 403
        assert b.post("/v1/sync/push", json=push_body(client_a, [])).status_code == 403
        # B's status does not list A's devices
        assert b.get("/v1/sync/status").json()["clients"] == [] or all(
            c["client_id"] != client_a for c in b.get("/v1/sync/status").json()["clients"])
        # B pushes a change to A's action and a comment on A's signal: rejected, nothing changes
        stamp = hlc.Timestamp(int(NOW.timestamp() * 1000), 5).pack()
        mutations = [
            {"seq": 1, "mutation_id": str(uuid.uuid4()), "name": "action.set_owner", "entity": "action",
             "entity_id": str(action.id), "hlc": stamp, "actor": "mallory", "created_at": NOW.isoformat(),
             "args": {"action_id": str(action.id), "owner_id": "mallory"}, "payload_sha256": "0" * 64},
            {"seq": 2, "mutation_id": str(uuid.uuid4()), "name": "comment.add", "entity": "comment",
             "entity_id": "c1", "hlc": stamp, "actor": "mallory", "created_at": NOW.isoformat(),
             "args": {"id": "c1", "target": "signal", "target_id": str(signal.id), "author_id": "mallory", "body": "x",
                      "created_at": NOW.isoformat(), "hlc": stamp}, "payload_sha256": "1" * 64},
        ]
        result = b.post("/v1/sync/push", json=push_body("b-kiosk", mutations)).json()
    assert [(r["status"], r["reason"]) for r in result["results"]] == [("rejected", "forbidden"), ("rejected", "forbidden")]
    assert all(r["server_state"] in (None, []) for r in result["results"]), "a rejection must not leak the other plant's data"
    assert result["last_processed_seq"] == 2
    assert central_rows(central)["action"][str(action.id)]["owner_id"] == "ben"
    assert central_rows(central, "lakeside")["comment"] == {}


def test_signals_posted_for_one_plant_are_pulled_only_by_that_plant(central, tmp_path):
    other = add_plant(central, other_plant_config())
    with http(central, other) as b:
        assert b.post("/v1/signals", json={"signals": [signal_record(1, external_id="b-only")]}).json()["added"] == 1
    kiosk = make_device(tmp_path, "a1")
    assert client_for(kiosk, central).run_round().ok
    with kiosk.ctx.read() as session:
        assert session.scalars(select(Signal)).all() == []


# --------------------------------------------------------------------------------------
# Push semantics
# --------------------------------------------------------------------------------------


def wire_batch(tmp_path, name="k1", n=3):
    kiosk = make_device(tmp_path, name)
    signal = signal_on(kiosk)
    kiosk.signals.acknowledge(signal.id, actor="anna")
    kiosk.comments.add("signal", signal.id, actor="anna", body="looked at it")
    batch = local.pending(kiosk.ctx.engine).mutations
    return kiosk, batch[:n]


def test_push_applies_once_answers_duplicates_and_refuses_a_reused_seq(central, tmp_path):
    kiosk, batch = wire_batch(tmp_path)
    cid = local.ensure_client_id(kiosk.ctx.engine)
    with http(central) as client:
        first = client.post("/v1/sync/push", json=push_body(cid, batch)).json()
        assert [r["status"] for r in first["results"]] == ["applied"] * 3 and first["last_processed_seq"] == 3
        version = central_rows(central)
        again = client.post("/v1/sync/push", json=push_body(cid, batch)).json()
        assert [r["status"] for r in again["results"]] == ["duplicate"] * 3
        assert central_rows(central) == version
        changed = copy.deepcopy(batch)
        changed[2]["args"]["body"] = "something else"
        changed[2]["payload_sha256"] = "f" * 64
        reused = client.post("/v1/sync/push", json=push_body(cid, changed))
    assert reused.status_code == 422 and reused.json()["code"] == "seq_reused" and reused.json()["expected_seq"] == 4
    with central.engine.connect() as conn:
        assert conn.execute(select(ProcessedMutation.seq)).scalars().all() == [1, 2, 3]


def test_a_gap_stops_the_batch_and_names_the_seq_needed(central, tmp_path):
    kiosk, batch = wire_batch(tmp_path)
    cid = local.ensure_client_id(kiosk.ctx.engine)
    with http(central) as client:
        response = client.post("/v1/sync/push", json=push_body(cid, [batch[0], batch[2]])).json()
    assert response["last_processed_seq"] == 1 and response["expected_seq"] == 2
    assert [r["seq"] for r in response["results"]] == [1]


def test_a_rejected_mutation_is_recorded_and_still_advances_the_seq(central, tmp_path):
    kiosk, batch = wire_batch(tmp_path)
    cid = local.ensure_client_id(kiosk.ctx.engine)
    bad = dict(batch[1], name="signal.teleport")
    with http(central) as client:
        response = client.post("/v1/sync/push", json=push_body(cid, [batch[0], bad, batch[2]])).json()
    assert [(r["status"], r["reason"]) for r in response["results"]] == [
        ("applied", None), ("rejected", "unknown_mutation"), ("applied", None)]
    assert response["last_processed_seq"] == 3
    with central.engine.connect() as conn:
        row = conn.execute(select(ProcessedMutation).where(ProcessedMutation.seq == 2)).one()
    assert row.status == "rejected" and "teleport" in row.result["detail"]


def test_one_request_is_one_transaction(central, tmp_path):
    kiosk, batch = wire_batch(tmp_path)
    cid = local.ensure_client_id(kiosk.ctx.engine)
    with http(central) as client:
        client.post("/v1/sync/push", json=push_body(cid, batch[:1]))
        reused = dict(batch[0], payload_sha256="e" * 64)
        # new mutations first, then a reused seq: the whole request is refused, nothing of it kept
        response = client.post("/v1/sync/push", json=push_body(cid, [batch[1], batch[2], reused]))
    assert response.status_code == 422
    with central.engine.connect() as conn:
        assert conn.execute(select(ProcessedMutation.seq)).scalars().all() == [1]
        assert conn.execute(select(SyncEntity.entity).where(SyncEntity.entity == "comment")).first() is None


def test_a_concurrent_push_of_the_same_device_gets_409(db_url, tmp_path):
    entered, release = threading.Event(), threading.Event()
    calls = {"n": 0}

    def hooks():
        calls["n"] += 1
        if calls["n"] == 1:
            return Hooks(before_commit=lambda: (entered.set(), release.wait(10)))
        return None

    central = make_central(db_url, push_hooks=hooks)
    kiosk, batch = wire_batch(tmp_path)
    cid = local.ensure_client_id(kiosk.ctx.engine)
    results = {}

    def first():
        with http(central) as client:
            results["first"] = client.post("/v1/sync/push", json=push_body(cid, batch[:2]))

    thread = threading.Thread(target=first)
    thread.start()
    assert entered.wait(10)
    with http(central) as client:
        second = client.post("/v1/sync/push", json=push_body(cid, batch))
    release.set()
    thread.join(10)
    assert second.status_code == 409 and second.json()["code"] == "push_in_progress"
    assert results["first"].status_code == 200
    with http(central) as client:
        assert [r["status"] for r in client.post("/v1/sync/push", json=push_body(cid, batch)).json()["results"]] == [
            "duplicate", "duplicate", "applied"]


def test_a_clock_far_ahead_is_clamped_never_rejected(central, tmp_path):
    """The server runs on the real clock; a stamp eleven years ahead of it is re-stamped."""
    kiosk = make_device(tmp_path, "fast", at=NOW + timedelta(days=3))
    signal_on(kiosk)
    batch = local.pending(kiosk.ctx.engine).mutations
    cid = local.ensure_client_id(kiosk.ctx.engine)
    with http(central) as client:
        far = [dict(batch[0], hlc=hlc.Timestamp(int((NOW + timedelta(days=4000)).timestamp() * 1000), 0).pack())]
        response = client.post("/v1/sync/push", json=push_body(cid, far)).json()
    assert response["results"][0]["status"] == "applied" and response["results"][0]["reason"] == "clock_skew"
    assert hlc.Timestamp.unpack(response["server_hlc"]).l < int((NOW + timedelta(days=4000)).timestamp() * 1000)


# --------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------


def test_body_size_and_batch_limits(central):
    with http(central) as client:
        huge = client.post("/v1/signals", content=b"{" + b" " * (17 * 1024 * 1024) + b"}",
                           headers={"Content-Type": "application/json"})
        assert huge.status_code == 413 and huge.json()["code"] == "too_large"
        too_many = client.post("/v1/signals", json={"signals": [signal_record(i) for i in range(1001)]})
        assert too_many.status_code == 422 and too_many.json()["code"] == "invalid_request"
        mutation = {"seq": 1, "mutation_id": "m", "name": "x", "entity": "x", "entity_id": "x", "hlc": "0" * 16,
                    "actor": "a", "created_at": NOW.isoformat(), "args": {}, "payload_sha256": "0" * 64}
        assert client.post("/v1/sync/push", json=push_body("k", [mutation] * (MAX_PUSH_MUTATIONS + 1))).status_code == 422
        assert client.get("/v1/sync/pull", params={"limit": 100_000}, headers={"X-Client-Id": "k"}).status_code == 422


def test_a_body_that_is_not_json_is_refused_with_where_it_breaks(central):
    with http(central) as client:
        broken = client.post("/v1/signals", content=b'{"signals": [{"external_id": "a",}]}',
                             headers={"Content-Type": "application/json"})
        assert broken.status_code == 422
        problem = broken.json()
        assert problem["code"] == "invalid_request" and problem["errors"][0]["type"] == "json_invalid"
        assert problem["errors"][0]["loc"] == ["body", 33]  # where the stray comma leaves the object unfinished
        # JSON the fast decoder refuses but the standard one reads (a NaN) is read as before:
        # the row is then judged by the contract, which names the field.
        nan = client.post("/v1/signals", content=json.dumps({"signals": [signal_record(1, confidence=float("nan"))]}).encode(),
                          headers={"Content-Type": "application/json"})
        assert nan.status_code == 200
        assert nan.json()["results"][0]["status"] == "rejected" and nan.json()["results"][0]["field"] == "confidence"
        # An integer beyond 64 bits among the fields kept in extra is kept exactly, as a
        # device's own ingest keeps it.
        huge = 123456789012345678901234567890
        big = client.post("/v1/signals", content=json.dumps({"signals": [signal_record(2, counter=huge)]}).encode(),
                          headers={"Content-Type": "application/json"})
        assert big.status_code == 200 and big.json()["added"] == 1
    assert json.loads(central_rows(central)["signal"][big.json()["results"][0]["signal_id"]]["extra"]) == {"counter": huge}


# --------------------------------------------------------------------------------------
# Pull
# --------------------------------------------------------------------------------------


def test_pull_pages_in_order_and_an_epoch_change_gives_410(central, tmp_path):
    kiosk = make_device(tmp_path, "k1")
    kiosk.ingest.ingest([Row(i, signal_record(i)) for i in range(25)], origin="t")
    assert client_for(kiosk, central).run_round().ok
    seen, entities, cursor = [], [], 0
    with http(central) as client:
        while True:
            page = client.get("/v1/sync/pull", params={"cursor": cursor, "limit": 7}, headers={"X-Client-Id": "r"}).json()
            seen += [c["server_seq"] for c in page["changes"]]
            entities += [c["entity"] for c in page["changes"]]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        epoch = page["server_epoch"]
        # the 25 signals, and one change holding the push's audit entries
        assert seen == sorted(seen) and len(seen) == 26
        assert entities.count("signal") == 25 and entities.count("audit") == 1
        new_epoch(central.engine)
        gone = client.get("/v1/sync/pull", params={"cursor": cursor, "epoch": epoch}, headers={"X-Client-Id": "r"})
        assert gone.status_code == 410 and gone.json()["reset"] == "epoch_changed"
        ahead = client.get("/v1/sync/pull", params={"cursor": 10**9}, headers={"X-Client-Id": "r"})
        assert ahead.status_code == 410 and ahead.json()["reset"] == "cursor_ahead"


def test_a_server_restored_from_a_backup_gets_back_what_it_lost(tmp_path):
    from tiermeet.store.migrate import backup

    path = tmp_path / "central.db"
    central = make_central(f"sqlite:///{path}")
    kiosk = make_device(tmp_path, "k1")
    signal_on(kiosk, 1)
    assert client_for(kiosk, central).run_round().ok
    backup(path, tmp_path / "saved.db")
    signal_on(kiosk, 2)
    kiosk.comments.add("signal", signal_on(kiosk, 3).id, actor="anna", body="after the backup")
    assert client_for(kiosk, central).run_round().ok
    central.engine.dispose()
    # restore: the saved copy replaces the live file, and the operator starts a new epoch
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"central.db{suffix}").unlink(missing_ok=True)
    backup(tmp_path / "saved.db", path)
    restored = make_central(f"sqlite:///{path}")
    new_epoch(restored.engine)
    restored.token = central.token
    result = client_for(kiosk, restored).run_round()
    assert result.ok, result.error
    assert any("re-sent" in note for note in result.notes) and result.resets == 1
    assert diff(device_rows(kiosk), central_rows(restored)) == []
    assert len(central_rows(restored)["signal"]) == 3


def _old_layout_tables():
    """``changes`` and ``sync_entities`` as revision 0005 made them: the state in both, as JSON."""
    import sqlalchemy as sa

    from tiermeet.store.types import UTCDateTime

    meta = sa.MetaData()
    changes = sa.Table("changes", meta, *(sa.Column(name, kind) for name, kind in (
        ("server_seq", sa.BigInteger), ("plant_id", sa.String), ("shared", sa.Boolean), ("entity", sa.String),
        ("entity_id", sa.String), ("state", sa.JSON), ("origin_client_id", sa.String), ("origin_seq", sa.BigInteger),
        ("hlc", sa.String), ("committed_at", UTCDateTime))))
    entities = sa.Table("sync_entities", meta, *(sa.Column(name, kind) for name, kind in (
        ("entity", sa.String), ("entity_id", sa.String), ("plant_id", sa.String), ("parent_id", sa.String),
        ("shared", sa.Boolean), ("state", sa.JSON), ("server_seq", sa.BigInteger))))
    return changes, entities


def test_a_server_of_revision_0005_keeps_every_record_through_the_upgrade(db_url, tmp_path):
    """Revision 0006 keeps a record's state only in its latest change. A server stored
    before it (states in both tables; here one action even lost its change rows) upgrades
    at start-up and goes on as if nothing happened: a new kiosk pulls every record as the
    source has it, and the source's next change merges on top of the migrated state."""
    from alembic import command

    from tiermeet.server.app import create_app
    from tiermeet.server.db import open_engine
    from tiermeet.store.migrate import _alembic_config
    from tiermeet.store.models_sync import Change, Plant, SignalKey, SyncClient, SyncMeta
    from sync_helpers import Central

    donor = make_central(f"sqlite:///{tmp_path / 'donor.db'}")
    source = make_device(tmp_path, "source")
    signal = signal_on(source, 1)
    source.signals.decide(signal.id, actor="anna", kind="act", rationale="worn")
    action = source.actions.create(actor="anna", title="Replace bearing", owner="ben", due_at=NOW + timedelta(days=1),
                                   signal=signal.id).id
    source.comments.add("signal", signal.id, actor="anna", body="seen on the night shift")
    assert client_for(source, donor).run_round().ok

    engine = open_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0005")
    old_changes, old_entities = _old_layout_tables()
    with donor.engine.connect() as read, engine.begin() as write:
        for model in (Plant, ApiToken, SyncClient, ProcessedMutation, SyncMeta, SignalKey):
            write.execute(model.__table__.insert(), [dict(r._mapping) for r in read.execute(select(model.__table__))])
        log = [dict(r._mapping, state=json.loads(r.state)) for r in read.execute(select(Change.__table__))]
        latest = {(c["entity"], c["entity_id"]): c for c in log}
        records = [dict(r._mapping, state=latest[(r.entity, r.entity_id)]["state"])
                   for r in read.execute(select(SyncEntity.__table__))]
        write.execute(old_changes.insert(), [c for c in log if c["entity_id"] != str(action)])
        write.execute(old_entities.insert(), records)
    engine.dispose()

    engine = open_engine(db_url)
    central = Central(db_url, create_app(db_url, engine=engine), engine, donor.token)
    assert diff(central_rows(central), device_rows(source)) == []
    kiosk = make_device(tmp_path, "kiosk")
    assert client_for(kiosk, central).run_round().ok
    assert diff(device_rows(kiosk), device_rows(source)) == []
    source.actions.reassign(action, actor="anna", owner="chen")
    result = client_for(source, central).run_round()
    assert result.ok and result.applied == 1, result
    assert client_for(kiosk, central).run_round().ok
    assert diff(device_rows(kiosk), device_rows(source)) == []
    with engine.connect() as conn:
        owner = conn.execute(select(Change.state).join(SyncEntity, SyncEntity.server_seq == Change.server_seq)
                             .where(SyncEntity.entity_id == str(action))).scalar_one()
    assert json.loads(owner)["owner"][1] == "chen"


# --------------------------------------------------------------------------------------
# Signals from AI systems
# --------------------------------------------------------------------------------------


_BOUNDS = [0.2, 0.5, 0.5000001, 0.8, 1.0]
#: Every bound, and a confidence just under, at and over each (and none at all).
_CONFIDENCES = [None, 0.0, *sorted({c for b in _BOUNDS for c in (b - 1e-9, b, min(b + 1e-9, 1.0))})]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([None, *_BOUNDS]), st.sampled_from([None, *_BOUNDS]),
                          st.sampled_from(["CNC1", "CNC2"]), st.sampled_from([1, 2, 3])), max_size=4),
       st.booleans())
def test_remembered_placements_are_those_of_a_pass_over_the_rules(rules, descending):
    """Signals in batches are placed from placements remembered per policy, keyed on the
    band a confidence falls in between the rules' bounds: at, just under and over every
    bound, each is placed as a fresh pass over the rules places it."""
    from tiermeet.domain import policy as p

    policy = p.Governance(rules=[p.Rule(name=f"r{i}", confidence_min=low, confidence_max=high, line=[line], start_tier=tier,
                                        autonomy="autonomous" if i % 2 else "escalate")
                                 for i, (low, high, line, tier) in enumerate(rules)
                                 if low is None or high is None or low <= high])
    confidences = sorted(_CONFIDENCES, key=lambda c: -1 if c is None else c, reverse=descending)
    for line in ("CNC1", "GRIND"):
        for top in (2, 4):
            for confidence in confidences:
                facts = p.SignalFacts("quality", "high", "pdm-spindle", "anomaly", "machining", line, confidence)
                assert p.place(policy, facts, top) == policy.placer().fresh(facts, top), (confidence, line, top)


def test_signals_are_taken_per_row_idempotently_and_placed_as_at_local_ingest(central, tmp_path):
    records = [signal_record(1), signal_record(2, severity="critical", category="safety"),
               signal_record(3, area="nowhere"), signal_record(4, line="PACK"), signal_record(1)]
    with http(central) as client:
        first = client.post("/v1/signals", json={"signals": records}).json()
        again = client.post("/v1/signals", json={"signals": records[:2]}).json()
    assert [r["status"] for r in first["results"]] == ["added", "added", "rejected", "rejected", "rejected"]
    assert first["results"][2]["field"] == "area" and "not a configured area" in first["results"][2]["reason"]
    assert first["results"][3]["field"] == "line"
    assert "already appears at index 0" in first["results"][4]["reason"]
    assert (first["added"], first["duplicates"], first["rejected"]) == (2, 0, 3)
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    assert again["results"][0]["signal_id"] == first["results"][0]["signal_id"]
    # the same records ingested locally are placed identically
    reference = make_device(tmp_path, "reference")
    reference.ingest.ingest([Row(i, r) for i, r in enumerate(records[:2])], origin="t")
    kiosk = make_device(tmp_path, "k1")
    assert client_for(kiosk, central).run_round().ok
    fields = ("tier", "autonomy", "policy_rule", "policy_version", "deadline", "tier_entered_at", "status", "severity_rank")
    with reference.ctx.read() as s1, kiosk.ctx.read() as s2:
        local_rows = {r.external_id: tuple(getattr(r, f) for f in fields) for r in s1.scalars(select(Signal))}
        pulled = {r.external_id: tuple(getattr(r, f) for f in fields) for r in s2.scalars(select(Signal))}
    assert pulled == local_rows


def test_signals_that_fail_midway_leave_nothing_half_written(central, monkeypatch):
    """The changes of a batch reach PostgreSQL while later ones are still being built; a
    failure after hundreds of them must still leave nothing, so that the retry adds all."""
    from tiermeet.server import apply

    build = apply.signal_ingest_state
    calls = []

    def failing_at_300(initial, clock):
        calls.append(initial["id"])
        if len(calls) == 300:
            raise RuntimeError("placement broke at signal 300")
        return build(initial, clock)

    records = [signal_record(n) for n in range(500)]
    monkeypatch.setattr(apply, "signal_ingest_state", failing_at_300)
    with http(central) as client:
        with pytest.raises(RuntimeError, match="signal 300"):
            client.post("/v1/signals", json={"signals": records})
        assert central_rows(central)["signal"] == {}
        monkeypatch.setattr(apply, "signal_ingest_state", build)
        retry = client.post("/v1/signals", json={"signals": records}).json()
    assert (retry["added"], retry["duplicates"], retry["rejected"]) == (500, 0, 0)
    assert len(central_rows(central)["signal"]) == 500


def test_posting_signals_for_a_plant_without_a_config_is_refused_clearly(central):
    from tiermeet.server.tokens import upsert_plant

    upsert_plant(central.engine, "bare", "Bare Plant")
    token = create_token(central.engine, "bare")
    with http(central, token) as client:
        response = client.post("/v1/signals", json={"signals": [signal_record(1)]})
    assert response.status_code == 409 and response.json()["code"] == "no_plant_config"


# --------------------------------------------------------------------------------------
# Merge outcomes end to end: concurrent decisions, stale reopen, status
# --------------------------------------------------------------------------------------


def test_concurrent_decisions_are_kept_side_by_side_and_flagged(central, tmp_path):
    a, b = make_device(tmp_path, "a"), make_device(tmp_path, "b")
    with http(central) as client:
        signal_id = client.post("/v1/signals", json={"signals": [signal_record(1)]}).json()["results"][0]["signal_id"]
    for device in (a, b):
        assert client_for(device, central).run_round().ok
    a.signals.decide(signal_id, actor="anna", kind="act", rationale="replace bearing",
                     action=ActionSpec("Replace", "ben", NOW + timedelta(days=1)))
    b.signals.decide(signal_id, actor="ben", kind="dismiss", rationale="sensor glitch", disposition="false_positive")
    for device in (a, b, a):
        assert client_for(device, central).run_round().ok
    for device in (a, b):
        rows = device_rows(device)
        assert len(rows["decision"]) == 2
        [conflict] = rows["conflict"].values()
        assert conflict["signal_id"] == signal_id and len(conflict["members"].split(",")) == 2
        assert diff(rows, central_rows(central)) == []


def test_a_stale_reopen_is_rejected_and_the_device_shows_the_winning_state(central, tmp_path):
    a, b = make_device(tmp_path, "a"), make_device(tmp_path, "b")
    action = a.actions.create(actor="anna", title="Fix", owner="ben", due_at=NOW + timedelta(days=1))
    a.actions.done(action.id, actor="ben")
    assert client_for(a, central).run_round().ok
    assert client_for(b, central).run_round().ok
    a.actions.reopen(action.id, actor="anna")              # epoch 0 -> 1, synced first
    b.actions.reopen(action.id, actor="chen")              # also from epoch 0: stale once a's lands
    b.actions.done(action.id, actor="chen")
    assert client_for(a, central).run_round().ok
    result = client_for(b, central).run_round()
    assert result.ok and result.rejected == 1 and result.exit_code == 5
    [rejection] = local.rejections(b.ctx.engine)
    assert rejection.reason_code == "stale_epoch" and rejection.name == "action.reopen"
    assert rejection.winning[0]["record"]["status_epoch"] == 1
    assert diff(device_rows(b), central_rows(central)) == []
    local.mark_rejections_seen(b.ctx.engine, NOW)
    assert client_for(b, central).run_round().exit_code == 0


def test_status_lists_the_plants_devices(central, tmp_path):
    kiosk = make_device(tmp_path, "k1")
    signal_on(kiosk)
    assert client_for(kiosk, central).run_round().ok
    with http(central) as client:
        status = client.get("/v1/sync/status").json()
    [device] = status["clients"]
    assert device["client_id"] == local.read_state(kiosk.ctx.engine)["client_id"]
    assert device["last_processed_seq"] == 1 and device["rejections"] == 0 and status["plant_id"] == "riverside"


def test_a_paged_pull_enrols_the_device_and_records_where_it_caught_up(central, tmp_path):
    """Pages in the middle of a pull are only read; the first page enrols a new device and
    the last one records how far it got, under the token's plant only."""
    kiosk = make_device(tmp_path, "k1")
    kiosk.ingest.ingest([Row(i, signal_record(i)) for i in range(25)], origin="t")
    assert client_for(kiosk, central).run_round().ok
    other = add_plant(central, other_plant_config())
    with http(central) as client:
        first = client.get("/v1/sync/pull", params={"cursor": 0, "limit": 10}, headers={"X-Client-Id": "reader"}).json()
        [enrolled] = [c for c in client.get("/v1/sync/status").json()["clients"] if c["client_id"] == "reader"]
        assert first["has_more"] and enrolled["last_pull_cursor"] == first["next_cursor"]
        middle = client.get("/v1/sync/pull", params={"cursor": first["next_cursor"], "limit": 10},
                            headers={"X-Client-Id": "reader"}).json()
        [unchanged] = [c for c in client.get("/v1/sync/status").json()["clients"] if c["client_id"] == "reader"]
        assert middle["has_more"] and unchanged == enrolled
        last = client.get("/v1/sync/pull", params={"cursor": middle["next_cursor"], "limit": 10},
                          headers={"X-Client-Id": "reader"}).json()
        [caught_up] = [c for c in client.get("/v1/sync/status").json()["clients"] if c["client_id"] == "reader"]
        assert not last["has_more"] and caught_up["last_pull_cursor"] == last["next_cursor"]
    with http(central, other) as client:
        refused = client.get("/v1/sync/pull", params={"cursor": 10, "limit": 10}, headers={"X-Client-Id": "reader"})
        assert refused.status_code == 403 and refused.json()["code"] == "wrong_plant"


# --------------------------------------------------------------------------------------
# Fuzzing the OpenAPI description
# --------------------------------------------------------------------------------------


def test_schemathesis_finds_no_server_error(tmp_path):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    central = make_central(f"sqlite:///{tmp_path / 'fuzz.db'}")
    schema = schemathesis.openapi.from_asgi("/openapi.json", central.app)
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 5
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            response = case.call(headers={"Authorization": f"Bearer {central.token}", "X-Client-Id": "fuzz"})
            if response.status_code >= 500:
                failures.append((case.method, case.path, response.status_code, response.text[:200]))

        run()
    assert failures == []


# --------------------------------------------------------------------------------------
# Cross-plant escalation to tier 4
# --------------------------------------------------------------------------------------

TIER4 = '''
[[tiers]]
level = 4
name = "Enterprise review"
scope = "plant"
meeting_minutes = 30
'''


def with_tier4(text: str) -> str:
    marker = "[[shifts]]"
    return text.replace(marker, TIER4.strip() + "\n\n" + marker, 1)


def test_a_signal_escalated_to_tier_4_reaches_the_enterprise_and_its_decision_comes_back(db_url, tmp_path):
    from tiermeet.settings import demo_config_text

    plant_text = with_tier4(demo_config_text())
    corp_text = with_tier4(other_plant_config("corp"))
    central = make_central(db_url, plant_config=plant_text)
    corp_token = add_plant(central, corp_text, enterprise=True)
    third = add_plant(central, other_plant_config("lakeside"))
    kiosk = make_device(tmp_path, "plant", config_text=plant_text)
    signal = signal_on(kiosk)
    other = signal_on(kiosk, 2)
    for reason in ("needs the area", "needs the plant", "needs the enterprise"):
        kiosk.signals.escalate(signal.id, actor="anna", reason=reason)
    assert client_for(kiosk, central).run_round().ok
    hq = make_device(tmp_path, "hq", config_text=corp_text)
    from sync_helpers import Central

    hq_central = Central(central.url, central.app, central.engine, corp_token)
    assert client_for(hq, hq_central).run_round().ok
    with hq.ctx.read() as session:
        seen = session.scalars(select(Signal)).all()
    assert [s.id for s in seen] == [signal.id] and seen[0].tier == 4, "only the tier-4 signal is shared"
    assert len(device_rows(hq)["escalation"]) == 3
    hq.signals.decide(signal.id, actor="anna", kind="act", rationale="fund the spindle swap",
                      action=ActionSpec("Order spindle", "ben", NOW + timedelta(days=3)))
    assert client_for(hq, hq_central).run_round().ok
    assert client_for(kiosk, central).run_round().ok
    rows = device_rows(kiosk)
    assert any(d["rationale"] == "fund the spindle swap" for d in rows["decision"].values())
    assert rows["signal"][str(signal.id)]["status"] == "actioned"
    assert rows["signal"][str(other.id)]["status"] == "open"
    # a third plant sees none of it
    with http(central, third) as client:
        assert client.get("/v1/sync/pull", headers={"X-Client-Id": "lake"}).json()["changes"] == []


# --------------------------------------------------------------------------------------
# The example producer: a real model's output end to end
# --------------------------------------------------------------------------------------


def test_the_ai4i_example_posts_its_predictions_as_signals(central, tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "ai4i_producer.py"
    spec = importlib.util.spec_from_file_location("ai4i_producer", path)
    producer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(producer)
    train, live = producer.split(producer.load())
    model = producer.Model().fit(train, epochs=60)
    quality = producer.evaluate(model, live, 0.8)
    assert quality["recall"] > 0.3 and quality["precision"] > 0.3, quality
    records = producer.signals(model, live, threshold=0.8, now=NOW)
    assert records
    totals = producer.post("http://central", central.token, records, transport=central.transport())
    assert (totals["added"], totals["rejected"]) == (len(records), 0), totals["problems"]
    again = producer.post("http://central", central.token, records, transport=central.transport())
    assert again["duplicates"] == len(records)
    kiosk = make_device(tmp_path, "k1")
    assert client_for(kiosk, central).run_round().ok
    with kiosk.ctx.read() as session:
        pulled = session.scalars(select(Signal).where(Signal.source == producer.SOURCE)).all()
    assert len(pulled) == len(records)
    assert all(s.extra and "ai4i_udi" in s.extra for s in pulled)


def test_the_same_person_marked_present_on_two_kiosks_merges(central, tmp_path):
    a, b = make_device(tmp_path, "a"), make_device(tmp_path, "b")
    meeting = a.meetings.start(actor="anna", tier=1, scope="CNC1")
    assert client_for(a, central).run_round().ok and client_for(b, central).run_round().ok
    a.meetings.attend(meeting.id, actor="anna", person="ben")
    b.ctx.clock.at = NOW + timedelta(minutes=2)
    b.meetings.attend(meeting.id, actor="chen", person="ben")
    for device in (a, b, a):
        result = client_for(device, central).run_round()
        assert result.ok and result.rejected == 0
    for device in (a, b):
        rows = device_rows(device)
        assert sorted(k.split(":")[1] for k in rows["attendance"]) == ["anna", "ben"]
        assert diff(rows, central_rows(central)) == []
