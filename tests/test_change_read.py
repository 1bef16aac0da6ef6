"""State read by what changed equals a whole read, whatever happened (-k opr).

The web's ticks and the push hub read the open incidents and the registers by the
worker's change log (`dashboard/state/change_read.py`): only what was set or removed
since their last read. These tests run the real worker on a real Redis, batch after
batch (reports, status changes, closes, reports moved earlier, merged cases and hotspot
cases that open and go, traffic and risk readings), and compare what the reader holds
with a whole read after every batch; then they wipe the state, and trim the log, under
a reader.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

from dashboard.pipeline.worker import Worker
from dashboard.state.place_sums import PlaceSums, group_by_place
from dashboard.state.store import StateCache, read_raw
from dashboard.state.view import RawState, build_view
from tests.events import incident, now_ms, risk, traffic

XUHUI_STREET = "310104-S01"
METRE_LAT = 1 / 111_320


def _whole(client, settings):  # type: ignore[no-untyped-def]
    """The open incidents as a whole read of the hash gives them."""
    return dict(read_raw(client, settings, datetime.now(settings.zone)).open_incidents)


def _whole_records(client, settings):  # type: ignore[no-untyped-def]
    """The registers' records as a whole read gives them."""
    records = read_raw(client, settings, datetime.now(settings.zone)).records
    return {kind: dict(of_kind) for kind, of_kind in records.items()}


def _counts_by_chain(incidents, geography, now):  # type: ignore[no-untyped-def]
    """Each area's open, overdue, by category and by severity, counted the plain way."""
    out: dict[str, tuple[int, int, Counter[str], Counter[str]]] = {}
    for i in incidents.values():
        chain = geography.chain(i.area) if i.area in geography.areas else (geography.root_id,)
        for area in chain:
            n, late, cats, sevs = out.get(area, (0, 0, Counter(), Counter()))
            cats[i.category or "unknown"] += 1
            sevs[str(i.severity)] += 1
            out[area] = (n + 1, late + (i.due <= now), cats, sevs)
    return out


def _events(rng: random.Random, step: int, origin: tuple[float, float],
            known: list[str]) -> list[dict[str, str]]:
    """A batch a feed could send: new reports near one place, and updates of known ones."""
    t = now_ms() - 3 * 3_600_000 + step * 60_000
    out = []
    for k in range(rng.randint(1, 6)):
        iid = f"OPR-{step}-{k}"
        known.append(iid)
        point = (origin[0] + rng.uniform(-300, 300) * METRE_LAT,
                 origin[1] + rng.uniform(-300, 300) * METRE_LAT)
        out.append(incident(iid, ts=t + k, point=point, source=rng.choice(
            ["hotline", "grid", "video_ai"]), category=rng.choice(["garbage", "noise"])))
    compounds = [f"310104-R{n:04d}" for n in range(1, 6)]
    for _ in range(rng.randint(0, 5)):  # readings: some new, some of known places again
        out.append(traffic(f"SEG-{rng.randint(0, 8)}", rng.uniform(5, 60), 60, point=origin,
                           ts=t + rng.randint(-600, 600) * 1000))
        out.append(risk(rng.choice(compounds), rng.choice(["fire_hazards", "flood_points"]),
                        rng.uniform(0, 10), ts=t + rng.randint(-600, 600) * 1000))
    for iid in rng.sample(known, min(len(known), rng.randint(0, 4))):
        status = rng.choice(["in_progress", "closed", "reopened", "reported"])
        if status == "reported":  # the same incident reported earlier: it moves
            out.append(incident(iid, ts=t - rng.randint(10, 100) * 60_000, point=origin))
        else:
            out.append(incident(iid, status=status, ts=t + 30_000, point=None))
    return out


def test_opr001_read_by_changes_equals_a_whole_read_after_every_batch(settings, client,
                                                                      geography):
    settings = settings.replace(merge_metres=100, merge_minutes=30, hotspot_reports=3,
                                hotspot_metres=200, hotspot_days=7)
    compound = geography.areas[geography.descendants_at(XUHUI_STREET, "compound")[0]]
    origin = (compound.lon, compound.lat)
    cache = StateCache(settings, client, geography)
    worker = Worker(settings, client, geography, name="opr")
    rng, known = random.Random(11), []
    seen_cases, went, caught_up, updated_places = set(), 0, 0, 0
    held = None
    reader = cache._changes
    assert reader is not None
    for step in range(40):
        for event in _events(rng, step, origin, known):
            client.xadd(settings.stream, event)
        worker.work(burst=True)
        view = cache.view()
        raw = view.raw
        whole = _whole(client, settings)
        assert dict(raw.open_incidents) == whole, step
        if held is not None:  # the last read's mapping (a view holds it) did not change
            assert dict(held[0]) == held[1], step
        held = (raw.open_incidents, dict(raw.open_incidents))
        # by place, kept as incidents change (a place's dict new when it changed), and
        # the areas' counts from them, each place counted again only when it changed
        assert raw.by_place is not None
        assert {p: dict(i) for p, i in raw.by_place.items()} == group_by_place(whole), step
        counted = _counts_by_chain(whole, geography, view.now_ms)
        assert counted.keys() <= view.totals.keys()
        for area, t in view.totals.items():  # (an area may have only today's counters)
            assert (t.open, t.overdue, t.by_category, t.by_severity) == counted.get(
                area, (0, 0, {}, {})), (step, area)
        assert view.known_places.keys() == raw.by_place.keys()
        # a place's sums, updated by the ids the read says changed, equal sums counted whole
        for place, (incidents, sums) in view.known_places.items():
            whole_sums = PlaceSums.of(incidents)
            assert (sums.open, dict(sums.by_category), dict(sums.by_severity),
                    list(sums.dues)) == (whole_sums.open, dict(whole_sums.by_category),
                                         dict(whole_sums.by_severity), list(whole_sums.dues))
            assert list(sums.by_due) == list(whole_sums.by_due), (step, place)
            assert list(sums.by_urgency) == list(whole_sums.by_urgency), (step, place)
        updated_places += len(reader.changed_places)
        whole_records = _whole_records(client, settings)
        assert {k: dict(v) for k, v in raw.records.items()} == whole_records, step
        # the risk scored from the fields written since the last read (`written`) equals
        # the risk scored from a whole read
        fresh = build_view(RawState(records=whole_records), geography, cache.model,
                           view.as_of, 30)
        for area in (compound.area_id, XUHUI_STREET, "310104", geography.root_id):
            assert view.summary(area)["risk"] == fresh.summary(area)["risk"], (step, area)
        assert view.own_risk == fresh.own_risk, step
        caught_up += "risk" in reader.written()
        cases = {i for i in whole if i.startswith("proactive:")}
        went += len(seen_cases - cases)
        seen_cases |= cases
    assert reader.whole_reads == 1  # the first read only
    assert reader.changed_reads == 39
    assert caught_up > 10  # risk fields were caught up one by one
    assert updated_places > 20  # places were updated by the ids changed in them
    assert seen_cases, "no hotspot case opened: the batches did not test what they should"
    assert len(whole) > 20
    assert len(raw.records["traffic"]) == 9 and len(raw.records["risk"]) == 10


def test_opr002_a_state_wiped_and_rebuilt_past_the_version_is_read_whole(settings, client,
                                                                         geography):
    cache = StateCache(settings, client, geography)
    worker = Worker(settings, client, geography, name="opr")
    for k in range(3):
        client.xadd(settings.stream, incident(f"OLD-{k}", ts=now_ms() - 60_000))
        worker.work(burst=True)
    assert set(cache.view().raw.open_incidents) == {"OLD-0", "OLD-1", "OLD-2"}
    held_version = cache.view().raw.version
    client.flushdb()  # Redis lost its data (no persistence) and the feed goes on
    for k in range(held_version + 2):
        client.xadd(settings.stream, incident(f"NEW-{k}", ts=now_ms() - 60_000))
        worker.work(burst=True)
    view = cache.view()
    assert view.raw.version == held_version + 2
    assert dict(view.raw.open_incidents) == _whole(client, settings)
    assert not any(i.startswith("OLD-") for i in view.raw.open_incidents)
    assert cache._changes is not None and cache._changes.whole_reads == 2


def test_opr003_versions_the_log_no_longer_holds_are_read_whole(settings, client, geography):
    cache = StateCache(settings, client, geography)
    worker = Worker(settings, client, geography, name="opr")
    client.xadd(settings.stream, incident("T-0", ts=now_ms() - 60_000))
    worker.work(burst=True)
    assert set(cache.view().raw.open_incidents) == {"T-0"}
    for k in range(1, 4):
        client.xadd(settings.stream, incident(f"T-{k}", ts=now_ms() - 60_000))
        worker.work(burst=True)
    client.xadd(settings.stream, incident("T-0", status="closed", point=None))
    worker.work(burst=True)
    # the log loses versions 2 and 3
    client.xtrim(settings.state_prefix + "chg", maxlen=2, approximate=False)
    assert set(cache.view().raw.open_incidents) == {"T-1", "T-2", "T-3"}
    assert cache._changes is not None and cache._changes.whole_reads == 2
    client.xadd(settings.stream, incident("T-1", status="closed", point=None))
    worker.work(burst=True)
    assert set(cache.view().raw.open_incidents) == {"T-2", "T-3"}
    assert cache._changes.changed_reads == 1  # caught up by the log again
