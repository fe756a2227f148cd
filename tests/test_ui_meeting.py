"""Meeting mode: start from the board, attendance by badge, the agenda in SQDC order then
overdue actions and shelved items, decisions attached to the meeting, the time box, and
the minutes — on screen, in the database, and from ``tiermeet minutes``."""

import json
from datetime import timedelta

import pytest
from textual.widgets import DataTable, Input, Markdown

from conftest import NOW
from tiermeet.services.signals import ActionSpec
from tiermeet.ui.screens.board import BoardScreen
from tiermeet.ui.screens.decide import DecideDialog
from tiermeet.ui.screens.meeting import MeetingScreen, MinutesScreen
from ui_helpers import (
    FARAH,
    HANA,
    SMALL,
    WIDE,
    signing_in,
    fill,
    make_app,
    query,
    screen_lines,
    seed_board,
    settle,
    start,
    table_text,
    text_of,
    type_text,
    ui_test,
    visible,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

SPINDLE = "Spindle vibration rising on SP-104"


def signal_id(services, title: str):
    return next(s.id for s in services.board.page(services.board.scope_for(1, "CNC1")) if s.title == title)


@pytest.fixture
def huddle(services, clock):
    """The CNC1 board before the huddle: four open signals, an overdue action on the
    spindle signal, and the coolant signal shelved until tomorrow morning."""
    seed_board(services)
    clock.at = NOW - timedelta(hours=3)
    services.signals.decide(signal_id(services, SPINDLE), actor="anna", kind="act", rationale="preload",
                            action=ActionSpec("Check bearing preload", "hana", NOW - timedelta(hours=1)))
    clock.at = NOW
    services.signals.decide(signal_id(services, "Coolant use above baseline"), actor="anna", kind="shelve",
                            rationale="wait for the filter change", shelve_until=NOW + timedelta(hours=20))
    return services


async def open_meeting(pilot, size_badge: str = "100231") -> MeetingScreen:
    app = pilot.app
    await start(pilot, size_badge)
    await pilot.press("m")
    await wait_until(pilot, lambda: isinstance(app.screen, MeetingScreen) and app.screen.items, what="the meeting agenda")
    await settle(pilot)
    return app.screen


def agenda(screen: MeetingScreen) -> list[tuple[str, str]]:
    """(section, item) of every agenda line."""
    return [(row[0], row[3]) for row in table_text(screen.query_one("#agenda", DataTable))]


async def scan(pilot, screen: MeetingScreen, badge: str) -> None:
    await pilot.press("ctrl+b")
    assert pilot.app.focused is screen.query_one("#badge", Input)
    await type_text(pilot, badge, keys=True)
    await pilot.press("enter")


@ui_test
async def test_start_meeting_shows_agenda_in_sqdc_order_then_overdue_then_shelved(huddle, db_path):
    app = make_app(huddle)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_meeting(pilot)
        assert agenda(screen) == [
            ("Safety", "MEDIUM Guard door opened during cycle (CNC1)"),
            ("Quality", "HIGH Spindle vibration rising on SP-104 (CNC1)"),
            ("Delivery", "CRITICAL Conveyor stall predicted (CNC1)"),
            ("Overdue actions", "Check bearing preload — Hana Sato"),
            ("Shelved, due for review", "LOW Coolant use above baseline (CNC1)"),
        ]
        title = text_of(screen.query_one("#meeting-title"))
        assert "Tier 1 Line huddle · CNC1 · facilitator Anna Weber" in title
        assert text_of(screen.query_one("#timer")).strip() == "00:00 / 15:00"
        assert "✓ Anna Weber" in text_of(screen.query_one("#attendees"))
        assert screen.query_one("#agenda", DataTable).cursor_row == 0  # the current item is highlighted
        (meeting,) = query(db_path, "SELECT tier, scope, facilitator_id, timebox_minutes, ended_at FROM meeting")
        assert tuple(meeting) == (1, "CNC1", "anna", 15, None)


@ui_test
async def test_attendance_by_badge_scan(huddle, db_path):
    app = make_app(huddle)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_meeting(pilot)
        await scan(pilot, screen, FARAH)
        await wait_until(pilot, lambda: "✓ Farah Nasser" in text_of(screen.query_one("#attendees")), what="Farah present")
        assert text_of(screen.query_one("#badge-error")) == "Farah Nasser is here"
        assert screen.query_one("#badge", Input).value == ""  # ready for the next badge
        await scan(pilot, screen, "999")
        await wait_until(pilot, lambda: "999" in text_of(screen.query_one("#badge-error")), what="the refusal")
        assert text_of(screen.query_one("#badge-error")) == "No one has badge or name '999'"
        await scan(pilot, screen, FARAH)  # a second scan changes nothing
        await settle(pilot)
        present = sorted(r[0] for r in query(db_path, "SELECT person_id FROM meeting_attendance"))
        assert present == ["anna", "farah"]
        assert "2 present" in text_of(screen.query_one("#statusline"))


@ui_test
async def test_decision_in_the_meeting_then_end_shows_minutes_and_cli_exports_them(huddle, db_path, run_cli):
    app = make_app(huddle)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_meeting(pilot)
        await scan(pilot, screen, HANA)
        await wait_until(pilot, lambda: "✓ Hana Sato" in text_of(screen.query_one("#attendees")), what="Hana present")
        screen.query_one("#agenda", DataTable).focus()
        await pilot.press("down")  # the Quality item: the spindle signal
        assert screen.selected is not None and screen.selected.title == SPINDLE
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, DecideDialog), what="the decide dialog")
        await type_text(pilot, "Replace the bearing this week")
        await fill(pilot, "#title", "Order a spindle bearing")
        await fill(pilot, "#owner", "Hana Sato")
        await fill(pilot, "#due", "+1d")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, what="back in the meeting")
        await wait_until(pilot, lambda: query(db_path, "SELECT count(*) FROM decision WHERE meeting_id IS NOT NULL")[0][0] == 1,
                         what="the decision")
        (row,) = query(db_path, "SELECT d.kind, d.decided_by, d.meeting_id = m.id AS attached FROM decision d, meeting m "
                                "WHERE d.meeting_id IS NOT NULL")
        assert tuple(row) == ("act", "anna", 1)

        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: isinstance(app.screen, MinutesScreen), what="the minutes")
        await settle(pilot)
        minutes = app.screen.markdown
        assert "# Tier 1 meeting · CNC1 · Wed 25 Nov 2026 09:00" in minutes
        assert "- Attendees (2): Anna Weber, Hana Sato" in minutes
        assert "Spindle vibration rising on SP-104: act by Anna Weber — Replace the bearing this week" in minutes
        assert "- Order a spindle bearing — **Hana Sato**, due Thu 26 Nov 09:00 (open)" in minutes
        assert "Duration: 0 min (time box 15 min)" in minutes
        await wait_until(pilot, lambda: "Attendees (2): Anna Weber, Hana Sato" in "\n".join(screen_lines(app)),
                         what="the minutes on screen")
        rendered = "\n".join(screen_lines(app))
        assert "act by Anna Weber" in rendered and "Order a spindle bearing — Hana Sato" in rendered
        assert app.meeting is None
        (meeting,) = query(db_path, "SELECT ended_at FROM meeting")
        assert meeting["ended_at"] is not None

        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), what="back on the board")

    result = run_cli("--db", db_path, "minutes", "--last", "--format", "json")
    assert result.returncode == 0, result.stderr
    exported = json.loads(result.stdout)
    assert exported["attendees"] == ["Anna Weber", "Hana Sato"]
    assert exported["facilitator"] == "Anna Weber" and exported["tier"] == 1 and exported["scope"] == "CNC1"
    assert [(d["signal_title"], d["kind"], d["by"], d["rationale"]) for d in exported["decisions"]] == [
        (SPINDLE, "act", "Anna Weber", "Replace the bearing this week")]
    assert [(a["title"], a["owner"]) for a in exported["actions"]] == [("Order a spindle bearing", "Hana Sato")]


@ui_test
async def test_escape_returns_to_the_board_and_m_resumes_the_same_meeting(huddle, db_path):
    app = make_app(huddle)
    async with app.run_test(size=SMALL) as pilot:
        first = await open_meeting(pilot)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), what="the board")
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, MeetingScreen), what="the meeting again")
        assert app.screen.meeting.id == first.meeting.id
        assert query(db_path, "SELECT count(*) FROM meeting")[0][0] == 1


@ui_test
async def test_starting_a_meeting_asks_who_facilitates(huddle, db_path):
    app = make_app(huddle)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot, badge=None)
        await pilot.press("m")
        await wait_until(pilot, lambda: signing_in(app), what="the sign-in prompt")
        assert query(db_path, "SELECT count(*) FROM meeting")[0][0] == 0
        await type_text(pilot, "100231")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MeetingScreen), what="the meeting")
        assert query(db_path, "SELECT facilitator_id FROM meeting")[0][0] == "anna"


@ui_test
async def test_time_box_turns_amber_at_80_percent_and_red_when_over(huddle, clock):
    app = make_app(huddle)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_meeting(pilot)
        timer = screen.query_one("#timer")
        assert "dark_orange" not in str(timer.content.style)
        clock.at = NOW + timedelta(minutes=12)
        await wait_until(pilot, lambda: text_of(timer).strip() == "12:00 / 15:00", what="the timer to move")
        assert "dark_orange" in str(timer.content.style)
        clock.at = NOW + timedelta(minutes=16, seconds=5)
        await wait_until(pilot, lambda: text_of(timer).strip() == "16:05 / 15:00", what="the timer to pass the box")
        assert "red" in str(timer.content.style)


@ui_test
async def test_minutes_screen_at_80x24_shows_who_was_there(huddle):
    app = make_app(huddle)
    async with app.run_test(size=SMALL) as pilot:
        await open_meeting(pilot)
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: isinstance(app.screen, MinutesScreen), what="the minutes")
        await settle(pilot)
        assert app.screen.query_one(Markdown).region.width > 0
        await wait_until(pilot, lambda: "Attendees (1): Anna Weber" in "\n".join(screen_lines(app)),
                         what="the minutes on screen")


@ui_test
async def test_board_topbar_says_a_meeting_is_running(huddle):
    app = make_app(huddle)
    async with app.run_test(size=SMALL) as pilot:
        await open_meeting(pilot)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), what="the board")
        assert "MEETING" in text_of(app.screen.query_one("#topbar"))


@ui_test
async def test_attendance_confirmation_is_on_screen(huddle):
    app = make_app(huddle)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_meeting(pilot)
        await scan(pilot, screen, FARAH)
        await wait_until(pilot, lambda: text_of(screen.query_one("#badge-error")) == "Farah Nasser is here", what="Farah")
        assert visible(screen.query_one("#badge-error"))


@ui_test
async def test_switching_boards_does_not_carry_the_meeting_along(huddle, db_path):
    from textual.widgets import OptionList

    from tiermeet.ui.screens.picker import BoardPicker

    app = make_app(huddle)
    async with app.run_test(size=SMALL) as pilot:
        await open_meeting(pilot)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), what="the board")
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardPicker), what="the board picker")
        options = app.screen.query_one(OptionList)
        options.highlighted = next(i for i in range(options.option_count) if options.get_option_at_index(i).id == "1|CNC2")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen) and app.screen.scope_id == "CNC2",
                         what="the CNC2 board")
        await settle(pilot)
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, MeetingScreen), what="meeting mode")
        assert app.screen.meeting.scope == "CNC2"


@ui_test
async def test_ctrl_e_ends_the_meeting_right_after_taking_attendance(huddle, db_path):
    app = make_app(huddle)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_meeting(pilot)
        await scan(pilot, screen, FARAH)
        await wait_until(pilot, lambda: "✓ Farah Nasser" in text_of(screen.query_one("#attendees")), what="Farah present")
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: isinstance(app.screen, MinutesScreen), what="the minutes")
