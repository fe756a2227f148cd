"""Ingest: a corpus of bad rows, each refused with its exact message; good rows kept;
text stored exactly as sent; the command line's output format and exit codes.

Row-level checks go through the ingest service on a real database; the output format and
exit codes are checked by running ``python -m tiermeet ingest`` in a subprocess.
"""

import csv
import io
import json
import re
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import signal_record
from tiermeet.ingest.readers import Problem, Row, read_csv, read_jsonl

# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def ingest_one(services, record: dict):
    return services.ingest.ingest([Row(1, record)], origin="test.jsonl")


def refused(services, record: dict) -> tuple[str, str]:
    report = ingest_one(services, record)
    assert report.added == 0, "the row was accepted"
    (rejection,) = report.rejected
    line, field, reason = rejection
    assert line == 1
    return field, reason


def stored(db_path: Path, external_id: str) -> dict:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM signal WHERE external_id = ?", (external_id,)).fetchone()
    conn.close()
    assert row is not None, f"{external_id} was not stored"
    return dict(row)


def count_signals(db_path: Path) -> int:
    conn = sqlite3.connect(db_path)
    (n,) = conn.execute("SELECT count(*) FROM signal").fetchone()
    conn.close()
    return n


def jsonl(*records) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r, ensure_ascii=False).encode()) + b"\n" for r in records)


def without(field: str) -> dict:
    record = signal_record()
    del record[field]
    return record


# --------------------------------------------------------------------------------------
# The corpus of bad records: (record, field, exact reason)
# --------------------------------------------------------------------------------------

CHOICES = {
    "category": "safety, quality, delivery, cost, people",
    "severity": "critical, high, medium, low",
    "kind": "anomaly, prediction, detection, recommendation",
}
ISO_HINT = "is not an ISO 8601 time (e.g. 2026-11-25T06:40:00+01:00)"

BAD = {
    # missing required fields, absent or empty
    **{f"missing-{f}": (without(f), f, "required field is missing")
       for f in ("external_id", "source", "detected_at", "area", "category", "severity", "title")},
    **{f"empty-{f}": (signal_record(**{f: ""}), f, "required field is missing")
       for f in ("external_id", "source", "detected_at", "area", "category", "severity", "title")},
    "null-title": (signal_record(title=None), "title", "required field is missing"),
    "blank-title": (signal_record(title="   "), "title", "must not be blank"),
    "blank-source": (signal_record(source=" \t"), "source", "must not be blank"),
    "title-list": (signal_record(title=["a", "b"]), "title", "must be text, not list"),
    "source-object": (signal_record(source={"name": "pdm"}), "source", "must be text, not dict"),
    "title-bool": (signal_record(title=True), "title", "must be text, not bool"),
    # wrong enum values
    "category": (signal_record(category="qualty"), "category", f"'qualty' is not one of {CHOICES['category']}"),
    "severity": (signal_record(severity="urgent"), "severity", f"'urgent' is not one of {CHOICES['severity']}"),
    "severity-number": (signal_record(severity=1), "severity", f"1 is not one of {CHOICES['severity']}"),
    "kind": (signal_record(kind="guess"), "kind", f"'guess' is not one of {CHOICES['kind']}"),
    # timestamps
    "time-words": (signal_record(detected_at="yesterday"), "detected_at", f"'yesterday' {ISO_HINT}"),
    "time-impossible": (signal_record(detected_at="2026-13-45T07:00:00"), "detected_at", f"'2026-13-45T07:00:00' {ISO_HINT}"),
    "time-us-style": (signal_record(detected_at="11/25/2026 07:40"), "detected_at", f"'11/25/2026 07:40' {ISO_HINT}"),
    "time-epoch-number": (signal_record(detected_at=1764052800), "detected_at", f"1764052800 {ISO_HINT}"),
    # confidence
    "confidence-high": (signal_record(confidence=1.5), "confidence", "1.5 is outside 0..1"),
    "confidence-negative": (signal_record(confidence=-0.01), "confidence", "-0.01 is outside 0..1"),
    "confidence-percent": (signal_record(confidence=87), "confidence", "87 is outside 0..1"),
    "confidence-text": (signal_record(confidence="high"), "confidence", "'high' is not a number"),
    "confidence-nan": (signal_record(confidence="nan"), "confidence", "'nan' is outside 0..1"),
    "confidence-list": (signal_record(confidence=[0.5]), "confidence", "[0.5] is not a number"),
    # plant structure
    "unknown-area": (signal_record(area="paint"), "area", "'paint' is not a configured area"),
    "unknown-line": (signal_record(line="CNC9"), "line", "'CNC9' is not a line of area 'machining'"),
    "line-of-other-area": (signal_record(line="ASM1"), "line", "'ASM1' is not a line of area 'machining'"),
    "area-case": (signal_record(area="Machining"), "area", "'Machining' is not a configured area"),
    # over-long text
    "title-201": (signal_record(title="x" * 201), "title", "is 201 characters; the limit is 200"),
    "detail-10001": (signal_record(detail="d" * 10_001), "detail", "is 10001 characters; the limit is 10000"),
    "suggested-10001": (signal_record(suggested_action="s" * 10_001), "suggested_action", "is 10001 characters; the limit is 10000"),
    "external-id-201": (signal_record(external_id="e" * 201), "external_id", "is 201 characters; the limit is 200"),
    "source-201": (signal_record(source="s" * 201), "source", "is 201 characters; the limit is 200"),
    # hidden characters
    "title-bidi-override": (signal_record(title="Spindle \u202eOK\u202c"), "title", "contains an invisible control character (U+202E)"),
    "title-bidi-isolate": (signal_record(title="a\u2067b\u2069"), "title", "contains an invisible control character (U+2067)"),
    "title-nul": (signal_record(title="a\x00b"), "title", "contains an invisible control character (U+0000)"),
    "title-escape": (signal_record(title="\x1b[31mred"), "title", "contains an invisible control character (U+001B)"),
    "external-id-c1": (signal_record(external_id="x\x85"), "external_id", "contains an invisible control character (U+0085)"),
    # evidence URL
    "url-ftp": (signal_record(evidence_url="ftp://files.plant/x.png"), "evidence_url", "'ftp://files.plant/x.png' is not an http or https URL"),
    "url-javascript": (signal_record(evidence_url="javascript:alert(1)"), "evidence_url", "'javascript:alert(1)' is not an http or https URL"),
    "url-file": (signal_record(evidence_url="file:///etc/passwd"), "evidence_url", "'file:///etc/passwd' is not an http or https URL"),
    "url-no-host": (signal_record(evidence_url="https://"), "evidence_url", "'https://' is not an http or https URL"),
    "url-space": (signal_record(evidence_url="https://a b"), "evidence_url", "'https://a b' is not an http or https URL"),
}


@pytest.mark.parametrize(("record", "field", "reason"), list(BAD.values()), ids=list(BAD))
def test_bad_record_is_refused_with_its_message(services, db_path, record, field, reason):
    assert refused(services, record) == (field, reason)
    assert count_signals(db_path) == 0


def test_boolean_confidence_is_not_a_number(services):
    assert refused(services, signal_record(confidence=True)) == ("confidence", "True is not a number")


GOOD = {
    "title-200": signal_record(title="t" * 200),
    "detail-10000": signal_record(detail="d" * 10_000),
    "line-omitted": signal_record(line=None),
    "line-empty": signal_record(line=""),
    "confidence-0": signal_record(confidence=0),
    "confidence-1": signal_record(confidence=1),
    "confidence-text-number": signal_record(confidence="0.5"),
    "severity-upper": signal_record(severity="HIGH"),
    "category-padded": signal_record(category=" quality "),
    "kind-default": {k: v for k, v in signal_record().items() if k != "kind"},
    "kind-given": signal_record(kind="prediction"),
    "url-http": signal_record(evidence_url="http://pdm.local/a?b=c"),
    "url-https-upper": signal_record(evidence_url="HTTPS://pdm.local/a"),
    "external-id-number": signal_record(external_id=12345),
    "detail-with-tabs-and-newlines": signal_record(detail="line 1\n\tline 2\r\nline 3"),
    "date-only": signal_record(detected_at="2026-11-25"),
    "utc-z": signal_record(detected_at="2026-11-25T06:40:00Z"),
}


@pytest.mark.parametrize("record", list(GOOD.values()), ids=list(GOOD))
def test_good_record_is_accepted(services, record):
    report = ingest_one(services, record)
    assert (report.added, report.rejected) == (1, [])


# --------------------------------------------------------------------------------------
# What is stored
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "stored_utc"), [
    ("2026-11-25T07:40:00", "2026-11-25T06:40:00.000000"),  # winter: Berlin is UTC+1
    ("2026-07-01T07:40:00", "2026-07-01T05:40:00.000000"),  # summer: UTC+2
    ("2026-11-25T07:40:00.123456", "2026-11-25T06:40:00.123456"),
    ("2026-11-25T07:40:00+01:00", "2026-11-25T06:40:00.000000"),
    ("2026-11-25T07:40:00-05:00", "2026-11-25T12:40:00.000000"),
    ("2026-11-25T07:40:00Z", "2026-11-25T07:40:00.000000"),
])
def test_times_are_stored_as_utc(services, db_path, written, stored_utc):
    assert ingest_one(services, signal_record(detected_at=written)).added == 1
    assert stored(db_path, "ext-1")["detected_at"] == stored_utc


@settings(max_examples=500, deadline=None)
@given(st.datetimes(timezones=st.timezones()), st.booleans())
def test_a_time_is_stored_as_naive_utc_text_with_microseconds(moment, whole_second):
    from tiermeet.store import timetext

    moment = moment.replace(microsecond=0) if whole_second else moment
    try:
        utc = moment.astimezone(timezone.utc)
    except OverflowError:  # a moment at the edge of the calendar has no UTC time
        return
    assert timetext.to_db_text(moment) == utc.replace(tzinfo=None).isoformat(timespec="microseconds")


VERBATIM = {
    "sql": "'; DROP TABLE signal; --",
    "sql-quotes": 'Robert"); DELETE FROM audit_log WHERE ("1"="1',
    "emoji": "🔥 Spindle overheating 🌡️ on SP-104 👷‍♀️",
    "arabic": "اهتزاز المغزل يرتفع على SP-104",
    "hebrew": "רעידות בציר עולות ב-SP-104",
    "mixed-rtl-ltr": "Line CNC1: הטמפרטורה 85°C — درجة الحرارة",
    "rtl-mark": "abc\u200fאבג",  # a right-to-left mark is ordinary text, not an override
    "cjk": "主轴振动上升",
    "combining": "Zoë Å (NFD: Zoe\u0308 A\u030a)",
    "percent-and-underscore": "100% _wildcard_ %s {0}",
}


@pytest.mark.parametrize("text", list(VERBATIM.values()), ids=list(VERBATIM))
def test_text_is_stored_verbatim(services, db_path, text):
    record = signal_record(title=text, detail=text, suggested_action=text, asset=text[:50], source=text[:200])
    assert ingest_one(services, record).added == 1
    row = stored(db_path, "ext-1")
    assert (row["title"], row["detail"], row["suggested_action"], row["source"]) == (text, text, text, text[:200])
    # the tables are all still there
    conn = sqlite3.connect(db_path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert {"signal", "audit_log", "outbox"} <= tables


def test_unknown_fields_are_kept_in_extra(services, db_path):
    record = signal_record(plant_cell="B4", sensor={"id": 7, "axis": "z"}, tags=["a", "b"], score=None)
    assert ingest_one(services, record).added == 1
    assert json.loads(stored(db_path, "ext-1")["extra"]) == {"plant_cell": "B4", "sensor": {"id": 7, "axis": "z"}, "tags": ["a", "b"], "score": None}
    assert ingest_one(services, signal_record(2)).added == 1
    assert stored(db_path, "ext-2")["extra"] in (None, "null")


def test_payload_columns(services, db_path):
    record = signal_record(7, confidence=0.5, evidence_url="https://pdm.local/7", detail="RMS up", title="  padded title  ")
    assert ingest_one(services, record).added == 1
    row = stored(db_path, "ext-7")
    for name in ("source", "model_version", "area", "line", "asset", "category", "severity", "suggested_action", "evidence_url", "detail"):
        assert row[name] == record[name], name
    assert row["title"] == "padded title"
    assert (row["kind"], row["severity_rank"], row["confidence"], row["status"], row["tier"]) == ("anomaly", 1, 0.5, "open", 1)


def test_good_rows_kept_alongside_bad_ones(services, db_path):
    rows = [
        Row(1, signal_record(1)),
        Row(2, signal_record(2, severity="urgent")),
        Problem(3, "(row)", "not valid JSON: Expecting value (column 1)"),
        Row(4, signal_record(4)),
        Row(5, signal_record(5, area="paint")),
        Row(6, signal_record(6)),
    ]
    report = services.ingest.ingest(rows, origin="mixed.jsonl")
    assert report.added == 3 and report.duplicates == 0
    assert [(line, field) for line, field, _ in report.rejected] == [(2, "severity"), (3, "(row)"), (5, "area")]
    assert {stored(db_path, f"ext-{n}")["external_id"] for n in (1, 4, 6)} == {"ext-1", "ext-4", "ext-6"}
    assert report.summary() == "3 added, 0 duplicates, 3 rejected"


def test_duplicate_external_id_inside_one_file(services, db_path):
    rows = [Row(1, signal_record(1)), Row(2, signal_record(2)), Row(5, signal_record(1, title="again")),
            Row(6, signal_record(1, source="vision-qc"))]
    report = services.ingest.ingest(rows, origin="dups.jsonl")
    assert report.added == 3
    assert report.rejected == [(5, "external_id", "'ext-1' from source 'pdm-spindle' already appears on line 1")]
    assert stored(db_path, "ext-1")["title"] != "again"


def test_second_run_adds_nothing(services, db_path):
    rows = [Row(n, signal_record(n)) for n in range(1, 8)]
    assert services.ingest.ingest(rows, origin="a").summary() == "7 added, 0 duplicates, 0 rejected"
    before = sqlite3.connect(db_path).execute("SELECT count(*) FROM outbox").fetchone()
    assert services.ingest.ingest(rows, origin="a").summary() == "0 added, 7 duplicates, 0 rejected"
    assert sqlite3.connect(db_path).execute("SELECT count(*) FROM outbox").fetchone() == before
    mixed = [Row(1, signal_record(1)), Row(2, signal_record(100))]
    assert services.ingest.ingest(mixed, origin="b").summary() == "1 added, 1 duplicates, 0 rejected"
    assert count_signals(db_path) == 8


@pytest.fixture
def batch(monkeypatch) -> int:
    """Batches of a hundred rows, so that several of them take a small file; each of two
    ``signal.ingest`` mutations of 50 rows, read in parts of 25; of a file read in a second
    process, the first 53 lines read by the writer."""
    from tiermeet.services import ingest

    monkeypatch.setattr(ingest, "BATCH", 100)
    monkeypatch.setattr(ingest, "SYNC_BATCH", 50)
    monkeypatch.setattr(ingest, "PART", 25)
    monkeypatch.setattr(ingest, "HEAD_ROWS", 53)
    return 100


def test_large_file_is_written_in_batches(services, db_path, batch):
    rows = [Row(n, signal_record(n)) for n in range(1, 2 * batch + 3)]
    report = services.ingest.ingest(rows, origin="big")
    assert report.added == 2 * batch + 2
    conn = sqlite3.connect(db_path)
    outbox = conn.execute("SELECT name, args FROM outbox ORDER BY seq").fetchall()
    audit = conn.execute("SELECT json_extract(after, '$.count') FROM audit_log WHERE op = 'ingest' ORDER BY hlc").fetchall()
    conn.close()
    assert [name for name, _ in outbox] == ["signal.ingest"] * 5
    assert [len(json.loads(args)["signal_ids"]) for _, args in outbox] == [batch // 2] * 4 + [2]
    assert audit == [(batch // 2,)] * 4 + [(2,)]


def test_rows_still_to_come_are_not_waited_for_under_the_write_lock(services, db_path, batch):
    """A slow source (a pipe on stdin) is read before each batch's transaction begins, so
    another writer is never kept waiting on it."""
    others = []

    def rows():
        for n in range(1, 2 * batch + 11):
            if n == batch + batch // 2:  # the first batch is stored; the second is being read
                other = sqlite3.connect(db_path, timeout=0)
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                other.close()
                others.append(n)
            yield Row(n, signal_record(n))

    assert services.ingest.ingest(rows(), origin="slow").added == 2 * batch + 10
    assert others == [batch + batch // 2]


def test_autonomous_decisions_travel_with_the_mutation_of_their_signals(services, db_path, batch):
    rows = [Row(n, signal_record(n, source="pdm-toolwear", line="CNC2", severity="medium", confidence=0.97,
                                 category="cost") if n % 3 == 0 else signal_record(n)) for n in range(1, batch + 1)]
    assert services.ingest.ingest(rows, origin="mixed").added == batch
    conn = sqlite3.connect(db_path)
    mutations = {mutation_id: json.loads(args) for mutation_id, args in conn.execute(
        "SELECT mutation_id, args FROM outbox WHERE name = 'signal.ingest'")}
    entries = conn.execute("SELECT entity_id, mutation_id FROM audit_log WHERE op = 'decide:act'").fetchall()
    conn.close()
    assert len(mutations) == 2 and len(entries) == batch // 3
    for signal_id, mutation_id in entries:  # one transaction, two mutations: each entry on its own
        assert signal_id in mutations[mutation_id]["signal_ids"]


def test_a_bulk_write_checkpoints_when_its_wal_outgrows_the_limit(services, db_path, batch, monkeypatch):
    from tiermeet.services import ingest
    from tiermeet.store.engine import checkpoint

    calls = []
    monkeypatch.setattr(ingest, "checkpoint", lambda engine: calls.append(checkpoint(engine)))
    services.ingest.ingest([Row(n, signal_record(n)) for n in range(3 * batch)], origin="within")
    assert calls == []
    monkeypatch.setattr(ingest, "BULK_WAL_BYTES", 0)
    services.ingest.ingest([Row(n, signal_record(n)) for n in range(3 * batch, 6 * batch)], origin="beyond")
    assert len(calls) == 3
    assert sqlite3.connect(db_path).execute("SELECT count(*) FROM signal").fetchone() == (6 * batch,)


def _stored(db_path) -> tuple[int, list[int]]:
    conn = sqlite3.connect(db_path)
    signals = conn.execute("SELECT count(*) FROM signal").fetchone()[0]
    batches = [len(json.loads(args)["signal_ids"]) for (args,) in conn.execute("SELECT args FROM outbox WHERE name = 'signal.ingest' ORDER BY seq")]
    conn.close()
    return signals, batches


def test_a_batch_the_database_refuses_stops_the_run_and_leaves_only_whole_batches(services, db_path, batch):
    services.ingest  # the database exists and is migrated before the trigger goes in
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON signal WHEN NEW.external_id = 'e-poison' "
                 "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    conn.commit()
    conn.close()
    rows = [Row(n, signal_record(n)) for n in range(1, 3 * batch)]
    rows[batch + 10] = Row(batch + 11, signal_record(batch + 11, external_id="e-poison"))
    with pytest.raises(Exception, match="refused by the test"):
        services.ingest.ingest(rows, origin="poisoned")
    assert _stored(db_path) == (batch, [batch // 2] * 2)


def test_a_reading_failure_keeps_the_batches_stored_before_it_whole(services, db_path, batch):
    def rows():
        for n in range(1, batch + 6):
            yield Row(n, signal_record(n))
        raise OSError("the file went away")

    with pytest.raises(OSError, match="went away"):
        services.ingest.ingest(rows(), origin="vanishing")
    assert _stored(db_path) == (batch, [batch // 2] * 2)


# --------------------------------------------------------------------------------------
# Large files: read and prepared in a second process
# --------------------------------------------------------------------------------------


def mixed_file(path: Path, count: int) -> Path:
    """``count`` good signals (some the policy lets their model act on alone), with a bad
    row, a line repeating an earlier one and a row that is not JSON among them."""
    records = [signal_record(n) if n % 7 else signal_record(n, source="pdm-toolwear", line="CNC2", severity="medium",
                                                            confidence=0.97, category="cost")
               for n in range(count)]
    lines = [json.dumps(r).encode() for r in records]
    lines.insert(5, json.dumps(signal_record(10_000, severity="urgent")).encode())
    lines.insert(count // 2, json.dumps(records[3]).encode())
    lines.insert(count - 3, b'{"external_id": "x" "source": "y"}')
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def ingested(db_path) -> dict:
    conn = sqlite3.connect(db_path)
    try:
        return {
            "signals": conn.execute("SELECT external_id, status, tier, autonomy, policy_rule, deadline, detected_at "
                                    "FROM signal ORDER BY external_id").fetchall(),
            "decisions": conn.execute("SELECT s.external_id, d.decided_by FROM decision d JOIN signal s ON s.id = d.signal_id "
                                      "ORDER BY s.external_id").fetchall(),
            "batches": [(len(a["signal_ids"]), len(a["autonomous_decisions"])) for a in (
                json.loads(args) for (args,) in conn.execute("SELECT args FROM outbox WHERE name = 'signal.ingest' ORDER BY seq"))],
        }
    finally:
        conn.close()


@pytest.fixture
def readers(monkeypatch) -> list:
    """The reading processes ingest starts, as they start."""
    import subprocess

    from tiermeet.services import ingest

    started = []
    popen = subprocess.Popen

    def watched(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(ingest.subprocess, "Popen", watched)
    return started


@pytest.mark.parametrize("second_process", [False, True], ids=["one process", "two processes"])
def test_a_file_is_ingested_alike_in_one_process_or_two(services, db_path, tmp_path, batch, monkeypatch, readers,
                                                        second_process):
    from tiermeet.services import ingest

    monkeypatch.setattr(ingest, "SECOND_PROCESS_BYTES", 0 if second_process else 1 << 40)
    path = mixed_file(tmp_path / "signals.jsonl", 5 * batch + 17)
    services.ingest.ingest([Row(1, signal_record(40))], origin="earlier")  # one of them is already stored
    report = services.ingest.ingest_file(path, "jsonl", origin=str(path))
    assert [r.returncode for r in readers] == ([0] if second_process else [])
    assert report.summary() == f"{5 * batch + 16} added, 1 duplicates, 3 rejected"
    assert report.rejected == [
        (6, "severity", "'urgent' is not one of critical, high, medium, low"),
        (batch * 5 // 2 + 9, "external_id", "'ext-3' from source 'pdm-spindle' already appears on line 4"),
        (5 * batch + 15, "(row)", "not valid JSON: Expecting ',' delimiter (column 21)"),
    ]
    stored = ingested(db_path)
    assert len(stored["signals"]) == 5 * batch + 17
    assert {s[1:5] for s in stored["signals"] if s[0].startswith("ext-") and int(s[0][4:]) % 7 == 0} == {
        ("actioned", 1, "autonomous", "confident tool-wear calls")}
    assert [external_id for external_id, _ in stored["decisions"]] == sorted(f"ext-{n}" for n in range(0, 5 * batch + 17, 7))
    # one mutation for the earlier row, then one per 50 rows at most; ext-40 was there. (With
    # the second process, the writer's own first lines end in a short part of their own.)
    sizes = [size for size, _ in stored["batches"]]
    if second_process:
        assert sizes[0] == 1 and sum(sizes[1:]) == 5 * batch + 16 and max(sizes) <= batch // 2 and len(sizes) <= 13
    else:
        assert sizes == [1, batch // 2 - 1, *[batch // 2] * 9, 17]


def test_a_file_unusable_in_the_second_process_is_refused_as_unusable(services, db_path, tmp_path, monkeypatch):
    from tiermeet.ingest.readers import UnusableInput
    from tiermeet.services import ingest

    monkeypatch.setattr(ingest, "SECOND_PROCESS_BYTES", 0)
    path = tmp_path / "wrong.csv"
    path.write_text("id,model,time,title\n1,pdm,2026-11-25T07:00:00,x\n", encoding="utf-8")
    with pytest.raises(UnusableInput, match="header: missing required column"):
        services.ingest.ingest_file(path, "csv", origin=str(path))
    assert ingested(db_path)["signals"] == []


def test_a_reading_process_killed_midway_leaves_whole_batches_and_says_so(services, db_path, tmp_path, batch, monkeypatch,
                                                                         readers):
    import signal

    from tiermeet.services import ingest

    monkeypatch.setattr(ingest, "SECOND_PROCESS_BYTES", 0)
    close, closed = ingest._Batch.close, []

    def close_then_kill_the_reader(batch):
        close(batch)
        closed.append(batch.added)
        readers[0].send_signal(signal.SIGKILL)

    monkeypatch.setattr(ingest._Batch, "close", close_then_kill_the_reader)
    path = mixed_file(tmp_path / "signals.jsonl", 40 * batch)
    with pytest.raises(ingest.IngestError, match="stopped .exit code -9.; every batch stored before it stopped is kept"):
        services.ingest.ingest_file(path, "jsonl", origin=str(path))
    stored = ingested(db_path)
    # what was already in the pipe may make more than the first batch, but only whole ones:
    # the first lines of the file, each with its mutation
    sizes = [size for size, _ in stored["batches"]]
    assert sizes and max(sizes) <= batch // 2 and sum(sizes) == len(stored["signals"])
    assert 0 < len(stored["signals"]) < 40 * batch
    assert {s[0] for s in stored["signals"]} == {f"ext-{n}" for n in range(len(stored["signals"]))}
    assert len(stored["signals"]) == sum(closed)  # no part of the batch the kill broke off



def test_a_stalled_reading_process_does_not_hold_the_write_lock(services, db_path, tmp_path, batch, monkeypatch, readers):
    import signal
    import threading
    import time

    from tiermeet.services import ingest

    monkeypatch.setattr(ingest, "SECOND_PROCESS_BYTES", 0)
    monkeypatch.setattr(ingest, "PIPE_BYTES", 4096)  # little waiting in the pipe: it drains soon
    monkeypatch.setattr(ingest, "WAIT_IN_BATCH", 0.05)
    add, seen, outcome = ingest._Batch.add, [], []

    def meanwhile():
        time.sleep(0.5)
        try:
            other = sqlite3.connect(db_path, timeout=2)
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            other.close()
            outcome.append("written")
        except sqlite3.OperationalError as exc:
            outcome.append(str(exc))
        finally:
            readers[0].send_signal(signal.SIGCONT)

    def add_then_stall_the_reader(batch_, part):
        add(batch_, part)
        seen.append(len(part.rows))
        if len(seen) == 4:  # the first part from the reading process
            readers[0].send_signal(signal.SIGSTOP)
            threading.Thread(target=meanwhile).start()

    monkeypatch.setattr(ingest._Batch, "add", add_then_stall_the_reader)
    path = mixed_file(tmp_path / "signals.jsonl", 20 * batch)
    report = services.ingest.ingest_file(path, "jsonl", origin=str(path))
    assert outcome == ["written"]
    assert report.added == 20 * batch and len(ingested(db_path)["signals"]) == 20 * batch


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_reading_process_that_ends_at_once_is_reported_with_its_exit_code(services, db_path, tmp_path, monkeypatch,
                                                                            fmt):
    import subprocess
    import sys

    from tiermeet.services import ingest

    monkeypatch.setattr(ingest, "SECOND_PROCESS_BYTES", 0)
    popen = subprocess.Popen

    def ended(_args, **kw):  # a process that is gone before the writer sends it its job
        process = popen([sys.executable, "-c", "import sys; sys.exit(3)"], **kw)
        process.wait()
        return process

    monkeypatch.setattr(ingest.subprocess, "Popen", ended)
    path = tmp_path / f"signals.{fmt}"
    if fmt == "jsonl":
        path.write_bytes(jsonl(*(signal_record(n) for n in range(3))))
    else:
        path.write_text("external_id,source,detected_at,area,category,severity,title\n", encoding="utf-8")
    with pytest.raises(ingest.IngestError, match="stopped .exit code 3."):
        services.ingest.ingest_file(path, fmt, origin=str(path))
    assert ingested(db_path)["signals"] == []


def test_an_error_in_the_reading_process_comes_with_its_traceback(services, tmp_path, monkeypatch):
    from tiermeet.ingest.readers import UnusableInput
    from tiermeet.services import ingest

    monkeypatch.setattr(ingest, "SECOND_PROCESS_BYTES", 0)
    path = tmp_path / "wrong.csv"
    path.write_text("id,model\n1,pdm\n", encoding="utf-8")
    with pytest.raises(UnusableInput) as raised:
        services.ingest.ingest_file(path, "csv", origin=str(path))
    where = str(raised.value.__cause__)
    assert where.startswith(f"in the process reading {path}:") and "read_csv" in where


def _message_pipe():
    """The two ends of a pipe as the writer and the reading process hold them."""
    import os

    read_end, write_end = os.pipe()
    return os.fdopen(read_end, "rb"), os.fdopen(write_end, "wb")


def _send_all(out, messages, sent):
    from tiermeet.ingest.prepare import _send

    for message in messages:
        _send(out, message)
        sent.append(message[2][0])
    out.close()


def test_the_reading_process_runs_ahead_of_a_busy_writer_up_to_a_limit(monkeypatch):
    """While the writer is busy (not asking for parts), the reading process's output is
    taken from the pipe, so that process goes on well past what the pipe holds; but only up
    to ``AHEAD_BYTES``, after which the pipe holds it back until the writer takes parts."""
    import threading
    import time

    from tiermeet.ingest import prepare

    monkeypatch.setattr(prepare, "AHEAD_BYTES", 2_000_000)
    source, out = _message_pipe()
    messages = prepare.Messages(source)
    # each message about 100 kB: twenty of them are more than a pipe ever holds
    parts = [("part", ([(n, "x" * 100_000)], [str(n)], {}), [(n, "f", "r")]) for n in range(60)]
    sent: list[int] = []
    producer = threading.Thread(target=_send_all, args=(out, parts, sent), daemon=True)
    producer.start()
    deadline = time.monotonic() + 10
    while len(sent) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    ahead = len(sent)
    assert 20 <= ahead < 60, "the process either waited for the pipe or ran past the limit"
    got = [messages.next(5) for _ in parts]
    producer.join(5)
    messages.close()
    assert [m[2][0][0] for m in got] == list(range(60))  # all of them, in order
    assert [m[1].rows for m in got] == [p[1][0] for p in parts]
    assert len(sent) == 60


def test_a_message_longer_than_the_limit_is_still_read_whole(monkeypatch):
    import threading

    from tiermeet.ingest import prepare

    monkeypatch.setattr(prepare, "AHEAD_BYTES", 1000)
    source, out = _message_pipe()
    messages = prepare.Messages(source)
    parts = [("part", ([("y" * 3_000_000,)], ["a"], {}), [(1, "f", "r")]), ("done", None, [(2, "f", "r")])]
    threading.Thread(target=_send_all, args=(out, parts, []), daemon=True).start()
    first, second = messages.next(10), messages.next(10)
    assert first[1].rows == [("y" * 3_000_000,)] and second[0] == "done"
    with pytest.raises(EOFError):
        messages.next(10)
    messages.close()


def test_waiting_for_a_part_ends_at_its_timeout_and_output_cut_short_is_an_error():
    import time

    from tiermeet.ingest import prepare

    source, out = _message_pipe()
    messages = prepare.Messages(source)
    began = time.monotonic()
    assert messages.next(0.2) is None
    assert 0.2 <= time.monotonic() - began < 2
    out.write((100).to_bytes(8, "big") + b"only part of it")
    out.close()
    with pytest.raises(EOFError, match="ended in the middle of a message"):
        messages.next(5)
    messages.close()


def test_cli_ingests_a_file_large_enough_for_a_second_process(run_cli, tmp_path, db_path):
    from tiermeet.services.ingest import SECOND_PROCESS_BYTES

    path = tmp_path / "large.jsonl"
    count = SECOND_PROCESS_BYTES // 300
    path.write_bytes(jsonl(*(signal_record(n, detail="d" * 100) for n in range(count)), b"[1]"))
    assert path.stat().st_size >= SECOND_PROCESS_BYTES
    result = run_cli("--db", db_path, "ingest", path)
    assert (result.returncode, result.stdout) == (1, f"{count} added, 0 duplicates, 1 rejected\n")
    assert result.stderr == f"{path}:{count + 1}: (row): expected a JSON object, found an array\n"
    assert sqlite3.connect(db_path).execute("SELECT count(*) FROM signal").fetchone() == (count,)


# --------------------------------------------------------------------------------------
# Readers: lines that cannot be read as records
# --------------------------------------------------------------------------------------


def read(data: bytes, fmt: str = "jsonl"):
    stream = io.BytesIO(data)
    return list(read_jsonl(stream) if fmt == "jsonl" else read_csv(stream, "f.csv"))


@pytest.mark.parametrize(("line", "reason"), [
    (b'{"a": 1 "b": 2}', "not valid JSON: Expecting ',' delimiter (column 9)"),
    (b"{'external_id': 'x'}", "not valid JSON: Expecting property name enclosed in double quotes (column 2)"),
    (b'{"a": 1}}', "not valid JSON: Extra data (column 9)"),
    (b"[1, 2]", "expected a JSON object, found an array"),
    (b'"just text"', "expected a JSON object, found a string"),
    (b"42", "expected a JSON object, found a number"),
    (b'{"title": "caf\xe9"}', "not valid UTF-8 (byte 0xe9 at column 15)"),
    (b'{"title": "\xff\xfe"}', "not valid UTF-8 (byte 0xff at column 12)"),
])
def test_jsonl_lines_that_are_not_records(line, reason):
    good = json.dumps(signal_record()).encode()
    rows = read(good + b"\n\n" + line + b"\n" + good + b"\n")
    assert isinstance(rows[0], Row) and rows[0].line == 1
    assert rows[1] == Problem(3, "(row)", reason)
    assert isinstance(rows[2], Row) and rows[2].line == 4


def test_truncated_json_reports_where_it_stops():
    (problem,) = read(b'{"external_id": \n')
    assert problem.reason == "not valid JSON: Expecting value (column 17)"


def test_jsonl_with_byte_order_mark():
    rows = read(b"\xef\xbb\xbf" + json.dumps(signal_record()).encode() + b"\n")
    assert isinstance(rows[0], Row)


def test_jsonl_values_are_read_as_the_standard_library_reads_them():
    """Lines the fast decoder refuses or would read differently come out as before."""
    lines = [b'{"a": 123456789012345678901234567890, "b": [1, {"c": -98765432109876543210}]}',
             b'{"a": NaN, "b": 1e400}', b'{"a": "\\ud800"}', b'  {"a": 1.5, "b": null}  \r']
    rows = read(b"\n".join(lines) + b"\n")
    assert [r.data for r in rows] == [json.loads(line) for line in lines]
    assert type(rows[0].data["a"]) is int and rows[0].data["b"][1]["c"] == -98765432109876543210


def test_jsonl_non_object_named_in_json_terms():
    (problem,) = read(b"null\n")
    assert problem.reason == "expected a JSON object, found null"


CSV_HEADER = "external_id,source,detected_at,area,line,category,severity,title,confidence,colour"


def csv_row(n: int, **overrides) -> str:
    values = {"external_id": f"c{n}", "source": "pdm-spindle", "detected_at": "2026-11-25T07:40:00+01:00", "area": "machining",
              "line": "CNC1", "category": "quality", "severity": "high", "title": f"Spindle {n}", "confidence": "0.5", "colour": "red"}
    values.update(overrides)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([values[h] for h in CSV_HEADER.split(",")])
    return out.getvalue().removesuffix("\n")


def test_csv_rows(services, db_path):
    data = "\n".join([
        CSV_HEADER,
        csv_row(1),
        csv_row(2) + ",surplus",
        "c3,pdm-spindle,2026-11-25T07:40:00+01:00,machining,CNC1",
        "",
        csv_row(5, title="'; DROP TABLE signal; --"),
        csv_row(6, title='Quoted, with comma and "quotes"'),
        csv_row(7, confidence="", colour=""),
    ]).encode() + b"\n"
    rows = read(data, "csv")
    assert rows[1] == Problem(3, "(row)", "has 11 values; the header has 10 columns")
    assert rows[2] == Problem(4, "(row)", "has 5 values; the header has 10 columns")
    report = services.ingest.ingest(rows, origin="f.csv")
    assert report.added == 4
    assert stored(db_path, "c5")["title"] == "'; DROP TABLE signal; --"
    assert stored(db_path, "c6")["title"] == 'Quoted, with comma and "quotes"'
    assert json.loads(stored(db_path, "c1")["extra"]) == {"colour": "red"}
    assert stored(db_path, "c7")["confidence"] is None and stored(db_path, "c7")["extra"] in (None, "null")


def test_csv_non_utf8_row():
    data = (CSV_HEADER + "\n" + csv_row(1) + "\n").encode() + csv_row(2, title="caf_").encode().replace(b"caf_", b"caf\xe9") + b"\n"
    rows = read(data, "csv")
    assert isinstance(rows[0], Row)
    assert rows[1] == Problem(3, "(row)", "not valid UTF-8 (byte 0xe9 at column 73)")


def test_csv_multiline_quoted_field_keeps_line_numbers(services, db_path):
    data = (CSV_HEADER + "\n" + csv_row(1, title="two\nlines") + "\n" + csv_row(2, severity="urgent") + "\n").encode()
    rows = read(data, "csv")
    assert isinstance(rows[0], Row) and rows[0].line == 2
    report = services.ingest.ingest(rows, origin="f.csv")
    assert report.rejected == [(4, "severity", f"'urgent' is not one of {CHOICES['severity']}")]


def test_csv_byte_order_mark_and_padded_header(services):
    header = "\ufeff" + ", ".join(CSV_HEADER.split(","))
    rows = read((header + "\n" + csv_row(1) + "\n").encode("utf-8"), "csv")
    assert isinstance(rows[0], Row) and rows[0].data["external_id"] == "c1"


# --------------------------------------------------------------------------------------
# The command line, in a subprocess: output format and exit codes.
# --------------------------------------------------------------------------------------


def test_cli_reports_each_rejected_row_and_a_summary(run_cli, tmp_path, db_path):
    path = tmp_path / "signals.jsonl"
    path.write_bytes(jsonl(
        signal_record(1, detected_at="2026-11-25T07:40:00"),
        signal_record(2, severity="urgent"),
        b'{"external_id": "x" "source": "y"}',
        signal_record(4, title="x" * 201),
        b"[1, 2]",
        b'{"title": "caf\xe9"}',
        signal_record(1),
        signal_record(8, title="🔥 \u05e8\u05e2\u05d9\u05d3\u05d5\u05ea"),
        signal_record(9, confidence=2),
    ))
    result = run_cli("--db", db_path, "ingest", path)
    assert result.returncode == 1, result.stderr
    assert result.stdout == "2 added, 0 duplicates, 7 rejected\n"
    assert result.stderr.splitlines() == [
        f"{path}:2: severity: 'urgent' is not one of {CHOICES['severity']}",
        f"{path}:3: (row): not valid JSON: Expecting ',' delimiter (column 21)",
        f"{path}:4: title: is 201 characters; the limit is 200",
        f"{path}:5: (row): expected a JSON object, found an array",
        f"{path}:6: (row): not valid UTF-8 (byte 0xe9 at column 15)",
        f"{path}:7: external_id: 'ext-1' from source 'pdm-spindle' already appears on line 1",
        f"{path}:9: confidence: 2 is outside 0..1",
    ]
    assert stored(db_path, "ext-1")["detected_at"] == "2026-11-25T06:40:00.000000"
    assert stored(db_path, "ext-8")["title"] == "🔥 \u05e8\u05e2\u05d9\u05d3\u05d5\u05ea"
    # a second run of the same file adds nothing
    again = run_cli("--db", db_path, "ingest", path)
    assert again.stdout == "0 added, 2 duplicates, 7 rejected\n"
    assert again.returncode == 1


def test_cli_clean_file_exits_0_and_second_run_adds_nothing(run_cli, tmp_path, db_path):
    path = tmp_path / "clean.jsonl"
    path.write_bytes(jsonl(*(signal_record(n) for n in range(5))))
    first = run_cli("--db", db_path, "ingest", path)
    assert (first.returncode, first.stdout, first.stderr) == (0, "5 added, 0 duplicates, 0 rejected\n", "")
    second = run_cli("--db", db_path, "ingest", path)
    assert (second.returncode, second.stdout, second.stderr) == (0, "0 added, 5 duplicates, 0 rejected\n", "")


def test_cli_reads_stdin(run_cli, db_path):
    data = jsonl(signal_record(1), signal_record(2, area="paint"))
    result = run_cli("--db", db_path, "ingest", "-", input=data, binary=True)
    assert result.returncode == 1
    assert result.stdout == b"1 added, 0 duplicates, 1 rejected\n"
    assert result.stderr == b"<stdin>:2: area: 'paint' is not a configured area\n"
    csv_data = (CSV_HEADER + "\n" + csv_row(3) + "\n").encode()
    as_csv = run_cli("--db", db_path, "ingest", "--format", "csv", "-", input=csv_data, binary=True)
    assert (as_csv.returncode, as_csv.stdout) == (0, b"1 added, 0 duplicates, 0 rejected\n")


def test_cli_csv_file(run_cli, tmp_path, db_path):
    path = tmp_path / "signals.csv"
    path.write_bytes((CSV_HEADER + "\n" + csv_row(1) + "\n" + csv_row(2) + ",surplus\n").encode() + b"c3,\xff\n")
    result = run_cli("--db", db_path, "ingest", path)
    assert result.returncode == 1
    assert result.stdout == "1 added, 0 duplicates, 2 rejected\n"
    assert result.stderr.splitlines() == [
        f"{path}:3: (row): has 11 values; the header has 10 columns",
        f"{path}:4: (row): not valid UTF-8 (byte 0xff at column 4)",
    ]


def test_cli_format_option_overrides_the_extension(run_cli, tmp_path, db_path):
    path = tmp_path / "export.txt"
    path.write_bytes(jsonl(signal_record(1)))
    refused = run_cli("--db", db_path, "ingest", path)
    assert refused.returncode == 2
    assert refused.stderr == f"{path}: cannot tell the format from the extension '.txt'; use --format jsonl or --format csv\n"
    assert refused.stdout == "0 added, 0 duplicates, 0 rejected\n"
    forced = run_cli("--db", db_path, "ingest", "--format", "jsonl", path)
    assert (forced.returncode, forced.stdout) == (0, "1 added, 0 duplicates, 0 rejected\n")


def test_cli_wrong_csv_header_is_unusable(run_cli, tmp_path, db_path):
    path = tmp_path / "wrong.csv"
    path.write_text("id,model,time,title\n1,pdm,2026-11-25T07:00:00,x\n", encoding="utf-8")
    result = run_cli("--db", db_path, "ingest", path)
    assert result.returncode == 2
    assert result.stderr == (f"{path}:1: header: missing required column(s) external_id, source, detected_at, area, "
                             "category, severity; found id, model, time, title\n")
    assert result.stdout == "0 added, 0 duplicates, 0 rejected\n"
    twice = tmp_path / "twice.csv"
    twice.write_text(CSV_HEADER + ",title\n", encoding="utf-8")
    result = run_cli("--db", db_path, "ingest", twice)
    assert (result.returncode, result.stderr) == (2, f"{twice}:1: header: column 'title' appears twice\n")


def test_cli_non_utf8_csv_header_is_unusable(run_cli, tmp_path, db_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((CSV_HEADER + ",temp\xb0C\n").encode("latin-1") + (csv_row(1) + ",80\n").encode())
    result = run_cli("--db", db_path, "ingest", path)
    assert result.returncode == 2
    assert "not valid UTF-8" in result.stderr


def test_cli_missing_file_is_unusable_but_other_files_are_read(run_cli, tmp_path, db_path):
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl(signal_record(1), signal_record(2)))
    missing = tmp_path / "missing.jsonl"
    result = run_cli("--db", db_path, "ingest", missing, good)
    assert result.returncode == 2
    assert result.stderr == f"{missing}: file not found\n"
    assert result.stdout == "2 added, 0 duplicates, 0 rejected\n"
    only_missing = run_cli("--db", db_path, "ingest", missing)
    assert only_missing.returncode == 2


def test_cli_rejections_across_several_files(run_cli, tmp_path, db_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(jsonl(signal_record(1), signal_record(2, category="")))
    b.write_bytes(jsonl(signal_record(1), signal_record(3)))
    result = run_cli("--db", db_path, "ingest", a, b)
    assert result.returncode == 1
    assert result.stdout == "2 added, 1 duplicates, 1 rejected\n"
    assert result.stderr == f"{a}:2: category: required field is missing\n"


def test_cli_empty_files(run_cli, tmp_path, db_path):
    empty, header_only = tmp_path / "empty.jsonl", tmp_path / "header.csv"
    empty.write_bytes(b"")
    header_only.write_text(CSV_HEADER + "\n", encoding="utf-8")
    result = run_cli("--db", db_path, "ingest", empty, header_only)
    assert (result.returncode, result.stdout, result.stderr) == (0, "0 added, 0 duplicates, 0 rejected\n", "")


def test_cli_needs_a_file(run_cli, db_path):
    result = run_cli("--db", db_path, "ingest")
    assert result.returncode == 2
    assert "Missing argument 'FILES...'" in result.stderr


@pytest.mark.parametrize(("overrides", "field", "reason"), [
    ({"confidence": 10**400}, "confidence", "is outside 0..1"),
    ({"detected_at": "0001-01-01T00:00:00+05:00"}, "detected_at", "'0001-01-01T00:00:00+05:00' is out of range"),
    ({"title": "a\ud800b"}, "title", "contains an unpaired surrogate (U+D800), which is not valid text"),
    ({"detail": "x\ud800"}, "detail", "contains an unpaired surrogate (U+D800), which is not valid text"),
], ids=["huge-confidence", "year-one", "lone-surrogate-title", "lone-surrogate-detail"])
def test_values_that_used_to_crash_the_run_are_refused_row_by_row(services, db_path, overrides, field, reason):
    """One bad row is refused with its reason; it never stops the run."""
    assert refused(services, signal_record(**overrides)) == (field, reason)
    assert count_signals(db_path) == 0


@pytest.mark.parametrize("second_process", [False, True], ids=["one process", "two processes"])
def test_missing_fields_are_stored_as_sql_null_and_zero_or_empty_values_are_not_mistaken_for_them(
        services, db_path, tmp_path, monkeypatch, second_process):
    from tiermeet.services import ingest

    monkeypatch.setattr(ingest, "SECOND_PROCESS_BYTES", 0 if second_process else 1 << 40)
    monkeypatch.setattr(ingest, "HEAD_ROWS", 0)  # every line through the reading process, when there is one
    optional = ("model_version", "line", "asset", "confidence", "detail", "suggested_action", "evidence_url", "extra")
    bare = {k: v for k, v in signal_record(1).items() if k not in optional}
    full = signal_record(2, confidence=0.0, detail="0", evidence_url="https://pdm.local/2", score=0)
    path = tmp_path / "signals.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in (bare, full, signal_record(3, confidence=1))))
    assert services.ingest.ingest_file(path, "jsonl", origin=str(path)).summary() == "3 added, 0 duplicates, 0 rejected"
    conn = sqlite3.connect(db_path)
    kinds = lambda n: conn.execute(f"SELECT {', '.join(f'typeof({c})' for c in optional)} FROM signal "  # noqa: E731
                                   "WHERE external_id = ?", (f"ext-{n}",)).fetchone()
    assert kinds(1) == ("null",) * len(optional)
    assert kinds(2) == ("text", "text", "text", "real", "text", "text", "text", "text")
    assert (stored(db_path, "ext-2")["confidence"], stored(db_path, "ext-3")["confidence"]) == (0.0, 1.0)
    assert (stored(db_path, "ext-2")["detail"], json.loads(stored(db_path, "ext-2")["extra"])) == ("0", {"score": 0})


def test_the_insert_statement_takes_only_a_stored_time_and_a_clock_stamp():
    from tiermeet.services.ingest import _insert_sql

    assert "'2026-11-25T07:40:00.000000', '2026-11-25T07:40:00.000000', '0000019ab3c4d5e6'" in _insert_sql(
        "2026-11-25T07:40:00.000000", "0000019ab3c4d5e6")
    with pytest.raises(ValueError, match="not a stored time and a clock stamp"):
        _insert_sql("2026-11-25T07:40:00.000000'); DROP TABLE signal; --", "0000019ab3c4d5e6")


# --------------------------------------------------------------------------------------
# The contract's fast pass and its field-by-field check agree
# --------------------------------------------------------------------------------------

_TEXTS = st.one_of(st.sampled_from(["x", " padded ", "", "   ", "Ünïcode ✓", "\u202eevil", "tab\there", "a\x07b",
                                    "\ud800", "e" * 201, "x" * 2001]), st.integers(-5, 5), st.booleans(), st.none(),
                   st.floats(allow_nan=True), st.text(max_size=8), st.lists(st.integers(), max_size=2))


_GOOD = {
    "external_id": st.sampled_from(["e-1", "9f3a", 17]), "source": st.sampled_from(["vision-qc", "pdm"]),
    "area": st.just("machining"), "line": st.sampled_from(["CNC1", "CNC2", None, ""]),
    "severity": st.sampled_from(["low", "high", "critical"]), "kind": st.sampled_from(["anomaly", "prediction", None]),
    "category": st.sampled_from(["quality", "safety"]),
    "detected_at": st.sampled_from(["2026-11-25T06:40:00", "2026-11-25T06:40:00Z", "2026-11-25T06:40:00.5+01:00",
                                    " 2026-11-25 06:40 ", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]),
    "confidence": st.sampled_from([0.0, 1.0, 0.5, None]), "title": st.sampled_from(["Burr on bore edge", " spaced ", "Ünïcode ✓"]),
    "model_version": st.sampled_from(["1.2.0", None]), "asset": st.sampled_from(["SP-104", None]),
    "detail": st.sampled_from(["line one\nline two", None]), "suggested_action": st.sampled_from(["Check it\tnow", None]),
    "evidence_url": st.sampled_from(["https://e.example/1", None]),
}
_DROP = object()
#: For each field, values only the full check reads, or that it refuses.
_ODD = {
    "external_id": ["e" * 201, " ", 3.5], "area": ["paint", "Machining"], "line": ["cnc1", "ASM1", "PACK"],
    "severity": ["HIGH", " low", "urgent"], "kind": ["Detection", "guess"], "category": ["Cost", "fun"],
    "detected_at": ["25.11.2026", "2026-11-25T06:40:00+25:00", 1764052800], "confidence": [1.5, -0.1, "0.7", True, 1],
    "title": ["x" * 201, "bell\x07"], "detail": ["bell\x07", "x" * 10_001], "evidence_url": ["ftp://e.example", "https://a b", "http://"],
    "shift_hint": ["late"], "extra_number": [2 ** 70],
}
_CHANGE = st.sampled_from([*_GOOD, "shift_hint", "extra_number"]).flatmap(
    lambda key: st.tuples(st.just(key), st.one_of(st.sampled_from(_ODD.get(key, [None])), _TEXTS, st.just(_DROP))))
#: A valid record with up to three fields made unusual: wrong, missing, or in a form only
#: the full check reads (upper case, numbers, padding), and fields the contract keeps in extra.
_RECORDS = st.builds(lambda good, changes: {k: v for k, v in {**good, **dict(changes)}.items() if v is not _DROP},
                     st.fixed_dictionaries(_GOOD), st.lists(_CHANGE, max_size=3))


@settings(max_examples=1500, deadline=None)
@given(_RECORDS)
def test_the_fast_pass_accepts_only_what_the_full_check_accepts_with_the_same_result(record):
    """Most records are checked by one fast pass, which gives up on anything unusual; the
    field-by-field check, which owns every message, decides those. Whatever the fast pass
    accepts, the full check accepts too, with the same columns."""
    from tiermeet.ingest import contract
    from tiermeet.ingest.prepare import plan_of
    from tiermeet.settings import load_config

    plan = plan_of(load_config(None))
    try:
        fast = contract._check_clean(record, plan)
    except OverflowError:
        fast = None
    try:
        full = contract._check_each(record, plan)
    except contract.RecordError as exc:
        assert fast is None, f"the fast pass took a record the full check refuses: {exc}"
        with pytest.raises(contract.RecordError, match=re.escape(str(exc))):
            contract.check_values(record, plan)
        return
    assert contract.check_record(record, plan) == full
    if fast is not None:
        assert contract.as_record(fast) == full


def test_a_text_repeated_across_the_rows_of_a_part_is_one_object_and_sent_as_a_reference():
    import marshal

    from tiermeet.ingest import prepare
    from tiermeet.ingest.readers import read_rows
    from tiermeet.settings import load_config

    lines = "".join(json.dumps(signal_record(n, detail="RMS up " * 50)) + "\n" for n in range(30))
    parts = list(prepare.batches(read_rows(io.BytesIO(lines.encode()), "x.jsonl", "jsonl"), load_config(None),
                                 datetime.now(timezone.utc), [], 15))
    detail, source = prepare.COLUMNS.index("detail"), prepare.COLUMNS.index("source")
    for part in parts:
        rows = part.rows
        assert all(row[detail] is rows[0][detail] and row[source] is rows[0][source] for row in rows)
        assert len(marshal.dumps(rows)) < 15 * 350 + len(rows[0][detail])  # each detail after the first is a reference
    assert [len(part.rows) for part in parts] == [15, 15] and parts[0].rows[0][detail] == parts[1].rows[0][detail]


# --------------------------------------------------------------------------------------
# Any small file: stored alike by one process and by two
# --------------------------------------------------------------------------------------

from hypothesis import Phase, example, note  # noqa: E402

_LEFT_OUT = object()
#: The optional columns: a value left out, null or empty is stored as SQL NULL.
_OPTIONAL = ("model_version", "line", "asset", "confidence", "detail", "suggested_action", "evidence_url", "extra")


def _optional(*present) -> st.SearchStrategy:
    """One of ``present``, or the field left out, null or empty."""
    return st.sampled_from([*present, _LEFT_OUT, None, ""])


#: A valid line's fields besides its model, place, severity and confidence: texts repeat
#: from line to line, so that rows share them.
_FIELDS = st.fixed_dictionaries({
    "model_version": _optional("2.3.1", "0"),
    "asset": _optional("SP-104", "0"),
    "detail": _optional("RMS up 40 %", "line one\nline two", "0"),
    "suggested_action": _optional("Check bearing preload", "0"),
    "evidence_url": _optional("https://pdm.local/a?b=c", "http://pdm.local/2"),
    "kind": st.sampled_from([_LEFT_OUT, "prediction", "anomaly"]),
    "category": st.sampled_from(["quality", "cost", "safety"]),
    # the last is still ahead of the ingest: its window opens when the ingest began
    "detected_at": st.sampled_from(["2026-11-25T07:40:00+01:00", "2026-11-25T06:40:00Z", "2026-11-25T09:30:00+01:00"]),
    "title": st.sampled_from(["Spindle vibration rising", "Tool wear", "Ünïcode ✓"]),
})
#: Fields the contract does not know, kept in ``extra``: none, more often than not.
_EXTRA = st.sampled_from([{}, {}, {"score": 0}, {"shift_hint": "late", "score": 0.5},
                          {"raw": {"rms": [1.5, None, True]}}])
_PLACES = [("machining", "CNC1"), ("machining", "CNC2"), ("assembly", "ASM1"), ("assembly", "PACK")]


def _valid(sources, severities, confidences, places) -> st.SearchStrategy:
    """Fields of a valid record (``_record`` makes it): one of ``sources``, ``severities``
    and ``places``, a confidence drawn from ``confidences``, the line given more often than
    not, and unknown fields (kept in ``extra``) now and then."""
    return st.builds(
        lambda fields, place, line, source, severity, confidence, extra: {
            **fields, "area": place[0], "line": place[1] if line == "given" else line,
            "source": source, "severity": severity, "confidence": confidence, **extra},
        _FIELDS, st.sampled_from(places), _optional("given", "given"), st.sampled_from(sources),
        st.sampled_from(severities), confidences, _EXTRA)


_ORDINARY = _valid(["pdm-spindle", "vision-qc", "pdm-toolwear"], ["critical", "high", "medium", "low"],
                   _optional(0.0, 1.0, 0.5, 0.87), _PLACES)
#: What the demo policy lets the model act on alone (rule "confident tool-wear calls").
_ALONE = _valid(["pdm-toolwear"], ["low", "medium"], st.sampled_from([0.95, 0.99, 1.0]), _PLACES[:2])
_LINE = st.one_of(
    st.tuples(st.just("valid"), _ORDINARY),
    st.tuples(st.just("valid"), _ALONE),
    st.tuples(st.just("refused"), _ORDINARY, st.sampled_from(
        [{"severity": "urgent"}, {"area": "machining", "line": "ASM1"}, {"area": "machining", "line": "CNC9"},
         {"area": "paint"}, {"confidence": 1.5}])),
    # a repeat of an earlier valid line: often one of the first, which a second process's
    # writer may have read itself
    st.tuples(st.just("repeat"), st.one_of(st.integers(0, 2), st.integers(0, 39)), st.booleans()),
    st.tuples(st.just("unread"), st.sampled_from(
        [b'{"external_id": "x" "source": "y"}', b"not json", b"[1, 2]", b'{"title": "caf\xe9"}'])),
    st.just(("blank",)),
)


def _record(n: int, fields: dict) -> dict:
    """``signal_record(n)`` with ``fields``, those marked left out taken out."""
    record = signal_record(n, **fields)
    return {k: v for k, v in record.items() if v is not _LEFT_OUT}


def _file_of(lines: list[tuple]) -> tuple[bytes, dict[str, dict], list[int], list[int]]:
    """The file's bytes; its valid records by external_id; the lines to be rejected; and
    the valid lines' numbers, in order."""
    out, records, rejected, valid = [], {}, [], []
    for number, line in enumerate(lines, start=1):
        kind = line[0]
        if kind == "repeat":
            earlier = list(records.values())
            if earlier:
                first = earlier[line[1] % len(earlier)]
                again = dict(first, title="Said again", severity="high") if line[2] else first
                out.append(json.dumps(again).encode())
                rejected.append(number)
                continue
            kind, line = "valid", ("valid", {})
        if kind == "valid":
            record = _record(number, line[1])
            records[record["external_id"]] = record
            valid.append(number)
            out.append(json.dumps(record).encode())
        elif kind == "refused":
            out.append(json.dumps(_record(number, {**line[1], **line[2]})).encode())
            rejected.append(number)
        elif kind == "unread":
            out.append(line[1])
            rejected.append(number)
        else:
            out.append(b"")
    return b"".join(data + b"\n" for data in out), records, rejected, valid


def _stored_alike(db: Path) -> tuple[dict[str, dict], list[tuple[str | None, dict]]]:
    """Each stored signal by external_id, as {column: (value, SQLite type)} for every column
    but those made fresh per run; and each decision the same way, after its signal's
    external_id (None for a decision on a signal that was never stored)."""
    conn = sqlite3.connect(db)

    def rows(table: str, fresh: set[str], select: str) -> list[tuple[str | None, dict]]:
        columns = [c for (_, c, *_rest) in conn.execute(f"PRAGMA table_info({table})") if c not in fresh]
        return [(row[0], {c: row[1 + 2 * i:3 + 2 * i] for i, c in enumerate(columns)})
                for row in conn.execute(select.format(", ".join(f"t.{c}, typeof(t.{c})" for c in columns)))]

    try:
        signals = rows("signal", {"id", "ingested_at", "updated_at", "updated_hlc"},
                       "SELECT t.external_id, {} FROM signal t")
        decisions = rows("decision", {"id", "signal_id", "hlc", "decided_at"},
                         "SELECT s.external_id, {} FROM decision t LEFT JOIN signal s ON s.id = t.signal_id "
                         "ORDER BY s.external_id, t.rowid")
        return dict(signals), decisions
    finally:
        conn.close()


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory) -> Path:
    """A migrated database with the demo plant's people, copied for each example."""
    from conftest import NOW
    from tiermeet.domain.clock import FixedClock
    from tiermeet.services.bundle import open_services
    from tiermeet.settings import load_config

    path = tmp_path_factory.mktemp("migrated") / "tiermeet.db"
    open_services(path, load_config(None), clock=FixedClock(NOW), device_name="test-kiosk").ctx.engine.dispose()
    return path


# Without the explain phase: after shrinking it would run the test hundreds of times more,
# minutes of starting second processes, past the suite's timeout of 300 s.
@settings(max_examples=40, deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])
@example(  # every time: a key of the writer's own first lines repeated in the reading process's part
    lines=[("valid", {"model_version": _LEFT_OUT, "asset": "", "line": None, "confidence": _LEFT_OUT, "score": 0}),
           ("valid", {"source": "pdm-toolwear", "severity": "low", "confidence": 1.0, "line": "CNC2", "detail": ""}),
           ("blank",), ("refused", {}, {"line": "ASM1"}), ("repeat", 0, False),
           ("valid", {"confidence": 0.0, "detail": "0", "suggested_action": _LEFT_OUT}), ("unread", b"not json"),
           ("repeat", 1, True),
           ("valid", {"source": "pdm-toolwear", "severity": "medium", "confidence": 0.95, "evidence_url": ""})],
    stored_before=[3], head_rows=2, part=2, batch=3, sync_batch=2)
@given(lines=st.lists(_LINE, min_size=1, max_size=40), stored_before=st.lists(st.integers(0, 39), max_size=3),
       head_rows=st.integers(0, 4), part=st.integers(1, 5), batch=st.integers(1, 6), sync_batch=st.integers(1, 8))
def test_any_file_is_stored_alike_by_one_process_and_by_two(migrated_db, lines, stored_before, head_rows, part, batch,
                                                            sync_batch):
    """A small file of valid rows (optional fields given, left out, null or empty; some the
    policy lets their model act on alone), refused rows, repeated keys, unreadable and blank
    lines, some of its signals stored before: read and prepared in this process as one
    part, or in a second one in parts of a few rows after the writer's own first lines, and
    written in batches of a few rows, it is reported and stored alike, column by column,
    each value left out, null or empty as SQL NULL."""
    import shutil
    import tempfile

    from conftest import NOW
    from tiermeet.domain.clock import FixedClock
    from tiermeet.services import ingest
    from tiermeet.services.bundle import open_services
    from tiermeet.settings import load_config

    data, records, rejected, valid = _file_of(lines)
    before = sorted({valid[i % len(valid)] for i in stored_before}) if valid else []
    note(f"stored before: lines {before}; HEAD_ROWS={head_rows}, PART={part}, BATCH={batch}, SYNC_BATCH={sync_batch}; "
         f"the file:\n{data.decode(errors='backslashreplace')}")
    results = []
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        path = Path(folder) / "signals.jsonl"
        path.write_bytes(data)
        patch.setattr(ingest, "SYNC_BATCH", sync_batch)
        for second_process in (False, True):
            db = shutil.copyfile(migrated_db, Path(folder) / f"{'two' if second_process else 'one'}.db")
            services = open_services(db, load_config(None), clock=FixedClock(NOW), device_name="test-kiosk")
            try:
                earlier = services.ingest.ingest([Row(n, records[f"ext-{n}"]) for n in before], origin="earlier")
                assert (earlier.added, earlier.rejected) == (len(before), [])
                patch.setattr(ingest, "SECOND_PROCESS_BYTES", 0 if second_process else 1 << 40)
                if second_process:
                    for name, value in (("HEAD_ROWS", head_rows), ("PART", part), ("BATCH", batch)):
                        patch.setattr(ingest, name, value)
                report = services.ingest.ingest_file(path, "jsonl", origin="signals.jsonl")
            finally:
                services.ctx.engine.dispose()
            results.append((report, *_stored_alike(db)))
    (one, signals, decisions), (two, signals_two, decisions_two) = results
    # the file is what it was meant to be
    assert one.summary() == f"{len(valid) - len(before)} added, {len(before)} duplicates, {len(rejected)} rejected"
    assert [line for line, _, _ in one.rejected] == rejected
    # reported alike
    assert (two.summary(), two.rejected) == (one.summary(), one.rejected)
    # stored alike, column by column, and the same models acted alone on the same signals
    assert sorted(signals) == sorted(signals_two) == sorted(records)
    for external_id, signal in signals.items():
        assert signals_two[external_id] == signal, external_id
    assert decisions_two == decisions
    alone = sorted(e for e, r in records.items() if r["source"] == "pdm-toolwear" and r["severity"] in ("low", "medium")
                   and (r.get("confidence") or 0) >= 0.95)
    assert [external_id for external_id, _ in decisions] == alone
    # a value left out, null or empty is NULL in both; one given (0, "0" and 0.0 too) is not
    for external_id, record in records.items():
        present = {f for f in _OPTIONAL[:-1] if record.get(f) not in (None, "")}
        if set(record) - set(signal_record()) - {"kind", "detail", "evidence_url"}:
            present.add("extra")
        for stored in (signals, signals_two):
            assert {f for f in _OPTIONAL if stored[external_id][f][1] != "null"} == present, external_id
