"""Live refresh from other processes writing the same database file, and store errors
(locked, disk full, read-only) shown as a clear message while the app keeps running."""

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing

import pytest
import sqlalchemy.exc
from textual.widgets import DataTable, Input

from conftest import cli_env, signal_record
from tiermeet.services.bundle import open_services
from tiermeet.ui.screens.actions import ActionsScreen
from tiermeet.ui.screens.board import BoardScreen
from tiermeet.ui.screens.decide import DecideDialog
from tiermeet.ui.screens.meeting import MeetingScreen
from tiermeet.ui.widgets.board_table import BoardTable
from ui_helpers import (
    SMALL,
    board_titles,
    counts,
    cursor_to,
    error_text,
    fill,
    ingest,
    make_app,
    query,
    seed_board,
    settle,
    start,
    table_text,
    type_text,
    ui_test,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

#: How soon a change made elsewhere must be on screen (the issue says 2 seconds).
LIVE_WITHIN = 2.0

#: A second kiosk's process: open the same file and make one change as another person.
SECOND_KIOSK = """
import sys
from pathlib import Path
from tiermeet.services.bundle import open_services
from tiermeet.settings import load_config

services = open_services(Path(sys.argv[1]), load_config(None), device_name="kiosk-2")
verb, key = sys.argv[2], sys.argv[3]
if verb == "acknowledge":
    services.signals.acknowledge(key, actor="100232")
elif verb == "done":
    services.actions.done(key, actor="100232")
"""


async def other_process(*args: str) -> subprocess.CompletedProcess:
    """Run a Python process beside the app (the app keeps running while it works)."""
    result = await asyncio.to_thread(subprocess.run, [sys.executable, *args], capture_output=True, text=True,
                                     env=cli_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    return result


async def tiermeet_ingest(db_path, tmp_path, *records: dict) -> None:
    """``tiermeet --db FILE ingest signals.jsonl`` in its own process."""
    path = tmp_path / "incoming.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    await other_process("-m", "tiermeet", "--db", str(db_path), "ingest", str(path))


class TableSpy:
    """Records which rows the board redraws and whether it was cleared."""

    def __init__(self, table: BoardTable) -> None:
        self.rows: list[tuple[str, set[str]]] = []
        self.clears = 0
        update_row, clear = table.update_row, table.clear

        def spy_update(row_key, cells, **kw):
            self.rows.append((str(row_key), set(cells)))
            return update_row(row_key, cells, **kw)

        def spy_clear(*args, **kw):
            self.clears += 1
            return clear(*args, **kw)

        table.update_row, table.clear = spy_update, spy_clear

    def rows_with(self, column: str) -> set[str]:
        return {row for row, columns in self.rows if column in columns}


# ----- live refresh ---------------------------------------------------------------------

@ui_test
async def test_board_shows_a_signal_ingested_by_another_process(services, db_path, tmp_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        assert len(board_titles(app)) == 4
        await tiermeet_ingest(db_path, tmp_path, signal_record(50, asset="SP-105", severity="critical",
                                                               title="Spindle overheating on SP-105"))
        took = await wait_until(pilot, lambda: "Spindle overheating on SP-105" in board_titles(app), timeout=3.0,
                                step=0.2, what="the ingested signal on the board")
        assert took <= LIVE_WITHIN, f"the new signal took {took:.1f}s to appear"
        assert len(board_titles(app)) == 5


@ui_test
async def test_board_shows_a_status_changed_by_another_kiosk_redrawing_only_that_row(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot)
        target = next(s for s in board.rows if s.title == "Guard door opened during cycle")
        spy = TableSpy(board.query_one("#board", BoardTable))
        await other_process("-c", SECOND_KIOSK, str(db_path), "acknowledge", str(target.id))
        took = await wait_until(pilot, lambda: next(s.status for s in board.rows if s.id == target.id) == "acknowledged",
                                timeout=3.0, step=0.2, what="the acknowledged status")
        assert took <= LIVE_WITHIN, f"the change took {took:.1f}s to appear"
        await settle(pilot)
        row = [r for r in table_text(board.query_one("#board", DataTable)) if r[5] == "Guard door opened during cycle"]
        assert row[0][2] == "ack'd"
        assert spy.rows_with("status") == {str(target.id)}  # only the changed row was redrawn
        assert spy.clears == 0
        (who,) = query(db_path, "SELECT actor, device FROM audit_log WHERE op = 'acknowledge'")
        assert tuple(who) == ("ben", "kiosk-2")


@pytest.fixture
def second_kiosk(services, db_path, config, clock):
    """Services of another kiosk on the same file (its own engine and connections)."""
    return open_services(db_path, config, clock=clock, device_name="kiosk-2")


def board_below(app) -> BoardScreen:
    return next(s for s in app.screen_stack if isinstance(s, BoardScreen))




@ui_test
async def test_meeting_agenda_shows_a_signal_raised_during_the_meeting(services, second_kiosk):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, MeetingScreen) and app.screen.items, what="the agenda")
        await settle(pilot)
        screen = app.screen
        ingest(second_kiosk, signal_record(51, category="safety", severity="low", title="Missing guard sticker on CNC1"))
        board_below(app).poll_changes()  # the board's one-second timer happens to fire first
        took = await wait_until(pilot, lambda: any(i.signal is not None and i.signal.title == "Missing guard sticker on CNC1"
                                                   for i in screen.items), timeout=3.0, step=0.2,
                                what="the new signal on the agenda")
        assert took <= LIVE_WITHIN


@ui_test
async def test_meeting_agenda_refreshes_from_another_process(services, db_path, tmp_path, monkeypatch):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, MeetingScreen) and app.screen.items, what="the agenda")
        screen = app.screen
        await tiermeet_ingest(db_path, tmp_path, signal_record(51, category="safety", severity="low",
                                                               title="Missing guard sticker on CNC1"))
        took = await wait_until(pilot, lambda: any(i.signal is not None and i.signal.title == "Missing guard sticker on CNC1"
                                                   for i in screen.items), timeout=3.0, step=0.2,
                                what="the new signal on the agenda")
        assert took <= LIVE_WITHIN
        assert [i.section for i in screen.items][:2] == ["Safety", "Safety"]


def _board_action(services) -> None:
    """The CNC1 board with one open action, owned by Ben."""
    from datetime import timedelta

    from conftest import NOW
    from tiermeet.services.signals import ActionSpec

    seed_board(services)
    signal = next(s for s in services.board.page(services.board.scope_for(1, "CNC1")) if s.title == "Conveyor stall predicted")
    services.signals.decide(signal.id, actor="anna", kind="act", rationale="belt",
                            action=ActionSpec("Re-tension conveyor belt", "ben", NOW + timedelta(hours=2)))


async def _open_actions(pilot) -> ActionsScreen:
    app = pilot.app
    await start(pilot)
    await pilot.press("t")
    await wait_until(pilot, lambda: isinstance(app.screen, ActionsScreen) and app.screen.rows, what="the actions view")
    await settle(pilot)
    return app.screen


@ui_test
async def test_actions_view_shows_an_action_finished_at_another_kiosk(services, db_path, monkeypatch):
    _board_action(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        screen = await _open_actions(pilot)
        await other_process("-c", SECOND_KIOSK, str(db_path), "done", str(screen.rows[0].action.id))
        took = await wait_until(pilot, lambda: table_text(screen.query_one("#actions", DataTable))[0][3] == "done",
                                timeout=3.0, step=0.2, what="the action to show done")
        assert took <= LIVE_WITHIN
        assert query(db_path, "SELECT status FROM action")[0][0] == "done"


@ui_test
async def test_actions_view_refreshes_even_when_the_board_polls_first(services, db_path, second_kiosk):
    _board_action(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        screen = await _open_actions(pilot)
        second_kiosk.actions.done(screen.rows[0].action.id, actor="100232")
        board_below(app).poll_changes()  # the board's one-second timer happens to fire first
        took = await wait_until(pilot, lambda: table_text(screen.query_one("#actions", DataTable))[0][3] == "done",
                                timeout=3.0, step=0.2, what="the action to show done")
        assert took <= LIVE_WITHIN


# ----- store errors -----------------------------------------------------------------------

@pytest.fixture
def short_busy_timeout(monkeypatch, tmp_path, config, clock):
    """Services whose connections wait only half a second for another writer's lock
    (the app waits 10 s; a test should not)."""
    import tiermeet.store.engine as engine

    monkeypatch.setattr(engine, "BUSY_TIMEOUT_MS", 500)
    monkeypatch.setattr(engine, "PRAGMAS", tuple(p if "busy_timeout" not in p else "PRAGMA busy_timeout=500"
                                                 for p in engine.PRAGMAS))
    path = tmp_path / "shared.db"
    services = open_services(path, config, clock=clock, device_name="test-kiosk")
    seed_board(services)
    return services


async def decide_dialog_filled(pilot) -> DecideDialog:
    await start(pilot)
    await cursor_to(pilot, "Spindle vibration rising on SP-104")
    await pilot.press("d")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, DecideDialog), what="the decide dialog")
    await type_text(pilot, "Preload drifts every week")
    await fill(pilot, "#owner", "Hana Sato")
    await fill(pilot, "#due", "+4h")
    return pilot.app.screen


def typed(dialog) -> dict[str, str]:
    return {f: dialog.query_one(f"#{f}", Input).value for f in ("rationale", "title", "owner", "due")}


@ui_test
async def test_database_locked_by_another_terminal_keeps_the_form(short_busy_timeout):
    services = short_busy_timeout
    path = services.ctx.db_path
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        dialog = await decide_dialog_filled(pilot)
        before = typed(dialog)
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # another terminal is in the middle of a write
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: error_text(dialog, "form") not in ("", "Saving…"), timeout=5.0,
                             what="the store error")
            assert error_text(dialog, "form") == (
                "The database is busy (another terminal is writing); nothing was saved, try again")
            other.execute("ROLLBACK")
        assert app.screen is dialog and app.is_running
        assert typed(dialog) == before
        assert query(path, "SELECT count(*) FROM decision")[0][0] == 0
        await pilot.press("ctrl+s")  # the lock is gone: the same form saves
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), what="the dialog to close")
        assert query(path, "SELECT kind, rationale FROM decision")[0][:] == ("act", "Preload drifts every week")


@ui_test
async def test_disk_full_is_explained_and_the_form_keeps_its_content(services, db_path, monkeypatch):
    # A full disk cannot be made portably in a test: the service raises what SQLite raises.
    seed_board(services)
    signals = services.signals

    def disk_full(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT INTO decision …", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(signals, "decide", disk_full)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        dialog = await decide_dialog_filled(pilot)
        before = typed(dialog)
        before_counts = counts(db_path)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: error_text(dialog, "form") not in ("", "Saving…"), what="the store error")
        assert error_text(dialog, "form") == "The disk is full; free some space, then try again"
        assert app.screen is dialog and app.is_running and typed(dialog) == before
        assert counts(db_path) == before_counts
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), what="the board")
        await pilot.press("a")  # the app still works
        await wait_until(pilot, lambda: query(db_path, "SELECT count(*) FROM audit_log WHERE op = 'acknowledge'")[0][0] == 1,
                         what="the acknowledgement")


def make_read_only(path) -> Callable[[], None]:
    """Make the database file read-only for real: permission bits, plus the immutable
    attribute when running as root (whom permission bits do not stop). Returns the undo;
    skips the test when neither is possible here."""
    path.chmod(0o444)
    undo = [lambda: path.chmod(0o644)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if done.returncode != 0:
            undo[0]()
            pytest.skip("root ignores file permissions and chattr is not available here")
        undo.insert(0, lambda: subprocess.run(["chattr", "-i", str(path)], check=True))

    def restore() -> None:
        for step in undo:
            step()
    return restore


@ui_test
async def test_read_only_database_file_is_explained(services, db_path, config, clock):
    seed_board(services)
    # Every connection of this process closed first: SQLite hands a new connection the
    # read-write descriptor of a closed one still waiting on its locks, which a fresh
    # process on a read-only file would not have.
    services.ctx.engine.dispose()
    restore = make_read_only(db_path)
    try:
        # The kiosk starts on a file it may read but not write (a fresh process would).
        kiosk = open_services(db_path, config, clock=clock, device_name="test-kiosk")
        app = make_app(kiosk)
        async with app.run_test(size=SMALL) as pilot:
            dialog = await decide_dialog_filled(pilot)
            assert len(app.screen_stack[-2].rows) == 4  # reading works
            before = typed(dialog)
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: error_text(dialog, "form") not in ("", "Saving…"), timeout=5.0,
                             what="the store error")
            assert error_text(dialog, "form") == (
                "The database is read-only here; nothing was saved (check the file's permissions)")
            assert app.screen is dialog and app.is_running and typed(dialog) == before
    finally:
        restore()
    assert query(db_path, "SELECT count(*) FROM decision")[0][0] == 0
