"""Bulk ingest of signals: validated rows in, batches of prepared inserts out.

Rows are checked one by one (a bad row is reported with its line and never stops the
good ones), then written in batches: each batch is one transaction holding the new
signals and, for every ``SYNC_BATCH`` of them, one audit entry and one ``signal.ingest``
sync mutation naming the ids. The payload of a signal is immutable, so the sync client
reads it from the signal table when it pushes instead of copying it into the outbox.
Re-ingesting the same (source, external_id) is a no-op, counted as a duplicate.

Reading, checking and placing rows is Python work (``ingest.prepare``); storing a batch
is mostly SQLite's. Threads cannot overlap the two (each row SQLite stores takes the
interpreter lock back), so a large file is read and prepared in a second process while
this one writes, and takes about as long as the slower half instead of their sum. Batches
are still written one at a time and in file order, each whole or not at all, and the
write lock is never held while rows are awaited from a source that may be slow.
"""

import collections
import io
import itertools
import json
import pickle
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import nullcontext, suppress
from functools import cache
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from tiermeet.domain.enums import Autonomy, DecisionKind
from tiermeet.ingest.prepare import (
    ACTIONED, AUTONOMY, COLUMNS, CONVERTED, DEADLINE, MAY_MISS, OPEN, RULE, SOURCE, STATUS, TIER, VERSION, WRITER_COLUMNS, Checker,
    Messages, Prepared, Preparer, batches, passed, plan_of, prepared, write_all,
)
from tiermeet.ingest.readers import Problem, Row, read_rows
from tiermeet.services.context import Context
from tiermeet.services.unit import Change, new_id
from tiermeet.store.engine import checkpoint
from tiermeet.store.models import Decision, ModelSuspension, Signal
from tiermeet.store.types import to_db_text

#: Rows per transaction, at most. Each new signal enters the (source, external_id) index at
#: a random place, so a commit rewrites most of that index's pages whatever the batch's
#: size; the fewer commits, the fewer times each page is written: from 20,000 to 50,000
#: rows a batch, the database's own part of an ingest into a million signals is about a
#: tenth less. A batch fed by the reading process also ends after ``BATCH_SECONDS``.
BATCH = 50_000
#: Rows per ``signal.ingest`` mutation (a batch writes several): the sync client sends each
#: one with its signals' payloads, and 10,000 of them stay well inside a push's size limit.
SYNC_BATCH = 10_000
#: Rows read, checked and prepared at a time, and inserted at a time: a file read in a
#: second process reaches the writer in parts this small, inserted into the open batch as
#: they come, so that writing starts soon and neither process waits long for the other.
PART = 1_000
#: Lines of a large JSON Lines file the writer reads itself, at most (and bytes, at most),
#: while the reading process starts: its share of the reading. Storing every row is the
#: writer's larger half of the work, so its share is about what it prepares in the tenth
#: of a second that process takes to start (measured on two CPUs: 4,000 and 12,000 lines
#: were both slower into a million signals).
HEAD_ROWS = 7_000
HEAD_BYTES = 8 * 1024 * 1024
#: How long a batch waits for the reading process's next part, and how long it stays open
#: at most, before it is committed with the parts it has.
WAIT_IN_BATCH = 0.1
BATCH_SECONDS = 1.0
#: What the pipe from the reading process holds (Linux lets a process ask for up to this).
PIPE_BYTES = 1024 * 1024
#: Files at least this large are read in a second process (starting it costs about a
#: fifth of a second; below this size the file takes less than that to read).
SECOND_PROCESS_BYTES = 8 * 1024 * 1024
#: How long the reading process may take to end once it has sent everything.
READER_EXIT_SECONDS = 10
#: A bulk write checkpoints itself when its WAL grows past this, so that a very large file
#: neither leaves a WAL of gigabytes nor hands the copying to the next kiosk that writes.
BULK_WAL_BYTES = 512 * 1024 * 1024
INGEST_ACTOR = "system:ingest"
SIGN_OFF = Autonomy.SIGN_OFF.value
#: What a transaction writes into the columns prepared rows do not carry, as SQL: written
#: into the statement, they are not bound again for every row.
_STAMP = re.compile(r"[0-9a-f]{16}")
_NOW = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}")


def _insert_sql(now: str, stamp: str) -> str:
    """The statement that inserts prepared rows in a transaction that began at ``now`` (as
    stored) under clock ``stamp``, each missing value (``MAY_MISS``) as NULL. A signal
    already stored under its (source, external_id) is left as it is and counted as a
    duplicate: the unique index finds it while inserting, with no lookup of its own."""
    if not (_NOW.fullmatch(now) and _STAMP.fullmatch(stamp)):
        raise ValueError(f"not a stored time and a clock stamp: {now!r}, {stamp!r}")
    values = ", ".join(f"NULLIF(?{i}, {MAY_MISS[name]!r})" if name in MAY_MISS else f"?{i}"
                       for i, name in enumerate(COLUMNS, start=1))
    return (f"INSERT INTO signal ({', '.join(COLUMNS + WRITER_COLUMNS)}) "
            f"VALUES ({values}, ?{DEADLINE + 1}, 0, '{now}', '{now}', '{stamp}') "
            "ON CONFLICT (source, external_id) DO NOTHING")


@dataclass
class IngestReport:
    """What one ingest run did; ``rejected`` holds (line, field, reason) per refused row."""

    added: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """``N added, M duplicates, K rejected``."""
        return f"{self.added} added, {self.duplicates} duplicates, {len(self.rejected)} rejected"

    def merge(self, other: "IngestReport") -> None:
        """Add another file's counts to this one (its rejections stay with that file)."""
        self.added += other.added
        self.duplicates += other.duplicates


class IngestError(RuntimeError):
    """The process reading a large file stopped or ended badly; also the cause, holding its
    traceback, of an error that process met and handed on."""


class IngestService:
    """Adds signals from files or the API."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def ingest(self, rows: Iterable[Row | Problem], *, origin: str, actor: str = INGEST_ACTOR) -> IngestReport:
        """Check and store ``rows``; ``origin`` (a file name) goes into the audit entry."""
        report = IngestReport()
        groups = _gathered(batches(rows, self.ctx.config, self.ctx.clock.now(), report.rejected, PART))
        first = next(groups, None)
        if first is None:
            return report
        # A full first batch may have many behind it: that write gets an engine of its own.
        with self.ctx.bulk() if sum(len(part.rows) for part in first) >= BATCH else nullcontext(self.ctx) as target:
            _Writer(target, report, origin, actor).write(itertools.chain([first], groups))
        return report

    def ingest_file(self, path: Path, fmt: str, *, origin: str, actor: str = INGEST_ACTOR) -> IngestReport:
        """``ingest`` of a JSON Lines or CSV file; one of ``SECOND_PROCESS_BYTES`` or more is
        read and prepared in a second process while this one writes. Of a JSON Lines file,
        this process reads the first lines itself while that process starts."""
        if Path(path).stat().st_size < SECOND_PROCESS_BYTES:
            with open(path, "rb") as stream:
                return self.ingest(read_rows(stream, origin, fmt), origin=origin, actor=actor)
        report = IngestReport()
        plan, prepare = plan_of(self.ctx.config), Preparer.of(self.ctx.config, self.ctx.clock.now())
        head = _head(path) if fmt == "jsonl" else b""
        job = (str(path), fmt, origin, plan, prepare, PART, len(head), head.count(b"\n") + 1)
        # A fresh interpreter, not a fork: this process may hold database connections and
        # threads that a forked child must not inherit. -P keeps the working directory off
        # its path, so that it imports the same tiermeet as this process.
        with subprocess.Popen([sys.executable, "-P", "-m", "tiermeet.ingest.prepare"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE) as reader:
            _widen(reader.stdout)
            _widen(reader.stdin)
            messages = Messages(reader.stdout)
            try:
                _tell(reader, job)
                check = Checker(plan, report.rejected, "on line")
                records = list(passed(read_rows(io.BytesIO(head), origin, fmt), check, report.rejected))
                _tell(reader, check.first)  # all that process waits for: it starts while these are prepared
                first = list(prepared(records, prepare, PART))
                with suppress(BrokenPipeError):
                    reader.stdin.close()
                with self.ctx.bulk() as bulk:
                    _Writer(bulk, report, origin, actor).write(_Flow(first, reader, messages, origin, report))
                if reader.wait(READER_EXIT_SECONDS) != 0:
                    raise IngestError(f"the process reading {origin} ended with exit code {reader.returncode}")
            except BaseException:
                reader.kill()
                raise
            finally:
                messages.close()  # the process has ended: its output does too
        return report


def _head(path: Path) -> bytes:
    """The first whole lines of a file, up to ``HEAD_ROWS`` of them and ``HEAD_BYTES``: what
    the writer reads itself while the reading process starts."""
    with open(path, "rb") as stream:
        data = stream.read(HEAD_BYTES)
    end = -1
    for _ in range(HEAD_ROWS):
        found = data.find(b"\n", end + 1)
        if found < 0:
            break
        end = found
    return data[:end + 1]


def _tell(reader: subprocess.Popen, value) -> None:
    """Send ``value`` to the reading process. One that has already ended takes nothing: the
    writer then learns how it ended from what it sent, or did not."""
    try:
        write_all(reader.stdin, pickle.dumps(value))
    except BrokenPipeError:
        pass


def _widen(pipe) -> None:
    """Let a pipe between the processes hold a megabyte (Linux; 64 KiB otherwise): the
    reading process's output is taken a megabyte at a time; and the writer hands over the
    keys of the lines it read itself (a few hundred kilobytes), and goes on to prepare and
    write them, without waiting for that process to start."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass


def _gathered(parts: Iterator[Prepared]) -> Iterator[list[Prepared]]:
    """``parts`` in batches of ``BATCH`` rows or more (the last may have fewer), each read
    whole before its transaction begins: rows read in this process, from a file or a pipe
    of unknown speed, are never waited for while the write lock is held."""
    batch, rows = [], 0
    for part in parts:
        batch.append(part)
        rows += len(part.rows)
        if rows >= BATCH:
            yield batch
            batch, rows = [], 0
    if batch:
        yield batch


class _Flow:
    """The parts of a file read in two processes, in batches as they come: first the parts
    the writer read itself, then those the reading process sends. A batch takes each part
    as it arrives, up to ``BATCH`` rows; if the next one keeps it waiting more than
    ``WAIT_IN_BATCH``, or the batch has been open for ``BATCH_SECONDS``, it ends with what
    it has, so that a slow or stalled reading process never holds the write lock."""

    def __init__(self, own: list[Prepared], reader: subprocess.Popen, messages: Messages, origin: str,
                 report: IngestReport) -> None:
        self.own, self.reader, self.messages = collections.deque(own), reader, messages
        self.origin, self.report = origin, report
        self.done = False

    def __iter__(self) -> Iterator[Iterator[Prepared]]:
        while (part := self._next(None)) is not None:  # outside any transaction
            yield self._batch(part)

    def _batch(self, part: Prepared) -> Iterator[Prepared]:
        rows, ends = 0, time.monotonic() + BATCH_SECONDS
        while part is not None:
            yield part
            rows += len(part.rows)
            if rows >= BATCH or time.monotonic() > ends:
                return
            part = self._next(WAIT_IN_BATCH)

    def _next(self, timeout: float | None) -> Prepared | None:
        """The next part; None at the end, or when none comes within ``timeout``. The rows the
        reading process refused go to the report, and an error it met is raised here, with
        its traceback."""
        if self.own:
            return self.own.popleft()
        if self.done:
            return None
        try:
            message = self.messages.next(timeout)
        except EOFError:
            try:
                code = self.reader.wait(READER_EXIT_SECONDS)
            except subprocess.TimeoutExpired:
                code = "none yet"
            raise IngestError(f"the process reading {self.origin} stopped (exit code {code}); "
                              "every batch stored before it stopped is kept whole") from None
        if message is None:
            return None
        kind, payload, rejected, where = message
        self.report.rejected.extend(rejected)
        if kind == "error":
            raise payload from IngestError(f"in the process reading {self.origin}:\n{where}")
        self.done = kind == "done"
        return None if self.done else payload


class _Writer:
    """Stores batches of prepared parts, one transaction each. Prepared rows carry each
    value as the driver takes it (``ingest.prepare.CONVERTED``): a column type that starts
    converting values some other way stops ingest here, rather than letting it store
    something different."""

    def __init__(self, ctx: Context, report: IngestReport, origin: str, actor: str) -> None:
        self.ctx, self.report, self.origin, self.actor = ctx, report, origin, actor
        self.wal = Path(f"{ctx.db_path}-wal")
        _check_conversions(type(ctx.engine.dialect))

    def write(self, batches: Iterable[Iterable[Prepared]]) -> None:
        """Each batch in a transaction of its own; the report counts a batch once it is
        committed. A part that cannot be read undoes the batch it was to join, never one
        before it."""
        for parts in batches:
            with self.ctx.tx(self.actor) as tx:
                batch = _Batch(tx, self.origin)
                for part in parts:
                    batch.add(part)
                batch.close()
            self.report.added += batch.added
            self.report.duplicates += batch.duplicates
            if self.wal.exists() and self.wal.stat().st_size > BULK_WAL_BYTES:
                checkpoint(self.ctx.engine)


class _Batch:
    """One transaction of an ingest: its parts' rows, and for every ``SYNC_BATCH`` of them a
    ``signal.ingest`` mutation with its audit entry, followed by the decisions of the
    models that act alone, each in its signal's own history."""

    def __init__(self, tx, origin: str) -> None:
        self.tx, self.origin = tx, origin
        self.connection = tx.session.connection()
        self.now = to_db_text(tx.now)
        self.suspended = set(tx.session.scalars(select(ModelSuspension.source).where(ModelSuspension.resumed_at.is_(None))))
        self.added = self.duplicates = 0
        self.stamp: str | None = None
        self.insert = ""
        self.ids: list[str] = []
        self.decisions: list[dict] = []

    def add(self, part: Prepared) -> None:
        if self.stamp is not None and len(self.ids) + len(part.rows) > SYNC_BATCH:
            self._mutation()
        if self.stamp is None:
            self.stamp = self.tx.stamp()
            self.insert = _insert_sql(self.now, self.stamp)
        rows = part.rows
        for i in part.autonomous:
            if rows[i][SOURCE] in self.suspended:
                rows[i] = _without_autonomy(rows[i])
        added = self.connection.exec_driver_sql(self.insert, rows).rowcount
        self.duplicates += len(rows) - added
        if not added:
            return
        every = added == len(rows)  # the usual case: no duplicate, nothing to look up
        keep = range(len(rows)) if every else _stored(self.connection, rows)
        self.ids += part.ids if every else [part.ids[i] for i in keep]
        kept = keep if every else set(keep)
        acting = [i for i in part.autonomous if i in kept and rows[i][STATUS] == ACTIONED]
        self.decisions += [_autonomous_decision(part.autonomous[i], part.ids[i], rows[i], self.tx.now, self.stamp)
                           for i in acting]
        self.added += len(keep)

    def close(self) -> None:
        self._mutation()

    def _mutation(self) -> None:
        """The ``signal.ingest`` mutation of the rows added since the last one."""
        ids, decisions, tx = self.ids, self.decisions, self.tx
        if decisions:
            self.connection.execute(Decision.__table__.insert(), decisions)
        if ids:
            tx.record(entity="signal", entity_id=ids[0], op="ingest", mutation="signal.ingest",
                      args={"signal_ids": ids, "autonomous_decisions": [d["id"] for d in decisions]},
                      after={"origin": self.origin, "count": len(ids), "last_id": ids[-1], "autonomous": len(decisions)},
                      stamp=self.stamp)
        if decisions:
            # after the mutation that carries these entries to the other devices, and the
            # decisions themselves
            tx.record_many(entity="signal", op="decide:act", mutation=None, changes=[
                Change(d["signal_id"], after={"decision_id": d["id"], "by": d["decided_by"]}) for d in decisions])
        self.stamp, self.ids, self.decisions = None, [], []


@cache
def _check_conversions(dialect_class: type) -> None:
    """Refuse to ingest if a column type of ``signal`` converts values other than the way
    prepared rows already hold them; asked once per database driver, not per ingest."""
    dialect = dialect_class()
    table = Signal.__table__
    for name in COLUMNS:
        if name not in CONVERTED and table.c[name].type.dialect_impl(dialect).bind_processor(dialect) is not None:
            raise RuntimeError(f"signal.{name} converts its values; ingest's prepared rows would store them unconverted")
    to_json = table.c.extra.type.dialect_impl(dialect).bind_processor(dialect)
    sample = {"text": "é", "list": [1, 2.5, None, True]}
    if to_json(None) is not None or to_json(sample) != json.dumps(sample):
        raise RuntimeError("signal.extra stores JSON differently from json.dumps, which prepared rows use")


def _without_autonomy(row: tuple) -> tuple:
    """A prepared row whose model is suspended: open for a person's sign-off instead."""
    changed = list(row)
    changed[STATUS], changed[AUTONOMY] = OPEN, SIGN_OFF
    changed[RULE] = f"{row[RULE]} (autonomy suspended)"
    return tuple(changed)


def _autonomous_decision(snapshot: dict, signal_id: str, row: tuple, now: datetime, stamp: str) -> dict:
    """The decision an autonomous model makes alone at ingest, kept for a person's review."""
    action = snapshot["suggested_action"] or "act on its own signal"
    tier, rule, version = row[TIER], row[RULE], row[VERSION]
    return {"id": new_id(), "signal_id": uuid.UUID(signal_id), "source": snapshot["source"], "kind": DecisionKind.ACT.value,
            "rationale": f"autonomous under rule {rule!r}: {action}", "disposition": None,
            "shelved_until": None, "decided_by": f"ai:{snapshot['source']}", "decided_at": now, "tier": tier,
            "meeting_id": None, "policy_version": version,
            "ai_snapshot": snapshot, "supersedes": None, "hlc": stamp}


#: Most ids looked up in one statement (old SQLite builds allow 999 parameters).
_LOOKUP_CHUNK = 500


def _stored(connection, rows: list[tuple]) -> list[int]:
    """The positions of ``rows`` the insert stored (the others were duplicates), found by
    their new ids: asked only when a part held duplicates."""
    found: set[str] = set()
    ids = [row[0] for row in rows]
    for i in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[i:i + _LOOKUP_CHUNK]
        sql = f"SELECT id FROM signal WHERE id IN ({', '.join('?' * len(chunk))})"
        found.update(value for (value,) in connection.exec_driver_sql(sql, tuple(chunk)))
    return [i for i, signal_id in enumerate(ids) if signal_id in found]
