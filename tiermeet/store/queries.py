"""The board query, on plain sqlite3: what the first frame of the app needs, and nothing
heavier.

The board reads one page at a time in board order (window deadline, then severity, then
id) with keyset pagination — the next page starts after the last row shown — so a page
costs the same on the first day and after a year of history. Active signals are served
by the partial ``ix_signal_board_*`` indexes, whose WHERE clause this query repeats
word for word so SQLite can use them: a line's board by the line index, an area's by
the area index, and the plant's by merging the boards of its areas. Importing this
module loads no ORM: the board opens before SQLAlchemy has finished importing.
"""

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

from tiermeet.domain.enums import ACTIVE_STATUSES

#: The partial indexes' condition (models.py builds the indexes from the same text).
#: Spelled with OR rather than IN: SQLite evaluates an IN list through a temporary
#: lookup table for every row inserted, a quarter of the cost of an ingest.
ACTIVE_SQL = "(" + " OR ".join(f"status = '{s.value}'" for s in ACTIVE_STATUSES) + ")"
ACTIVE = tuple(s.value for s in ACTIVE_STATUSES)
#: The shelved signals' partial index condition.
SHELVED_SQL = "status = 'shelved'"
BUSY_TIMEOUT_S = 10


@dataclass(slots=True)
class SignalRow:
    """A signal as the board shows it: every column of the ``signal`` table. Not frozen:
    a frozen dataclass of 39 fields costs more to build than the query takes to run."""

    id: uuid.UUID
    external_id: str
    source: str
    model_version: str | None
    kind: str
    detected_at: datetime
    ingested_at: datetime
    area: str
    line: str | None
    asset: str | None
    category: str
    severity: str
    severity_rank: int
    confidence: float | None
    title: str
    detail: str | None
    suggested_action: str | None
    evidence_url: str | None
    extra: dict | None
    status: str
    status_epoch: int
    tier: int
    tier_entered_at: datetime
    deadline: datetime
    autonomy: str
    policy_rule: str
    policy_version: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    shelved_until: datetime | None
    disposition: str | None
    resolved_at: datetime | None
    outcome: dict | None
    updated_at: datetime
    updated_hlc: str
    first_deadline: datetime | None
    first_acknowledged_at: datetime | None
    first_decided_at: datetime | None
    flagged_at: datetime | None


COLUMNS = tuple(f.name for f in fields(SignalRow))
_TIMES = frozenset(f.name for f in fields(SignalRow) if "datetime" in str(f.type))
_JSON = frozenset({"extra", "outcome"})
_SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM signal"


def _utc_text(value: datetime) -> str:
    # Same text as tiermeet.store.types.UTCDateTime stores, so comparisons are exact.
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


def _time(text: str) -> datetime:
    # Stored as naive UTC text (see _utc_text); parsing it with its offset appended is
    # several times cheaper than parsing then replacing tzinfo, and a page converts
    # over a thousand of these.
    return datetime.fromisoformat(text + "+00:00")


def _json_value(text: str):
    return None if text == "null" else json.loads(text)


#: The columns whose stored value needs converting, by position, each with its converter
#: (the others are used as stored).
_CONVERT = tuple(
    (i, (lambda text: uuid.UUID(hex=text)) if name == "id" else _time if name in _TIMES else _json_value)
    for i, name in enumerate(COLUMNS) if name == "id" or name in _TIMES or name in _JSON
)


def _row(values: tuple) -> SignalRow:
    row = list(values)
    for i, convert in _CONVERT:
        if row[i] is not None:
            row[i] = convert(row[i])
    return SignalRow(*row)


@dataclass(frozen=True)
class Scope:
    """Which signals a board shows: a tier (or all) and a line, an area or the whole plant."""

    tier: int | None = None
    line: str | None = None
    area: str | None = None


@dataclass(frozen=True)
class Filters:
    """Narrowing on top of the scope; ``statuses`` None means the active ones."""

    statuses: tuple[str, ...] | None = None
    category: str | None = None
    source: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended, in board order."""

    deadline: datetime
    severity_rank: int
    id: uuid.UUID

    @classmethod
    def after(cls, signal) -> "Cursor":
        """The cursor that continues after ``signal``."""
        return cls(signal.deadline, signal.severity_rank, signal.id)


#: The areas with active signals at a tier (the statement's one parameter), found by one
#: step through the area index per area rather than by reading those signals.
AREAS_SQL = f"""WITH RECURSIVE found(area) AS (
    SELECT min(area) FROM signal WHERE tier = ?1 AND {ACTIVE_SQL}
    UNION ALL
    SELECT (SELECT min(area) FROM signal WHERE tier = ?1 AND {ACTIVE_SQL} AND area > found.area) FROM found
    WHERE area IS NOT NULL)
SELECT area FROM found WHERE area IS NOT NULL"""
#: Most SELECTs SQLite joins in one compound statement (its SQLITE_MAX_COMPOUND_SELECT),
#: and most parameters an older SQLite takes in one statement.
_MAX_AREAS = 500
_MAX_PARAMS = 999


def plant_areas(conn: sqlite3.Connection, scope: Scope, filters: Filters = Filters()) -> list[str] | None:
    """For the board of a whole plant at one tier showing its active signals, the areas
    that have any; None for any other board, and for a plant of more areas than one
    statement can merge.

    There is no index of a tier's signals in board order (each index is one more insert
    for every ingested signal): the area index serves each area's board in that order,
    and SQLite merges them, reading no more rows than the page shows."""
    plant = scope.tier is not None and scope.line is None and scope.area is None
    if not plant or tuple(filters.statuses or ACTIVE) != ACTIVE:
        return None
    areas = [area for (area,) in conn.execute(AREAS_SQL, (scope.tier,))]
    return areas if 0 < len(areas) <= _MAX_AREAS else None


def board_sql(scope: Scope, filters: Filters = Filters(), after: Cursor | None = None, limit: int = 200,
              signal_id: uuid.UUID | None = None, areas: list[str] | None = None) -> tuple[str, list]:
    """The SQL text and parameters of one board page (or, with ``signal_id``, of that one
    signal if the board shows it); with ``areas`` (``plant_areas``), the page merged from
    the boards of those areas, when the statement stays within SQLite's limits."""
    where, params = [], []
    if signal_id is not None:
        where.append("id = ?")
        params.append(signal_id.hex)
    statuses = filters.statuses or ACTIVE
    if tuple(statuses) == ACTIVE:
        where.append(ACTIVE_SQL)
    else:
        where.append("status IN (" + ", ".join("?" for _ in statuses) + ")")
        params += statuses
    for column, value in (("tier", scope.tier), ("category", filters.category), ("source", filters.source)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if scope.line is not None:
        where.append("line = ?")
        params.append(scope.line)
    elif scope.area is not None:
        where.append("area = ?")
        params.append(scope.area)
    if filters.text:
        pattern = "%" + filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(title LIKE ? ESCAPE '\\' OR asset LIKE ? ESCAPE '\\' OR detail LIKE ? ESCAPE '\\')")
        params += [pattern] * 3
    if after is not None:
        where.append("(deadline, severity_rank, id) > (?, ?, ?)")
        params += [_utc_text(after.deadline), after.severity_rank, after.id.hex]
    order = "ORDER BY deadline, severity_rank, id LIMIT ?"
    if areas and len(areas) * (len(params) + 1) < _MAX_PARAMS:
        arm = f"{_SELECT} WHERE {' AND '.join(where)} AND area = ?"
        return f"{' UNION ALL '.join([arm] * len(areas))} {order}", [*(p for a in areas for p in (*params, a)), limit]
    return f"{_SELECT} WHERE {' AND '.join(where)} {order}", [*params, limit]


def connect_read(path: Path) -> sqlite3.Connection:
    """A connection for short reads (WAL lets them run beside writers)."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    return conn


def board_page(conn: sqlite3.Connection, scope: Scope, filters: Filters = Filters(), after: Cursor | None = None,
               limit: int = 200) -> list[SignalRow]:
    """One page of a board, in board order."""
    with _snapshot(conn):  # the areas found and the page read from one state of the database
        sql, params = board_sql(scope, filters, after, limit, areas=plant_areas(conn, scope, filters))
        return [_row(values) for values in conn.execute(sql, params)]


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction around the statements inside, unless one is open already."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def board_row(conn: sqlite3.Connection, scope: Scope, filters: Filters, signal_id: uuid.UUID) -> SignalRow | None:
    """One signal as a board shows it, or None once it has left that board (closed,
    escalated, filtered out): after a change the board redraws that row alone, and the
    board's own conditions decide whether it stays."""
    sql, params = board_sql(scope, filters, None, 1, signal_id)
    values = conn.execute(sql, params).fetchone()
    return None if values is None else _row(values)
