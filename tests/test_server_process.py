"""Real processes and sockets (sync-protocol §3.4): ``tiermeet serve`` under uvicorn killed
just before and just after committing a push, and ``tiermeet sync`` killed with SIGKILL
mid-round. After a restart and a clean round, nothing is lost and nothing is doubled.
"""

import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from conftest import cli_env, signal_record
from sync_helpers import NOW, central_rows, device_rows, diff, make_device, outbox_size, pg_url_or_skip
from tiermeet.ingest.readers import Row
from tiermeet.server.db import open_engine
from tiermeet.store.models import Signal
from tiermeet.store.models_sync import ProcessedMutation
from tiermeet.sync.client import SyncClient

pytestmark = pytest.mark.timeout(240)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``tiermeet serve`` in a subprocess."""

    def __init__(self, url: str, tmp_path, fault: str | None = None) -> None:
        self.url, self.tmp_path, self.port = url, tmp_path, free_port()
        env = cli_env(TIERMEET_SERVER_DB_URL=url)
        if fault:
            env["TIERMEET_FAULT"] = fault
        self.log = open(tmp_path / f"server-{self.port}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "tiermeet", "serve", "--port", str(self.port)],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError((tmp_path / f"server-{self.port}.log").read_text())
            try:
                if httpx.get(f"{self.base}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("the server did not start")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        return self.proc.wait()


def make_token(run_cli, url: str) -> str:
    result = run_cli("token", "create", "--plant", "riverside", "--database-url", url)
    assert result.returncode == 0, result.stderr
    assert "not shown again" in result.stderr
    return result.stdout.strip()


def central_view(url: str):
    class View:
        pass

    view = View()
    view.engine = open_engine(url)
    return view


def processed(url: str) -> list[str]:
    engine = open_engine(url)
    with engine.connect() as conn:
        ids = conn.execute(select(ProcessedMutation.mutation_id)).scalars().all()
    engine.dispose()
    return ids


@pytest.mark.parametrize("fault", ["exit_before_commit:2", "exit_after_commit:2"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_server_killed_around_the_commit_loses_and_doubles_nothing(run_cli, tmp_path, fault, backend):
    url = (f"sqlite:///{tmp_path / 'central.db'}" if backend == "sqlite"
           else pg_url_or_skip(f"tm_proc_{uuid.uuid4().hex[:10]}"))
    token = make_token(run_cli, url)
    device = make_device(tmp_path, "k1")
    device.ingest.ingest([Row(i, signal_record(i)) for i in range(5)], origin="t")
    with device.ctx.read() as session:
        signals = session.scalars(select(Signal)).all()
    for n, s in enumerate(signals * 3):
        device.comments.add("signal", s.id, actor="anna", body=f"comment {n}")
    total = outbox_size(device)
    server = Server(url, tmp_path, fault=fault)
    with SyncClient(device.ctx.engine, server_url=server.base, token=token, batch=4, attempts=2, wait_initial=0.01,
                    wait_max=0.05) as client:
        broken = client.run_round()
    assert server.proc.wait(10) == 137, "the fault hook should have ended the server"
    server.stop()
    assert not broken.ok and broken.error_kind == "unreachable"
    assert 0 < outbox_size(device) < total, "the first batch was acknowledged, the rest waits"
    server = Server(url, tmp_path)
    try:
        with SyncClient(device.ctx.engine, server_url=server.base, token=token, batch=4) as client:
            result = client.run_round()
        assert result.ok, result.error
        if fault.startswith("exit_after_commit"):
            assert result.duplicates == 4, "the batch committed before the crash is answered as duplicates"
        else:
            assert result.duplicates == 0
    finally:
        server.stop()
    ids = processed(url)
    assert len(ids) == len(set(ids)) == total
    assert outbox_size(device) == 0
    assert diff(device_rows(device), central_rows(central_view(url))) == []


def test_a_sync_killed_mid_round_resumes_with_nothing_lost_or_doubled(run_cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'central.db'}"
    token = make_token(run_cli, url)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    device = make_device(tmp_path, "k1")
    device.ingest.ingest([Row(i, signal_record(i)) for i in range(20)], origin="t")
    with device.ctx.read() as session:
        signals = session.scalars(select(Signal)).all()
    for n in range(1500):
        device.comments.add("signal", signals[n % 20].id, actor="anna", body=f"c{n}")
    total = outbox_size(device)
    db = device.ctx.db_path
    device.ctx.engine.dispose()
    server = Server(url, tmp_path)
    kills = 0
    try:
        for delay in (0.5, 0.8, 1.1, 1.4, 1.7, 2.0, 2.4):
            child = subprocess.Popen([sys.executable, "-m", "tiermeet", "--db", str(db), "sync", "--server", server.base,
                                      "--token-file", str(token_file)], env=cli_env(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            time.sleep(delay)
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                kills += 1
            child.wait(30)
            with sqlite3.connect(db) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                pending = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
                archived = conn.execute("SELECT count(*) FROM outbox_archive").fetchone()[0]
            assert pending + archived == total, "an outbox row vanished without reaching the archive"
        final = run_cli("--db", db, "sync", "--server", server.base, "--token-file", token_file, timeout=120)
        assert final.returncode == 0, final.stderr
    finally:
        server.stop()
    assert kills >= 1, "no kill landed mid-round; the workload is too small for this machine"
    ids = processed(url)
    assert len(ids) == len(set(ids)) == total
    device = make_device(tmp_path, "k1")
    assert outbox_size(device) == 0
    assert diff(device_rows(device), central_rows(central_view(url))) == []
    with device.ctx.read() as session:
        from tiermeet.store.models import Comment

        assert session.execute(select(func.count()).select_from(Comment)).scalar_one() == 1500
    assert NOW
