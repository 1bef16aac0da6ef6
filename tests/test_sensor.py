"""The sensor kind end to end on a real Redis: contract, worker, API, feed, scope (-k sen)."""

from __future__ import annotations

import itertools

import pytest

from dashboard.app import create_app
from dashboard.pipeline.contract import Event, Rejection, parse_entry
from dashboard.pipeline.worker import Worker
from dashboard.screen.frame import compute
from dashboard.state.store import StateCache
from layers import sensors
from tests.events import PUDONG_POINT, XUHUI_POINT, now_ms, raw, risk

MIN = 60_000
_ids = itertools.count(1)


def sensor(device_id: str, device_type: str, value: str, ts: int | None = None,
           point: tuple[float, float] | None = XUHUI_POINT, **extra: str) -> dict[str, str]:
    """A device reading as a producer writes it."""
    event = {"event_id": f"s{next(_ids)}", "kind": "sensor", "ts": str(ts or now_ms()),
             "device_id": device_id, "device_type": device_type, "value": value}
    if point is not None:
        event["lon"], event["lat"] = str(point[0]), str(point[1])
    event.update(extra)
    return event


@pytest.mark.parametrize(("change", "reason"), [
    ({"device_type": "radar"}, "bad_value"),
    ({"device_type": "smoke", "value": "0.5"}, "bad_value"),
    ({"value": "NaN"}, "bad_value"),
    ({"value": ""}, "missing_field"),
    ({"device_id": "bad id!"}, "bad_value"),
    ({"unit": "x" * 17}, "bad_value"),
    ({"lon": "", "lat": ""}, "missing_field"),
])
def test_sen001_bad_readings_are_refused_with_a_reason(change, reason):
    event = {**sensor("D1", "water_level", "12"), **change}
    parsed = parse_entry(raw({k: v for k, v in event.items() if v != ""}), now_ms(), 86_400_000)
    assert isinstance(parsed, Rejection) and parsed.reason == reason, parsed


def test_sen002_a_reading_by_area_id_or_point_is_valid():
    by_area = sensor("D1", "pm25", "80", point=None, area_id="310104", unit="µg/m³")
    for event in (by_area, sensor("D2", "manhole_tilt", "3.5")):
        parsed = parse_entry(raw(event), now_ms(), 86_400_000)
        assert isinstance(parsed, Event) and parsed.kind == "sensor"


@pytest.fixture
def worker(settings, client, geography):
    return Worker(settings, client, geography, name="test-worker")


def test_sen003_latest_reading_decides_alarms_in_api_feed_and_scope(
    settings, client, geography, worker,
):
    t = now_ms()
    for event in (
        sensor("W1", "water_level", "45", ts=t - 5 * MIN),  # later: in alarm
        sensor("W1", "water_level", "8", ts=t - 20 * MIN),  # older, arrives after: ignored
        sensor("S1", "smoke", "1", ts=t - 2 * MIN),  # alarm
        sensor("M1", "manhole_tilt", "16", ts=t - 1 * MIN, point=PUDONG_POINT),  # alarm
        sensor("P1", "pm25", "90", ts=t - 1 * MIN),  # normal
        sensor("P2", "pm25", "abc"),  # dead letter
        risk("310104-R0001", "fire_hazards", 5),
    ):
        client.xadd(settings.stream, event)
    assert worker.work(burst=True) == 7
    dead = client.xrange(settings.dead_stream_key)
    assert [d[1][b"device_id"] for d in dead] == [b"P2"]
    assert dead[0][1][b"dead_reason"] == b"bad_value"
    api = create_app(settings).server.test_client()
    city = api.get("/api/v1/summary").get_json()
    assert city["sensors"] == {"devices": 4, "alarms": 3, "alarms_by_type": {
        "water_level": 1, "smoke": 1, "manhole_tilt": 1, "pm25": 0}}
    xuhui = api.get("/api/v1/summary?area_id=310104").get_json()
    assert xuhui["sensors"]["devices"] == 3 and xuhui["sensors"]["alarms"] == 2
    assert xuhui["risk"]["score"] == 25.0  # readings never touch the risk score
    # only alarmed readings reach the live feed (W1's later alarm, S1, M1; not P1, not the 8)
    cache = StateCache(settings, client, geography)
    fed = [item["device_id"] for item in cache.view().raw.feed if item["kind"] == "sensor"]
    assert sorted(fed) == ["M1", "S1", "W1"]
    frame = compute(cache.view(), "310000", "en")
    assert frame.kpis["kinds"]["sensor"] == 3
    assert {r["title"] for r in frame.feed if r["kind"] == "sensor"} == {"M1", "S1", "W1"}
    assert any(r["what"] == "Smoke alarm" for r in frame.feed)
    # an official of Xuhui sees Xuhui's devices only: numbers, map and feed
    scoped = cache.view_for("310104")
    assert scoped.summary("310104")["sensors"]["devices"] == 3
    assert scoped.summary("310000")["sensors"]["devices"] == 3  # Pudong's is not there at all
    _, rings, alarms = sensors.traces(scoped, "310000", "en")
    assert len(alarms["lon"]) == len(rings["lon"]) == 2 and PUDONG_POINT[0] not in alarms["lon"]
    assert all(item.get("device_id") != "M1" for item in scoped.raw.feed)


def test_sen004_the_threshold_setting_overrides_the_defaults(client, geography, redis_url):
    from dashboard.settings import Settings

    settings = Settings.load(env={"REDIS_URL": redis_url,
                                  "CITYBRAIN_SENSOR_THRESHOLDS": '{"pm25": 75}'})
    client.xadd(settings.stream, sensor("P1", "pm25", "90"))
    Worker(settings, client, geography).work(burst=True)
    view = StateCache(settings, client, geography).view()
    assert view.summary("310000")["sensors"]["alarms_by_type"]["pm25"] == 1
    assert [i["device_id"] for i in view.raw.feed] == ["P1"]
    for bad in ('{"pm25": -1}', '["pm25"]', '{"pm25": "high"}'):
        with pytest.raises(ValueError, match="CITYBRAIN_SENSOR_THRESHOLDS"):
            Settings.load(env={"CITYBRAIN_SENSOR_THRESHOLDS": bad})
