"""The views off the board: open actions by owner (start, done, verify, reassign, change
due, cancel), escalations in, and the shift handover."""

from datetime import timedelta

import pytest
from textual.widgets import DataTable

from conftest import NOW
from tiermeet.services.signals import ActionSpec
from tiermeet.ui.screens.actions import ActionsScreen
from tiermeet.ui.screens.board import BoardScreen
from tiermeet.ui.screens.escalations import EscalationsScreen
from tiermeet.ui.screens.handover import HandoverScreen
from tiermeet.ui.screens.prompts import TextDialog
from ui_helpers import (
    SMALL,
    error_text,
    make_app,
    notices,
    query,
    seed_board,
    settle,
    start,
    table_text,
    text_of,
    type_text,
    ui_test,
    utc,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


def signal_id(services, title: str, tier: int = 1, scope: str = "CNC1"):
    """The id of the board signal titled ``title``."""
    return next(s.id for s in services.board.page(services.board.scope_for(tier, scope)) if s.title == title)


@pytest.fixture
def with_actions(services, clock):
    """Three open actions on CNC1: Hana's is overdue (made three hours ago, due an hour
    ago), Anna's is due in two hours, Farah's tomorrow."""
    seed_board(services)
    clock.at = NOW - timedelta(hours=3)
    services.signals.decide(signal_id(services, "Spindle vibration rising on SP-104"), actor="anna", kind="act",
                            rationale="preload", action=ActionSpec("Check bearing preload", "hana", NOW - timedelta(hours=1)))
    clock.at = NOW
    services.signals.decide(signal_id(services, "Conveyor stall predicted"), actor="anna", kind="act",
                            rationale="belt", action=ActionSpec("Re-tension conveyor belt", "anna", NOW + timedelta(hours=2)))
    services.signals.decide(signal_id(services, "Coolant use above baseline"), actor="anna", kind="act",
                            rationale="leak?", action=ActionSpec("Inspect coolant lines", "farah", NOW + timedelta(days=1)))
    return services


def action_row(db_path, title: str):
    (row,) = query(db_path, "SELECT * FROM action WHERE title = ?", (title,))
    return row


async def open_actions(pilot) -> ActionsScreen:
    app = pilot.app
    await start(pilot)
    await pilot.press("t")
    await wait_until(pilot, lambda: isinstance(app.screen, ActionsScreen) and app.screen.rows, what="the actions view")
    await settle(pilot)
    return app.screen


def shown(screen: ActionsScreen) -> list[list[str]]:
    return table_text(screen.query_one("#actions", DataTable))


def cursor_title(screen: ActionsScreen) -> str:
    table = screen.query_one("#actions", DataTable)
    return screen.rows[table.cursor_row].action.title


async def move_to(pilot, screen: ActionsScreen, title: str) -> None:
    index = [r.action.title for r in screen.rows].index(title)
    screen.query_one("#actions", DataTable).move_cursor(row=index)
    await pilot.pause()


async def wait_for_status(pilot, db_path, title: str, status: str) -> None:
    await wait_until(pilot, lambda: action_row(db_path, title)["status"] == status, what=f"{title!r} to be {status}")
    await settle(pilot)


@ui_test
async def test_actions_view_lists_overdue_first_and_highlighted(with_actions):
    app = make_app(with_actions)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_actions(pilot)
        rows = shown(screen)
        assert [r[1] for r in rows] == ["Check bearing preload", "Re-tension conveyor belt", "Inspect coolant lines"]
        assert [r[0] for r in rows] == ["Hana Sato", "Anna Weber", "Farah Nasser"]
        assert rows[0][2] == "Wed 25 Nov 08:00 (-1h 00m)"
        assert [r[3] for r in rows] == ["open", "open", "open"]
        assert rows[0][5].startswith("A-")
        table = screen.query_one("#actions", DataTable)
        assert "red" in str(table.get_row_at(0)[1].style)
        assert "red" not in str(table.get_row_at(1)[1].style)
        assert text_of(screen.query_one("#statusline")) == "3 open actions · 1 overdue"
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), what="back on the board")


@ui_test
async def test_start_done_verify_with_keys(with_actions, db_path):
    app = make_app(with_actions)
    title = "Re-tension conveyor belt"
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_actions(pilot)
        await move_to(pilot, screen, title)
        await pilot.press("g")
        await wait_for_status(pilot, db_path, title, "in_progress")
        assert utc(action_row(db_path, title)["started_at"]) == NOW
        assert [r[3] for r in shown(screen) if r[1] == title] == ["in progress"]
        assert "Started" in notices(app)

        await move_to(pilot, screen, title)
        await pilot.press("k")
        await wait_for_status(pilot, db_path, title, "done")
        assert [r[3] for r in shown(screen) if r[1] == title] == ["done"]  # still listed: waits for verification

        await move_to(pilot, screen, title)
        await pilot.press("v")
        await wait_for_status(pilot, db_path, title, "verified")
        assert title not in [r[1] for r in shown(screen)]
        assert {r[0] for r in query(db_path, "SELECT actor FROM audit_log WHERE entity = 'action' AND op IN ('start', 'done', 'verify')")} == {"anna"}
        assert len(query(db_path, "SELECT 1 FROM audit_log WHERE entity = 'action' AND op IN ('start', 'done', 'verify')")) == 3


@ui_test
async def test_verifying_an_action_that_is_not_done_is_refused(with_actions, db_path):
    app = make_app(with_actions)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_actions(pilot)
        await move_to(pilot, screen, "Inspect coolant lines")
        await pilot.press("v")
        await wait_until(pilot, lambda: notices(app, "error"), what="the refusal")
        assert "is open; cannot verify it — start it or mark it done" in notices(app, "error")[0]
        assert action_row(db_path, "Inspect coolant lines")["status"] == "open"


@ui_test
async def test_cursor_stays_on_the_action_just_changed(with_actions, db_path):
    app = make_app(with_actions)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_actions(pilot)
        assert cursor_title(screen) == "Check bearing preload"  # the overdue one, first
        await pilot.press("k")
        await wait_for_status(pilot, db_path, "Check bearing preload", "done")
        assert cursor_title(screen) == "Check bearing preload"


@ui_test
async def test_reassign_by_badge(with_actions, db_path):
    app = make_app(with_actions)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_actions(pilot)
        await move_to(pilot, screen, "Inspect coolant lines")
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, TextDialog), what="the reassign prompt")
        dialog = app.screen
        await type_text(pilot, "999999")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "No one matches" in error_text(dialog, "form"), what="the refusal")
        assert action_row(db_path, "Inspect coolant lines")["owner_id"] == "farah"
        dialog.query_one("#text").value = ""
        await type_text(pilot, "100250")  # Hana's badge
        await pilot.press("enter")
        await wait_until(pilot, lambda: action_row(db_path, "Inspect coolant lines")["owner_id"] == "hana", what="the new owner")
        await wait_until(pilot, lambda: ["Hana Sato", "Inspect coolant lines"] in [r[:2] for r in shown(screen)],
                         what="the table to show the new owner")
        (audit,) = query(db_path, "SELECT actor FROM audit_log WHERE op = 'reassign'")
        assert audit["actor"] == "anna"


@ui_test
async def test_change_due_and_bad_due_time(with_actions, db_path):
    app = make_app(with_actions)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_actions(pilot)
        assert cursor_title(screen) == "Check bearing preload"
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, TextDialog), what="the due prompt")
        dialog = app.screen
        await type_text(pilot, "banana")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "not a due time" in error_text(dialog, "form"), what="the inline error")
        assert dialog.query_one("#text").value == "banana"
        dialog.query_one("#text").value = ""
        await type_text(pilot, "+6h")
        await pilot.press("enter")
        await wait_until(pilot, lambda: utc(action_row(db_path, "Check bearing preload")["due_at"]) == NOW + timedelta(hours=6),
                         what="the new due time")
        await settle(pilot)
        await wait_until(pilot, lambda: text_of(screen.query_one("#statusline")) == "3 open actions · 0 overdue",
                         what="no action overdue any more")


@ui_test
async def test_cancel_an_action(with_actions, db_path):
    app = make_app(with_actions)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_actions(pilot)
        await move_to(pilot, screen, "Inspect coolant lines")
        await pilot.press("n")
        await wait_for_status(pilot, db_path, "Inspect coolant lines", "cancelled")
        assert "Inspect coolant lines" not in [r[1] for r in shown(screen)]


@ui_test
async def test_no_open_actions(services):
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionsScreen), what="the actions view")
        await settle(pilot)
        assert text_of(app.screen.query_one("#statusline")) == "No open actions."
        await pilot.press("g")
        await pilot.pause()
        assert "Pick an action first" in notices(app, "warning")


# ----- escalations in, handover -----------------------------------------------------------

@ui_test
async def test_escalations_in_shows_what_tier_1_saw_decided_and_why(services):
    seed_board(services)
    sid = signal_id(services, "Spindle vibration rising on SP-104")
    services.signals.acknowledge(sid, actor="anna")
    services.comments.add("signal", sid, actor="farah", body="Noise getting louder")
    services.signals.escalate(sid, actor="anna", reason="Needs the maintenance crew")
    app = make_app(services, tier=2, scope="machining")
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot, "100260")  # Julia, the machining supervisor
        assert [s.title for s in board.rows] == ["Spindle vibration rising on SP-104"]
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, EscalationsScreen), what="escalations in")
        await wait_until(pilot, lambda: "Loading" not in text_of(app.screen.query_one("#escalations")), what="the list")
        text = text_of(app.screen.query_one("#escalations"))
        assert "HIGH Spindle vibration rising on SP-104" in text
        assert "from tier 1 (CNC1) by Anna Weber: Needs the maintenance crew" in text
        assert "tier 1 saw it acknowledged, acknowledged by Anna Weber" in text
        assert "comment by Farah Nasser: Noise getting louder" in text


@ui_test
async def test_escalations_in_when_nothing_came_up(services):
    app = make_app(services, tier=2, scope="machining")
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, EscalationsScreen), what="escalations in")
        await wait_until(pilot, lambda: "Loading" not in text_of(app.screen.query_one("#escalations")), what="the list")
        assert text_of(app.screen.query_one("#escalations")) == "Nothing was escalated to this board today."


@ui_test
async def test_handover_lists_what_is_still_open_with_owners(with_actions):
    app = make_app(with_actions)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HandoverScreen), what="the handover")
        await wait_until(pilot, lambda: "Loading" not in text_of(app.screen.query_one("#handover")), what="the list")
        text = text_of(app.screen.query_one("#handover"))
        assert "Shift early ends 14:00" in text
        assert "Open signals (4)" in text and "Open actions (3)" in text
        assert "Spindle vibration rising on SP-104 · actioned" in text and "Hana Sato" in text
        assert "Guard door opened during cycle · open" in text and "no owner" in text
        assert "Hana Sato: Check bearing preload · due Wed 08:00 · open" in text
