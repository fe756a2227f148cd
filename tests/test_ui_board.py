"""The board a shift lead opens: sign-in, what the board lists and in what order, the
filter bar, the detail pane, and the layout at 80×24 and 160×50."""

import pytest
from textual.widgets import DataTable, Input, OptionList, Select

from tiermeet.ui.screens.board import BoardScreen
from tiermeet.ui.theme import KIOSK_THEME
from tiermeet.ui.screens.picker import BoardPicker
from tiermeet.ui.screens.signin import SignInScreen
from ui_helpers import (
    ANNA,
    HANA,
    SMALL,
    WIDE,
    signing_in,
    board_titles,
    cursor_to,
    make_app,
    notices,
    query,
    screen_lines,
    seed_board,
    settle,
    start,
    text_of,
    type_text,
    ui_test,
    visible,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

BOARD_ORDER = [
    "Conveyor stall predicted",  # critical, window 30m, already breached
    "Spindle vibration rising on SP-104",  # high, 2h window, 40m left
    "Guard door opened during cycle",  # medium, until the end of the early shift
    "Coolant use above baseline",  # low, 1d window
]


# ----- sign-in -------------------------------------------------------------------------

@ui_test
async def test_sign_in_by_badge_scan(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot, ANNA, scan=True)
        assert app.operator is not None and app.operator.id == "anna"
        assert "Anna Weber" in text_of(board.query_one("#topbar"))
        assert "Signed in as Anna Weber" in notices(app)


@ui_test
async def test_sign_in_by_picking_a_name_with_the_mouse(services):
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: signing_in(app), what="sign-in")
        names = app.screen.query_one("#names", OptionList)
        index = next(i for i in range(names.option_count) if names.get_option_at_index(i).id == "hana")
        await pilot.click(names, offset=(4, index + 1 - int(names.scroll_y)))  # +1: the list's top border
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), what="the board")
        assert app.operator.id == "hana"
        assert "Hana Sato" in text_of(app.screen.query_one("#topbar"))


@ui_test
async def test_sign_in_by_picking_a_name_with_the_keyboard(services):
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: signing_in(app), what="sign-in")
        await pilot.press("tab")  # from the badge field to the list of names
        assert isinstance(app.focused, OptionList)
        await pilot.press("down", "down", "enter")  # Anna, Ben, Chen: the list is sorted by name
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), what="the board")
        assert app.operator is not None and app.operator.name == "Chen Li"


@ui_test
async def test_unknown_badge_is_refused_inline_and_the_prompt_stays(services):
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: signing_in(app), what="sign-in")
        await type_text(pilot, "999999", keys=True)
        await pilot.press("enter")
        await pilot.pause()
        signin = app.screen
        assert isinstance(signin, SignInScreen)
        assert "999999" in text_of(signin.query_one("#badge-error"))
        assert signin.query_one("#badge", Input).value == ""  # ready for the next scan
        assert app.operator is None
        await type_text(pilot, ANNA, keys=True)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), what="the board")
        assert app.operator.id == "anna"


@ui_test
async def test_unknown_badge_message_is_on_screen(services):
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: signing_in(app), what="sign-in")
        await type_text(pilot, "999999", keys=True)
        await pilot.press("enter")
        await pilot.pause()
        assert "999999" in text_of(app.screen.query_one("#badge-error"))
        assert visible(app.screen.query_one("#badge-error"))


@ui_test
async def test_browsing_without_signing_in_then_a_triage_key_asks_first(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot, badge=None)
        assert app.operator is None
        assert "not signed in" in text_of(board.query_one("#topbar"))
        assert board_titles(app) == BOARD_ORDER  # reading needs no sign-in
        await cursor_to(pilot, "Spindle vibration rising on SP-104")
        await pilot.press("a")
        await wait_until(pilot, lambda: signing_in(app), what="the sign-in prompt")
        assert query(db_path, "SELECT status FROM signal WHERE title = 'Spindle vibration rising on SP-104'")[0][0] == "open"
        await type_text(pilot, HANA)
        await pilot.press("enter")
        await wait_until(pilot, lambda: query(db_path, "SELECT acknowledged_by FROM signal WHERE status = 'acknowledged'"),
                         what="the acknowledgement")
        await settle(pilot)
        (row,) = query(db_path, "SELECT title, acknowledged_by FROM signal WHERE status = 'acknowledged'")
        assert (row["title"], row["acknowledged_by"]) == ("Spindle vibration rising on SP-104", "hana")
        (audit,) = query(db_path, "SELECT actor, device FROM audit_log WHERE op = 'acknowledge'")
        assert (audit["actor"], audit["device"]) == ("hana", "test-kiosk")
        assert app.operator.id == "hana"


@ui_test
async def test_escape_at_the_second_sign_in_prompt_changes_nothing(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot, badge=None)
        await pilot.press("a")
        await wait_until(pilot, lambda: signing_in(app), what="the sign-in prompt")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, BoardScreen)
        assert query(db_path, "SELECT count(*) FROM audit_log WHERE op = 'acknowledge'")[0][0] == 0


@ui_test
async def test_sign_out_key_asks_for_the_next_person(services):
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot, ANNA)
        await pilot.press("l")
        await wait_until(pilot, lambda: signing_in(app), what="the sign-in prompt")
        assert app.operator is None
        await type_text(pilot, HANA)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.operator is not None and app.operator.id == "hana", what="hana")


# ----- opening a board -------------------------------------------------------------------

@ui_test
async def test_without_tier_and_scope_a_picker_asks_which_board(services):
    seed_board(services)
    app = make_app(services, tier=None, scope=None)
    async with app.run_test(size=SMALL) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, BoardPicker), what="the board picker")
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert labels[0] == "Tier 1 · Line huddle · CNC cell 1"
        assert "Tier 2 · Area stand-up · Machining" in labels
        assert labels[-1] == "Tier 3 · Plant review · Riverside Works"
        await pilot.press("enter")  # the first board
        await start(pilot, ANNA)
        assert (app.screen.tier, app.screen.scope_id) == (1, "CNC1")
        assert board_titles(app) == BOARD_ORDER


# ----- the board ----------------------------------------------------------------------

@ui_test
async def test_board_lists_open_signals_of_its_line_by_time_left(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot)
        assert board_titles(app) == BOARD_ORDER  # not the CNC2 one
        table = board.query_one("#board", DataTable)
        first = [getattr(c, "plain", str(c)) for c in table.get_row_at(0)]
        assert first[:5] == ["CRIT", "late 50m", "open", "D", "CNC1·CONV-2"]
        assert first[6] == "yield-model 64%"
        # The breached row's time left is red; the others are not.
        assert "red" in str(table.get_row_at(0)[1].style)
        assert "red" not in str(table.get_row_at(1)[1].style)
        status = text_of(board.query_one("#statusline"))
        assert "4 signals" in status and "1 past their window" in status


@ui_test
async def test_a_long_board_draws_a_screenful_first_then_fills_the_page_and_pages_on(services, monkeypatch):
    from conftest import signal_record
    from tiermeet.services.board import Scope
    from tiermeet.ui.screens.board import PAGE
    from ui_helpers import ingest

    severities = ("critical", "high", "medium", "low")
    ingest(services, *(signal_record(n, severity=severities[n % 4], title=f"Signal {n:03}",
                                     detected_at=f"2026-11-25T0{n % 8}:{n % 60:02}:00+01:00") for n in range(PAGE + 30)))
    expected = [s.title for s in services.board.page(Scope(tier=1, line="CNC1"), limit=1000)]
    applied = []
    apply_rows = BoardScreen._apply_rows
    monkeypatch.setattr(BoardScreen, "_apply_rows", lambda self, rows, *a: (applied.append(len(rows)), apply_rows(self, rows, *a)))
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot)
        # What one 24-line screen can show came first; the rest of the page followed it.
        assert applied[:2] == [SMALL[1], PAGE - SMALL[1]]
        table = board.query_one("#board", DataTable)
        assert board_titles(app) == expected[:PAGE] and table.row_count == PAGE
        assert text_of(board.query_one("#statusline")).startswith(f"{PAGE}+ signals")
        await pilot.press("ctrl+end")  # the last row of the page asks for the next one
        await wait_until(pilot, lambda: len(board.rows) == PAGE + 30, what="the next page")
        assert board_titles(app) == expected and table.row_count == PAGE + 30
        await settle(pilot)
        assert text_of(board.query_one("#statusline")).startswith(f"{PAGE + 30} signals")


@ui_test
async def test_time_left_counts_down_turns_amber_near_the_end_then_red(services, clock):
    from datetime import timedelta

    from conftest import NOW

    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot)
        table = board.query_one("#board", DataTable)
        row = next(i for i, s in enumerate(board.rows) if s.title == "Spindle vibration rising on SP-104")

        def left():
            cell = table.get_row_at(row)[1]
            return cell.plain, str(cell.style)

        assert left() == ("40m", "")
        clock.at = NOW + timedelta(minutes=15)  # 25 of its 120 minutes left
        app.call_later(board.tick_countdown)  # what the board's five-second timer runs
        await wait_until(pilot, lambda: left()[0] == "25m", what="the countdown")
        assert "dark_orange" in left()[1]
        clock.at = NOW + timedelta(minutes=45)
        app.call_later(board.tick_countdown)
        await wait_until(pilot, lambda: left()[0] == "late 5m", what="the breach")
        assert "red" in left()[1]


@ui_test
async def test_empty_board_says_it_is_clear(services):
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot)
        assert "board is clear" in text_of(board.query_one("#statusline"))


@ui_test
async def test_search_and_filters_narrow_the_board_and_escape_clears_them(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input) and app.focused.id == "search"
        await type_text(pilot, "coolant")
        await wait_until(pilot, lambda: board_titles(app) == ["Coolant use above baseline"], what="the search result")
        await pilot.press("enter")  # back to the board
        assert isinstance(app.focused, DataTable)
        assert "filtered: coolant" in text_of(board.query_one("#statusline"))
        await pilot.press("escape")
        await wait_until(pilot, lambda: board_titles(app) == BOARD_ORDER, what="the whole board again")
        assert board.query_one("#search", Input).value == ""

        board.query_one("#f-category", Select).value = "safety"
        await wait_until(pilot, lambda: board_titles(app) == ["Guard door opened during cycle"], what="the category filter")
        await pilot.press("escape")
        await wait_until(pilot, lambda: board_titles(app) == BOARD_ORDER, what="the whole board again")

        await settle(pilot)
        sources = board.query_one("#f-source", Select)
        assert {value for _label, value in sources._options if isinstance(value, str)} >= {"pdm-spindle", "vision-guard"}
        sources.value = "vision-guard"
        await wait_until(pilot, lambda: board_titles(app) == ["Guard door opened during cycle"], what="the source filter")


@ui_test
async def test_status_filter_finds_closed_signals(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot)
        signal = next(s for s in board.rows if s.title == "Coolant use above baseline")
        services.signals.acknowledge(signal.id, actor="anna")
        await wait_until(pilot, lambda: "Coolant use above baseline" in board_titles(app) and
                         next(s for s in board.rows if s.title == "Coolant use above baseline").status == "acknowledged",
                         what="the acknowledged row")
        board.query_one("#f-status", Select).value = "acknowledged"
        await wait_until(pilot, lambda: board_titles(app) == ["Coolant use above baseline"], what="the status filter")


@ui_test
async def test_line_filter_on_an_area_board(services):
    seed_board(services)
    # Escalate one signal from each line so the tier-2 machining board has two lines on it.
    for line, title in (("CNC1", "Spindle vibration rising on SP-104"), ("CNC2", "Chatter marks on CNC2 parts")):
        signal = next(s for s in services.board.page(services.board.scope_for(1, line)) if s.title == title)
        services.signals.escalate(signal.id, actor="anna", reason="needs the area")
    app = make_app(services, tier=2, scope="machining")
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot, ANNA)
        await wait_until(pilot, lambda: sorted(board_titles(app)) == ["Chatter marks on CNC2 parts", "Spindle vibration rising on SP-104"],
                         what="both escalated signals")
        board.query_one("#f-line", Select).value = "CNC2"
        await wait_until(pilot, lambda: board_titles(app) == ["Chatter marks on CNC2 parts"], what="the line filter")


@ui_test
async def test_detail_pane_tells_the_selected_signals_story(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=WIDE) as pilot:
        board = await start(pilot)
        signal = next(s for s in board.rows if s.title == "Spindle vibration rising on SP-104")
        services.comments.add("signal", signal.id, actor="hana", body="Bearing noise heard on the night shift")
        await cursor_to(pilot, "Spindle vibration rising on SP-104")
        await wait_until(pilot, lambda: "Bearing noise" in text_of(board.query_one("#detail-text")),
                         what="the story, once the cursor rests")
        detail = text_of(board.query_one("#detail-text"))
        assert "Spindle vibration rising on SP-104" in detail
        assert "Suggested action: Check bearing preload" in detail
        assert "pdm-spindle 2.3.1" in detail and "confidence 87%" in detail
        assert "Hana Sato: Bearing noise heard on the night shift" in detail
        assert "History" in detail and "ingest by system:ingest on test-kiosk" in detail
        assert board.query_one("#detail").display and board.query_one("#detail").region.width > 40


@ui_test
async def test_narrow_screen_shows_board_or_detail_and_enter_toggles(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot)
        table, detail = board.query_one("#board"), board.query_one("#detail")
        assert table.region.width == 80 and detail.region.width == 0
        await pilot.press("enter")
        await pilot.pause()
        assert table.region.width == 0 and detail.region.width == 80
        await settle(pilot)
        assert "Conveyor stall predicted" in text_of(board.query_one("#detail-text"))
        await pilot.press("escape")
        await pilot.pause()
        assert table.region.width == 80 and detail.region.width == 0


# ----- layout -------------------------------------------------------------------------

def _column_spans(table: DataTable) -> dict[str, tuple[int, int]]:
    """Screen x range (start, end) of each column, given the table's horizontal scroll."""
    spans, x = {}, table.region.x - int(table.scroll_x)
    for column in table.ordered_columns:
        width = column.get_render_width(table)
        spans[column.key.value] = (x, x + width)
        x += width
    return spans


@pytest.mark.parametrize("size", [SMALL, WIDE], ids=["80x24", "160x50"])
@ui_test
async def test_key_columns_are_on_screen(services, size):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=size) as pilot:
        board = await start(pilot)
        table = board.query_one("#board", DataTable)
        right = table.region.right
        spans = _column_spans(table)
        for key in ("sev", "left", "status", "title"):
            start_x, end_x = spans[key]
            assert start_x >= table.region.x and end_x <= right, f"{key} column {spans[key]} is off the {right}-wide board"
        assert spans["title"][1] - spans["title"][0] >= 24
        lines = screen_lines(app)
        assert any("Conveyor stall" in line for line in lines)
        header = next(line for line in lines if "Sev" in line)
        for label in ("Sev", "Left", "Status", "Title"):
            assert label in header


@ui_test
async def test_every_column_fits_on_a_wall_display(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=WIDE) as pilot:
        board = await start(pilot)
        table = board.query_one("#board", DataTable)
        spans = _column_spans(table)
        assert all(end <= table.region.right for _start, end in spans.values()), spans
        assert not table.show_horizontal_scrollbar or table.virtual_size.width <= table.scrollable_content_region.width


@ui_test
async def test_footer_at_80_columns_shows_the_keys_a_huddle_needs(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        footer = screen_lines(app)[-1]
        for hint in ("Ack", "Decide", "Escalate"):
            assert hint in footer


@ui_test
async def test_footer_at_80_columns_shows_how_to_start_the_meeting(services):
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        footer = screen_lines(app)[-1]
        assert "Meeting" in footer and "Actions" in footer


# ----- kiosk, idle lock, command palette, switching boards --------------------------------

@ui_test
async def test_kiosk_mode_has_no_quit_key_and_the_high_contrast_theme(services):
    app = make_app(services, kiosk=True)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        assert app.theme == KIOSK_THEME.name
        await pilot.press("q")
        await pilot.press("ctrl+q")
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, BoardScreen)


@ui_test
async def test_q_quits_outside_kiosk_mode(services):
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running, what="the app to exit")


@ui_test
async def test_idle_kiosk_locks_and_asks_for_a_badge_again(services, monkeypatch):
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        assert app.idle_seconds == 10 * 60  # the demo kiosk's idle_lock_minutes
        later = app._monotonic() + app.idle_seconds
        monkeypatch.setattr(app, "_monotonic", lambda: later)  # ten minutes without a key or a click
        app.call_later(app._check_idle)  # what the app's idle timer runs every 15 seconds
        await wait_until(pilot, lambda: signing_in(app), what="the lock screen")
        assert app.operator is None
        assert text_of(app.screen.query_one(".dialog-title")) == "Locked after inactivity — sign in again"
        await type_text(pilot, HANA)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen) and app.operator is not None, what="unlock")
        assert app.operator.id == "hana"


async def run_command(pilot, words: str) -> None:
    """Open the command palette, type ``words`` and run the first match."""
    from textual.command import CommandPalette

    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), what="the command palette")
    await type_text(pilot, words)
    palette = pilot.app.screen
    await wait_until(pilot, lambda: palette.query_one("CommandList").option_count > 0, what="matching commands")
    await pilot.press("down", "enter")


@ui_test
async def test_command_palette_opens_the_actions_view(services):
    from tiermeet.ui.screens.actions import ActionsScreen

    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        await run_command(pilot, "Open actions")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionsScreen), what="the actions view")


@ui_test
async def test_kiosk_command_palette_offers_no_quit(services):
    app = make_app(services, kiosk=True)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Quit" not in titles and "Start or open the meeting" in titles and "Sign out" in titles


@ui_test
async def test_switch_board_with_b(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardPicker), what="the board picker")
        options = app.screen.query_one(OptionList)
        options.highlighted = next(i for i in range(options.option_count) if options.get_option_at_index(i).id == "1|CNC2")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen) and app.screen.scope_id == "CNC2",
                         what="the CNC2 board")
        await settle(pilot)
        assert board_titles(app) == ["Chatter marks on CNC2 parts"]
        assert app.operator.id == "anna"  # still signed in
        assert "CNC2" in text_of(app.screen.query_one("#topbar"))
