"""Sync speed against a real ``tiermeet serve`` (uvicorn on loopback), on SQLite and PostgreSQL.

Targets (issue "Central API and offline sync", Speed):
- a plant offline for a week with 50,000 mutations pushes them in ≤ 5 s (SQLite central,
  and PostgreSQL central);
- a new kiosk pulls 50,000 changes in ≤ 5 s;
- ``POST /v1/signals`` sustains ≥ 20,000 signals/s in batches of 500;
- recording a decision on a kiosk stays ≤ 20 ms p99 while a sync runs.

The week offline: the kiosk's services ingest 1,000 signals, create 500 actions and record
decisions; the rest of the 50,000 mutations are owner and due-time changes, status moves,
and comments (about the mix of sync-protocol §3.5), written as outbox rows in the shapes
the services write, each with its audit entry (which travels with it). Run ``python
benchmarks/sync.py --help``; ``--pg URL`` adds the PostgreSQL central (an empty database
it may fill). It prints a table and, with ``--json``, writes the figures: for each phase
its wall time and the CPU seconds this process (``cpu_client``), the server
(``cpu_server``) and, for a PostgreSQL on this machine, the database's processes
(``cpu_db``) spent in it, with the load average before and after — on a shared machine
the CPU figures are the steadier guide. It exits 0 even when a target is missed;
``--check`` exits 1 then.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

TARGETS = {"push_s": 5.0, "pull_s": 5.0, "signals_per_s": 20_000, "decision_p99_ms": 20.0}
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutations", type=int, default=50_000)
    parser.add_argument("--signals", type=int, default=100_000, help="signals posted for the signals rate")
    parser.add_argument("--pg", metavar="URL", default=os.environ.get("TIERMEET_TEST_PG_URL"),
                        help="PostgreSQL server for a second central (default: $TIERMEET_TEST_PG_URL)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-sqlite", action="store_true", help="only the PostgreSQL central")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


class Server:
    def __init__(self, url: str, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = open(log, "wb")  # noqa: SIM115
        env = dict(os.environ, TIERMEET_SERVER_DB_URL=url)
        self.proc = subprocess.Popen([sys.executable, "-m", "tiermeet", "serve", "--port", str(self.port)], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(300):
            try:
                if httpx.get(f"{self.base}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit(f"server did not start; see {log}")

    def cpu(self) -> float | None:
        """CPU seconds the server process has used so far (None where /proc is missing)."""
        try:
            return _cpu_of(Path(f"/proc/{self.proc.pid}/stat").read_text())
        except OSError:
            return None

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)
        self.log.close()


def _cpu_of(stat: str, *, reaped: bool = False) -> float:
    """User and system CPU seconds from a /proc stat line (and its reaped children's)."""
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if reaped else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


class DatabaseCpu:
    """CPU seconds a PostgreSQL server on this machine has spent so far: its postmaster with
    the backends it has reaped, plus the live ones. The server's own CPU leaves out the
    work it hands the database, which is most of a push on PostgreSQL."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.postmaster = None
        if make_url(url).host not in ("127.0.0.1", "localhost", "::1"):
            return
        engine = create_engine(url)
        with engine.connect() as conn:
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        engine.dispose()
        try:
            self.postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            self.postmaster = None

    def __call__(self) -> float | None:
        if self.postmaster is None:
            return None
        root = Path(f"/proc/{self.postmaster}")
        try:
            total = _cpu_of((root / "stat").read_text(), reaped=True)
            children = (root / "task" / str(self.postmaster) / "children").read_text().split()
        except OSError:
            return None
        for pid in children:
            try:
                total += _cpu_of(Path(f"/proc/{pid}/stat").read_text(), reaped=True)
            except OSError:
                pass  # it ended between the two reads; the postmaster has its time now
        return total


def token_for(url: str) -> str:
    out = subprocess.run([sys.executable, "-m", "tiermeet", "token", "create", "--plant", "riverside", "--database-url", url],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def offline_week(workdir: Path, total: int):
    """A kiosk database holding ``total`` pending mutations."""
    from sqlalchemy import select, text
    from uuid_utils.compat import uuid7

    from conftest import signal_record
    from sync_helpers import make_device
    from tiermeet.domain import hlc
    from tiermeet.ingest.readers import Row
    from tiermeet.services.requests import ActionSpec
    from tiermeet.services.unit import payload_sha256
    from tiermeet.store.models import Action, Signal
    from tiermeet.store.types import to_db_text

    device = make_device(workdir, "offline")
    device.ingest.ingest([Row(i, signal_record(i, external_id=f"{workdir.name}-{i}", line=random.choice(["CNC1", "CNC2", "GRIND"]))) for i in range(1000)],
                         origin="bench")
    with device.ctx.read() as session:
        signals = session.scalars(select(Signal)).all()
    for i, s in enumerate(signals[:300]):
        spec = ActionSpec(f"Fix {i}", random.choice(["anna", "ben", "chen"]), NOW + timedelta(days=2)) if i % 2 else None
        device.signals.decide(s.id, actor="anna", kind="act", rationale="bench", action=spec)
    for i in range(500 - 150):
        device.actions.create(actor="anna", title=f"Task {i}", owner="ben", due_at=NOW + timedelta(days=3),
                              signal=signals[300 + i].id)
    with device.ctx.read() as session:
        actions = [str(a.id) for a in session.scalars(select(Action))]
        state = dict(session.execute(text("SELECT key, value FROM sync_state")).all())
    seq = int(state["next_seq"])
    clock = hlc.Timestamp.unpack(state["hlc"])
    rnd = random.Random(7)
    hot = actions[:20]
    rows, audits = [], []
    people = ["anna", "ben", "chen", "dora", "emil"]
    when = NOW
    while seq < total + 1:
        when += timedelta(seconds=12)
        clock = hlc.tick(clock, int(when.timestamp() * 1000))
        action = rnd.choice(hot) if rnd.random() < 0.2 else rnd.choice(actions)
        r = rnd.random()
        if r < 0.3:
            name, entity, eid, args = "action.set_owner", "action", action, {"action_id": action, "owner_id": rnd.choice(people[:3])}
        elif r < 0.55:
            name, entity, eid, args = "action.set_due", "action", action, {
                "action_id": action, "due_at": (when + timedelta(days=rnd.randint(1, 9))).isoformat().replace("+00:00", "Z")}
        elif r < 0.7:
            name, entity, eid, args = "action.set_status", "action", action, {
                "action_id": action, "status": rnd.choice(["in_progress", "done"]), "epoch": 0}
        else:
            cid = str(uuid7())
            target = str(rnd.choice(signals).id)
            name, entity, eid, args = "comment.add", "comment", cid, {
                "id": cid, "target": "signal", "target_id": target, "author_id": rnd.choice(people[:3]),
                "body": f"observation {seq}", "created_at": when.isoformat().replace("+00:00", "Z"), "hlc": clock.pack()}
        mutation_id = uuid7().hex
        rows.append({"seq": seq, "mutation_id": mutation_id, "name": name, "entity": entity, "entity_id": eid,
                     "args": json.dumps(args), "hlc": clock.pack(), "actor": "anna", "created_at": to_db_text(when),
                     "payload_sha256": payload_sha256(name, args), "attempts": 0})
        # its audit entry, with before/after images of the size the services write
        if entity == "action":
            image = {"title": f"Task for {action[:8]}", "owner_id": rnd.choice(people[:3]),
                     "due_at": (when + timedelta(days=3)).isoformat(), "status": "in_progress", "status_epoch": 0}
            before, after = json.dumps(image), json.dumps({**image, **{k: v for k, v in args.items() if k in image}})
        else:
            before, after = None, json.dumps({"target": "signal", "target_id": args["target_id"], "body": args["body"]})
        audits.append({"id": uuid7().hex, "at": to_db_text(when), "actor": "anna", "device": "offline", "entity": entity,
                       "entity_id": eid, "op": name.split(".")[1], "before": before, "after": after, "hlc": clock.pack(),
                       "mutation_id": mutation_id})
        seq += 1
    with device.ctx.tx("system:bench") as tx:
        tx.session.execute(text(
            "INSERT INTO outbox (seq, mutation_id, name, entity, entity_id, args, hlc, actor, created_at, payload_sha256, "
            "attempts) VALUES (:seq, :mutation_id, :name, :entity, :entity_id, :args, :hlc, :actor, :created_at, "
            ":payload_sha256, :attempts)"), rows)
        tx.session.execute(text(
            "INSERT INTO audit_log (id, at, actor, device, entity, entity_id, op, before, after, hlc, mutation_id) VALUES "
            "(:id, :at, :actor, :device, :entity, :entity_id, :op, :before, :after, :hlc, :mutation_id)"), audits)
        tx._next_seq = seq
        tx._clock = clock
        tx._dirty = True
    return device


class Timed:
    """Wall time of a block, and the CPU time this process and the server spent in it: on
    a shared machine the wall time moves with the load, CPU time much less."""

    def __init__(self, server: Server, figures: dict, key: str, database: DatabaseCpu | None = None) -> None:
        self.server, self.figures, self.key = server, figures, key
        self.database = database or (lambda: None)

    def __enter__(self) -> "Timed":
        self.wall, self.mine, self.theirs = time.perf_counter(), time.process_time(), self.server.cpu()
        self.db = self.database()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.wall
        self.figures[f"{self.key}_s"] = round(self.seconds, 2)
        self.figures[f"{self.key}_cpu_client_s"] = round(time.process_time() - self.mine, 2)
        if self.theirs is not None:
            self.figures[f"{self.key}_cpu_server_s"] = round(self.server.cpu() - self.theirs, 2)
        if self.db is not None:
            self.figures[f"{self.key}_cpu_db_s"] = round(self.database() - self.db, 2)


def bench_central(url: str, label: str, workdir: Path, args, figures: dict) -> None:
    from sync_helpers import make_device
    from tiermeet.sync.client import RoundResult, SyncClient
    from tiermeet.sync.local import pending_count

    token = token_for(url)
    database = DatabaseCpu(url) if url.startswith("postgresql") else None
    server = Server(url, workdir / f"server-{label}.log")
    try:
        device = offline_week(workdir / label, args.mutations)
        pending = pending_count(device.ctx.engine)
        with SyncClient(device.ctx.engine, server_url=server.base, token=token) as client:
            result = RoundResult()
            with Timed(server, figures, f"{label}.push", database):
                client._push_all(result)
            figures[f"{label}.push_mutations"] = pending
            assert result.applied == pending, (result, pending)
        fresh = make_device(workdir / label, "new-kiosk")
        with SyncClient(fresh.ctx.engine, server_url=server.base, token=token) as client:
            with Timed(server, figures, f"{label}.pull", database):
                pulled = client.pull_only().pulled
            figures[f"{label}.pull_changes"] = pulled
        # The bodies are encoded before the clock starts: what is timed is the server taking
        # them in, not this script's JSON encoding.
        bodies = [json.dumps({"signals": [_signal(i) for i in range(start, min(start + 500, args.signals))]}).encode()
                  for start in range(0, args.signals, 500)]
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}",
                                                         "Content-Type": "application/json"}, timeout=60) as http:
            added = 0
            with Timed(server, figures, f"{label}.signals", database) as timed:
                for body in bodies:
                    added += http.post("/v1/signals", content=body).json()["added"]
        figures[f"{label}.signals_per_s"] = round(added / timed.seconds)
        if label == "sqlite":
            figures["decision_p99_ms"] = decision_latency(workdir / label, server.base, token)
    finally:
        server.stop()


def _signal(i: int) -> dict:
    return {"external_id": f"bench-{i}", "source": "pdm-spindle", "model_version": "2.3.1",
            "detected_at": "2026-11-25T07:40:00+01:00", "area": "machining", "line": ["CNC1", "CNC2", "GRIND"][i % 3],
            "asset": f"SP-{i % 200}", "category": "quality", "severity": ["critical", "high", "medium", "low"][i % 4],
            "confidence": 0.5 + (i % 50) / 100, "title": f"Spindle vibration rising ({i})"}


def decision_latency(workdir: Path, base: str, token: str) -> float:
    """p99 of SignalService.decide on a kiosk while that kiosk runs sync rounds."""
    from sqlalchemy import select

    from tiermeet.store.models import Signal
    from tiermeet.sync.client import SyncClient

    device = offline_week(workdir / "latency", 20_000)
    with device.ctx.read() as session:
        ids = [s.id for s in session.scalars(select(Signal))]
    stop = threading.Event()

    def syncing():
        # as the kiosk app syncs: in the background
        with SyncClient(device.ctx.engine, server_url=base, token=token, background=True) as client:
            while not stop.is_set():
                client.run_round()

    worker = threading.Thread(target=syncing)
    worker.start()
    times = []
    try:
        for signal_id in ids[300:800]:
            started = time.perf_counter()
            device.signals.decide(signal_id, actor="anna", kind="monitor", rationale="bench")
            times.append((time.perf_counter() - started) * 1000)
    finally:
        stop.set()
        worker.join()
    times.sort()
    return round(times[int(len(times) * 0.99) - 1], 1)


def clear_previous_run(workdir: Path) -> None:
    """Remove what an earlier run left in a ``--workdir``: its devices would go on with
    their own outboxes and sequence numbers against a fresh central, and fail."""
    for label in ("sqlite", "postgresql"):
        shutil.rmtree(workdir / label, ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        (workdir / f"central.db{suffix}").unlink(missing_ok=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tiermeet-sync-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    clear_previous_run(workdir)
    figures: dict = {"mutations": args.mutations, "cpus": os.cpu_count(), "load_before": round(os.getloadavg()[0], 2)}
    if not args.skip_sqlite:
        bench_central(f"sqlite:///{workdir / 'central.db'}", "sqlite", workdir, args, figures)
    if args.pg:
        from sync_helpers import fresh_pg_url

        bench_central(fresh_pg_url(args.pg, "tiermeet_sync_bench"), "postgresql", workdir, args, figures)
    figures["load_after"] = round(os.getloadavg()[0], 2)
    missed = []
    for key, value in sorted(figures.items()):
        target = TARGETS.get(key.split(".")[-1])
        verdict = ""
        if target is not None:
            ok = value >= target if key.endswith("per_s") else value <= target
            verdict = f"target {'≥' if key.endswith('per_s') else '≤'} {target}: {'ok' if ok else 'MISSED'}"
            if not ok:
                missed.append(key)
        print(f"{key:34} {value:>10}  {verdict}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
