"""Sign-in: scan a badge (the reader types its id and Enter) or pick a name.

Also the lock screen: after the idle time the app signs the operator out and shows this.
"""

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from tiermeet.settings import Person


class SignInScreen(ModalScreen[Person | None]):
    """Returns the person who signed in, or None to look at the board without signing in."""

    BINDINGS = [Binding("escape", "browse", "Just look")]

    def __init__(self, people: list[Person], *, locked: bool = False) -> None:
        super().__init__()
        self.people = people
        self.locked = locked

    def compose(self) -> ComposeResult:
        with Vertical(id="signin", classes="dialog"):
            yield Label("Locked after inactivity — sign in again" if self.locked else "Sign in", classes="dialog-title")
            yield Label("Scan your badge, or type it and press Enter:")
            yield Input(placeholder="badge", id="badge")
            yield Label("", id="badge-error", classes="field-error")
            yield Label("…or pick your name:")
            yield OptionList(*[Option(f"{p.name}  ·  {p.role.replace('_', ' ')} · {p.scope}", id=p.id) for p in self.people], id="names")
            yield Label("Esc: look without signing in", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#badge", Input).focus()

    @on(Input.Submitted, "#badge")
    def _badge(self, event: Input.Submitted) -> None:
        typed = event.value.strip()
        match = next((p for p in self.people if typed in (p.badge, p.id)), None)
        if match is None:
            error = self.query_one("#badge-error", Label)
            error.update(f"No one has badge {typed!r}" if typed else "Scan or type a badge")
            error.add_class("shown")
            event.input.value = ""
            return
        self.dismiss(match)

    @on(OptionList.OptionSelected, "#names")
    def _name(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(next(p for p in self.people if p.id == event.option.id))

    def action_browse(self) -> None:
        """Close without signing in: the board is readable, changes ask for a sign-in."""
        self.dismiss(None)
