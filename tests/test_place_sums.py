"""Sums updated by what changed equal sums counted whole (-k pls).

A place's counts and sorted lists, and the areas' open-incident totals. Pure: no
Redis. The places change the way `ChangeReader` changes them (a new dict per read, a
new id at its end, a changed one in its place); a real worker and reader are checked
in `opr001`.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dashboard.geography import Geography
from dashboard.kinds.incident import OpenIncident
from dashboard.settings import DEFAULT_RISK_MODEL
from dashboard.state.open_totals import NO_OPEN
from dashboard.state.place_sums import PlaceSums, place_sums
from dashboard.state.view import RawState, RiskModel, build_view

NOW_MS = 1_790_000_000_000


def _same(got: PlaceSums, expected: PlaceSums) -> None:
    assert got.open == expected.open
    assert dict(got.by_category) == dict(expected.by_category)
    assert dict(got.by_severity) == dict(expected.by_severity)
    assert list(got.dues) == list(expected.dues)
    # the very objects, in the very order (ties in the place's order)
    assert [id(i) for i in got.by_due] == [id(i) for i in expected.by_due]
    assert [id(i) for i in got.by_urgency] == [id(i) for i in expected.by_urgency]


def test_pls001_updated_sums_equal_counted_ones():
    """300 reads of a place: adds, changes (of deadline, severity, category or only the
    status), removals, an id removed and added again, many equal deadlines; the updated
    sums equal `PlaceSums.of` of the new mapping, lists and ties included."""
    rng = random.Random(3)
    serial = 0

    def new(incident_id: str) -> OpenIncident:
        due = NOW_MS + rng.choice([-2, -1, 0, 0, 1, 3]) * 60_000  # few deadlines: ties
        return OpenIncident(incident_id, "P", None, None, rng.choice(["", "noise", "garbage"]),
                            "grid", rng.randint(1, 4), "reported", 0, due - 3_600_000, due,
                            "", "")

    incidents: dict[str, OpenIncident] = {}
    for _ in range(60):
        serial += 1
        incidents[f"I{serial}"] = new(f"I{serial}")
    sums = PlaceSums.of(incidents)
    updated_reads = 0
    for _ in range(300):
        before, after, ids = incidents, dict(incidents), []
        for _ in range(rng.choice([1, 2, 3, 5, 40])):
            op = rng.random()
            if op < 0.35 or not after:
                serial += 1
                key = f"I{serial}"
                after[key] = new(key)
            elif op < 0.75:
                key = rng.choice(sorted(after))
                old = after[key]
                after[key] = rng.choice([
                    replace(old, status="dispatched"),
                    replace(old, due=old.due + rng.choice([-60_000, 60_000])),
                    replace(old, severity=rng.randint(1, 4)),
                    replace(old, category=rng.choice(["", "noise", "manhole"])),
                ])
            elif op < 0.9:
                key = rng.choice(sorted(after))
                del after[key]
            else:  # removed and reported again in one read: now at the mapping's end
                key = rng.choice(sorted(after))
                del after[key]
                after[key] = new(key)
            ids.append(key)
        got = place_sums("P", after, {"P": (before, sums)}, {"P": (before, ids)})
        _same(got, PlaceSums.of(after))
        updated_reads += got is not sums and len(set(ids)) <= 12
        incidents, sums = after, got
    assert updated_reads > 150  # most reads took the short way


def test_pls002_sums_are_reused_or_counted_whole_when_the_read_does_not_say():
    """The same mapping: the same sums; a mapping other than the one counted, or no
    word of what changed: counted whole."""
    a = OpenIncident("A", "P", None, None, "noise", "grid", 2, "reported", 0, 0, NOW_MS, "", "")
    b = replace(a, incident_id="B", due=NOW_MS - 1)
    first = {"A": a}
    sums = PlaceSums.of(first)
    assert place_sums("P", first, {"P": (first, sums)}, {}) is sums
    second = {"A": a, "B": b}
    _same(place_sums("P", second, {"P": (first, sums)}, {}), PlaceSums.of(second))
    other = {"A": a}  # (a mapping the sums were not counted from)
    _same(place_sums("P", second, {"P": (first, sums)}, {"P": (other, ["B"])}),
          PlaceSums.of(second))
    got = place_sums("P", second, {"P": (first, sums)}, {"P": (first, ["B"])})
    _same(got, PlaceSums.of(second))
    assert list(got.dues) == [NOW_MS - 1, NOW_MS]


def test_pls003_totals_built_on_the_last_ones_equal_whole_builds(geography: Geography):
    """120 builds, each on the last one's totals: places change (as a read changes them,
    with the ids it names), empty and come back, lie off the map; the clock moves on
    (deadlines pass in places that did not change) and once goes back. Every area's
    open, overdue and counts equal a whole build's at the same moment."""
    rng = random.Random(23)
    compounds = sorted(a for a, area in geography.areas.items() if area.level == "compound")
    places = [*rng.sample(compounds, 12), "310104", "310115", "999999-OFF"]
    model = RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85))
    start = datetime(2026, 11, 22, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    now, serial = start, 0

    def new(place: str) -> OpenIncident:
        nonlocal serial
        serial += 1
        due = int(now.timestamp() * 1000) + rng.randint(-5, 40) * 30_000
        return OpenIncident(f"T{serial}", place, None, None, rng.choice(["", "noise", "garbage"]),
                            "grid", rng.randint(1, 4), "reported", 0, due - 3_600_000, due, "", "")

    by_place: dict[str, dict[str, OpenIncident]] = {}
    for place in places:
        by_place[place] = {}
        for _ in range(rng.randint(1, 30)):
            item = new(place)
            by_place[place][item.incident_id] = item
    view = build_view(RawState(by_place=by_place), geography, model, now, 30)
    passed = 0
    for step in range(120):
        now += timedelta(seconds=rng.choice([0, 5, 30, 90]) if step != 60 else -120)
        by_place, changed = dict(by_place), {}
        for place in rng.sample(places, rng.randint(0, 3)):
            before = by_place.get(place, {})
            after, ids = dict(before), []
            if rng.random() < 0.1:
                ids, after = list(after), {}  # every one closed
            for _ in range(rng.randint(1, 6)):
                if after and rng.random() < 0.4:
                    key = rng.choice(sorted(after))
                    del after[key]
                else:
                    item = new(place)
                    key = item.incident_id
                    after[key] = item
                ids.append(key)
            if place in by_place:
                changed[place] = (before, ids)
            if after:
                by_place[place] = after
            else:
                by_place.pop(place, None)
        raw = RawState(by_place=by_place, changed_places=changed)
        before_overdue = view.totals.get("310000", NO_OPEN).overdue
        view = build_view(raw, geography, model, now, 30, known_open=view.known_open)
        whole = build_view(RawState(by_place=by_place), geography, model, now, 30)
        assert view.totals.keys() == whole.totals.keys(), step
        for area, t in whole.totals.items():
            assert view.totals[area] == t, (step, area)
        assert len(view.known_open.next_due) <= 2 * len(by_place) + 64
        passed += not changed and view.totals.get("310000", NO_OPEN).overdue > before_overdue
    assert passed > 5  # deadlines passed in builds where nothing changed
