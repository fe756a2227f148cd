"""One-key triage of the selected signal, shared by the board and meeting mode.

A screen mixes this in and provides ``selected`` (the signal under the cursor) and
``after_change()`` (reload what it shows); it may provide ``reader_of``/``show_signal``
to redraw just the signal that changed, read in the same worker that saved the change. Every change asks for a signed-in operator
first, runs the service call in a thread, and reports refusals as notifications or
beside the form's fields. The dialogs are imported when first opened: the board's first
frame does not wait for them (nor for the date parser the decide dialog uses).
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.binding import Binding

from tiermeet.domain import rights
from tiermeet.domain.enums import DecisionKind, SignalStatus
from tiermeet.domain.errors import DomainError
from tiermeet.domain.lifecycle import next_signal_status
from tiermeet.domain.refs import short_ref
from tiermeet.services.requests import ActionSpec, Outcome
from tiermeet.store.queries import SignalRow
from tiermeet.ui.changes import ChangeRunner

if TYPE_CHECKING:
    from tiermeet.ui.screens.forms import Saved

TRIAGE_BINDINGS = [
    Binding("a", "acknowledge", "Ack"),
    Binding("d", "decide", "Decide"),
    Binding("e", "escalate", "Escalate"),
    Binding("r", "resolve", "Resolve"),
    Binding("s", "shelve", "Shelve", show=False),
    Binding("x", "dismiss_signal", "Dismiss", show=False),
    Binding("c", "comment", "Comment", show=False),
    Binding("o", "reopen", "Reopen", show=False),
]


class TriageMixin(ChangeRunner):
    """Triage actions on ``self.selected``."""

    def _with_signal(self, then) -> None:
        signal = self.selected
        if signal is None:
            self.notify("Pick a signal first", severity="warning")
            return
        self.app.as_operator(lambda: then(signal))

    def reader_of(self, signal_id) -> Callable[[], object] | None:
        """A call, safe off the UI thread, that reads the signal as this screen shows it
        (for ``show_signal``), or None to reload everything after a change instead."""
        return None

    def show_signal(self, signal_id, fresh: object) -> None:
        """Show a change to one signal, given what ``reader_of`` read after it."""
        self.after_change()

    def _then_read(self, signal: SignalRow, change: Callable):
        """``change``, then (in the same worker thread) the signal as it now is."""
        read = self.reader_of(signal.id)

        def change_and_read(*args):
            change(*args)
            return read() if read is not None else None
        return change_and_read

    def _saved(self, message: str, signal: SignalRow):
        def done(saved: "Saved | None") -> None:
            if saved:
                self.show_signal(signal.id, saved.value)
                self.notify(message)
        return done

    selected: SignalRow | None

    def action_acknowledge(self) -> None:
        """Acknowledge the selected signal: seen, clock still running."""
        def acknowledge(signal: SignalRow) -> None:
            call = self._then_read(signal, lambda: self.app.services.signals.acknowledge(signal.id, actor=self.app.operator.id))
            self.run_change(call, f"Acknowledged {short_ref('signal', signal.id)}", lambda fresh: self.show_signal(signal.id, fresh))
        self._with_signal(acknowledge)

    def _decide(self, kind: DecisionKind) -> None:
        from tiermeet.ui.screens.decide import DecideDialog

        def open_dialog(signal: SignalRow) -> None:
            app = self.app
            self.app.push_screen(
                DecideDialog(self._then_read(signal, self._save_decision), signal=signal, people=app.people, kind=kind,
                             now=app.now, zone=app.zone, calendar=app.services.ctx.config.calendar),
                self._saved(f"Decision recorded on {short_ref('signal', signal.id)}", signal),
            )
        self._with_signal(open_dialog)

    def _save_decision(self, request) -> None:
        """Save what the decide dialog collected (a ``DecisionRequest``); runs in its worker."""
        app = self.app
        action = None
        if request.action_title:
            action = ActionSpec(request.action_title, request.owner, request.due_at)
        app.services.signals.decide(
            request.signal.id, actor=app.operator.id, kind=request.kind, rationale=request.rationale,
            disposition=request.disposition, shelve_until=request.shelve_until, action=action,
            meeting_id=app.meeting.id if app.meeting else None,
        )

    def action_decide(self) -> None:
        """Record a decision (act, monitor, dismiss, shelve, escalate)."""
        self._decide(DecisionKind.ACT)

    def action_shelve(self) -> None:
        """Shelve the selected signal until a time."""
        self._decide(DecisionKind.SHELVE)

    def action_dismiss_signal(self) -> None:
        """Dismiss the selected signal with a disposition."""
        self._decide(DecisionKind.DISMISS)

    def action_escalate(self) -> None:
        """Send the selected signal up a tier, with a reason."""
        from tiermeet.ui.screens.prompts import TextDialog

        def open_dialog(signal: SignalRow) -> None:
            self.app.push_screen(
                TextDialog(self._then_read(signal, lambda reason: self.app.services.signals.escalate(
                    signal.id, actor=self.app.operator.id, reason=reason)),
                           title=f"Escalate to tier {signal.tier + 1}: {signal.title}", prompt="Why does the next tier need it?",
                           placeholder="reason (required)"),
                self._saved(f"Escalated {short_ref('signal', signal.id)} to tier {signal.tier + 1}", signal),
            )
        self._with_signal(open_dialog)

    def action_comment(self) -> None:
        """Add a comment to the selected signal."""
        from tiermeet.ui.screens.prompts import TextDialog

        def open_dialog(signal: SignalRow) -> None:
            self.app.push_screen(
                TextDialog(self._then_read(signal, lambda body: self.app.services.comments.add(
                    "signal", signal.id, actor=self.app.operator.id, body=body)),
                           title=f"Comment on {signal.title}", prompt="Comment"),
                self._saved("Comment added", signal),
            )
        self._with_signal(open_dialog)

    def _allowed(self, signal: SignalRow, verb: str, right: str) -> bool:
        """Say at once when a move will be refused, before anyone types a form."""
        operator = self.app.operator
        try:
            next_signal_status(verb, SignalStatus(signal.status), short_ref("signal", signal.id))
            rights.check(self.app.services.ctx.config.governance.rights, right, role=operator.role.value,
                         tier=signal.tier, who=operator.id)
        except DomainError as exc:
            self.notify(exc.message, severity="error", timeout=8)
            return False
        return True

    def action_reopen(self) -> None:
        """Reopen a resolved, dismissed or shelved signal (filter by status to find it)."""
        from tiermeet.ui.screens.prompts import TextDialog

        def open_dialog(signal: SignalRow) -> None:
            if not self._allowed(signal, "reopen", "reopen"):
                return
            self.app.push_screen(
                TextDialog(self._then_read(signal, lambda reason: self.app.services.signals.reopen(
                    signal.id, actor=self.app.operator.id, reason=reason)),
                           title=f"Reopen {signal.title}", prompt="Why reopen it?"),
                self._saved(f"Reopened {short_ref('signal', signal.id)}", signal),
            )
        self._with_signal(open_dialog)

    def action_resolve(self) -> None:
        """Close the selected signal with its outcome."""
        from tiermeet.ui.screens.prompts import ResolveDialog

        def open_dialog(signal: SignalRow) -> None:
            if not self._allowed(signal, "resolve", "close"):
                return

            def save(values: dict) -> None:
                outcome = Outcome(values["downtime"], values["scrap"], values["yield"], values["note"])
                self.app.services.signals.resolve(signal.id, actor=self.app.operator.id, outcome=outcome)
            self.app.push_screen(ResolveDialog(self._then_read(signal, save), title=signal.title), self._saved(f"Resolved {short_ref('signal', signal.id)}", signal))
        self._with_signal(open_dialog)
