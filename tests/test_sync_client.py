"""The device's sync client: token file rules, exit codes and reasons, retries with
backoff, a pulled page applied atomically with its cursor, local pending changes kept over
older server values, recovery when the device lost changes the server had (seq_reused),
and the status the app shows.
"""

import json
import os
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text

from conftest import signal_record
from sync_helpers import NOW, central_rows, client_for, device_rows, diff, make_central, make_device, outbox_size
from tiermeet.ingest.readers import Row
from tiermeet.server.tokens import list_tokens, revoke_token
from tiermeet.store.models import Action, Comment, Signal
from tiermeet.store.migrate import backup
from tiermeet.store.models_sync import Change, SyncShadow
from tiermeet.sync import local, merge
from tiermeet.sync.client import EXIT_REFUSED, EXIT_UNREACHABLE, SyncClient, SyncError, load_token, sync_status


@pytest.fixture
def central(tmp_path):
    return make_central(f"sqlite:///{tmp_path / 'central.db'}")


def first_signal(device):
    with device.ctx.read() as session:
        return session.scalars(select(Signal).order_by(Signal.external_id)).first()


# --------------------------------------------------------------------------------------
# Token file and exit codes
# --------------------------------------------------------------------------------------


def test_a_token_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "token"
    path.write_text("tmp_riverside_secret\n")
    path.chmod(0o644)
    with pytest.raises(SyncError, match=r"mode 0644.*chmod 600"):
        load_token(path)
    path.chmod(0o600)
    assert load_token(path) == "tmp_riverside_secret"
    with pytest.raises(SyncError, match="not found"):
        load_token(tmp_path / "missing")


def test_sync_command_explains_a_missing_server_or_an_unsafe_token(run_cli, tmp_path):
    db = tmp_path / "k.db"
    no_server = run_cli("--db", db, "sync")
    assert no_server.returncode == 2 and "no server URL" in no_server.stderr
    token = tmp_path / "token"
    token.write_text("tmp_riverside_x")
    token.chmod(0o640)
    unsafe = run_cli("--db", db, "sync", "--server", "http://127.0.0.1:9", "--token-file", token)
    assert unsafe.returncode == 2 and "chmod 600" in unsafe.stderr


def test_an_unreachable_server_is_reported_with_its_own_exit_code(tmp_path):
    device = make_device(tmp_path, "k1")
    with SyncClient(device.ctx.engine, server_url="http://127.0.0.1:9", token="tmp_x_y", attempts=2, wait_initial=0.01,
                    wait_max=0.01, timeout=2) as client:
        result = client.run_round()
    assert result.exit_code == EXIT_UNREACHABLE and "cannot reach http://127.0.0.1:9" in result.error
    status = sync_status(device)
    assert status.last_error == result.error and status.last_sync_ok_at is None


def test_a_revoked_token_is_reported_as_refused(central, tmp_path):
    device = make_device(tmp_path, "k1")
    [token] = list_tokens(central.engine)
    revoke_token(central.engine, token.id)
    result = client_for(device, central).run_round()
    assert result.exit_code == EXIT_REFUSED and "refused this device's token" in result.error


# --------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------


class Flaky(httpx.BaseTransport):
    """Fails the first ``n`` calls with 503, then passes through."""

    def __init__(self, inner, n):
        self.inner, self.n, self.calls = inner, n, 0

    def handle_request(self, request):
        self.calls += 1
        if self.calls <= self.n:
            return httpx.Response(503, json={"code": "busy", "detail": "try later"}, headers={"Retry-After": "0"})
        return self.inner.handle_request(request)


def test_5xx_answers_are_retried_with_backoff_until_the_server_takes_the_push(central, tmp_path):
    device = make_device(tmp_path, "k1")
    device.ingest.ingest([Row(1, signal_record(1))], origin="t")
    flaky = Flaky(central.transport(), 3)
    result = client_for(device, central, transport=flaky).run_round()
    assert result.ok and result.applied == 1 and flaky.calls >= 5
    stuck = Flaky(central.transport(), 100)
    device.ingest.ingest([Row(1, signal_record(2))], origin="t")
    failed = client_for(device, central, transport=stuck, attempts=3).run_round()
    assert failed.exit_code == EXIT_UNREACHABLE and "kept answering 503" in failed.error
    assert outbox_size(device) == 1, "nothing is dropped when the server keeps failing"


# --------------------------------------------------------------------------------------
# Applying pulled pages
# --------------------------------------------------------------------------------------


def test_a_page_and_its_cursor_are_applied_together_or_not_at_all(central, tmp_path, monkeypatch):
    source = make_device(tmp_path, "src")
    source.ingest.ingest([Row(i, signal_record(i)) for i in range(30)], origin="t")
    assert client_for(source, central).run_round().ok
    device = make_device(tmp_path, "k1")
    real = local._write_rows
    calls = {"n": 0}

    def crash(session, entity, rows):
        calls["n"] += 1
        if calls["n"] == 2:  # the second page dies half-way through (slices of 200 > page of 10)
            real(session, entity, rows[:3])
            raise RuntimeError("power cut")
        return real(session, entity, rows)

    monkeypatch.setattr(local, "_write_rows", crash)
    with pytest.raises(RuntimeError):
        client_for(device, central, page=10).pull_only()
    state = local.read_state(device.ctx.engine)
    with device.ctx.read() as session:
        assert len(session.scalars(select(Signal)).all()) == 10
    assert int(state["pull_cursor"]) == 10
    monkeypatch.setattr(local, "_write_rows", real)
    assert client_for(device, central, page=10).run_round().ok
    assert diff(device_rows(device), central_rows(central)) == []


def test_a_page_cut_short_between_slices_leaves_every_change_up_to_the_cursor_applied(central, tmp_path, monkeypatch):
    """A page is written one merged state per record, in slices that each move the cursor.
    Records changed again later in the page are written once, early; a crash after some
    slices must still leave each change at or below the cursor applied on the device."""
    source = make_device(tmp_path, "src")
    actions = [source.actions.create(actor="anna", title=f"Fix {i}", owner="anna", due_at=NOW + timedelta(days=1))
               for i in range(6)]
    for round_ in range(4):
        for i, action in enumerate(actions):
            source.ctx.clock.at = NOW + timedelta(minutes=10 * round_ + i)
            source.actions.reassign(action.id, actor="anna", owner=["ben", "chen", "anna"][(round_ + i) % 3])
        source.ingest.ingest([Row(round_, signal_record(round_))], origin="t")
    assert client_for(source, central).run_round().ok
    device = make_device(tmp_path, "k1")
    monkeypatch.setattr(local, "APPLY_STEP", 2)
    monkeypatch.setattr(local, "APPLY_BUDGET_S", 0.0)  # one slice per transaction
    real = local._apply_states
    calls = {"n": 0}

    def crash(session, items, client_id):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("power cut")
        return real(session, items, client_id)

    monkeypatch.setattr(local, "_apply_states", crash)
    with pytest.raises(RuntimeError):
        client_for(device, central).pull_only()
    cursor = int(local.read_state(device.ctx.engine)["pull_cursor"])
    with central.engine.connect() as conn:
        log = conn.execute(select(Change.server_seq, Change.entity, Change.entity_id, Change.state)
                           .order_by(Change.server_seq)).all()
    with device.ctx.read() as session:
        shadow = {(e, i): s for e, i, s in session.execute(select(SyncShadow.entity, SyncShadow.entity_id, SyncShadow.state))}
    assert 0 < cursor < log[-1].server_seq
    below = [c for c in log if c.server_seq <= cursor]
    assert len({(c.entity, c.entity_id) for c in below}) < len(below)  # the applied part merged repeated records
    for change in below:
        assert merge.dominates(change.entity, shadow.get((change.entity, change.entity_id)), json.loads(change.state)), change.server_seq
    monkeypatch.setattr(local, "_apply_states", real)
    assert client_for(device, central).run_round().ok
    assert diff(device_rows(device), central_rows(central)) == []


def test_a_pending_local_change_survives_an_older_server_value(central, tmp_path):
    a, b = make_device(tmp_path, "a"), make_device(tmp_path, "b")
    action = a.actions.create(actor="anna", title="Fix", owner="anna", due_at=NOW + timedelta(days=2))
    assert client_for(a, central).run_round().ok
    assert client_for(b, central).run_round().ok
    b.actions.reassign(action.id, actor="ben", owner="ben")        # earlier
    a.ctx.clock.at = NOW + timedelta(minutes=5)
    a.actions.reassign(action.id, actor="anna", owner="chen")      # later, not pushed yet
    assert client_for(b, central).run_round().ok
    client_for(a, central).pull_only()
    with a.ctx.read() as session:
        assert session.get(Action, action.id).owner_id == "chen"
    assert client_for(a, central).run_round().ok and client_for(b, central).run_round().ok
    for device in (a, b):
        with device.ctx.read() as session:
            assert session.get(Action, action.id).owner_id == "chen"


def test_a_device_that_lost_changes_renumbers_and_nothing_is_lost(central, tmp_path):
    device = make_device(tmp_path, "k1")
    device.ingest.ingest([Row(1, signal_record(1))], origin="t")
    assert client_for(device, central).run_round().ok
    signal = first_signal(device)
    path = device.ctx.db_path
    backup(path, tmp_path / "before.db")
    device.comments.add("signal", signal.id, actor="anna", body="first words")
    assert client_for(device, central).run_round().ok
    device.ctx.engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"{path.name}{suffix}").unlink(missing_ok=True)
    backup(tmp_path / "before.db", path)  # the device comes back without its last change
    device = make_device(tmp_path, "k1")
    device.comments.add("signal", signal.id, actor="ben", body="other words")  # same seq, different change
    result = client_for(device, central).run_round()
    assert result.ok, result.error
    assert any("renumbered 1 pending" in n for n in result.notes)
    with device.ctx.read() as session:
        assert sorted(c.body for c in session.scalars(select(Comment))) == ["first words", "other words"]
    assert diff(device_rows(device), central_rows(central)) == []


def test_status_for_the_app(central, tmp_path):
    device = make_device(tmp_path, "k1")
    device.ingest.ingest([Row(1, signal_record(1))], origin="t")
    before = sync_status(device)
    assert before.pending == 1 and before.last_sync_ok_at is None and not before.configured
    result = client_for(device, central).run_round()
    after = sync_status(device)
    assert result.ok and after.pending == 0 and after.last_sync_ok_at is not None and after.last_error is None
    assert after.pull_cursor >= 1 and after.server_epoch


def test_sync_command_against_a_config_with_sync_settings(run_cli, tmp_path, central):
    """``tiermeet sync`` reads the server URL and token file from the config."""
    token = tmp_path / "token"
    token.write_text(central.token)
    token.chmod(0o600)
    from tiermeet.settings import demo_config_text

    config = tmp_path / "plant.toml"
    config.write_text(demo_config_text() + f'\n[sync]\nserver_url = "http://127.0.0.1:9"\ntoken_file = "{token}"\n')
    result = run_cli("--db", tmp_path / "k.db", "--config", config, "sync", timeout=120)
    assert result.returncode == EXIT_UNREACHABLE, result.stderr
    assert "cannot reach http://127.0.0.1:9" in result.stderr
    assert os.stat(token).st_mode & 0o777 == 0o600


def test_a_background_sync_records_each_answer_before_sending_the_next_batch(central, tmp_path):
    device = make_device(tmp_path, "k1")
    for i in range(5):
        device.ingest.ingest([Row(i, signal_record(i))], origin="t")
    seen = []

    class Watching(httpx.BaseTransport):
        """Notes, at each push, the first seq still in the outbox and the first seq sent."""

        def __init__(self, inner):
            self.inner = inner

        def handle_request(self, request):
            if request.url.path.endswith("/push"):
                with device.ctx.read() as session:
                    pending = session.execute(text("SELECT min(seq) FROM outbox")).scalar_one()
                seen.append((pending, json.loads(request.content)["mutations"][0]["seq"]))
            return self.inner.handle_request(request)

    client = client_for(device, central, transport=Watching(central.transport()), batch=2, background=True)
    assert client.batch == 2 and client_for(device, central, batch=5000, background=True).batch == 500
    result = client.run_round()
    assert result.ok and result.applied == 5
    assert seen == [(1, 1), (3, 3), (5, 5)]


def test_pulled_audit_entries_count_as_rows_when_a_page_is_sliced():
    audit = ("audit", "a", {"entries": [{}] * 150})
    records = [("signal", str(i), {}) for i in range(30)] + [audit] + [("signal", f"s{i}", {}) for i in range(250)]
    bounds = local._steps(records)
    # the audit change closes the first step (30 + 150 rows); then steps of 100 records
    assert bounds == [0, 31, 131, 231, 281]
    assert local._steps([]) == [0]
