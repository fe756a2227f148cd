"""Governance metrics for a supervisor at Tier 2/3: the share of AI signals acted on within
their window, its trend by day, and per model what the plant does with its signals.

Everything comes from ``app.services.report.report(...)`` (the SQL is in the service), read
in a thread worker; the screen only draws the dict it returns. A full report over a long
history takes a moment, so changes made elsewhere are picked up at most every
RELOAD_EVERY seconds, or at once with ``r``.
"""

import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Sparkline, Static

#: Periods ``p`` cycles through, in days (the report's trend covers the same days).
PERIODS = (28, 7, 90)
RELOAD_EVERY = 30.0
BAR = 20


def bar(share: float | None, width: int = BAR) -> str:
    """A text bar for a share 0..1 (empty for no value)."""
    if share is None:
        return "·" * width
    filled = round(max(0.0, min(1.0, share)) * width)
    return "█" * filled + "░" * (width - filled)


def pct(share: float | None) -> str:
    return "—" if share is None else f"{share:.0%}"


def minutes(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.0f} min"
    if value < 48 * 60:
        return f"{value / 60:.1f} h"
    return f"{value / 1440:.1f} d"


def headline(report: dict) -> Text:
    """The number the product exists for, with what it is made of."""
    acted = report["acted_within_window"]
    times, esc = report["response_times"], report["escalations"]
    out = Text()
    out.append("Acted on within the window  ", style="bold")
    out.append(pct(acted["rate"]), style="bold reverse" if acted["rate"] is not None else "dim")
    out.append(f"   {acted['acted']:,} of {acted['closed']:,} windows closed · {report['signals']['total']:,} signals\n")
    out.append(f"Time to acknowledge {minutes(times['ack_median_min'])} median, {minutes(times['ack_p90_min'])} p90 · "
               f"to decide {minutes(times['decide_median_min'])} median, {minutes(times['decide_p90_min'])} p90\n")
    out.append(f"Escalated {pct(esc['rate'])} of signals ({esc['automatic']:,} by the sweep, {esc['manual']:,} by people) · "
               f"{esc['flagged_at_top_tier']:,} breached at the top tier")
    return out


def by_tier(report: dict) -> Text:
    out = Text()
    for row in report["acted_within_window"]["by_tier"]:
        out.append(f"Tier {row['tier']}  {bar(row['rate'], 12)} {pct(row['rate']):>4}  ({row['acted']:,}/{row['closed']:,})\n")
    out.rstrip()
    return out or Text("No windows closed yet.", style="dim")


def bar_width(columns: int) -> int:
    """Bars as wide as the screen allows, so a model's row fits on one line at 80 columns."""
    return max(6, min(BAR, (columns - 62) // 3))


def models(report: dict, width: int = BAR) -> Text:
    """Per model: volume, action, false-positive and overturn rates as bars ``width`` wide."""
    rows = report["models"]
    if not rows:
        return Text("No signals in this period.", style="dim")
    bad = set(report["bad_actors"])
    top = max(m["volume"] for m in rows) or 1
    out = Text()
    out.append(f"{'model':<16} {'volume':<{width + 8}} {'acted on':<{width + 6}} {'false pos.':<{width + 6}} "
               f"{'overturned':<11} shelved\n", style="bold")
    for m in rows:
        out.append(f"{m['source'][:16]:<16} ", style="bold red" if m["source"] in bad else "")
        out.append(f"{bar(m['volume'] / top, width)} {m['volume']:>7,} ")
        out.append(f"{bar(m['action_rate'], width)} {pct(m['action_rate']):>4} ", style="green")
        out.append(f"{bar(m['false_positive_rate'], width)} {pct(m['false_positive_rate']):>4} ",
                   style="red" if m["source"] in bad else "yellow")
        out.append(f"{pct(m['overturn_rate']):>4} of {m['reviewed']:<4} {m['shelved_hours']:>6.0f} h")
        if m["suspended"]:
            out.append("  autonomy suspended", style="bold")
        out.append("\n")
    if bad:
        out.append(f"Most false positives (≥ 10 decisions): {', '.join(report['bad_actors'])}", style="red")
    out.rstrip()
    return out


def people(report: dict) -> Text:
    """Automation-bias flags and overdue actions by owner."""
    out = Text()
    bias = report["automation_bias"]
    out.append("Automation bias", style="bold")
    out.append(f" (agrees with the AI in ≥ {bias['share']:.0%} of ≥ {bias['min_decisions']} decisions)\n", style="dim")
    for p in bias["flagged"]:
        out.append(f"  {p['name']}: {p['agreeing']} of {p['decisions']} ({p['share']:.0%})\n", style="yellow")
    if not bias["flagged"]:
        out.append("  nobody flagged\n", style="dim")
    out.append("\nOverdue actions by owner\n", style="bold")
    for o in report["overdue_actions"]:
        out.append(f"  {o['name']}: {o['overdue']}\n", style="red")
    if not report["overdue_actions"]:
        out.append("  none", style="dim")
    out.rstrip()
    return out


class MetricsScreen(Screen):
    """The governance report of a board's scope, for the Tier 2/3 meeting."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "reload", "Reload"),
        Binding("p", "period", "Period"),
    ]

    DEFAULT_CSS = """
    MetricsScreen #headline { padding: 1 1 0 1; height: auto; }
    MetricsScreen .section { text-style: bold; padding: 1 1 0 1; height: auto; }
    MetricsScreen #trends { height: auto; }
    MetricsScreen .trend-row { height: 2; padding: 0 1; }
    MetricsScreen .trend-label { width: 34; }
    MetricsScreen Sparkline { width: 1fr; height: 2; }
    MetricsScreen #by-tier, MetricsScreen #models, MetricsScreen #people { padding: 0 1; height: auto; }
    """

    def __init__(self, *, tier: int, line: str | None = None, area: str | None = None, label: str = "plant") -> None:
        super().__init__()
        self.tier = tier
        self.line, self.area, self.label = line, area, label
        self.period = PERIODS[0]
        self.report: dict | None = None
        self._loaded_at = 0.0

    def compose(self) -> ComposeResult:
        yield Static(id="topbar")
        with VerticalScroll():
            yield Static("Loading the report…", id="headline")
            yield Static("Trend by day", classes="section", id="trend-title")
            with Vertical(id="trends"):
                with Horizontal(classes="trend-row"):
                    yield Static("acted within window", classes="trend-label", id="rate-label")
                    yield Sparkline([], id="rate-trend")
                with Horizontal(classes="trend-row"):
                    yield Static("signals per day", classes="trend-label", id="volume-label")
                    yield Sparkline([], id="volume-trend")
            yield Static("By start tier", classes="section")
            yield Static(id="by-tier")
            yield Static("Models", classes="section")
            yield Static(id="models")
            yield Static("People", classes="section")
            yield Static(id="people")
        yield Footer()

    def on_mount(self) -> None:
        self._topbar()
        self.action_reload()
        self.set_interval(1.0, self._poll)

    def _topbar(self) -> None:
        self.query_one("#topbar", Static).update(
            f"[b]Governance metrics[/] · {self.label} · last {self.period} days (p changes)")

    def _poll(self) -> None:
        changed = self.app.watcher.changed(f"{type(self).__name__}-{id(self)}")
        if changed and time.monotonic() - self._loaded_at >= RELOAD_EVERY:
            self.action_reload()

    def action_reload(self) -> None:
        """Read the report again."""
        self._loaded_at = time.monotonic()
        self.load()

    def action_period(self) -> None:
        """Show the next period (28, 7 or 90 days)."""
        self.period = PERIODS[(PERIODS.index(self.period) + 1) % len(PERIODS)]
        self._topbar()
        self.action_reload()

    @work(thread=True, exclusive=True, exit_on_error=False, group="metrics")
    def load(self) -> None:
        """Compute the report in a thread (it reads the whole period)."""
        from datetime import datetime, time as clock_time, timedelta

        app = self.app
        today = app.now().astimezone(app.zone).date()
        since = datetime.combine(today - timedelta(days=self.period - 1), clock_time(0), app.zone)
        report = app.services.report.report(since=since, line=self.line, area=self.area)
        app.call_from_thread(self.show, report)

    def show(self, report: dict) -> None:
        """Draw a report."""
        self.report = report
        self.query_one("#headline", Static).update(headline(report))
        days = report["trend"]["days"]
        rates = [d["rate"] for d in days]
        known = [r for r in rates if r is not None]
        self.query_one("#rate-trend", Sparkline).data = [r if r is not None else 0.0 for r in rates] or [0.0]
        self.query_one("#volume-trend", Sparkline).data = [d["signals"] for d in days] or [0]
        last = next((r for r in reversed(rates) if r is not None), None)
        self.query_one("#rate-label", Static).update(
            f"acted in window: {pct(last)}" + (f", low {pct(min(known))}" if known else ""))
        self.query_one("#volume-label", Static).update(f"signals a day: max {max((d['signals'] for d in days), default=0):,}")
        self.query_one("#trend-title", Static).update(f"Trend by day, {report['trend']['from']} to {report['trend']['to']}")
        self.query_one("#by-tier", Static).update(by_tier(report))
        self.query_one("#models", Static).update(models(report, bar_width(self.size.width)))
        self.query_one("#people", Static).update(people(report))
