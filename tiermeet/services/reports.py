"""The governance report: the metrics of ``tiermeet.domain.metrics``, computed in SQL.

``tiermeet.domain.metrics`` defines every number over plain records; this module gets the
same numbers by aggregating in the database (a property test holds the two equal on
random histories), so a report over a million signals reads a few thousand grouped rows
instead of a million objects.

How it stays fast. SQLite groups by sorting, and sorting a million rows on several text
columns (carrying the values to sum) costs seconds, so each big pass first folds
everything a row is grouped on — model, area, line, category, tier, the counting flags,
the trend day — into ONE integer (dimension values are numbered from the skip-scanned
list of models and the plant's config) and groups on that; Python decodes the few
thousand groups. The passes over signals are cut into rowid ranges read side by side by
a few connections that share one snapshot (SQLite runs a statement on one core).
Decisions carry their signal's model and are indexed on what they are counted by
(``ix_decision_report``): over the whole history they are counted in that index's
order, with neither a sort nor a look at the signals. Response times need an order
(nearest ranks, to the millisecond, as the stored times go through julianday()): over
the whole history two partial indexes hold the signals in the order of each duration,
so a rank is a walk along an index; narrowed, the database computes the durations of
the covered signals and Python sorts them.

What is counted
    The report covers the signals DETECTED in ``[since, until)`` (either end open),
    optionally only those whose FIRST window was at ``tier`` (the tier the policy placed
    them at), on ``line``, in ``area`` or from ``source``. Decisions, reviews, escalations and
    outcomes are those of the covered signals. ``as_of`` (default: now) is the moment
    windows are judged against. Overdue actions are a state at ``as_of``, not a history:
    ``since``/``until`` do not narrow them; ``tier``/``line``/``area``/``source`` do,
    through the action's signal (actions without a signal then drop out).

The dict it returns; the keys are stable (new keys may be added, none renamed or
dropped without raising ``report``). Times are ISO 8601 UTC text, rates 0..1 or null
when nothing counts yet, durations in minutes or hours as named.

``report``
    Version of this layout (1).
``generated_at``, ``as_of``, ``plant``, ``policy_version``
    When the report was made, the moment windows are judged at, the plant id and the
    version of the policy in force now.
``filters``
    ``since``, ``until``, ``tier``, ``line``, ``source``, ``area`` as asked (null: not
    narrowed).
``signals``
    ``total`` covered; ``autonomous`` (placed under an autonomous rule, not suspended);
    ``placed_up`` (an escalate rule put them straight at a higher tier: not an
    escalation); ``acknowledged`` and ``decided`` (have a first acknowledgement / a
    person's decision); ``flagged`` (window breached at the top tier);
    ``resolved_with_outcome``.
``acted_within_window``
    ``acted``, ``closed``, ``rate`` over all covered signals, then ``by_tier`` (start
    tier), ``by_line`` (``area`` and ``line``; ``line`` null for area-level signals),
    ``by_category`` and ``by_model`` (``source``): lists of the same three numbers.
``response_times``
    ``ack_median_min``, ``ack_p90_min``, ``decide_median_min``, ``decide_p90_min``
    (nearest-rank, minutes from detection) and the counts they are over,
    ``acknowledged`` and ``decided``.
``escalations``
    ``escalated_signals`` (escalated at least once) and ``rate`` (÷ all covered
    signals); ``total`` escalation steps, of which ``automatic`` (the sweep) and
    ``manual`` (a person); ``flagged_at_top_tier``; ``sources``: per ``from_tier``,
    ``area`` and ``line``, the ``automatic``, ``manual`` and ``total`` steps, busiest
    first.
``models``
    Per ``source``: ``volume``; ``decided`` (a person's decisions); ``acted`` (a
    person's act/monitor decisions) and ``action_rate`` (÷ volume);
    ``false_positives`` and ``false_positive_rate`` (÷ decided); ``escalated``;
    ``autonomous_decisions``, ``reviewed``, ``overturned`` and ``overturn_rate``
    (÷ reviewed); ``shelved_hours`` (time its signals spent shelved: from each shelve
    decision to the earliest of its end, an earlier unshelve or reopen, and ``as_of``);
    ``suspended`` (its autonomy is suspended now).
``bad_actors``
    Sources ranked by false-positive rate among those with at least 10 decisions.
``automation_bias``
    ``share`` and ``min_decisions`` (the thresholds) and ``flagged``: per ``person``
    (id, with ``name``), ``decisions``, ``agreeing`` (act or monitor) and ``share``.
``overdue_actions``
    Per ``owner`` (id, with ``name``): ``overdue`` (open or in progress, due before
    ``as_of``) and ``oldest_due_at``; most first.
``outcomes``
    ``by_model`` (``source``) and ``by_line`` (``area``, ``line``): ``resolved`` (with
    an outcome), ``downtime_minutes_avoided`` and ``scrap_avoided`` (sums of the values
    given) and ``yield_effect_mean`` (mean of the values given); null when none given.
``trend``
    ``from`` and ``to`` (plant-local dates) and ``days``: per local day of detection,
    ``day``, ``signals`` (detected), ``closed``, ``acted`` and ``rate`` as above. It
    covers ``since`` (or 27 days before ``as_of``) to ``until`` (or ``as_of``), at most
    400 days, every day listed even when empty.
"""

import math
import os
import queue
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from itertools import chain
from zoneinfo import ZoneInfo

from tiermeet.domain import metrics
from tiermeet.domain.enums import Category
from tiermeet.services.context import Context
from tiermeet.store.queries import BUSY_TIMEOUT_S, connect_read
from tiermeet.store.timetext import to_db_text

REPORT_VERSION = 1
TREND_DAYS = 28
TREND_MAX_DAYS = 400
#: Most read connections (and threads) one report uses; tables smaller than CHUNK_MIN_ROWS
#: are read in one go.
MAX_WORKERS = 8
CHUNK_MIN_ROWS = 50_000
#: Most rowids per range of the grouped pass over signals: SQLite groups by sorting, and
#: the rows of a range this small sort in the CPU's caches (250,000 at once cost a third
#: more per row); many short ranges also let the threads finish together.
GROUP_CHUNK_ROWS = 50_000
UTC = timezone.utc
DAY_MS = 86_400_000
#: The response times: kind → the signal's column that ends the duration from detection.
TIMES = {"ack": "first_acknowledged_at", "decide": "first_decided_at"}
#: The partial index ordering the signals that have one by each duration (migration 0005).
TIME_INDEXES = {"ack": "ix_signal_ack_time", "decide": "ix_signal_decide_time"}

#: The tier a signal's first window was at: where its first escalation started, else
#: where it is (signals only move up, one tier per escalation). A signal at tier 1 was
#: never escalated, so most rows skip the look-up in the escalations.
ESCALATED_FROM = "(CASE WHEN s.tier > 1 THEN (SELECT min(e.from_tier) FROM escalation e WHERE e.signal_id = s.id) END)"
START_TIER = f"coalesce({ESCALATED_FROM}, s.tier)"
FIRST_DEADLINE = "coalesce(s.first_deadline, s.deadline)"
#: The signal id as the audit log writes it (dashed), from the stored 32 hex digits.
DASHED_SIGNAL_ID = ("substr(d.signal_id, 1, 8) || '-' || substr(d.signal_id, 9, 4) || '-' || substr(d.signal_id, 13, 4)"
                    " || '-' || substr(d.signal_id, 17, 4) || '-' || substr(d.signal_id, 21)")

# Bits of a signal's counting flags (packed into its group key).
CLOSED, ACTED, ACKED, DECIDED, FLAGGED, AUTONOMOUS, PLACED_UP, OUTCOME = (1 << i for i in range(8))
ESC_SHIFT = 8  # three bits: the tier of the first escalation, 0 for none
FLAG_SPAN = 1 << 11
TIER_SPAN = 8
#: Who made a decision: a person, a model (``ai:<source>``), the system (``system:…``).
PERSON, MODEL, SYSTEM = range(3)


def _iso(value: "datetime | str | None") -> str | None:
    """An aware datetime or stored UTC text → ISO 8601 UTC with a Z."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _rate(numerator: int, denominator: int) -> float | None:
    return metrics.rate(numerator, denominator)


def _case(column: str, values: list, *, start: int = 1) -> str:
    """SQL numbering ``values`` of ``column`` from ``start``; anything else is 0."""
    if not values:
        return "0"
    branches = " ".join(f"WHEN {_literal(v)} THEN {i}" for i, v in enumerate(values, start))
    return f"(CASE {column} {branches} ELSE 0 END)"


def _literal(value) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> tuple[timedelta, list[tuple[datetime, timedelta]]]:
    """The zone's UTC offset at ``start`` and each (moment, new offset) change up to ``end``,
    found to the second (hourly steps, then halving)."""
    step = timedelta(hours=1)
    at = start
    offset = first = at.astimezone(zone).utcoffset()
    changes = []
    while at < end:
        after = at + step
        new = after.astimezone(zone).utcoffset()
        if new != offset:
            low, high = at, after  # the change is in (low, high]
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) / 2
                if mid.astimezone(zone).utcoffset() == offset:
                    low = mid
                else:
                    high = mid
            changes.append((high, new))
            offset = new
        at = after
    return first, changes


def local_day_sql(column: str, zone: ZoneInfo, start: datetime, end: datetime, first_day: date) -> str:
    """SQL for the plant-local day of ``column`` (stored UTC text) as a number: 1 for
    ``first_day``, 2 for the day after…, exact between ``start`` and ``end``. The zone's
    offset is piecewise constant, so the expression is a CASE over the offset changes in
    the range (two a year where clocks change), in integer milliseconds."""
    first, changes = offset_changes(zone, start - timedelta(days=1), end + timedelta(days=1))
    ms = lambda offset: int(offset.total_seconds() * 1000)  # noqa: E731
    if changes:
        branches = " ".join(f"WHEN {column} < '{to_db_text(at)}' THEN {ms(before)}"
                            for (at, _new), before in zip(changes, [first, *(new for _at, new in changes)]))
        offset_sql = f"(CASE {branches} ELSE {ms(changes[-1][1])} END)"
    else:
        offset_sql = str(ms(first))
    # The Julian day number of a local date is floor(JD(UTC instant) + offset + ½ day).
    jdn_first = first_day.toordinal() + 1_721_425
    return (f"((CAST(round(julianday({column}) * {DAY_MS}) AS INTEGER) + {offset_sql} + {DAY_MS // 2}) / {DAY_MS}"
            f" - {jdn_first - 1})")


@dataclass(frozen=True)
class Group:
    """Signals that share every dimension the report splits by, and their counts."""

    source: str
    area: str
    line: str | None
    category: str
    tier: int
    flags: int
    day: int  # 1-based trend day, 0 outside the trend
    n: int
    downtime: float
    downtime_n: int
    scrap: float
    scrap_n: int
    yield_sum: float
    yield_n: int

    @property
    def escalated_from(self) -> int | None:
        return (self.flags >> ESC_SHIFT) or None

    @property
    def start_tier(self) -> int:
        return self.escalated_from or self.tier

    def has(self, flag: int) -> int:
        """``n`` if the group has ``flag``, else 0."""
        return self.n if self.flags & flag else 0


@dataclass(frozen=True)
class DecisionGroup:
    """Decisions that share model, maker, kind and disposition: how many, and how many of
    them a person reviewed and overturned."""

    source: str
    decided_by: str
    kind: str
    disposition: str | None
    n: int
    reviewed: int = 0
    overturned: int = 0

    @property
    def maker(self) -> int:
        if self.decided_by.startswith("ai:"):
            return MODEL
        return SYSTEM if self.decided_by.startswith("system:") else PERSON


class ReportService:
    """The governance report, read in one snapshot of the database."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def report(self, since: datetime | None = None, until: datetime | None = None, tier: int | None = None,
               line: str | None = None, source: str | None = None, as_of: datetime | None = None,
               area: str | None = None) -> dict:
        """Every governance metric for the signals the filters cover (see the module docstring)."""
        for name, value in (("since", since), ("until", until), ("as_of", as_of)):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone")
        as_of = (as_of or self.ctx.clock.now()).astimezone(UTC)
        config = self.ctx.config
        zone = ZoneInfo(config.plant.timezone)
        trend_from, trend_to = _trend_days(since, until, as_of, zone)
        trend_start = datetime.combine(trend_from, time(0), zone).astimezone(UTC)
        trend_end = datetime.combine(trend_to + timedelta(days=1), time(0), zone).astimezone(UTC)
        where, params = _where(since, until, tier, line, source, area)
        params |= {"as_of": to_db_text(as_of), "trend_start": to_db_text(trend_start), "trend_end": to_db_text(trend_end)}
        day_sql = local_day_sql("s.detected_at", zone, trend_start, trend_end, trend_from)
        with _Readers(self.ctx.db_path) as readers:
            first = readers.main
            dims = _Dims.of(config, [row[0] for row in first.execute(SOURCES_SQL)])
            signal_chunks = readers.chunks("signal")
            # The longer reads first, then the grouped pass in short ranges; meanwhile this
            # thread runs the small reads, then merges the ranges' groups as they come.
            # Unfiltered, one read of the decisions' index; narrowed, through the signals' ranges.
            decision_jobs = [readers.submit(_decision_rows, where, params | chunk)
                             for chunk in (signal_chunks if where != "1" else [{}])]
            if where == "1":  # the whole history: percentiles read off the response-time indexes
                times_jobs = [readers.submit(_indexed_response_times)]
            else:
                times_jobs = [readers.submit(_duration_rows, where, params | chunk) for chunk in signal_chunks]
            shelved_job = readers.submit(_shelved_days, where, params)
            groups_jobs = [readers.submit(_signal_rows, dims, where, params | chunk, day_sql)
                           for chunk in readers.chunks("signal", GROUP_CHUNK_ROWS)]
            escalations = first.execute(_escalation_sql(where), params).fetchall()
            overdue = first.execute(_overdue_sql(tier, line, source, area), params).fetchall()
            suspended = {row[0] for row in first.execute("SELECT source FROM model_suspension WHERE resumed_at IS NULL")}
            decisions = _decision_groups([job.result() for job in decision_jobs])
            times = times_jobs[0].result() if where == "1" else _response_times([job.result() for job in times_jobs])
            groups = _signal_groups(dims, (job.result() for job in groups_jobs))
            if groups is None:  # a value the numbering did not know: group on the text itself
                groups = [Group(*row) for row in first.execute(_signal_text_sql(where, day_sql), params)]
            shelved = shelved_job.result()
        names = {p.id: p.name for p in config.people}
        totals = _signal_totals(groups)
        models = _models(groups, decisions, shelved, suspended)
        return {
            "report": REPORT_VERSION,
            "generated_at": _iso(datetime.now(UTC)),
            "as_of": _iso(as_of),
            "plant": config.plant.id,
            "policy_version": config.governance.version,
            "filters": {"since": _iso(since), "until": _iso(until), "tier": tier, "line": line, "source": source,
                        "area": area},
            "signals": totals,
            "acted_within_window": _acted(groups),
            "response_times": times,
            "escalations": _escalations(groups, escalations, totals),
            "models": models,
            "bad_actors": metrics.bad_actors({m["source"]: m for m in models}),
            "automation_bias": _automation_bias(decisions, names),
            "overdue_actions": [{"owner": owner, "name": names.get(owner, owner), "overdue": n, "oldest_due_at": _iso(oldest)}
                                for owner, n, oldest in overdue],
            "outcomes": _outcomes(groups),
            "trend": _trend(groups, trend_from, trend_to),
        }


# ----- connections -----
def _connect(path) -> sqlite3.Connection:
    conn = connect_read(path)
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA mmap_size=2147418112")  # read pages in place rather than copying them
    return conn


class _Readers:
    """Read connections on one snapshot: ``main`` for the calling thread and one per
    worker thread. The big passes are cut into rowid ranges that run side by side (SQLite
    runs a statement on one core)."""

    def __init__(self, path, workers: int | None = None) -> None:
        self.path = path
        self.workers = workers or min(MAX_WORKERS, max(2, os.cpu_count() or 2))

    def __enter__(self) -> "_Readers":
        self._stack = ExitStack()
        conns = [self._stack.enter_context(closing(_connect(self.path))) for _ in range(self.workers + 1)]
        _same_snapshot(conns, self.path)
        self.main = conns[0]
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        for conn in conns[1:]:
            self._idle.put(conn)
        self._pool = self._stack.enter_context(ThreadPoolExecutor(max_workers=self.workers))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def submit(self, fn, *args):
        """Run ``fn(conn, *args)`` on a free connection in a worker thread."""
        def run():
            conn = self._idle.get()
            try:
                return fn(conn, *args)
            finally:
                self._idle.put(conn)
        return self._pool.submit(run)

    def chunks(self, table: str, rows: int | None = None) -> list[dict]:
        """``{"lo": …, "hi": …}`` rowid ranges covering ``table``, a few per worker, and
        at most about ``rows`` rowids each when given. (Two subqueries: SQLite reads the
        ends of the rowid b-tree only for a lone min() or max(); together they scan it.)"""
        lo, hi = self.main.execute(f"SELECT (SELECT min(rowid) FROM {table}), (SELECT max(rowid) FROM {table})").fetchone()
        if lo is None:
            return [{"lo": 0, "hi": -1}]
        parts = self.workers * 2 if hi - lo > CHUNK_MIN_ROWS else 1
        if rows:
            parts = max(parts, (hi - lo) // rows + 1)
        step = (hi - lo) // parts + 1
        return [{"lo": start, "hi": min(hi, start + step - 1)} for start in range(lo, hi + 1, step)]


def _same_snapshot(conns: list[sqlite3.Connection], path) -> None:
    """Start a read transaction on each connection such that all see the same commit:
    while this holds the write lock for a moment nobody can commit, so the snapshots the
    readers take meanwhile are one. (A file this process may not write falls back to
    comparing the last audit entry and outbox row, which every change appends.)"""
    try:
        with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)) as lock:
            lock.execute("BEGIN IMMEDIATE")
            try:
                for conn in conns:
                    conn.execute("BEGIN")
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts at the first read
            finally:
                lock.execute("ROLLBACK")
        return
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc) and "read-only" not in str(exc):
            raise
        for conn in conns:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
    for _ in range(20):
        seen = set()
        for conn in conns:
            conn.execute("BEGIN")
            seen.add(conn.execute("SELECT max(rowid), (SELECT max(seq) FROM outbox) FROM audit_log").fetchone())
        if len(seen) == 1:
            return
        for conn in conns:
            conn.execute("ROLLBACK")
    raise sqlite3.OperationalError("the database kept changing while the report opened its snapshot; try again")


# ----- SQL -----
#: Every model with signals, by skip-scanning the (source, external_id) index.
SOURCES_SQL = """
    WITH RECURSIVE src(s) AS (SELECT min(source) FROM signal
        UNION ALL SELECT (SELECT min(source) FROM signal WHERE source > src.s) FROM src WHERE src.s IS NOT NULL)
    SELECT s FROM src WHERE s IS NOT NULL"""


def _where(since, until, tier, line, source, area=None) -> tuple[str, dict]:
    """The WHERE clause on ``signal s`` for the filters, with its parameters."""
    clauses, params = ["1"], {}
    if since is not None:
        clauses.append("s.detected_at >= :since")
        params["since"] = to_db_text(since)
    if until is not None:
        clauses.append("s.detected_at < :until")
        params["until"] = to_db_text(until)
    if line is not None:
        clauses.append("s.line = :line")
        params["line"] = line
    if area is not None:
        clauses.append("s.area = :area")
        params["area"] = area
    if source is not None:
        clauses.append("s.source = :source")
        params["source"] = source
    if tier is not None:
        clauses.append(f"{START_TIER} = :tier")
        params["tier"] = tier
    return " AND ".join(clauses), params


@dataclass(frozen=True)
class _Dims:
    """How dimension values are numbered inside group keys."""

    sources: list[str]
    areas: list[str]
    lines: list[str]
    categories: list[str]

    @classmethod
    def of(cls, config, sources: list[str]) -> "_Dims":
        return cls(sources, [a.id for a in config.areas], [ln.id for a in config.areas for ln in a.lines],
                   [c.value for c in Category])


def _flags_sql() -> str:
    """A signal's counting flags as one integer, written as CASEs so that a row makes only
    the comparisons its case needs: this runs once per signal, a million times a report."""
    window = (f"(CASE WHEN {FIRST_DEADLINE} > :as_of THEN 0"
              f" WHEN s.first_decided_at <= {FIRST_DEADLINE} THEN {CLOSED + ACTED} ELSE {CLOSED} END)")
    return (f"(CASE s.autonomy WHEN 'autonomous' THEN {AUTONOMOUS} WHEN 'escalate' THEN {PLACED_UP} + {window}"
            f" ELSE {window} END"
            f" + CASE WHEN s.first_acknowledged_at IS NULL THEN 0 ELSE {ACKED} END"
            f" + CASE WHEN s.first_decided_at IS NULL THEN 0 ELSE {DECIDED} END"
            f" + CASE WHEN s.flagged_at IS NULL THEN 0 ELSE {FLAGGED} END"
            f" + CASE WHEN s.resolved_at IS NULL OR s.outcome IS NULL THEN 0 ELSE {OUTCOME} END"
            f" + coalesce({ESCALATED_FROM}, 0) * {1 << ESC_SHIFT})")


def _signal_rows(conn: sqlite3.Connection, dims: _Dims, where: str, params: dict, day_sql: str) -> list[tuple]:
    """One pass over the covered signals in a rowid range, grouped on one packed integer
    per row: (key, count, downtime sum, its count, scrap sum, its count, yield sum, its count)."""
    na, nl, nc, nd = _spans(dims)
    key = (f"((((({_case('s.source', dims.sources)} * {na} + {_case('s.area', dims.areas)}) * {nl}"
           f" + CASE WHEN s.line IS NULL THEN 0 ELSE {_case('s.line', dims.lines)} + 1 END) * {nc}"
           f" + {_case('s.category', dims.categories)}) * {TIER_SPAN} + s.tier) * {FLAG_SPAN} + {_flags_sql()}) * {nd}"
           f" + CASE WHEN s.detected_at >= :trend_start AND s.detected_at < :trend_end THEN {day_sql} ELSE 0 END")
    sql = f"""
        SELECT k, count(*), total(dt), count(dt), total(sc), count(sc), total(y), count(y) FROM (
            SELECT {key} AS k, {_OUTCOME.format('downtime_minutes_avoided')} AS dt, {_OUTCOME.format('scrap_avoided')} AS sc,
                   {_OUTCOME.format('yield_effect')} AS y
            FROM signal s NOT INDEXED WHERE s.rowid BETWEEN :lo AND :hi AND {where} LIMIT -1)
        GROUP BY k"""
    return conn.execute(sql, params).fetchall()


_OUTCOME = "CASE WHEN s.resolved_at IS NOT NULL AND s.outcome IS NOT NULL THEN json_extract(s.outcome, '$.{}') END"


def _spans(dims: _Dims) -> tuple[int, int, int, int]:
    """How many numbers each dimension takes in a group key: 0 for a value the numbering
    does not know (lines: 0 for none, 1 for unknown), then the known values."""
    return len(dims.areas) + 1, len(dims.lines) + 2, len(dims.categories) + 1, TREND_MAX_DAYS + 2


def _signal_groups(dims: _Dims, parts: Iterable[list[tuple]]) -> list[Group] | None:
    """The groups of every range's rows, merged and decoded; None when a key holds a
    value the numbering did not know."""
    merged: dict[int, list] = {}
    for rows in parts:
        for k, *counts in rows:
            if k in merged:
                merged[k] = [a + b for a, b in zip(merged[k], counts)]
            else:
                merged[k] = counts
    na, nl, nc, nd = _spans(dims)
    groups = []
    for k, counts in merged.items():
        k, day = divmod(k, nd)
        k, flags = divmod(k, FLAG_SPAN)
        k, tier = divmod(k, TIER_SPAN)
        k, category = divmod(k, nc)
        k, line = divmod(k, nl)
        k, area = divmod(k, na)
        if not (k and area and category) or line == 1:
            return None
        groups.append(Group(dims.sources[k - 1], dims.areas[area - 1], dims.lines[line - 2] if line else None,
                            dims.categories[category - 1], tier, flags, day, *counts))
    return groups


def _signal_text_sql(where: str, day_sql: str) -> str:
    """The same groups, keyed on the text columns themselves: slower to sort, but right
    for areas and lines the config no longer names."""
    return f"""
        SELECT source, area, line, category, tier, f, day, count(*), total(dt), count(dt), total(sc), count(sc), total(y), count(y)
        FROM (SELECT s.source, s.area, s.line, s.category, s.tier, {_flags_sql()} AS f,
                     CASE WHEN s.detected_at >= :trend_start AND s.detected_at < :trend_end THEN {day_sql} ELSE 0 END AS day,
                     {_OUTCOME.format('downtime_minutes_avoided')} AS dt, {_OUTCOME.format('scrap_avoided')} AS sc,
                     {_OUTCOME.format('yield_effect')} AS y
              FROM signal s NOT INDEXED WHERE {where} LIMIT -1)
        GROUP BY 1, 2, 3, 4, 5, 6, 7"""


def _shelved_days(conn: sqlite3.Connection, where: str, params: dict) -> dict[str, float]:
    """Days the covered signals of each model spent shelved: each shelve decision to the
    earliest of its end, an unshelve or reopen after it, and ``as_of``. Over the whole
    history the shelve decisions are found in ``ix_decision_report`` (which holds their
    model), not by reading every decision."""
    end = (f"min(coalesce(d.shelved_until, :as_of), :as_of, coalesce((SELECT min(a.at) FROM audit_log a "
           f"WHERE a.entity = 'signal' AND a.entity_id = {DASHED_SIGNAL_ID} AND a.op IN ('unshelve', 'reopen') "
           f"AND a.at >= d.decided_at), :as_of))")
    decisions = ("decision d INDEXED BY ix_decision_report" if where == "1"
                 else "decision d NOT INDEXED CROSS JOIN signal s ON s.id = d.signal_id")
    sql = f"""
        SELECT d.source, total(max(0, julianday({end}) - julianday(d.decided_at)))
        FROM {decisions}
        WHERE d.kind = 'shelve' AND {where}
        GROUP BY d.source"""
    return dict(conn.execute(sql, params).fetchall())


def _decision_rows(conn: sqlite3.Connection, where: str, params: dict) -> list[tuple]:
    """The decisions on the covered signals per model, maker, kind and disposition, with
    how many were reviewed and overturned: ``(source, decided_by, kind, disposition, n,
    reviewed, overturned)``. Over the whole history they are read in the order of
    ``ix_decision_report``, which groups them without sorting and without the signals;
    narrowed, through the covered signals in a rowid range."""
    if where == "1":
        decisions = "decision d INDEXED BY ix_decision_report"
    else:
        decisions = f"signal s NOT INDEXED CROSS JOIN decision d ON d.signal_id = s.id AND s.rowid BETWEEN :lo AND :hi AND {where}"
    counts = conn.execute(f"SELECT d.source, d.decided_by, d.kind, d.disposition, count(*) FROM {decisions} "
                          f"GROUP BY 1, 2, 3, 4", params).fetchall()
    reviews = {tuple(key): (n, int(overturned)) for *key, n, overturned in conn.execute(
        f"SELECT d.source, d.decided_by, d.kind, d.disposition, count(*), total(r.outcome = 'overturned') "
        f"FROM decision_review r JOIN decision d ON d.id = r.decision_id "
        f"{'' if where == '1' else 'JOIN signal s ON s.id = d.signal_id WHERE s.rowid BETWEEN :lo AND :hi AND ' + where} "
        f"GROUP BY 1, 2, 3, 4", params)}
    return [(*key, n, *reviews.get(tuple(key), (0, 0))) for *key, n in counts]


def _decision_groups(parts: list[list[tuple]]) -> list[DecisionGroup]:
    """The decision rows of every range, merged."""
    merged: dict[tuple, list[int]] = {}
    for rows in parts:
        for *key, n, reviewed, overturned in rows:
            cell = merged.setdefault(tuple(key), [0, 0, 0])
            cell[0] += n
            cell[1] += reviewed
            cell[2] += overturned
    return [DecisionGroup(*key, *counts) for key, counts in merged.items()]


def _duration_rows(conn: sqlite3.Connection, where: str, params: dict) -> tuple[list[int], list[int]]:
    """Milliseconds from detection to the first acknowledgement and to the first person's
    decision, for the covered signals in a rowid range that have them (one pass), each
    sorted here, side by side with the other ranges' reads: the final sort then merely
    merges the ranges' runs. The database hands each column over as one text list, which
    costs a fraction of a row object per value."""
    ms = f"CAST(round((julianday(s.{{}}) - julianday(s.detected_at)) * {DAY_MS}) AS INTEGER)"
    sql = (f"SELECT group_concat({ms.format(TIMES['ack'])}), group_concat({ms.format(TIMES['decide'])}) "
           f"FROM signal s NOT INDEXED WHERE s.rowid BETWEEN :lo AND :hi AND {where} "
           f"AND (s.first_acknowledged_at IS NOT NULL OR s.first_decided_at IS NOT NULL)")
    acks, decides = conn.execute(sql, params).fetchone()
    return sorted(map(int, acks.split(","))) if acks else [], sorted(map(int, decides.split(","))) if decides else []


def _response_times(parts: list[tuple[list[int], list[int]]]) -> dict:
    """Nearest-rank median and p90 minutes of the durations of every range."""
    values = {label: sorted(chain.from_iterable(part[index] for part in parts)) for index, label in enumerate(TIMES)}
    return _percentiles({label: len(v) for label, v in values.items()}, lambda label, rank: values[label][rank - 1])


def _indexed_response_times(conn: sqlite3.Connection) -> dict:
    """``_response_times`` over the whole history, read off the partial indexes that order
    signals by the time to their first acknowledgement and decision (``ix_signal_ack_time``,
    ``ix_signal_decide_time``): a rank is a walk along an index, not a sort."""
    days = {label: f"julianday(s.{column}) - julianday(s.detected_at)" for label, column in TIMES.items()}

    signals = {label: f"signal s INDEXED BY {TIME_INDEXES[label]} WHERE s.{column} IS NOT NULL" for label, column in TIMES.items()}

    def at_rank(label: str, rank: int) -> int:
        return conn.execute(f"SELECT CAST(round(({days[label]}) * {DAY_MS}) AS INTEGER) FROM {signals[label]} "
                            f"ORDER BY {days[label]} LIMIT 1 OFFSET ?", (rank - 1,)).fetchone()[0]

    counts = {label: conn.execute(f"SELECT count(*) FROM {signals[label]}").fetchone()[0] for label in TIMES}
    return _percentiles(counts, at_rank)


def _percentiles(counts: dict[str, int], at_rank) -> dict:
    """The response-time numbers from how many durations each kind has and
    ``at_rank(kind, rank)``, the duration (ms) at a 1-based rank in ascending order."""
    out: dict = {}
    for label, n in counts.items():
        for name, share in (("median", 0.5), ("p90", 0.9)):
            out[f"{label}_{name}_min"] = at_rank(label, _rank(n, share)) / 60_000 if n else None
    return out | {"acknowledged": counts["ack"], "decided": counts["decide"]}


def _escalation_sql(where: str) -> str:
    return f"""
        SELECT e.from_tier, s.area, s.line, e.automatic, count(*)
        FROM escalation e JOIN signal s ON s.id = e.signal_id
        WHERE {where}
        GROUP BY 1, 2, 3, 4"""


def _overdue_sql(tier, line, source, area=None) -> str:
    clauses = ["a.status IN ('open', 'in_progress')", "a.due_at < :as_of"]
    if line is not None:
        clauses.append("s.line = :line")
    if area is not None:
        clauses.append("s.area = :area")
    if source is not None:
        clauses.append("s.source = :source")
    if tier is not None:
        clauses.append(f"{START_TIER} = :tier")
    return f"""
        SELECT a.owner_id, count(*) AS n, min(a.due_at)
        FROM action a LEFT JOIN signal s ON s.id = a.signal_id
        WHERE {' AND '.join(clauses)}
        GROUP BY a.owner_id
        ORDER BY n DESC, a.owner_id"""


# ----- roll-ups of grouped rows -----
def _signal_totals(groups: list[Group]) -> dict:
    return {
        "total": sum(g.n for g in groups),
        "autonomous": sum(g.has(AUTONOMOUS) for g in groups),
        "placed_up": sum(g.has(PLACED_UP) for g in groups),
        "acknowledged": sum(g.has(ACKED) for g in groups),
        "decided": sum(g.has(DECIDED) for g in groups),
        "flagged": sum(g.has(FLAGGED) for g in groups),
        "resolved_with_outcome": sum(g.has(OUTCOME) for g in groups),
    }


def _ordered(cells: dict) -> list:
    """Cells by key, None last in each position."""
    return sorted(cells.items(), key=lambda kv: tuple((k is None, k) for k in kv[0]))


def _acted(groups: list[Group]) -> dict:
    dims = {"by_tier": (("tier",), lambda g: (g.start_tier,)), "by_line": (("area", "line"), lambda g: (g.area, g.line)),
            "by_category": (("category",), lambda g: (g.category,)), "by_model": (("source",), lambda g: (g.source,))}
    split: dict[str, dict] = {dim: defaultdict(lambda: [0, 0]) for dim in dims}
    acted = closed = 0
    for g in groups:
        a, c = g.has(ACTED), g.has(CLOSED)
        acted += a
        closed += c
        for dim, (_names, key) in dims.items():
            cell = split[dim][key(g)]
            cell[0] += a
            cell[1] += c
    out: dict = {"acted": acted, "closed": closed, "rate": _rate(acted, closed)}
    for dim, (names, _key) in dims.items():
        out[dim] = [{**dict(zip(names, key)), "acted": a, "closed": c, "rate": _rate(a, c)} for key, (a, c) in _ordered(split[dim])]
    return out


def _escalations(groups: list[Group], rows, totals: dict) -> dict:
    escalated = sum(g.n for g in groups if g.escalated_from is not None)
    sources: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for from_tier, area, line, automatic, n in rows:
        sources[(from_tier, area, line)][0 if automatic else 1] += n
    listed = [{"from_tier": t, "area": a, "line": ln, "automatic": au, "manual": m, "total": au + m}
              for (t, a, ln), (au, m) in sources.items()]
    listed.sort(key=lambda r: (-r["total"], r["from_tier"], r["area"] or "", r["line"] or ""))
    automatic = sum(r["automatic"] for r in listed)
    manual = sum(r["manual"] for r in listed)
    return {"escalated_signals": escalated, "rate": _rate(escalated, totals["total"]), "total": automatic + manual,
            "automatic": automatic, "manual": manual, "flagged_at_top_tier": totals["flagged"], "sources": listed}


def _models(groups: list[Group], decisions: list[DecisionGroup], shelved: dict[str, float], suspended: set[str]) -> list[dict]:
    volume: dict[str, int] = defaultdict(int)
    escalated: dict[str, int] = defaultdict(int)
    for g in groups:
        volume[g.source] += g.n
        if g.escalated_from is not None:
            escalated[g.source] += g.n
    keys = ("decided", "acted", "false_positives", "autonomous_decisions", "reviewed", "overturned")
    stats: dict[str, dict] = defaultdict(lambda: dict.fromkeys(keys, 0))
    for d in decisions:
        m = stats[d.source]
        if d.maker == PERSON:
            m["decided"] += d.n
            m["acted"] += d.n if d.kind in metrics.AGREEING else 0
            m["false_positives"] += d.n if d.kind == "dismiss" and d.disposition == "false_positive" else 0
        elif d.maker == MODEL:
            m["autonomous_decisions"] += d.n
            m["reviewed"] += d.reviewed
            m["overturned"] += d.overturned
    out = []
    for source in sorted(volume):
        m = stats[source]
        out.append({
            "source": source, "volume": volume[source], "decided": m["decided"], "acted": m["acted"],
            "action_rate": _rate(m["acted"], volume[source]), "false_positives": m["false_positives"],
            "false_positive_rate": _rate(m["false_positives"], m["decided"]), "escalated": escalated[source],
            "autonomous_decisions": m["autonomous_decisions"], "reviewed": m["reviewed"], "overturned": m["overturned"],
            "overturn_rate": _rate(m["overturned"], m["reviewed"]), "shelved_hours": round(shelved.get(source, 0.0) * 24, 4),
            "suspended": source in suspended,
        })
    return out


def _automation_bias(decisions: list[DecisionGroup], names: dict[str, str]) -> dict:
    total: dict[str, int] = defaultdict(int)
    agree: dict[str, int] = defaultdict(int)
    for d in decisions:
        if d.maker == PERSON:
            total[d.decided_by] += d.n
            agree[d.decided_by] += d.n if d.kind in metrics.AGREEING else 0
    flagged = [{"person": p, "name": names.get(p, p), "decisions": n, "agreeing": agree[p], "share": agree[p] / n}
               for p, n in sorted(total.items())
               if n >= metrics.BIAS_MIN_DECISIONS and agree[p] / n >= metrics.BIAS_SHARE]
    return {"share": metrics.BIAS_SHARE, "min_decisions": metrics.BIAS_MIN_DECISIONS, "flagged": flagged}


def _outcomes(groups: list[Group]) -> dict:
    def roll(key) -> list:
        cells: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0, 0.0, 0, 0.0, 0])
        for g in groups:
            if not g.flags & OUTCOME:
                continue
            c = cells[key(g)]
            for i, value in enumerate((g.n, g.downtime, g.downtime_n, g.scrap, g.scrap_n, g.yield_sum, g.yield_n)):
                c[i] += value
        return [(k, {"resolved": c[0], "downtime_minutes_avoided": c[1] if c[2] else None,
                     "scrap_avoided": c[3] if c[4] else None, "yield_effect_mean": c[5] / c[6] if c[6] else None})
                for k, c in _ordered(cells)]

    return {"by_model": [{"source": k[0], **v} for k, v in roll(lambda g: (g.source,))],
            "by_line": [{"area": k[0], "line": k[1], **v} for k, v in roll(lambda g: (g.area, g.line))]}


def _trend_days(since, until, as_of: datetime, zone: ZoneInfo) -> tuple[date, date]:
    last = ((until - timedelta(microseconds=1)) if until is not None else as_of).astimezone(zone).date()
    first = since.astimezone(zone).date() if since is not None else last - timedelta(days=TREND_DAYS - 1)
    first = max(first, last - timedelta(days=TREND_MAX_DAYS - 1))
    return min(first, last), last


def _trend(groups: list[Group], first: date, last: date) -> dict:
    span = (last - first).days + 1
    days = [[0, 0, 0] for _ in range(span)]
    for g in groups:
        if 1 <= g.day <= span:
            cell = days[g.day - 1]
            cell[0] += g.n
            cell[1] += g.has(CLOSED)
            cell[2] += g.has(ACTED)
    return {"from": first.isoformat(), "to": last.isoformat(),
            "days": [{"day": (first + timedelta(days=i)).isoformat(), "signals": s, "closed": c, "acted": a, "rate": _rate(a, c)}
                     for i, (s, c, a) in enumerate(days)]}


def _rank(n: int, share: float) -> int:
    """The 1-based nearest rank of the ``share`` percentile of ``n`` values."""
    return max(1, math.ceil(share * n)) if n else 0
