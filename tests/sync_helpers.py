"""Helpers for the sync and server tests: a central server app on a temp database, devices
with their own databases and clocks, and a transport that misbehaves on purpose."""

import atexit
import os
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from tiermeet.domain.clock import FixedClock
from tiermeet.server.app import create_app
from tiermeet.server.db import open_engine
from tiermeet.server.tokens import create_token, upsert_plant
from tiermeet.services.bundle import Services, open_services
from tiermeet.settings import demo_config_text, load_config
from tiermeet.sync.client import SyncClient

PG_ENV = "TIERMEET_TEST_PG_URL"
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


def server_urls(tmp_path: Path) -> list[str]:
    """SQLite always; PostgreSQL when the CI (or a developer) provides one."""
    return [f"sqlite:///{tmp_path / 'central.db'}"] + ([os.environ[PG_ENV]] if os.environ.get(PG_ENV) else [])


def fresh_pg_url(base: str, name: str) -> str:
    """A new, empty database on the PostgreSQL server of ``base`` (dropped first if it exists)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(base)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def pg_url_or_skip(name: str) -> str:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (CI sets it; run .ci/run to test against PostgreSQL)")
    return fresh_pg_url(base, name)


@dataclass
class Central:
    url: str
    app: object
    engine: object
    token: str

    def transport(self) -> httpx.BaseTransport:
        return _ASGISyncTransport(self.app)


class _ASGISyncTransport(httpx.BaseTransport):
    """The FastAPI app reached in-process: httpx's ASGI transport driven from a blocking
    portal, so the synchronous sync client can use it (and several threads at once)."""

    def __init__(self, app) -> None:
        import anyio.from_thread

        self._inner = httpx.ASGITransport(app=app)
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        atexit.register(self.close)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()

        async def call():
            response = await self._inner.handle_async_request(request)
            body = await response.aread()
            return response.status_code, response.headers, body

        status, headers, body = self._portal.call(call)
        return httpx.Response(status, headers=headers, content=body, request=request)

    def close(self) -> None:
        if self._portal_cm is not None:
            self._portal_cm.__exit__(None, None, None)
            self._portal_cm = None


def make_central(url: str, *, plant_config: str | None = None, enterprise: bool = False, now=None, **kw) -> Central:
    engine = open_engine(url)
    app = create_app(url, engine=engine, now=now, **kw)
    from tiermeet.settings import parse_config

    text = plant_config or demo_config_text()
    config = parse_config(text, "test")
    upsert_plant(engine, config.plant.id, config.plant.name, config_toml=text, enterprise=enterprise)
    return Central(url, app, engine, create_token(engine, config.plant.id))


def make_device(tmp_path: Path, name: str, *, at: datetime = NOW, config_text: str | None = None) -> Services:
    from tiermeet.settings import parse_config

    config = parse_config(config_text, name) if config_text else load_config(None)
    return open_services(tmp_path / f"{name}.db", config, clock=FixedClock(at), device_name=name)


def client_for(services: Services, central: Central, *, transport: httpx.BaseTransport | None = None, **kw) -> SyncClient:
    kw.setdefault("wait_initial", 0.001)
    kw.setdefault("wait_max", 0.01)
    return SyncClient(services.ctx.engine, server_url="http://central", token=central.token,
                      transport=transport or central.transport(), now=services.ctx.clock.now, **kw)


class FaultyTransport(httpx.BaseTransport):
    """Wraps a transport and, per call, drops the request, drops the response after the
    server handled it, delivers the request twice, replays an old request later, or
    answers 503 itself — chosen by a seeded random generator."""

    MODES = ("ok", "drop_request", "drop_response", "duplicate", "replay_old", "error_503")

    def __init__(self, inner: httpx.BaseTransport, seed: int, *, fault_rate: float = 0.4) -> None:
        self.inner = inner
        self.random = random.Random(seed)
        self.fault_rate = fault_rate
        self.enabled = True
        self.held: list[httpx.Request] = []
        self.counts: dict[str, int] = {m: 0 for m in self.MODES}

    def _copy(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(request.method, request.url, headers=request.headers, content=request.content)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        mode = "ok"
        if self.enabled and self.random.random() < self.fault_rate:
            mode = self.random.choice(self.MODES[1:])
        self.counts[mode] += 1
        if request.method == "POST":
            self.held.append(self._copy(request))
            self.held = self.held[-5:]
        if mode == "drop_request":
            raise httpx.ConnectError("fault: request dropped")
        if mode == "error_503":
            return httpx.Response(503, json={"code": "busy", "detail": "fault"}, headers={"Retry-After": "0"})
        if mode == "replay_old" and self.held:
            old = self.random.choice(self.held)
            self.inner.handle_request(self._copy(old)).read()
        response = self.inner.handle_request(request)
        response.read()
        if mode == "duplicate":
            again = self.inner.handle_request(self._copy(request))
            again.read()
            return again
        if mode == "drop_response":
            raise httpx.ReadError("fault: response lost after the server committed")
        return response


# --------------------------------------------------------------------------------------
# Comparing a device with the central server
# --------------------------------------------------------------------------------------

import json as _json  # noqa: E402
import uuid as _uuid  # noqa: E402

from sqlalchemy import select as _select, text as _text  # noqa: E402

from tiermeet.store.models_sync import Change, SyncEntity  # noqa: E402
from tiermeet.sync import merge as _merge  # noqa: E402
from tiermeet.sync.local import TABLES, _CONVERT  # noqa: E402
from tiermeet.sync.protocol import AUDIT_ENTITY  # noqa: E402

SYNCED = ("signal", "decision", "action", "escalation", "comment", "meeting", "attendance", "conflict")


def _norm(value):
    if isinstance(value, _uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, (dict, list)):
        return _json.dumps(value, sort_keys=True)
    return value


def _key(entity: str, row: dict) -> str:
    if entity == "attendance":
        return f"{_norm(row['meeting_id'])}:{row['person_id']}"
    return str(_norm(row["id"]))


def central_rows(central: Central, plant_id: str = "riverside") -> dict[str, dict[str, dict]]:
    """Every record the plant can see on the server, projected to table columns."""
    table, changes = SyncEntity.__table__, Change.__table__
    out: dict[str, dict[str, dict]] = {e: {} for e in SYNCED}
    with central.engine.connect() as conn:
        for entity, entity_id, state in conn.execute(
                _select(table.c.entity, table.c.entity_id, changes.c.state)
                .join_from(table, changes, changes.c.server_seq == table.c.server_seq).where(table.c.plant_id == plant_id)):
            row = _merge.project(entity, _json.loads(state))
            if row is None:
                continue
            columns = [c.name for c in TABLES[entity].columns]
            clean = {}
            for name in columns:
                fn = _CONVERT[entity][name]
                value = row.get(name)
                clean[name] = _norm(fn(value) if fn else value)
            out[entity][_key(entity, clean)] = clean
    return out


def device_rows(services: Services) -> dict[str, dict[str, dict]]:
    """The same records as the device holds them."""
    out: dict[str, dict[str, dict]] = {}
    with services.ctx.read() as session:
        for entity in SYNCED:
            table = TABLES[entity]
            rows = session.execute(_select(table)).mappings().all()
            out[entity] = {}
            for row in rows:
                clean = {name: _norm(value) for name, value in row.items()}
                out[entity][_key(entity, clean)] = clean
    return out


def diff(a: dict, b: dict) -> list[str]:
    problems = []
    for entity in SYNCED:
        left, right = a.get(entity, {}), b.get(entity, {})
        for k in sorted(set(left) | set(right)):
            if left.get(k) != right.get(k):
                if k not in left or k not in right:
                    problems.append(f"{entity} {k}: only on {'the first' if k in left else 'the second'}")
                else:
                    cols = [c for c in left[k] if left[k][c] != right[k].get(c)]
                    problems.append(f"{entity} {k}: " + ", ".join(f"{c}={left[k][c]!r}/{right[k].get(c)!r}" for c in cols))
    return problems


#: What identifies an audit entry's content, compared across replicas.
AUDIT_FIELDS = ("actor", "device", "entity", "entity_id", "op", "hlc")


def central_audit(central: Central, plant_id: str = "riverside") -> list[dict]:
    """Every audit entry the plant's devices can pull, in log order (duplicates kept, so a
    test can see them)."""
    changes = Change.__table__
    with central.engine.connect() as conn:
        states = conn.execute(_select(changes.c.state).where(changes.c.entity == AUDIT_ENTITY, changes.c.plant_id == plant_id)
                              .order_by(changes.c.server_seq)).scalars().all()
    return [entry for state in states for entry in _json.loads(state)["entries"]]


def device_audit(services: Services, *, travelling_only: bool = False) -> dict[str, dict]:
    """A device's audit log by entry id (with ``travelling_only``, without the entries that
    stay on the device: the config's reference data)."""
    where = " WHERE NOT (entity = 'person' AND op = 'config')" if travelling_only else ""
    with services.ctx.read() as session:
        rows = session.execute(_text(f"SELECT id, {', '.join(AUDIT_FIELDS)}, before, after FROM audit_log{where}")).all()
    return {str(_uuid.UUID(r[0])): {**dict(zip(AUDIT_FIELDS, r[1:7])),
                                    "before": None if r[7] is None else _json.loads(r[7]),
                                    "after": None if r[8] is None else _json.loads(r[8])} for r in rows}


def outbox_size(services: Services) -> int:
    with services.ctx.read() as session:
        return session.execute(_text("SELECT count(*) FROM outbox")).scalar_one()


def other_plant_config(plant_id: str = "lakeside") -> str:
    """The demo plant's config under another plant id."""
    text = demo_config_text()
    return text.replace('id = "riverside"', f'id = "{plant_id}"', 1).replace("Riverside Works", f"{plant_id.title()} Works", 1)


def add_plant(central: Central, config_text: str, *, enterprise: bool = False) -> str:
    """Register another plant on the server; returns a token for it."""
    from tiermeet.settings import parse_config

    config = parse_config(config_text, "test")
    upsert_plant(central.engine, config.plant.id, config.plant.name, config_toml=config_text, enterprise=enterprise)
    return create_token(central.engine, config.plant.id)


def http(central: Central, token: str | None = None) -> httpx.Client:
    """A plain HTTP client on the central app, with a plant token."""
    headers = {"Authorization": f"Bearer {token or central.token}"} if token != "" else {}
    return httpx.Client(base_url="http://central", transport=central.transport(), headers=headers)


def push_body(client_id: str, mutations: list[dict]) -> dict:
    return {"protocol_version": 1, "client_id": client_id, "mutations": mutations}
