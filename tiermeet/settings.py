"""The plant's configuration: a TOML file validated into typed settings (design.md §4).

Validation is strict — unknown keys are errors — and every problem is reported with the
file and the key path (``people[3].badge``), so a plant engineer can fix the file without
reading code. ``config/tiermeet.example.toml`` documents every key.
"""

import tomllib
from datetime import time
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tiermeet.domain.enums import Role
from tiermeet.domain.policy import Governance
from tiermeet.domain.shifts import WEEKDAYS, Shift, ShiftCalendar

PLANT_SCOPE = "plant"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Plant(_Strict):
    """The site this database belongs to."""

    id: str = Field(default="plant", pattern=r"^[A-Za-z0-9_.-]+$", description="Short id used in sync tokens.")
    name: str
    timezone: str = Field(description="IANA zone, e.g. Europe/Berlin; times without an offset are read in it.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone; use an IANA name such as Europe/Berlin") from None
        return value


class Line(_Strict):
    """A line or work centre."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    name: str


class Area(_Strict):
    """An area of the plant and its lines."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    name: str
    lines: list[Line] = []


class TierConfig(_Strict):
    """A meeting tier: its level, who it covers and when it meets."""

    level: int = Field(ge=1, le=4)
    name: str
    scope: Literal["line", "area", "plant"]
    units: list[str] = Field(default=[], description="Lines or areas holding this tier's meeting; empty = all.")
    meeting_time: time | None = None
    meeting_minutes: int = Field(default=15, ge=1, le=240)


class ShiftConfig(_Strict):
    """A shift pattern in plant local time; an end before the start means overnight."""

    name: str
    start: time
    end: time
    days: list[str] = list(WEEKDAYS)

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        bad = [d for d in value if d not in WEEKDAYS]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a weekday; use {', '.join(WEEKDAYS)}")
        return value


class Person(_Strict):
    """Someone who may sign in, decide and own actions."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    name: str
    badge: str
    role: Role
    scope: str = Field(default=PLANT_SCOPE, description="A line id, an area id or 'plant'.")


class SyncConfig(_Strict):
    """Where this plant syncs to; empty when it runs alone."""

    server_url: str | None = None
    token_file: Path | None = None
    interval_seconds: int = Field(default=30, ge=5)


class KioskConfig(_Strict):
    """What a kiosk opens on and how it locks."""

    device_name: str | None = Field(default=None, min_length=1, max_length=100,
                                    description="How the audit log names this kiosk (default: its host name).")
    tier: int | None = Field(default=None, ge=1, le=4)
    scope: str | None = None
    idle_lock_minutes: int = Field(default=5, ge=1)


class Config(_Strict):
    """The whole plant configuration."""

    plant: Plant
    areas: list[Area]
    tiers: list[TierConfig]
    shifts: list[ShiftConfig]
    people: list[Person] = []
    governance: Governance = Governance()
    sync: SyncConfig = SyncConfig()
    kiosk: KioskConfig = KioskConfig()

    @model_validator(mode="after")
    def _references(self) -> "Config":
        """Checks across sections; every problem is reported, each with its key path."""
        problems: list[str] = []
        areas = {a.id for a in self.areas}
        lines = [ln.id for a in self.areas for ln in a.lines]
        problems += _duplicates([(f"areas[{i}].id", a.id) for i, a in enumerate(self.areas)])
        problems += _duplicates([(f"areas[{i}].lines[{j}].id", ln.id) for i, a in enumerate(self.areas)
                                 for j, ln in enumerate(a.lines)])
        problems += [f"areas: {c!r} is both an area and a line id" for c in sorted(areas & set(lines))]
        problems += _duplicates([(f"tiers[{i}].level", t.level) for i, t in enumerate(self.tiers)])
        if not self.tiers:
            problems.append("tiers: at least one tier is needed")
        for i, tier in enumerate(self.tiers):
            known = set(lines) if tier.scope == "line" else areas if tier.scope == "area" else set()
            kind = "line" if tier.scope == "line" else "area" if tier.scope == "area" else "unit (plant tiers take none)"
            problems += [f"tiers[{i}].units: {unit!r} is not a configured {kind}" for unit in tier.units if unit not in known]
        problems += _duplicates([(f"people[{i}].id", p.id) for i, p in enumerate(self.people)])
        problems += _duplicates([(f"people[{i}].badge", p.badge) for i, p in enumerate(self.people)])
        problems += [f"people[{i}].scope: {p.scope!r} is not a configured line, area or 'plant'"
                     for i, p in enumerate(self.people) if p.scope != PLANT_SCOPE and p.scope not in areas and p.scope not in lines]
        for i, rule in enumerate(self.governance.rules):
            problems += [f"governance.rules[{i}].area: {a!r} is not a configured area" for a in rule.area if a not in areas]
            problems += [f"governance.rules[{i}].line: {ln!r} is not a configured line" for ln in rule.line if ln not in lines]
        if not self.shifts:
            problems.append("shifts: at least one shift is needed for end_of_shift windows")
        if self.kiosk.scope is not None and self.kiosk.scope not in areas | set(lines) | {PLANT_SCOPE}:
            problems.append(f"kiosk.scope: {self.kiosk.scope!r} is not a configured line, area or 'plant'")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # Derived lookups used all over the services; computed once per config.
    @cached_property
    def line_area(self) -> dict[str, str]:
        """Line id → the id of the area it belongs to."""
        return {ln.id: a.id for a in self.areas for ln in a.lines}

    @cached_property
    def top_tier(self) -> int:
        """The highest tier this plant runs; escalations stop there."""
        return max(t.level for t in self.tiers)

    @cached_property
    def calendar(self) -> ShiftCalendar:
        """The shift calendar in the plant's time zone."""
        shifts = [Shift(s.name, s.start, s.end, tuple(s.days)) for s in self.shifts]
        return ShiftCalendar(shifts, self.plant.timezone)

    def tier(self, level: int) -> TierConfig | None:
        """The configured tier at ``level``, if the plant runs one."""
        return next((t for t in self.tiers if t.level == level), None)


def _duplicates(keyed: list[tuple[str, object]]) -> list[str]:
    """A problem for each value that appeared before, named by its own key path."""
    first: dict = {}
    problems = []
    for key, value in keyed:
        if value in first:
            problems.append(f"{key}: {value!r} appears twice (also {first[value]})")
        else:
            first[value] = key.rsplit(".", 1)[0]
    return problems


class ConfigError(Exception):
    """The config file cannot be used; ``problems`` lists each one as ``file: key: reason``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def _key_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and (p.startswith("function-") or p == "[key]")))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        key = _key_path(loc)
        problems += [f"{key}: {line}" if key else line for line in message.splitlines()]
    return problems


def parse_config(text: str, source: str) -> Config:
    """Validate TOML text into a Config, or raise ConfigError naming ``source`` and each key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from None


def load_config(path: Path | None) -> Config:
    """The config at ``path``, or the built-in demo plant's when ``path`` is None."""
    if path is None:
        return parse_config(demo_config_text(), "<built-in demo config>")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot be read: {exc}"]) from None
    return parse_config(text, str(path))


def demo_config_text() -> str:
    """The demo plant's config, shipped inside the package."""
    return resources.files("tiermeet.demo").joinpath("demo.toml").read_text(encoding="utf-8")
