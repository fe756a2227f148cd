"""Making a change from a screen: the service call runs in a thread, a refusal becomes a
notification a shift lead understands, and the screen reloads what it shows."""

from textual import work

from tiermeet.ui.errors import explain, explainable


class ChangeRunner:
    """Mixed into a screen that defines ``after_change()``."""

    def after_change(self) -> None:
        """Reload what the screen shows; each screen says how."""
        raise NotImplementedError

    @work(thread=True, exit_on_error=False, group="write")
    def run_change(self, call, message: str, then=None) -> None:
        """Run ``call`` (a service call) off the UI thread; show the change — ``then(what
        call returned)``, else ``after_change()`` — and say how it went."""
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 - sorted by explainable()
            if not explainable(exc):
                raise
            self.app.call_from_thread(self.notify, explain(exc), severity="error", timeout=8)
            return
        self.app.call_from_thread(self._changed, message, (lambda: then(result)) if then else self.after_change)

    def _changed(self, message: str, show) -> None:
        show()
        self.notify(message)
