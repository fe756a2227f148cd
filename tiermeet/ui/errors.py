"""What the app tells a person when a change could not be saved.

Rule refusals (DomainError) are shown as they are. Store failures — disk full, database
read-only, locked too long — become one plain sentence; the form stays open with what
was typed, and the app keeps running.
"""

import sqlite3

from tiermeet.domain.errors import DomainError

_STORE_HINTS = (
    ("disk is full", "the disk is full; free some space, then try again"),
    ("disk i/o", "the disk reported an error; nothing was saved, try again"),
    ("readonly", "the database is read-only here; nothing was saved (check the file's permissions)"),
    ("read-only", "the database is read-only here; nothing was saved (check the file's permissions)"),
    ("locked", "the database is busy (another terminal is writing); nothing was saved, try again"),
    ("busy", "the database is busy (another terminal is writing); nothing was saved, try again"),
)


def explain(exc: BaseException) -> str:
    """A sentence for the person at the kiosk."""
    if isinstance(exc, DomainError):
        return exc.message
    cause = getattr(exc, "orig", exc)  # SQLAlchemy wraps the driver's error in .orig
    if isinstance(cause, sqlite3.Error):
        text = str(cause).lower()
        for needle, message in _STORE_HINTS:
            if needle in text:
                return message[0].upper() + message[1:]
        return f"The database refused the change ({cause}); nothing was saved"
    if isinstance(exc, OSError):
        return f"The change could not be saved: {exc.strerror or exc}"
    raise exc


def explainable(exc: BaseException) -> bool:
    """True for the failures ``explain`` puts into words (others are bugs and propagate)."""
    return isinstance(exc, (DomainError, OSError, sqlite3.Error)) or isinstance(getattr(exc, "orig", None), sqlite3.Error)
