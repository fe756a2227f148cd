"""Snapshots of what a shift lead sees: the board, the decide dialog and meeting mode, at
a kiosk's 80×24 and a wall display's 160×50.

The time is fixed (the FixedClock of the ``services`` fixture) and record ids are made
predictable (``fixed_ids``), because the detail pane shows short references. Update the
pictures with ``pytest tests/test_ui_snapshots.py --snapshot-update`` after checking them.
The behaviour behind each picture is asserted in the other test_ui_* files; a failure
here means only that the pixels changed.
"""

from datetime import timedelta

import pytest
from textual.widgets import Input

from conftest import NOW
from tiermeet.services.signals import ActionSpec
from tiermeet.ui.screens.decide import DecideDialog
from tiermeet.ui.screens.meeting import MeetingScreen
from ui_helpers import SMALL, WIDE, cursor_to, fixed_ids, make_app, seed_board, settle, start, wait_until

pytestmark = pytest.mark.timeout(60)

SIZES = pytest.mark.parametrize("size", [SMALL, WIDE], ids=["80x24", "160x50"])


@pytest.fixture
def plant(services, clock, monkeypatch):
    """The CNC1 board at 09:00 plant time: four signals, one past its window, and an
    overdue action (made three hours ago, due an hour ago)."""
    fixed_ids(monkeypatch)
    seed_board(services)
    spindle = next(s for s in services.board.page(services.board.scope_for(1, "CNC1"))
                   if s.title == "Spindle vibration rising on SP-104")
    clock.at = NOW - timedelta(hours=3)
    services.signals.decide(spindle.id, actor="anna", kind="act", rationale="Preload drifts every week",
                            action=ActionSpec("Check bearing preload", "hana", NOW - timedelta(hours=1)))
    clock.at = NOW
    return services


def quiet_app(services):
    """The app without toasts: they come and go on timers of their own."""
    app = make_app(services)
    app.notify = lambda *args, **kwargs: None
    return app


async def steady(pilot) -> None:
    """No blinking cursors and no work left: the same picture on every run."""
    await settle(pilot)
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


@SIZES
def test_board(plant, snap_compare, size):
    """The board after Anna signs in: breached first, severity colours, detail pane on wide screens."""

    async def run_before(pilot):
        await start(pilot)
        await cursor_to(pilot, "Spindle vibration rising on SP-104")
        await steady(pilot)

    assert snap_compare(quiet_app(plant), terminal_size=size, run_before=run_before)


@SIZES
def test_decide_dialog(plant, snap_compare, size):
    """The decide dialog on the spindle signal with the rationale typed and a due time previewed."""

    async def run_before(pilot):
        await start(pilot)
        await cursor_to(pilot, "Conveyor stall predicted")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, DecideDialog), what="the decide dialog")
        screen = pilot.app.screen
        screen.query_one("#rationale", Input).value = "Belt slipping at the transfer"
        screen.query_one("#title", Input).value = "Re-tension conveyor belt"
        screen.query_one("#owner", Input).value = "Hana Sato"
        screen.query_one("#due", Input).value = "+4h"
        screen.query_one("#rationale", Input).focus()
        await steady(pilot)

    assert snap_compare(quiet_app(plant), terminal_size=size, run_before=run_before)


@SIZES
def test_meeting_mode(plant, snap_compare, size):
    """Meeting mode: timer, attendance, the agenda in SQDC order then the overdue action."""

    async def run_before(pilot):
        await start(pilot)
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, MeetingScreen) and pilot.app.screen.items,
                         what="the agenda")
        await steady(pilot)

    assert snap_compare(quiet_app(plant), terminal_size=size, run_before=run_before)
