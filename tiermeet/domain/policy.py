"""The decision-rights policy: ordered rules, first match wins (design.md §3).

A rule says, for the signals it matches, whether the AI may act alone, needs a person's
sign-off, or goes straight to a higher tier, at which tier the signal starts, and how
long each tier has to respond. The policy's version is a hash of its content, recorded
with every decision so that an audit can tell which rules were in force.
"""

import hashlib
import json
import weakref
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from tiermeet.domain.durations import END_OF_SHIFT, check_window, parse_duration
from tiermeet.domain.enums import Autonomy, Category, Severity, SignalKind
from tiermeet.domain.rights import Rights
from tiermeet.domain.shifts import ShiftCalendar

#: A window as written: a duration ("30m") or "end_of_shift", checked where it is written
#: so that an error names its severity and tier (governance.windows.high.1).
WindowText = Annotated[str, AfterValidator(check_window)]
def _tier_exists(level: int) -> int:
    if not 1 <= level <= 4:
        raise ValueError(f"tier {level} does not exist; tiers are 1 to 4")
    return level


TierLevel = Annotated[int, AfterValidator(_tier_exists)]
#: Windows per severity, then per tier: ``{"critical": {1: "30m", 2: "1h"}}``.
Windows = dict[Severity, dict[TierLevel, WindowText]]


class Rule(BaseModel):
    """One row of the decision-rights matrix. Empty match lists match everything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Shown in refusals, reports and `policy show`.")
    category: list[Category] = []
    severity: list[Severity] = []
    source: list[str] = []
    kind: list[SignalKind] = []
    area: list[str] = []
    line: list[str] = []
    confidence_min: float | None = Field(default=None, ge=0, le=1)
    confidence_max: float | None = Field(default=None, ge=0, le=1)
    autonomy: Autonomy = Autonomy.SIGN_OFF
    start_tier: int = Field(default=1, ge=1, le=4)
    windows: Windows = {}

    @model_validator(mode="after")
    def _range(self) -> "Rule":
        if self.confidence_min is not None and self.confidence_max is not None and self.confidence_min > self.confidence_max:
            raise ValueError("confidence_min is greater than confidence_max")
        return self

    def matches(self, s: "SignalFacts") -> bool:
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


class DefaultRule(BaseModel):
    """What applies when no rule matches; closes the ordered list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    autonomy: Autonomy = Autonomy.SIGN_OFF
    start_tier: int = Field(default=1, ge=1, le=4)


DEFAULT_WINDOWS: Windows = {
    Severity.CRITICAL: {1: "30m", 2: "1h", 3: "4h", 4: "1d"},
    Severity.HIGH: {1: "2h", 2: "4h", 3: "1d", 4: "3d"},
    Severity.MEDIUM: {1: END_OF_SHIFT, 2: "1d", 3: "3d", 4: "7d"},
    Severity.LOW: {1: "1d", 2: "3d", 3: "7d", 4: "14d"},
}


class Governance(BaseModel):
    """The policy section of the config: windows, ordered rules and the default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: Windows = DEFAULT_WINDOWS
    rules: list[Rule] = []
    default: DefaultRule = DefaultRule()
    rights: Rights = Rights()

    @field_validator("windows")
    @classmethod
    def _with_defaults(cls, value: Windows) -> Windows:
        """Windows the config leaves out keep their defaults, tier by tier."""
        return {severity: {**DEFAULT_WINDOWS[severity], **value.get(severity, {})} for severity in Severity}

    @model_validator(mode="after")
    def _unique_names(self) -> "Governance":
        names = [r.name for r in self.rules]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise ValueError(f"two rules are named {dup!r}; rule names must be unique")
        return self

    @property
    def version(self) -> str:
        """A short hash of the policy's content: same rules, same version, on every machine."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SignalFacts:
    """What rule matching looks at: the immutable payload fields of a signal."""

    category: Category
    severity: Severity
    source: str
    kind: SignalKind
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


def _first_match(policy: Governance, facts: SignalFacts) -> Rule | None:
    return next((rule for rule in policy.rules if rule.matches(facts)), None)


#: Most placements a policy remembers before it starts afresh: AI systems name few models,
#: lines and kinds, so signals fall into far fewer combinations than this.
PLACEMENTS_KEPT = 4096


class _Memo:
    """What ``place`` remembers of one policy: the rules' confidence bounds and the
    placements worked out so far. Kept beside the policy, not in it, so that two policies
    with the same rules stay equal whatever each has placed."""

    def __init__(self, policy: Governance) -> None:
        self.lows = sorted({r.confidence_min for r in policy.rules if r.confidence_min is not None})
        self.highs = sorted({r.confidence_max for r in policy.rules if r.confidence_max is not None})
        self.placements: dict[tuple, Placement] = {}

    def band(self, confidence: float | None) -> tuple[int, int] | None:
        """Where a confidence lies against every rule's bounds: how many lower bounds it
        reaches and how many upper bounds it exceeds. That is all rule matching reads of
        it, so two confidences in one band match the same rules."""
        if confidence is None:
            return None
        return bisect_right(self.lows, confidence), bisect_left(self.highs, confidence)


_MEMOS: dict[int, _Memo] = {}


def _memo(policy: Governance) -> _Memo:
    memo = _MEMOS.get(id(policy))
    if memo is None:
        memo = _MEMOS[id(policy)] = _Memo(policy)
        weakref.finalize(policy, _MEMOS.pop, id(policy), None)
    return memo


def place(policy: Governance, facts: SignalFacts, top_tier: int) -> Placement:
    """The first matching rule's autonomy and start tier (capped at the plant's top tier),
    with the response window there.

    Remembered per policy (which is immutable), keyed on what the rules read of the facts:
    signals arrive by the thousand with the same model, line, category and severity, and
    each would otherwise walk the rules again."""
    return _placed(policy, facts.category, facts.severity, facts.source, facts.kind, facts.area, facts.line,
                   facts.confidence, top_tier)


def _placed(policy: Governance, category, severity, source: str, kind, area: str, line: str | None,
            confidence: float | None, top_tier: int) -> Placement:
    """``place`` of the facts given one by one: an ingest places signals by the hundred
    thousand, and makes the facts only when a placement is not remembered yet."""
    memo = _memo(policy)
    key = (category, severity, source, kind, area, line, memo.band(confidence), top_tier)
    found = memo.placements.get(key)
    if found is None:
        if len(memo.placements) >= PLACEMENTS_KEPT:
            memo.placements.clear()
        facts = SignalFacts(category, severity, source, kind, area, line, confidence)
        found = memo.placements[key] = _place(policy, facts, top_tier)
    return found


def _place(policy: Governance, facts: SignalFacts, top_tier: int) -> Placement:
    """``place`` worked out: one pass over the rules."""
    rule = _first_match(policy, facts)
    if rule is None:
        tier = min(policy.default.start_tier, top_tier)
        return Placement("default", policy.default.autonomy, tier, _table_window(policy, facts.severity, tier))
    tier = min(rule.start_tier, top_tier)
    window = rule.windows.get(facts.severity, {}).get(tier) or _table_window(policy, facts.severity, tier)
    return Placement(rule.name, rule.autonomy, tier, window)


def _table_window(policy: Governance, severity: Severity, tier: int) -> str:
    per_tier = policy.windows[severity]
    return per_tier.get(tier) or per_tier[max(t for t in per_tier if t <= tier)]


def window_for(policy: Governance, facts: SignalFacts, tier: int) -> str:
    """The response window (as written) for a signal at a tier: rule override, else the table."""
    rule = _first_match(policy, facts)
    override = rule.windows.get(facts.severity, {}).get(tier) if rule is not None else None
    return override or _table_window(policy, facts.severity, tier)


def deadline(window: str, start: datetime, calendar: ShiftCalendar) -> datetime:
    """When a window that opens at ``start`` closes."""
    if window == END_OF_SHIFT:
        return calendar.end_of_shift(start)
    return start + parse_duration(window)


def first_window(policy: Governance, record: dict, now: datetime, top_tier: int,
                 calendar: ShiftCalendar) -> tuple[Placement, datetime, datetime]:
    """Where a new signal (an ingest record's fields) starts: its placement, and its first
    window, which opens at detection — or at arrival, for a detection time still ahead."""
    return opening(policy, record["category"], record["severity"], record["source"], record["kind"], record["area"],
                   record["line"], record["confidence"], record["detected_at"], now, top_tier, calendar)


def opening(policy: Governance, category, severity, source: str, kind, area: str, line: str | None,
            confidence: float | None, detected_at: datetime, now: datetime, top_tier: int,
            calendar: ShiftCalendar) -> tuple[Placement, datetime, datetime]:
    """``first_window`` of the fields given one by one, as bulk ingest holds them."""
    placement = _placed(policy, category, severity, source, kind, area, line, confidence, top_tier)
    start = min(detected_at, now)
    return placement, start, deadline(placement.window, start, calendar)


def response_deadline(policy: Governance, facts: SignalFacts, tier: int, start: datetime, calendar: ShiftCalendar) -> datetime:
    """The deadline for a signal that reached ``tier`` at ``start``."""
    return deadline(window_for(policy, facts, tier), start, calendar)


