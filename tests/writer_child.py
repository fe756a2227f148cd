"""A process that writes to a tiermeet database, for the concurrency tests.

    writer_child.py loop DB DEVICE SECONDS START_AT
        From START_AT (a Unix time) for SECONDS: ingest a signal, acknowledge it, comment
        on it, pause a few milliseconds, again and again. Prints one line per committed
        write, then ``done N``.

    writer_child.py open DB DEVICE START_AT
        At START_AT open the services on DB (creating it if needed) and make one write.

    writer_child.py zygote DB
        Import everything once, then for each ``run K`` line on stdin fork a writer that
        opens the services and writes forever (until the test kills it). Prints
        ``pid K PID`` for each child; the child prints ``ready K`` and then one line per
        committed write: ``ingest EXTERNAL_ID SEQ``, ``ack SIGNAL_ID SEQ``,
        ``comment COMMENT_ID SEQ``.

Every line is written with a single os.write after the commit, so a line is either
whole or absent when the process is killed.
"""

import os
import sqlite3
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402

from tiermeet.ingest.readers import Row  # noqa: E402
from tiermeet.services.bundle import open_services  # noqa: E402
from tiermeet.settings import load_config  # noqa: E402
from tiermeet.store.models import Signal  # noqa: E402


def say(text: str) -> None:
    os.write(1, (text + "\n").encode())


def record(external_id: str) -> dict:
    return {
        "external_id": external_id,
        "source": "pdm-spindle",
        "detected_at": "2026-11-25T07:40:00+01:00",
        "area": "machining",
        "line": "CNC1",
        "category": "quality",
        "severity": "high",
        "confidence": 0.8,
        "title": f"Spindle vibration {external_id}",
    }


def last_seq(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute("SELECT max(seq) FROM outbox").fetchone()[0]
    finally:
        conn.close()


def one_round(services, device: str, n: int, db: Path | None) -> int:
    """Ingest, acknowledge and comment once; report each write after its commit."""
    external_id = f"{device}-{n}"
    report = services.ingest.ingest([Row(1, record(external_id))], origin=device)
    if report.added != 1:
        raise RuntimeError(f"ingest of {external_id} did not add it: {report.summary()} {report.rejected}")
    say(f"ingest {external_id}" + (f" {last_seq(db)}" if db else ""))
    with services.ctx.read() as session:
        signal_id = session.scalars(select(Signal.id).where(Signal.external_id == external_id)).one()
    services.signals.acknowledge(signal_id, actor="anna")
    say(f"ack {signal_id}" + (f" {last_seq(db)}" if db else ""))
    comment = services.comments.add("signal", signal_id, actor="ben", body=f"checked by {device} #{n}")
    say(f"comment {comment.id}" + (f" {last_seq(db)}" if db else ""))
    return 3


def loop(db: Path, device: str, seconds: float, start_at: float) -> None:
    services = open_services(db, load_config(None), device_name=device)
    time.sleep(max(0.0, start_at - time.time()))
    end = time.time() + seconds
    n = writes = 0
    while time.time() < end:
        n += 1
        writes += one_round(services, device, n, None)
        time.sleep(0.003)  # a kiosk pauses between writes; a tight loop would starve the other writer
    say(f"done {writes}")


def open_at(db: Path, device: str, start_at: float) -> None:
    config = load_config(None)
    time.sleep(max(0.0, start_at - time.time()))
    services = open_services(db, config, device_name=device)
    one_round(services, device, 1, None)
    say("done 3")


def zygote(db: Path) -> None:
    config = load_config(None)
    # Load every module a writer needs before forking, so each child starts at once.
    import tiermeet.services.comments  # noqa: F401
    import tiermeet.services.ingest  # noqa: F401
    import tiermeet.services.people  # noqa: F401
    import tiermeet.services.signals  # noqa: F401

    child = None
    for command in sys.stdin:
        if child is not None:
            os.waitpid(child, 0)
            child = None
        word, *rest = command.split()
        if word == "quit":
            break
        k = rest[0]
        child = os.fork()
        if child == 0:
            try:
                services = open_services(db, config, device_name=f"kill-{k}")
                say(f"ready {k}")
                n = 0
                while True:
                    n += 1
                    one_round(services, f"kill-{k}", n, db)
            except BaseException:
                traceback.print_exc()
                os._exit(1)
        say(f"pid {k} {child}")
    if child is not None:
        os.waitpid(child, 0)


def main() -> None:
    mode, db, *args = sys.argv[1:]
    try:
        if mode == "loop":
            loop(Path(db), args[0], float(args[1]), float(args[2]))
        elif mode == "open":
            open_at(Path(db), args[0], float(args[1]))
        elif mode == "zygote":
            zygote(Path(db))
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    except Exception:
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
