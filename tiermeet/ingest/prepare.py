"""From read rows to the rows an ingest stores: checked, placed by the policy, converted.

All of it needs only the plant's areas, lines and policy, as plain values (a ``Plan`` and
a ``Preparer``: no database, no SQLAlchemy, none of the config's models), so a large file
can be read and prepared in a second process while the first one writes: on two CPUs the
two halves of an ingest then take about as long as the slower one instead of their sum.
``read_and_prepare`` is that second process's work (``python -m tiermeet.ingest.prepare``);
``passed`` and ``prepared`` are shared by both ways.
"""

import collections
import gc
import itertools
import json
import marshal
import operator
import os
import pickle
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO
from zoneinfo import ZoneInfo

from pydantic_core import to_jsonable_python
from uuid_utils import uuid7

from tiermeet.domain.enums import Autonomy, SignalStatus
from tiermeet.domain.placement import Placer
from tiermeet.domain.shifts import ShiftCalendar
from tiermeet.ingest.contract import CHECKED, PAYLOAD, Plan, RecordError, as_record, check_values
from tiermeet.ingest.readers import Problem, Row, read_rows
from tiermeet.store.timetext import to_db_text

if TYPE_CHECKING:
    from tiermeet.settings import Config

AUTONOMOUS, OPEN, ACTIONED = Autonomy.AUTONOMOUS.value, SignalStatus.OPEN.value, SignalStatus.ACTIONED.value

#: Columns of a newly ingested signal, in the order the prepared rows hold them.
COLUMNS = ("id", *CHECKED, "status", "tier", "tier_entered_at", "deadline", "autonomy", "policy_rule", "policy_version")
#: How a prepared row holds a value that is missing (text, and the confidence), and the
#: columns that may miss one: the driver binds None several times slower than any other
#: value (it looks for an adapter first), a signal misses three or four of these, and the
#: insert turns them back into NULL. No checked value is either: the contract reads empty
#: text as missing, and a confidence lies in 0..1.
NO_TEXT, NO_NUMBER = "", -1.0
MAY_MISS = {name: NO_NUMBER if name == "confidence" else NO_TEXT for name in (
    "model_version", "line", "asset", "confidence", "detail", "suggested_action", "evidence_url", "extra")}
#: The columns the writer fills in itself, the same for every row of a transaction but the
#: first deadline (the row's deadline): each value a row does not carry is one the driver
#: does not bind a hundred thousand times.
WRITER_COLUMNS = ("first_deadline", "status_epoch", "ingested_at", "updated_at", "updated_hlc")
SOURCE, STATUS, TIER, DEADLINE, AUTONOMY, RULE, VERSION = (COLUMNS.index(name) for name in (
    "source", "status", "tier", "deadline", "autonomy", "policy_rule", "policy_version"))
TIMES = frozenset({"detected_at", "tier_entered_at", "deadline"})
_SOURCE_AT, _EXTERNAL_ID_AT = CHECKED.index("source"), CHECKED.index("external_id")
#: A checked record's AI output (``PAYLOAD``), in that order.
_payload = operator.itemgetter(*(CHECKED.index(name) for name in PAYLOAD))
#: Columns whose types change the Python value on the way to SQLite; the preparer does that
#: itself, once per value rather than through a bind processor per column per row: ids as
#: 32 hex digits, times by ``to_db_text``, ``extra`` as ``json.dumps`` text. (``confidence``
#: is a Float, whose processor makes a float: the contract already did.)
CONVERTED = frozenset({"id", "extra", "confidence", *TIMES})


def plan_of(config: "Config") -> Plan:
    """The areas, lines and zone that records are checked against."""
    return Plan({a.id: frozenset(ln.id for ln in a.lines) for a in config.areas}, ZoneInfo(config.plant.timezone))


def new_signal_id() -> str:
    """A fresh UUIDv7 as text, made without the standard-library UUID, which costs five
    times the id itself when ids are made by the ten thousand."""
    return str(uuid7())


@dataclass
class Prepared:
    """A part of an ingest ready to store: the driver rows (``COLUMNS``; a missing value as
    ``MAY_MISS`` spells it), the new ids (as text, as sync names them), and, by position,
    the AI output (``PAYLOAD``, JSON-ready) of the rows whose model the policy lets act
    alone: their decisions are made when stored, and keep it as their snapshot. Plain
    values all through, so that a part crosses between processes by ``marshal``, several
    times cheaper than pickle."""

    rows: list[tuple]
    ids: list[str]
    autonomous: dict[int, dict]


class Preparer:
    """Places checked records by the policy and turns them into stored rows. ``now`` is
    when the ingest began: a detection time still ahead of it opens its window then. It
    holds plain values only (the policy as a ``Placer``): the reading process is handed
    one without loading the config's models."""

    def __init__(self, placer: Placer, calendar: ShiftCalendar, top_tier: int, version: str, now: datetime) -> None:
        self.placer, self.calendar, self.top, self.version, self.now = placer, calendar, top_tier, version, now

    @classmethod
    def of(cls, config: "Config", now: datetime) -> "Preparer":
        """The preparer of an ingest under ``config`` that began at ``now``."""
        return cls(config.governance.placer(), config.calendar, config.top_tier, config.governance.version, now)

    def __call__(self, records: list[tuple]) -> Prepared:
        """``records`` as ``check_values`` gives them, ready to store. Each text a column
        repeats from row to row (a model's name, a line, a title) is one object in the
        part: ``marshal`` sends a text it has already sent in a part as a reference to it,
        so a part crosses to the writer in about half the bytes and is read back in about
        half the time."""
        opening, calendar, top, version, now = self.placer.opening, self.calendar, self.top, self.version, self.now
        dumps, one = json.dumps, {}.setdefault
        rows, ids, autonomous = [], [], {}
        for values in records:
            (external_id, source, model_version, kind, detected, area, line, asset, category, severity, severity_rank,
             confidence, title, detail, suggested_action, evidence_url, extra) = values
            placement, start, due = opening(category, severity, source, kind, area, line, confidence, detected, now, top,
                                            calendar)
            autonomy = placement.autonomy.value
            signal_id = new_signal_id()
            detected_text = to_db_text(detected)
            if autonomy == AUTONOMOUS:
                autonomous[len(rows)] = to_jsonable_python(dict(zip(PAYLOAD, _payload(values))))
            rows.append((
                signal_id.replace("-", ""), external_id, one(source, source),
                one(model_version, model_version) if model_version else NO_TEXT, kind, detected_text, one(area, area),
                one(line, line) if line else NO_TEXT, one(asset, asset) if asset else NO_TEXT, category, severity,
                severity_rank, NO_NUMBER if confidence is None else confidence, one(title, title),
                one(detail, detail) if detail else NO_TEXT,
                one(suggested_action, suggested_action) if suggested_action else NO_TEXT, evidence_url or NO_TEXT,
                NO_TEXT if extra is None else one(text := dumps(extra), text), ACTIONED if autonomy == AUTONOMOUS else OPEN,
                placement.start_tier, detected_text if start is detected else to_db_text(start), to_db_text(due),
                autonomy, placement.rule, version,
            ))
            ids.append(signal_id)
        return Prepared(rows, ids, autonomous)


class Checker:
    """Checks records one at a time: against the contract, and against the (source,
    external_id) of every record it passed before. A refused one goes to ``rejected`` as
    (position, field, reason); ``place`` says where positions are ("on line", "at index")."""

    def __init__(self, plan: Plan, rejected: list[tuple[int, str, str]], place: str,
                 seen: dict[tuple[str, str], int] | None = None) -> None:
        self.plan, self.rejected, self.place = plan, rejected, place
        #: (source, external_id) → where it first appeared; ``seen`` holds those of the
        #: records checked elsewhere before these (the head of a file)
        self.first: dict[tuple[str, str], int] = dict(seen or {})

    def __call__(self, position: int, data: dict) -> tuple | None:
        """The record's signal columns (``check_values``), or None when it is refused."""
        try:
            values = check_values(data, self.plan)
        except RecordError as exc:
            self.rejected.append((position, exc.field, exc.reason))
            return None
        key = (values[_SOURCE_AT], values[_EXTERNAL_ID_AT])
        first = self.first.setdefault(key, position)
        if first != position:
            self.rejected.append((position, "external_id",
                                  f"{key[1]!r} from source {key[0]!r} already appears {self.place} {first}"))
            return None
        return values


def checked(items: Iterable[tuple[int, dict]], plan: Plan, rejected: list[tuple[int, str, str]],
            place: str) -> Iterator[tuple[int, dict]]:
    """Each (position, record as ``check_record`` gives it) of ``items`` that the
    ``Checker`` passes."""
    check = Checker(plan, rejected, place)
    for position, data in items:
        values = check(position, data)
        if values is not None:
            yield position, as_record(values)


def batches(rows: Iterable[Row | Problem], config: "Config", now: datetime, rejected: list[tuple[int, str, str]],
            size: int) -> Iterator[Prepared]:
    """``rows`` checked and prepared, ``size`` at a time. A row that cannot be read or is
    refused, or that repeats a (source, external_id) of an earlier line, goes to
    ``rejected`` as (line, field, reason) and never stops the others."""
    return prepared(passed(rows, Checker(plan_of(config), rejected, "on line"), rejected), Preparer.of(config, now), size)


def passed(rows: Iterable[Row | Problem], check: Checker, rejected: list[tuple[int, str, str]]) -> Iterator[tuple]:
    """The checked columns (``check_values``) of each of ``rows`` that ``check`` passes;
    the others go to ``rejected``, as ``batches`` says."""
    for row in rows:
        if type(row) is Problem:
            rejected.append((row.line, row.field, row.reason))
            continue
        values = check(row.line, row.data)
        if values is not None:
            yield values


def prepared(records: Iterable[tuple], prepare: Preparer, size: int) -> Iterator[Prepared]:
    """Checked ``records`` prepared ``size`` at a time."""
    records = iter(records)
    while batch := list(itertools.islice(records, size)):
        yield prepare(batch)


def read_and_prepare(source: BinaryIO, out: BinaryIO) -> None:
    """The second process of a large ingest. Reads its job from ``source``, pickled: (path,
    format, name, the ``Plan`` and the ``Preparer``, part size, byte offset, line number
    there). Plain values, not the config, whose models would take this process longer to
    load than its share of a large file takes to read. Then, pickled too, where each
    (source, external_id) of the lines before that offset first appeared (the writer
    reads those itself). Writes to ``out``, by ``marshal``, each prepared part with the
    rows refused since the one before as ``("part", (rows, ids, autonomous), rejected)``,
    then ``("done", None, rejected)``; or, when reading fails, ``("error", (the exception
    pickled, its traceback as text), rejected)``."""
    # Nothing this process makes refers back to itself: the collector would only walk the
    # records, parts and rows being made, a twentieth of the time spent making them.
    gc.disable()
    path, fmt, name, plan, prepare, size, offset, first_line = pickle.load(source)
    rejected: list[tuple[int, str, str]] = []
    try:
        seen = pickle.load(source)
        check = Checker(plan, rejected, "on line", seen)
        with open(path, "rb") as stream:
            stream.seek(offset)
            for part in prepared(passed(read_rows(stream, name, fmt, first_line), check, rejected), prepare, size):
                _send(out, ("part", (part.rows, part.ids, part.autonomous), rejected))
                rejected.clear()
        _send(out, ("done", None, rejected))
    except Exception as exc:  # noqa: BLE001 - handed to the writing process, which raises it
        _send(out, ("error", (pickle.dumps(_sendable(exc)), traceback.format_exc()), rejected))


class Messages:
    """The messages of ``read_and_prepare``, read from its output by a thread of their own
    that drains the pipe as the reading process fills it: while the writer commits or
    checkpoints, that process goes on preparing parts instead of waiting for the pipe to
    empty. What it runs ahead is held here, up to ``AHEAD_BYTES``; beyond that the pipe
    holds it back again, so a writer kept waiting for the write lock does not buffer a
    whole large file."""

    def __init__(self, stream: BinaryIO) -> None:
        self.fd = stream.fileno()
        self.buffer = bytearray()  # the chunks taken so far, up to a whole message
        self.chunks: collections.deque[bytes] = collections.deque()
        self.held = 0  # bytes read from the pipe, not yet given out as messages
        self.ended = False
        self.changed = threading.Condition()
        self.drain = threading.Thread(target=self._drain, name="ingest-reader-output", daemon=True)
        self.drain.start()

    def close(self) -> None:
        """Wait for the output to end (call once the reading process has ended or been
        killed): the pipe is closed only after nothing reads from it any more."""
        with self.changed:
            self.chunks.clear()  # nothing more is taken: the drain reads on to the end
            self.held = 0
            self.changed.notify_all()
        self.drain.join()

    def _drain(self) -> None:
        while True:
            with self.changed:
                # held back only while the writer has chunks to take: a message longer
                # than the limit is still read whole
                while self.held >= AHEAD_BYTES and self.chunks:
                    self.changed.wait()
            try:
                chunk = os.read(self.fd, _READ_BYTES)
            except OSError:
                chunk = b""
            with self.changed:
                if chunk:
                    self.chunks.append(chunk)
                    self.held += len(chunk)
                else:
                    self.ended = True
                self.changed.notify_all()
            if not chunk:
                return

    def next(self, timeout: float | None = None) -> tuple[str, Prepared | Exception | None, list, str] | None:
        """The next message as (kind, the part or the exception, rows refused, the traceback
        of an error); None when none is whole within ``timeout`` seconds; EOFError when the
        output ends before a whole message."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            size = int.from_bytes(self.buffer[:_HEADER], "big") if len(self.buffer) >= _HEADER else -1
            if 0 <= size <= len(self.buffer) - _HEADER:
                data = memoryview(self.buffer)[_HEADER:_HEADER + size]  # read where it lies, not copied
                try:
                    return _decoded(data)
                finally:
                    data.release()
                    del self.buffer[:_HEADER + size]
                    with self.changed:
                        self.held -= _HEADER + size
                        self.changed.notify_all()
            with self.changed:
                while not self.chunks and not self.ended:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return None
                    self.changed.wait(left)
                if not self.chunks:
                    raise EOFError("the reading process's output ended in the middle of a message")
                self.buffer += self.chunks.popleft()
                self.changed.notify_all()


def _decoded(data: bytes | memoryview) -> tuple[str, Prepared | Exception | None, list, str]:
    kind, payload, rejected = marshal.loads(data)
    if kind == "part":
        return kind, Prepared(*payload), rejected, ""
    if kind == "error":
        return kind, pickle.loads(payload[0]), rejected, payload[1]
    return kind, None, rejected, ""


#: Each message goes as its length (this many bytes) and its ``marshal`` bytes: reading a
#: whole message at once, not value by value from the pipe.
_HEADER = 8
#: Most bytes taken from the pipe at a time (what it holds when widened).
_READ_BYTES = 1024 * 1024
#: Most bytes of messages the writer holds ahead of the one it is writing (about 100,000
#: prepared rows).
AHEAD_BYTES = 64 * 1024 * 1024


def _send(out: BinaryIO, message: tuple) -> None:
    data = marshal.dumps(message)
    write_all(out, len(data).to_bytes(_HEADER, "big") + data)


def write_all(out: BinaryIO, data: bytes) -> None:
    """Write all of ``data`` to a pipe, and flush it. A write the process is stopped in the
    middle of (SIGSTOP or ctrl+z, then SIGCONT) may take only part of the bytes, and says
    how many: the rest follows, or the other end would read the next message from the
    middle of this one."""
    rest = memoryview(data)
    while rest:
        rest = rest[out.write(rest):]
    out.flush()


def _sendable(exc: Exception) -> Exception:
    """``exc``, or one that says the same and survives the trip between processes."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any exception that cannot make the trip
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


if __name__ == "__main__":
    # Run as the module's real name, so that what it sends is unpickled as that module's.
    from tiermeet.ingest.prepare import read_and_prepare as run

    run(sys.stdin.buffer, sys.stdout.buffer)
