"""Open actions by owner, overdue first; start, done, verify, reassign, change due."""

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tiermeet.domain.errors import DomainError
from tiermeet.domain.refs import short_ref
from tiermeet.services.views import ActionRow
from tiermeet.store.queries import Scope
from tiermeet.timefmt import time_left
from tiermeet.ui.changes import ChangeRunner
from tiermeet.ui.screens.forms import find_owner, read_due
from tiermeet.ui.screens.prompts import TextDialog


class ActionsScreen(ChangeRunner, Screen):
    """Actions of a board's scope."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("g", "start", "Start"),
        Binding("k", "done", "Done"),
        Binding("v", "verify", "Verify"),
        Binding("w", "reassign", "Reassign"),
        Binding("u", "change_due", "Change due"),
        Binding("n", "cancel_action", "Cancel action", show=False),
    ]

    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope
        self.rows: list[ActionRow] = []

    def compose(self) -> ComposeResult:
        yield Static("[b]Open actions[/] — overdue first", id="topbar")
        yield DataTable(id="actions", cursor_type="row", zebra_stripes=True)
        yield Static(id="statusline")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (("owner", "Owner"), ("title", "Action"), ("due", "Due"), ("status", "Status"), ("signal", "Signal"), ("ref", "Ref")):
            table.add_column(label, key=key)
        self.reload()
        self.set_interval(1.0, self._poll)

    def _poll(self) -> None:
        if self.app.watcher.changed(f"{type(self).__name__}-{id(self)}"):
            self.reload()

    @work(thread=True, exclusive=True, exit_on_error=False, group="actions")
    def reload(self) -> None:
        """Read the actions in a thread."""
        rows = self.app.services.views.open_actions(self.scope, self.app.now())
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[ActionRow]) -> None:
        table = self.query_one(DataTable)
        selected = self.rows[table.cursor_row].action.id if self.rows and table.cursor_row is not None and table.cursor_row < len(self.rows) else None
        table.clear()
        now = self.app.now()
        for row in rows:
            a = row.action
            style = "bold red" if row.overdue else ""
            due = f"{a.due_at.astimezone(self.app.zone):%a %d %b %H:%M} ({time_left(a.due_at, now)})"
            table.add_row(Text(row.owner_name, style=style), Text(a.title, style=style), Text(due, style=style),
                          a.status.replace("_", " "), row.signal_title or "—", short_ref("action", a.id), key=str(a.id))
        self.rows = rows
        ids = [r.action.id for r in rows]
        if rows:
            table.move_cursor(row=ids.index(selected) if selected in ids else 0)
        overdue = sum(r.overdue for r in rows)
        self.query_one("#statusline", Static).update(f"{len(rows)} open actions · {overdue} overdue" if rows else "No open actions.")

    def after_change(self) -> None:
        """Reload the actions after a change."""
        self.reload()

    def _selected(self) -> ActionRow | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            self.notify("Pick an action first", severity="warning")
            return None
        return self.rows[table.cursor_row]

    def _status(self, verb: str, message: str) -> None:
        row = self._selected()
        if row is None:
            return
        method = getattr(self.app.services.actions, verb)
        self.app.as_operator(lambda: self.run_change(lambda: method(row.action.id, actor=self.app.operator.id), message))

    def action_start(self) -> None:
        """Mark the action started."""
        self._status("start", "Started")

    def action_done(self) -> None:
        """Mark the action done."""
        self._status("done", "Done — waiting for verification")

    def action_verify(self) -> None:
        """Confirm it is really done."""
        self._status("verify", "Verified")

    def action_cancel_action(self) -> None:
        """Cancel the action."""
        self._status("cancel", "Cancelled")

    def _dialog(self, title: str, prompt: str, placeholder: str, save) -> None:
        row = self._selected()
        if row is None:
            return

        def done(saved: bool | None) -> None:
            if saved:
                self.reload()
        self.app.as_operator(lambda: self.app.push_screen(TextDialog(lambda text: save(row, text), title=f"{title}: {row.action.title}",
                                                                     prompt=prompt, placeholder=placeholder), done))

    def action_reassign(self) -> None:
        """Give the action to someone else."""
        def save(row: ActionRow, typed: str) -> None:
            person = find_owner(self.app.people, typed)
            if person is None:
                raise DomainError(f"No one matches {typed!r}; type a name or badge")
            self.app.services.actions.reassign(row.action.id, actor=self.app.operator.id, owner=person.id)
        self._dialog("Reassign", "New owner", "name or badge", save)

    def action_change_due(self) -> None:
        """Move the due time."""
        def save(row: ActionRow, typed: str) -> None:
            due, message = read_due(typed, self.app.now(), self.app.zone, self.app.services.ctx.config.calendar)
            if due is None:
                raise DomainError(message)
            self.app.services.actions.change_due(row.action.id, actor=self.app.operator.id, due_at=due)
        self._dialog("Change due", "New due time", "+4h, tomorrow 14:00, end of shift", save)
