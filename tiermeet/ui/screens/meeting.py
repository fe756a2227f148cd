"""Meeting mode: attendance, a time box always in view, and the agenda walked in order —
signals by SQDC category, escalations in, overdue actions, shelved items due for review.
Decisions made here are attached to the meeting; ending it saves the minutes."""

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Markdown, Static

from tiermeet.domain.errors import DomainError
from tiermeet.services.views import AgendaItem
from tiermeet.store.models import Meeting
from tiermeet.store.queries import SignalRow
from tiermeet.timefmt import span
from tiermeet.ui.errors import explain, explainable
from tiermeet.ui.screens.prompts import TextDialog
from tiermeet.ui.screens.board import STATUS_SHORT, left_cell
from tiermeet.ui.triage import TRIAGE_BINDINGS, TriageMixin

#: Fixed agenda columns (the item text takes the rest) and the attendance panel's width.
AGENDA_COLUMNS = (("section", "Agenda", 14), ("left", "Left", 10), ("status", "Status", 9))
ATTENDANCE_WIDTH = 24
#: Share of the time box after which the timer turns amber.
AMBER_AT = 0.8


def timer_text(elapsed_s: float, box_min: int) -> Text:
    """``07:32 / 15:00``, amber from 80 % of the time box, red past it."""
    box = box_min * 60
    style = "bold white on red" if elapsed_s > box else "bold black on dark_orange" if elapsed_s >= AMBER_AT * box else "bold"
    minutes, seconds = divmod(int(elapsed_s), 60)
    return Text(f" {minutes:02d}:{seconds:02d} / {box_min:02d}:00 ", style=style)


class MinutesScreen(ModalScreen[None]):
    """The saved minutes, shown when a meeting ends."""

    BINDINGS = [("escape", "dismiss", "Close")]

    def __init__(self, markdown: str) -> None:
        super().__init__()
        self.markdown = markdown

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="minutes"):
            yield Markdown(self.markdown)
            yield Label("Esc to close · export later with: tiermeet minutes --last", classes="hint")


class MeetingScreen(TriageMixin, Screen):
    """A running meeting."""

    BINDINGS = [
        *TRIAGE_BINDINGS,
        Binding("escape", "app.pop_screen", "Board"),
        Binding("ctrl+e", "end_meeting", "End meeting", priority=True),
        Binding("ctrl+b", "focus_badge", "Attendance"),
        Binding("y", "confirm_ai", "Confirm AI", show=False),
        Binding("n", "overturn_ai", "Overturn AI", show=False),
    ]

    def __init__(self, meeting: Meeting) -> None:
        super().__init__()
        self.meeting = meeting
        self.items: list[AgendaItem] = []
        self._item_width = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="meeting-top"):
            yield Static(id="meeting-title")
            yield Static(id="timer")
        with Horizontal(id="meeting-main"):
            with Vertical(id="attendance"):
                yield Label("Attendance: badge", classes="field-label")
                yield Input(placeholder="badge or name", id="badge")
                yield Label("", id="badge-error", classes="field-error")
                yield Static(id="attendees")
            yield DataTable(id="agenda", cursor_type="row")
        yield Static(id="statusline")
        yield Footer()

    def on_mount(self) -> None:
        config = self.app.services.ctx.config
        tier = config.tier(self.meeting.tier)
        self.query_one("#meeting-title", Static).update(
            f"[b]Meeting[/] · Tier {self.meeting.tier} {tier.name if tier else ''} · {self.meeting.scope} · "
            f"facilitator {self.app.operator.name if self.app.operator else ''}")
        self._layout_columns()
        self.tick()
        self.set_interval(1.0, self.tick)
        self.reload()
        self.query_one(DataTable).focus()

    def on_resize(self) -> None:
        if self._layout_columns():
            self.reload()

    def _layout_columns(self) -> bool:
        """Give the item text what the other columns and attendance leave; True if changed."""
        width = max(24, self.size.width - ATTENDANCE_WIDTH - sum(w for _k, _l, w in AGENDA_COLUMNS) - 2 * 4 - 6)
        if width == self._item_width:
            return False
        self._item_width = width
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for key, label, fixed in (*AGENDA_COLUMNS, ("item", "Item", width)):
            table.add_column(label, key=key, width=fixed)
        return True

    def tick(self) -> None:
        """Advance the time box."""
        elapsed = (self.app.now() - self.meeting.started_at).total_seconds()
        self.query_one("#timer", Static).update(timer_text(elapsed, self.meeting.timebox_minutes))
        if self.app.watcher.changed(f"{type(self).__name__}-{id(self)}"):
            self.reload()

    @work(thread=True, exclusive=True, exit_on_error=False, group="agenda")
    def reload(self) -> None:
        """Rebuild the agenda and the attendance list."""
        app = self.app
        services = app.services
        scope = services.board.scope_for(self.meeting.tier, self.meeting.scope)
        items = services.views.agenda(self.meeting.tier, scope, app.now(), app.zone)
        present = services.meetings.attendees(self.meeting.id)
        app.call_from_thread(self._show, items, present)

    def _show(self, items: list[AgendaItem], present: list[str]) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row or 0
        table.clear()
        now = self.app.now()
        for n, item in enumerate(items):
            if item.signal is not None:
                s = item.signal
                table.add_row(item.section, left_cell(s, now), STATUS_SHORT[s.status],
                              f"{s.severity.upper()} {s.title} ({s.line or s.area})", key=f"{n}")
            else:
                a = item.action.action
                table.add_row(item.section, Text(f"late {span(now - a.due_at).replace(' ', '')}", style="bold red"),
                              a.status.replace("_", " "), f"{a.title} — {item.action.owner_name}", key=f"{n}")
        self.items = items
        if items:
            table.move_cursor(row=min(cursor, len(items) - 1))
        names = {p.id: p.name for p in self.app.people}
        self.query_one("#attendees", Static).update("\n".join(f"✓ {names.get(pid, pid)}" for pid in present))
        self.query_one("#statusline", Static).update(
            f"{len(items)} agenda items · {len(present)} present · arrows walk the agenda · ctrl+e ends the meeting")

    @property
    def selected(self) -> SignalRow | None:
        """The signal of the current agenda item (None for an action item)."""
        row = self.query_one(DataTable).cursor_row
        if row is None or row >= len(self.items):
            return None
        return self.items[row].signal

    def after_change(self) -> None:
        """Rebuild the agenda after a decision."""
        self.reload()

    def _review_item(self):
        row = self.query_one(DataTable).cursor_row
        item = self.items[row] if row is not None and row < len(self.items) else None
        if item is None or item.decision is None:
            self.notify("Pick an 'AI decided alone' item to review", severity="warning")
            return None
        return item

    def action_confirm_ai(self) -> None:
        """Confirm what the model decided alone."""
        item = self._review_item()
        if item is not None:
            self.app.as_operator(lambda: self.run_change(
                lambda: self.app.services.governance.review(item.decision.id, actor=self.app.operator.id, outcome="confirmed",
                                                            meeting_id=self.meeting.id), "Confirmed"))

    def action_overturn_ai(self) -> None:
        """Overturn what the model decided alone; the signal comes back for a person's decision."""
        item = self._review_item()
        if item is None:
            return

        def done(saved: bool | None) -> None:
            if saved:
                self.after_change()
        self.app.as_operator(lambda: self.app.push_screen(TextDialog(
            lambda note: self.app.services.governance.review(item.decision.id, actor=self.app.operator.id, outcome="overturned",
                                                             note=note, meeting_id=self.meeting.id),
            title=f"Overturn the AI on: {item.signal.title}", prompt="Why was the model wrong?"), done))

    def action_focus_badge(self) -> None:
        """Take attendance."""
        self.query_one("#badge", Input).focus()

    @on(Input.Submitted, "#badge")
    def _attend(self, event: Input.Submitted) -> None:
        typed = event.value.strip()
        event.input.value = ""
        self._mark_present(typed)

    @work(thread=True, exit_on_error=False, group="write")
    def _mark_present(self, typed: str) -> None:
        app = self.app
        try:
            person = next((p for p in app.people if typed.lower() in (p.badge, p.id, p.name.lower())), None)
            if person is None:
                raise DomainError(f"No one has badge or name {typed!r}")
            app.services.meetings.attend(self.meeting.id, actor=app.operator.id, person=person.id)
        except Exception as exc:  # noqa: BLE001 - sorted by explainable()
            if not explainable(exc):
                raise
            app.call_from_thread(self._attendance_note, explain(exc))
            return
        app.call_from_thread(self._attendance_note, f"{person.name} is here")
        self.reload()

    def _attendance_note(self, text: str) -> None:
        label = self.query_one("#badge-error", Label)
        label.update(text)
        label.set_class(bool(text), "shown")

    def action_end_meeting(self) -> None:
        """End the meeting and show its minutes."""
        self.app.as_operator(self._end)

    @work(thread=True, exit_on_error=False, group="write")
    def _end(self) -> None:
        app = self.app
        try:
            app.services.meetings.end(self.meeting.id, actor=app.operator.id)
            minutes = app.services.minutes.minutes(self.meeting.id)
        except Exception as exc:  # noqa: BLE001 - sorted by explainable()
            if not explainable(exc):
                raise
            app.call_from_thread(self.notify, explain(exc), severity="error")
            return
        app.call_from_thread(self._ended, minutes.to_markdown(app.zone))

    def _ended(self, markdown: str) -> None:
        self.app.meeting_ended(self.meeting)
        self.app.pop_screen()
        self.app.push_screen(MinutesScreen(markdown))
        self.notify("Meeting ended — minutes saved")
