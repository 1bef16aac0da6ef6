"""Each area's open incidents (its subtree's): how many, how many overdue, by what.

`open_totals` sums the places' counts (`PlaceSums`) up the area tree. Given the
previous build (`KnownOpen`) it changes only the chains of the places whose incidents
changed and of those where a deadline passed since (a heap of each place's next
deadline says which): at 100,000 open incidents a build costs the few places a feed
touched, not every place and area. The counts are integers, so both ways give the
same totals (`opn001`).
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from dashboard.geography import Geography
from dashboard.kinds.incident import OpenIncident
from dashboard.state.place_sums import ChangedPlaces, KnownPlaces, PlaceSums, place_sums
from dashboard.state.risk_sums import add_into, chain_of


@dataclass(slots=True)
class OpenTotals:
    """One area's open incidents; not changed once its build is done."""

    open: int = 0
    overdue: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)

    def copy(self) -> OpenTotals:
        """A copy to change (the dicts too)."""
        return OpenTotals(self.open, self.overdue, dict(self.by_category),
                          dict(self.by_severity))


NO_OPEN = OpenTotals()


@dataclass(frozen=True)
class KnownOpen:
    """One build's totals and what the next build starts from; never changed once built.

    `places`: each place's incidents (compared by identity) and their `PlaceSums`;
    `late`: how many of each place's were overdue at `now_ms`; `totals`: each area's;
    `next_due`: a heap of (a place's next deadline to pass, the place), with entries
    of places changed since, which are skipped.
    """

    now_ms: int = 0
    places: Mapping[str, tuple[Mapping[str, OpenIncident], PlaceSums]] = field(
        default_factory=dict)
    late: Mapping[str, int] = field(default_factory=dict)
    totals: Mapping[str, OpenTotals] = field(default_factory=dict)
    next_due: list[tuple[int, str]] = field(default_factory=list)


def open_totals(
    by_place: Mapping[str, Mapping[str, OpenIncident]], geography: Geography, now_ms: int,
    known: KnownOpen | None = None, changed: ChangedPlaces | None = None,
    known_places: KnownPlaces | None = None,
) -> KnownOpen:
    """The areas' totals at `now_ms`, from the previous build's when given.

    `known`: the previous build (its clock not after `now_ms`, else a whole build);
    `changed`: what the read says changed in each place (`place_sums`); `known_places`:
    place sums to reuse by identity in a whole build (an official's scoped view).
    """
    if known is None or now_ms < known.now_ms:
        return _whole(by_place, geography, now_ms, known_places or {}, changed or {})
    return _step(by_place, geography, now_ms, known, changed or {})


def _whole(by_place: Mapping[str, Mapping[str, OpenIncident]], geography: Geography,
           now_ms: int, known: KnownPlaces, changed: ChangedPlaces) -> KnownOpen:
    """Every place counted (or reused) and summed up the tree.

    Level by level, deepest first, each area into its parent: a few thousand places,
    not 100,000 chains.
    """
    totals: defaultdict[str, OpenTotals] = defaultdict(OpenTotals)
    places: dict[str, tuple[Mapping[str, OpenIncident], PlaceSums]] = {}
    late: dict[str, int] = {}
    next_due: list[tuple[int, str]] = []
    areas = geography.areas
    for place, incidents in by_place.items():
        if not incidents:
            continue
        sums = place_sums(place, incidents, known, changed)
        places[place] = (incidents, sums)
        late[place] = overdue = bisect_right(sums.dues, now_ms)
        if overdue < len(sums.dues):
            next_due.append((sums.dues[overdue], place))
        t = totals[place if place in areas else geography.root_id]  # off the map: the city's
        t.open += sums.open
        t.overdue += overdue
        add_into(t.by_category, sums.by_category)
        add_into(t.by_severity, sums.by_severity)
    by_depth: defaultdict[int, list[str]] = defaultdict(list)
    for area in totals:
        by_depth[len(geography.chain(area))].append(area)
    for depth in range(max(by_depth, default=0), 1, -1):
        for area in by_depth[depth]:
            parent = areas[area].parent_id or geography.root_id  # (only the root has none)
            if parent not in totals:
                by_depth[depth - 1].append(parent)
            into, t = totals[parent], totals[area]
            into.open += t.open
            into.overdue += t.overdue
            add_into(into.by_category, t.by_category)
            add_into(into.by_severity, t.by_severity)
    heapq.heapify(next_due)
    return KnownOpen(now_ms, places, late, dict(totals), next_due)


class _Changes:
    """What this build adds to each area: per place, then along its chain."""

    def __init__(self) -> None:
        self.by_place: defaultdict[str, OpenTotals] = defaultdict(OpenTotals)

    def add(self, place: str, sums: PlaceSums, late: int, sign: int) -> None:
        d = self.by_place[place]
        d.open += sign * sums.open
        d.overdue += sign * late
        for into, counts in ((d.by_category, sums.by_category),
                             (d.by_severity, sums.by_severity)):
            for name, n in counts.items():
                into[name] = into.get(name, 0) + sign * n

    def applied(self, totals: Mapping[str, OpenTotals], geography: Geography,
                ) -> dict[str, OpenTotals]:
        """`totals` with the changes added along each changed place's chain.

        Each area changed is a copy; the areas left with nothing are dropped.
        """
        out, copied = dict(totals), set()
        for place, d in self.by_place.items():
            for area in chain_of(geography, place):
                if area not in copied:
                    copied.add(area)
                    had = out.get(area)
                    out[area] = had.copy() if had is not None else OpenTotals()
                t = out[area]
                t.open += d.open
                t.overdue += d.overdue
                add_into(t.by_category, d.by_category)
                add_into(t.by_severity, d.by_severity)
        for area in copied:
            t = out[area]
            if not t.open:
                del out[area]
                continue
            for counts in (t.by_category, t.by_severity):
                for name in [name for name, n in counts.items() if not n]:
                    del counts[name]
        return out


def _step(by_place: Mapping[str, Mapping[str, OpenIncident]], geography: Geography,
          now_ms: int, known: KnownOpen, changed: ChangedPlaces) -> KnownOpen:
    """The known totals changed by the places that changed and the deadlines that passed."""
    places, late, next_due = dict(known.places), dict(known.late), list(known.next_due)
    changes, touched = _Changes(), set()
    for place, incidents in by_place.items():
        had = places.get(place)
        if had is not None and had[0] is incidents:
            continue
        touched.add(place)
        if had is not None:
            changes.add(place, had[1], late.pop(place), -1)
            del places[place]
        if incidents:
            sums = place_sums(place, incidents, known.places, changed)
            places[place] = (incidents, sums)
            late[place] = overdue = bisect_right(sums.dues, now_ms)
            changes.add(place, sums, overdue, 1)
            if overdue < len(sums.dues):
                heapq.heappush(next_due, (sums.dues[overdue], place))
    for place in [p for p in places if p not in by_place]:  # no open incident left
        touched.add(place)
        changes.add(place, places.pop(place)[1], late.pop(place), -1)
    while next_due and next_due[0][0] <= now_ms:
        due, place = heapq.heappop(next_due)
        had = places.get(place)
        if had is None or place in touched:
            continue  # (gone, or changed: its entry is new)
        dues, overdue = had[1].dues, late[place]
        if overdue >= len(dues) or dues[overdue] != due:
            continue  # an entry of the place before it changed
        late[place] = passed = bisect_right(dues, now_ms)
        changes.by_place[place].overdue += passed - overdue
        if passed < len(dues):
            heapq.heappush(next_due, (dues[passed], place))
    if len(next_due) > 2 * len(places) + 64:  # too many entries of changed places: anew
        next_due = [(sums.dues[late[p]], p) for p, (_, sums) in places.items()
                    if late[p] < len(sums.dues)]
        heapq.heapify(next_due)
    return KnownOpen(now_ms, places, late, changes.applied(known.totals, geography), next_due)
