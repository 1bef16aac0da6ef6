"""A view built from the last one's work equals one built from nothing (-k vru).

The push hub and the web's ticks build a view many times a second; each build reuses
what the last decoded, scored and summed. These tests change the state step by step,
the way a feed does, and compare every area's summary with a fresh build. Pure: no
Redis, no browser.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from dashboard.geography import Geography
from dashboard.settings import DEFAULT_RISK_MODEL
from dashboard.state.view import (
    RawState,
    RiskModel,
    RiskReading,
    build_view,
    decode_raw,
    decode_records,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
INDICATORS = [*sorted(DEFAULT_RISK_MODEL), "pm25"]  # pm25: a reading without weight


def _risk_field(area: str, indicator: str, value: float) -> bytes:
    record = {"area": area, "indicator": indicator, "value": value, "ts": 1}
    return b"0|e\t" + orjson.dumps(record)


def test_vru001_views_built_on_the_last_one_equal_fresh_ones(geography: Geography):
    rng = random.Random(7)
    model = RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85))
    areas = sorted(a for a, area in geography.areas.items() if area.level == "compound")[:300]
    areas += ["310104", "999999-UNKNOWN", "888888-UNKNOWN"]  # a district; places off the map
    readings = {f"{a}|{i}": RiskReading(a, i, float(rng.randint(0, 6)), 1)
                for a in areas for i in INDICATORS if rng.random() < 0.6}
    view = build_view(RawState(records={"risk": readings}), geography, model, NOW, 30)
    changed_summaries = 0
    for step in range(40):
        readings = dict(readings)
        for key in rng.sample(sorted(readings), 5):  # new values, some the same as before
            old = readings[key]
            readings[key] = RiskReading(old.area, old.indicator, float(rng.randint(0, 6)), 2)
        if step % 6 == 2:  # an area loses its readings; another gains some
            gone = rng.choice(sorted(readings))
            readings = {k: r for k, r in readings.items() if r.area != readings[gone].area}
            new_area = rng.choice(areas)
            readings[f"{new_area}|fire_hazards"] = RiskReading(new_area, "fire_hazards", 4.0, 3)
        raw = RawState(records={"risk": readings})
        reused = build_view(raw, geography, model, NOW, 30, known=view.known_risk)
        fresh = build_view(raw, geography, model, NOW, 30)
        for area in geography.areas:
            assert reused.summary(area) == fresh.summary(area), (step, area)
        changed_summaries += sum(reused.summary(a)["risk"] != view.summary(a)["risk"]
                                 for a in ("310000", "310104"))
        for scope in ("310104", "310101"):  # an official's view reuses the whole view's work
            kept = reused.restricted_to(scope)
            again = fresh.restricted_to(scope)
            for area in (*geography.descendants_at(scope, "compound")[:50], scope, "310000"):
                assert kept.summary(area) == again.summary(area), (step, scope, area)
        view = reused
    assert changed_summaries > 10  # the steps did move the city's and the district's scores


def test_vru002_subtrees_without_a_change_are_not_summed_again(geography: Geography):
    model = RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85))
    compounds = geography.descendants_at("310104", "compound")[:20]
    readings = {f"{a}|fire_hazards": RiskReading(a, "fire_hazards", 2.0, 1) for a in compounds}
    first = build_view(RawState(records={"risk": readings}), geography, model, NOW, 30)
    moved = compounds[3]
    readings = {**readings, f"{moved}|fire_hazards": RiskReading(moved, "fire_hazards", 5.0, 2)}
    second = build_view(RawState(records={"risk": readings}), geography, model, NOW, 30,
                        known=first.known_risk)
    chain = set(geography.chain(moved))
    for area, sums in second.risk.items():
        assert (sums is first.risk[area]) == (area not in chain), area
    top = second.summary("310104")["risk"]["max_score"]
    assert top == round(second.own_risk[moved][0], 1) > first.summary("310104")["risk"]["max_score"]


def test_vru003_registers_decoded_on_the_last_read_equal_fresh_decodes():
    rng = random.Random(11)
    areas = [f"310104-R{i:04d}" for i in range(60)]
    stored = {f"{a}|{i}".encode(): _risk_field(a, i, rng.randint(0, 5))
              for a in areas for i in INDICATORS[:3]}
    memo: dict = {}
    decode_records({"risk": stored}, memo=memo)
    for step in range(30):
        stored = dict(stored)
        for name in rng.sample(sorted(stored), 4):
            area, indicator = name.decode().split("|")
            stored[name] = _risk_field(area, indicator, rng.randint(0, 5))
        if step % 5 == 1:  # a value that is not a named record: skipped, then replaced
            stored[rng.choice(sorted(stored))] = b"0|e\t310104 7"
        if step % 7 == 3:  # a field that was not there
            stored[f"310104-R{100 + step:04d}|fire_hazards".encode()] = _risk_field(
                f"310104-R{100 + step:04d}", "fire_hazards", 1)
        if step % 4 == 2:  # a field removed
            del stored[rng.choice(sorted(stored))]
        reused = decode_records({"risk": stored}, memo=memo)["risk"]
        fresh = decode_records({"risk": stored})["risk"]
        assert reused == fresh and list(reused) == list(fresh), step  # same records, same order


def test_vru004_limited_lists_equal_the_head_of_the_full_ones(geography: Geography):
    """The lists a screen shows pick their first rows without sorting every incident;
    they equal the first rows of the fully sorted lists, ties and rounding included."""
    from dashboard.kinds.incident import OpenIncident

    rng = random.Random(3)
    now_ms = int(NOW.timestamp() * 1000)
    places = [*sorted(geography.descendants_at("310104", "compound"))[:40],
              *sorted(geography.descendants_at("310101", "compound"))[:20], "999999-OFF-MAP"]
    incidents = {}
    for k in range(3000):
        # deadlines on a coarse grid (many equal, many within one 6-second rounding step)
        due = now_ms + rng.choice([-1, 1]) * rng.randint(0, 400) * rng.choice([1000, 3000, 6000])
        iid = f"V{k:05d}"
        incidents[iid] = OpenIncident(iid, rng.choice(places), None, None, "garbage", "grid",
                                      rng.randint(1, 4), "reported", 0, due - 3_600_000, due,
                                      "", "")
    raw = RawState(open_incidents=incidents)
    model = RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85))

    def fresh():  # type: ignore[no-untyped-def]
        return build_view(raw, geography, model, NOW, 30)

    for area in ("310000", "310104", "310101"):
        for limit in (1, 6, 12, 50):
            assert fresh().overdue(area, 2.0, limit) == fresh().overdue(area, 2.0)[:limit]
            assert fresh().open_incidents(area, limit) == fresh().open_incidents(area)[:limit]
            late = sorted((i for i in fresh().open_incidents(area) if i.due <= now_ms),
                          key=lambda i: -i.due)
            assert fresh().recently_overdue(area, limit) == late[:limit]


def test_vru006_lists_picked_by_place_equal_plain_sorts_as_places_change(
        geography: Geography):
    """The screen's lists are picked from each place's sorted incidents (a place sorted
    again only when it changed). Step by step, places change the way a feed changes
    them; every list equals a plain sort of all the area's incidents, in the area's
    order, ties included: many incidents share a deadline and a severity, one place
    holds more than any limit, and a place with exactly `limit` overdue is alone."""
    from dashboard.kinds.incident import OpenIncident

    rng = random.Random(11)
    now_ms = int(NOW.timestamp() * 1000)
    places = [*sorted(geography.descendants_at("310104", "compound"))[:12], "310101",
              "999999-OFF-MAP"]

    def new_incident(k: int, place: str) -> OpenIncident:
        offset = rng.randint(0, 600) * 1000  # dense: within one 6-second lateness step
        if rng.random() < 0.3:  # many on the same deadline
            offset -= offset % 6000
        due = now_ms + rng.choice([-1, -1, 1]) * offset
        return OpenIncident(f"W{k:05d}", place, None, None, "garbage", "grid",
                            rng.randint(1, 4), "reported", 0, due - 3_600_000, due, "", "")

    by_place: dict[str, dict[str, OpenIncident]] = {p: {} for p in places}
    for k in range(900):
        item = new_incident(k, rng.choice(places[:4] + ["310101"] * 6))
        by_place[item.area][item.incident_id] = item
    model = RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85))
    view = None

    def plain(area: str) -> list[OpenIncident]:  # the area's incidents in its list order
        inside = [p for p in by_place if p in geography.areas
                  and area in geography.chain(p)]
        return [i for p in inside for i in by_place[p].values()]

    for step in range(30):
        if step == 29:  # one place alone, exactly `limit` (6) overdue
            lone = places[0]
            by_place = {lone: {f"L{n}": new_incident(2000 + n, lone) for n in range(20)}}
            by_place[lone] = {k: i for k, i in by_place[lone].items() if i.due > now_ms}
            for n in range(6):
                by_place[lone][f"X{n}"] = OpenIncident(
                    f"X{n}", lone, None, None, "garbage", "grid", 2, "reported", 0,
                    now_ms - 7_200_000, now_ms - 60_000 * (n % 2), "", "")
        elif step:
            for place in rng.sample(places, 3):  # a changed place gets a new dict
                kept = dict(by_place.get(place, {}))
                for key in rng.sample(sorted(kept), min(len(kept), rng.randint(0, 20))):
                    del kept[key]
                for n in range(rng.randint(0, 25)):
                    item = new_incident(1000 + step * 100 + n, place)
                    kept[item.incident_id] = item
                by_place[place] = kept
        incidents = {k: i for p in by_place.values() for k, i in p.items()}
        raw = RawState(open_incidents=incidents, by_place=by_place)
        view = build_view(raw, geography, model, NOW, 30,
                          known_places=None if view is None else view.known_places)
        for area in ("310000", "310104", "310101"):
            every = plain(area)
            by_urgency = sorted(every, key=lambda i: (-i.severity, i.due))
            late = [i for i in by_urgency if i.due <= now_ms]
            by_lateness = sorted(late, key=lambda i: (-round((now_ms - i.due) / 60000, 1),
                                                      -i.severity, i.due))
            latest = sorted(  # (reverse=True keeps the area's order on equal keys)
                [i for i in every if i.due <= now_ms], key=lambda i: (i.due, i.severity),
                reverse=True)
            for limit in (1, 2, 6, 40):
                assert view.open_incidents(area, limit) == by_urgency[:limit], (step, area)
                assert [o.incident for o in view.overdue(area, 2.0, limit)] == \
                    by_lateness[:limit], (step, area, limit)
                assert view.recently_overdue(area, limit) == latest[:limit], (step, area)


def test_vru005_trend_and_top_risk_per_area_equal_plain_sums(geography: Geography):
    """Hours per area and the top scored areas, found by area, equal a plain filter."""
    rng = random.Random(5)
    model = RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85))
    compounds = [a for a, area in geography.areas.items() if area.level == "compound"]
    places = [*rng.sample(compounds, 400), "310104", "999999-UNKNOWN"]
    today = {f"h|{rng.randint(0, 10):02d}|{p}": rng.randint(1, 9) for p in places}
    yesterday = {f"h|{rng.randint(10, 23):02d}|{p}": rng.randint(1, 9) for p in places}
    today.update({f"r|{p}": 1 for p in places})  # other day counters are not hours
    readings = {f"{a}|{i}": RiskReading(a, i, float(rng.randint(0, 6)), 1)
                for a in places for i in INDICATORS if rng.random() < 0.7}
    view = build_view(RawState(today=today, yesterday=yesterday, records={"risk": readings}),
                      geography, model, NOW, 30)

    def inside(area: str, place: str) -> bool:
        return place in geography.areas and area in geography.chain(place)

    for area in ("310000", "310104", "310101", *rng.sample(sorted(geography.areas), 30)):
        by_hour = {row["hour"][11:13]: row["count"] for row in view.trend(area)}
        for day, fields, hours in (("today", today, range(0, 11)),
                                   ("yesterday", yesterday, range(11, 24))):
            for hour in hours:
                expected = sum(n for name, n in fields.items() if name.startswith(
                    f"h|{hour:02d}|") and inside(area, name.split("|")[2]))
                assert by_hour[f"{hour:02d}"] == expected, (area, day, hour)
        for level in ("compound", "district"):
            plain = sorted(((score, a) for a, (score, _) in view.own_risk.items()
                            if inside(area, a) and geography.areas[a].level == level),
                           key=lambda p: (-p[0], p[1]))[:10]
            assert [s["area_id"] for s in view.top_risk(area, level)] == [a for _, a in plain]
    assert sum(row["count"] for row in view.trend("310000")) > 0
    assert len(view.top_risk("310000")) == 10


def test_vru007_views_built_from_the_changed_readings_equal_fresh_ones(
        geography: Geography):
    """Given the names of the readings that changed (as a read of the change log gives
    them), a build scores and sums only what they touch; every area's summary equals a
    fresh build's, step by step, including steps that need a whole build (a reading
    off the map or on the city, an area that gains or loses its score)."""
    rng = random.Random(17)
    model = RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85))
    compounds = sorted(a for a, area in geography.areas.items() if area.level == "compound")
    areas = [*rng.sample(compounds, 300), "310104"]
    readings = {f"{a}|{i}": RiskReading(a, i, float(rng.randint(0, 6)), 1)
                for a in areas for i in INDICATORS if rng.random() < 0.6}
    view = build_view(RawState(records={"risk": readings}), geography, model, NOW, 30)
    partial = 0
    for step in range(60):
        before = readings
        readings = dict(readings)
        names = set(rng.sample(sorted(readings), rng.randint(0, 6)))
        for name in names:  # new values, some the same as before
            old = readings[name]
            readings[name] = RiskReading(old.area, old.indicator, float(rng.randint(0, 6)), 2)
        if step % 7 == 3:  # an indicator added to a scored area, another removed
            area = rng.choice(areas[:-1])
            names.add(f"{area}|pm25")
            readings[f"{area}|pm25"] = RiskReading(area, "pm25", 9.0, 3)
            gone = rng.choice(sorted(readings))
            names.add(gone)
            del readings[gone]
        if step % 11 == 5:  # whole builds: off the map, on the city, a new scored area
            extra = rng.choice([("999999-UNKNOWN", "fire_hazards"), ("310000", "fire_hazards"),
                                (rng.choice(compounds), "fire_hazards")])
            names.add("|".join(extra))
            readings["|".join(extra)] = RiskReading(*extra, 5.0, 4)
        raw = RawState(records={"risk": readings},
                       changed={"risk": (before, sorted(names))})
        reused = build_view(raw, geography, model, NOW, 30, known=view.known_risk)
        fresh = build_view(RawState(records={"risk": readings}), geography, model, NOW, 30)
        partial += reused.known_risk.kids is view.known_risk.kids  # (a whole build: new)
        for area in geography.areas:
            assert reused.summary(area) == fresh.summary(area), (step, area)
        assert reused.own_risk == fresh.own_risk, step
        chain = {a for n in names for a in _chain_of(geography, n.split("|")[0])}
        if reused.known_risk.kids is view.known_risk.kids:  # untouched subtrees: the same
            assert all(sums is view.risk[a] for a, sums in reused.risk.items()
                       if a not in chain), step
        view = reused
    assert 35 <= partial < 60  # most steps took the short way; some could not


def _chain_of(geography: Geography, area: str) -> tuple[str, ...]:
    return geography.chain(area) if area in geography.areas else (geography.root_id,)


def test_vru008_day_sums_built_from_the_changed_fields_equal_fresh_ones(
        geography: Geography):
    """The day hashes read step by step through `decode_raw` with its memo (only the
    changed fields decoded) and summed on the last build's sums: every area's counts of
    today and its 24-hour trend equal a fresh build's, across a day's rollover and a
    wiped hash (fields gone)."""
    rng = random.Random(8)
    compounds = sorted(a for a, area in geography.areas.items() if area.level == "compound")
    places = [*rng.sample(compounds, 40), "310104", "310115", "999999-OFF"]
    model = RiskModel(DEFAULT_RISK_MODEL, (25, 50, 70, 85))
    days = {"2026-11-21": {}, "2026-11-22": {}}  # day name -> field -> count (as stored)
    keys = ("2026-11-22", "2026-11-21")
    memo: dict = {}
    view = None
    short = 0
    for step in range(80):
        if step == 40:  # midnight: today becomes yesterday, a new today starts
            keys = ("2026-11-23", "2026-11-22")
            days["2026-11-23"] = {}
        if step == 60:  # the state wiped: today's hash lost its fields
            days[keys[0]] = {}
        for _ in range(rng.randint(0, 8)):
            day = rng.choice(keys)
            place = rng.choice(places)
            name = rng.choice([f"r|{place}", f"c|{place}", f"s|{place}",
                               f"h|{rng.randint(0, 23):02d}|{place}"])
            fields = days[day] = dict(days[day])
            fields[name] = fields.get(name, 0) + rng.randint(1, 90)
        stored = [{k.encode(): str(v).encode() for k, v in days[key].items()} for key in keys]
        raw = decode_raw({}, stored[0], stored[1], {}, [], {}, step, days_read=memo,
                         day_keys=keys)
        short += "today" in raw.changed_days
        now = NOW + timedelta(days=1 if step >= 40 else 0)
        view = build_view(raw, geography, model, now, 30,
                          known_days=None if view is None else view.known_days)
        fresh = build_view(RawState(today=raw.today, yesterday=raw.yesterday), geography,
                           model, now, 30)
        assert raw.today == {k: int(v) for k, v in days[keys[0]].items()}, step
        for area in ("310000", "310104", "310115", places[0], places[1]):
            assert view.summary(area)["incidents"] == fresh.summary(area)["incidents"], step
            assert view.trend(area) == fresh.trend(area), (step, area)
    assert short > 60  # most reads decoded and summed only what changed
    assert sum(row["count"] for row in view.trend("310000")) > 0
