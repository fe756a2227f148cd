"""The decision-rights policy: ordered rules, first match wins (design.md §3).

A rule says, for the signals it matches, whether the AI may act alone, needs a person's
sign-off, or goes straight to a higher tier, at which tier the signal starts, and how
long each tier has to respond. The policy's version is a hash of its content, recorded
with every decision so that an audit can tell which rules were in force. The models here
check the policy as written; placing signals by it is ``domain.placement``'s work, on
plain values (``Governance.placer``).
"""

import hashlib
import json
import weakref
from datetime import datetime

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from tiermeet.domain.durations import END_OF_SHIFT, check_window
from tiermeet.domain.enums import Autonomy, Category, Severity, SignalKind
from tiermeet.domain.placement import Placement, Placer, SignalFacts, Terms, WindowTable, deadline
from tiermeet.domain.rights import Rights
from tiermeet.domain.shifts import ShiftCalendar

__all__ = ["DefaultRule", "Governance", "Placement", "Rule", "SignalFacts", "deadline", "first_window", "place",
           "response_deadline", "window_for"]

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

    def placer(self) -> Placer:
        """This policy as placing reads it, in plain values (``domain.placement``), made
        once per policy and kept beside it, not in it: two policies with the same rules
        stay equal whatever each has placed."""
        found = _PLACERS.get(id(self))
        if found is None:
            found = _PLACERS[id(self)] = Placer(tuple(_terms(rule) for rule in self.rules),
                                                (self.default.autonomy, self.default.start_tier), _plain(self.windows))
            weakref.finalize(self, _PLACERS.pop, id(self), None)
        return found

    @property
    def version(self) -> str:
        """A short hash of the policy's content: same rules, same version, on every machine."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


#: Each policy's ``Governance.placer``, by the policy's id.
_PLACERS: dict[int, Placer] = {}


def _terms(rule: Rule) -> Terms:
    return Terms(rule.name, tuple(rule.category), tuple(rule.severity), tuple(rule.source), tuple(rule.kind),
                 tuple(rule.area), tuple(rule.line), rule.confidence_min, rule.confidence_max, rule.autonomy,
                 rule.start_tier, _plain(rule.windows))


def _plain(windows: Windows) -> WindowTable:
    return {severity.value: dict(per_tier) for severity, per_tier in windows.items()}


def place(policy: Governance, facts: SignalFacts, top_tier: int) -> Placement:
    """The first matching rule's autonomy and start tier (capped at the plant's top tier),
    with the response window there."""
    return policy.placer().place(facts, top_tier)


def window_for(policy: Governance, facts: SignalFacts, tier: int) -> str:
    """The response window (as written) for a signal at a tier: rule override, else the table."""
    return policy.placer().window_for(facts, tier)


def first_window(policy: Governance, record: dict, now: datetime, top_tier: int,
                 calendar: ShiftCalendar) -> tuple[Placement, datetime, datetime]:
    """Where a new signal (an ingest record's fields) starts: its placement, and its first
    window, which opens at detection — or at arrival, for a detection time still ahead."""
    return policy.placer().opening(record["category"], record["severity"], record["source"], record["kind"],
                                   record["area"], record["line"], record["confidence"], record["detected_at"], now,
                                   top_tier, calendar)


def response_deadline(policy: Governance, facts: SignalFacts, tier: int, start: datetime, calendar: ShiftCalendar) -> datetime:
    """The deadline for a signal that reached ``tier`` at ``start``."""
    return deadline(window_for(policy, facts, tier), start, calendar)
