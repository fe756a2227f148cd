"""What every service needs: the database, the plant's config, the time and the device.

This module stays light (no SQLAlchemy at import): the board's first frame is drawn
before the ORM is loaded, and the engine is only made when a service first needs it.
"""

import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from tiermeet.domain.clock import Clock, SystemClock
from tiermeet.settings import Config


@dataclass(frozen=True)
class Device:
    """The terminal making changes; named in every audit entry."""

    name: str

    @classmethod
    def local(cls, name: str | None = None) -> "Device":
        """This machine, under the kiosk's configured name or its host name."""
        return cls(name or socket.gethostname())


@dataclass
class Context:
    """Shared by the services of one process."""

    db_path: Path
    config: Config
    clock: Clock = field(default_factory=SystemClock)
    device: Device = field(default_factory=Device.local)

    @cached_property
    def engine(self):
        """The SQLAlchemy engine on ``db_path``, made on first use."""
        from tiermeet.store.engine import make_engine

        return make_engine(self.db_path)

    @contextmanager
    def tx(self, who: str) -> Iterator["Tx"]:  # noqa: F821 - imported lazily
        """One write transaction acting as ``who`` (a person's id or badge, or a system actor)."""
        from tiermeet.services.unit import unit_of_work

        with unit_of_work(self.engine, self.clock, self.device, who) as tx:
            yield tx

    @contextmanager
    def bulk(self) -> Iterator["Context"]:
        """This context on an engine of its own set up for one large write (an ingest of
        thousands of rows; ``store.engine.BULK_PRAGMAS``). When the block ends, the WAL it
        filled is checkpointed (after an error too, quietly: the batches committed before
        it are worth copying back, and the error that stopped the write is the one to
        see) and the engine closed. Closing it leaves SQLite's descriptor of the file open
        for other connections of this process, as SQLite does whenever one of several
        connections to a file closes."""
        from sqlalchemy.exc import DBAPIError

        from tiermeet.store.engine import checkpoint, make_engine

        ctx = Context(self.db_path, self.config, self.clock, self.device)
        ctx.engine = make_engine(self.db_path, bulk=True)
        try:
            yield ctx
        except BaseException:
            with suppress(DBAPIError):
                checkpoint(ctx.engine)
            raise
        else:
            checkpoint(ctx.engine)
        finally:
            ctx.engine.dispose()

    @contextmanager
    def read(self) -> Iterator["Session"]:  # noqa: F821 - imported lazily
        """A short read transaction."""
        from tiermeet.store.engine import read_session

        with read_session(self.engine) as session:
            yield session
