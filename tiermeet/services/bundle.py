"""Build the services for one process: the single factory the CLI, the app and tests use."""

from dataclasses import dataclass
from pathlib import Path

from tiermeet.domain.clock import Clock, SystemClock
from tiermeet.services.actions import ActionService
from tiermeet.services.board import BoardService
from tiermeet.services.comments import CommentService
from tiermeet.services.context import Context
from tiermeet.services.ingest import IngestService
from tiermeet.services.meetings import MeetingService
from tiermeet.services.minutes import MinutesService
from tiermeet.services.people import PeopleService
from tiermeet.services.signals import SignalService
from tiermeet.services.unit import Device
from tiermeet.services.views import ViewService
from tiermeet.settings import Config
from tiermeet.store.engine import make_engine
from tiermeet.store.migrate import ensure_current


@dataclass
class Services:
    """Every use case, sharing one context."""

    ctx: Context
    signals: SignalService
    actions: ActionService
    comments: CommentService
    meetings: MeetingService
    people: PeopleService
    ingest: IngestService
    board: BoardService
    views: ViewService
    minutes: MinutesService

    @classmethod
    def over(cls, ctx: Context) -> "Services":
        """The services on an existing context."""
        return cls(ctx, SignalService(ctx), ActionService(ctx), CommentService(ctx), MeetingService(ctx),
                   PeopleService(ctx), IngestService(ctx), BoardService(ctx), ViewService(ctx), MinutesService(ctx))


def open_services(db_path: Path, config: Config, *, clock: Clock | None = None, device_name: str | None = None) -> Services:
    """Open (and if needed create or migrate) the database at ``db_path`` and build the services.

    The people table is brought in step with the config, so badges work at once."""
    engine = make_engine(db_path)
    ensure_current(engine, Path(db_path))
    ctx = Context(engine, config, clock or SystemClock(), Device.local(device_name or config.kiosk.device_name))
    services = Services.over(ctx)
    services.people.sync_from_config()
    return services
