"""The risk indicator tree (风险指标体系): categories → indicators with weights, from a CSV.

The file (`CITYBRAIN_RISK_TREE`) has the header
`category,indicator,weight,saturation,name_zh,name_en`. A row with an empty
`indicator` declares a category: its `weight` is the most points (of 100) the
category adds to the score. A row with an indicator gives its weight *within*
its category (relative: the category's points are shared out in proportion)
and its saturation (the value at which it gives all its points). So an
indicator adds `category weight × weight / Σ weights of the category ×
min(max(value, 0) / saturation, 1)` points; the flat model
(`CITYBRAIN_RISK_MODEL`) is the one-category case. Every problem stops the
start with the file and the line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dashboard.csvfile import csv_rows

HEADER = ("category", "indicator", "weight", "saturation", "name_zh", "name_en")
DEMO_TREE = Path(__file__).resolve().parent / "demo" / "risk_tree.csv"
FLAT_CATEGORY = "risk"  # the one category of the flat model
ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # the contract's id charset


class RiskTreeError(ValueError):
    """A risk tree file cannot be used; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Category:
    """A category of the tree: its points, names and indicators (in file order)."""

    code: str
    weight: float
    name_zh: str
    name_en: str
    indicators: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Indicator:
    """An indicator: its category, its points (the category's share) and saturation."""

    code: str
    category: str
    points: float  # the most it adds to the score
    saturation: float
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class RiskTree:
    """Categories and indicators of one file."""

    categories: tuple[Category, ...]
    indicators: Mapping[str, Indicator]
    source: str = ""

    def flat(self) -> dict[str, tuple[float, float]]:
        """Indicator → (points, saturation): the flat model the worker's script scores."""
        return {code: (i.points, i.saturation) for code, i in self.indicators.items()}

    def category_of(self, indicator: str) -> str | None:
        """The category an indicator belongs to (None: not in the tree)."""
        found = self.indicators.get(indicator)
        return found.category if found else None

    def name(self, code: str, lang: str) -> str | None:
        """The tree's own name of a category or indicator in the language (None: none)."""
        for category in self.categories:
            if category.code == code:
                return category.name_en if lang == "en" else category.name_zh
        found = self.indicators.get(code)
        if found is None:
            return None
        return found.name_en if lang == "en" else found.name_zh


def _number(text: str, what: str, where: str, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RiskTreeError(f"{where}: {what} must be a number, got {text[:40]!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise RiskTreeError(f"{where}: {what} must be a finite number "
                            f"{'above' if positive else 'of at least'} 0, got {text[:40]!r}")
    return value


def load_risk_tree(path: str | Path) -> RiskTree:
    """Read and check a tree file; `RiskTreeError` naming the file and line otherwise."""
    name = str(path)
    heads: dict[str, tuple[float, str, str, int]] = {}  # category -> weight, names, line
    members: dict[str, list[tuple[str, float, float, str, str, int]]] = {}
    lines: dict[str, int] = {}  # indicator -> its line
    for line, row in csv_rows(path, HEADER, RiskTreeError, "risk tree"):
        where = f"{name}:{line}"
        category, indicator, weight, saturation, name_zh, name_en = row
        if not ID.fullmatch(category):
            raise RiskTreeError(f"{where}: category must be 1-64 characters of A-Za-z0-9._:-")
        if not indicator:
            if category in heads:
                raise RiskTreeError(f"{where}: category {category!r} is declared again "
                                    f"(line {heads[category][3]})")
            if saturation:
                raise RiskTreeError(f"{where}: a category row has no saturation")
            heads[category] = (_number(weight, "weight", where, True), name_zh, name_en, line)
            continue
        if not ID.fullmatch(indicator):
            raise RiskTreeError(f"{where}: indicator must be 1-64 characters of A-Za-z0-9._:-")
        if indicator in lines:
            raise RiskTreeError(f"{where}: indicator {indicator!r} is already on line "
                                f"{lines[indicator]}")
        lines[indicator] = line
        members.setdefault(category, []).append((
            indicator, _number(weight, "weight", where, True),
            _number(saturation, "saturation", where, True), name_zh, name_en, line))
    for category, items in members.items():
        if category not in heads:
            raise RiskTreeError(f"{name}:{items[0][5]}: category {category!r} has no row of "
                                "its own (category,,weight,,name_zh,name_en)")
    for category, (_, _, _, line) in heads.items():
        if category not in members:
            raise RiskTreeError(f"{name}:{line}: category {category!r} has no indicators")
    if not heads:
        raise RiskTreeError(f"{name}:2: the tree has no categories")
    total = sum(head[0] for head in heads.values())
    if total > 100.000001:
        raise RiskTreeError(f"{name}:{min(h[3] for h in heads.values())}: the category "
                            f"weights add up to {total:g}, more than 100")
    categories, indicators = [], {}
    for category, (points, zh, en, _) in heads.items():
        items = members[category]
        share = sum(item[1] for item in items)
        for code, w, sat, izh, ien, _ in items:
            indicators[code] = Indicator(code, category, points * w / share, sat,
                                         izh or code, ien or code)
        categories.append(Category(category, points, zh or category, en or category,
                                   tuple(item[0] for item in items)))
    return RiskTree(tuple(categories), indicators, name)
