"""JSON for sync payloads: orjson when it is installed (several times faster on the
states a push or pull moves by the thousand), the standard library otherwise."""

import json

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency; this keeps a bare install working
    _orjson = None


def dumps(value) -> str:
    """Compact JSON text."""
    return dumpb(value).decode()


def dumpb(value) -> bytes:
    """Compact JSON as UTF-8 bytes (a request body). orjson refuses integers beyond 64 bits,
    which JSON allows and a signal's ``extra`` may hold: those values go through the
    standard library, written the same way (compact, UTF-8 as it is)."""
    if _orjson is not None:
        try:
            return _orjson.dumps(value)
        except TypeError as exc:
            if "64-bit" not in str(exc):
                raise
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def canonical(value) -> bytes:
    """Compact JSON with sorted keys, UTF-8 as it is: the same bytes for the same value
    whatever the order its objects were built in (a stable input for a hash). orjson
    writes it; a value holding an integer beyond 64 bits, the standard library."""
    if _orjson is not None:
        try:
            return _orjson.dumps(value, option=_orjson.OPT_SORT_KEYS)
        except TypeError as exc:
            if "64-bit" not in str(exc):
                raise
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def loads(text):
    """Parse JSON text or bytes."""
    if _orjson is not None:
        return _orjson.loads(text)
    return json.loads(text)


#: orjson reads an integer beyond 64 bits as a float; the standard library keeps it exact.
_INT64_FLOAT_BOUNDS = (-2.0 ** 63, 2.0 ** 64)


def same_as_stdlib(value) -> bool:
    """False when orjson may have read ``value`` differently from ``json.loads``: a float
    outside the 64-bit integers anywhere in it may be an integer of the text."""
    low, high = _INT64_FLOAT_BOUNDS
    kind = type(value)
    if kind is float:
        return low < value < high
    if kind is not dict and kind is not list:
        return True
    for item in value.values() if kind is dict else value:
        kind = type(item)
        if kind is float:
            if not low < item < high:
                return False
        elif (kind is dict or kind is list) and not same_as_stdlib(item):
            return False
    return True


def loads_like_stdlib(data: bytes | str):
    """What ``json.loads`` gives for ``data`` (or the error it raises), found by orjson where
    it can: several times faster on large bodies. A text orjson refuses (it is stricter: a
    byte-order mark, NaN, lone surrogates) or may read differently goes to the standard
    library."""
    if _orjson is not None:
        try:
            value = _orjson.loads(data)
        except _orjson.JSONDecodeError:
            return json.loads(data)
        if same_as_stdlib(value):
            return value
    return json.loads(data)
