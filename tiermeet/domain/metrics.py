"""Governance metrics, defined once over plain records (design.md §3).

These functions are the definition: the report computes the same numbers in SQL for
speed, and a property test holds the two equal on random histories. The counting rules:

Acted-within-window rate
    Unit: a signal's FIRST response window (at the tier where the policy placed it); a
    signal counts once, however often it is escalated later.
    Denominator: signals whose first window has closed by ``as_of`` (deadline ≤ as_of),
    except autonomous ones (the AI acted under the policy; they are measured by their
    overturn rate instead).
    Numerator: those of them with a person's decision — act, monitor, dismiss (any
    disposition, duplicates included), shelve or escalate — at or before the deadline.
    Acknowledging is not acting; an escalation by the sweep (a breached window) is not a
    decision. A signal decided inside its window whose window has not closed yet is not
    counted at all yet, so the rate never moves for reasons still in the future.

Time to acknowledge / to decide
    From ``detected_at`` to the first acknowledgement / first person's decision, over the
    signals that have one; median and 90th percentile (nearest-rank).

Escalation rate
    Signals escalated at least once ÷ all signals (autonomous included).

Per model
    volume (all its signals); action rate (a person's act or monitor decisions ÷
    volume — counted per decision, so a signal decided twice counts twice);
    false-positive rate (dismissals as false_positive ÷ a person's decisions); overturn rate (autonomous decisions overturned at review ÷
    autonomous decisions reviewed); shelved time (sum of shelved durations, hours).
    Bad actors: models ranked by false-positive rate among those with ≥ 10 decided
    signals.

Automation bias
    A person whose decisions on AI signals agree with the AI's suggestion (act or
    monitor) in ≥ 95 % of ≥ 20 decisions is flagged: they may no longer be reviewing.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

#: Decision kinds that count as acting on a signal.
ACTING = frozenset({"act", "monitor", "dismiss", "shelve", "escalate"})
#: Decision kinds that agree with the AI (it raised the signal to be acted on).
AGREEING = frozenset({"act", "monitor"})
BIAS_SHARE = 0.95
BIAS_MIN_DECISIONS = 20
BAD_ACTOR_MIN_DECIDED = 10


@dataclass(frozen=True)
class SignalRecord:
    """What the metrics need of one signal."""

    source: str
    start_tier: int
    line: str | None
    category: str
    autonomous: bool
    detected_at: datetime
    first_deadline: datetime
    first_acknowledged_at: datetime | None
    first_decided_at: datetime | None
    escalated: bool


@dataclass(frozen=True)
class DecisionRecord:
    """What the metrics need of one decision."""

    source: str
    kind: str
    disposition: str | None
    decided_by: str
    by_person: bool


def acted_within_window(signals: list[SignalRecord], as_of: datetime) -> tuple[int, int]:
    """(acted in window, windows closed) by the rule in the module docstring."""
    closed = [s for s in signals if not s.autonomous and s.first_deadline <= as_of]
    acted = sum(1 for s in closed if s.first_decided_at is not None and s.first_decided_at <= s.first_deadline)
    return acted, len(closed)


def rate(numerator: int, denominator: int) -> float | None:
    """numerator ÷ denominator, or None when nothing counts yet."""
    return numerator / denominator if denominator else None


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` 0.5 = median); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def response_times(signals: list[SignalRecord]) -> dict[str, float | None]:
    """Median and p90 minutes to acknowledge and to decide."""
    ack = [(s.first_acknowledged_at - s.detected_at).total_seconds() / 60 for s in signals if s.first_acknowledged_at]
    dec = [(s.first_decided_at - s.detected_at).total_seconds() / 60 for s in signals if s.first_decided_at]
    return {"ack_median_min": percentile(ack, 0.5), "ack_p90_min": percentile(ack, 0.9),
            "decide_median_min": percentile(dec, 0.5), "decide_p90_min": percentile(dec, 0.9)}


def escalation_rate(signals: list[SignalRecord]) -> float | None:
    """Share of signals escalated at least once."""
    return rate(sum(s.escalated for s in signals), len(signals))


def per_model(signals: list[SignalRecord], decisions: list[DecisionRecord]) -> dict[str, dict]:
    """Volume, action rate and false-positive rate per model (by the docstring's rules)."""
    volume: dict[str, int] = defaultdict(int)
    for s in signals:
        volume[s.source] += 1
    by_person = [d for d in decisions if d.by_person]
    acted: dict[str, int] = defaultdict(int)
    false_pos: dict[str, int] = defaultdict(int)
    decided: dict[str, int] = defaultdict(int)
    for d in by_person:
        decided[d.source] += 1
        acted[d.source] += d.kind in AGREEING
        false_pos[d.source] += d.kind == "dismiss" and d.disposition == "false_positive"
    return {source: {"volume": n, "action_rate": rate(acted[source], n),
                     "false_positive_rate": rate(false_pos[source], decided[source]), "decided": decided[source]}
            for source, n in sorted(volume.items())}


def bad_actors(models: dict[str, dict], top: int = 5) -> list[str]:
    """Models with the highest false-positive rate among those with enough decisions."""
    ranked = [(m["false_positive_rate"], source) for source, m in models.items()
              if m["decided"] >= BAD_ACTOR_MIN_DECIDED and m["false_positive_rate"] is not None]
    return [source for _rate, source in sorted(ranked, key=lambda r: (-r[0], r[1]))[:top]]


def automation_bias(decisions: list[DecisionRecord]) -> list[str]:
    """People who agree with the AI in ≥ 95 % of ≥ 20 decisions."""
    total: dict[str, int] = defaultdict(int)
    agree: dict[str, int] = defaultdict(int)
    for d in decisions:
        if d.by_person:
            total[d.decided_by] += 1
            agree[d.decided_by] += d.kind in AGREEING
    return sorted(p for p, n in total.items() if n >= BIAS_MIN_DECISIONS and agree[p] / n >= BIAS_SHARE)
