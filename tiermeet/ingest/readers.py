"""Read JSON Lines and CSV signal files row by row, with the line each row came from.

A row that cannot be read (bad JSON, bytes that are not UTF-8, a row that is not an
object) comes back as a ``Problem`` for that line; the rest of the file is still read.
A file that cannot be used at all (missing, wrong CSV header, unknown format) raises
``UnusableInput``.
"""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from tiermeet.ingest.contract import REQUIRED
from tiermeet.sync.jsonutil import same_as_stdlib

FORMATS = ("jsonl", "csv")
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}


class UnusableInput(Exception):
    """The file as a whole cannot be ingested."""


@dataclass(slots=True)
class Row:
    """One record read from ``line`` of a file. Not frozen: a frozen dataclass costs twice
    as much to make, and a file makes one per line."""

    line: int
    data: dict


@dataclass(frozen=True)
class Problem:
    """A line that could not be read as a record."""

    line: int
    field: str
    reason: str


def detect_format(name: str, forced: str | None) -> str:
    """``jsonl`` or ``csv``, from ``--format`` or the file's extension."""
    if forced:
        return forced
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise UnusableInput(f"{name}: cannot tell the format from the extension {suffix or '(none)'!r}; use --format jsonl or --format csv")
    return SUFFIXES[suffix]


def _utf8_problem(raw: bytes, line: int) -> Problem:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem(line, "(row)", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")
    raise AssertionError("decoded fine")


#: Reads one JSON value at an offset: for a line orjson refuses, tells whether it still holds
#: one object that the standard library reads; lines it does not read cleanly go through
#: ``json.loads``, which says what is wrong with them.
_scan = json.JSONDecoder().scan_once
_JSON_SPACE = " \t\n\r"


def _json_type(value) -> str:
    """What JSON calls a decoded value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {list: "an array", str: "a string", int: "a number", float: "a number"}[type(value)]


def read_jsonl(stream: BinaryIO, first_line: int = 1) -> Iterator[Row | Problem]:
    """Rows of a JSON Lines stream whose first line is line ``first_line`` of its file (a
    byte-order mark is looked for on line 1 only); blank lines are skipped.

    Each line is first given to orjson, three times faster than the standard library. A
    line it refuses (it is stricter: a byte-order mark, NaN, lone surrogates) or may have
    read differently (an integer beyond 64 bits) is read by the standard library as
    before, so what is accepted, how it is read, and the message for what is not, do not
    change."""
    fast, exact, loads, scan, space = orjson.loads, same_as_stdlib, json.loads, _scan, _JSON_SPACE
    for number, raw in enumerate(stream, start=first_line):
        try:
            data = fast(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            if type(data) is dict and exact(data):
                yield Row(number, data)
                continue
        if not raw or raw.isspace():
            continue
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            yield _utf8_problem(raw, number)
            continue
        if text[:1] == "{":
            try:
                data, end = scan(text, 0)
            except (StopIteration, ValueError):
                data = end = None
            if end is not None and not text[end:].strip(space):
                yield Row(number, data)
                continue
        try:
            data = loads(text)
        except json.JSONDecodeError as exc:
            yield Problem(number, "(row)", f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(data, dict):
            yield Problem(number, "(row)", f"expected a JSON object, found {_json_type(data)}")
            continue
        yield Row(number, data)


def read_csv(stream: BinaryIO, name: str) -> Iterator[Row | Problem]:
    """Rows of a CSV stream with a header row naming the contract's fields."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    garbled = next((h for h in header if any("\udc80" <= ch <= "\udcff" for ch in h)), None)
    if garbled is not None:
        raw = garbled.encode("utf-8", "surrogateescape")
        raise UnusableInput(f"{name}:1: header: {_utf8_problem(raw, 1).reason}")
    missing = [f for f in REQUIRED if f not in header]
    if missing:
        raise UnusableInput(f"{name}:1: header: missing required column(s) {', '.join(missing)}; found {', '.join(header) or 'nothing'}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise UnusableInput(f"{name}:1: header: column {dupes[0]!r} appears twice")
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Problem(line, "(row)", f"not valid CSV: {exc}")
            continue
        if not values or values == [""]:
            continue
        if any("\udc80" <= ch <= "\udcff" for v in values for ch in v):
            raw = ",".join(values).encode("utf-8", "surrogateescape")
            yield _utf8_problem(raw, line)
            continue
        if len(values) != len(header):
            yield Problem(line, "(row)", f"has {len(values)} values; the header has {len(header)} columns")
            continue
        yield Row(line, {k: v for k, v in zip(header, values, strict=True) if v != ""})


def read_rows(stream: BinaryIO, name: str, fmt: str, first_line: int = 1) -> Iterator[Row | Problem]:
    """Rows of ``stream`` in format ``fmt``; a JSON Lines stream may start at a later line
    of its file, ``first_line``."""
    return read_jsonl(stream, first_line) if fmt == "jsonl" else read_csv(stream, name)
