"""Governance commands: ``report``, ``policy show`` and ``policy replay``.

Registered on the main command group by ``register(main)``; each command imports what it
needs when it runs, so ``tiermeet --help`` stays fast.

``policy replay`` is pure: it places past signals with the policy functions themselves
(``place`` — rule, autonomy, start tier and window — and ``deadline``) and judges each window against the time a person
really decided, so it tells, before a plant adopts a proposed policy, how much would have
been left to the models, signed off or sent up, and how many windows would have been
missed at the pace the plant actually works.
"""

import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path

import click

from tiermeet.cli import EXIT_REJECTED, EXIT_UNUSABLE, PathType, Settings, fail, pass_settings
from tiermeet.domain.placement import SignalFacts

UTC = timezone.utc
FORMATS = ("table", "md", "csv", "json")


def register(main: click.Group) -> None:
    """Add the governance commands to ``main``."""
    main.add_command(report)
    main.add_command(policy)


# ----- times on the command line -----
def parse_when(text: str | None, option: str, zone) -> datetime | None:
    """An ISO date (local midnight) or time (plant time when it has no offset), in UTC."""
    if text is None:
        return None
    try:
        if len(text.strip()) == 10:
            when = datetime.combine(date.fromisoformat(text.strip()), time(0))
        else:
            when = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"{option}: {text!r} is not an ISO 8601 date or time (e.g. 2026-11-01 or 2026-11-25T14:00:00+01:00)", EXIT_UNUSABLE)
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return when.astimezone(UTC)


# ===== report =====
@click.command()
@click.option("--since", help="Signals detected from this date or time on (plant time if no offset).")
@click.option("--until", help="Signals detected before this date or time.")
@click.option("--tier", type=click.IntRange(1, 4), help="Only signals whose first window was at this tier.")
@click.option("--line", help="Only signals on this line.")
@click.option("--area", help="Only signals in this area.")
@click.option("--source", help="Only signals from this model.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@pass_settings
def report(settings: Settings, since, until, tier, line, area, source, fmt) -> None:
    """The governance report: acted-within-window rate, response times, escalations,
    models, automation bias, overdue actions, outcomes and the daily trend.

    JSON keys are stable; the README's "Governance report" section lists them."""
    from zoneinfo import ZoneInfo

    config = settings.load_config()
    zone = ZoneInfo(config.plant.timezone)
    start, end = parse_when(since, "--since", zone), parse_when(until, "--until", zone)
    if start is not None and end is not None and start >= end:
        fail("--since must be before --until", EXIT_UNUSABLE)
    data = settings.services(prepare=False).report.report(since=start, until=end, tier=tier, line=line, source=source,
                                                          area=area)
    click.echo(render_report(data, fmt, zone), nl=False)


@dataclass
class Section:
    """One table of the rendered report: ``name`` is stable (CSV), ``title`` for people."""

    title: str
    columns: list[str]
    keys: int  # how many leading columns name the row (the rest are numbers)
    rows: list[list] = field(default_factory=list)
    name: str = ""


def _pct(value) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def report_sections(data: dict) -> list[Section]:
    """The report as tables (raw values; rendering formats them)."""
    acted, times, esc = data["acted_within_window"], data["response_times"], data["escalations"]
    signals = data["signals"]
    summary = Section("Summary", ["metric", "value"], 1, name="summary", rows=[
        ["signals", signals["total"]],
        ["autonomous", signals["autonomous"]],
        ["acted_within_window", acted["acted"]],
        ["windows_closed", acted["closed"]],
        ["acted_within_window_rate", acted["rate"]],
        ["ack_median_min", times["ack_median_min"]],
        ["ack_p90_min", times["ack_p90_min"]],
        ["decide_median_min", times["decide_median_min"]],
        ["decide_p90_min", times["decide_p90_min"]],
        ["escalated_signals", esc["escalated_signals"]],
        ["escalation_rate", esc["rate"]],
        ["escalations_automatic", esc["automatic"]],
        ["escalations_manual", esc["manual"]],
        ["flagged_at_top_tier", esc["flagged_at_top_tier"]],
        ["bad_actors", " ".join(data["bad_actors"])],
    ])
    sections = [summary]
    for dim, label, keys in (("by_tier", "tier", ["tier"]), ("by_line", "line", ["area", "line"]),
                             ("by_category", "category", ["category"]), ("by_model", "model", ["source"])):
        sections.append(Section(f"Acted within window by {label}", [*keys, "acted", "closed", "rate"], len(keys),
                                [[*(r[k] for k in keys), r["acted"], r["closed"], r["rate"]] for r in acted[dim]],
                                name=f"acted_within_window.{dim}"))
    model_cols = ["source", "volume", "decided", "action_rate", "false_positive_rate", "overturn_rate", "reviewed",
                  "shelved_hours", "escalated", "suspended"]
    sections.append(Section("Models", model_cols, 1, [[m[c] for c in model_cols] for m in data["models"]], name="models"))
    sections.append(Section("Escalation sources", ["from_tier", "area", "line", "automatic", "manual", "total"], 3,
                            [[s["from_tier"], s["area"], s["line"], s["automatic"], s["manual"], s["total"]] for s in esc["sources"]],
                            name="escalations.sources"))
    bias = data["automation_bias"]
    sections.append(Section(f"Automation bias (≥ {bias['share']:.0%} agreement over ≥ {bias['min_decisions']} decisions)",
                            ["person", "name", "decisions", "agreeing", "share"], 2,
                            [[p["person"], p["name"], p["decisions"], p["agreeing"], p["share"]] for p in bias["flagged"]],
                            name="automation_bias.flagged"))
    sections.append(Section("Overdue actions by owner", ["owner", "name", "overdue", "oldest_due_at"], 2,
                            [[o["owner"], o["name"], o["overdue"], o["oldest_due_at"]] for o in data["overdue_actions"]],
                            name="overdue_actions"))
    outcome_cols = ["resolved", "downtime_minutes_avoided", "scrap_avoided", "yield_effect_mean"]
    sections.append(Section("Outcomes by model", ["source", *outcome_cols], 1,
                            [[o["source"], *(o[c] for c in outcome_cols)] for o in data["outcomes"]["by_model"]],
                            name="outcomes.by_model"))
    sections.append(Section("Outcomes by line", ["area", "line", *outcome_cols], 2,
                            [[o["area"], o["line"], *(o[c] for c in outcome_cols)] for o in data["outcomes"]["by_line"]],
                            name="outcomes.by_line"))
    sections.append(Section(f"Trend by day ({data['trend']['from']} to {data['trend']['to']})",
                            ["day", "signals", "closed", "acted", "rate"], 1,
                            [[d["day"], d["signals"], d["closed"], d["acted"], d["rate"]] for d in data["trend"]["days"]],
                            name="trend.days"))
    return sections


def _cell(column: str, value) -> str:
    """A value as people read it in a table."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if column in ("rate", "share") or column.endswith("_rate"):
        return _pct(value)
    return _num(value)


#: How the summary's metrics read in a table (CSV keeps the keys).
SUMMARY_LABELS = {
    "acted_within_window": "acted within window", "windows_closed": "windows closed",
    "acted_within_window_rate": "acted-within-window rate", "ack_median_min": "time to acknowledge, median (min)",
    "ack_p90_min": "time to acknowledge, p90 (min)", "decide_median_min": "time to decide, median (min)",
    "decide_p90_min": "time to decide, p90 (min)", "escalated_signals": "escalated signals", "escalation_rate": "escalation rate",
    "escalations_automatic": "escalations by the sweep", "escalations_manual": "escalations by people",
    "flagged_at_top_tier": "breached at the top tier", "bad_actors": "bad actors",
}


def _cells(section: Section, row: list) -> list[str]:
    if section.name == "summary":
        metric, value = row
        return [SUMMARY_LABELS.get(metric, metric), _cell(metric, value) if value != "" else "none"]
    return [_cell(c, v) for c, v in zip(section.columns, row, strict=True)]


def _header(data: dict, zone) -> list[str]:
    f = data["filters"]
    narrowed = ", ".join(f"{k} {v}" for k, v in f.items() if v is not None) or "whole history"
    as_of = datetime.fromisoformat(data["as_of"].replace("Z", "+00:00")).astimezone(zone)
    return [f"Governance report — {data['plant']} — {narrowed}",
            f"as of {as_of:%Y-%m-%d %H:%M %Z} · policy {data['policy_version']}"]


def render_report(data: dict, fmt: str, zone) -> str:
    """The report as ``fmt``: json (the dict itself), csv (one value a line:
    section,group,metric,value, sections named after the JSON keys), md or table."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    sections = report_sections(data)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["section", "group", "metric", "value"])
        for s in sections:
            for row in s.rows:
                if s.name == "summary":
                    writer.writerow([s.name, "", row[0], "" if row[1] is None else row[1]])
                    continue
                group = ";".join(f"{c}={'' if v is None else v}" for c, v in zip(s.columns[:s.keys], row[:s.keys]))
                for column, value in zip(s.columns[s.keys:], row[s.keys:]):
                    writer.writerow([s.name, group, column, "" if value is None else value])
        return out.getvalue()
    if fmt == "md":
        lines = [f"# {_header(data, zone)[0]}", "", _header(data, zone)[1], ""]
        for s in sections:
            lines += [f"## {s.title}", ""]
            if not s.rows:
                lines += ["_none_", ""]
                continue
            lines.append("| " + " | ".join(s.columns) + " |")
            lines.append("|" + "|".join("---" if i < s.keys else "---:" for i in range(len(s.columns))) + "|")
            for row in s.rows:
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(s, row)) + " |")
            lines.append("")
        return "\n".join(lines)
    from rich.console import Console
    from rich.table import Table

    console = Console(file=io.StringIO(), width=140, color_system=None)
    for line in _header(data, zone):
        console.print(line, highlight=False)
    for s in sections:
        console.print()
        if not s.rows:
            console.print(f"{s.title}: none", highlight=False)
            continue
        console.print(s.title, style="bold", highlight=False)
        table = Table(box=None, pad_edge=False)
        for i, column in enumerate(s.columns):
            table.add_column(column.replace("_", " "), justify="left" if i < s.keys else "right", no_wrap=True)
        for row in s.rows:
            table.add_row(*_cells(s, row))
        console.print(table)
    return console.file.getvalue()


# ===== policy =====
@click.group()
def policy() -> None:
    """The decision-rights policy: show it, replay history through a proposed one."""


def _match_text(rule) -> str:
    parts = [f"{name}={','.join(str(v) for v in getattr(rule, name))}"
             for name in ("category", "severity", "source", "kind", "area", "line") if getattr(rule, name)]
    if rule.confidence_min is not None:
        parts.append(f"confidence≥{rule.confidence_min:g}")
    if rule.confidence_max is not None:
        parts.append(f"confidence≤{rule.confidence_max:g}")
    return "; ".join(parts) or "every signal"


def _windows_text(windows: dict) -> str:
    return "; ".join(f"{severity} " + ", ".join(f"T{tier} {w}" for tier, w in sorted(per_tier.items()))
                     for severity, per_tier in windows.items()) or "—"


def policy_tables(config) -> list[Section]:
    """The policy as tables: rules, default, windows, role rights."""
    gov = config.governance
    top = config.top_tier
    rules = Section("Rules (first match wins)", ["order", "name", "match", "autonomy", "start_tier", "window_overrides"], 2,
                    [[i + 1, r.name, _match_text(r), r.autonomy.value, min(r.start_tier, top), _windows_text(r.windows)]
                     for i, r in enumerate(gov.rules)])
    default = Section("Default (when no rule matches)", ["autonomy", "start_tier"], 2,
                      [[gov.default.autonomy.value, min(gov.default.start_tier, top)]])
    tiers = sorted({t for per_tier in gov.windows.values() for t in per_tier if t <= top})
    windows = Section("Response windows", ["severity", *(f"tier {t}" for t in tiers)], len(tiers) + 1,
                      [[severity.value, *(per_tier.get(t, "—") for t in tiers)] for severity, per_tier in gov.windows.items()])
    rights = gov.rights
    acts = ("decide", "close", "reopen", "shelve", "suspend_model")
    rights_table = Section(f"Role rights (shelving at most {rights.max_shelve})", ["act", "roles", "tiers"], 3,
                           [[act, ", ".join(r.value for r in getattr(rights, act).roles),
                             ", ".join(str(t) for t in getattr(rights, act).tiers) or "all"] for act in acts])
    return [rules, default, windows, rights_table]


@policy.command("show")
@click.option("--format", "fmt", type=click.Choice(["table", "md", "json"]), default="table", show_default=True)
@pass_settings
def policy_show(settings: Settings, fmt: str) -> None:
    """Print the decision-rights policy: its rules in order, the default, the response
    windows, the role rights and the policy version."""
    from tiermeet.domain.policy_lint import shadowed_rules

    config = settings.load_config()
    gov = config.governance
    warnings = shadowed_rules(gov)
    if fmt == "json":
        click.echo(json.dumps({"version": gov.version, "policy": gov.model_dump(mode="json"), "warnings": warnings},
                              indent=2, ensure_ascii=False))
        return
    sections = policy_tables(config)
    title = f"Decision-rights policy {gov.version} — {config.plant.name}"
    click.echo(_render_plain(title, sections, fmt, warnings), nl=False)


def _render_plain(title: str, sections: list[Section], fmt: str, notes: list[str]) -> str:
    """Tables with raw text cells, as markdown or aligned text."""
    if fmt == "md":
        lines = [f"# {title}", ""]
        for s in sections:
            lines += [f"## {s.title}", ""]
            if not s.rows:
                lines += ["_none_", ""]
                continue
            lines.append("| " + " | ".join(s.columns) + " |")
            lines.append("|" + "|".join("---" for _ in s.columns) + "|")
            lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in s.rows]
            lines.append("")
        lines += [f"warning: {n}" for n in notes]
        return "\n".join(lines) + ("\n" if notes else "")
    from rich.console import Console
    from rich.table import Table

    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(title, highlight=False)
    for s in sections:
        console.print()
        if not s.rows:
            console.print(f"{s.title}: none", highlight=False)
            continue
        console.print(s.title, style="bold", highlight=False)
        table = Table(box=None, pad_edge=False)
        for column in s.columns:
            table.add_column(column.replace("_", " "), overflow="fold")
        for row in s.rows:
            table.add_row(*("—" if v is None else str(v) for v in row))
        console.print(table)
    for note in notes:
        console.print(f"warning: {note}", highlight=False)
    return console.file.getvalue()


# ----- replay: pure functions over records -----
@dataclass(frozen=True)
class PastSignal(SignalFacts):
    """What replay needs of a past signal: the facts rules match on, when its window
    opened, and when a person first decided on it (None: nobody did)."""

    detected_at: datetime
    decided_at: datetime | None = None
    window_start: datetime | None = None  # default: detected_at


@dataclass
class TierCounts:
    """Replay's numbers for one start tier."""

    signals: int = 0
    autonomous: int = 0
    sign_off: int = 0
    escalate: int = 0
    decided: int = 0
    breached: int = 0

    @property
    def breach_rate(self) -> float | None:
        """Breached ÷ windows that a person had to meet (autonomous ones excluded)."""
        judged = self.signals - self.autonomous
        return self.breached / judged if judged else None


def replay(signals: Iterable[PastSignal], config, as_of: datetime) -> dict[int, TierCounts]:
    """Place each past signal under ``config``'s policy and count, per start tier, how
    many would have been autonomous, signed off or escalated, and how many windows would
    have been breached: a person's first decision after the deadline, or none and the
    deadline before ``as_of``. Autonomous signals act at once and breach nothing."""
    from tiermeet.domain.enums import Autonomy
    from tiermeet.domain.policy import deadline, place

    policy, calendar, top = config.governance, config.calendar, config.top_tier
    counts: dict[int, TierCounts] = {}
    for s in signals:
        placement = place(policy, s, top)
        tier = counts.setdefault(placement.start_tier, TierCounts())
        tier.signals += 1
        setattr(tier, placement.autonomy.value, getattr(tier, placement.autonomy.value) + 1)
        if placement.autonomy is Autonomy.AUTONOMOUS:
            continue
        due = deadline(placement.window, s.window_start or s.detected_at, calendar)
        if s.decided_at is not None:
            tier.decided += 1
            tier.breached += s.decided_at > due
        else:
            tier.breached += due <= as_of
    return dict(sorted(counts.items()))


def past_signals_from_records(records: Iterable, plan, zone) -> Iterator[PastSignal | tuple[int, str, str]]:
    """Past signals from ingest-contract rows; a ``decided_at`` field (ISO time, plant time
    without an offset) gives the measured decision. Bad rows come back as (line, field, reason)."""
    from tiermeet.ingest.contract import RecordError, check_record
    from tiermeet.ingest.readers import Problem

    for row in records:
        if isinstance(row, Problem):
            yield (row.line, row.field, row.reason)
            continue
        try:
            r = check_record(row.data, plan)
        except RecordError as exc:
            yield (row.line, exc.field, exc.reason)
            continue
        decided = row.data.get("decided_at")
        decided_at = None
        if decided not in (None, ""):
            try:
                decided_at = datetime.fromisoformat(str(decided).strip())
            except ValueError:
                yield (row.line, "decided_at", f"{decided!r} is not an ISO 8601 time")
                continue
            if decided_at.tzinfo is None:
                decided_at = decided_at.replace(tzinfo=zone)
            decided_at = decided_at.astimezone(UTC)
        yield PastSignal(r["category"], r["severity"], r["source"], r["kind"], r["area"], r["line"], r["confidence"],
                         r["detected_at"], decided_at)


def past_signals_from_db(services, since: datetime, until: datetime | None) -> list[PastSignal]:
    """The database's own signals detected in [since, until), with their first person's
    decision and the moment their first window opened."""
    from tiermeet.store.queries import connect_read
    from tiermeet.store.types import to_db_text

    def when(text):
        return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)

    sql = ("SELECT category, severity, source, kind, area, line, confidence, detected_at, first_decided_at, "
           "min(detected_at, ingested_at) FROM signal WHERE detected_at >= ?")
    params = [to_db_text(since)]
    if until is not None:
        sql += " AND detected_at < ?"
        params.append(to_db_text(until))
    conn = connect_read(services.ctx.db_path)
    try:
        return [PastSignal(c, sev, src, k, a, ln, conf, when(det), when(dec), when(start))
                for c, sev, src, k, a, ln, conf, det, dec, start in conn.execute(sql, params)]
    finally:
        conn.close()


def replay_table(current: dict[int, TierCounts], proposed: dict[int, TierCounts]) -> Section:
    """Per tier, the current policy's numbers beside the proposed one's."""
    rows = []
    for tier in sorted(set(current) | set(proposed)):
        for label, counts in (("current", current.get(tier, TierCounts())), ("proposed", proposed.get(tier, TierCounts()))):
            rows.append([tier, label, counts.signals, counts.autonomous, counts.sign_off, counts.escalate, counts.decided,
                         counts.breached, _pct(counts.breach_rate)])
    total = {label: TierCounts() for label in ("current", "proposed")}
    for label, counts in (("current", current), ("proposed", proposed)):
        for c in counts.values():
            for name in ("signals", "autonomous", "sign_off", "escalate", "decided", "breached"):
                setattr(total[label], name, getattr(total[label], name) + getattr(c, name))
    for label, c in total.items():
        rows.append(["all", label, c.signals, c.autonomous, c.sign_off, c.escalate, c.decided, c.breached, _pct(c.breach_rate)])
    return Section("Replay by start tier", ["tier", "policy", "signals", "autonomous", "sign_off", "escalate", "decided",
                                            "breached", "breach_rate"], 2, rows)


def load_proposed(path: Path, current):
    """The proposed config: a whole config file, or one holding only [governance] (the
    rest then comes from the config in use)."""
    import tomllib

    from pydantic import ValidationError

    from tiermeet.settings import Config, ConfigError, _problems, load_config

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fail(f"{path}: file not found", EXIT_UNUSABLE)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        fail(f"{path}: cannot be read: {exc}", EXIT_UNUSABLE)
    try:
        if "plant" in data:
            return load_config(path)
        base = current.model_dump(mode="json", exclude={"governance"})
        try:
            return Config.model_validate(base | {"governance": data.get("governance", {})})
        except ValidationError as exc:
            raise ConfigError(str(path), _problems(exc)) from None
    except ConfigError as exc:
        fail(str(exc), EXIT_UNUSABLE)


@policy.command("replay")
@click.argument("file", type=PathType, required=False)
@click.option("--config", "proposed_path", type=PathType, required=True,
              help="The proposed config (a whole config, or one with only a [governance] section).")
@click.option("--since", help="Replay the database's own signals detected from this date or time on "
                              "(with FILE: only its records from then on).")
@click.option("--until", help="… and before this date or time.")
@click.option("--at", "at", help="Judge windows nobody decided in as of this time (default: now).")
@click.option("--format", "fmt", type=click.Choice(["table", "md", "json"]), default="table", show_default=True)
@pass_settings
def policy_replay(settings: Settings, file: Path | None, proposed_path: Path, since, until, at, fmt: str) -> None:
    """Run past signals through a proposed policy, before adopting it.

    FILE is JSON Lines in the ingest contract; an optional decided_at field on each record
    is when a person first decided on it. Without FILE, --since replays the database's
    own history with its measured decision times. Prints, per start tier, how many signals
    would have been autonomous, signed off or escalated and how many windows would have
    been breached, for the policy in use and the proposed one."""
    from zoneinfo import ZoneInfo

    current = settings.load_config()
    proposed = load_proposed(proposed_path, current)
    zone = ZoneInfo(current.plant.timezone)
    start, end = parse_when(since, "--since", zone), parse_when(until, "--until", zone)
    judged_at = parse_when(at, "--at", zone)
    if file is None and start is None:
        fail("name the signals to replay: a JSON Lines FILE, or --since to replay the database's own history", EXIT_UNUSABLE)
    rejected = []
    if file is not None:
        from tiermeet.ingest.contract import Plan
        from tiermeet.ingest.readers import UnusableInput, read_rows

        plan = Plan({a.id: frozenset(ln.id for ln in a.lines) for a in current.areas}, zone)
        try:
            with open(file, "rb") as stream:
                items = list(past_signals_from_records(read_rows(stream, str(file), "jsonl"), plan, zone))
        except FileNotFoundError:
            fail(f"{file}: file not found", EXIT_UNUSABLE)
        except UnusableInput as exc:
            fail(str(exc), EXIT_UNUSABLE)
        rejected = [item for item in items if isinstance(item, tuple)]
        past = [item for item in items if isinstance(item, PastSignal)
                and (start is None or item.detected_at >= start) and (end is None or item.detected_at < end)]
        services = None
    else:
        services = settings.services(prepare=False)
        past = past_signals_from_db(services, start, end)
    as_of = judged_at or (services.ctx.clock.now() if services is not None else datetime.now(UTC))
    before, after = replay(past, current, as_of), replay(past, proposed, as_of)
    for line, name, reason in rejected:
        click.echo(f"{file}:{line}: {name}: {reason}", err=True)
    if fmt == "json":
        def as_dict(counts):
            return [{"tier": t, "signals": c.signals, "autonomous": c.autonomous, "sign_off": c.sign_off, "escalate": c.escalate,
                     "decided": c.decided, "breached": c.breached, "breach_rate": c.breach_rate} for t, c in counts.items()]
        click.echo(json.dumps({"signals": len(past), "rejected": len(rejected),
                               "current": {"version": current.governance.version, "tiers": as_dict(before)},
                               "proposed": {"version": proposed.governance.version, "tiers": as_dict(after)}},
                              indent=2, ensure_ascii=False))
    else:
        title = (f"Replay of {len(past):,} signals: policy {current.governance.version} (current) "
                 f"vs {proposed.governance.version} (proposed)")
        notes = [f"{len(rejected)} record(s) could not be read and were left out"] if rejected else []
        click.echo(_render_plain(title, [replay_table(before, after)], fmt, notes), nl=False)
    if rejected:
        sys.exit(EXIT_REJECTED)

