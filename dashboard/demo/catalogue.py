"""The demo city's catalogue, read once from `catalogue.json` (data, not code).

Incident categories (share, department, title templates with {r} a road, {s}
a cross road, {n} a number), sources, severities, how often each producer
sends epoch-ms `ts`, coordinate datums, road names per city code prefix,
per-district profiles and the risk tiers the demo aims at.
"""

from __future__ import annotations

import json
from importlib import resources
from types import MappingProxyType
from typing import Any

_DATA: dict[str, Any] = json.loads(
    resources.files("dashboard.demo").joinpath("catalogue.json").read_text(encoding="utf-8"))

# category -> (share of reports, department, title templates)
CATEGORIES: tuple[tuple[str, float, str, tuple[str, ...]], ...] = tuple(
    (c["code"], float(c["share"]), c["department"], tuple(c["titles"]))
    for c in _DATA["categories"])
SOURCES: tuple[tuple[str, float], ...] = tuple(
    (s["code"], float(s["share"])) for s in _DATA["sources"])
SEVERITY_WEIGHTS: tuple[float, ...] = tuple(_DATA["severity_weights"])  # severity 1..4
SEVERE_CATEGORIES = frozenset(_DATA["severe_categories"])
MS_SHARE = MappingProxyType(dict(_DATA["epoch_ms_share"]))  # share of epoch-ms `ts`
DATUMS: tuple[str, ...] = tuple(d["datum"] for d in _DATA["datums"])
DATUM_SHARES: tuple[float, ...] = tuple(d["share"] for d in _DATA["datums"])
ROADS = MappingProxyType({prefix: tuple(names) for prefix, names in _DATA["roads"].items()})
# district code -> (weight of its incidents, centrality 0..1 for traffic congestion)
DISTRICT_PROFILE = MappingProxyType({
    code: (float(p["incidents"]), float(p["centrality"]))
    for code, p in _DATA["district_profiles"].items()})
UNKNOWN_PROFILE = (float(_DATA["unknown_district_profile"]["incidents"]),
                   float(_DATA["unknown_district_profile"]["centrality"]))
# risk tiers: (share of the finest areas, score range aimed at)
RISK_TIERS: tuple[tuple[float, tuple[float, float]], ...] = tuple(
    (float(t["share"]), (float(t["scores"][0]), float(t["scores"][1])))
    for t in _DATA["risk_tiers"])
RISK_NORMAL = (float(_DATA["risk_normal_scores"][0]), float(_DATA["risk_normal_scores"][1]))


def roads(root_id: str) -> tuple[str, ...]:
    """Road names for a city: by the prefix of its code, else the generic ones."""
    for prefix, names in ROADS.items():
        if prefix and root_id.startswith(prefix):
            return names
    return ROADS[""]
