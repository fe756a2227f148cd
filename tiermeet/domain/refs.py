"""Short, human references for records ("S-1a2b3c4d") derived from their UUIDv7 ids.

The last eight hex digits of a UUIDv7 are random, so they tell records apart on a board
without showing 36 characters; the full id stays the key.
"""

import uuid

PREFIXES = {"signal": "S", "action": "A", "decision": "D", "meeting": "M", "escalation": "E"}


def short_ref(entity: str, record_id: uuid.UUID) -> str:
    """The display reference of a record, e.g. ``short_ref("signal", id) == "S-1a2b3c4d"``."""
    return f"{PREFIXES[entity]}-{record_id.hex[-8:]}"


def ref_suffix(text: str) -> str | None:
    """The hex suffix a typed reference stands for, or None if it is not a short reference."""
    head, _, tail = text.strip().partition("-")
    if not tail or head.upper() not in PREFIXES.values() or len(tail) != 8:
        return None
    try:
        int(tail, 16)
    except ValueError:
        return None
    return tail.lower()
