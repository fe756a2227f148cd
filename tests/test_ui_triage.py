"""One-key triage from the board: each kind of decision, escalation, shelving, resolving
with an outcome, comments, refusals — checked on screen and in the database file."""

from datetime import timedelta

import pytest
from textual.widgets import DataTable, Input, Select

from conftest import NOW
from tiermeet.services.requests import Outcome
from tiermeet.ui.screens.board import BoardScreen
from tiermeet.ui.screens.decide import DecideDialog
from tiermeet.ui.screens.prompts import ResolveDialog, TextDialog
from ui_helpers import (
    FARAH,
    JULIA,
    SMALL,
    WIDE,
    board_titles,
    click_radio,
    counts,
    cursor_to,
    drawn_row,
    error_text,
    fill,
    make_app,
    notices,
    query,
    seed_board,
    settle,
    signal_status,
    start,
    text_of,
    type_text,
    ui_test,
    utc,
    visible,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

SPINDLE = "Spindle vibration rising on SP-104"
CONVEYOR = "Conveyor stall predicted"


async def open_dialog(pilot, key: str, title: str = SPINDLE, kind=DecideDialog):
    """Put the cursor on ``title`` and press ``key``; returns the dialog that opened."""
    await cursor_to(pilot, title)
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, kind), what=f"the {kind.__name__}")
    return pilot.app.screen


async def save_and_close(pilot, key: str = "ctrl+s") -> BoardScreen:
    """Save the open dialog and wait until the board is back and reloaded."""
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, BoardScreen), what="the dialog to close")
    await settle(pilot)
    return pilot.app.screen


def board_titles_of(board: BoardScreen) -> list[str]:
    """Titles on ``board`` in the order shown."""
    return [s.title for s in board.rows]


def row_status(app, title: str) -> str | None:
    """The status a board row shows for ``title`` (None: not on the board)."""
    return next((s.status for s in app.screen.rows if s.title == title), None)


# ----- acknowledge -------------------------------------------------------------------

@ui_test
async def test_acknowledge_with_one_key(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        await cursor_to(pilot, SPINDLE)
        await pilot.press("a")
        await wait_until(pilot, lambda: row_status(app, SPINDLE) == "acknowledged", what="the row to show ack'd")
        (row,) = query(db_path, "SELECT status, acknowledged_by, acknowledged_at FROM signal WHERE title = ?", (SPINDLE,))
        assert (row["status"], row["acknowledged_by"], utc(row["acknowledged_at"])) == ("acknowledged", "anna", NOW)
        (audit,) = query(db_path, "SELECT actor FROM audit_log WHERE op = 'acknowledge'")
        assert audit["actor"] == "anna"
        assert any(n.startswith("Acknowledged S-") for n in notices(app))
        assert SPINDLE in board_titles(app)  # acknowledging is not resolving: it stays on the board


@ui_test
async def test_acknowledging_twice_is_refused_with_the_rule_as_a_notification(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        await cursor_to(pilot, SPINDLE)
        await pilot.press("a")
        await wait_until(pilot, lambda: row_status(app, SPINDLE) == "acknowledged", what="the acknowledgement")
        before = counts(db_path)
        await pilot.press("a")
        await wait_until(pilot, lambda: notices(app, "error"), what="an error notification")
        assert "already acknowledged" in notices(app, "error")[0]
        assert counts(db_path) == before
        assert isinstance(app.screen, BoardScreen)


# ----- decide: act, monitor ---------------------------------------------------------------

@ui_test
async def test_decide_act_with_an_action_owned_by_name_due_in_four_hours(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        dialog = await open_dialog(pilot, "d")
        assert app.focused is dialog.query_one("#rationale", Input)
        assert dialog.query_one("#title", Input).value == "Check bearing preload"  # the suggested action
        await type_text(pilot, "Preload drifts every week")
        await fill(pilot, "#owner", "Hana Sato")
        await fill(pilot, "#due", "+4h")
        assert error_text(dialog, "due") == "= Wed 25 Nov 13:00"  # a preview in plant time
        board = app.screen_stack[-2]
        table = board.query_one("#board", DataTable)
        index = board_titles_of(board).index(SPINDLE)
        neighbour = drawn_row(table, index + 1)
        assert " open " in drawn_row(table, index)
        board = await save_and_close(pilot)
        assert row_status(app, SPINDLE) == "actioned"
        # The row is redrawn in place with its new state; the others are drawn as before.
        assert board_titles_of(board).index(SPINDLE) == index
        assert "decided" in drawn_row(table, index) and "actioned" in drawn_row(table, index)
        assert drawn_row(table, index + 1) == neighbour
        assert any(n.startswith("Decision recorded on S-") for n in notices(app))

        (decision,) = query(db_path, "SELECT d.* FROM decision d JOIN signal s ON s.id = d.signal_id WHERE s.title = ?", (SPINDLE,))
        assert (decision["kind"], decision["rationale"], decision["decided_by"]) == ("act", "Preload drifts every week", "anna")
        assert decision["meeting_id"] is None and decision["tier"] == 1
        (action,) = query(db_path, "SELECT * FROM action")
        assert (action["title"], action["owner_id"], action["status"], action["created_by"]) == (
            "Check bearing preload", "hana", "open", "anna")
        assert utc(action["due_at"]) == NOW + timedelta(hours=4)
        assert action["decision_id"] == decision["id"]
        assert signal_status(db_path, SPINDLE) == ("actioned", 1)
        await wait_until(pilot, lambda: "act by Anna Weber" in text_of(board.query_one("#detail-text")),
                         what="the decision in the signal's story")  # loaded once the cursor rests
        detail = text_of(board.query_one("#detail-text"))
        assert "act by Anna Weber — Preload drifts every week" in detail
        assert "Check bearing preload · Hana Sato · due Wed 25 Nov 13:00 · open" in detail


@ui_test
async def test_decide_act_owner_by_badge_and_due_end_of_shift(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        await open_dialog(pilot, "d")
        await fill(pilot, "#owner", "100240")  # Farah's badge
        await fill(pilot, "#due", "end of shift")
        await save_and_close(pilot)
        (action,) = query(db_path, "SELECT owner_id, due_at FROM action")
        assert action["owner_id"] == "farah"
        assert utc(action["due_at"]) == NOW.replace(hour=13)  # the early shift ends 14:00 in Berlin


@ui_test
async def test_keys_typed_right_after_tab_go_to_the_next_field(services, db_path):
    # A fast typist's keys reach the app together. Each key is handed to the field that
    # has the focus when the app reads it, and a Tab used to move the focus only once the
    # field it left had handled it: what followed the Tab landed in that field ("hana+4h").
    from textual import events

    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        dialog = await open_dialog(pilot, "d")
        owner, due = dialog.query_one("#owner", Input), dialog.query_one("#due", Input)
        owner.focus()
        await pilot.pause()
        for key in (*"hana", "tab", "plus", "4", "h"):
            app.post_message(events.Key(key, {"tab": "\t", "plus": "+"}.get(key, key)))
        await wait_until(pilot, lambda: due.value == "+4h", what="the due time in its field")
        assert owner.value == "hana" and app.focused is due
        await save_and_close(pilot)
        (action,) = query(db_path, "SELECT owner_id, due_at FROM action")
        assert action["owner_id"] == "hana" and utc(action["due_at"]) == NOW + timedelta(hours=4)


@ui_test
async def test_decide_act_without_an_action(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        dialog = await open_dialog(pilot, "d")
        dialog.query_one("#title", Input).value = ""  # no follow-up work: just the decision
        await fill(pilot, "#rationale", "Operator already changed the tool")
        await save_and_close(pilot)
        assert query(db_path, "SELECT kind FROM decision")[0][0] == "act"
        assert query(db_path, "SELECT count(*) FROM action")[0][0] == 0


@ui_test
async def test_decide_monitor(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=WIDE) as pilot:
        await start(pilot)
        dialog = await open_dialog(pilot, "d")
        await click_radio(pilot, "monitor")
        assert not dialog.query_one("#act-fields").display  # no action fields for monitor
        await fill(pilot, "#rationale", "Watch it for one more shift")
        await save_and_close(pilot)
        (decision,) = query(db_path, "SELECT kind, rationale, decided_by FROM decision")
        assert tuple(decision) == ("monitor", "Watch it for one more shift", "anna")
        assert query(db_path, "SELECT count(*) FROM action")[0][0] == 0  # the prefilled title was not saved
        assert row_status(app, SPINDLE) == "actioned"


@ui_test
async def test_every_change_is_stamped_with_the_signed_in_person(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot, JULIA)
        await cursor_to(pilot, CONVEYOR)
        await pilot.press("a")
        await wait_until(pilot, lambda: row_status(app, CONVEYOR) == "acknowledged", what="the acknowledgement")
        await open_dialog(pilot, "d", CONVEYOR)
        await fill(pilot, "#owner", "Anna Weber")
        await fill(pilot, "#due", "+2h")
        await save_and_close(pilot)
        assert query(db_path, "SELECT decided_by FROM decision")[0][0] == "julia"
        assert query(db_path, "SELECT created_by, owner_id FROM action")[0][:] == ("julia", "anna")
        actors = {r[0] for r in query(db_path, "SELECT actor FROM audit_log WHERE op NOT IN ('ingest', 'config')")}
        assert actors == {"julia"}
        assert {r[0] for r in query(db_path, "SELECT actor FROM outbox WHERE actor NOT LIKE 'system:%'")} == {"julia"}
        assert {r[0] for r in query(db_path, "SELECT device FROM audit_log WHERE actor = 'julia'")} == {"test-kiosk"}


# ----- decide dialog validation ----------------------------------------------------------

@ui_test
async def test_bad_due_time_is_shown_inline_and_the_form_keeps_what_was_typed(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        before = counts(db_path)
        dialog = await open_dialog(pilot, "d")
        await type_text(pilot, "Preload drifts")
        await fill(pilot, "#title", "Reset spindle preload")
        await fill(pilot, "#owner", "Hana Sato")
        await fill(pilot, "#due", "banana")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dialog
        message = error_text(dialog, "due")
        assert "'banana' is not a due time" in message
        assert "+4h" in message and "tomorrow 14:00" in message and "end of shift" in message
        assert dialog.query_one("#due-error").has_class("shown")
        for field, typed in (("rationale", "Preload drifts"), ("title", "Reset spindle preload"),
                             ("owner", "Hana Sato"), ("due", "banana")):
            assert dialog.query_one(f"#{field}", Input).value == typed
        assert error_text(dialog, "owner") == "" and error_text(dialog, "form") == ""
        assert counts(db_path) == before
        assert query(db_path, "SELECT count(*) FROM decision")[0][0] == 0

        await fill(pilot, "#due", "tomorrow 14:00")
        await save_and_close(pilot)
        (action,) = query(db_path, "SELECT title, due_at FROM action")
        assert action["title"] == "Reset spindle preload"
        assert utc(action["due_at"]) == NOW.replace(day=26, hour=13)


@ui_test
async def test_unknown_owner_and_past_due_are_shown_beside_their_fields(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        dialog = await open_dialog(pilot, "d")
        await fill(pilot, "#owner", "Zed")
        await fill(pilot, "#due", "2026-11-20 08:00")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dialog
        assert error_text(dialog, "owner") == "No one matches 'Zed'"
        assert "in the past" in error_text(dialog, "due")
        assert app.focused is dialog.query_one("#owner")  # the first field at fault, ready to retype
        dialog.query_one("#title", Input).value = ""
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert error_text(dialog, "title") == "Name the action, or clear owner and due"
        assert app.focused is dialog.query_one("#title")
        assert query(db_path, "SELECT count(*) FROM decision")[0][0] == 0


@ui_test
async def test_escape_cancels_the_decide_dialog_without_saving(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        before = counts(db_path)
        await open_dialog(pilot, "d")
        await type_text(pilot, "never mind")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), what="the board")
        assert counts(db_path) == before


# ----- dismiss, shelve ------------------------------------------------------------------

@ui_test
async def test_dismiss_needs_a_disposition_then_leaves_the_board(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=WIDE) as pilot:
        await start(pilot)
        before = counts(db_path)
        dialog = await open_dialog(pilot, "x")
        assert dialog.query_one("#dismiss-fields").display and not dialog.query_one("#act-fields").display
        await type_text(pilot, "Sensor was being cleaned")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dialog
        assert error_text(dialog, "disposition") == "Pick why it needs no response"
        assert dialog.query_one("#rationale", Input).value == "Sensor was being cleaned"
        assert counts(db_path) == before
        assert signal_status(db_path, SPINDLE) == ("open", 1)

        await click_radio(pilot, "false_positive")
        await save_and_close(pilot)
        (decision,) = query(db_path, "SELECT kind, disposition, rationale FROM decision")
        assert tuple(decision) == ("dismiss", "false_positive", "Sensor was being cleaned")
        assert query(db_path, "SELECT status, disposition FROM signal WHERE title = ?", (SPINDLE,))[0][:] == (
            "dismissed", "false_positive")
        assert SPINDLE not in board_titles(app)


@ui_test
async def test_dismiss_without_a_reason_is_refused_beside_the_field(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=WIDE) as pilot:
        await start(pilot)
        dialog = await open_dialog(pilot, "x")
        await click_radio(pilot, "duplicate")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dialog
        assert error_text(dialog, "rationale") == "Say why you dismiss it"
        assert query(db_path, "SELECT count(*) FROM decision")[0][0] == 0


@ui_test
async def test_shelve_until_tomorrow_morning(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        dialog = await open_dialog(pilot, "s")
        assert dialog.query_one("#shelve-fields").display
        await type_text(pilot, "Waiting for the tool change")
        await pilot.press("ctrl+s")  # no end time yet
        await settle(pilot)
        assert app.screen is dialog and "type a due time" in error_text(dialog, "until")
        await fill(pilot, "#until", "tomorrow 06:00")
        assert error_text(dialog, "until") == "= Thu 26 Nov 06:00"
        await save_and_close(pilot)
        (decision,) = query(db_path, "SELECT kind, shelved_until FROM decision")
        assert decision["kind"] == "shelve"
        expected = NOW.replace(day=26, hour=5)  # 06:00 in Berlin
        assert utc(decision["shelved_until"]) == expected
        (signal,) = query(db_path, "SELECT status, shelved_until FROM signal WHERE title = ?", (SPINDLE,))
        assert signal["status"] == "shelved" and utc(signal["shelved_until"]) == expected
        assert SPINDLE not in board_titles(app)


# ----- escalate -----------------------------------------------------------------------

@ui_test
async def test_escalate_needs_a_reason_then_moves_the_signal_to_tier_2(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        before = counts(db_path)
        dialog = await open_dialog(pilot, "e", kind=TextDialog)
        assert "Escalate to tier 2" in text_of(dialog.query_one(".dialog-title"))
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog and error_text(dialog, "text") == "This is required"
        assert counts(db_path) == before
        await type_text(pilot, "Needs the maintenance crew")
        await save_and_close(pilot, "enter")
        assert signal_status(db_path, SPINDLE) == ("open", 2)
        (esc,) = query(db_path, "SELECT from_tier, to_tier, reason, raised_by, automatic FROM escalation")
        assert tuple(esc) == (1, 2, "Needs the maintenance crew", "anna", 0)
        assert SPINDLE not in board_titles(app)
        assert any("to tier 2" in n for n in notices(app))


@ui_test
async def test_escalate_as_a_decision_kind(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=WIDE) as pilot:
        await start(pilot)
        await open_dialog(pilot, "d", CONVEYOR)
        await click_radio(pilot, "escalate")
        await fill(pilot, "#rationale", "Line stop risk beyond the cell")
        await save_and_close(pilot)
        assert signal_status(db_path, CONVEYOR) == ("open", 2)
        assert query(db_path, "SELECT kind, decided_by FROM decision")[0][:] == ("escalate", "anna")
        assert query(db_path, "SELECT reason FROM escalation")[0][0] == "Line stop risk beyond the cell"
        assert CONVEYOR not in board_titles(app)


# ----- resolve, comment, reopen ------------------------------------------------------------

@ui_test
async def test_resolve_with_outcome_numbers_and_bad_numbers_inline(services, db_path):
    seed_board(services)
    signal = next(s for s in services.board.page(services.board.scope_for(1, "CNC1")) if s.title == SPINDLE)
    services.signals.decide(signal.id, actor="anna", kind="monitor", rationale="watch the preload")
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        dialog = await open_dialog(pilot, "r", kind=ResolveDialog)
        assert app.focused is dialog.query_one("#downtime", Input)
        await type_text(pilot, "1e")  # a number field still lets a half-typed exponent through
        await fill(pilot, "#scrap", "-3")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog
        assert error_text(dialog, "downtime") == "'1e' is not a number"
        assert error_text(dialog, "scrap") == "Cannot be negative"
        assert signal_status(db_path, SPINDLE) == ("actioned", 1)

        await fill(pilot, "#downtime", "45")
        await fill(pilot, "#scrap", "12")
        await fill(pilot, "#yield", "-0.5")
        await fill(pilot, "#note", "Preload reset, vibration back to normal")
        await save_and_close(pilot, "enter")
        (row,) = query(db_path, "SELECT status, outcome, resolved_at FROM signal WHERE title = ?", (SPINDLE,))
        assert row["status"] == "resolved" and utc(row["resolved_at"]) == NOW
        import json

        outcome = json.loads(row["outcome"])
        assert outcome == {"downtime_minutes_avoided": 45.0, "scrap_avoided": 12.0, "yield_effect": -0.5,
                           "note": "Preload reset, vibration back to normal"}
        assert SPINDLE not in board_titles(app)


@ui_test
async def test_resolving_an_open_signal_is_refused_before_the_form_opens(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot)
        before = counts(db_path)
        await pilot.press("r")
        await wait_until(pilot, lambda: notices(app, "error"), what="the refusal")
        assert "is open; cannot resolve it yet — record a decision first" in notices(app, "error")[-1]
        assert app.screen is board  # nobody types an outcome only to be told no
        assert counts(db_path) == before
        assert signal_status(db_path, SPINDLE) == ("open", 1)


@ui_test
async def test_comment_is_saved_and_shown_in_the_story(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot)
        await open_dialog(pilot, "c", kind=TextDialog)
        await type_text(pilot, "Bearing noise heard at 07:30")
        await save_and_close(pilot, "enter")
        (comment,) = query(db_path, "SELECT author_id, body, target FROM comment")
        assert tuple(comment) == ("anna", "Bearing noise heard at 07:30", "signal")
        await cursor_to(pilot, SPINDLE)
        await wait_until(pilot, lambda: "Anna Weber: Bearing noise heard at 07:30" in text_of(board.query_one("#detail-text")),
                         what="the comment in the signal's story")
        assert "Comment added" in notices(app)


@ui_test
async def test_reopen_a_dismissed_signal_found_with_the_status_filter(services, db_path):
    seed_board(services)
    signal = next(s for s in services.board.page(services.board.scope_for(1, "CNC1")) if s.title == SPINDLE)
    services.signals.decide(signal.id, actor="anna", kind="dismiss", rationale="looked fine", disposition="not_actionable")
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot, JULIA)  # reopening is a supervisor's call (governance.rights.reopen)
        assert SPINDLE not in board_titles(app)
        board.query_one("#f-status", Select).value = "dismissed"
        await wait_until(pilot, lambda: board_titles(app) == [SPINDLE], what="the dismissed signal")
        await open_dialog(pilot, "o", kind=TextDialog)
        await type_text(pilot, "Came back on the late shift")
        await save_and_close(pilot, "enter")
        (row,) = query(db_path, "SELECT status, status_epoch, disposition FROM signal WHERE title = ?", (SPINDLE,))
        assert tuple(row) == ("open", 1, None)
        (audit,) = query(db_path, "SELECT actor FROM audit_log WHERE op = 'reopen'")
        assert audit["actor"] == "julia"


@ui_test
async def test_decision_rights_refusal_is_shown_in_the_form(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot, FARAH)  # an operator: shelving is for leads (governance.rights.shelve)
        before = counts(db_path)
        dialog = await open_dialog(pilot, "s")
        await type_text(pilot, "Waiting for the tool change")
        await fill(pilot, "#until", "+8h")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: error_text(dialog, "form") not in ("", "Saving…"), what="the refusal")
        assert "may not shelve" in error_text(dialog, "form") and "governance.rights.shelve" in error_text(dialog, "form")
        assert app.screen is dialog and dialog.query_one("#rationale", Input).value == "Waiting for the tool change"
        assert counts(db_path) == before


@ui_test
async def test_reopening_an_open_signal_is_refused(services, db_path):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        board = await start(pilot)
        before = counts(db_path)
        await pilot.press("o")
        await wait_until(pilot, lambda: notices(app, "error"), what="the refusal")
        assert "only resolved, dismissed or shelved signals can be reopened" in notices(app, "error")[-1]
        assert app.screen is board
        assert counts(db_path) == before


@ui_test
async def test_triage_key_on_an_empty_board_asks_to_pick_a_signal(services, db_path):
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, BoardScreen)
        assert "Pick a signal first" in notices(app, "warning")


# ----- what the kiosk-sized screen shows ---------------------------------------------

def _overlaps(a, b) -> bool:
    return bool(a.overlaps(b))


@ui_test
async def test_decide_dialog_fields_do_not_overlap_at_80x24(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        dialog = await open_dialog(pilot, "d")
        regions = {sel: dialog.query_one(sel).region for sel in ("#rationale", "#title", "#owner", "#due", "#save")}
        for a in regions:
            for b in regions:
                assert a == b or not _overlaps(regions[a], regions[b]), f"{a} {regions[a]} overlaps {b} {regions[b]}"


@ui_test
async def test_resolve_refusal_is_visible_at_80x24(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        dialog = await _resolved_elsewhere_while_the_form_is_open(pilot, services, app)
        assert visible(dialog.query_one("#form-error"))
        save = dialog.query_one("#save")
        save.scroll_visible(animate=False)  # the form scrolls: Save is reachable by mouse and touch too
        await pilot.pause()
        assert visible(save)


@ui_test
async def test_inline_field_error_is_on_screen(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        dialog = await open_dialog(pilot, "x")
        await type_text(pilot, "Sensor was being cleaned")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert error_text(dialog, "disposition") == "Pick why it needs no response"
        assert visible(dialog.query_one("#disposition-error"))


@ui_test
async def test_due_time_preview_is_on_screen(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=SMALL) as pilot:
        await start(pilot)
        dialog = await open_dialog(pilot, "d")
        await fill(pilot, "#due", "+4h")
        assert error_text(dialog, "due") == "= Wed 25 Nov 13:00"
        assert visible(dialog.query_one("#due-error"))


@ui_test
async def test_form_refusal_is_on_screen(services):
    seed_board(services)
    app = make_app(services)
    async with app.run_test(size=WIDE) as pilot:
        await start(pilot)
        dialog = await _resolved_elsewhere_while_the_form_is_open(pilot, services, app)
        assert visible(dialog.query_one("#form-error"))


async def _resolved_elsewhere_while_the_form_is_open(pilot, services, app):
    """Open the resolve form on an actioned signal, then let another kiosk resolve it first."""
    board = app.screen
    signal = next(s for s in board.rows if s.title == SPINDLE)
    services.signals.decide(signal.id, actor="anna", kind="act", rationale="on it")
    board.after_change()
    await settle(pilot)
    dialog = await open_dialog(pilot, "r", kind=ResolveDialog)
    services.signals.resolve(signal.id, actor="julia", outcome=Outcome(note="done at the other kiosk"))
    await pilot.press("enter")
    await wait_until(pilot, lambda: "is resolved; reopen it first" in error_text(dialog, "form"), what="the refusal")
    return dialog
