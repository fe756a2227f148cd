"""Signals as text for the command line: an aligned table, JSON Lines or CSV.

JSON and CSV carry the ingest contract's fields plus id, tier, status and deadline, so a
listing can be read back by other tools without surprises.
"""

import csv
import io
import json
from datetime import datetime

from rich.console import Console
from rich.table import Table

from tiermeet.domain.refs import short_ref
from tiermeet.ingest.contract import FIELDS
from tiermeet.store.queries import SignalRow
from tiermeet.timefmt import time_left

COLUMNS = ("id", "tier", "status", "deadline", *FIELDS)


def as_record(signal: SignalRow) -> dict:
    """A signal as a flat JSON-ready dict with stable keys."""
    record = {name: getattr(signal, name) for name in COLUMNS}
    record["id"] = str(signal.id)
    record["deadline"] = signal.deadline.isoformat()
    record["detected_at"] = signal.detected_at.isoformat()
    return record


def render_signals(signals: list[SignalRow], fmt: str, now: datetime) -> str:
    """``signals`` in ``fmt`` (table, json or csv)."""
    if fmt == "json":
        return "".join(json.dumps(as_record(s), ensure_ascii=False) + "\n" for s in signals)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(as_record(s) for s in signals)
        return out.getvalue()
    table = Table(box=None, pad_edge=False)
    for header in ("ref", "tier", "sev", "cat", "line", "title", "source", "left", "status"):
        table.add_column(header, overflow="ellipsis", no_wrap=header != "title")
    for s in signals:
        table.add_row(short_ref("signal", s.id), str(s.tier), s.severity, s.category, s.line or s.area, s.title,
                      s.source, "decided" if s.status == "actioned" else time_left(s.deadline, now), s.status)
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(table if signals else "no signals")
    return console.file.getvalue()
