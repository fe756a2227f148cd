"""Shared helpers for the app's pilot and snapshot tests (tests/test_ui_*.py).

The app runs headless with ``App.run_test()``; every test builds it on the ``services``
fixture (a fresh database file, the demo plant, the clock fixed at ``NOW``), drives it
with keys and clicks, then checks both what is on screen and what is in the database.

Test functions stay synchronous (no async plugin needed): ``@ui_test`` runs an ``async``
test body with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Static

from conftest import signal_record
from tiermeet.ingest.readers import Row
from tiermeet.ui.app import TierMeetApp
from tiermeet.ui.screens.board import BoardScreen
from tiermeet.ui.screens.signin import SignInScreen

#: Badges of the demo plant's people (tiermeet/demo/demo.toml).
ANNA = "100231"  # shift lead, CNC1
BEN = "100232"  # shift lead, CNC2
FARAH = "100240"  # operator, CNC1
HANA = "100250"  # engineer, machining
JULIA = "100260"  # supervisor, machining

#: Terminal sizes the issue asks for: a small kiosk and a wall display.
SMALL = (80, 24)
WIDE = (160, 50)


def ui_test(fn):
    """Run an ``async def`` test body on a fresh event loop; fixtures still inject."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return run


def make_app(services, *, tier: int | None = 1, scope: str | None = "CNC1", **kwargs) -> TierMeetApp:
    """The app on the Tier 1 CNC1 board (the demo kiosk's board) unless told otherwise.

    ``app.notices`` collects every toast as ``(severity, message)``."""
    app = TierMeetApp(services, tier=tier, scope=scope, **kwargs)
    app.notices = []
    notify = app.notify

    def recording_notify(message, *args, **kw):
        app.notices.append((kw.get("severity", "information"), str(message)))
        return notify(message, *args, **kw)

    app.notify = recording_notify
    return app


def ingest(services, *records: dict) -> None:
    """Ingest ``records`` (from ``signal_record``) and insist every one was added."""
    report = services.ingest.ingest([Row(n, record) for n, record in enumerate(records, 1)], origin="test")
    assert report.added == len(records), report.rejected


def seed_board(services) -> None:
    """Four CNC1 signals, one per SQDC letter that starts at tier 1, plus one on CNC2.

    Board order (time left): the critical delivery signal is past its window, the high
    quality one has 40 minutes left, the medium safety one lasts to the end of the shift,
    the low cost one a day."""
    ingest(
        services,
        signal_record(1, category="quality", severity="high", title="Spindle vibration rising on SP-104"),
        signal_record(2, category="delivery", severity="critical", asset="CONV-2", title="Conveyor stall predicted",
                      source="yield-model", confidence=0.64),
        signal_record(3, category="cost", severity="low", asset="COOL-1", title="Coolant use above baseline",
                      source="energy-watch", confidence=None),
        signal_record(4, category="safety", severity="medium", asset="GUARD-3", title="Guard door opened during cycle",
                      source="vision-guard", confidence=0.91),
        signal_record(5, line="CNC2", asset="SP-201", title="Chatter marks on CNC2 parts"),
    )


# ----- waiting -----------------------------------------------------------------------

async def settle(pilot: Pilot, rounds: int = 4) -> None:
    """Let every worker finish and its results reach the screen (workers start workers)."""
    from textual.worker import WorkerCancelled

    app = pilot.app
    for _ in range(rounds):
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:  # an exclusive worker was replaced by a newer one: wait for that
            pass
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            break
    await pilot.pause()


async def wait_until(pilot: Pilot, predicate: Callable[[], object], *, timeout: float = 5.0, step: float = 0.05,
                     what: str = "the condition") -> float:
    """Poll (without pressing anything) until ``predicate()`` is true; returns the seconds it took.

    The timeout is generous so a loaded machine does not fail a test; tests of how fast
    something appears assert the seconds returned."""
    start = time.monotonic()
    last_error: Exception | None = None
    while True:
        try:
            if predicate():
                return time.monotonic() - start
        except Exception as exc:  # noqa: BLE001 - a widget may not be mounted yet
            last_error = exc
        if time.monotonic() - start > timeout:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        await asyncio.sleep(step)  # the app runs on this loop meanwhile; no need to walk its widgets


def signing_in(app) -> bool:
    """True once the sign-in screen is up, laid out, and its badge field takes keys (the
    screen is on the stack a moment before it is mounted, focused and arranged)."""
    screen = app.screen
    return (isinstance(screen, SignInScreen) and app.focused is not None and app.focused.id == "badge"
            and screen.query_one("#signin").region.height > 0)


async def start(pilot: Pilot, badge: str | None = ANNA, *, scan: bool = False) -> BoardScreen:
    """Wait for the board and the sign-in prompt; sign in with ``badge`` (None: Esc, just look).

    ``scan`` types the badge key by key as a reader does; otherwise it arrives as one paste
    (the sign-in tests cover scanning; simulated keys are slow)."""
    app = pilot.app
    await wait_until(pilot, lambda: signing_in(app), what="the sign-in screen")
    if badge is None:
        await pilot.press("escape")
    else:
        await type_text(pilot, badge, keys=scan)
        await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), what="the board")
    await settle(pilot)
    return app.screen


async def type_text(pilot: Pilot, text: str, *, keys: bool | None = None) -> None:
    """Type ``text`` into the focused widget: key by key (``keys``, the default for short
    text such as a badge), else as one paste (each simulated key costs a screen refresh)."""
    if keys or (keys is None and len(text) <= 3):
        keys = ["space" if ch == " " else ch for ch in text]
        if keys:
            await pilot.press(*keys)
        return
    from textual import events

    focused = pilot.app.focused
    assert focused is not None, "nothing has the focus to type into"
    focused.post_message(events.Paste(text))
    await pilot.pause()


async def fill(pilot: Pilot, selector: str, text: str) -> None:
    """Focus the input ``selector`` on the current screen, clear it, and type ``text``."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    field.value = ""
    await pilot.pause()
    await type_text(pilot, text)


async def click_radio(pilot: Pilot, name: str) -> None:
    """Click the radio button called ``name`` (a decision kind or a disposition)."""
    from textual.widgets import RadioButton

    button = next(b for b in pilot.app.screen.query(RadioButton) if b.name == name)
    button.scroll_visible(animate=False)
    await pilot.pause()
    await pilot.click(button)
    await pilot.pause()
    assert button.value, f"the {name!r} button did not switch on"


async def cursor_to(pilot: Pilot, title: str) -> None:
    """Move the board cursor to the row whose title is ``title``."""
    board = pilot.app.screen
    assert isinstance(board, BoardScreen)
    index = [s.title for s in board.rows].index(title)
    board.query_one("#board", DataTable).move_cursor(row=index)
    await pilot.pause()
    assert board.selected is not None and board.selected.title == title


# ----- reading the screen ------------------------------------------------------------

def text_of(widget) -> str:
    """The plain text a Static or Label shows."""
    if isinstance(widget, (Static, Label)):
        content = widget.render()
        return getattr(content, "plain", str(content))
    return str(widget)


def error_text(screen, field: str) -> str:
    """What the inline error label of ``field`` (or "form") says (whether or not it is
    on screen: see ``visible``)."""
    return text_of(screen.query_one(f"#{field}-error", Label))


def visible(widget) -> bool:
    """True when ``widget`` is displayed and lies wholly inside the terminal."""
    region = widget.region
    return bool(widget.display and region.width and region.height and widget.app.screen.region.contains_region(region))


def board_titles(app) -> list[str]:
    """Titles on the board in the order shown."""
    return [s.title for s in app.screen.rows]


def drawn_row(table: DataTable, index: int) -> str:
    """The text ``table`` draws for row ``index`` — its rendered line, not its data, so a
    stale cached render shows up (the row must be on screen; line 0 is the header)."""
    return table.render_line(index + 1 - int(table.scroll_y)).text


def table_text(table: DataTable) -> list[list[str]]:
    """Every row of a DataTable as plain strings."""
    out = []
    for row_key in table.rows:
        out.append([getattr(c, "plain", str(c)) for c in table.get_row(row_key)])
    return out


def notices(app, severity: str | None = None) -> list[str]:
    """The toasts the app has shown so far (of one severity, if given)."""
    return [message for sev, message in app.notices if severity in (None, sev)]


def screen_lines(app) -> list[str]:
    """The terminal as plain text lines (what a person at the kiosk sees)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


# ----- reading the database ----------------------------------------------------------

def query(db_path: Path, sql: str, params: Iterable = ()) -> list[sqlite3.Row]:
    """Rows from the database file on a connection of the test's own."""
    with closing(sqlite3.connect(db_path)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, tuple(params)).fetchall()


def utc(text: str) -> datetime:
    """A time as the database file keeps it (UTC ISO text) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def signal_status(db_path: Path, title: str) -> tuple[str, int]:
    """(status, tier) of the signal with this title."""
    rows = query(db_path, "SELECT status, tier FROM signal WHERE title = ?", (title,))
    assert len(rows) == 1, f"{len(rows)} signals titled {title!r}"
    return rows[0]["status"], rows[0]["tier"]


def counts(db_path: Path) -> dict[str, int]:
    """How many rows the change tables hold (to show that nothing was written)."""
    tables = ("decision", "action", "escalation", "comment", "audit_log", "outbox")
    return {t: query(db_path, f"SELECT count(*) FROM {t}")[0][0] for t in tables}


def fixed_ids(monkeypatch) -> None:
    """Make new record ids predictable (UUIDv7-shaped, increasing), so snapshots that
    show short references stay the same from run to run."""
    import tiermeet.ingest.prepare as prepare
    import tiermeet.services.unit as unit

    counter = iter(range(1, 1_000_000))

    def fixed() -> uuid.UUID:
        return uuid.UUID(f"019ab000-0000-7000-8000-{next(counter):012x}")

    monkeypatch.setattr(unit, "uuid7", fixed)
    monkeypatch.setattr(prepare, "uuid7", fixed)
