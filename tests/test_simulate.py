"""The demo producer: contract-valid events, lifecycles, places, determinism, Redis writes."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import redis

from dashboard.demo import Simulator, flood, risk_points, run_simulation
from dashboard.demo.catalogue import CATEGORIES
from dashboard.demo.clock import local_hour
from dashboard.geography import Geography, load_geography
from dashboard.pipeline.contract import Event, parse_entry, parse_ts
from dashboard.redis_conn import EmbeddedRedis, connect
from dashboard.settings import DEFAULT_RISK_MODEL, DEFAULT_SLA_MINUTES, Settings

T0 = 1795305600.0  # the injected clock starts at 2026-11-22T00:00:00+08:00
ZONE = ZoneInfo("Asia/Shanghai")
DAY_MS = 86_400_000
LIFECYCLE = ("reported", "dispatched", "in_progress", "resolved", "verified", "closed")


def ticking(start: float, step_s: float) -> Callable[[], float]:
    """A clock that moves `step_s` seconds forward each time it is read."""
    counter = itertools.count()
    return lambda: start + next(counter) * step_s


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Wait until `condition()` holds; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def box(x0: float, y0: float, x1: float, y1: float) -> list[list[list[float]]]:
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


def feature(area_id: str, level: str, parent: str | None, rings: list) -> dict:
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": rings},
            "properties": {"area_id": area_id, "name": area_id, "name_en": area_id,
                           "level": level, "parent_id": parent}}


def box_city(folder: Path) -> Geography:
    """A city near Shanghai of three box districts; the middle one holds 100 compounds."""
    features = [
        feature("310000", "city", None, box(121.0, 31.0, 121.6, 31.3)),
        feature("310101", "district", "310000", box(121.0, 31.0, 121.2, 31.3)),
        feature("310104", "district", "310000", box(121.2, 31.0, 121.4, 31.3)),
        feature("310115", "district", "310000", box(121.4, 31.0, 121.6, 31.3)),
    ]
    for i, j in itertools.product(range(10), range(10)):
        x, y = 121.2 + i * 0.02, 31.0 + j * 0.03
        features.append(feature(f"310104-R{10 * i + j + 1:03d}", "compound", "310104",
                                box(x + 0.002, y + 0.003, x + 0.018, y + 0.027)))
    path = folder / "boxes.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return load_geography(path)


@pytest.fixture(scope="module")
def boxes(tmp_path_factory: pytest.TempPathFactory) -> Geography:
    return box_city(tmp_path_factory.mktemp("geo"))


def raw(event: dict[str, str]) -> dict[bytes, bytes]:
    return {k.encode(): v.encode() for k, v in event.items()}


def parse_all(events: list[dict[str, str]], now_ms: int) -> list[Event]:
    parsed = [parse_entry(raw(e), now_ms, DAY_MS) for e in events]
    bad = [(e, p) for e, p in zip(events, parsed, strict=True) if not isinstance(p, Event)]
    assert not bad, bad[:3]
    return parsed  # type: ignore[return-value]


def test_sim001_every_event_follows_the_contract(boxes: Geography) -> None:
    clock = ticking(T0 + 10 * 3600, 0.2)
    sim = Simulator(None, "s", boxes, seed=3, clock=clock, time_scale=20)
    events = sim.step(3000) + sim.initial_risk()
    now_ms = int(clock() * 1000)
    assert all(isinstance(k, str) and isinstance(v, str) for e in events for k, v in e.items())
    parsed = parse_all(events, now_ms)
    assert all(p.ts <= now_ms for p in parsed)  # never in the future
    copies = Counter(e["event_id"] for e in events)
    repeated = [i for i, n in copies.items() if n > 1]
    assert 0 < len(repeated) < 0.03 * len(events)  # ~1% producer retries
    for event_id in repeated:  # a retry is an exact copy
        same = [e for e in events if e["event_id"] == event_id]
        assert all(e == same[0] for e in same)


def test_sim002_all_kinds_in_the_expected_mix(boxes: Geography) -> None:
    sim = Simulator(None, "s", boxes, seed=1, clock=ticking(T0 + 11 * 3600, 0.2), time_scale=5)
    kinds = Counter(e["kind"] for e in sim.step(6000))
    share = {k: n / 6000 for k, n in kinds.items()}
    assert 0.32 < share["traffic"] < 0.48
    assert 0.27 < share["incident"] < 0.43
    assert 0.18 < share["risk"] < 0.32


def test_sim003_incidents_live_through_their_lifecycle(boxes: Geography) -> None:
    clock = ticking(T0 + 9 * 3600, 0.05)  # 20 events/s
    sim = Simulator(None, "s", boxes, seed=7, clock=clock, time_scale=10)
    events = [e for e in sim.step(8000) if e["kind"] == "incident"]
    seen: set[str] = set()
    by_incident: dict[str, list[dict[str, str]]] = defaultdict(list)
    for e in events:
        if e["event_id"] not in seen:
            seen.add(e["event_id"])
            by_incident[e["incident_id"]].append(e)
    reports = [v[0] for v in by_incident.values()]
    assert all(r["status"] == "reported" for r in reports)
    assert all(r["incident_id"].startswith("SIM-7-") for r in reports)
    assert all({"category", "source", "severity", "title", "lon", "lat"} <= set(r)
               for r in reports)
    categories = Counter(r["category"] for r in reports)
    assert categories.most_common(2)[0][0] in ("garbage", "road_occupation")
    assert categories["fire_hazard"] < categories["garbage"] / 4
    assert {r["source"] for r in reports} == {"hotline", "grid", "video_ai", "sensor"}
    closed = reopened = overdue = 0
    for items in by_incident.values():
        statuses = [e["status"] for e in items]
        times = [parse_ts(e["ts"]) for e in items]
        assert times == sorted(times) and len(set(times)) == len(times)  # ts decides order
        assert all("category" not in e and "title" not in e for e in items[1:])
        assert all("department" in e for e in items if e["status"] == "dispatched")
        if "reopened" in statuses:
            reopened += 1
            at = statuses.index("reopened")
            assert statuses[at - 1] == "resolved"
            after = statuses[at + 1:at + 4]  # (the run may end before they all come)
            assert after == ["dispatched", "in_progress", "resolved"][:len(after)]
            statuses = statuses[:at] + statuses[at + 4:]
        assert tuple(statuses) == LIFECYCLE[:len(statuses)]
        if statuses[-1] == "closed":
            closed += 1
            minutes = (times[-1] - times[0]) / 60000
            overdue += minutes > float(items[0]["sla_minutes"])
    assert closed > 250 and reopened >= 3
    assert 0.07 < overdue / closed < 0.2  # most close within their SLA, ~12% do not


def test_sim004_sla_minutes_are_scaled_to_simulated_time(boxes: Geography) -> None:
    sim = Simulator(None, "s", boxes, clock=ticking(T0 + 10 * 3600, 1.0), time_scale=2)
    reports = [e for e in sim.step(400) if e.get("status") == "reported"]
    assert reports
    for r in reports:  # 2 simulated minutes a second: a 4-hour SLA lasts 2 real minutes
        assert float(r["sla_minutes"]) == pytest.approx(DEFAULT_SLA_MINUTES[r["category"]] / 120)


def test_sim005_points_fall_inside_their_areas(boxes: Geography) -> None:
    clock = ticking(T0 + 10 * 3600, 0.2)
    sim = Simulator(None, "s", boxes, seed=5, clock=clock, time_scale=20)
    events = sim.step(1500) + sim.initial_risk()
    parsed = parse_all(events, int(clock() * 1000))
    located = [(e, p) for e, p in zip(events, parsed, strict=True) if p.lon is not None]
    found = boxes.locate([p.lon for _, p in located], [p.lat for _, p in located])
    assert all(f is not None for f in found)
    for (event, _), area in zip(located, found, strict=True):
        if event["kind"] == "traffic":  # a segment's midpoint is in its district
            assert event["segment_id"].split("-")[1] in boxes.chain(area)
        if event["kind"] == "risk":  # a risk point is in one of the finest areas
            assert not boxes.children(area)
    datums = Counter(e.get("coord", "wgs84") for e, _ in located)
    assert datums["gcj02"] > datums["wgs84"] > datums["bd09"] > 0
    assert any("coord" not in e for e, _ in located)


def test_sim006_ts_mixes_iso_and_epoch_ms(boxes: Geography) -> None:
    clock = ticking(T0 + 10 * 3600, 0.2)
    events = Simulator(None, "s", boxes, clock=clock).step(1000)
    stamps = [e["ts"] for e in events]
    iso = [s for s in stamps if not s.isdigit()]
    assert 0.2 < len(iso) / len(stamps) < 0.8
    assert all(s.endswith("+08:00") for s in iso)


def test_sim007_deterministic_for_a_seed_and_clock(boxes: Geography) -> None:
    def run(seed: int) -> list[dict[str, str]]:
        sim = Simulator(None, "s", boxes, seed=seed, clock=ticking(T0, 0.5), time_scale=30)
        return sim.step(800)

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_sim008_traffic_follows_the_daily_curve(boxes: Geography) -> None:
    sim = Simulator(None, "s", boxes)
    central = [s for s in sim.segments if s.district_id == "310101"]  # Huangpu's profile
    assert 20 <= len(central) <= 60
    assert all(s.segment_id.startswith("SEG-310101-") for s in central)
    midnight = T0 - local_hour(T0, ZONE) * 3600

    def index(hour: float) -> float:
        at = midnight + hour * 3600
        return float(np.mean([s.free_flow_kmh / max(sim.speed_at(s, at), 1) for s in central]))

    assert index(3) < 1.1
    assert 1.9 < index(18) < 2.6
    assert 1.8 < index(8.2) < 2.5
    assert index(3) < index(13) < index(8.2)
    readings = [e for e in sim.step(2000) if e["kind"] == "traffic"]
    assert any("free_flow_kmh" not in e for e in readings)
    assert all(40 <= float(e["free_flow_kmh"]) <= 80 for e in readings if "free_flow_kmh" in e)


def test_sim009_risk_starts_complete_and_mostly_normal(geography: Geography) -> None:
    sim = Simulator(None, "s", geography, seed=2, clock=ticking(T0, 0.2))
    leaves = [a for a in geography.areas if a != geography.root_id
              and not geography.children(a)]
    initial = sim.initial_risk()
    assert len(initial) == len(leaves) * len(DEFAULT_RISK_MODEL)
    per_indicator = Counter(e["indicator"] for e in initial)
    assert set(per_indicator.values()) == {len(leaves)}
    by_area = {e["area_id"] for e in initial if "area_id" in e}
    assert by_area <= set(leaves)
    by_point = [e for e in initial if "area_id" not in e]
    assert 0 < len(by_point) < 0.3 * len(initial)
    assert any(a.level == "compound" for a in map(geography.areas.get, leaves))
    sim.step(2000)  # drift
    scores = np.array([
        risk_points(DEFAULT_RISK_MODEL, dict(zip(sim.risk.indicators, row, strict=True)))
        for row in sim.risk.value.tolist()
    ])
    levels = np.bincount(np.digitize(scores, [25, 50, 70, 85]), minlength=5) / len(scores)
    assert levels[0] > 0.75  # most below 25
    assert 0.05 < levels[1] < 0.18  # ~10% blue
    assert 0.01 < levels[2] + levels[3] < 0.08  # a few % yellow and orange
    assert 0 < levels[4] < 0.01  # a handful red
    assert (sim.risk.value >= 0).all()


def test_sim010_flood_events_are_valid(boxes: Geography) -> None:
    sim = Simulator(None, "bench", boxes, seed=4, clock=lambda: T0)
    events = sim.flood_events(3000)
    assert len(events) == 3000
    parsed = [parse_entry(raw(e), int(T0 * 1000), DAY_MS) for e in events]
    assert all(isinstance(p, Event) for p in parsed)
    assert len({p.event_id for p in parsed}) == 3000  # type: ignore[union-attr]
    kinds = Counter(p.kind for p in parsed)  # type: ignore[union-attr]
    assert kinds["traffic"] > kinds["incident"] > kinds["risk"] > 0
    statuses = Counter(p.data["status"] for p in parsed if p.kind == "incident")  # type: ignore
    assert set(statuses) == {"reported", "closed"}


def test_sim011_flood_writes_to_redis(client: redis.Redis, boxes: Geography) -> None:
    now = T0 + 10 * 3600
    assert flood(client, "sim:flood", boxes, 5000, seed=1, batch=1500, clock=lambda: now) == 5000
    assert client.xlen("sim:flood") == 5000
    entries = client.xrange("sim:flood", count=500)
    parsed = [parse_entry(f, int(now * 1000), DAY_MS) for _, f in entries]
    assert all(isinstance(p, Event) for p in parsed)
    assert max(p.ts for p in parsed) <= now * 1000  # type: ignore[union-attr]


def test_sim012_run_writes_at_its_rate_and_stops(client: redis.Redis, boxes: Geography) -> None:
    sim = Simulator(client, "sim:run", boxes, seed=2)
    initial = len(sim.risk.leaf_ids) * len(sim.risk.indicators)
    written = sim.run(rate=100, duration_s=0.3)
    assert written == initial + 30
    assert client.xlen("sim:run") == written
    entries = client.xrange("sim:run")
    assert all(isinstance(parse_entry(f, int(sim.clock() * 1000), DAY_MS), Event)
               for _, f in entries)
    stop = threading.Event()
    worker = threading.Thread(target=sim.run, args=(5,), kwargs={"stop": stop})
    worker.start()
    stop.set()
    worker.join(2)
    assert not worker.is_alive()


def test_sim013_run_survives_a_redis_outage(
    tmp_path: Path, boxes: Geography, caplog: pytest.LogCaptureFixture,
) -> None:
    """A real Redis stops under a running producer and comes back: writing resumes."""
    server = EmbeddedRedis(tmp_path / "redis")
    client = connect(server.start())
    sim = Simulator(client, "s", boxes)
    sim.retry_delay_s = 0.05
    stop = threading.Event()
    producer = threading.Thread(target=sim.run, args=(200,), kwargs={"stop": stop,
                                                                     "initial_risk": False})
    producer.start()
    try:
        wait_for(lambda: client.xlen("s") > 0, "the first events")
        server.stop()
        wait_for(lambda: "Redis unavailable" in caplog.text, "the producer to notice the outage")
        server.start()
        before = client.xlen("s")
        wait_for(lambda: client.xlen("s") > before, "writing to resume after the outage")
        assert producer.is_alive()
    finally:
        stop.set()
        producer.join(10)
        server.stop()
    assert not producer.is_alive()


def test_sim014_run_simulation_uses_the_settings(client: redis.Redis, boxes: Geography) -> None:
    settings = Settings.load(env={"CITYBRAIN_STREAM": "sim:settings",
                                  "CITYBRAIN_SLA_MINUTES": '{"garbage": 60}'})
    written = run_simulation(settings, client, boxes, rate=50, duration_s=0.1, seed=9)
    assert client.xlen("sim:settings") == written > 0


def test_sim015_the_city_time_zone_and_the_catalogue_as_data(boxes: Geography) -> None:
    zone = ZoneInfo("Asia/Kathmandu")  # +05:45: no +08:00 hard-coded anywhere
    sim = Simulator(None, "s", boxes, seed=2, clock=ticking(T0, 0.2), zone=zone)
    stamps = [e["ts"] for e in sim.step(400) if "T" in e["ts"]]
    assert stamps and all(s.endswith("+05:45") for s in stamps)
    assert local_hour(T0, zone) == 5.75  # T0 is 00:00 UTC: 05:45 in Kathmandu
    catalogue = json.loads((Path(__file__).resolve().parent.parent / "dashboard" / "demo"
                            / "catalogue.json").read_text())
    assert [c[0] for c in CATEGORIES] == [c["code"] for c in catalogue["categories"]]
    assert abs(sum(c["share"] for c in catalogue["categories"]) - 1) < 1e-9
