"""Keep a kiosk's memory in one malloc arena.

glibc gives every thread that allocates its own arena (up to eight per core), and memory
freed in one arena is not reused by another. The board reads pages and saves decisions on
worker threads, so over a shift each of them keeps a few megabytes of freed memory of its
own: about 3 MB of the app's peak with 100,000 signals, measured by the start-up
benchmark. Python allocates under its interpreter lock anyway, so one shared arena costs
no contention. Elsewhere than glibc (musl, macOS, Windows) this does nothing.
"""

import ctypes
import ctypes.util

#: ``M_ARENA_MAX`` from glibc's malloc.h.
_M_ARENA_MAX = -8


def use_one_arena() -> None:
    """Ask glibc's malloc to serve all threads from one arena (no-op without glibc)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, 1)
