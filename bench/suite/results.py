"""Rows of a bench/run report. A row is a measurement (value, unit), a comparison of a
raympi measurement with a baseline (baseline, ratio = value / baseline, target), or a row that
could not be measured: FAILED (with the reason), not yet implemented, peer not installed."""
import statistics
from dataclasses import dataclass, field

OK = "ok"
FAILED = "FAILED"
NOT_IMPLEMENTED = "not yet implemented"
PEER_MISSING = "peer not installed"


@dataclass
class Row:
    name: str
    value: float = None
    unit: str = ""
    baseline: float = None
    baseline_name: str = ""
    ratio: float = None
    status: str = OK
    reason: str = ""
    target: str = ""
    target_met: bool = None
    section: str = ""
    samples: list = field(default_factory=list)

    def as_json(self):
        return {
            "name": self.name, "value": self.value, "unit": self.unit,
            "baseline": self.baseline, "baseline_name": self.baseline_name or None,
            "ratio": self.ratio, "status": self.status, "reason": self.reason or None,
            "target": self.target or None, "target_met": self.target_met,
            "section": self.section, "samples": self.samples,
        }


class Measurements:
    """Every value measured in this run, by row name, with its samples over the repeats."""

    def __init__(self):
        self.samples = {}  # name -> [values]
        self.units = {}
        self.order = []

    def add(self, name, value, unit):
        if name not in self.samples:
            self.samples[name] = []
            self.order.append(name)
        self.samples[name].append(value)
        self.units[name] = unit

    def median(self, name):
        values = self.samples.get(name)
        return statistics.median(values) if values else None
