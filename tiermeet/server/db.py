"""The server's database: SQLite for a small site or a plant hub, PostgreSQL for many plants.

Both are migrated with the same Alembic scripts as a device's database. Write transactions
are serialized on one row (``sync_meta.global_version``): on SQLite by ``BEGIN IMMEDIATE``,
on PostgreSQL by ``SELECT … FOR UPDATE`` on that row, so ``server_seq`` values are handed
out in commit order and a puller never sees seq n+1 before seq n.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, bindparam, case, create_engine, select, update
from sqlalchemy.engine import make_url

from tiermeet.store.models_sync import SyncMeta

META = SyncMeta.__table__
EPOCH, VERSION, CLOCK = "server_epoch", "global_version", "hlc"
#: Key of the PostgreSQL advisory lock held while migrating (several instances may start at once).
_MIGRATE_LOCK = 0x7469_6572
# The statements every write request runs, built once: building them took a sizeable share
# of a small request's CPU.
_READ_META = select(META.c.key, META.c.value, META.c.number).where(META.c.key.in_((EPOCH, VERSION, CLOCK)))
_LOCK_META = _READ_META.order_by(META.c.key).with_for_update()
_SAVE_META = (update(META).where(META.c.key.in_((VERSION, CLOCK)))
              .values(number=case((META.c.key == VERSION, bindparam("version")), else_=META.c.number),
                      value=case((META.c.key == CLOCK, bindparam("clock")), else_=META.c.value)))


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL, or None for another database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise ValueError("the server needs a database file, not an in-memory SQLite database")
    return Path(parsed.database)


def open_engine(url: str) -> Engine:
    """An engine on ``url`` (SQLite with tiermeet's pragmas and BEGIN IMMEDIATE, or PostgreSQL)."""
    path = sqlite_path(url)
    if path is not None:
        from tiermeet.store.engine import make_engine

        return make_engine(path)
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the server database to the newest schema (after a backup, on SQLite)."""
    if engine.dialect.name == "sqlite":
        from tiermeet.store.migrate import upgrade

        upgrade(engine, Path(engine.url.database))
    else:
        from alembic import command

        from tiermeet.store.migrate import _alembic_config

        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATE_LOCK})")
            command.upgrade(_alembic_config(connection), "head")
    ensure_meta(engine)


def _insert_ignore(connection: Connection, table, rows: list[dict]) -> None:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    connection.execute(insert(table).on_conflict_do_nothing(), rows)


def ensure_meta(engine: Engine) -> None:
    """Create the server facts if this is a new server: a fresh epoch, version 0."""
    with transaction(engine) as connection:
        _insert_ignore(connection, META, [
            {"key": EPOCH, "value": str(uuid.uuid4()), "number": 0},
            {"key": VERSION, "value": None, "number": 0},
            {"key": CLOCK, "value": "0" * 16, "number": 0},
        ])


def new_epoch(engine: Engine) -> str:
    """Start a new server epoch (after restoring a backup): every device resyncs and
    pushes again what the restored database may have lost."""
    epoch = str(uuid.uuid4())
    with transaction(engine) as connection:
        connection.execute(update(META).where(META.c.key == EPOCH).values(value=epoch))
    return epoch


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction (BEGIN IMMEDIATE on SQLite)."""
    with engine.connect() as connection, write_transaction(connection):
        yield connection


@contextmanager
def write_transaction(connection: Connection) -> Iterator[Connection]:
    """One write transaction on an open connection that is not in one (BEGIN IMMEDIATE on
    SQLite, where a plain BEGIN would fail rather than wait when another writer is first)."""
    if connection.dialect.name == "sqlite":
        connection = connection.execution_options(tiermeet_write=True)
    with connection.begin():
        yield connection


def _meta(rows) -> tuple[int, str, str]:
    found = {key: (value, number) for key, value, number in rows}
    return int(found[VERSION][1]), found[EPOCH][0], found[CLOCK][0]


def lock_version(connection: Connection) -> tuple[int, str, str]:
    """Take the serialization lock (on PostgreSQL the server facts' rows, always in key
    order, read in the same statement); returns (global_version, epoch, server hlc)."""
    return _meta(connection.execute(_LOCK_META if connection.dialect.name == "postgresql" else _READ_META))


def save_version(connection: Connection, version: int, clock: str) -> None:
    """Record the new global version and server clock (one statement), in the locking transaction."""
    connection.execute(_SAVE_META, {"version": version, "clock": clock})


def read_meta(connection: Connection) -> tuple[int, str, str]:
    """(global_version, epoch, server hlc) without locking."""
    return _meta(connection.execute(_READ_META))


def utcnow() -> datetime:
    from datetime import timezone

    return datetime.now(timezone.utc)
