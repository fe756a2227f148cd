"""The signal ingest record (design.md §4), shared by file ingest and the central API.

Each field is checked with a message that names the field and what is wrong, in words a
plant engineer can act on. Fields the contract does not name are kept in ``extra``.
A time without an offset is read in the plant's time zone.
"""

import operator
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from tiermeet.domain.enums import Category, Severity, SignalKind

REQUIRED = ("external_id", "source", "detected_at", "area", "category", "severity", "title")
OPTIONAL = ("model_version", "kind", "line", "asset", "confidence", "detail", "suggested_action", "evidence_url")
FIELDS = REQUIRED + OPTIONAL
#: The AI output of a signal, as a decision keeps it in its snapshot.
PAYLOAD = ("source", "model_version", "kind", "detected_at", "area", "line", "asset", "category", "severity",
           "confidence", "title", "detail", "suggested_action", "evidence_url", "extra")
#: The fields of a checked record, in the order ``check_values`` gives them: the signal's
#: own columns after its id, as stored.
CHECKED = ("external_id", "source", "model_version", "kind", "detected_at", "area", "line", "asset", "category",
           "severity", "severity_rank", "confidence", "title", "detail", "suggested_action", "evidence_url", "extra")
TITLE_MAX = 200
TEXT_MAX = 10_000
ID_MAX = 200

#: C0/C1 control characters other than tab and newline, and the bidirectional overrides
#: that can make a title read differently from what it contains.
_HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: Halves of a surrogate pair on their own (a JSON "\ud800" escape): not text at all.
_SURROGATE = re.compile("[\ud800-\udfff]")


class RecordError(ValueError):
    """One field of one record is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Plan:
    """What a record is checked against: the plant's areas, lines and time zone."""

    area_lines: dict[str, frozenset[str]]
    zone: ZoneInfo


def _choices(enum) -> str:
    return ", ".join(m.value for m in enum)


def _text(record: dict, field: str, limit: int, required: bool) -> str | None:
    value = record.get(field)
    if value is None or value == "":
        if required:
            raise RecordError(field, "required field is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RecordError(field, f"must be text, not {type(value).__name__}")
    text = str(value)
    if required and not text.strip():
        raise RecordError(field, "must not be blank")
    if len(text) > limit:
        raise RecordError(field, f"is {len(text)} characters; the limit is {limit}")
    lone = _SURROGATE.search(text)
    if lone:
        raise RecordError(field, f"contains an unpaired surrogate (U+{ord(lone.group()):04X}), which is not valid text")
    hidden = _HIDDEN.search(text)
    if hidden and field not in ("detail", "suggested_action"):
        raise RecordError(field, f"contains an invisible control character (U+{ord(hidden.group()):04X})")
    return text


def _enum(record: dict, field: str, enum, default=None):
    value = record.get(field)
    if value is None or value == "":
        if default is None:
            raise RecordError(field, "required field is missing")
        return default
    try:
        return enum(str(value).strip().lower())
    except ValueError:
        raise RecordError(field, f"{value!r} is not one of {_choices(enum)}") from None


def _time(record: dict, zone: ZoneInfo) -> datetime:
    value = record.get("detected_at")
    if value is None or value == "":
        raise RecordError("detected_at", "required field is missing")
    if not isinstance(value, str):
        raise RecordError("detected_at", f"{value!r} is not an ISO 8601 time (e.g. 2026-11-25T06:40:00+01:00)")
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RecordError("detected_at", f"{value!r} is not an ISO 8601 time (e.g. 2026-11-25T06:40:00+01:00)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    try:
        return when.astimezone(timezone.utc)
    except OverflowError:
        raise RecordError("detected_at", f"{value!r} is out of range") from None


def _confidence(record: dict) -> float | None:
    value = record.get("confidence")
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError("confidence", f"{value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RecordError("confidence", f"{value!r} is not a number") from None
    except OverflowError:
        raise RecordError("confidence", "is outside 0..1") from None
    if not 0.0 <= number <= 1.0:
        raise RecordError("confidence", f"{value!r} is outside 0..1")
    return number


def _url(record: dict) -> str | None:
    text = _text(record, "evidence_url", 2000, required=False)
    if text is None:
        return None
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest or " " in text:
        raise RecordError("evidence_url", f"{text!r} is not an http or https URL")
    return text


def check_record(record: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """The record as signal payload columns, or RecordError for the first field at fault."""
    return as_record(check_values(record, plan))


def as_record(values: tuple) -> dict[str, Any]:
    """``check_values``'s tuple as ``check_record``'s columns by name."""
    return dict(zip(CHECKED, values))


def check_values(record: dict[str, Any], plan: Plan) -> tuple:
    """``check_record``'s columns as a tuple in ``CHECKED`` order: what bulk ingest builds
    its rows from, with no dict made and read again for each of a hundred thousand
    records."""
    try:
        checked = _check_clean(record, plan)
    except OverflowError:  # a time at the edge of the calendar: the full check names it
        checked = None
    if checked is not None:
        return checked
    return _in_order(_check_each(record, plan))


# The common case, fast: a record whose fields are all plain, valid text (or a number for
# the confidence) is checked in one pass with cheap tests. Anything out of the ordinary
# (a wrong or missing field, a number where text belongs, upper-case enum values, text that
# needs the control-character scan to decide) makes it give up and return None, and the
# field-by-field check below, which owns every message, decides. So the fast pass only
# ever accepts what the full check accepts, with the same result.

_KNOWN = frozenset(FIELDS)
_in_order = operator.itemgetter(*CHECKED)
_SEVERITIES = {m.value: (m.value, m.rank) for m in Severity}
_KINDS = {m.value: m.value for m in SignalKind}
_CATEGORIES = {m.value: m.value for m in Category}
_ANOMALY = SignalKind.ANOMALY.value
_UTC = timezone.utc


def _visible(text: str) -> bool:
    """True when ``_text`` lets ``text`` through in a field it scans for hidden characters."""
    return text.isprintable() or (_HIDDEN.search(text) is None and _SURROGATE.search(text) is None)


def _check_clean(record: dict[str, Any], plan: Plan) -> dict[str, Any] | None:
    get = record.get
    external_id, source, area, title = get("external_id"), get("source"), get("area"), get("title")
    line, model_version, asset = get("line"), get("model_version"), get("asset")
    if line == "":
        line = None
    if model_version == "":
        model_version = None
    if asset == "":
        asset = None
    # the short texts all at once: plain text of a length the contract allows, and, in the
    # common case of no tab or other unprintable character anywhere, seen in one pass
    if not (type(external_id) is str and type(source) is str and type(area) is str and type(title) is str
            and (line is None or type(line) is str) and (model_version is None or type(model_version) is str)
            and (asset is None or type(asset) is str)
            and 0 < len(external_id) <= ID_MAX and 0 < len(source) <= ID_MAX and 0 < len(area) <= ID_MAX
            and 0 < len(title) <= TITLE_MAX and (line is None or len(line) <= ID_MAX)
            and (model_version is None or len(model_version) <= ID_MAX) and (asset is None or len(asset) <= ID_MAX)
            and external_id.strip() and source.strip() and area.strip()):
        return None
    texts = (external_id, source, area, title, line or "", model_version or "", asset or "")
    if not "".join(texts).isprintable() and not all(_visible(text) for text in texts):
        return None
    lines = plan.area_lines.get(area)
    if lines is None or (line is not None and line not in lines):
        return None
    severity = get("severity")
    severity = _SEVERITIES.get(severity) if type(severity) is str else None
    if severity is None:
        return None
    kind = get("kind")
    if kind is None or kind == "":
        kind = _ANOMALY
    else:
        kind = _KINDS.get(kind) if type(kind) is str else None
        if kind is None:
            return None
    detected_at = get("detected_at")
    if type(detected_at) is not str:
        return None
    try:
        when = datetime.fromisoformat(detected_at.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=plan.zone)
    category = get("category")
    category = _CATEGORIES.get(category) if type(category) is str else None
    if category is None:
        return None
    confidence = get("confidence")
    if confidence is None or confidence == "":
        confidence = None
    elif type(confidence) is float:
        if not 0.0 <= confidence <= 1.0:
            return None
    else:
        return None
    title = title.strip()
    if not title:
        return None
    detail = get("detail")
    if detail is None or detail == "":
        detail = None
    elif type(detail) is not str or len(detail) > TEXT_MAX or _SURROGATE.search(detail):
        return None
    suggested_action = get("suggested_action")
    if suggested_action is None or suggested_action == "":
        suggested_action = None
    elif type(suggested_action) is not str or len(suggested_action) > TEXT_MAX or _SURROGATE.search(suggested_action):
        return None
    evidence_url = get("evidence_url")
    if evidence_url is None or evidence_url == "":
        evidence_url = None
    else:
        if not (type(evidence_url) is str and len(evidence_url) <= 2000 and _visible(evidence_url)):
            return None
        scheme, sep, rest = evidence_url.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest or " " in evidence_url:
            return None
    extra = None if _KNOWN.issuperset(record) else {k: v for k, v in record.items() if k not in _KNOWN}
    # in CHECKED order
    return (external_id, source, model_version, kind, when.astimezone(_UTC), area, line, asset, category, severity[0],
            severity[1], confidence, title, detail, suggested_action, evidence_url, extra or None)


def _check_each(record: dict[str, Any], plan: Plan) -> dict[str, Any]:
    external_id = _text(record, "external_id", ID_MAX, required=True)
    source = _text(record, "source", ID_MAX, required=True)
    area = _text(record, "area", ID_MAX, required=True)
    lines = plan.area_lines.get(area)
    if lines is None:
        raise RecordError("area", f"{area!r} is not a configured area")
    line = _text(record, "line", ID_MAX, required=False)
    if line is not None and line not in lines:
        raise RecordError("line", f"{line!r} is not a line of area {area!r}")
    severity = _enum(record, "severity", Severity)
    extra = {k: v for k, v in record.items() if k not in FIELDS}
    return {
        "external_id": external_id,
        "source": source,
        "model_version": _text(record, "model_version", ID_MAX, required=False),
        "kind": _enum(record, "kind", SignalKind, SignalKind.ANOMALY).value,
        "detected_at": _time(record, plan.zone),
        "area": area,
        "line": line,
        "asset": _text(record, "asset", ID_MAX, required=False),
        "category": _enum(record, "category", Category).value,
        "severity": severity.value,
        "severity_rank": severity.rank,
        "confidence": _confidence(record),
        "title": _text(record, "title", TITLE_MAX, required=True).strip(),
        "detail": _text(record, "detail", TEXT_MAX, required=False),
        "suggested_action": _text(record, "suggested_action", TEXT_MAX, required=False),
        "evidence_url": _url(record),
        "extra": extra or None,
    }
