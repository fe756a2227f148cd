"""The tiermeet app: tier boards, triage, actions, escalations, handover and meetings.

The app receives its services through its constructor (``TierMeetApp(services, …)``);
the command line and the tests build them with the same factory. Screens call services
only — no SQL, no HTTP — and slow work runs in thread workers that post results back.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from typing import TYPE_CHECKING

from tiermeet.settings import Person
from tiermeet.store.watch import ChangeWatcher
from tiermeet.ui.malloc import use_one_arena
from tiermeet.ui.screens.board import BoardScreen
from tiermeet.ui.screens.picker import BoardPicker, board_choices
from tiermeet.ui.screens.signin import SignInScreen
from tiermeet.ui.theme import KIOSK_THEME

if TYPE_CHECKING:
    from tiermeet.services.bundle import Services
    from tiermeet.store.models import Meeting



#: How often an open board sweeps breached windows.
SWEEP_SECONDS = 60


class TierMeetApp(App):
    """A tier board on a kiosk, an office PC or a browser."""

    CSS_PATH = Path(__file__).with_name("tiermeet.tcss")
    TITLE = "tiermeet"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit", show=False),
        Binding("l", "sign_out", "Sign out", show=False),
        Binding("j", "rejections", "Refused changes", show=False),
    ]

    operator: reactive[Person | None] = reactive(None, init=False)
    """The signed-in person; every change is made in their name."""

    def __init__(self, services: Services, *, tier: int | None = None, scope: str | None = None,
                 kiosk: bool = False, sign_in: bool = True) -> None:
        super().__init__()
        use_one_arena()  # before the first worker thread allocates
        self.services = services
        self.tier, self.scope = tier, scope
        self.kiosk = kiosk
        self.ask_sign_in = sign_in
        config = services.ctx.config
        self.zone = ZoneInfo(config.plant.timezone)
        self.idle_seconds = config.kiosk.idle_lock_minutes * 60
        self.meetings: dict[tuple[int, str], Meeting] = {}
        self.sync_state = None
        self._sync_failures = 0
        self.people: list[Person] = sorted(config.people, key=lambda p: p.name)
        self.watcher = ChangeWatcher(services.ctx.db_path)
        self._last_input = 0.0

    def now(self) -> datetime:
        """The services' clock, so tests and the app agree on the time."""
        return self.services.ctx.clock.now()

    # ----- start -----
    def on_mount(self) -> None:
        self.register_theme(KIOSK_THEME)
        # The write path loads once the board is on screen, not before it.
        self.set_timer(0.3, self.prepare_services)
        if self.kiosk:
            self.theme = KIOSK_THEME.name
        self._last_input = self._monotonic()
        self.set_interval(15, self._check_idle)
        if self.tier is not None and self.scope is not None:
            self._open_board(self.tier, self.scope)
        else:
            choices = board_choices(self.services.ctx.config)
            if self.tier is not None:
                match = [c for c in choices if c[0] == self.tier]
                if len(match) == 1:
                    self._open_board(match[0][0], match[0][1])
                    return
            self.pick_board(first=True)

    @work(thread=True, exit_on_error=False, group="prepare")
    def prepare_services(self) -> None:
        """After the first frame: load the write path and sync people from the config."""
        self.services.prepare()
        self.call_from_thread(self._schedule_sync, 1.0)
        self.call_from_thread(self.set_interval, SWEEP_SECONDS, self.sweep_in_background)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sweep")
    def sweep_in_background(self) -> None:
        """Escalate breached windows while the board is open, as ``tiermeet sweep`` does
        from a timer; idempotent, so kiosks sweeping the same database do no harm."""
        self.services.governance.sweep()

    # ----- background sync -----
    def _schedule_sync(self, delay: float) -> None:
        """Sync again after ``delay`` seconds (only when a server is configured)."""
        if self.services.ctx.config.sync.server_url:
            self.set_timer(delay, self.sync_round)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sync")
    def sync_round(self) -> None:
        """One push/pull round off the UI thread; timer-driven, backing off with jitter
        while the server cannot be reached, independent of local writes."""
        from tiermeet.sync.client import SyncClient, SyncError, sync_status

        interval = self.services.ctx.config.sync.interval_seconds
        try:
            with SyncClient.from_services(self.services, attempts=1, background=True) as client:
                result = client.run_round()
            failed = not result.ok
        except SyncError as exc:
            failed = True
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
        self._sync_failures = self._sync_failures + 1 if failed else 0
        delay = interval if not failed else min(600, interval * 2 ** min(self._sync_failures, 5))
        self.sync_state = sync_status(self.services)
        self.call_from_thread(self._schedule_sync, delay * random.uniform(0.8, 1.2))
        self.call_from_thread(self._show_sync)

    def _show_sync(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, BoardScreen) and screen.is_mounted:
                screen.update_status()

    def sync_text(self) -> str:
        """The sync indicator: online or not, pending changes, last sync, rejections."""
        state = self.sync_state
        if state is None or not state.configured:
            return ""
        when = f"{state.last_sync_ok_at.astimezone(self.zone):%H:%M}" if state.last_sync_ok_at else "never"
        online = "offline" if state.last_error else "online"
        text = f"sync {online} · {state.pending} pending · last {when}"
        if state.rejections_unseen:
            text += f" · [reverse]{state.rejections_unseen} refused (j)[/]"
        return text

    def action_rejections(self) -> None:
        """Changes the server refused."""
        from tiermeet.ui.screens.rejections import RejectionsScreen

        self.push_screen(RejectionsScreen())

    def _open_board(self, tier: int, scope: str) -> None:
        self.tier, self.scope = tier, scope
        if isinstance(self.screen, BoardScreen):
            self.switch_screen(BoardScreen(tier=tier, scope=scope))
        else:
            self.push_screen(BoardScreen(tier=tier, scope=scope))

    def board_drawn(self) -> None:
        """A board's first page is on screen: now ask who is there, unless someone is
        signed in. Asked after, not before: drawn under a dialog, the board's first frame
        costs several times as much, and the kiosk would show nothing for that long."""
        if self.ask_sign_in and self.operator is None and not isinstance(self.screen, SignInScreen):
            self.push_screen(SignInScreen(self.people), self._signed_in)

    def pick_board(self, first: bool = False) -> None:
        """Ask which tier and scope to show."""
        def chosen(choice: tuple[int, str] | None) -> None:
            if choice is not None:
                self._open_board(*choice)
            elif first:
                self.exit()
        self.push_screen(BoardPicker(self.services.ctx.config), chosen)

    # ----- operator -----
    def _signed_in(self, person: Person | None) -> None:
        if person is not None:
            self.operator = person
            self.notify(f"Signed in as {person.name}")

    def watch_operator(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, BoardScreen) and screen.is_mounted:
                screen.update_topbar()

    def as_operator(self, then: Callable[[], None]) -> None:
        """Run ``then`` as the signed-in person, asking for a sign-in first if needed."""
        if self.operator is not None:
            then()
            return

        def signed_in(person: Person | None) -> None:
            self._signed_in(person)
            if person is not None:
                then()
        self.push_screen(SignInScreen(self.people), signed_in)

    def action_sign_out(self) -> None:
        """Sign the operator out and show the sign-in screen."""
        self.operator = None
        self.push_screen(SignInScreen(self.people), self._signed_in)

    async def action_quit(self) -> None:
        """Quit — except on a kiosk, which stays open for the next shift."""
        if self.kiosk:
            self.notify("This terminal is a kiosk: it stays open. Press l to sign out.")
            return
        await super().action_quit()

    def action_help_quit(self) -> None:
        """Ctrl+C: on a kiosk, say how to sign out instead of how to quit."""
        if self.kiosk:
            self.notify("This terminal is a kiosk: it stays open. Press l to sign out.")
            return
        super().action_help_quit()

    def action_suspend_process(self) -> None:
        """No shell escape from a kiosk."""
        if not self.kiosk:
            super().action_suspend_process()

    # ----- idle lock -----
    def _monotonic(self) -> float:
        return time.monotonic()

    def on_event(self, event):
        if isinstance(event, (events.Key, events.MouseDown)):
            self._last_input = self._monotonic()
        return super().on_event(event)

    def _check_idle(self) -> None:
        if self.operator is not None and self._monotonic() - self._last_input >= self.idle_seconds:
            self.operator = None
            self.push_screen(SignInScreen(self.people, locked=True), self._signed_in)

    # ----- meetings -----
    def open_meeting(self) -> None:
        """Start a meeting for the board's tier and scope, or go back to the running one."""
        from tiermeet.ui.screens.meeting import MeetingScreen

        key = (self.tier, self.scope)
        if key not in self.meetings:
            self.meetings[key] = self.services.meetings.start(actor=self.operator.id, tier=self.tier, scope=self.scope)
        self.push_screen(MeetingScreen(self.meetings[key]))

    @property
    def meeting(self) -> Meeting | None:
        """The meeting running for the board on screen, if any; decisions made now belong to it."""
        return self.meetings.get((self.tier, self.scope))

    def meeting_ended(self, meeting: Meeting) -> None:
        """Forget a meeting once it has ended."""
        self.meetings.pop((meeting.tier, meeting.scope), None)

    # ----- command palette -----
    def get_system_commands(self, screen):
        if not self.kiosk:
            yield from super().get_system_commands(screen)
        yield SystemCommand("Go to another board", "Pick a tier and scope", self.pick_board)
        yield SystemCommand("Start or open the meeting", "Meeting mode for this board", lambda: self.as_operator(self.open_meeting))
        yield SystemCommand("Open actions", "Open actions by owner, overdue first", lambda: self._board_action("actions"))
        yield SystemCommand("Escalations in", "What lower tiers pushed up today", lambda: self._board_action("escalations_in"))
        yield SystemCommand("Shift handover", "Everything still open, with owners", lambda: self._board_action("handover"))
        yield SystemCommand("Find a signal", "Search the board by text", lambda: self._board_action("search"))
        yield SystemCommand("Kiosk theme (high contrast)", "Switch to the high-contrast theme", lambda: setattr(self, "theme", KIOSK_THEME.name))
        yield SystemCommand("Sign out", "Sign the operator out", self.action_sign_out)

    def _board_action(self, name: str) -> None:
        board = next((s for s in reversed(self.screen_stack) if isinstance(s, BoardScreen)), None)
        if board is not None:
            getattr(board, f"action_{name}")()

    def on_unmount(self) -> None:
        self.watcher.close()
