"""The open incidents of one place (the area they lie in), counted and sorted.

A city's open incidents lie in a few thousand places; a view sums the places' counts
up the area tree (`view._open_totals`). A place is counted again only when its
incidents changed, and when the read says which ones (`ChangeReader.changed_places`),
only those are taken out of its counts and sorted lists and put back in: a district
holding 6,000 open incidents costs a few list inserts per report, not a sort.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from dashboard.kinds.incident import OpenIncident

DUE = attrgetter("due")
_CATEGORY = attrgetter("category")
_SEVERITY = attrgetter("severity")

# Past this share of a place's incidents changed, it is counted whole again (cheaper)
WHOLE_SHARE = 0.25


def urgency(incident: OpenIncident) -> tuple[int, int]:
    """Most severe first, then the earliest deadline (`by_urgency`'s order, the lists')."""
    return (-incident.severity, incident.due)


@dataclass(frozen=True, slots=True)
class PlaceSums:
    """The open incidents of one place, counted once per change; never changed once built."""

    open: int
    by_category: Mapping[str, int]
    by_severity: Mapping[str, int]
    dues: Sequence[int]  # sorted: how many are overdue at a moment is one bisect
    # The incidents by deadline, and most severe first then by deadline; equal keys in
    # the place's own order (the lists' heads are picked from these: `CityView._urgent_heads`
    # and the two overdue ones)
    by_due: Sequence[OpenIncident]
    by_urgency: Sequence[OpenIncident]
    # what else is found from these incidents (a layer's grid cells), kept while they are
    derived: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, incidents: Mapping[str, OpenIncident]) -> PlaceSums:
        """Count and sort a place's open incidents."""
        values = incidents.values()  # (a place may hold thousands: no Python call for each)
        by_category = Counter(map(_CATEGORY, values))
        if "" in by_category:  # never given
            by_category["unknown"] += by_category.pop("")
        by_due = sorted(values, key=DUE)
        return cls(len(incidents), by_category,
                   {str(s): n for s, n in Counter(map(_SEVERITY, values)).items()},
                   list(map(DUE, by_due)), by_due,
                   sorted(by_due, key=_SEVERITY, reverse=True))  # (stable: due next)

    def updated(self, before: Mapping[str, OpenIncident], after: Mapping[str, OpenIncident],
                ids: Sequence[str]) -> PlaceSums:
        """The sums of `after`, these being the sums of `before`.

        The two mappings differ only in `ids`. Among equal keys the lists keep the
        mapping's order: where a changed one goes among them is found from the mapping
        (once, and only when it has equal keys).

        Equal to `PlaceSums.of(after)`, lists and ties included (`pls001`).
        """
        ids = list(dict.fromkeys(ids))
        gone = [before[i] for i in ids if i in before and after.get(i) is not before[i]]
        came = [after[i] for i in ids if i in after and before.get(i) is not after[i]]
        if len(gone) + len(came) > WHOLE_SHARE * len(after) + 8:
            return PlaceSums.of(after)
        by_category, by_severity = Counter(self.by_category), Counter(self.by_severity)
        for incident in gone:
            by_category[incident.category or "unknown"] -= 1
            by_severity[str(incident.severity)] -= 1
        for incident in came:
            by_category[incident.category or "unknown"] += 1
            by_severity[str(incident.severity)] += 1
        dues, by_due, by_urgency = list(self.dues), list(self.by_due), list(self.by_urgency)
        order = _Order(after)
        for old in gone:  # out of both lists (a changed one goes back in below)
            _remove(by_due, dues, old)
            _remove_urgent(by_urgency, old)
        for new in came:  # among equal keys, where the mapping's order puts it
            at = _insert_at(by_due, DUE, new.due, new, order.position)
            by_due.insert(at, new)
            dues.insert(at, new.due)
            by_urgency.insert(
                _insert_at(by_urgency, urgency, urgency(new), new, order.position),
                new)
        return PlaceSums(len(after), {k: n for k, n in by_category.items() if n},
                         {k: n for k, n in by_severity.items() if n}, dues, by_due, by_urgency)


class _Order:
    """Each incident's position in a place's mapping, found once when first asked."""

    def __init__(self, incidents: Mapping[str, OpenIncident]) -> None:
        self.incidents = incidents
        self.found: dict[str, int] | None = None

    def position(self, incident: OpenIncident) -> int:
        if self.found is None:
            self.found = {k: n for n, k in enumerate(self.incidents)}
        return self.found[incident.incident_id]


def _remove(by_due: list[OpenIncident], dues: list[int], old: OpenIncident) -> None:
    at = bisect_left(dues, old.due)
    while by_due[at] is not old:  # (equal deadlines: found among them by identity)
        at += 1
    del by_due[at]
    del dues[at]


def _remove_urgent(by_urgency: list[OpenIncident], old: OpenIncident) -> None:
    at = bisect_left(by_urgency, urgency(old), key=urgency)
    while by_urgency[at] is not old:
        at += 1
    del by_urgency[at]


def _insert_at(items: list[OpenIncident], key: Callable[[OpenIncident], Any], value: Any,
               new: OpenIncident, position: Callable[[OpenIncident], int]) -> int:
    """Where `new` goes in a list sorted by `key`, equal keys in the mapping's order."""
    end = bisect_right(items, value, key=key)
    start = bisect_left(items, value, 0, end, key=key)
    if start == end:
        return end
    mine = position(new)
    return bisect_left(items, mine, start, end, key=position)


# place -> its open incidents as last counted (compared by identity) and their counts
KnownPlaces = Mapping[str, tuple[Mapping[str, OpenIncident], PlaceSums]]
# place -> its incidents as the read before had them, and the ids changed since, in order
ChangedPlaces = Mapping[str, tuple[Mapping[str, OpenIncident], Collection[str]]]


def place_sums(place: str, incidents: Mapping[str, OpenIncident], known: KnownPlaces,
               changed: ChangedPlaces) -> PlaceSums:
    """A place's sums: known, updated from the known ones by what changed, or counted.

    The known ones if its incidents are the same mapping; updated when the read says
    what changed since the mapping they were counted from; else counted whole.
    """
    had = known.get(place)
    if had is not None and had[0] is incidents:
        return had[1]
    since = changed.get(place)
    if had is not None and since is not None and since[0] is had[0]:
        return had[1].updated(had[0], incidents, list(since[1]))
    return PlaceSums.of(incidents)


def group_by_place(
    incidents: Mapping[str, OpenIncident],
) -> dict[str, dict[str, OpenIncident]]:
    """The open incidents by the area they lie in."""
    by_place: dict[str, dict[str, OpenIncident]] = {}
    for incident_id, incident in incidents.items():
        place = by_place.get(incident.area)
        if place is None:
            place = by_place[incident.area] = {}
        place[incident_id] = incident
    return by_place
