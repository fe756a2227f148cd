"""An AI system feeding tiermeet: a small failure-risk model on real machine data, whose
predictions are posted to the central API as signals (``POST /v1/signals``).

The data is a subset of the AI4I 2020 Predictive Maintenance Dataset (S. Matzka, UCI
Machine Learning Repository, CC BY 4.0; see ``examples/data/README.md``). The model is a
logistic regression on the process readings (temperatures, speed, torque, tool wear,
product type), trained with plain gradient descent — no numeric library needed. Readings
held out from training play the live stream: each one whose failure risk passes the
threshold becomes a signal in the ingest contract, with the risk as its confidence, the
machine as its asset, and the readings that drove the score in its detail.

    python examples/ai4i_producer.py --server http://127.0.0.1:8700 --token-file ~/.tiermeet/token
    python examples/ai4i_producer.py --dry-run | tiermeet ingest -      # or straight into a kiosk

The token file must be readable only by its owner (mode 0600), as for ``tiermeet sync``.
"""

import argparse
import csv
import json
import math
import random
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "ai4i2020_subset.csv"
SOURCE = "ai4i-failure-risk"
MODEL_VERSION = "logreg-1"
FEATURES = ("Air temperature [K]", "Process temperature [K]", "Rotational speed [rpm]", "Torque [Nm]", "Tool wear [min]")
#: Product quality variant → the line that makes it (in the demo plant's machining area).
LINES = {"L": "CNC1", "M": "CNC2", "H": "GRIND"}
MODES = {"TWF": ("tool wear failure", "Replace the tool before the next batch"),
         "HDF": ("heat dissipation failure", "Check coolant flow and the spindle fan"),
         "PWF": ("power failure", "Check drive power and load settings"),
         "OSF": ("overstrain failure", "Reduce feed or torque; check tool wear"),
         "RNF": ("random failure", "Inspect the machine")}


@dataclass
class Reading:
    udi: int
    product: str
    kind: str
    values: dict[str, float]
    failed: bool
    modes: list[str]


def load(path: Path = DATA) -> list[Reading]:
    """The machine readings in ``path`` (the AI4I 2020 columns)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [Reading(int(r["UDI"]), r["Product ID"], r["Type"], {k: float(r[k]) for k in FEATURES},
                        r["Machine failure"] == "1", [m for m in MODES if r[m] == "1"]) for r in csv.DictReader(f)]


class Model:
    """Logistic regression on standardized readings, the product type one-hot, and a few
    products the physics of the failure modes suggests (power, temperature difference,
    wear × torque)."""

    def __init__(self) -> None:
        self.mean: list[float] = []
        self.std: list[float] = []
        self.weights: list[float] = []

    @staticmethod
    def raw(r: Reading) -> list[float]:
        v = r.values
        power = v["Torque [Nm]"] * v["Rotational speed [rpm]"] * 2 * math.pi / 60
        return [*(v[k] for k in FEATURES), power, v["Process temperature [K]"] - v["Air temperature [K]"],
                v["Tool wear [min]"] * v["Torque [Nm]"], power ** 2, float(r.kind == "L"), float(r.kind == "M")]

    def _x(self, r: Reading) -> list[float]:
        return [1.0] + [(x - m) / s for x, m, s in zip(self.raw(r), self.mean, self.std)]

    def fit(self, readings: list[Reading], *, epochs: int = 300, rate: float = 0.5, seed: int = 7) -> "Model":
        columns = list(zip(*(self.raw(r) for r in readings)))
        self.mean = [sum(c) / len(c) for c in columns]
        self.std = [max(math.sqrt(sum((x - m) ** 2 for x in c) / len(c)), 1e-9) for c, m in zip(columns, self.mean)]
        xs = [self._x(r) for r in readings]
        ys = [1.0 if r.failed else 0.0 for r in readings]
        positive = sum(ys) or 1.0
        weight = {1.0: len(ys) / (2 * positive), 0.0: len(ys) / (2 * (len(ys) - positive or 1))}  # balance the classes
        self.weights = [0.0] * len(xs[0])
        order = list(range(len(xs)))
        rnd = random.Random(seed)
        for _ in range(epochs):
            rnd.shuffle(order)
            grad = [0.0] * len(self.weights)
            for i in order:
                error = (_sigmoid(_dot(self.weights, xs[i])) - ys[i]) * weight[ys[i]]
                for j, x in enumerate(xs[i]):
                    grad[j] += error * x
            self.weights = [w - rate * g / len(xs) for w, g in zip(self.weights, grad)]
        return self

    def risk(self, r: Reading) -> float:
        return _sigmoid(_dot(self.weights, self._x(r)))

    def drivers(self, r: Reading, top: int = 2) -> list[str]:
        """The readings that pushed this score up most."""
        names = [*FEATURES, "power [W]", "temperature rise [K]", "wear × torque", "power²", "type L", "type M"]
        parts = sorted(zip(names, (w * x for w, x in zip(self.weights[1:], self._x(r)[1:]))), key=lambda p: -p[1])
        return [name for name, contribution in parts[:top] if contribution > 0]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z > -60 else 0.0


def split(readings: list[Reading], live_share: float = 0.3, seed: int = 11) -> tuple[list[Reading], list[Reading]]:
    rnd = random.Random(seed)
    shuffled = readings[:]
    rnd.shuffle(shuffled)
    cut = int(len(shuffled) * (1 - live_share))
    return shuffled[:cut], sorted(shuffled[cut:], key=lambda r: r.udi)


def severity(risk: float) -> str:
    return "critical" if risk >= 0.95 else "high" if risk >= 0.85 else "medium" if risk >= 0.7 else "low"


def signals(model: Model, live: list[Reading], *, threshold: float, now: datetime) -> list[dict]:
    """Signals in the ingest contract for the live readings at or above ``threshold``."""
    out = []
    for n, r in enumerate(live):
        risk = model.risk(r)
        if risk < threshold:
            continue
        v = r.values
        drivers = model.drivers(r)
        out.append({
            "external_id": f"ai4i-{r.udi}",
            "source": SOURCE,
            "model_version": MODEL_VERSION,
            "kind": "prediction",
            "detected_at": (now - timedelta(minutes=len(live) - n)).isoformat(timespec="seconds"),
            "area": "machining",
            "line": LINES[r.kind],
            "asset": r.product,
            "category": "delivery",
            "severity": severity(risk),
            "confidence": round(risk, 4),
            "title": f"Failure risk {risk:.0%} on {r.product} (torque {v['Torque [Nm]']:.0f} Nm, "
                     f"tool wear {v['Tool wear [min]']:.0f} min)",
            "detail": f"Driven by {', '.join(drivers) or 'the combination of readings'}. Readings: "
                      + "; ".join(f"{k} {v[k]:g}" for k in FEATURES),
            "suggested_action": MODES["OSF" if "wear × torque" in drivers else "HDF" if "temperature rise [K]" in drivers
                                     else "PWF" if "power [W]" in drivers or "power²" in drivers else "TWF"][1],
            "ai4i_udi": r.udi,
        })
    return out


def evaluate(model: Model, readings: list[Reading], threshold: float) -> dict:
    tp = sum(1 for r in readings if r.failed and model.risk(r) >= threshold)
    fp = sum(1 for r in readings if not r.failed and model.risk(r) >= threshold)
    fn = sum(1 for r in readings if r.failed and model.risk(r) < threshold)
    return {"precision": round(tp / ((tp + fp) or 1), 3), "recall": round(tp / ((tp + fn) or 1), 3), "flagged": tp + fp}


def post(server: str, token: str, records: list[dict], *, batch: int = 500, transport=None) -> dict:
    """Post ``records`` in batches; returns the summed counts and the rejected rows."""
    import httpx

    totals = {"added": 0, "duplicates": 0, "rejected": 0, "problems": []}
    with httpx.Client(base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60,
                      transport=transport) as client:
        for start in range(0, len(records), batch):
            response = client.post("/v1/signals", json={"signals": records[start:start + batch]})
            response.raise_for_status()
            body = response.json()
            for key in ("added", "duplicates", "rejected"):
                totals[key] += body[key]
            totals["problems"] += [(start + r["index"], r["field"], r["reason"]) for r in body["results"]
                                   if r["status"] == "rejected"]
    return totals


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="tiermeet server URL, e.g. http://127.0.0.1:8700")
    parser.add_argument("--token-file", type=Path, help="file holding the plant token (mode 0600)")
    parser.add_argument("--threshold", type=float, default=0.8, help="risk at which a reading becomes a signal")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--dry-run", action="store_true", help="print the signals as JSON Lines instead of posting")
    args = parser.parse_args(argv)
    train, live = split(load(args.data))
    model = Model().fit(train)
    quality = evaluate(model, live, args.threshold)
    records = signals(model, live, threshold=args.threshold, now=datetime.now(timezone.utc))
    print(f"model {MODEL_VERSION}: trained on {len(train)} readings; on {len(live)} held out: precision "
          f"{quality['precision']}, recall {quality['recall']}; {len(records)} signals", file=sys.stderr)
    if args.dry_run:
        for record in records:
            print(json.dumps(record))
        return 0
    if not args.server or not args.token_file:
        parser.error("--server and --token-file are needed to post (or use --dry-run)")
    from tiermeet.sync.client import SyncError, load_token

    try:
        token = load_token(args.token_file)
    except SyncError as exc:
        print(exc, file=sys.stderr)
        return 2
    totals = post(args.server, token, records)
    for index, field, reason in totals["problems"]:
        print(f"signal {index}: {field}: {reason}", file=sys.stderr)
    print(f"{totals['added']} added, {totals['duplicates']} duplicates, {totals['rejected']} rejected")
    return 1 if totals["rejected"] else 0


if __name__ == "__main__":
    sys.exit(main())
