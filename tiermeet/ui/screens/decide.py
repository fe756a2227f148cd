"""The decide dialog: what was decided on a signal, why, and who does what by when."""

from dataclasses import dataclass
from datetime import datetime

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, RadioButton, RadioSet

from tiermeet.domain.enums import DecisionKind, Disposition
from tiermeet.settings import Person
from tiermeet.store.queries import SignalRow
from tiermeet.ui.screens.forms import FormDialog, find_owner, read_due

KIND_LABELS = {
    DecisionKind.ACT: "Act — someone does something",
    DecisionKind.MONITOR: "Monitor — watch it, no action yet",
    DecisionKind.DISMISS: "Dismiss — no response needed",
    DecisionKind.SHELVE: "Shelve — hide until a time",
    DecisionKind.ESCALATE: "Escalate — to the next tier",
}
DISPOSITION_LABELS = {
    Disposition.FALSE_POSITIVE: "False positive",
    Disposition.DUPLICATE: "Duplicate",
    Disposition.NOT_ACTIONABLE: "Not actionable",
}


@dataclass(frozen=True)
class DecisionRequest:
    """What the dialog collected."""

    signal: SignalRow
    kind: DecisionKind
    rationale: str
    disposition: Disposition | None = None
    shelve_until: datetime | None = None
    owner: str | None = None
    due_at: datetime | None = None
    action_title: str | None = None


class DecideDialog(FormDialog):
    """Collects a decision; kind-specific fields show only for their kind."""

    def __init__(self, save, *, signal: SignalRow, people: list[Person], kind: DecisionKind, now, zone, calendar) -> None:
        super().__init__(save)
        self.signal = signal
        self.people = people
        self.kind = kind
        self.now, self.zone, self.calendar = now, zone, calendar

    def compose(self) -> ComposeResult:
        names = [p.name for p in self.people]
        with VerticalScroll(classes="dialog", id="decide"):
            yield Label(f"Decide: {self.signal.title}", classes="dialog-title")
            with RadioSet(id="kind"):
                for kind, label in KIND_LABELS.items():
                    yield RadioButton(label, value=kind is self.kind, name=kind.value)
            yield Label("Why", classes="field-label")
            yield Input(placeholder="rationale (required to dismiss, shelve or escalate)", id="rationale")
            yield Label("", id="rationale-error", classes="field-error")
            with Vertical(id="act-fields"):
                yield Label("Action (optional) — what, who, by when", classes="field-label")
                yield Input(value=self.signal.suggested_action or "", placeholder="action title", id="title")
                yield Label("", id="title-error", classes="field-error")
                yield Input(placeholder="owner: name or badge", id="owner", suggester=SuggestFromList(names, case_sensitive=False))
                yield Label("", id="owner-error", classes="field-error")
                yield Input(placeholder="due: +4h, tomorrow 14:00, end of shift", id="due")
                yield Label("", id="due-error", classes="field-error")
            with Vertical(id="dismiss-fields"):
                yield Label("Disposition", classes="field-label")
                with RadioSet(id="disposition"):
                    for disposition, label in DISPOSITION_LABELS.items():
                        yield RadioButton(label, name=disposition.value)
                yield Label("", id="disposition-error", classes="field-error")
            with Vertical(id="shelve-fields"):
                yield Label("Shelve until", classes="field-label")
                yield Input(placeholder="+8h, tomorrow 06:00, end of shift", id="until")
                yield Label("", id="until-error", classes="field-error")
            yield Label("", id="form-error", classes="field-error form-error")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self._show_fields()
        self.query_one("#rationale", Input).focus()

    @on(RadioSet.Changed, "#kind")
    def _kind_changed(self, event: RadioSet.Changed) -> None:
        self.kind = DecisionKind(event.pressed.name)
        self._show_fields()

    def _show_fields(self) -> None:
        self.query_one("#act-fields").display = self.kind is DecisionKind.ACT
        self.query_one("#dismiss-fields").display = self.kind is DecisionKind.DISMISS
        self.query_one("#shelve-fields").display = self.kind is DecisionKind.SHELVE

    @on(Input.Changed, "#due")
    def _due_preview(self, event: Input.Changed) -> None:
        if event.value.strip():
            due, text = read_due(event.value, self.now(), self.zone, self.calendar)
            self.field_error("due", text, hint=due is not None)
        else:
            self.field_error("due", "")

    @on(Input.Changed, "#until")
    def _until_preview(self, event: Input.Changed) -> None:
        if event.value.strip():
            until, text = read_due(event.value, self.now(), self.zone, self.calendar)
            self.field_error("until", text, hint=until is not None)

    def build_request(self) -> DecisionRequest | None:
        """Check each field; show every problem beside its field at once."""
        ok = True
        for field in ("rationale", "title", "owner", "due", "disposition", "until", "form"):
            self.field_error(field, "")
        rationale = self.query_one("#rationale", Input).value.strip()
        if self.kind in (DecisionKind.DISMISS, DecisionKind.SHELVE, DecisionKind.ESCALATE) and not rationale:
            self.field_error("rationale", f"Say why you {self.kind.value} it")
            ok = False
        request = {"signal": self.signal, "kind": self.kind, "rationale": rationale}
        if self.kind is DecisionKind.ACT:
            title = self.query_one("#title", Input).value.strip()
            owner_text = self.query_one("#owner", Input).value
            due_text = self.query_one("#due", Input).value
            if title or owner_text.strip() or due_text.strip():
                owner = find_owner(self.people, owner_text)
                due, due_message = read_due(due_text, self.now(), self.zone, self.calendar)
                if not title:
                    self.field_error("title", "Name the action, or clear owner and due")
                    ok = False
                if owner is None:
                    self.field_error("owner", f"No one matches {owner_text.strip()!r}" if owner_text.strip() else "Who owns it?")
                    ok = False
                if due is None:
                    self.field_error("due", due_message)
                    ok = False
                request |= {"owner": owner.id if owner else None, "due_at": due, "action_title": title}
        elif self.kind is DecisionKind.DISMISS:
            pressed = self.query_one("#disposition", RadioSet).pressed_button
            if pressed is None:
                self.field_error("disposition", "Pick why it needs no response")
                ok = False
            else:
                request["disposition"] = Disposition(pressed.name)
        elif self.kind is DecisionKind.SHELVE:
            until, message = read_due(self.query_one("#until", Input).value, self.now(), self.zone, self.calendar)
            if until is None:
                self.field_error("until", message)
                ok = False
            request["shelve_until"] = until
        return DecisionRequest(**request) if ok else None
