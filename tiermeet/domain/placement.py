"""Where a signal goes under the decision-rights policy, worked out on plain values.

The policy as configured (``domain.policy.Governance``) is a pydantic model, checked where
it is written. A ``Placer`` holds what placing a signal reads of it: each rule's
conditions, autonomy, start tier and window overrides, the default, and the window table.
Bulk ingest's reading process places its signals with a ``Placer`` alone and never loads
pydantic's models, which were two thirds of the time that process took to start.
"""

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime

from tiermeet.domain.durations import END_OF_SHIFT, parse_duration
from tiermeet.domain.enums import Autonomy
from tiermeet.domain.shifts import ShiftCalendar

#: Windows per severity, then per tier: ``{"critical": {1: "30m", 2: "1h"}}``.
WindowTable = dict[str, dict[int, str]]
#: Most placements a ``Placer`` remembers before it starts afresh: AI systems name few
#: models, lines and kinds, so signals fall into far fewer combinations than this.
PLACEMENTS_KEPT = 4096


@dataclass(frozen=True)
class SignalFacts:
    """What rule matching looks at: the immutable payload fields of a signal."""

    category: str
    severity: str
    source: str
    kind: str
    area: str
    line: str | None
    confidence: float | None


@dataclass(frozen=True)
class Placement:
    """Where a new signal goes under the policy, which rule put it there, and the
    response window it has at that tier."""

    rule: str
    autonomy: Autonomy
    start_tier: int
    window: str


@dataclass(frozen=True)
class Terms:
    """One rule: its conditions (an empty one matches everything) and what it decides."""

    name: str
    category: tuple[str, ...]
    severity: tuple[str, ...]
    source: tuple[str, ...]
    kind: tuple[str, ...]
    area: tuple[str, ...]
    line: tuple[str, ...]
    confidence_min: float | None
    confidence_max: float | None
    autonomy: Autonomy
    start_tier: int
    windows: WindowTable

    def matches(self, s: SignalFacts) -> bool:
        """True when every condition the rule sets holds for the signal."""
        if self.category and s.category not in self.category:
            return False
        if self.severity and s.severity not in self.severity:
            return False
        if self.source and s.source not in self.source:
            return False
        if self.kind and s.kind not in self.kind:
            return False
        if self.area and s.area not in self.area:
            return False
        if self.line and s.line not in self.line:
            return False
        if self.confidence_min is not None and (s.confidence is None or s.confidence < self.confidence_min):
            return False
        if self.confidence_max is not None and (s.confidence is None or s.confidence > self.confidence_max):
            return False
        return True


class Placer:
    """Places signals by ordered rules, first match wins, and remembers each placement it
    works out, keyed on what the rules read of a signal: signals arrive by the thousand
    with the same model, line, category and severity, and each would otherwise walk the
    rules again. A confidence enters the key as its band between the rules' bounds (how
    many lower bounds it reaches, how many upper bounds it exceeds): two confidences in
    one band match the same rules."""

    def __init__(self, rules: tuple[Terms, ...], default: tuple[Autonomy, int], windows: WindowTable) -> None:
        self.rules, self.default, self.windows = rules, default, windows
        self.lows = sorted({r.confidence_min for r in rules if r.confidence_min is not None})
        self.highs = sorted({r.confidence_max for r in rules if r.confidence_max is not None})
        self.placements: dict[tuple, Placement] = {}

    def __getstate__(self) -> tuple:
        return self.rules, self.default, self.windows  # what it remembers is made afresh

    def __setstate__(self, state: tuple) -> None:
        self.__init__(*state)

    def place(self, facts: SignalFacts, top_tier: int) -> Placement:
        """The first matching rule's autonomy and start tier (capped at the plant's top
        tier), with the response window there."""
        return self.placed(facts.category, facts.severity, facts.source, facts.kind, facts.area, facts.line,
                           facts.confidence, top_tier)

    def placed(self, category, severity, source: str, kind, area: str, line: str | None, confidence: float | None,
               top_tier: int) -> Placement:
        """``place`` of the facts given one by one: an ingest places signals by the hundred
        thousand, and makes the facts only when a placement is not remembered yet."""
        band = None if confidence is None else (bisect_right(self.lows, confidence), bisect_left(self.highs, confidence))
        key = (category, severity, source, kind, area, line, band, top_tier)
        found = self.placements.get(key)
        if found is None:
            if len(self.placements) >= PLACEMENTS_KEPT:
                self.placements.clear()
            facts = SignalFacts(category, severity, source, kind, area, line, confidence)
            found = self.placements[key] = self.fresh(facts, top_tier)
        return found

    def fresh(self, facts: SignalFacts, top_tier: int) -> Placement:
        """``place`` worked out: one pass over the rules."""
        rule = self.first_match(facts)
        if rule is None:
            autonomy, start_tier = self.default
            tier = min(start_tier, top_tier)
            return Placement("default", autonomy, tier, self.table_window(facts.severity, tier))
        tier = min(rule.start_tier, top_tier)
        return Placement(rule.name, rule.autonomy, tier, self._window(rule, facts.severity, tier))

    def first_match(self, facts: SignalFacts) -> Terms | None:
        return next((rule for rule in self.rules if rule.matches(facts)), None)

    def table_window(self, severity: str, tier: int) -> str:
        per_tier = self.windows[severity]
        return per_tier.get(tier) or per_tier[max(t for t in per_tier if t <= tier)]

    def window_for(self, facts: SignalFacts, tier: int) -> str:
        """The response window (as written) for a signal at a tier."""
        return self._window(self.first_match(facts), facts.severity, tier)

    def _window(self, rule: Terms | None, severity: str, tier: int) -> str:
        """The matching rule's window at ``tier``, else the table's."""
        override = rule.windows.get(severity, {}).get(tier) if rule is not None else None
        return override or self.table_window(severity, tier)

    def opening(self, category, severity, source: str, kind, area: str, line: str | None, confidence: float | None,
                detected_at: datetime, now: datetime, top_tier: int,
                calendar: ShiftCalendar) -> tuple[Placement, datetime, datetime]:
        """Where a new signal starts: its placement, and its first window, which opens at
        detection — or at arrival (``now``), for a detection time still ahead."""
        placement = self.placed(category, severity, source, kind, area, line, confidence, top_tier)
        start = min(detected_at, now)
        return placement, start, deadline(placement.window, start, calendar)


def deadline(window: str, start: datetime, calendar: ShiftCalendar) -> datetime:
    """When a window that opens at ``start`` closes."""
    if window == END_OF_SHIFT:
        return calendar.end_of_shift(start)
    return start + parse_duration(window)
