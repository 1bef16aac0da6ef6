"""Risk: each area's own score from its readings, and the sums of its subtree.

`score_areas` builds them from the risk readings. Given the previous build
(`KnownRisk`) and the names of the readings that changed since the readings it was
built from, it scores again only the areas those readings belong to and sums again
only the subtrees that hold them: a city's tens of thousands of readings cost what a
few changed readings cost (the push process builds a view many times a second).
Otherwise it scores every area, still reusing a score whose values did not change and a
subtree whose inputs are the same objects. Both ways give the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dashboard.geography import Geography
from dashboard.kinds.risk import RiskModel, RiskReading

Scored = tuple[float, list[dict[str, Any]], str]  # an area's own score, factors and level
Values = tuple[tuple[str, float], ...]  # an area's indicator values, as a key


@dataclass(frozen=True)
class RiskSums:
    """The risk of an area's subtree, summed over its scored areas; never changed once built."""

    total: float = 0.0
    count: int = 0
    levels: Mapping[str, int] = field(default_factory=dict)
    max: float | None = None
    factor_sum: Mapping[str, float] = field(default_factory=dict)
    value_sum: Mapping[str, float] = field(default_factory=dict)
    value_count: Mapping[str, int] = field(default_factory=dict)


NO_RISK = RiskSums()


@dataclass(frozen=True)
class KnownRisk:
    """One build's scores and sums, and what the next build reuses of them.

    Never changed once built (a build makes new mappings), so a view keeps its own.
    `readings`: the readings it was built from (compared by identity); `values`: each
    area's indicator values; `own`: each area's values and the score they gave (None: no
    weighted indicator); `placed`: the scores by the area they count in (an area off the
    map counts in the city's); `sums`: each area's subtree sums; `subtrees`: the objects
    each was summed from; `kids`: each area's children that have sums, in summing order;
    `own_risk`: each scored area's own score and factors.
    """

    readings: Mapping[str, RiskReading] | None = None
    values: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    own: Mapping[str, tuple[Values, Scored | None]] = field(default_factory=dict)
    placed: Mapping[str, list[Scored]] = field(default_factory=dict)
    sums: Mapping[str, RiskSums] = field(default_factory=dict)
    subtrees: Mapping[str, tuple[tuple[Any, ...], RiskSums]] = field(default_factory=dict)
    kids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    own_risk: Mapping[str, tuple[float, list[dict[str, Any]]]] = field(default_factory=dict)


def score_areas(readings: Mapping[str, RiskReading], geography: Geography, model: RiskModel,
                known: KnownRisk | None = None,
                changed: tuple[Mapping[str, RiskReading], Collection[str]] | None = None,
                ) -> KnownRisk:
    """The areas' scores and sums from `readings`.

    Readings mappings are never changed once built (a read makes new ones, as every
    mapping a view is built from): the very readings `known` was built from give it back.
    `changed`: (the readings of an earlier read, the names of the readings that differ
    from them); when those are the readings `known` was built from, only what they
    touch is done again.
    """
    known = known or KnownRisk()
    if known.readings is readings:
        return known
    if changed is not None and changed[0] is known.readings and known.readings is not None:
        updated = _update(readings, changed[1], known, geography, model)
        if updated is not None:
            return updated
    return _build(readings, geography, model, known)


def chain_of(geography: Geography, area_id: str) -> tuple[str, ...]:
    """An area's chain up to the city; an area off the map counts in the city's."""
    if area_id in geography.areas:
        return geography.chain(area_id)
    return (geography.root_id,)


def _scored(model: RiskModel, values: Mapping[str, float]) -> Scored | None:
    """An area's own score, factors and level (None: no weighted indicator)."""
    if not model.scores(values):
        return None
    factors = model.factors(values)
    score = min(100.0, sum(f["contribution"] for f in factors))
    return score, factors, model.level(score)


def _build(readings: Mapping[str, RiskReading], geography: Geography, model: RiskModel,
           known: KnownRisk) -> KnownRisk:
    """Every area scored (a score whose values did not change is reused) and summed."""
    values: defaultdict[str, dict[str, float]] = defaultdict(dict)
    for reading in readings.values():
        values[reading.area][reading.indicator] = reading.value
    own: dict[str, tuple[Values, Scored | None]] = {}
    placed: dict[str, list[Scored]] = {}
    shared: dict[Values, Scored | None] = {}  # areas with the same values share one score
    for area, area_values in values.items():
        key = tuple(area_values.items())
        before = known.own.get(area)
        if before is not None and before[0] == key:
            found = before[1]
        elif key in shared:
            found = shared[key]
        else:
            found = _scored(model, area_values)
        shared[key] = found
        own[area] = (key, found)
        if found is not None:
            placed.setdefault(chain_of(geography, area)[0], []).append(found)
    sums, subtrees, kids = _roll_up(placed, geography, known.subtrees)
    own_risk = {area: (found[0], found[1]) for area, (_, found) in own.items()
                if found is not None}
    return KnownRisk(readings, dict(values), own, placed, sums, subtrees, kids, own_risk)


def _roll_up(
    placed: Mapping[str, list[Scored]], geography: Geography,
    known: Mapping[str, tuple[tuple[Any, ...], RiskSums]],
) -> tuple[dict[str, RiskSums], dict[str, tuple[tuple[Any, ...], RiskSums]],
           dict[str, tuple[str, ...]]]:
    """Each area's subtree sums, the finest level first; reused where nothing changed."""
    at_depth: dict[int, set[str]] = {}
    for area in placed:
        at_depth.setdefault(len(chain_of(geography, area)), set()).add(area)
    kids: defaultdict[str, list[str]] = defaultdict(list)  # in the children's order
    sums: dict[str, RiskSums] = {}
    memo: dict[str, tuple[tuple[Any, ...], RiskSums]] = {}
    for depth in range(max(at_depth, default=0), 0, -1):
        for area in sorted(at_depth.get(depth, ())):
            inputs = (*placed.get(area, ()), *(sums[k] for k in kids.get(area, ())))
            before = known.get(area)
            if (before is not None and len(before[0]) == len(inputs)
                    and all(a is b for a, b in zip(before[0], inputs, strict=True))):
                result = before[1]
            else:
                result = _sum_risk(placed.get(area, ()), [sums[k] for k in kids.get(area, ())])
            memo[area] = (inputs, result)
            sums[area] = result
            if depth > 1:
                parent = chain_of(geography, area)[1]
                kids[parent].append(area)
                at_depth.setdefault(depth - 1, set()).add(parent)
    return sums, memo, {area: tuple(children) for area, children in kids.items()}


def _update(readings: Mapping[str, RiskReading], names: Collection[str], known: KnownRisk,
            geography: Geography, model: RiskModel) -> KnownRisk | None:
    """`known` with the readings `names` changed; None when that needs a whole build.

    A whole build when a changed reading lies off the map or on the city itself (the
    city's list of scores keeps their order) or an area gains or loses a score (the
    children summed change).
    """
    before = known.readings or {}
    areas, root = geography.areas, geography.root_id
    values: dict[str, Mapping[str, float]] = dict(known.values)
    copies: dict[str, dict[str, float]] = {}  # the touched areas' values, copied once

    def copy_of(area: str) -> dict[str, float]:
        if area not in copies:
            copies[area] = dict(values.get(area, {}))
            values[area] = copies[area]
        return copies[area]

    for name in names:
        old, new = before.get(name), readings.get(name)
        for reading in (old, new):
            if reading is not None and (reading.area not in areas or reading.area == root):
                return None
        if old is not None:
            copy_of(old.area).pop(old.indicator, None)
        if new is not None:
            copy_of(new.area)[new.indicator] = new.value
    own = dict(known.own)
    placed = dict(known.placed)
    own_risk = dict(known.own_risk)
    moved: list[str] = []  # areas whose score is another object now
    for area, area_values in copies.items():
        had = known.own.get(area)
        had_score = had[1] if had is not None else None
        key = tuple(area_values.items())
        found = had_score if had is not None and had[0] == key else (
            _scored(model, area_values) if area_values else None)
        if (found is None) != (had_score is None):
            return None
        if not area_values:
            del values[area]
            own.pop(area, None)
        else:
            own[area] = (key, found)
        if found is not None and found is not had_score:
            placed[area] = [found]
            own_risk[area] = (found[0], found[1])
            moved.append(area)
    if not moved:
        return KnownRisk(readings, values, own, placed, known.sums, known.subtrees, known.kids,
                         own_risk)
    sums = dict(known.sums)
    subtrees = dict(known.subtrees)
    dirty = {a for area in moved for a in geography.chain(area)}
    for area in sorted(dirty, key=lambda a: -len(geography.chain(a))):  # finest first
        parts = [sums[k] for k in known.kids.get(area, ())]
        own_scores = placed.get(area, ())
        sums[area] = _sum_risk(own_scores, parts)
        subtrees[area] = ((*own_scores, *parts), sums[area])
    return KnownRisk(readings, values, own, placed, sums, subtrees, known.kids, own_risk)


def _sum_risk(own: Sequence[Scored], parts: Sequence[RiskSums]) -> RiskSums:
    """An area's subtree sums: its own scores, then its children's sums in their order."""
    total, count, top = 0.0, 0, None
    levels: dict[str, int] = {}
    factor_sum: dict[str, float] = {}
    value_sum: dict[str, float] = {}
    value_count: dict[str, int] = {}
    for score, factors, level in own:
        total += score
        count += 1
        levels[level] = levels.get(level, 0) + 1
        top = score if top is None else max(top, score)
        for f in factors:
            name = f["indicator"]
            factor_sum[name] = factor_sum.get(name, 0) + f["contribution"]
            value_sum[name] = value_sum.get(name, 0) + f["value"]
            value_count[name] = value_count.get(name, 0) + 1
    for part in parts:
        total += part.total
        count += part.count
        if part.max is not None:
            top = part.max if top is None else max(top, part.max)
        for into, sums in ((levels, part.levels), (factor_sum, part.factor_sum),
                           (value_sum, part.value_sum), (value_count, part.value_count)):
            add_into(into, sums)
    return RiskSums(total, count, levels, top, factor_sum, value_sum, value_count)


def add_into(into: dict[str, Any], sums: Mapping[str, Any]) -> None:
    """Add each of `sums` to the same key of `into` (missing keys count from 0)."""
    for name, value in sums.items():
        into[name] = into.get(name, 0) + value
