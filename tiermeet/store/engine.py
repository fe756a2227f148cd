"""The engine factory: SQLite set up for several kiosks sharing one file safely.

Every connection gets WAL, ``synchronous=FULL``, foreign keys and a busy timeout, and
pysqlite's own implicit transactions are switched off so that tiermeet decides how each
transaction begins: writes with ``BEGIN IMMEDIATE`` (take the write lock up front, so two
writers queue on the busy timeout instead of failing with "database is locked" on the
upgrade from read to write), reads with a plain deferred ``BEGIN``.
Nothing here runs at import time: engines are made when the command line or a test asks.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session

BUSY_TIMEOUT_MS = 10_000

WAL = "PRAGMA journal_mode=WAL"
#: Pages of 8 KiB rather than SQLite's 4 KiB, for a database made by this version: a signal
#: row is about 700 bytes, and every ingested signal enters the (source, external_id) index
#: at a random place, so each committed batch writes a page per new entry there. Twice the
#: page holds twice the entries: fewer pages to write, log and copy back, and a bulk insert
#: into a million signals a tenth faster at the batch size ingest uses. A page size can
#: only be set before the first table exists, and before the switch to WAL; on an existing
#: database this does nothing.
PAGE_SIZE = "PRAGMA page_size=8192"

PRAGMAS = (
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",  # first: switching to WAL may have to wait
    PAGE_SIZE,
    WAL,
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    # A checkpoint copies every page changed since the last one back into the database
    # file and syncs it. At SQLite's default (every 1,000 pages, 4 MB) a bulk ingest into a
    # large plant checkpoints every few batches and copies the same hot index pages again
    # each time; every 10,000 pages halves the ingest's wall time. Once checkpointed, the
    # WAL file is cut back to 64 MB so a burst does not leave a large file behind.
    "PRAGMA wal_autocheckpoint=10000",
    "PRAGMA journal_size_limit=67108864",
)


#: Added for one bulk write of many rows (an ingest), on an engine of its own that lives as
#: long as the write. A page cache of 128 MB holds the index pages a batch of thousands of
#: rows touches again and again, so each is read and written once per transaction instead
#: of spilling; and no checkpoint runs in the middle of the writing: each one copies the hot
#: index pages back into the database again, which halved the rate of an ingest into a
#: million signals. The bulk writer checkpoints itself (``checkpoint``): at its end, and
#: sooner only when its WAL has grown very large.
BULK_PRAGMAS = (
    "PRAGMA cache_size=-131072",
    "PRAGMA wal_autocheckpoint=0",
)


def _on_connect(dbapi_connection, _record, extra: tuple[str, ...] = ()) -> None:
    dbapi_connection.isolation_level = None  # tiermeet emits BEGIN itself
    cursor = dbapi_connection.cursor()
    for pragma in (*PRAGMAS, *extra):
        if pragma == WAL:
            _switch_to_wal(cursor)
        else:
            cursor.execute(pragma)
    cursor.close()


def _is_locked(exc: Exception) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _switch_to_wal(cursor) -> None:
    """Put the database in WAL mode, waiting out another process doing the same.

    Two kiosks creating the same new database at once both switch it to WAL, and each
    switch needs the read lock the other one holds. SQLite answers the loser "database is
    locked" at once instead of waiting on the busy timeout (it would be a deadlock), so
    the switch is retried here for as long as the busy timeout would have waited. The
    retry library is imported only then: it costs start-up time nobody else should pay.
    """
    try:
        cursor.execute(WAL)
    except sqlite3.OperationalError as exc:
        if not _is_locked(exc):
            raise
        import stamina

        for attempt in stamina.retry_context(on=_is_locked, attempts=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                             wait_initial=0.005, wait_max=0.1):
            with attempt:
                cursor.execute(WAL)


def _on_begin(connection) -> None:
    write = connection.get_execution_options().get("tiermeet_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(path: Path, *, bulk: bool = False) -> Engine:
    """An engine on the SQLite file at ``path`` (its folder is created if missing); with
    ``bulk``, set up for one large write (``BULK_PRAGMAS``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )
    extra = BULK_PRAGMAS if bulk else ()
    event.listen(engine, "connect", lambda connection, record: _on_connect(connection, record, extra))
    event.listen(engine, "begin", _on_begin)
    return engine


def checkpoint(engine: Engine) -> None:
    """Copy what the WAL holds back into the database file, without waiting for readers
    (a PASSIVE checkpoint: what a reader still needs stays in the WAL for a later one)."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def writer(engine: Engine) -> Engine:
    """The same engine, but its transactions begin with BEGIN IMMEDIATE."""
    return engine.execution_options(tiermeet_write=True)


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One write transaction: committed when the block ends, rolled back on any error."""
    with Session(writer(engine), expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A short read transaction (long ones hold back WAL checkpoints)."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
