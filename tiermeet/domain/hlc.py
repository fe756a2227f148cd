"""Hybrid logical clock (sync-protocol §2.7).

A timestamp is wall-clock milliseconds ``l`` and a counter ``c`` packed into one 64-bit
integer (``l << 16 | c``) and written as 16 hex digits, so string order is time order.
The clock never goes backwards, even when the kiosk's wall clock does, and it moves past
every timestamp it receives, so "later" in last-writer-wins means causally later.
"""

from dataclasses import dataclass

COUNTER_BITS = 16
COUNTER_MAX = (1 << COUNTER_BITS) - 1
#: A remote timestamp further ahead of our wall clock than this is clamped, not trusted.
MAX_DRIFT_MS = 5 * 60 * 1000


@dataclass(frozen=True, order=True)
class Timestamp:
    """One HLC reading; ordered by (l, c)."""

    l: int  # noqa: E741 - the paper's name
    c: int

    def pack(self) -> str:
        """Fixed-width hex text whose string order equals timestamp order."""
        return f"{(self.l << COUNTER_BITS) | self.c:016x}"

    @classmethod
    def unpack(cls, text: str) -> "Timestamp":
        """The timestamp a packed string stands for."""
        value = int(text, 16)
        return cls(value >> COUNTER_BITS, value & COUNTER_MAX)


ZERO = Timestamp(0, 0)


def tick(last: Timestamp, wall_ms: int) -> Timestamp:
    """The timestamp for a local event (send), after ``last``."""
    if wall_ms > last.l:
        return Timestamp(wall_ms, 0)
    if last.c >= COUNTER_MAX:
        return Timestamp(last.l + 1, 0)
    return Timestamp(last.l, last.c + 1)


def receive(last: Timestamp, remote: Timestamp, wall_ms: int) -> Timestamp:
    """The timestamp after seeing ``remote``; a remote clock far ahead is clamped to
    ``wall_ms + MAX_DRIFT_MS`` so one bad clock cannot win every later write."""
    remote = min(remote, Timestamp(wall_ms + MAX_DRIFT_MS, 0))
    top = max(last.l, remote.l, wall_ms)
    if top == last.l == remote.l:
        c = max(last.c, remote.c) + 1
    elif top == last.l:
        c = last.c + 1
    elif top == remote.l:
        c = remote.c + 1
    else:
        c = 0
    if c > COUNTER_MAX:
        return Timestamp(top + 1, 0)
    return Timestamp(top, c)
