"""JSON for sync payloads: orjson when it is installed (several times faster on the
states a push or pull moves by the thousand), the standard library otherwise."""

import json

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency; this keeps a bare install working
    _orjson = None


def dumps(value) -> str:
    """Compact JSON text."""
    if _orjson is not None:
        return _orjson.dumps(value).decode()
    return json.dumps(value, separators=(",", ":"))


def dumpb(value) -> bytes:
    """Compact JSON as UTF-8 bytes (a request body)."""
    if _orjson is not None:
        return _orjson.dumps(value)
    return json.dumps(value, separators=(",", ":")).encode()


def loads(text):
    """Parse JSON text or bytes."""
    if _orjson is not None:
        return _orjson.loads(text)
    return json.loads(text)
