"""分类转办: routing rules from a CSV, validated at start, applied by the worker on intake.

The file (`CITYBRAIN_ROUTING_RULES`) has the header
`category,area_id,severity,department,sla_minutes`; `area_id` and `severity` may be
empty (any). For an incident the most specific matching row wins: a row naming an
area the incident lies in beats one that names none (a deeper area beats a
shallower one), then a row naming its severity beats one that does not, then the
category alone. Every problem stops the start with the file and line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dashboard.csvfile import csv_rows
from dashboard.geography import Geography
from dashboard.kinds.base import ID

HEADER = ("category", "area_id", "severity", "department", "sla_minutes")
DEMO_RULES = Path(__file__).resolve().parent / "demo" / "routing.csv"


class RoutingError(ValueError):
    """A routing file cannot be used; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the rules file: what it matches, where it sends, and its line."""

    category: str
    area_id: str  # "" for any
    severity: str  # "" for any
    department: str
    sla_minutes: int | None  # None: the category's SLA
    line: int

    def describe(self) -> str:
        """The rule as the incident's history shows it."""
        return f"rule {self.line}: {self.category},{self.area_id},{self.severity}"


class Routing:
    """The rules of one file, indexed by category."""

    def __init__(self, rules: Iterable[Rule], geography: Geography, source: str = "") -> None:
        self.source = source
        self.geography = geography
        self.by_category: dict[str, list[Rule]] = {}
        for rule in rules:
            self.by_category.setdefault(rule.category, []).append(rule)

    def route(self, category: str, area: str, severity: str) -> Rule | None:
        """The most specific rule for an incident (None when no row matches)."""
        candidates = self.by_category.get(category)
        if not candidates:
            return None
        chain = self.geography.chain(area) if area in self.geography.areas else ()
        depth = {a: len(chain) - i for i, a in enumerate(chain)}  # the area itself deepest
        best: tuple[int, int] | None = None
        chosen = None
        for rule in candidates:
            if rule.severity and rule.severity != severity:
                continue
            if rule.area_id and rule.area_id not in depth:
                continue
            rank = (depth.get(rule.area_id, 0), 1 if rule.severity else 0)
            if best is None or rank > best:
                best, chosen = rank, rule
        return chosen


def load_routing(path: str | Path, geography: Geography,
                 departments: Iterable[str]) -> Routing:
    """Read and check a rules file; `RoutingError` naming the file and line otherwise."""
    name = str(path)
    allowed = set(departments)
    rules: list[Rule] = []
    seen: dict[tuple[str, str, str], int] = {}
    for line, row in csv_rows(path, HEADER, RoutingError, "routing rules"):
        category, area_id, severity, department, sla = row
        where = f"{name}:{line}"
        if not ID.fullmatch(category):
            raise RoutingError(f"{where}: category must be 1-64 characters of A-Za-z0-9._:-")
        if area_id and area_id not in geography.areas:
            raise RoutingError(f"{where}: area_id {area_id!r} is not an area of the city")
        if severity not in ("", "1", "2", "3", "4"):
            raise RoutingError(f"{where}: severity must be 1, 2, 3, 4 or empty")
        if department not in allowed:
            raise RoutingError(f"{where}: department {department!r} is not one of "
                               "CITYBRAIN_DEPARTMENTS")
        minutes: int | None = None
        if sla:
            if not sla.isdigit() or int(sla) <= 0:
                raise RoutingError(f"{where}: sla_minutes must be a positive whole number "
                                   "or empty")
            minutes = int(sla)
        key = (category, area_id, severity)
        if key in seen:
            raise RoutingError(f"{where}: the same category, area_id and severity as line "
                               f"{seen[key]}")
        seen[key] = line
        rules.append(Rule(category, area_id, severity, department, minutes, line))
    return Routing(rules, geography, name)
