"""The closed vocabularies of tiermeet (design.md §1–§3).

``StrEnum`` values are what is stored in the database and written in files, so they
never change once shipped; new members may be added.
"""

from enum import IntEnum, StrEnum


class Category(StrEnum):
    """SQDC(+P) category of a signal: what part of the business it threatens."""

    SAFETY = "safety"
    QUALITY = "quality"
    DELIVERY = "delivery"
    COST = "cost"
    PEOPLE = "people"


class Severity(StrEnum):
    """How bad it is if nobody acts; orders the board after time left."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for critical … 3 for low, so an ascending sort puts the worst first."""
        return SEVERITY_RANK[self]


SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}


class SignalKind(StrEnum):
    """What kind of AI output the signal is."""

    ANOMALY = "anomaly"
    PREDICTION = "prediction"
    DETECTION = "detection"
    RECOMMENDATION = "recommendation"


class SignalStatus(StrEnum):
    """Lifecycle state of a signal at its current tier (design.md §2)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ACTIONED = "actioned"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"
    SHELVED = "shelved"


#: Statuses that put a signal on a tier board: someone still has to do something.
ACTIVE_STATUSES = (SignalStatus.OPEN, SignalStatus.ACKNOWLEDGED, SignalStatus.ACTIONED)


class DecisionKind(StrEnum):
    """What a person (or an autonomous model) decided about a signal."""

    ACT = "act"
    MONITOR = "monitor"
    DISMISS = "dismiss"
    SHELVE = "shelve"
    ESCALATE = "escalate"


class Disposition(StrEnum):
    """Why a signal was dismissed; feeds the per-model false-positive rate."""

    FALSE_POSITIVE = "false_positive"
    DUPLICATE = "duplicate"
    NOT_ACTIONABLE = "not_actionable"


class ActionStatus(StrEnum):
    """Lifecycle of follow-up work. Ordered as a lattice for sync (sync-protocol §2.6)."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    VERIFIED = "verified"
    CANCELLED = "cancelled"


class Autonomy(StrEnum):
    """Decision rights for a kind of signal (design.md §3)."""

    AUTONOMOUS = "autonomous"
    SIGN_OFF = "sign_off"
    ESCALATE = "escalate"


class Role(StrEnum):
    """What a person does in the plant; the governance rules grant rights by role."""

    OPERATOR = "operator"
    SHIFT_LEAD = "shift_lead"
    ENGINEER = "engineer"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    ADMIN = "admin"


class Tier(IntEnum):
    """Meeting tiers: 1 line team, 2 area, 3 plant, 4 enterprise."""

    LINE = 1
    AREA = 2
    PLANT = 3
    ENTERPRISE = 4


class CommentTarget(StrEnum):
    """What a comment is attached to."""

    SIGNAL = "signal"
    ACTION = "action"
