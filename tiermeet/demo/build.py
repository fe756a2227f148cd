"""The demo plant's history: two weeks of AI signals, decisions, actions, escalations and
meetings at Riverside Works, written through the services so that every change has its
audit entry and its sync mutation, as if the plant had run tiermeet for fourteen days.

How it works. The builder first plans the life of every signal in plain Python: when a
model detects it, who looks at it, what they decide and when, whether the response
window is kept or breached (a breach is swept up a tier, as the sweep does), how the
follow-up action goes and what resolving it achieved. Then it replays all planned steps in
time order through a second set of services, on a scratch database, whose clock it moves
forward step by step; the finished scratch database is copied into place in one step.
Steps that would fall after "now" are not replayed, so the latest signals are still open
on today's boards, some with their windows about to close or already closed. A seeded
random generator makes the plant the same on every build, apart from where "now" falls.

Data credit. The predictive-maintenance signals (``pdm-spindle``, ``pdm-toolwear``) are
built from real machine readings of the AI4I 2020 Predictive Maintenance Dataset:
S. Matzka, "Explainable Artificial Intelligence for Predictive Maintenance Applications",
Third International Conference on Artificial Intelligence for Industries (AI4I 2020);
published in the UCI Machine Learning Repository under the Creative Commons Attribution
4.0 International licence (CC BY 4.0). ``ai4i_sample.csv`` beside this module is an
unchanged subset of it (all 339 failure rows and 180 normal ones); each signal made from a
row names the row's UDI in its ``extra`` fields. A failure row becomes a genuine signal, a
normal row a false alarm (or, for tool wear, a routine tool change), so the per-model
false-positive rates on the demo board come from the data's own labels.
"""

import csv
import io
import math
import random
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import event, func, select, tuple_

from tiermeet.domain import rights
from tiermeet.domain.clock import FixedClock
from tiermeet.domain.durations import END_OF_SHIFT, parse_duration
from tiermeet.domain.enums import Autonomy, DecisionKind, Disposition
from tiermeet.domain.errors import DomainError
from tiermeet.domain.policy import SignalFacts, place, response_deadline, window_for
from tiermeet.ingest.readers import Row
from tiermeet.services.bundle import Services, open_services
from tiermeet.services.ingest import INGEST_ACTOR
from tiermeet.services.requests import ActionSpec, Outcome
from tiermeet.settings import PLANT_SCOPE, Config
from tiermeet.store.engine import write_session
from tiermeet.store.migrate import backup
from tiermeet.store.models import Action, Meeting, Signal, SyncState

#: The sync_state key that says this database holds the demo plant (value: when it was built).
MARKER = "demo_built"
SEED = 20201125
DAYS = 14
#: Tier meetings are recorded for the working days of the last ``MEETING_DAYS`` days.
MEETING_DAYS = 7
#: The sweep runs every two hours; a breached window is escalated at the next run.
SWEEP_EVERY = timedelta(hours=2)
SWEEP_ACTOR = "system:sweep"
DEVICE = "demo-builder"
ORIGIN = "demo"


def _scratch_pragmas(dbapi_connection, _record) -> None:
    """The scratch database is thrown away if anything goes wrong, so its commits need
    not wait for the disk: the build makes about two thousand small ones, and waiting on
    each doubled the build time on a busy machine. Durability comes from the one backup
    into the real database at the end."""
    dbapi_connection.execute("PRAGMA synchronous=OFF")


MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)

# ---------------------------------------------------------------------------------------
# The plant's machines and parts (the demo config's lines).

#: Line → (machine, spindle) pairs watched by the predictive-maintenance models.
MACHINES = {
    "CNC1": [("CNC1-M01", "SP-101"), ("CNC1-M02", "SP-102"), ("CNC1-M03", "SP-103")],
    "CNC2": [("CNC2-M01", "SP-201"), ("CNC2-M02", "SP-202"), ("CNC2-M03", "SP-203")],
    "GRIND": [("GR-301", "GR-301"), ("GR-302", "GR-302")],
}
#: Line → part made there, by AI4I product grade (L, M, H).
PARTS = {
    "CNC1": {"L": "flange 2210-A", "M": "housing 4471-B", "H": "housing 4471-H"},
    "CNC2": {"L": "cover 5102-D", "M": "shaft 3308-C", "H": "shaft 3308-H"},
    "GRIND": {"L": "pin 6120-E", "M": "shaft 3308-C", "H": "shaft 3308-H"},
    "ASM1": {"L": "pump unit PU-40", "M": "pump unit PU-40", "H": "pump unit PU-60"},
    "PACK": {"L": "PU-40 cartons", "M": "PU-40 cartons", "H": "PU-60 cartons"},
}
#: Line → signals per normal production day, and the share of each model.
VOLUME = {"CNC1": 11, "CNC2": 11, "GRIND": 10, "ASM1": 10, "PACK": 8}
MODEL_MIX = {
    "CNC1": {"pdm-spindle": 36, "pdm-toolwear": 24, "vision-qc": 24, "yield-model": 16},
    "CNC2": {"pdm-spindle": 36, "pdm-toolwear": 24, "vision-qc": 24, "yield-model": 16},
    "GRIND": {"pdm-spindle": 34, "pdm-toolwear": 22, "vision-qc": 26, "yield-model": 18},
    "ASM1": {"vision-qc": 60, "yield-model": 40},
    "PACK": {"vision-qc": 55, "yield-model": 45},
}
VERSIONS = {"pdm-spindle": "2.3.1", "pdm-toolwear": "1.8.0", "vision-qc": "4.1.2", "yield-model": "0.9.4"}
#: vision-qc was upgraded a week ago; its signals since then carry the new version.
VISION_UPGRADE = ("4.2.0", timedelta(days=7))
PREFIX = {"pdm-spindle": "pdms", "pdm-toolwear": "pdmt", "vision-qc": "vqc", "yield-model": "yld", "manual": "man"}

#: Chance a tier decides within its window, joins a meeting's decisions when one falls in
#: the window, and acknowledges before deciding.
IN_WINDOW = {1: 0.9, 2: 0.9, 3: 0.92}
AT_MEETING = {1: 0.55, 2: 0.75, 3: 0.85}
ACKNOWLEDGE = {1: 0.14, 2: 0.15, 3: 0.4}


# ---------------------------------------------------------------------------------------
# What people say and do about each kind of signal.

@dataclass(frozen=True)
class Texts:
    """The words around one kind of signal: why act, what to do, what came of it."""

    act: str
    action: str
    owner: str  # operator | lead | engineer
    due_hours: tuple[float, float]
    resolved: str
    outcome: str  # downtime | scrap | yield | none
    false_alarm: str
    monitor: str
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Theme:
    """A kind of non-PdM signal: its payload templates and the words around it."""

    title: str
    detail: str
    suggested: str
    category: str
    severities: tuple[str, ...]
    kind: str
    genuine: float
    texts: Texts
    asset: str = ""


VISION = {
    "machining": [
        Theme("Burr on bore edge of {part}: {n} of the last 50 parts flagged by camera {cam}",
              "Edge camera {cam} after the deburring station sees a raised burr on the Ø32 bore edge. "
              "Flagged parts are diverted to the red bin; {n} of the last 50.",
              "Check deburring tool and its chamfer offset; re-inspect the red bin before scrapping.",
              "quality", ("medium", "medium", "high", "low"), "detection", 0.75,
              Texts("Burr confirmed on flagged parts; deburr tool worn.", "Replace the deburring tool and re-inspect the red-bin parts",
                    "operator", (2, 8), "Deburring tool replaced; 31 of 40 held parts reworked, 9 scrapped.", "scrap",
                    "Re-inspected with a magnifier: chips on the part, not a burr. Camera lens needs cleaning.",
                    "Burr height is inside drawing limit; watch the next shift.",
                    ("Deburr tool has run 3,100 parts; standard life is 2,500.", "Held parts are in the red bin by the washer."))),
        Theme("Chatter marks on sealing face of {part} from {machine}",
              "Surface camera sees a regular chatter pattern on the sealing face (Ra estimate {ra} µm, limit 1.6 µm) "
              "on parts from {machine}.",
              "Check tool overhang and insert seat on the face-milling tool; measure Ra on the next part.",
              "quality", ("high", "medium"), "detection", 0.7,
              Texts("Chatter visible on the part; sealing face at risk.", "Shorten tool overhang on the face mill of {machine} and measure Ra",
                    "operator", (2, 6), "Overhang reduced by 8 mm; Ra back to 0.9 µm. Parts from the last hour sorted.", "scrap",
                    "Ra measured 1.1 µm on three parts; reflection from coolant film fooled the camera.",
                    "Ra 1.4 µm, inside limit; measure every 20 parts this shift.",
                    ("Insert seat has a small dent; using the spare holder.", "Customer returns last month were for the same face."))),
        Theme("Chips trapped in thread of {part} after washing",
              "Vision check after the washer finds chips in the M8 threads of {n} parts in the last hour.",
              "Check washer nozzles and the thread-blowing station; blow out held parts.",
              "quality", ("low", "medium"), "detection", 0.65,
              Texts("Chips confirmed; washer nozzle blocked.", "Clean washer nozzles and check the air pressure of the blow-off station",
                    "operator", (2, 8), "Nozzle 3 was blocked; cleaned. No chips since.", "scrap",
                    "Blown out and re-checked: threads clean. Water droplets detected as chips.",
                    "Only one part; watch the washer output this shift.",
                    ("Washer filter due for change on Friday.",))),
    ],
    "GRIND": [
        Theme("Grinding burn suspected on bearing seat of {part} ({n} parts)",
              "Colour camera after the grinder sees temper discoloration on the bearing seat of {n} parts from {machine}.",
              "Dress the wheel, check coolant nozzle aim, and send two parts for nital etch.",
              "quality", ("high", "high", "critical", "medium"), "detection", 0.7,
              Texts("Burn risk confirmed; stop and dress the wheel, parts on hold.", "Nital-etch two parts from {machine} and dress the wheel",
                    "engineer", (2, 8), "Etch showed light burn on 2 parts; coolant nozzle re-aimed, wheel dressed. 60 parts sorted.", "scrap",
                    "Etch test clean on both parts; discoloration was coolant residue.",
                    "Discoloration faint; etch one part per hour this shift.",
                    ("Coolant nozzle was knocked during the wheel change.", "Holding the last 60 parts in cage 4."))),
        Theme("Spiral marks on ground diameter of {part} from {machine}",
              "Surface camera sees a spiral feed pattern on the Ø25 diameter; roughness estimate {ra} µm.",
              "Check wheel dressing and traverse speed; measure roughness on the next part.",
              "quality", ("medium", "low"), "detection", 0.65,
              Texts("Feed marks visible; dress and slow the traverse.", "Dress the wheel on {machine} and reduce spark-out traverse speed",
                    "operator", (2, 6), "Wheel dressed, traverse reduced 10 %; marks gone.", "scrap",
                    "Roughness measured 0.3 µm, fine; lighting reflection.",
                    "Marks faint, roughness in limit; check next dressing cycle.",
                    ("Dresser diamond rotated 90° last week.",))),
    ],
    "ASM1": [
        Theme("Surface scratch on housing cover of {part}: {n} parts in the last hour",
              "Cover camera at ST04 sees scratches longer than 5 mm on the visible face of {n} covers in the last hour.",
              "Check the gripper pads on the transfer robot and the cover fixture for debris.",
              "quality", ("medium", "medium", "high", "low"), "detection", 0.72,
              Texts("Scratches confirmed; customer-visible face.", "Replace gripper pads on the ST04 transfer robot and clean the cover fixture",
                    "operator", (2, 8), "Gripper pad torn; replaced. 22 covers reworked, 4 scrapped.", "scrap",
                    "Looked at all flagged covers: marks are protective-film edges, not scratches.",
                    "Scratches short and outside the A-surface; keep watching.",
                    ("Pad on gripper 2 is torn at the corner.", "Same scratch reported by the customer's incoming inspection.")), asset="ST04"),
        Theme("O-ring missing or twisted at station ST06 ({n} detections)",
              "Camera at ST06 cannot find the O-ring in the groove, or sees it twisted, on {n} pump units.",
              "Stop and check the O-ring feeder and the grease dispenser; leak-test every flagged unit.",
              "quality", ("high", "high", "critical"), "detection", 0.78,
              Texts("Missing O-ring means a leaking pump; contain now.", "Check the O-ring feeder at ST06 and leak-test all flagged units",
                    "operator", (1, 4), "Feeder track bent; straightened. All 9 flagged units reworked before leak test.", "scrap",
                    "O-rings present on all units; new black O-ring batch has low contrast for the camera.",
                    "Single detection; check every unit by hand for an hour.",
                    ("New O-ring batch since this morning.", "Grease dispenser nozzle is dripping.")), asset="ST06"),
        Theme("Connector not fully seated on harness at ST09: latch gap {gap} mm",
              "Camera at ST09 measures a latch gap of {gap} mm (limit 0.3 mm) on the motor connector.",
              "Re-seat flagged connectors and check the press-in tool force.",
              "quality", ("medium", "low"), "detection", 0.6,
              Texts("Loose connector gives field failures; re-seat and fix the tool.", "Check press-in force of the connector tool at ST09",
                    "lead", (4, 12), "Press-in tool spring worn; replaced. Gaps back under 0.1 mm.", "scrap",
                    "Latch checked by hand on all flagged units: fully seated. Camera angle shifted.",
                    "Gaps at 0.25 mm, under limit; check again after the break.",
                    ("Camera bracket at ST09 was bumped during cleaning.",)), asset="ST09"),
    ],
    "PACK": [
        Theme("Label misprint on cartons: batch code smeared on {n} of the last 200 labels",
              "Label camera after PK-LAB1 cannot read the batch code on {n} of the last 200 labels (print contrast low).",
              "Clean the print head of labeller PK-LAB1 and check the ribbon; re-label cartons in the buffer.",
              "quality", ("medium", "medium", "low"), "detection", 0.75,
              Texts("Smeared batch codes break traceability; fix and re-label.", "Clean the PK-LAB1 print head, change the ribbon and re-label the buffer",
                    "operator", (1, 4), "Print head cleaned and ribbon changed; 38 cartons re-labelled.", "scrap",
                    "Codes readable by eye and by the hand scanner; camera exposure too low after the lamp change.",
                    "Few labels; check one label in fifty this shift.",
                    ("Ribbon is a new supplier since Monday.",)), asset="PK-LAB1"),
        Theme("Barcode grade C on shipping labels from PK-LAB1",
              "Verifier grades the SSCC barcode C (customer requires B or better) on {n} labels.",
              "Adjust print darkness and speed on PK-LAB1; re-verify the next ten labels.",
              "delivery", ("medium", "low", "high"), "detection", 0.7,
              Texts("Customer rejects grade C at the dock; fix before the truck.", "Adjust print darkness on PK-LAB1 and re-verify ten labels",
                    "lead", (1, 4), "Darkness +2, speed -10 %; grade A on ten labels.", "yield",
                    "Re-verified: grade B. Verifier was not calibrated this week.",
                    "Grade B/C borderline; verify every pallet label.",
                    ()), asset="PK-LAB1"),
        Theme("Carton flap open at exit of carton erector PK-CE1",
              "Camera at the erector exit sees the bottom flap unglued on {n} cartons in the last hour.",
              "Check the glue nozzles and glue temperature on PK-CE1.",
              "quality", ("low", "medium"), "detection", 0.6,
              Texts("Open flaps cause jams and damaged goods; fix the gluing.", "Clean glue nozzles on PK-CE1 and check glue temperature",
                    "operator", (2, 8), "Nozzle 2 clogged; cleaned. No open flaps since.", "scrap",
                    "Flaps checked: glued. Glue bead fainter with the new carton board.",
                    "A few flaps only; watch for jams.",
                    ()), asset="PK-CE1"),
    ],
}

YIELD = {
    "machining": [
        Theme("First-pass yield forecast for {part} below target: {fpy} % vs 97 %",
              "Yield model forecasts first-pass yield of {fpy} % for the rest of the shift from the last 4 h of gauge data "
              "(drift on the Ø32 bore).",
              "Review the offsets of op 20 and the last tool changes; add a gauge check every 10 parts.",
              "quality", ("medium", "medium", "high", "low"), "prediction", 0.7,
              Texts("Bore drifting towards the limit; correct now.", "Correct the op 20 bore offset on {machine} and gauge every 10 parts",
                    "operator", (1, 6), "Offset corrected by 8 µm; FPY back to 98.6 % by end of shift.", "yield",
                    "Gauge data re-checked: the drift was a gauge master swap, not the parts.",
                    "Trend flat over the last hour; recheck at mid-shift.",
                    ("Gauge master was changed at 06:40.",))),
        Theme("Scrap rate on op 20 trending up: {scrap} % over the last 4 h vs 1.1 % baseline",
              "Yield model sees scrap at op 20 rising for three consecutive hours; main reason code: bore oversize.",
              "Check the boring bar insert and the thermal compensation of {machine}.",
              "cost", ("medium", "low"), "anomaly", 0.65,
              Texts("Scrap cost adding up; find the cause this shift.", "Check the boring bar insert and thermal compensation on {machine}",
                    "engineer", (4, 24), "Thermal comp table restored after the controller update; scrap at 0.9 %.", "yield",
                    "Scrap came from a single bad bar of material, already quarantined.",
                    "Rising but below 2 %; review at the next huddle.",
                    ("Controller had a software update on Sunday.",))),
    ],
    "GRIND": [
        Theme("Diameter drift on OD grinding of {part}: Cpk down to {cpk}",
              "Yield model sees the Ø25 diameter drifting +3 µm per hour on {machine}; Cpk over the last 100 parts {cpk}.",
              "Re-zero the in-process gauge and check wheel-head thermal growth; tighten the compensation interval.",
              "quality", ("high", "medium"), "prediction", 0.7,
              Texts("Capability falling; correct before parts go out of tolerance.", "Re-zero the in-process gauge on {machine} and shorten the compensation interval",
                    "engineer", (2, 12), "Gauge re-zeroed, compensation every 5 parts; Cpk 1.67 again.", "yield",
                    "Drift was the warm-up after the weekend stop; stable after an hour.",
                    "Cpk 1.3 and stable; watch.",
                    ("Hall temperature dropped 4 K overnight.",))),
    ],
    "ASM1": [
        Theme("Torque drift on fastening station ST05 spindle {sp}: mean {m} Nm vs 12.0 Nm target",
              "Yield model sees the mean final torque of ST05 spindle {sp} drifting down over 300 cycles "
              "(mean {m} Nm, target 12.0 ± 0.6 Nm); no NOK results yet.",
              "Run the torque audit with the calibrated transducer; check spindle {sp} clutch and socket wear.",
              "quality", ("high", "medium", "medium"), "prediction", 0.75,
              Texts("Drift will give loose joints before the station flags NOK.", "Torque audit of ST05 spindle {sp} with the calibrated transducer",
                    "engineer", (2, 12), "Socket worn; replaced and spindle re-calibrated. Mean 12.02 Nm.", "yield",
                    "Transducer audit: spindle reads true (12.0 Nm); drift came from the joint-rate change with new screws.",
                    "Drift slow and inside tolerance; audit at the weekly calibration.",
                    ("Audit with transducer: spindle reads 0.4 Nm low.", "Socket shows wear on the drive edges.")), asset="ST05"),
        Theme("Leak test failure rate at ST08 rising: {r} % in the last 2 h (normal 0.8 %)",
              "Yield model flags the leak-test NOK rate at ST08 at {r} % over the last 2 h; failures are on the cover seal.",
              "Check the cover seal batch and the ST06 O-ring station; re-test NOK units once.",
              "quality", ("medium", "high"), "anomaly", 0.7,
              Texts("Leak failures cost rework and point at the seal; find the cause.", "Check the cover seal batch and the ST08 test fixture seals",
                    "engineer", (4, 24), "Fixture seal worn; replaced. NOK rate back to 0.7 %.", "yield",
                    "Re-tested NOK units: all pass. Fixture was not purged after the changeover.",
                    "Rate falling again; recheck in two hours.",
                    ()), asset="ST08"),
    ],
    "PACK": [
        Theme("Pack-out behind plan: order {order} at risk for the {hh}:00 truck",
              "Yield model forecasts {done} of {total} cartons packed by the truck slot at the current rate.",
              "Move one operator from kitting to packing for two hours; tell logistics now if the slot must move.",
              "delivery", ("high", "medium", "critical"), "prediction", 0.8,
              Texts("Truck slot at risk; add a packer now.", "Move one operator from kitting to packing until order {order} is complete",
                    "lead", (1, 3), "Extra packer for two hours; order {order} on the truck on time.", "yield",
                    "Rate picked up after the break; order complete in time without help.",
                    "Gap small; check rate again in an hour.",
                    ("Logistics can hold the truck 30 minutes at most.",))),
        Theme("Format changeover on PACK running long: {co} min against a 25 min standard",
              "Yield model sees the last three carton-format changeovers at {co} min on average; the pack-out plan "
              "assumes 25 min.",
              "Check the changeover kit is complete before the next format change; run it with two people.",
              "delivery", ("medium", "low"), "anomaly", 0.7,
              Texts("Long changeovers eat the pack-out plan; fix the kit.", "Complete the PK-CE1 format-change kit and mark its shadow board",
                    "lead", (8, 48), "Kit completed and shadow board marked; last changeover 24 min.", "yield",
                    "Only one long changeover, caused by a carton jam; standard time is fine.",
                    "Watch the next two changeovers.",
                    ("Format parts for the 6-pack carton were in the wrong cabinet.",)), asset="PK-CE1"),
        Theme("Stretch-film use on palletiser PK-PAL {pct} % above standard",
              "Film consumption per pallet is {pct} % above the standard of 0.42 kg over the last 50 pallets.",
              "Check the pre-stretch rollers and the wrap recipe on PK-PAL.",
              "cost", ("low",), "anomaly", 0.6,
              Texts("Film cost above standard; fix the recipe.", "Check pre-stretch rollers and the wrap recipe on PK-PAL",
                    "lead", (8, 48), "Recipe had 2 extra top wraps since the changeover; corrected.", "none",
                    "Heavier film grade this month; standard not updated yet.",
                    "Small overrun; review with the weekly cost report.",
                    ()), asset="PK-PAL"),
    ],
}

MANUAL = [
    ("CNC2", Theme("Coolant on the floor beside the CNC2 chip conveyor: slip risk",
                   "Puddle about 1 m² by the conveyor discharge; conveyor seal seems to leak.",
                   "Cordon off, absorb the spill, and have the conveyor seal checked.",
                   "safety", ("high",), "detection", 1.0,
                   Texts("Slip hazard in the walkway; fix today.", "Replace the chip-conveyor discharge seal on CNC2",
                         "engineer", (4, 24), "Seal replaced; floor dry since.", "none", "", "", ()), "CNC2-CONV")),
    ("PACK", Theme("Forklift near miss at dock door 3",
                   "Forklift reversed out of the trailer while a packer crossed behind it; no contact.",
                   "Stop reversing out of trailers without a banksman until the walkway is marked.",
                   "safety", ("critical",), "detection", 1.0,
                   Texts("Near miss with a person; act before the next truck.", "Mark the pedestrian walkway at dock door 3 and brief all drivers",
                         "lead", (2, 24), "Walkway marked, drivers briefed, banksman rule in the dock standard.", "none", "", "", ()), "DOCK-3")),
    ("GRIND", Theme("Guard door interlock on GR-302 sticks; door opens during the cycle",
                    "Door can be pulled open about 5 cm while the wheel turns before the interlock stops the machine.",
                    "Lock out GR-302 until the interlock switch is replaced.",
                    "safety", ("high",), "detection", 1.0,
                    Texts("Guarding failure; machine locked out.", "Replace the guard door interlock switch on GR-302",
                          "engineer", (4, 24), "Switch replaced and tested ten times; machine released.", "none", "", "", ()), "GR-302")),
    ("ASM1", Theme("Two operators short on late shift at ASM1 next week",
                   "Two planned absences from Monday; the late shift would run with 4 of 6 stations staffed.",
                   "Ask PACK for a trained operator or plan overtime on the early shift.",
                   "people", ("medium",), "recommendation", 1.0,
                   Texts("Staffing gap will stop two stations.", "Arrange cover from PACK for two late shifts",
                         "lead", (24, 72), "Cover arranged with PACK.", "none", "", "", ()))),
    ("ASM1", Theme("Light curtain at ST10 press-fit trips without cause",
                   "Light curtain stops the press three or four times an hour with nobody in the field.",
                   "Clean the curtain lenses and check the alignment.",
                   "safety", ("medium",), "detection", 1.0,
                   Texts("Nuisance trips tempt people to bypass the curtain.", "Clean and realign the ST10 light curtain",
                         "operator", (2, 8), "Lenses cleaned and realigned; no trips since.", "none", "", "", ()), "ST10")),
]

ESCALATE_UP = {
    1: {
        "delivery": ["Needs maintenance and a spare spindle cartridge; more than the line can do on shift.",
                     "Repeats on every shift this week; needs an engineer to find the cause.",
                     "Truck slot at risk and the line has nobody spare; needs people from another line."],
        "quality": ["Defect keeps coming back after the fix; needs the quality engineer and a containment decision.",
                    "Parts may already be in the customer warehouse; the area must decide on a sort."],
        "cost": ["Needs budget for new tooling; the line cannot approve it.",
                 "Cause is outside the line (material supplier); area to take it up."],
        "safety": ["Safety item the line cannot close alone."],
        "people": ["Staffing across lines; the area has to decide."],
    },
    2: {
        "delivery": ["Capital spend above the area limit; plant approval needed.",
                     "Customer delivery at risk this week; needs a plant-level priority call."],
        "quality": ["Same failure on two lines; needs a plant-wide decision on the supplier.",
                    "Possible customer notification; plant manager to decide."],
        "cost": ["Spend above the area limit; plant approval needed."],
        "safety": ["Needs a plant-level decision on the standard."],
        "people": ["Overtime budget is a plant decision."],
    },
}
SHELVE_REASONS = ["Fix planned for the maintenance window; nothing more to do on shift until then.",
                  "Waiting for the spare part from the supplier; shelved until it arrives.",
                  "Model retraining for this part number is booked; these alerts are known noise until then."]
MONITOR_CLOSED = ["Watched for two shifts: no further drift. Closed.", "No repeat since; closed at the huddle.",
                  "Trend flat for a day; closed."]
DUPLICATE = "Same issue as the signal raised a few minutes earlier on this asset; handled there."
NOT_ACTIONABLE = ["Already fixed before the signal reached the board.", "Planned changeover in progress; expected.",
                  "Machine was in maintenance mode; readings not from production."]
SAFETY_NOTES = ["Safety: no incidents since the last meeting.", "Safety: no incidents since the last meeting.",
                "Safety: no incidents; reminder to wear cut-resistant gloves when handling fresh parts.",
                "Safety: one first-aid case (small cut on a burr), reported and closed."]
AI_ACT = ("Predicted tool life is used up; tool change ordered within policy "
          "(confident tool-wear call, autonomous by the decision-rights matrix).")
AI_REVIEW = ["Reviewed the AI's tool change: right call, insert was worn.", "Reviewed: insert had some life left, but fine.",
             "Reviewed: change was due anyway at the next batch."]


# ---------------------------------------------------------------------------------------
# Real machine readings (AI4I 2020) behind the predictive-maintenance signals.

HDF_DT, HDF_RPM = 8.6, 1380
PWF_LOW_W, PWF_HIGH_W = 3500, 9000
OSF_LIMIT = {"L": 11000, "M": 12000, "H": 13000}
MODES = ("TWF", "HDF", "PWF", "OSF", "RNF")


@dataclass(frozen=True)
class Reading:
    """One row of the AI4I 2020 data."""

    udi: int
    product_id: str
    grade: str
    air_k: float
    process_k: float
    rpm: int
    torque_nm: float
    wear_min: int
    failed: bool
    modes: tuple[str, ...]

    @property
    def dt(self) -> float:
        return self.process_k - self.air_k

    @property
    def power_w(self) -> float:
        return self.torque_nm * self.rpm * 2 * math.pi / 60

    @property
    def strain(self) -> float:
        return self.wear_min * self.torque_nm

    def extra(self) -> dict:
        """The reading as extra fields of the ingest record."""
        return {"dataset": "AI4I 2020", "dataset_udi": self.udi, "product_grade": self.grade,
                "air_temp_k": self.air_k, "process_temp_k": self.process_k, "rpm": self.rpm,
                "torque_nm": self.torque_nm, "tool_wear_min": self.wear_min}


def load_readings() -> list[Reading]:
    """The shipped AI4I subset."""
    text = resources.files("tiermeet.demo").joinpath("ai4i_sample.csv").read_text(encoding="utf-8")
    readings = []
    for row in csv.DictReader(io.StringIO(text)):
        readings.append(Reading(
            int(row["UDI"]), row["Product ID"], row["Type"], float(row["Air temperature [K]"]),
            float(row["Process temperature [K]"]), int(row["Rotational speed [rpm]"]), float(row["Torque [Nm]"]),
            int(row["Tool wear [min]"]), row["Machine failure"] == "1", tuple(m for m in MODES if row[m] == "1"),
        ))
    return readings


SPINDLE_TEXTS = {
    "HDF": Texts("Spindle running hot confirmed; clean and check the chiller before the next shift.",
                 "Clean spindle cooling fins and check the chiller set-point on {machine}", "operator", (4, 16),
                 "Chiller set-point was 4 K high after the filter change; reset and fins cleaned. Spindle temperature back to baseline.",
                 "downtime", "Checked on the machine: coolant 18 °C, spindle housing 31 °C, normal. Reading was taken during warm-up.",
                 "Temperature margin small but steady; watch for two shifts.",
                 ("Housing warm to the touch; coolant return flow looks weak.", "Chiller log shows two high-temperature warnings last night.")),
    "PWF": Texts("Load confirmed on the drive display; stop at the next part change and check.",
                 "Check drive load, belt tension and the feeds and speeds of the running program on {machine}", "engineer", (2, 8),
                 "Worn drive belt replaced; spindle power back inside the envelope.",
                 "downtime", "Roughing cycle of the new program explains the load; within the setup-sheet limits.",
                 "Load high only on the roughing pass; watch the trend.",
                 ("Drive display shows 108 % load on the roughing pass.", "Belt squeals at spindle start.")),
    "OSF": Texts("Tool at end of life under a heavy cut; change it and reduce the depth of cut.",
                 "Change the roughing tool on {machine} and cut depth to 2.0 mm until reviewed", "operator", (1, 6),
                 "Tool changed; depth of cut reduced. No spindle overload since.",
                 "downtime", "Strain estimate used nominal torque; the actual cut is a finishing pass. No overload.",
                 "Strain near limit only on one operation; watch.",
                 ("Tool life counter was not reset after the last change.",)),
    "RNF": Texts("Unusual vibration confirmed with the handheld analyser; bearing inspection needed.",
                 "Take vibration readings on {asset} at idle and at 3,000 rpm and compare with the baseline", "engineer", (8, 48),
                 "Loose coolant-nozzle bracket was rattling against the spindle housing; tightened. Vibration 1.7 mm/s.",
                 "downtime", "Vibration reading normal (1.6 mm/s at bearing 2); likely the forklift passing the cell.",
                 "Reading slightly high; repeat the handheld reading tomorrow.",
                 ("Handheld reading 4.1 mm/s at bearing 2 (baseline 1.8).", "Noise at 3,000 rpm, like a dry bearing.")),
}
TOOL_TEXTS = Texts("Tool life past its limit; change the insert now.", "Change insert T{tool:02d} on {machine} and log the tool life",
                   "operator", (1, 4), "Insert changed; flank wear 0.35 mm, edge chipped. No broken tool, no scrap.", "scrap",
                   "Insert was changed at shift start; tool counter not reset.", "Wear close to limit; change at the next batch.",
                   ("Edge shows flank wear, no chipping yet.", "Spare inserts low in the cabinet; ordered."))
WHEEL_TEXTS = Texts("Wheel dressing overdue; dress before the next batch.", "Dress the wheel on {machine} and re-measure the first part",
                    "operator", (1, 4), "Wheel dressed; first part in tolerance.", "scrap",
                    "Wheel was dressed at shift start; counter not reset.", "Dressing interval close; dress at the next batch.",
                    ("Sparks uneven on the left side of the wheel.",))


def _spindle_mode(r: Reading) -> str:
    """The failure mode a spindle signal from ``r`` is about; for a normal row, the nearest."""
    for mode in ("PWF", "OSF", "HDF", "RNF"):
        if mode in r.modes:
            return mode
    if r.failed:
        return "RNF"
    margins = {
        "HDF": (r.dt - HDF_DT) / HDF_DT + max(0, r.rpm - HDF_RPM) / HDF_RPM,
        "PWF": min(r.power_w - PWF_LOW_W, PWF_HIGH_W - r.power_w) / PWF_HIGH_W,
        "OSF": (OSF_LIMIT[r.grade] - r.strain) / OSF_LIMIT[r.grade],
    }
    mode, margin = min(margins.items(), key=lambda kv: kv[1])
    return mode if margin < 0.35 else "RNF"


# ---------------------------------------------------------------------------------------
# Plans: what happens to each signal, before anything is written.

@dataclass
class Plan:
    """One signal to be: its ingest record and what the plant will do about it."""

    record: dict
    facts: SignalFacts
    detected: datetime
    genuine: bool
    texts: Texts
    words: dict
    by: str = INGEST_ACTOR
    id: uuid.UUID | None = None
    action_id: uuid.UUID | None = None
    scripted: bool = False

    @property
    def line(self) -> str:
        return self.record["line"]

    @property
    def area(self) -> str:
        return self.record["area"]


@dataclass(order=True)
class Step:
    """One planned change, replayed at ``at`` (meeting starts first, meeting ends last)."""

    at: datetime
    prio: int
    seq: int
    run: Callable[[], None] = field(compare=False)
    needs: Plan | None = field(default=None, compare=False)


@dataclass
class Slot:
    """A tier meeting that will be held: when, where, who."""

    tier: int
    scope: str
    start: datetime
    end: datetime
    facilitator: str
    attendees: list[str]
    id: uuid.UUID | None = None
    tally: Counter = field(default_factory=Counter)

    def window(self, lo: datetime, hi: datetime) -> tuple[datetime, datetime] | None:
        """The part of [lo, hi] in which this meeting can record a decision."""
        a, b = max(lo, self.start + 2 * MIN), min(hi, self.end - 2 * MIN)
        return (a, b) if b > a else None


class Crew:
    """The demo config's people by role and scope."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._by: dict[tuple[str, str], list[str]] = defaultdict(list)
        for p in config.people:
            self._by[(p.role.value, p.scope)].append(p.id)

    def _first(self, *keys: tuple[str, str]) -> list[str]:
        for key in keys:
            if self._by.get(key):
                return self._by[key]
        return [self.config.people[0].id]

    def managers(self) -> list[str]:
        return self._first(("manager", PLANT_SCOPE), ("supervisor", PLANT_SCOPE))

    def supervisors(self, area: str) -> list[str]:
        return self._by.get(("supervisor", area)) or self.managers()

    def engineers(self, area: str) -> list[str]:
        return self._by.get(("engineer", area)) or self._by.get(("engineer", PLANT_SCOPE)) or self.supervisors(area)

    def leads(self, line: str) -> list[str]:
        return self._by.get(("shift_lead", line)) or self.supervisors(self.config.line_area[line])

    def operators(self, line: str) -> list[str]:
        return self._by.get(("operator", line)) or self.leads(line)


class Builder:
    """Plans two weeks of plant life, then replays it through the services."""

    def __init__(self, config: Config, now: datetime, path: Path) -> None:
        self.config = config
        self.policy, self.calendar = config.governance, config.calendar
        self.top = config.top_tier
        self.zone = ZoneInfo(config.plant.timezone)
        self.now = now.astimezone(timezone.utc).replace(microsecond=0)
        today = self.now.astimezone(self.zone).date()
        self.first_day = today - timedelta(days=DAYS - 1)
        self.start = self.local(self.first_day, time(0))
        # The people arrive from the config when the history starts.
        self.clock = FixedClock(self.start - HOUR)
        self.past = open_services(path, config, clock=self.clock, device_name=DEVICE)
        event.listen(self.past.ctx.engine, "connect", _scratch_pragmas)
        self.past.ctx.engine.dispose()
        self.rng = random.Random(SEED)
        self.crew = Crew(config)
        self.plans: list[Plan] = []
        self.steps: list[Step] = []
        self.slots: dict[tuple[int, str], list[Slot]] = defaultdict(list)
        self.counters: Counter = Counter()
        readings = load_readings()
        self.rng.shuffle(readings)
        # Failure rows make genuine signals, normal rows false alarms or routine tool changes.
        self.pools = {
            "spindle": [r for r in readings if r.failed and (set(r.modes) - {"TWF"} or not r.modes)],
            "spindle_fp": [r for r in readings if not r.failed and r.wear_min < 170],
            "tool": [r for r in readings if "TWF" in r.modes],
            "tool_worn": [r for r in readings if not r.failed and r.wear_min >= 170],
        }
        self.pool_at: Counter = Counter()

    def mark_built(self) -> None:
        """Record in the scratch database that it holds the complete demo."""
        with write_session(self.past.ctx.engine) as session:
            session.merge(SyncState(key=MARKER, value=self.now.isoformat()))

    # -- time helpers -----------------------------------------------------------------
    def local(self, day: date, at: time) -> datetime:
        """A wall-clock time of the plant as UTC."""
        return datetime.combine(day, at, tzinfo=self.zone).astimezone(timezone.utc)

    def hhmm(self, when: datetime) -> str:
        return when.astimezone(self.zone).strftime("%H:%M")

    def next_sweep(self, after: datetime) -> datetime:
        """The first sweep run strictly after ``after`` (every two hours, two minutes past)."""
        epoch = datetime(2000, 1, 1, tzinfo=timezone.utc) + 2 * MIN
        runs = (after - epoch) // SWEEP_EVERY + 1
        return epoch + runs * SWEEP_EVERY

    def on_shift(self, when: datetime) -> datetime:
        """``when``, or the start of the next shift plus a few minutes if nobody is at work."""
        if self.calendar.current(when) is not None:
            return when
        upcoming = [s.start for s in self.calendar.spans_around(when) if s.start > when]
        return (upcoming[0] if upcoming else when) + self.minutes(8, 35)

    def minutes(self, lo: float, hi: float) -> timedelta:
        return timedelta(minutes=round(self.rng.uniform(lo, hi)))

    def hours(self, lo: float, hi: float) -> timedelta:
        return timedelta(minutes=round(self.rng.uniform(lo, hi) * 60))

    # -- step helpers -----------------------------------------------------------------
    def step(self, at: datetime, run: Callable[[], None], needs: Plan | None = None, prio: int = 5) -> datetime:
        self.steps.append(Step(at.replace(microsecond=0), prio, len(self.steps), run, needs))
        return at

    # -- people ------------------------------------------------------------------------
    def pick(self, people: list[str]) -> str:
        return self.rng.choice(people)

    def may(self, who: str, act: str, tier: int) -> bool:
        """True when the policy's role rules let ``who`` do ``act`` at ``tier`` (a model,
        ``ai:<source>``, acts under the policy itself)."""
        role = next((p.role.value for p in self.config.people if p.id == who), None)
        try:
            rights.check(self.config.governance.rights, act, role=role, tier=tier, who=who)
        except DomainError:
            return False
        return True

    def decider(self, plan: Plan, tier: int) -> str:
        if tier == 1:
            return self.crew.leads(plan.line)[0] if self.rng.random() < 0.9 else self.pick(self.crew.supervisors(plan.area))
        if tier == 2:
            return self.crew.supervisors(plan.area)[0] if self.rng.random() < 0.75 else self.pick(self.crew.engineers(plan.area))
        return self.crew.managers()[0]

    def owner(self, plan: Plan, role: str, tier: int) -> str:
        if role == "engineer" or tier >= 2:
            return self.pick(self.crew.engineers(plan.area))
        if role == "operator":
            return self.pick(self.crew.operators(plan.line))
        return self.crew.leads(plan.line)[0]

    # =================================================================================
    # 1. Signals
    def plan_signals(self) -> None:
        for offset in range(DAYS):
            day = self.first_day + timedelta(days=offset)
            weekend = day.weekday() >= 5
            for line in self.config.line_area:
                base = VOLUME.get(line, 6) * (0.55 if weekend else 1.0)
                count = max(1, round(base * self.rng.uniform(0.7, 1.3)))
                for _ in range(count):
                    when = self.detection_time(day)
                    if when is None:
                        continue
                    model = self.weighted(MODEL_MIX.get(line, {"vision-qc": 1}))
                    self.plans.append(self.make_signal(model, line, when))
        for line, theme in MANUAL:
            if line not in self.config.line_area:
                continue
            when = self.detection_time(self.first_day + timedelta(days=self.rng.randrange(DAYS - 1)))
            if when is not None:
                plan = self.from_theme("manual", line, theme, when, genuine=True)
                plan.by = self.crew.leads(line)[0]
                self.plans.append(plan)
        self.plans.sort(key=lambda p: p.detected)

    def weighted(self, weights: dict[str, float]) -> str:
        return self.rng.choices(list(weights), list(weights.values()))[0]

    def detection_time(self, day: date) -> datetime | None:
        """A moment on ``day``, mostly while a shift runs; None if it would be in the future."""
        for _ in range(20):
            when = self.local(day, time(0)) + timedelta(seconds=self.rng.randrange(86_400))
            running = self.calendar.current(when) is not None
            if running or self.rng.random() < 0.2:
                break
        when = when.replace(microsecond=0)
        return when if when < self.now - 3 * MIN else None

    def next_id(self, source: str, when: datetime) -> str:
        self.counters[source] += 1
        return f"{PREFIX.get(source, source)}-{when.astimezone(self.zone):%Y%m%d}-{self.counters[source]:04d}"

    def base_record(self, source: str, line: str, when: datetime, **fields) -> dict:
        version = VERSIONS.get(source)
        if source == "vision-qc" and when >= self.now - VISION_UPGRADE[1]:
            version = VISION_UPGRADE[0]
        when = when.replace(microsecond=0)
        record = {
            "external_id": self.next_id(source, when), "source": source, "detected_at": when.isoformat(),
            "area": self.config.line_area[line], "line": line,
        }
        if version:
            record["model_version"] = version
        record.update(fields)
        return record

    def make_plan(self, record: dict, genuine: bool, texts: Texts, words: dict) -> Plan:
        facts = SignalFacts(record["category"], record["severity"], record["source"], record.get("kind", "anomaly"),
                            record["area"], record["line"], record.get("confidence"))
        when = datetime.fromisoformat(record["detected_at"])
        return Plan(record, facts, when, genuine, texts, words)

    def make_signal(self, model: str, line: str, when: datetime) -> Plan:
        if model == "pdm-spindle":
            genuine = self.rng.random() < 0.55
            return self.spindle_signal(line, when, self.draw("spindle" if genuine else "spindle_fp"), genuine)
        if model == "pdm-toolwear":
            genuine_failure = self.rng.random() < 0.35
            return self.tool_signal(line, when, self.draw("tool" if genuine_failure else "tool_worn"))
        group = line if line in ("GRIND", "ASM1", "PACK") else "machining"
        themes = (VISION if model == "vision-qc" else YIELD)[group]
        theme = self.rng.choice(themes)
        return self.from_theme(model, line, theme, when, genuine=self.rng.random() < theme.genuine)

    def draw(self, pool: str) -> Reading:
        rows = self.pools[pool]
        reading = rows[self.pool_at[pool] % len(rows)]
        self.pool_at[pool] += 1
        return reading

    def machine_of(self, line: str) -> tuple[str, str]:
        return self.rng.choice(MACHINES.get(line) or [(line, line)])

    def spindle_signal(self, line: str, when: datetime, r: Reading, genuine: bool) -> Plan:
        machine, spindle = self.machine_of(line)
        mode = _spindle_mode(r)
        kw = r.power_w / 1000
        part = PARTS.get(line, {}).get(r.grade, r.product_id)
        on = spindle if spindle == machine else f"{spindle} ({machine})"
        if mode == "HDF":
            title = (f"Spindle heat build-up on {on}: process-to-air ΔT only {r.dt:.1f} K at {r.rpm} rpm" if r.failed
                     else f"Spindle heat margin narrowing on {on}: process-to-air ΔT {r.dt:.1f} K at {r.rpm} rpm")
            hint = "Heat-dissipation failures start when ΔT falls below 8.6 K at under 1,380 rpm."
            suggested = "Check coolant flow and the chiller set-point, clean the spindle cooling fins; run above 1,400 rpm if the program allows."
            severity = ("high" if r.rpm < 1340 else "medium") if genuine else self.rng.choice(["medium", "low"])
        elif mode == "PWF":
            low = r.power_w < (PWF_LOW_W + PWF_HIGH_W) / 2
            if not r.failed:
                title = f"Spindle load pattern unusual on {on}: {kw:.1f} kW ({r.torque_nm:.1f} Nm at {r.rpm} rpm)"
            elif low:
                title = f"Spindle power below envelope on {on}: {kw:.1f} kW ({r.torque_nm:.1f} Nm at {r.rpm} rpm), tool may not be cutting"
            else:
                title = f"Spindle power above envelope on {on}: {kw:.1f} kW ({r.torque_nm:.1f} Nm at {r.rpm} rpm)"
            hint = "Power failures occur outside 3.5–9 kW."
            suggested = "Stop at the next part change; check drive load and belt tension, and the feeds and speeds against the setup sheet."
            severity = ("critical" if kw > 9.8 or kw < 2.6 else "high") if genuine else self.rng.choice(["medium", "low"])
        elif mode == "OSF":
            title = (f"Overstrain risk on {on}: {r.wear_min} min tool wear at {r.torque_nm:.0f} Nm" if r.failed
                     else f"Tool strain rising on {on}: {r.wear_min} min tool wear at {r.torque_nm:.0f} Nm")
            hint = f"Overstrain failures occur above {OSF_LIMIT[r.grade]:,} min·Nm for grade {r.grade} parts; now {r.strain:,.0f}."
            suggested = "Change the tool before the next roughing pass and reduce the depth of cut until the cause is found."
            severity = "high" if genuine else self.rng.choice(["medium", "low"])
        else:
            title = f"Spindle bearing vibration pattern outside the model envelope on {on}"
            hint = "Readings are otherwise normal; the pattern matches no known failure mode."
            suggested = "Take a handheld vibration reading at idle and at 3,000 rpm; check the bearing temperature."
            severity = "medium" if genuine else "low"
        confidence = round(self.rng.uniform(0.72, 0.97) if genuine else self.rng.uniform(0.52, 0.8), 2)
        detail = (f"Reading at {self.hhmm(when)}: air {r.air_k:.1f} K, process {r.process_k:.1f} K (ΔT {r.dt:.1f} K), "
                  f"{r.rpm} rpm, {r.torque_nm:.1f} Nm ({kw:.1f} kW), tool wear {r.wear_min} min, making {part} "
                  f"(grade {r.grade}). Failure risk {confidence:.0%} ({mode}). {hint}")
        record = self.base_record(
            "pdm-spindle", line, when, kind="prediction" if genuine else "anomaly", asset=spindle,
            category="delivery" if severity in ("critical", "high") else "cost", severity=severity, confidence=confidence,
            title=title, detail=detail, suggested_action=suggested,
            evidence_url=f"https://historian.riverside.example/trends/{spindle}?at={when:%Y%m%dT%H%M%SZ}", **r.extra())
        return self.make_plan(record, genuine, SPINDLE_TEXTS[mode], {"machine": machine, "asset": spindle, "part": part})

    def tool_signal(self, line: str, when: datetime, r: Reading) -> Plan:
        machine, spindle = self.machine_of(line)
        failure = "TWF" in r.modes
        tool = self.rng.randrange(1, 25)
        parts_left = max(2, (240 - r.wear_min) // 3 + self.rng.randrange(1, 6))
        part = PARTS.get(line, {}).get(r.grade, r.product_id)
        if line == "GRIND":
            texts = WHEEL_TEXTS
            title = f"Grinding wheel on {machine} due for dressing: {r.wear_min} min since the last dress"
            suggested = "Dress the wheel at the next part change and measure the first part."
        else:
            texts = TOOL_TEXTS
            if failure:
                title = f"Tool wear on insert T{tool:02d} of {machine} at {r.wear_min} min: breakage risk within {parts_left} parts"
            else:
                title = f"Insert T{tool:02d} on {machine} reaches end of life in about {parts_left} parts ({r.wear_min} min used)"
            suggested = f"Change insert T{tool:02d} at the next part change; check the edge for chipping and log the tool life."
        if failure:
            severity, confidence, category = "high", round(self.rng.uniform(0.8, 0.94), 2), "quality"
        else:
            severity = "medium" if r.wear_min >= 200 else "low"
            confidence, category = round(self.rng.uniform(0.88, 0.99), 2), "cost"
        detail = (f"Tool wear {r.wear_min} min at {r.rpm} rpm and {r.torque_nm:.1f} Nm making {part} (grade {r.grade}); "
                  f"tool-wear failures in this data start between 200 and 240 min. Model confidence {confidence:.0%}.")
        record = self.base_record(
            "pdm-toolwear", line, when, kind="prediction", asset=machine, category=category, severity=severity,
            confidence=confidence, title=title, detail=detail, suggested_action=suggested, **r.extra())
        genuine = failure or self.rng.random() < 0.85
        return self.make_plan(record, genuine, texts, {"machine": machine, "asset": machine, "tool": tool, "part": part})

    def from_theme(self, source: str, line: str, theme: Theme, when: datetime, genuine: bool) -> Plan:
        machine, _ = self.machine_of(line)
        part = PARTS.get(line, {}).get(self.rng.choice("LMH"), line)
        words = {
            "part": part, "machine": machine, "asset": theme.asset or (machine if line in MACHINES else ""),
            "n": self.rng.randrange(3, 15),
            "cam": f"VC-{self.rng.randrange(1, 5)}", "ra": f"{self.rng.uniform(1.7, 3.2):.1f}",
            "gap": f"{self.rng.uniform(0.4, 1.2):.1f}", "fpy": f"{self.rng.uniform(91.0, 96.2):.1f}",
            "scrap": f"{self.rng.uniform(2.1, 4.8):.1f}", "cpk": f"{self.rng.uniform(0.95, 1.28):.2f}",
            "sp": self.rng.randrange(1, 5), "m": f"{self.rng.uniform(11.35, 11.75):.2f}", "r": f"{self.rng.uniform(2.2, 5.5):.1f}",
            "order": f"SO-{self.rng.randrange(48100, 48999)}", "hh": self.rng.choice([11, 13, 16, 21]),
            "total": 240, "done": self.rng.randrange(170, 225), "pct": self.rng.randrange(9, 25),
            "co": self.rng.randrange(34, 55),
        }
        severity = self.rng.choice(theme.severities)
        if not genuine and severity == "critical":
            severity = "high"
        fields = {
            "kind": theme.kind, "category": theme.category, "severity": severity,
            "title": theme.title.format(**words), "detail": theme.detail.format(**words),
            "suggested_action": theme.suggested.format(**words),
        }
        if words["asset"]:
            fields["asset"] = words["asset"]
        if source != "manual":
            fields["confidence"] = round(self.rng.uniform(0.7, 0.96) if genuine else self.rng.uniform(0.55, 0.85), 2)
        if source == "vision-qc":
            fields["evidence_url"] = f"https://vision.riverside.example/images/{line}/{when:%Y%m%dT%H%M%SZ}.jpg"
        elif source == "yield-model":
            fields["evidence_url"] = f"https://mes.riverside.example/spc/{line}?at={when:%Y%m%dT%H%M%SZ}"
        record = self.base_record(source, line, when, **fields)
        return self.make_plan(record, genuine, theme.texts, words)

    # =================================================================================
    # 2. Meetings
    def plan_meetings(self) -> None:
        today = self.now.astimezone(self.zone).date()
        for offset in range(MEETING_DAYS - 1, -1, -1):
            day = today - timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for tier in self.config.tiers:
                if tier.meeting_time is None or tier.level > 3:
                    continue
                if tier.scope == "line":
                    scopes = tier.units or list(self.config.line_area)
                elif tier.scope == "area":
                    scopes = tier.units or [a.id for a in self.config.areas]
                else:
                    scopes = [PLANT_SCOPE]
                for scope in scopes:
                    start = self.local(day, tier.meeting_time) + self.minutes(0, 4)
                    end = start + timedelta(minutes=tier.meeting_minutes) + self.minutes(-3, 5)
                    if end >= self.now - MIN:
                        continue
                    facilitator, attendees = self.meeting_people(tier.level, scope)
                    self.slots[(tier.level, scope)].append(Slot(tier.level, scope, start, end, facilitator, attendees))
        for slots in self.slots.values():
            slots.sort(key=lambda s: s.start)
            for slot in slots:
                self.schedule_meeting(slot)

    def meeting_people(self, tier: int, scope: str) -> tuple[str, list[str]]:
        crew, rng = self.crew, self.rng
        if tier == 1:
            area = self.config.line_area[scope]
            facilitator = crew.leads(scope)[0]
            others = [p for p in crew.operators(scope) if p != facilitator]
            if rng.random() < 0.25:
                others.append(self.pick(crew.engineers(area)))
            if rng.random() < 0.1:
                others.append(crew.supervisors(area)[0])
        elif tier == 2:
            facilitator = crew.supervisors(scope)[0]
            lines = [ln.id for a in self.config.areas if a.id == scope for ln in a.lines]
            others = [crew.leads(ln)[0] for ln in lines if rng.random() < 0.85]
            others += [e for e in crew.engineers(scope) if rng.random() < 0.8]
            if rng.random() < 0.2:
                others.append(crew.managers()[0])
        else:
            facilitator = crew.managers()[0]
            others = [crew.supervisors(a.id)[0] for a in self.config.areas]
            others += [e for a in self.config.areas for e in crew.engineers(a.id) if rng.random() < 0.6]
        seen = {facilitator}
        return facilitator, [p for p in others if not (p in seen or seen.add(p))]

    def schedule_meeting(self, slot: Slot) -> None:
        def start() -> None:
            slot.id = self.past.meetings.start(actor=slot.facilitator, tier=slot.tier, scope=slot.scope).id

        def attend(person: str) -> Callable[[], None]:
            return lambda: self.past.meetings.attend(slot.id, actor=slot.facilitator, person=person)

        def end() -> None:
            self.past.meetings.end(slot.id, actor=slot.facilitator, notes=self.minutes_note(slot))

        self.step(slot.start, start, prio=0)
        for person in slot.attendees:
            self.step(slot.start + self.minutes(0, 2), attend(person), prio=1)
        self.step(slot.end, end, prio=9)

    def minutes_note(self, slot: Slot) -> str:
        t = slot.tally
        parts = [f"{n} {what}" for what, n in (("acted on", t["act"]), ("monitored", t["monitor"]),
                                              ("dismissed", t["dismiss"]), ("shelved", t["shelve"]),
                                              ("escalated", t["escalate"])) if n]
        safety = self.rng.choice(SAFETY_NOTES)
        board = f"Signals decided: {', '.join(parts)}." if parts else "No signals needed a decision."
        return f"{safety} {board}"

    # =================================================================================
    # 3. Lives
    def plan_lives(self) -> None:
        for plan in self.plans:
            if not plan.scripted:
                self.plan_life(plan)

    def placement(self, plan: Plan):
        return place(self.policy, plan.facts, self.top)

    def deadline(self, plan: Plan, tier: int, start: datetime) -> datetime:
        return response_deadline(self.policy, plan.facts, tier, start, self.calendar)

    def scope_of(self, plan: Plan, tier: int) -> str:
        return plan.line if tier == 1 else plan.area if tier == 2 else PLANT_SCOPE

    def plan_life(self, plan: Plan) -> None:
        rng = self.rng
        placement = self.placement(plan)
        tier, entered = placement.start_tier, plan.detected
        t = plan.detected + self.minutes(1, 4)
        if placement.autonomy is Autonomy.AUTONOMOUS:
            self.ai_act(plan, t)
            return
        while True:
            deadline = self.deadline(plan, tier, entered)
            choice = self.decision_time(tier, self.scope_of(plan, tier), t, deadline, rng.random() < IN_WINDOW[tier])
            if choice is None:
                sweep = self.next_sweep(deadline)
                if rng.random() < ACKNOWLEDGE[tier] and deadline - t > 10 * MIN:
                    self.acknowledge(plan, tier, t + (deadline - t) * rng.uniform(0.2, 0.8))
                window = window_for(self.policy, plan.facts, tier)
                reason = f"Response window at tier {tier} ({window.replace('_', ' ')}) closed at {self.hhmm(deadline)} without a decision."
                self.step(sweep, self.sweep_call(plan, reason), plan)
                tier, entered, t = tier + 1, sweep, sweep + self.minutes(2, 10)
                continue
            when, slot = choice
            if rng.random() < ACKNOWLEDGE[tier] and when - t > 8 * MIN:
                self.acknowledge(plan, tier, t + (when - t) * rng.uniform(0.1, 0.6))
            if plan.texts.comments and rng.random() < 0.05 and when - t > 15 * MIN:
                self.comment(plan, when - self.minutes(3, 10), self.rng.choice(plan.texts.comments), tier)
            kind = self.outcome_kind(plan, tier)
            if kind is DecisionKind.ESCALATE:
                if plan.texts.comments and rng.random() < 0.5 and when - t > 6 * MIN:
                    self.comment(plan, when - self.minutes(1, 4), self.rng.choice(plan.texts.comments), tier)
                reason = rng.choice(ESCALATE_UP[tier][plan.record["category"]])
                self.decide(plan, tier, when, slot, DecisionKind.ESCALATE, reason)
                tier, entered, t = tier + 1, when, when + self.minutes(2, 10)
                continue
            self.conclude(plan, tier, when, slot, kind)
            return

    def decision_time(self, tier: int, scope: str, lo: datetime, deadline: datetime, in_window: bool):
        """(when, meeting slot or None) for a decision, or None when the window is breached and
        the sweep will take the signal up a tier."""
        rng = self.rng
        slots = self.slots.get((tier, scope), [])
        if in_window:
            hi = deadline - MIN
            if hi > lo + 3 * MIN:
                if rng.random() < AT_MEETING[tier]:
                    for slot in slots:
                        span = slot.window(lo + 2 * MIN, hi)
                        if span:
                            return span[0] + (span[1] - span[0]) * rng.random(), slot
                when = lo + 2 * MIN + (hi - lo - 2 * MIN) * rng.betavariate(1.3, 3.0)
                when = self.on_shift(when)
                if when < hi:
                    return when, None
        # Breached: a meeting before the sweep runs may still decide (late); otherwise the sweep.
        sweep = self.next_sweep(deadline)
        if tier < self.top:
            for slot in slots:
                span = slot.window(max(lo, deadline) + MIN, sweep - MIN)
                if span and rng.random() < 0.7:
                    return span[0] + (span[1] - span[0]) * rng.random(), slot
            return None
        return self.on_shift(max(lo, deadline) + self.hours(0.3, 8)), None

    def outcome_kind(self, plan: Plan, tier: int) -> DecisionKind | str:
        """What a tier decides: a DecisionKind, or 'act+action' / a disposition for dismiss."""
        r = self.rng.random()
        can_escalate = tier < self.top
        if plan.genuine:
            table = {1: [("act+action", 0.4), ("act", 0.2), ("monitor", 0.13), ("escalate", 0.12), ("shelve", 0.04),
                         (Disposition.DUPLICATE, 0.05), (Disposition.NOT_ACTIONABLE, 0.06)],
                     2: [("act+action", 0.5), ("act", 0.15), ("monitor", 0.1), ("escalate", 0.15), ("shelve", 0.05),
                         (Disposition.NOT_ACTIONABLE, 0.05)],
                     3: [("act+action", 0.6), ("act", 0.15), ("monitor", 0.15), ("shelve", 0.05),
                         (Disposition.NOT_ACTIONABLE, 0.05)]}[min(tier, 3)]
        else:
            table = [(Disposition.FALSE_POSITIVE, 0.62), (Disposition.DUPLICATE, 0.07), (Disposition.NOT_ACTIONABLE, 0.08),
                     ("monitor", 0.15), ("shelve", 0.03), ("act", 0.05)]
        for kind, share in table:
            r -= share
            if r < 0:
                break
        if kind == "escalate":
            return DecisionKind.ESCALATE if can_escalate else "act+action"
        return kind

    # -- the calls a plan makes ----------------------------------------------------------
    def acknowledge(self, plan: Plan, tier: int, when: datetime) -> None:
        who = self.pick(self.crew.operators(plan.line)) if tier == 1 and self.rng.random() < 0.4 else self.decider(plan, tier)
        self.step(when, lambda: self.past.signals.acknowledge(plan.id, actor=who), plan)

    def comment(self, plan: Plan, when: datetime, body: str, tier: int) -> None:
        who = self.pick(self.crew.engineers(plan.area)) if tier > 1 or self.rng.random() < 0.4 else self.pick(self.crew.operators(plan.line))
        self.step(when, lambda: self.past.comments.add("signal", plan.id, actor=who, body=body.format(**plan.words)), plan)

    def sweep_call(self, plan: Plan, reason: str) -> Callable[[], None]:
        return lambda: self.past.signals.escalate(plan.id, actor=SWEEP_ACTOR, reason=reason, automatic=True)

    def decide(self, plan: Plan, tier: int, when: datetime, slot: Slot | None, kind: DecisionKind, rationale: str = "", *,
               who: str | None = None, disposition: Disposition | None = None, shelve_until: datetime | None = None,
               action: tuple[str, str, datetime] | None = None) -> None:
        if slot is not None:
            who = who or (slot.facilitator if tier > 1 or self.rng.random() < 0.8 else self.pick(slot.attendees or [slot.facilitator]))
        who = who or self.decider(plan, tier)
        if not self.may(who, "shelve" if kind is DecisionKind.SHELVE else "decide", tier):
            who = self.decider(plan, tier)

        def run() -> None:
            spec = ActionSpec(*action) if action else None
            decision = self.past.signals.decide(plan.id, actor=who, kind=kind, rationale=rationale, disposition=disposition,
                                                shelve_until=shelve_until, action=spec,
                                                meeting_id=slot.id if slot is not None else None)
            if slot is not None:
                slot.tally[kind.value] += 1
            if spec is not None:
                with self.past.ctx.read() as session:
                    plan.action_id = session.scalars(select(Action.id).where(Action.decision_id == decision.id)).one()

        self.step(when, run, plan)

    def resolve(self, plan: Plan, when: datetime, who: str, outcome: Outcome) -> None:
        self.step(when, lambda: self.past.signals.resolve(plan.id, actor=who, outcome=outcome), plan)

    def outcome(self, plan: Plan, helped: bool, note: str) -> Outcome:
        rng, kind = self.rng, plan.texts.outcome
        note = note.format(**plan.words)
        if not helped or kind == "none":
            return Outcome(note=note)
        if kind == "downtime":
            return Outcome(downtime_minutes_avoided=float(5 * rng.randrange(6, 48)), note=note)
        if kind == "scrap":
            return Outcome(scrap_avoided=float(rng.randrange(4, 120)), note=note)
        return Outcome(yield_effect=round(rng.uniform(0.2, 1.8), 1), note=note)

    def conclude(self, plan: Plan, tier: int, when: datetime, slot: Slot | None, kind) -> None:
        """A final decision at ``tier`` and what follows it."""
        rng, texts = self.rng, plan.texts
        who = None
        if isinstance(kind, Disposition):
            reason = {Disposition.FALSE_POSITIVE: texts.false_alarm or "Checked on the line: nothing wrong.",
                      Disposition.DUPLICATE: DUPLICATE}.get(kind) or rng.choice(NOT_ACTIONABLE)
            self.decide(plan, tier, when, slot, DecisionKind.DISMISS, reason.format(**plan.words), disposition=kind)
            return
        if kind == "shelve":
            until = self.local((when + timedelta(days=rng.randrange(1, 6))).astimezone(self.zone).date(), time(6))
            until = max(until, when + 12 * HOUR)
            self.decide(plan, tier, when, slot, DecisionKind.SHELVE, rng.choice(SHELVE_REASONS), shelve_until=until)
            return
        closer = self.decider(plan, tier)
        if kind == "monitor":
            self.decide(plan, tier, when, slot, DecisionKind.MONITOR, (texts.monitor or "Watch for two shifts.").format(**plan.words))
            done = self.on_shift(when + self.hours(10, 60))
            self.resolve(plan, done, closer, self.outcome(plan, False, rng.choice(MONITOR_CLOSED)))
            return
        rationale = texts.act.format(**plan.words)
        if kind == "act" or not texts.action:
            self.decide(plan, tier, when, slot, DecisionKind.ACT, rationale)
            self.resolve(plan, when + self.minutes(20, 300), closer,
                         self.outcome(plan, plan.genuine, texts.resolved if plan.genuine else "Adjusted as a precaution; nothing found."))
            return
        owner = self.owner(plan, texts.owner, tier)
        due = when + self.hours(*texts.due_hours)
        due = due.replace(minute=(due.minute // 15) * 15, second=0, microsecond=0) + 15 * MIN
        self.decide(plan, tier, when, slot, DecisionKind.ACT, rationale,
                    action=(texts.action.format(**plan.words), owner, due), who=who)
        self.follow_action(plan, tier, when, owner, due, closer)

    def follow_action(self, plan: Plan, tier: int, created: datetime, owner: str, due: datetime, closer: str) -> None:
        """The life of an action: maybe started, reassigned or moved, done (late or not),
        verified; then the signal is resolved. Some are never finished: overdue."""
        rng = self.rng
        span = due - created
        fate = rng.random()
        never = fate < 0.12
        done = due + self.hours(1, 30) if fate < 0.25 and not never else created + span * rng.uniform(0.15, 0.95)
        done = max(done, created + 10 * MIN)
        if rng.random() < 0.05:
            new_owner = self.pick([p for p in self.crew.operators(plan.line) + self.crew.engineers(plan.area) if p != owner] or [owner])
            at = created + span * 0.1
            self.step(at, lambda: self.past.actions.reassign(plan.action_id, actor=closer, owner=new_owner), plan)
            owner = new_owner
        elif rng.random() < 0.05 and not never:
            at = created + span * 0.4
            new_due = due + timedelta(days=1)
            self.step(at, lambda: self.past.actions.change_due(plan.action_id, actor=closer, due_at=new_due), plan)
            done = max(done, at + 30 * MIN)
        last = owner
        if rng.random() < 0.2:
            self.step(created + (done - created) * rng.uniform(0.05, 0.5),
                      lambda: self.past.actions.start(plan.action_id, actor=last), plan)
        if rng.random() < 0.1 and plan.texts.comments:
            body = rng.choice(["Waiting for the spare from stores.", "Started; needs the machine stopped for 20 minutes.",
                               "Parts ordered; fitting it at the next planned stop."])
            self.step(created + (done - created) * 0.6,
                      lambda: self.past.comments.add("action", plan.action_id, actor=last, body=body), plan)
        if never:
            if rng.random() < 0.5:
                self.resolve(plan, due + self.hours(2, 20), closer,
                             self.outcome(plan, False, "Problem has not come back; action still open with its owner."))
            return
        self.step(done, lambda: self.past.actions.done(plan.action_id, actor=last), plan)
        if rng.random() < 0.3:
            checker = self.pick(self.crew.engineers(plan.area) + self.crew.supervisors(plan.area))
            self.step(done + self.hours(1, 20), lambda: self.past.actions.verify(plan.action_id, actor=checker), plan)
        self.resolve(plan, done + self.minutes(10, 240), closer,
                     self.outcome(plan, plan.genuine, plan.texts.resolved if plan.genuine else "Done as a precaution; nothing found."))

    def ai_act(self, plan: Plan, at: datetime) -> None:
        """An autonomous call: the model decides and orders the tool change itself."""
        rng, texts = self.rng, plan.texts
        owner = self.owner(plan, texts.owner, 1)
        due = (at + self.hours(2, 6)).replace(second=0, microsecond=0)
        lead = self.crew.leads(plan.line)[0]
        self.decide(plan, 1, at, None, DecisionKind.ACT, AI_ACT, who=f"ai:{plan.record['source']}",
                    action=(texts.action.format(**plan.words), owner, due))
        done = at + (due - at) * rng.uniform(0.2, 0.9)
        self.step(done, lambda: self.past.actions.done(plan.action_id, actor=owner), plan)
        if rng.random() < 0.3:
            self.comment_as(plan, done + self.minutes(20, 120), lead, rng.choice(AI_REVIEW))
        self.resolve(plan, done + self.minutes(130, 200), lead, self.outcome(plan, plan.genuine, texts.resolved))

    def comment_as(self, plan: Plan, when: datetime, who: str, body: str) -> None:
        self.step(when, lambda: self.past.comments.add("signal", plan.id, actor=who, body=body), plan)

    # =================================================================================
    # 4. Today's board: a few signals scripted so it shows every situation.
    def plan_today(self) -> None:
        rng = self.rng
        lines = list(self.config.line_area)
        shift = self.calendar.current(self.now)
        for line in lines:
            # The line's backlog: signals of the last hours nobody has decided on yet.
            seen: set[str] = set()
            for _ in range(rng.randint(2, 5)):
                if shift is not None and rng.random() < 0.5:
                    when = shift.start + (self.now - shift.start) * rng.uniform(0.05, 0.9)
                    severity = "medium"
                else:
                    when, severity = self.now - self.hours(0.3, 10), "low"
                plan = self.backlog_signal(line, when, severity, seen)
                if rng.random() < 0.3 and self.now - when > 10 * MIN:
                    self.acknowledge(plan, 1, when + (self.now - when) * rng.uniform(0.2, 0.8))
            # A window about to close: a high signal detected a little under two hours ago.
            model = "pdm-toolwear" if line in MACHINES else "yield-model"
            when = self.now - self.window_length("high") + self.minutes(8, 35)
            plan = self.scripted(model, line, when, severity="high")
            if rng.random() < 0.5:
                self.acknowledge(plan, 1, when + self.minutes(4, 15))
        # Windows closed since the sweep last ran.
        last_sweep = self.next_sweep(self.now - SWEEP_EVERY)
        if self.now - last_sweep > 6 * MIN:
            for line in rng.sample(lines, min(3, len(lines))):
                deadline = last_sweep + (self.now - last_sweep) * rng.uniform(0.2, 0.8)
                self.scripted("vision-qc", line, deadline - self.window_length("high"), severity="high")
        # Stories that reach the area and the plant.
        if self.top >= 3:
            self.story_to_plant(next((ln for ln in lines if ln in MACHINES), lines[0]))
            self.story_waiting_at_plant(self.config.areas[-1].lines[0].id)
        for area in self.config.areas:
            self.story_to_area(area.lines[-1].id)

    def backlog_signal(self, line: str, when: datetime, severity: str, seen: set[str]) -> Plan:
        """A waiting signal of ``severity``, preferring kinds that come at that severity and
        that the line's backlog does not show yet."""
        mix = MODEL_MIX.get(line, {"vision-qc": 1})
        for _ in range(12):
            model = self.weighted(mix)
            made = self.make_signal(model, line, when)
            head = made.record["title"][:24]
            if made.record["severity"] == severity and head not in seen:
                break
        seen.add(head)
        return self.scripted(model, line, when, severity=severity, made=made)

    def window_length(self, severity: str) -> timedelta:
        """The tier-1 response window for ``severity`` (a shift-long one counts as two hours)."""
        text = self.policy.windows[severity][1]
        return parse_duration(text) if text != END_OF_SHIFT else 2 * HOUR

    def scripted(self, model: str, line: str, when: datetime, theme: Theme | None = None, made: Plan | None = None,
                 **override) -> Plan:
        """A signal whose life is written by hand (or not at all: it waits on the board)."""
        if made is None:
            made = self.from_theme(model, line, theme, when, True) if theme else self.make_signal(model, line, when)
        record = made.record | override
        plan = self.make_plan(record, True, made.texts, made.words)
        if self.placement(plan).autonomy is Autonomy.AUTONOMOUS:
            # The model would have acted on it already; make it a call that needs a person.
            plan = self.make_plan(record | {"confidence": 0.93}, True, made.texts, made.words)
        plan.scripted = True
        self.plans.append(plan)
        return plan

    def story_to_plant(self, line: str) -> None:
        """A spindle that gets worse over three days: line → area → plant, open at the plant today."""
        area = self.config.line_area[line]
        start = self.now - timedelta(days=3, hours=5)
        hot = [r for r in self.pools["spindle"] if _spindle_mode(r) == "HDF"] or self.pools["spindle"]
        plan = self.spindle_signal(line, start, hot[0], True)
        plan.record.update(severity="high", category="delivery")
        plan = self.make_plan(plan.record, True, SPINDLE_TEXTS["HDF"], plan.words)
        plan.scripted = True
        self.plans.append(plan)
        lead, eng, sup = self.crew.leads(line)[0], self.crew.engineers(area)[0], self.crew.supervisors(area)[0]
        boss = self.crew.managers()[0]
        t = start + 20 * MIN
        self.step(t, lambda: self.past.signals.acknowledge(plan.id, actor=lead), plan)
        self.comment_as(plan, t + 15 * MIN, self.pick(self.crew.operators(line)), "Housing warm to the touch; coolant return flow looks weak.")
        act, fixer = t + 40 * MIN, self.pick(self.crew.operators(line))
        self.decide(plan, 1, act, None, DecisionKind.ACT, "Clean the fins and check the chiller first; cheapest cause.", who=lead,
                    action=("Clean spindle cooling fins and check the chiller set-point on {machine}".format(**plan.words),
                            fixer, act + 6 * HOUR))
        done = act + 3 * HOUR
        self.step(done, lambda: self.past.actions.done(plan.action_id, actor=fixer), plan)
        self.comment_as(plan, done + 4 * HOUR, lead, "Fins cleaned, chiller fine, but the spindle still runs 4 K hotter than its neighbour.")
        up1 = start + timedelta(days=1, hours=2)
        self.decide(plan, 1, up1, None, DecisionKind.ESCALATE,
                    "Temperature still rising after cleaning; needs maintenance and a spare spindle cartridge.", who=lead)
        act2 = up1 + 2 * HOUR
        self.decide(plan, 2, act2, None, DecisionKind.ACT, "Find out whether the bearing is going before we order a cartridge.", who=sup,
                    action=(f"Vibration analysis and bearing inspection of {plan.words['asset']}", eng, act2 + 20 * HOUR))
        done2 = act2 + 9 * HOUR
        self.step(done2, lambda: self.past.actions.done(plan.action_id, actor=eng), plan)
        self.comment_as(plan, done2 + 10 * MIN, eng,
                        "Outer-race defect frequency of bearing 2 clearly visible (4.8 mm/s). Cartridge swap needed within two weeks.")
        up2 = self.now - timedelta(hours=20)
        self.decide(plan, 2, up2, None, DecisionKind.ESCALATE,
                    "Cartridge replacement: €18,400 and a two-shift stop. Above the area limit; needs plant approval.", who=sup)
        self.step(up2 + 3 * HOUR, lambda: self.past.signals.acknowledge(plan.id, actor=boss), plan)
        self.comment_as(plan, up2 + 3 * HOUR + 5 * MIN, boss, "Asked purchasing for a second quote; decision at the plant review.")

    def story_waiting_at_plant(self, line: str) -> None:
        """A supplier problem the plant has not decided yet: its window at the plant has closed."""
        area = self.config.line_area[line]
        themes = [t for t in YIELD.get(line if line in YIELD else "machining", []) if "high" in t.severities]
        start = self.now - timedelta(days=4, hours=3)
        plan = self.scripted("yield-model", line, start, theme=self.rng.choice(themes) if themes else None, severity="high")
        lead, eng = self.crew.leads(line)[0], self.crew.engineers(area)[0]
        sup, boss = self.crew.supervisors(area)[0], self.crew.managers()[0]
        self.decide(plan, 1, start + 35 * MIN, None, DecisionKind.ESCALATE,
                    "Second supplier batch with the same problem; the line cannot change suppliers.", who=lead)
        act = start + 3 * HOUR
        self.decide(plan, 2, act, None, DecisionKind.ACT, "Contain first: check the batch and sort what is in stock.", who=sup,
                    action=("Check the current seal batch and sort the stock in the supermarket", eng, act + 8 * HOUR))
        self.step(act + 5 * HOUR, lambda: self.past.actions.done(plan.action_id, actor=eng), plan)
        self.comment_as(plan, act + 5 * HOUR + 10 * MIN, eng,
                        "Seals from the new supplier's batch 2291 fail three times as often. Stock sorted; 140 seals blocked.")
        up = start + timedelta(days=1, hours=1)
        self.decide(plan, 2, up, None, DecisionKind.ESCALATE,
                    "Going back to the old seal supplier needs plant approval and a note to the customer.", who=sup)
        self.step(up + 2 * HOUR, lambda: self.past.signals.acknowledge(plan.id, actor=boss), plan)
        self.comment_as(plan, up + 2 * HOUR + 5 * MIN, boss,
                        "Asked purchasing whether the old supplier can deliver for two more months; waiting for their answer.")

    def story_to_area(self, line: str) -> None:
        """A line that could not fix it alone: escalated to the area this morning, open there."""
        area = self.config.line_area[line]
        themes = [t for t in YIELD.get(line if line in YIELD else "machining", []) if "high" in t.severities]
        start = self.now - self.hours(2.5, 3.5)
        plan = self.scripted("yield-model", line, start, theme=self.rng.choice(themes) if themes else None, severity="high")
        lead, eng = self.crew.leads(line)[0], self.crew.engineers(area)[0]
        self.step(start + 12 * MIN, lambda: self.past.signals.acknowledge(plan.id, actor=lead), plan)
        if plan.texts.comments:
            self.comment_as(plan, start + 30 * MIN, eng, plan.texts.comments[0].format(**plan.words))
        self.decide(plan, 1, start + 50 * MIN, None, DecisionKind.ESCALATE,
                    "Third time this week; the line cannot fix it on shift. Needs the area to decide.", who=lead)

    # =================================================================================
    # 5. Replay
    def replay(self) -> None:
        self.steps.sort()
        pending = sorted((p for p in self.plans), key=lambda p: p.detected)
        self._pending, self._next = pending, 0
        for step in self.steps:
            if step.at >= self.now:
                break
            self.clock.at = step.at
            if step.needs is not None and step.needs.id is None:
                self.flush(step.at)
            step.run()
        self.clock.at = self.now
        self.flush(self.now)

    def flush(self, upto: datetime) -> None:
        """Ingest every planned signal detected by ``upto`` that is not in yet."""
        batch = []
        while self._next < len(self._pending) and self._pending[self._next].detected <= upto:
            batch.append(self._pending[self._next])
            self._next += 1
        if not batch:
            return
        by_actor: dict[str, list[Plan]] = defaultdict(list)
        for plan in batch:
            by_actor[plan.by].append(plan)
        for actor, plans in by_actor.items():
            rows = [Row(n, dict(p.record)) for n, p in enumerate(plans, start=1)]
            report = self.past.ingest.ingest(rows, origin=ORIGIN, actor=actor)
            if report.rejected:
                raise ValueError(f"demo signals refused: {report.rejected[:3]}")
        keys = [(p.record["source"], p.record["external_id"]) for p in batch]
        with self.past.ctx.read() as session:
            ids = dict(((s, e), i) for i, s, e in session.execute(
                select(Signal.id, Signal.source, Signal.external_id).where(tuple_(Signal.source, Signal.external_id).in_(keys))))
        for plan in batch:
            plan.id = ids[(plan.record["source"], plan.record["external_id"])]

    def build(self) -> None:
        self.plan_meetings()
        self.plan_signals()
        self.plan_today()
        self.plans.sort(key=lambda p: p.detected)
        self.plan_lives()
        self.replay()


def is_demo(services: Services) -> bool:
    """True when the database holds the demo plant built by ``build_demo``."""
    with services.ctx.read() as session:
        return session.get(SyncState, MARKER) is not None


def demo_present(services: Services) -> bool:
    """True when the database already holds the demo plant, or any plant history at all
    (signals, actions, meetings), which the demo must never be mixed into."""
    with services.ctx.read() as session:
        if session.get(SyncState, MARKER) is not None:
            return True
        return any(session.scalar(select(func.count()).select_from(table)) for table in (Signal, Action, Meeting))


def build_demo(services: Services) -> bool:
    """Fill the database behind ``services`` with the demo plant's two weeks of history.

    Returns True if it built the demo now, False if the database already holds it (a
    second call adds nothing). The history is written through a second set of services
    into a scratch database, then copied into place in one step with SQLite's backup API,
    so an interrupted build leaves the database as it was rather than half a plant."""
    if demo_present(services):
        return False
    with tempfile.TemporaryDirectory(prefix="tiermeet-demo-") as scratch:
        path = Path(scratch) / "demo.db"
        builder = Builder(services.ctx.config, services.ctx.clock.now(), path)
        try:
            builder.build()
            builder.mark_built()
        finally:
            builder.past.ctx.engine.dispose()
        if demo_present(services):
            return False
        backup(path, services.ctx.db_path)
    return True
