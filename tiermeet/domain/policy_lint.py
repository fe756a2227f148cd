"""Warnings about a policy that validates but does not do what its author meant.

Rules are tried in order and the first match wins, so a rule that an earlier rule
covers entirely can never match: its autonomy, tier and windows are dead letters.
"""

from tiermeet.domain.policy import Governance, Rule

MATCH_LISTS = ("category", "severity", "source", "kind", "area", "line")


def _covers(earlier: Rule, later: Rule) -> bool:
    """True when every signal ``later`` matches is matched by ``earlier`` too."""
    for name in MATCH_LISTS:
        wide, narrow = getattr(earlier, name), getattr(later, name)
        if wide and (not narrow or not set(narrow) <= set(wide)):
            return False
    if earlier.confidence_min is not None and (later.confidence_min is None or later.confidence_min < earlier.confidence_min):
        return False
    if earlier.confidence_max is not None and (later.confidence_max is None or later.confidence_max > earlier.confidence_max):
        return False
    return True


def shadowed_rules(policy: Governance) -> list[str]:
    """One warning per rule that can never match, naming the rule that covers it."""
    warnings = []
    for i, later in enumerate(policy.rules):
        for j, earlier in enumerate(policy.rules[:i]):
            if _covers(earlier, later):
                warnings.append(f"governance.rules[{i}] ({later.name!r}) can never match: "
                                f"governance.rules[{j}] ({earlier.name!r}) comes first and covers every signal it matches")
                break
    return warnings
