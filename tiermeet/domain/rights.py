"""Who may do what, at which tiers: the role rules of the decision-rights policy.

A plant grants each governed act — deciding, closing (resolve and dismiss), reopening,
shelving, suspending a model's autonomy — to roles, optionally only at some tiers.
A refusal names the rule (``governance.rights.reopen``) so a supervisor can find it.
"""

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tiermeet.domain.durations import parse_duration
from tiermeet.domain.enums import Role
from tiermeet.domain.errors import DomainError

EVERYONE = list(Role)
LEADS = [Role.SHIFT_LEAD, Role.ENGINEER, Role.SUPERVISOR, Role.MANAGER, Role.ADMIN]
BOSSES = [Role.SUPERVISOR, Role.MANAGER, Role.ADMIN]


class Right(BaseModel):
    """Roles granted one act, at some tiers (empty: every tier)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roles: list[Role]
    tiers: list[int] = []

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, value: list[int]) -> list[int]:
        bad = [t for t in value if not 1 <= t <= 4]
        if bad:
            raise ValueError(f"tier {bad[0]} does not exist; tiers are 1 to 4")
        return value


class Rights(BaseModel):
    """The role rules; defaults suit a plant that has not written its own yet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decide: Right = Right(roles=EVERYONE)
    close: Right = Right(roles=EVERYONE)
    reopen: Right = Right(roles=BOSSES)
    shelve: Right = Right(roles=LEADS)
    suspend_model: Right = Right(roles=BOSSES)
    max_shelve: str = Field(default="7d", description="The longest a signal may be shelved.")

    @field_validator("max_shelve")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


def check(rights: Rights, act: str, *, role: str | None, tier: int | None, who: str) -> None:
    """Raise a DomainError naming the rule when ``who`` (of ``role``) may not ``act`` at ``tier``.
    System actors (role None: the sweep, an autonomous model) are governed by the policy itself."""
    if role is None:
        return
    right: Right = getattr(rights, act)
    verb = act.replace("_", " ")
    if role not in right.roles:
        allowed = ", ".join(r.value.replace("_", " ") for r in right.roles)
        raise DomainError(f"{who} ({role.replace('_', ' ')}) may not {verb} — rule governance.rights.{act} allows: {allowed}")
    if tier is not None and right.tiers and tier not in right.tiers:
        tiers = ", ".join(str(t) for t in right.tiers)
        raise DomainError(f"{who} may not {verb} at tier {tier} — rule governance.rights.{act} allows tiers {tiers}")
