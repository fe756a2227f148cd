"""Config validation (every problem names the file and the key path), ``tiermeet config
check``, and property tests of the pure time rules: durations, the shift calendar
across daylight-saving changes, and the hybrid logical clock.
"""

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from conftest import cli_env
from tiermeet.domain import hlc
from tiermeet.domain.durations import END_OF_SHIFT, check_window, parse_duration
from tiermeet.domain.shifts import Shift, ShiftCalendar
from tiermeet.settings import ConfigError, demo_config_text, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "tiermeet.example.toml"
DEMO = ROOT / "tiermeet" / "demo" / "demo.toml"
BERLIN = ZoneInfo("Europe/Berlin")
BASE = demo_config_text()
DEMO_CONFIG = load_config(None)


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def problems(text: str, source: str = "plant.toml") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source)
    assert caught.value.source == source
    assert str(caught.value) == "\n".join(f"{source}: {p}" for p in caught.value.problems)
    return caught.value.problems


DURATION_HINT = "is not a duration; write a number and a unit, e.g. 30m, 4h, 3d, 1h30m"

INVALID = {
    "unknown-top-level-key": ("colour = 'red'\n" + BASE, ["colour: unknown key"]),
    "unknown-nested-key": (edit('name = "Riverside Works"', 'name = "Riverside Works"\ncolour = "red"'), ["plant.colour: unknown key"]),
    "unknown-key-in-list-item": (edit('badge = "100232"', 'badge = "100232"\nshoe_size = 44'), ["people[1].shoe_size: unknown key"]),
    "unknown-key-in-rule": (edit('autonomy = "escalate"', 'autonomy = "escalate"\npriority = 1'), ["governance.rules[0].priority: unknown key"]),
    "tier-unit-missing-line": (edit('scope = "line"', 'scope = "line"\nunits = ["CNC1", "CNC9"]'),
                               ["tiers[0].units: 'CNC9' is not a configured line"]),
    "tier-unit-missing-area": (edit('scope = "area"', 'scope = "area"\nunits = ["paint"]'),
                               ["tiers[1].units: 'paint' is not a configured area"]),
    "duplicate-badge": (edit('badge = "100232"', 'badge = "100231"'), ["people[1].badge: '100231' appears twice (also people[0])"]),
    "duplicate-person-id": (edit('id = "ben"', 'id = "anna"'), ["people[1].id: 'anna' appears twice (also people[0])"]),
    "bad-time-zone": (edit('timezone = "Europe/Berlin"', 'timezone = "Europe/Atlantis"'),
                      ["plant.timezone: 'Europe/Atlantis' is not a known time zone; use an IANA name such as Europe/Berlin"]),
    "time-zone-offset": (edit('timezone = "Europe/Berlin"', 'timezone = "+01:00"'),
                         ["plant.timezone: '+01:00' is not a known time zone; use an IANA name such as Europe/Berlin"]),
    "bad-duration-in-governance-windows": (edit('high = { 1 = "2h"', 'high = { 1 = "2 hours"'),
                                           [f"governance.windows.high.1: '2 hours' {DURATION_HINT}"]),
    "zero-duration": (edit('high = { 1 = "2h"', 'high = { 1 = "0m"'),
                      ["governance.windows.high.1: '0m' is not a duration; it must be longer than zero"]),
    "bad-duration-in-rule-windows": (edit('windows = { critical = { 2 = "15m" } }', 'windows = { critical = { 2 = "quarter hour" } }'),
                                     [f"governance.rules[0].windows.critical.2: 'quarter hour' {DURATION_HINT}"]),
    "window-for-missing-tier": (edit('high = { 1 = "2h"', 'high = { 5 = "1h", 1 = "2h"'),
                                ["governance.windows.high.5: tier 5 does not exist; tiers are 1 to 4"]),
    "rule-unknown-area": (edit('severity = ["critical", "high"]', 'severity = ["critical", "high"]\narea = ["paint"]'),
                          ["governance.rules[0].area: 'paint' is not a configured area"]),
    "rule-unknown-line": (edit('severity = ["critical", "high"]', 'severity = ["critical", "high"]\nline = ["CNC9"]'),
                          ["governance.rules[0].line: 'CNC9' is not a configured line"]),
    "rule-confidence-range": (edit('confidence_min = 0.95', 'confidence_min = 0.95\nconfidence_max = 0.5'),
                              ["governance.rules[1]: confidence_min is greater than confidence_max"]),
    "person-scope": (edit('scope = "CNC2"', 'scope = "CNC9"'), ["people[1].scope: 'CNC9' is not a configured line, area or 'plant'"]),
    "missing-key": (edit('name = "Riverside Works"\n', ''), ["plant.name: required key is missing"]),
    "bad-weekday": (edit('days = ["mon", "tue", "wed", "thu", "fri"]', 'days = ["mon", "tuesday"]'),
                    ["shifts[2].days: 'tuesday' is not a weekday; use mon, tue, wed, thu, fri, sat, sun"]),
    "not-toml": (BASE + "\n[plant\n", None),
    "several-field-problems": (edit('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"',
                                    edit('badge = "100232"', 'badge = "100232"\nshoe_size = 44')),
                               ["plant.timezone: 'Mars/Olympus' is not a known time zone; use an IANA name such as Europe/Berlin",
                                "people[1].shoe_size: unknown key"]),
}


@pytest.mark.parametrize(("text", "expected"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_config_names_file_key_and_reason(text, expected):
    found = problems(text)
    if expected is None:
        assert len(found) == 1 and found[0].startswith("not valid TOML: ")
    else:
        assert found == expected


def test_bad_duration_names_severity_and_tier():
    assert problems(edit('high = { 1 = "2h"', 'high = { 1 = "2 hours"')) == [f"governance.windows.high.1: '2 hours' {DURATION_HINT}"]


def test_cross_reference_problems_are_all_listed_with_item_paths():
    text = edit('badge = "100232"', 'badge = "100231"',
                edit('severity = ["critical", "high"]', 'severity = ["critical", "high"]\narea = ["paint"]'))
    assert problems(text) == ["people[1].badge: '100231' appears twice (also people[0])",
                              "governance.rules[0].area: 'paint' is not a configured area"]


def test_demo_and_example_configs_are_valid():
    demo = load_config(None)
    assert demo.plant.timezone == "Europe/Berlin" and demo.top_tier == 3
    assert load_config(DEMO) == demo
    example = load_config(EXAMPLE)
    assert example.plant.name


def test_missing_config_file():
    with pytest.raises(ConfigError) as caught:
        load_config(Path("/nonexistent/plant.toml"))
    assert str(caught.value) == "/nonexistent/plant.toml: file not found"


def test_config_file_not_utf8(tmp_path):
    path = tmp_path / "plant.toml"
    path.write_bytes(BASE.replace("Riverside Works", "Riversid\xe9 Works").encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].startswith("cannot be read: ")


# --------------------------------------------------------------------------------------
# tiermeet config check
# --------------------------------------------------------------------------------------


def test_config_check_lists_problems_and_exits_1(run_cli, tmp_path):
    path = tmp_path / "plant.toml"
    path.write_text(edit('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"', edit('badge = "100232"', 'badge = "100232"\nshoe_size = 44')),
                    encoding="utf-8")
    result = run_cli("--config", path, "config", "check")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{path}: plant.timezone: 'Mars/Olympus' is not a known time zone; use an IANA name such as Europe/Berlin",
        f"{path}: people[1].shoe_size: unknown key",
    ]
    assert result.stdout == ""


@pytest.mark.parametrize("path", [EXAMPLE, DEMO], ids=["example", "demo"])
def test_config_check_accepts_the_shipped_configs(run_cli, path):
    result = run_cli("--config", path, "config", "check")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"{re.escape(str(path))}: OK — .+: \d+ areas, \d+ lines, \d+ tiers, \d+ people, \d+ rules \(policy [0-9a-f]{{12}}\)\n",
                        result.stdout), result.stdout


def test_config_check_built_in_demo(run_cli):
    result = run_cli("config", "check")
    assert result.returncode == 0
    assert result.stdout.startswith("<built-in demo config>: OK — Riverside Works: 2 areas, 5 lines, 3 tiers, 12 people, 2 rules")


def test_config_env_variable_is_honoured(run_cli, tmp_path):
    path = tmp_path / "env.toml"
    path.write_text(edit('badge = "100232"', 'badge = "100231"'), encoding="utf-8")
    result = run_cli("config", "check", env=cli_env(TIERMEET_CONFIG=str(path)))
    assert (result.returncode, result.stderr) == (1, f"{path}: people[1].badge: '100231' appears twice (also people[0])\n")
    # --config wins over the variable
    result = run_cli("--config", DEMO, "config", "check", env=cli_env(TIERMEET_CONFIG=str(path)))
    assert result.returncode == 0


def test_user_config_file_is_used_when_present(run_cli, tmp_path):
    import os

    user_config = Path(os.environ["XDG_CONFIG_HOME"]) / "tiermeet" / "tiermeet.toml"
    user_config.parent.mkdir(parents=True)
    user_config.write_text(edit('name = "Riverside Works"', 'name = "Hilltop Plant"'), encoding="utf-8")
    result = run_cli("config", "check")
    assert result.returncode == 0
    assert result.stdout.startswith(f"{user_config}: OK — Hilltop Plant:")


def test_other_commands_refuse_an_invalid_config(run_cli, tmp_path, db_path):
    path = tmp_path / "plant.toml"
    path.write_text(edit('timezone = "Europe/Berlin"', 'timezone = "Nowhere/Town"'), encoding="utf-8")
    result = run_cli("--config", path, "--db", db_path, "signals")
    assert result.returncode == 2
    assert result.stderr == f"{path}: plant.timezone: 'Nowhere/Town' is not a known time zone; use an IANA name such as Europe/Berlin\n"
    assert not db_path.exists()


# --------------------------------------------------------------------------------------
# Durations
# --------------------------------------------------------------------------------------

UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1), "s": timedelta(seconds=1)}


@given(st.fixed_dictionaries({}, optional={u: st.integers(0, 500) for u in UNITS}), st.sampled_from(["", " "]), st.booleans())
def test_parse_duration_round_trip(parts, gap, upper):
    expected = sum((UNITS[u] * n for u, n in parts.items()), timedelta())
    text = gap.join(f"{n}{u.upper() if upper else u}" for u, n in parts.items())
    if expected <= timedelta():
        with pytest.raises(ValueError):
            parse_duration(text)
    else:
        assert parse_duration(text) == expected
        assert check_window(text) == text


def canonical(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            out += f"{amount}{unit}"
    return out


@given(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3650)).map(lambda d: timedelta(seconds=int(d.total_seconds()))))
def test_duration_written_canonically_parses_back(delta):
    assume(delta.total_seconds() >= 1)
    assert parse_duration(canonical(delta)) == delta


@pytest.mark.parametrize("text", ["", "30", "m", "30 minutes", "1.5h", "-1h", "1h-", "h1", "30m later", "1y", None, 30])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_end_of_shift_is_a_window():
    assert check_window(END_OF_SHIFT) == END_OF_SHIFT
    with pytest.raises(ValueError):
        check_window("end_of_day")


# --------------------------------------------------------------------------------------
# Shift calendar
# --------------------------------------------------------------------------------------

#: Three shifts every day, the night one spanning both daylight-saving changes of 2026.
EVERY_DAY = [Shift("early", time(6), time(14)), Shift("late", time(14), time(22)), Shift("night", time(22), time(6))]
ENDS = {time(6), time(14), time(22)}
SPRING, AUTUMN = datetime(2026, 3, 29), datetime(2026, 10, 25)


def instants(start: datetime, days: int):
    """UTC instants from local midnight of ``start`` (Berlin) over ``days`` days, to the microsecond."""
    lo = start.replace(tzinfo=BERLIN).astimezone(UTC)
    return st.integers(0, days * 86_400_000_000 - 1).map(lambda us: lo + timedelta(microseconds=us))


@settings(max_examples=400)
@given(st.one_of(instants(SPRING - timedelta(days=1), 3), instants(AUTUMN - timedelta(days=1), 3)))
@example(datetime(2026, 3, 29, 0, 59, tzinfo=UTC))  # 01:59 CET, a minute before the clocks jump
@example(datetime(2026, 3, 29, 1, 0, tzinfo=UTC))  # 03:00 CEST
@example(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 02:30 CEST, first pass
@example(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))  # 02:30 CET, second pass
def test_end_of_shift_on_daylight_saving_days(at):
    calendar = ShiftCalendar(EVERY_DAY, "Europe/Berlin")
    end = calendar.end_of_shift(at)
    assert end.tzinfo is not None
    assert at < end <= at + timedelta(hours=9)  # the autumn night shift lasts 9 hours
    assert end.astimezone(BERLIN).time() in ENDS
    running = calendar.current(at)
    assert running is not None and running.start <= at < running.end == end


@pytest.mark.parametrize(("at", "end"), [
    # the night into spring: 22:00 CET → 06:00 CEST is 7 hours
    (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 29, 4, 0, tzinfo=UTC)),
    # the night into autumn: 22:00 CEST → 06:00 CET is 9 hours
    (datetime(2026, 10, 24, 23, 0, tzinfo=UTC), datetime(2026, 10, 25, 5, 0, tzinfo=UTC)),
    (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), datetime(2026, 10, 25, 5, 0, tzinfo=UTC)),
    # the early shift after the change ends at 14:00 local
    (datetime(2026, 3, 29, 5, 0, tzinfo=UTC), datetime(2026, 3, 29, 12, 0, tzinfo=UTC)),
    (datetime(2026, 10, 25, 6, 0, tzinfo=UTC), datetime(2026, 10, 25, 13, 0, tzinfo=UTC)),
])
def test_end_of_shift_examples(at, end):
    assert ShiftCalendar(EVERY_DAY, "Europe/Berlin").end_of_shift(at) == end


@settings(max_examples=400)
@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)))
@example(datetime(2026, 11, 28, 22, 30, tzinfo=UTC))  # Saturday night: no night shift in the demo plant
@example(datetime(2026, 3, 28, 21, 30, tzinfo=UTC))
def test_demo_plant_end_of_shift_within_a_day(at):
    config = DEMO_CONFIG
    calendar = config.calendar
    end = calendar.end_of_shift(at)
    assert at < end <= at + timedelta(hours=24)
    local_end = end.astimezone(BERLIN).time()
    assert local_end in {s.end for s in config.shifts}


def test_gap_between_shifts_gives_the_next_shifts_end(config):
    saturday_night = datetime(2026, 11, 28, 22, 30, tzinfo=BERLIN)
    assert config.calendar.current(saturday_night) is None
    assert config.calendar.end_of_shift(saturday_night) == datetime(2026, 11, 29, 14, 0, tzinfo=BERLIN)


def test_shift_ending_inside_the_spring_gap_moves_past_it():
    calendar = ShiftCalendar([Shift("short-night", time(22), time(2, 30))], "Europe/Berlin")
    end = calendar.end_of_shift(datetime(2026, 3, 28, 22, 0, tzinfo=UTC))
    assert end.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)


# --------------------------------------------------------------------------------------
# Hybrid logical clock
# --------------------------------------------------------------------------------------

WALL = st.integers(0, 2**47)
STAMPS = st.builds(hlc.Timestamp, WALL, st.integers(0, hlc.COUNTER_MAX))


@settings(max_examples=300)
@given(st.lists(WALL | st.sampled_from([0, 1, 2**47]), min_size=1, max_size=200), STAMPS)
def test_tick_is_strictly_monotone_under_any_wall_clock(walls, start):
    last = start
    for wall in walls:
        now = hlc.tick(last, wall)
        assert now > last
        assert now.l >= wall
        assert hlc.Timestamp.unpack(now.pack()) == now
        assert now.pack() > last.pack()  # string order is time order
        last = now


def test_tick_counter_overflow_moves_the_millisecond():
    last = hlc.Timestamp(1000, hlc.COUNTER_MAX)
    assert hlc.tick(last, 1000) == hlc.Timestamp(1001, 0)
    assert hlc.tick(last, 5) == hlc.Timestamp(1001, 0)  # wall clock went back


@settings(max_examples=500)
@given(STAMPS, STAMPS, WALL)
def test_receive_moves_past_both_and_clamps_far_future(last, remote, wall):
    out = hlc.receive(last, remote, wall)
    limit = hlc.Timestamp(wall + hlc.MAX_DRIFT_MS, 0)
    clamped = min(remote, limit)
    assert out > last
    assert out > clamped
    assert out.l >= wall
    # a remote far ahead cannot drag us further than the drift allowance
    assert out.l <= max(last.l, wall + hlc.MAX_DRIFT_MS) + 1
    if remote.l <= wall:
        assert out > remote


def test_receive_clamps_a_clock_from_the_future():
    wall = 1_764_000_000_000
    remote = hlc.Timestamp(wall + 86_400_000, 7)  # a kiosk a day ahead
    out = hlc.receive(hlc.ZERO, remote, wall)
    assert out <= hlc.Timestamp(wall + hlc.MAX_DRIFT_MS, 1)
    assert out > hlc.Timestamp(wall, 0)


@given(STAMPS, STAMPS)
def test_packed_order_is_timestamp_order(a, b):
    assert (a < b) == (a.pack() < b.pack())
    assert len(a.pack()) == 16


def test_windows_left_out_keep_their_defaults():
    config = parse_config(edit('low = { 1 = "1d", 2 = "3d", 3 = "7d" }', 'low = { 1 = "2d" }'), "plant.toml")
    assert config.governance.windows["low"] == {1: "2d", 2: "3d", 3: "7d", 4: "14d"}


#: Shift patterns that overlap, leave gaps, start at the same time, and skip days.
_CLOCK = st.builds(time, st.integers(0, 23), st.sampled_from([0, 30]))
_PATTERNS = st.lists(st.builds(Shift, st.sampled_from(["a", "b", "c"]), _CLOCK, _CLOCK,
                               st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
                                        min_size=1, max_size=7, unique=True).map(tuple)),
                     min_size=1, max_size=4)


@settings(max_examples=300)
@given(_PATTERNS, st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)))
def test_running_shift_and_its_end_match_their_definition(shifts, at):
    """The shift running at a moment is the latest-starting of those running (the last in
    start order), and between shifts the end of shift is that of the next one to start,
    however the patterns overlap."""
    assume(all(s.start != s.end for s in shifts))
    calendar = ShiftCalendar(shifts, "Europe/Berlin")
    spans = calendar.spans_around(at)
    running = [s for s in spans if s.start <= at < s.end]
    assert calendar.current(at) == (running[-1] if running else None)
    upcoming = [s for s in spans if s.start > at]
    if running or upcoming:
        assert calendar.end_of_shift(at) == (running[-1] if running else upcoming[0]).end
    else:
        with pytest.raises(ValueError, match="no shift within two days"):
            calendar.end_of_shift(at)
