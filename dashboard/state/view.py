"""The city view: every area's numbers, rolled up from the raw state.

Pure functions from a `RawState` (what one read of Redis returns) to a
`CityView`. The worker stores only what each event changes, at the finest
area it fell in; here it is summed up the area tree once per tick, and every
request of that tick reads the result.

Roll-ups: counts are sums over the subtree; the traffic index is the mean
over the latest readings of all segments in the subtree; the risk score of
an area above the finest level is the mean score of all scored areas in its
subtree (the mean of its children's scores weighted by how many scored areas
each holds), and its factors are the mean contributions, so they add up to
the score.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson

from dashboard.geography import Geography
from dashboard.kinds import KINDS, REGISTERS, Kind
from dashboard.kinds.incident import OpenIncident, OverdueIncident
from dashboard.kinds.risk import RISK_LEVELS, RiskModel, RiskReading
from dashboard.kinds.traffic import Segment, traffic_level
from dashboard.state.day_sums import (
    NO_DAY,
    NO_HOURS,
    ChangedDays,
    DaysRead,
    DayTotals,
    KnownDays,
    day_sums,
    decode_day,
)
from dashboard.state.open_totals import NO_OPEN, KnownOpen, OpenTotals, open_totals
from dashboard.state.place_sums import (
    DUE,
    ChangedPlaces,
    KnownPlaces,
    PlaceSums,
    group_by_place,
    urgency,
)
from dashboard.state.risk_sums import (
    NO_RISK,
    KnownRisk,
    RiskSums,
    chain_of,
    score_areas,
)

if TYPE_CHECKING:
    from dashboard.settings import Settings

SEVERITIES = ("1", "2", "3", "4")
log = logging.getLogger(__name__)

__all__ = ["RISK_LEVELS", "CityView", "Geography", "OpenIncident", "OverdueIncident", "RawState",
           "RiskModel", "RiskReading", "Segment", "build_view", "decode_raw", "traffic_level"]


@dataclass(frozen=True)
class RawState:
    """The state as stored, decoded into typed records but not yet summed up."""

    open_incidents: Mapping[str, OpenIncident] = field(default_factory=dict)
    today: Mapping[str, int] = field(default_factory=dict)  # day-hash fields of today
    yesterday: Mapping[str, int] = field(default_factory=dict)
    # kind name -> register field -> typed record (a `Segment`, a `RiskReading` ...)
    records: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    feed: tuple[dict[str, Any], ...] = ()
    stats: Mapping[str, str] = field(default_factory=dict)
    version: int = 0
    # the open incidents by the area they lie in (None: grouped when a view is built); a
    # place's mapping is a new object whenever its incidents change (`ChangeReader`)
    by_place: Mapping[str, Mapping[str, OpenIncident]] | None = None
    # kind name -> (its records of the read before, the names of those that differ): what a
    # view built from that read has to do again (`score_areas`)
    changed: Mapping[str, tuple[Mapping[str, Any], Collection[str]]] = field(
        default_factory=dict)
    # the places whose open incidents this read changed: their mapping of the read
    # before and the ids changed (`place_sums`)
    changed_places: ChangedPlaces = field(default_factory=dict)
    # the day hashes' fields of the read before and the names changed since (`day_sums`)
    changed_days: ChangedDays = field(default_factory=dict)

    def of(self, kind: str) -> Mapping[str, Any]:
        """The records of one kind (empty when it has none)."""
        return self.records.get(kind, {})

    @property
    def segments(self) -> Mapping[str, Segment]:
        """Road segments by id."""
        return self.of("traffic")

    @property
    def risk(self) -> Mapping[str, RiskReading]:
        """Risk readings by `area|indicator`."""
        return self.of("risk")


@dataclass(frozen=True)
class CityView:
    """Every area's summary at one moment, plus the city-wide lists."""

    as_of: datetime
    geography: Geography
    totals: Mapping[str, OpenTotals]  # area -> its subtree's open incidents
    own_risk: Mapping[str, tuple[float, list[dict[str, Any]]]]
    raw: RawState
    model: RiskModel
    rollups: Mapping[str, Mapping[str, Any]]  # kind name -> area -> its `roll_up` total
    risk: Mapping[str, RiskSums] = field(default_factory=dict)  # area -> its subtree's risk
    stale: bool = False
    error: str | None = None
    # What is computed from this view once for every client (the screen's frames): it
    # lives and dies with the view, so a process keeps only the current tick's.
    derived: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    known_risk: KnownRisk = field(default_factory=KnownRisk, compare=False, repr=False)
    # the open incidents by the area they lie in, and their counts for the next build
    by_place: Mapping[str, Mapping[str, OpenIncident]] = field(
        default_factory=dict, compare=False, repr=False)
    known_places: KnownPlaces = field(default_factory=dict, compare=False, repr=False)
    known_open: KnownOpen = field(default_factory=KnownOpen, compare=False, repr=False)
    known_days: KnownDays = field(default_factory=KnownDays, compare=False, repr=False)

    @property
    def day_totals(self) -> Mapping[str, DayTotals]:
        """Each area's incidents of today (its subtree's)."""
        return self.known_days.totals

    def summary(self, area_id: str) -> dict[str, Any]:
        """The public JSON shape of one area's numbers."""
        area = self.geography.areas[area_id]
        t = self.totals.get(area_id, NO_OPEN)
        r = self.risk.get(area_id, NO_RISK)
        own = self.own_risk.get(area_id)
        if r.count and not (own and r.count == 1):
            score: float | None = round(r.total / r.count, 1)
            factors: list[dict[str, Any]] = sorted(
                ({"indicator": name,
                  "value": round(r.value_sum[name] / r.value_count[name], 3),
                  "contribution": round(points / r.count, 2)}
                 for name, points in r.factor_sum.items()),
                key=lambda f: (-f["contribution"], f["indicator"]))
        elif own:
            score, factors = round(own[0], 1), own[1]
        else:
            score, factors = None, []
        built_in = {"incidents": self._incidents(
            t, self.day_totals.get(area_id, NO_DAY)), "risk": {
            "score": score,
            "level": self.model.level(score),
            "factors": factors,
            "categories": self.model.categories(factors),
            "scored_areas": r.count,
            "areas_by_level": {lvl: r.levels.get(lvl, 0) for lvl in RISK_LEVELS},
            "max_score": None if r.max is None else round(r.max, 1),
        }}
        out: dict[str, Any] = {
            "area_id": area_id,
            "name": area.name,
            "name_en": area.name_en,
            "level": area.level,
            "parent_id": area.parent_id,
            "as_of": self.as_of.isoformat(timespec="seconds"),
            "stale": self.stale,
        }
        for kind in KINDS:
            if kind.block in built_in:
                out[kind.block] = built_in[kind.block]
            elif kind.block:
                out[kind.block] = kind.summary(self.rollups.get(kind.name, {}).get(area_id))
        return out

    @staticmethod
    def _incidents(t: OpenTotals, day: DayTotals) -> dict[str, Any]:
        """The incidents block of a summary."""
        return {
            "today": day.today,
            "open": t.open,
            "overdue": t.overdue,
            "closed_today": day.closed_today,
            "mean_minutes_to_close": (
                round(day.close_seconds / day.closed_today / 60, 1) if day.closed_today
                else None),
            "open_by_category": dict(sorted(t.by_category.items())),
            "open_by_severity": {s: t.by_severity.get(s, 0) for s in SEVERITIES},
        }

    def risk_of(self, area_id: str) -> tuple[float | None, str]:
        """An area's risk score and warning level (a finest area: its own score, cheaply)."""
        if not self.geography.children(area_id):
            own = self.own_risk.get(area_id)
            if own is None:
                return None, "normal"
            score = round(own[0], 1)
            return score, self.model.level(score)
        risk = self.summary(area_id)["risk"]
        return risk["score"], risk["level"]

    def area_detail(self, area_id: str) -> dict[str, Any]:
        """An area's summary plus each child's."""
        detail = self.summary(area_id)
        detail["children"] = [self.summary(c) for c in self.geography.children(area_id)]
        return detail

    def trend(self, area_id: str) -> list[dict[str, Any]]:
        """Incidents reported per hour over the last 24 hours, oldest first."""
        hours: list[dict[str, Any]] = []
        moment = self.as_of.replace(minute=0, second=0, microsecond=0)
        wanted = [moment - timedelta(hours=h) for h in range(23, -1, -1)]
        per_hour = self.known_days.hours.get(area_id, NO_HOURS)
        today = self.as_of.date()
        for start in wanted:
            day_name = "today" if start.date() == today else "yesterday"
            hours.append({"hour": start.isoformat(timespec="minutes"),
                          "count": per_hour[(day_name, start.strftime("%H"))]})
        return hours

    @property
    def now_ms(self) -> int:
        """The view's moment in epoch milliseconds."""
        return int(self.as_of.timestamp() * 1000)

    def open_incidents(self, area_id: str, limit: int | None = None) -> list[OpenIncident]:
        """Open incidents inside an area, most severe and most overdue first.

        A city may have 100,000: the area's list is found once per view, and with a
        `limit` only that many of the first are picked (no full sort).
        """
        key = ("open_incidents", area_id)
        found = self.derived.get(key)
        if found is None and limit is not None:
            return _most_urgent(self._urgent_heads(area_id, limit), limit)
        if found is None:
            found = self.derived[key] = sorted(self._inside_list(area_id), key=urgency)
        return list(found) if limit is None else found[:limit]

    def recently_overdue(self, area_id: str, limit: int) -> list[OpenIncident]:
        """The area's overdue open incidents whose deadline passed last, latest first.

        Equal deadlines: the most severe first. No full sort (a city may have 100,000).
        """
        late = self._latest_overdue_heads(area_id, limit)
        if len(late) > limit:  # the latest deadlines first (no key call per incident)
            cut = heapq.nlargest(limit, late, key=DUE)[-1].due
            late = [i for i in late if i.due >= cut]
        return heapq.nlargest(limit, late, key=lambda i: (i.due, i.severity))

    # The incidents each place inside the area may give to the first `limit` rows of a
    # list. The places come in the area's list order, each in its own order on equal keys:
    # the list picked from these is the one picked from all the area's incidents, ties
    # included (vru004, vru006).

    def _urgent_heads(self, area_id: str, limit: int) -> list[OpenIncident]:
        """Each place's first `limit` by `urgency`."""
        out: list[OpenIncident] = []
        for sums in self.places_inside(area_id):
            out.extend(sums.by_urgency[:limit])
        return out

    def _latest_overdue_heads(self, area_id: str, limit: int) -> list[OpenIncident]:
        """Each place's last `limit` overdue by deadline, and all due with the first."""
        out: list[OpenIncident] = []
        for sums, late in self._overdue_places(area_id):
            start = bisect_left(sums.dues, sums.dues[max(late - limit, 0)])
            out.extend(sums.by_due[start:late])
        return out

    def _most_overdue_heads(self, area_id: str, limit: int) -> list[OpenIncident]:
        """Each place's first `limit` overdue by deadline, and two lateness steps more."""
        out: list[OpenIncident] = []
        for sums, late in self._overdue_places(area_id):
            cut = sums.dues[min(limit, late) - 1] + 2 * LATE_STEP_MS
            out.extend(sums.by_due[:min(late, bisect_right(sums.dues, cut))])
        return out

    def _overdue_places(self, area_id: str) -> Iterator[tuple[PlaceSums, int]]:
        """The places inside the area with overdue incidents, and how many (a bisect)."""
        now_ms = self.now_ms
        for sums in self.places_inside(area_id):
            late = bisect_right(sums.dues, now_ms)
            if late:
                yield sums, late

    def places_inside(self, area_id: str) -> list[PlaceSums]:
        """The counted places inside an area, in the area list's order (once per view)."""
        key = ("places", area_id)
        found = self.derived.get(key)
        if found is None:
            inside = self._subtree_test(area_id)  # (the city's: every place on the map)
            known = self.known_places
            found = self.derived[key] = [known[place][1] for place in self.by_place
                                         if place in known and inside(place)]
        return found

    def _inside_list(self, area_id: str) -> list[OpenIncident]:
        """The area's open incidents, unsorted (found once per view)."""
        key = ("inside", area_id)
        found = self.derived.get(key)
        if found is None:
            inside = self._subtree_test(area_id)  # the places tested, not every incident
            places = [incidents for place, incidents in self.by_place.items() if inside(place)]
            found = list(itertools.chain.from_iterable(i.values() for i in places))
            self.derived[key] = found
        return found

    def overdue(self, area_id: str, escalate_factor: float,
                limit: int | None = None) -> list[OverdueIncident]:
        """Overdue open incidents inside an area, the most overdue first, each with its escalation.

        An incident is the responsibility of its street (or its district where there
        are no streets); overdue by more than `escalate_factor` times its SLA, it
        escalates one level up (street → district → city): `escalated_to`. With a
        `limit`, only that many of the most overdue (cheap when there are thousands).
        """
        now_ms = self.now_ms

        def lateness(i: OpenIncident) -> tuple[float, int, int]:  # the full list's order
            return (-round((now_ms - i.due) / 60000, 1), *urgency(i))

        if limit is None:
            late = [i for i in self.open_incidents(area_id) if i.due <= now_ms]
        else:
            late = self._most_overdue_heads(area_id, limit)
            if len(late) > limit:
                # The latest by deadline first (cheap), then the exact order among those
                # whose lateness, rounded to 0.1 minute (6 s), can equal or pass the
                # limit-th's (two steps of the rounding past its deadline: a margin for
                # the float rounding)
                cut = heapq.nsmallest(limit, late, key=DUE)[-1].due + 2 * LATE_STEP_MS
                late = [i for i in late if i.due <= cut]
            late = heapq.nsmallest(limit, late, key=lateness)  # the full list's order
        out = []
        for incident in late:
            late_ms = now_ms - incident.due
            sla_ms = max(incident.due - incident.start, 1)
            owner = self.geography.responsible(incident.area)
            escalated = late_ms > escalate_factor * sla_ms
            parent = self.geography.areas[owner].parent_id if escalated else None
            out.append(OverdueIncident(incident, round(late_ms / 60000, 1), owner,
                                       parent or None))
        out.sort(key=lambda i: -i.minutes_late)
        return out

    def feed(self, area_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest applied events inside an area, newest first."""
        inside = self._subtree_test(area_id)
        return [item for item in self.raw.feed if inside(item["area"] or "")][:limit]

    def top_risk(self, area_id: str, level: str = "compound", limit: int = 10) -> list[dict]:
        """The highest-scored areas of one level inside an area."""
        own_risk = self.own_risk
        ranked = [(own_risk[a][0], a) for a in self.geography.descendants_at(area_id, level)
                  if a in own_risk]
        ranked.sort(key=lambda p: (-p[0], p[1]))
        return [self.summary(a) for _, a in ranked[:limit]]

    def restricted_to(self, scope: str) -> CityView:
        """The same moment with only what lies inside `scope` (an official's view).

        Areas outside it have no numbers at all, so whatever is drawn or listed
        from this view cannot reveal them.
        """
        if scope == self.geography.root_id:
            return self
        inside = self._subtree_test(scope)
        raw = self.raw

        def day_fields(fields: Mapping[str, int]) -> dict[str, int]:
            return {k: v for k, v in fields.items() if inside(k.rsplit("|", 1)[-1])}

        by_place = {place: incidents for place, incidents in self.by_place.items()
                    if inside(place)}
        kept = RawState(
            open_incidents={k: v for incidents in by_place.values() for k, v in incidents.items()},
            by_place=by_place,
            today=day_fields(raw.today), yesterday=day_fields(raw.yesterday),
            # every kind's records by their area: a new kind cannot forget this filter
            records={kind: {k: r for k, r in records.items() if inside(r.area)}
                     for kind, records in raw.records.items()},
            feed=tuple(item for item in raw.feed if inside(item.get("area") or "")),
            stats=raw.stats, version=raw.version)
        return build_view(kept, self.geography, self.model, self.as_of, math.inf,
                          stale=self.stale, error=self.error, known=self.known_risk,
                          known_places=self.known_places)

    def _subtree_test(self, area_id: str) -> Callable[[str], bool]:
        """Whether an area lies inside `area_id` (or is it): one set lookup."""
        if area_id not in self.geography.areas:  # (no area: nothing inside)
            return frozenset().__contains__
        return self.geography.subtree(area_id).__contains__


LATE_STEP_MS = 6000  # lateness is shown in tenths of a minute


def _most_urgent(incidents: list[OpenIncident], limit: int) -> list[OpenIncident]:
    """The first `limit` by `urgency`, as `heapq.nsmallest` gives them, by severity tier.

    A tier is picked by a comparison, not a key call per incident: 100,000 open
    incidents cost a few list passes.
    """
    out: list[OpenIncident] = []
    for severity in sorted({i.severity for i in incidents}, reverse=True):
        tier = [i for i in incidents if i.severity == severity]
        out.extend(heapq.nsmallest(limit - len(out), tier, key=DUE))
        if len(out) >= limit:
            break
    return out


def build_view(
    raw: RawState, geography: Geography, model: RiskModel, now: datetime,
    stale_after_s: float, stale: bool = False, error: str | None = None,
    known: KnownRisk | None = None, known_places: KnownPlaces | None = None,
    known_open: KnownOpen | None = None, known_days: KnownDays | None = None,
) -> CityView:
    """Sum the raw state up the area tree.

    `known` (the previous build's `known_risk`): only the areas whose indicator values
    changed are scored again, and only the subtrees holding them summed again.
    `known_open` (its `known_open`): only the chains of the places whose open incidents
    changed, or where a deadline passed, are summed again; `known_places` (its
    `known_places`, for a build without `known_open`): only the places whose open
    incidents changed are counted again. `known_days` (its `known_days`): only the day
    hashes' fields that changed are added again.
    """
    now_ms = int(now.timestamp() * 1000)
    by_place = raw.by_place if raw.by_place is not None else group_by_place(
        raw.open_incidents)
    counted = open_totals(by_place, geography, now_ms, known_open, raw.changed_places,
                          known_places)
    days = day_sums(raw.today, raw.yesterday, geography, known_days, raw.changed_days)

    def chain(area: str) -> tuple[str, ...]:
        return chain_of(geography, area)

    rollups = {kind.name: kind.roll_up(raw.of(kind.name), chain) for kind in KINDS}
    risk = score_areas(raw.risk, geography, model, known, raw.changed.get("risk"))
    last_applied = int(raw.stats.get("last_applied_ms", "0") or 0)
    is_stale = stale or (now_ms - last_applied > stale_after_s * 1000)
    return CityView(now, geography, counted.totals, risk.own_risk, raw, model, rollups,
                    risk.sums, is_stale, error, known_risk=risk, by_place=by_place,
                    known_places=counted.places, known_open=counted, known_days=days)


# kind name -> its register as last read (field -> stored bytes) and the records decoded from it
KnownRecords = dict[str, tuple[Mapping[bytes, bytes], dict[str, Any]]]


def decode_records(
    registers: Mapping[str, Mapping[bytes, bytes]], settings: Settings | None = None,
    memo: KnownRecords | None = None,
    changed: dict[str, tuple[Mapping[str, Any], Collection[str]]] | None = None,
    written: Mapping[str, tuple[Mapping[bytes, bytes], Collection[bytes]]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each register kind's hash (per field: its key, a tab, the record as JSON) as records.

    `memo` (the caller keeps it from one read to the next) holds each kind's register as
    read last time and its records: when the fields are the same, only those whose
    stored bytes changed are decoded again. It is refilled with this read's registers.
    `written` (`ChangeReader.written`): per kind, the register as read before and the
    fields written since; when that is the register the memo holds, only those fields
    are compared. `changed`, when given, gets per kind decoded either way its records of
    the last read and the names of those that differ.
    """
    out: dict[str, dict[str, Any]] = {}
    for kind in REGISTERS:
        stored = registers.get(kind.name, {})
        known = memo.get(kind.name) if memo is not None else None
        if known is not None and known[0] is stored:  # the very same read: nothing changed
            out[kind.name] = known[1]
            continue
        since = (written or {}).get(kind.name)
        if known is not None and since is not None and since[0] is known[0]:
            before, records = known[0], dict(known[1])  # (a field new since: added below)
            names = [name for name in since[1]
                     if name in stored and before.get(name) != stored[name]]
            if changed is not None:
                changed[kind.name] = (known[1], [name.decode() for name in names])
        elif known is not None and known[0].keys() == stored.keys():
            before, records = known[0], dict(known[1])  # the same fields, in the same order
            names = [name for name, packed in stored.items() if before[name] != packed]
            if changed is not None:
                changed[kind.name] = (known[1], [name.decode() for name in names])
        else:
            # Sorted, so that float sums (means) do not depend on the order Redis returns
            # fields in.
            records, names = {}, sorted(stored)
        added = False  # a field skipped before that decodes now: at the end, out of order
        for name in names:
            decoded = _decoded(kind, name, stored[name], settings)
            text = name.decode()
            if decoded is None:
                records.pop(text, None)
                continue
            added = added or text not in records
            records[text] = decoded
        if known is not None and added:
            records = dict(sorted(records.items()))  # (UTF-8 sorts as its text does)
        out[kind.name] = records
        if memo is not None:
            memo[kind.name] = (stored, records)
    return out


def _decoded(kind: Kind, name: bytes, packed: bytes, settings: Settings | None) -> Any:
    """One register field's record (None: not a named record, logged and skipped)."""
    try:
        record = orjson.loads(packed[packed.index(b"\t") + 1:])
        record.pop("lv", None)  # the level the script compares; not the record's
    except (ValueError, orjson.JSONDecodeError):  # a value written before named records
        log.warning("skipping %s register %r: not a named record", kind.name, name)
        return None  # the next reading of it replaces it
    return kind.decode(name.decode(), record, settings)


def decode_raw(
    open_incidents: Mapping[str, OpenIncident], today: Mapping[bytes, bytes],
    yesterday: Mapping[bytes, bytes], registers: Mapping[str, Mapping[bytes, bytes]],
    feed: list[bytes], stats: Mapping[bytes, bytes], version: bytes | int | None,
    settings: Settings | None = None, memo: KnownRecords | None = None,
    by_place: Mapping[str, Mapping[str, OpenIncident]] | None = None,
    written: Mapping[str, tuple[Mapping[bytes, bytes], Collection[bytes]]] | None = None,
    changed_places: ChangedPlaces | None = None,
    days_read: DaysRead | None = None, day_keys: tuple[str, str] = ("", ""),
) -> RawState:
    """Decode what the Redis reads returned (`registers`: kind name -> its hash).

    The open incidents come decoded already (`OpenIncident.decode`), and `by_place` the
    same by place when the caller keeps them so (else a view groups them), with the
    places that changed since its last read (`changed_places`). `days_read` (kept by the
    caller from one read to the next) and `day_keys` (the two day hashes' keys): only
    the day fields that changed are decoded (`decode_day`).
    """
    changed: dict[str, tuple[Mapping[str, Any], Collection[str]]] = {}
    records = decode_records(registers, settings, memo, changed, written)
    changed_days: dict[str, tuple[Mapping[str, int], Collection[str]]] = {}
    return RawState(
        open_incidents=open_incidents,
        by_place=by_place,
        changed=changed,
        changed_places=changed_places or {},
        today=decode_day("today", day_keys[0], today, days_read, changed_days),
        yesterday=decode_day("yesterday", day_keys[1], yesterday, days_read, changed_days),
        changed_days=changed_days,
        records=records,
        feed=tuple(orjson.loads(item) for item in feed),
        stats={k.decode(): v.decode() for k, v in stats.items()},
        version=int(version or 0),
    )


def day_names(now: datetime, zone: ZoneInfo) -> tuple[str, str]:
    """Today's and yesterday's day-hash names in the city's time zone."""
    local = now.astimezone(zone)
    return local.strftime("%Y-%m-%d"), (local - timedelta(days=1)).strftime("%Y-%m-%d")
