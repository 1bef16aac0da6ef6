"""Today's and yesterday's counters (the day hashes): each area's and each hour's.

The worker counts per day, per area: reports (`r|area`), closes (`c|area`), seconds
to close (`s|area`) and reports per hour (`h|HH|area`). A view needs each area's
subtree sums of today's and of the reports per hour (its 24-hour trend; reports
off the map count in no area's trend, as they lie in none). Given the
previous build (`KnownDays`) and the fields that changed since (`decode_day`), only
those fields' chains and areas are changed: a city's tens of thousands of fields cost
the few a round wrote. The counters are integers: both ways give the same numbers
(`day001`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from dashboard.geography import Geography
from dashboard.state.risk_sums import chain_of

Hours = Counter[tuple[str, str]]  # (day name "today"/"yesterday", hour "HH") -> reports
# slot ("today"/"yesterday") -> its fields as read before and the names changed since
ChangedDays = Mapping[str, tuple[Mapping[str, int], Collection[str]]]
# slot -> (its hash's key, the hash as stored, its fields decoded) as last read
DaysRead = dict[str, tuple[str, Mapping[bytes, bytes], dict[str, int]]]


@dataclass(slots=True)
class DayTotals:
    """One area's incidents of today (its subtree's); not changed once its build is done."""

    today: int = 0
    closed_today: int = 0
    close_seconds: int = 0

    def add(self, kind: str, value: int) -> None:
        """Add a counter's value by its kind (`r`, `c` or `s`)."""
        if kind == "r":
            self.today += value
        elif kind == "c":
            self.closed_today += value
        else:
            self.close_seconds += value


NO_DAY = DayTotals()
NO_HOURS: Hours = Counter()
_TOTALS = ("r", "c", "s")


@dataclass(frozen=True)
class KnownDays:
    """One build's day sums and the fields they came from; never changed once built."""

    today: Mapping[str, int] = field(default_factory=dict)
    yesterday: Mapping[str, int] = field(default_factory=dict)
    totals: Mapping[str, DayTotals] = field(default_factory=dict)  # area -> today's
    hours: Mapping[str, Hours] = field(default_factory=dict)  # area -> its subtree's hours


def day_sums(today: Mapping[str, int], yesterday: Mapping[str, int], geography: Geography,
             known: KnownDays | None = None, changed: ChangedDays | None = None) -> KnownDays:
    """Each area's sums of today and its reports per hour.

    From the known ones when the read says what changed since the fields they came
    from (`decode_day`), else from every field.
    """
    if known is not None and known.today is today and known.yesterday is yesterday:
        return known  # (the same read)
    since = changed or {}
    if (known is not None and "today" in since and "yesterday" in since
            and since["today"][0] is known.today and since["yesterday"][0] is known.yesterday):
        return _step(today, yesterday, geography, known, since)
    totals: defaultdict[str, DayTotals] = defaultdict(DayTotals)
    own_hours: dict[str, Hours] = {}  # area -> its own fields' (summed up the tree below)
    for day_name, fields in (("today", today), ("yesterday", yesterday)):
        for name, value in fields.items():
            kind, _, rest = name.partition("|")
            if kind == "h":
                hour, _, area = rest.partition("|")
                counts = own_hours.get(area)
                if counts is None:
                    counts = own_hours[area] = Counter()
                counts[(day_name, hour)] += value
            elif kind in _TOTALS and day_name == "today":
                for parent in chain_of(geography, rest):
                    totals[parent].add(kind, value)
    return KnownDays(today, yesterday, dict(totals), _subtree_hours(own_hours, geography))


def _subtree_hours(own: Mapping[str, Hours], geography: Geography) -> dict[str, Hours]:
    """Each area's reports per hour, its subtree's: level by level, deepest first."""
    areas = geography.areas
    hours: dict[str, Hours] = {area: Counter(counts) for area, counts in own.items()
                               if area in areas}
    by_depth: defaultdict[int, list[str]] = defaultdict(list)
    for area in hours:
        by_depth[len(geography.chain(area))].append(area)
    for depth in range(max(by_depth, default=0), 1, -1):
        for area in by_depth[depth]:
            parent = areas[area].parent_id or geography.root_id
            into = hours.get(parent)
            if into is None:
                into = hours[parent] = Counter()
                by_depth[depth - 1].append(parent)
            into.update(hours[area])
    return hours


def _step(today: Mapping[str, int], yesterday: Mapping[str, int], geography: Geography,
          known: KnownDays, since: ChangedDays) -> KnownDays:
    """The known sums with each changed field's difference added (copies of what changed)."""
    totals, hours = dict(known.totals), dict(known.hours)
    copied: set[str] = set()
    counted: set[str] = set()
    for day_name, fields in (("today", today), ("yesterday", yesterday)):
        before = since[day_name][0]
        for name in since[day_name][1]:
            value = fields.get(name, 0) - before.get(name, 0)
            if not value:
                continue
            kind, _, rest = name.partition("|")
            if kind == "h":
                hour, _, area = rest.partition("|")
                for parent in geography.chain(area) if area in geography.areas else ():
                    if parent not in counted:
                        counted.add(parent)
                        hours[parent] = Counter(hours.get(parent, NO_HOURS))
                    hours[parent][(day_name, hour)] += value
            elif kind in _TOTALS and day_name == "today":
                for parent in chain_of(geography, rest):
                    if parent not in copied:
                        copied.add(parent)
                        had = totals.get(parent, NO_DAY)
                        totals[parent] = DayTotals(had.today, had.closed_today,
                                                   had.close_seconds)
                    totals[parent].add(kind, value)
    return KnownDays(today, yesterday, totals, hours)


def decode_day(slot: str, key: str, stored: Mapping[bytes, bytes], memo: DaysRead | None,
               changed: dict[str, tuple[Mapping[str, int], Collection[str]]]) -> dict[str, int]:
    """A day hash's fields as integers.

    When the same hash was last read into the same slot (`memo`), only the fields whose
    bytes changed since are decoded, and noted in `changed` (a field gone since: whole).
    """
    had = memo.get(slot) if memo is not None else None
    if had is not None and had[0] == key and had[1].keys() <= stored.keys():
        before, decoded = had[1], had[2]
        names = [name for name, value in stored.items() if before.get(name) != value]
        fields = dict(decoded)
        for name in names:
            fields[name.decode()] = int(stored[name])
        changed[slot] = (decoded, [name.decode() for name in names])
    else:
        fields = {k.decode(): int(v) for k, v in stored.items()}
    if memo is not None:
        memo[slot] = (key, stored, fields)
    return fields
