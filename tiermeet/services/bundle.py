"""Build the services for one process: the single factory the CLI, the app and tests use.

Each service is created — and its module imported — on first use, so opening the board
reads its first page before the ORM and the write path are loaded.
"""

import threading
from functools import cached_property
from pathlib import Path

from tiermeet.domain.clock import Clock, SystemClock
from tiermeet.services.board import BoardService
from tiermeet.services.context import Context, Device
from tiermeet.settings import Config
from tiermeet.store.migrate import HEAD_REVISION, current_revision


class Services:
    """Every use case, sharing one context. Services that write make sure the people
    table matches the config first (``prepare``), since every change names a person."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.board = BoardService(ctx)
        self._ready = threading.Lock()
        self._people_synced = False

    def prepare(self) -> None:
        """Bring the people table in step with the config (once); writes need it.
        Safe to call from any thread; later calls return at once."""
        with self._ready:
            if not self._people_synced:
                self.people.sync_from_config()
                self._people_synced = True

    @cached_property
    def signals(self):
        """Signal lifecycle use cases."""
        from tiermeet.services.signals import SignalService

        self.prepare()
        return SignalService(self.ctx)

    @cached_property
    def actions(self):
        """Action use cases."""
        from tiermeet.services.actions import ActionService

        self.prepare()
        return ActionService(self.ctx)

    @cached_property
    def comments(self):
        """Comments on signals and actions."""
        from tiermeet.services.comments import CommentService

        self.prepare()
        return CommentService(self.ctx)

    @cached_property
    def meetings(self):
        """Tier meetings."""
        from tiermeet.services.meetings import MeetingService

        self.prepare()
        return MeetingService(self.ctx)

    @cached_property
    def people(self):
        """People from the config."""
        from tiermeet.services.people import PeopleService

        return PeopleService(self.ctx)

    @cached_property
    def ingest(self):
        """Bulk ingest of signals."""
        from tiermeet.services.ingest import IngestService

        self.prepare()
        return IngestService(self.ctx)

    @cached_property
    def views(self):
        """Read models for the app's views."""
        from tiermeet.services.views import ViewService

        return ViewService(self.ctx)

    @cached_property
    def governance(self):
        """The sweep, the kill switch and reviews of autonomous decisions."""
        from tiermeet.services.governance import GovernanceService

        self.prepare()
        return GovernanceService(self.ctx)

    @cached_property
    def report(self):
        """The governance report: the metrics, computed in the database."""
        from tiermeet.services.reports import ReportService

        return ReportService(self.ctx)

    @cached_property
    def minutes(self):
        """Meeting minutes."""
        from tiermeet.services.minutes import MinutesService

        return MinutesService(self.ctx)


def open_services(db_path: Path, config: Config, *, clock: Clock | None = None, device_name: str | None = None,
                  prepare: bool = True) -> Services:
    """Open (creating or migrating if needed) the database at ``db_path`` and build the services.

    With ``prepare`` the people table is brought in step with the config at once; the app
    passes False and prepares in the background after its first frame."""
    db_path = Path(db_path)
    ctx = Context(db_path, config, clock or SystemClock(), Device.local(device_name or config.kiosk.device_name))
    if current_revision(db_path) != HEAD_REVISION:
        from tiermeet.store.migrate import upgrade

        upgrade(ctx.engine, db_path)
    services = Services(ctx)
    if prepare:
        services.prepare()
    return services
