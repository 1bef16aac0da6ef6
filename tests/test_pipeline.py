"""End to end on a real Redis: XADD → worker → state → read API."""

from __future__ import annotations

import pytest

from dashboard.app import create_app
from dashboard.pipeline.worker import Worker
from tests.events import PUDONG_POINT, SEA_POINT, XUHUI_POINT, incident, now_ms, risk, traffic

MIN = 60_000


@pytest.fixture
def worker(settings, client, geography):
    return Worker(settings, client, geography, name="test-worker")


@pytest.fixture
def api(settings, client):
    return create_app(settings).server.test_client()


def send(client, settings, *events):
    for event in events:
        client.xadd(settings.stream, event)


def summary(api, area_id=None):
    response = api.get("/api/v1/summary" + (f"?area_id={area_id}" if area_id else ""))
    assert response.status_code == 200, response.data
    return response.get_json()


def test_e2e001_all_kinds_end_to_end(settings, client, worker, api):
    t = now_ms()
    send(
        client, settings,
        incident("A", ts=t - 10 * MIN, category="garbage", severity="3"),
        incident("B", ts=t - 120 * MIN, category="manhole", sla_minutes="60"),  # overdue
        incident("C", ts=t - 30 * MIN, category="noise", point=PUDONG_POINT),
        incident("C", status="closed", ts=t - 10 * MIN, point=None),
        traffic("S1", 20, 60),  # index 3.0
        traffic("S2", 60, 60),  # index 1.0
        risk("310104", "fire_hazards", 5),  # 25 points: blue
        risk("310104", "fever_reports", 5),  # 10 points
        incident("BAD", point=SEA_POINT),
        {**traffic("S3", 10), "speed_kmh": "NaN"},
    )
    assert worker.work(burst=True) == 10
    city = summary(api)
    assert city["area_id"] == "310000" and city["level"] == "city"
    assert city["incidents"] == {
        "today": 3, "open": 2, "overdue": 1, "closed_today": 1,
        "mean_minutes_to_close": 20.0,
        "open_by_category": {"garbage": 1, "manhole": 1},
        "open_by_severity": {"1": 0, "2": 1, "3": 1, "4": 0},
    }
    assert city["traffic"] == {"index": 2.0, "level": "severe", "segments": 2}
    xuhui = summary(api, "310104")
    assert xuhui["name"] == "徐汇区"
    assert xuhui["risk"]["score"] == 35.0 and xuhui["risk"]["level"] == "blue"
    assert [f["indicator"] for f in xuhui["risk"]["factors"]] == ["fire_hazards", "fever_reports"]
    assert xuhui["risk"]["factors"][0] == {"indicator": "fire_hazards", "value": 5.0,
                                           "contribution": 25.0}
    pudong = summary(api, "310115")
    assert pudong["incidents"]["open"] == 0 and pudong["incidents"]["closed_today"] == 1
    dead = client.xrange(settings.dead_stream_key)
    reasons = sorted(fields[b"dead_reason"].decode() for _, fields in dead)
    assert reasons == ["bad_value", "outside_city"]
    bad = next(f for _, f in dead if f[b"dead_reason"] == b"outside_city")
    assert bad[b"incident_id"] == b"BAD" and b"outside" in bad[b"dead_detail"]
    assert client.xpending(settings.stream, settings.group)["pending"] == 0
    health = api.get("/healthz").get_json()
    assert health["redis"] == "ok"
    assert health["applied"] == 8 and health["dead_lettered"] == {"bad_value": 1,
                                                                  "outside_city": 1}
    assert health["stream_length"] == 10 and health["last_applied"]
    assert health["consumer_lag"] == 0 and health["pending"] == 0
    send(client, settings, incident("D"), incident("E"))
    assert api.get("/healthz").get_json()["consumer_lag"] == 2


def test_e2e002_duplicate_event_id_changes_nothing(settings, client, worker, api):
    event = incident("A")
    send(client, settings, event, event, {**event, "severity": "4"})
    worker.work(burst=True)
    city = summary(api)
    assert city["incidents"]["today"] == 1 and city["incidents"]["open"] == 1
    assert city["incidents"]["open_by_severity"]["4"] == 0  # the re-sent copy changed nothing
    assert api.get("/healthz").get_json()["duplicates"] == 2


def test_e2e003_out_of_order_events_follow_event_time(settings, client, worker, api):
    t = now_ms()
    send(client, settings,
         incident("A", status="closed", ts=t - 5 * MIN, point=None),
         incident("A", status="dispatched", ts=t - 20 * MIN, point=None, department="环卫"),
         incident("A", status="reported", ts=t - 45 * MIN, category="garbage"))
    worker.work(burst=True)
    city = summary(api)
    assert city["incidents"]["open"] == 0
    assert city["incidents"]["closed_today"] == 1
    assert city["incidents"]["mean_minutes_to_close"] == 40.0
    assert summary(api, "310104")["incidents"]["today"] == 1  # moved to where it was reported


def test_e2e004_reopened_then_late_close_event(settings, client, worker, api):
    t = now_ms()
    send(client, settings,
         incident("A", ts=t - 50 * MIN),
         incident("A", status="closed", ts=t - 30 * MIN, point=None),
         incident("A", status="reopened", ts=t - 10 * MIN, point=None))
    worker.work(burst=True)
    assert summary(api)["incidents"]["open"] == 1
    assert summary(api)["incidents"]["closed_today"] == 0
    send(client, settings, incident("A", status="in_progress", ts=t - 40 * MIN, point=None))
    worker.work(burst=True)
    assert summary(api)["incidents"]["open"] == 1  # an older event does not override


def test_e2e005_update_for_never_reported_incident_is_kept(settings, client, worker, api):
    send(client, settings, incident("GHOST", status="in_progress", point=None))
    worker.work(burst=True)
    city = summary(api)
    assert city["incidents"]["open"] == 1
    assert city["incidents"]["open_by_category"] == {"unknown": 1}
    assert city["incidents"]["today"] == 0


def test_e2e006_invalid_entry_does_not_block_valid_ones(settings, client, worker, api):
    send(client, settings, {"garbage": "\x00"}, {"kind": "incident"}, incident("A"))
    worker.work(burst=True)
    assert summary(api)["incidents"]["open"] == 1
    assert client.xlen(settings.dead_stream_key) == 2


def test_e2e007_redelivered_batch_changes_nothing(settings, client, worker, geography, api):
    send(client, settings, incident("A"), traffic("S1", 30, 60), risk("310104", "flood_points", 3))
    worker.consumer.create()
    entries = worker.consumer.read(100, None)
    worker.process(entries)
    first = summary(api)
    worker.process(entries)  # as if the ack had been lost and the entries delivered again
    again = summary(api)
    assert again["incidents"] == first["incidents"]
    assert again["traffic"] == first["traffic"] and again["risk"] == first["risk"]


def test_e2e008_risk_rolls_up_as_mean_of_scored_areas(settings, client, worker, api):
    send(client, settings,
         risk("310104-R0001", "fire_hazards", 5),  # 25
         risk("310104-R0002", "fire_hazards", 5),  # 25
         risk("310104-R0002", "flood_points", 3))  # +20 = 45
    worker.work(burst=True)
    compound = summary(api, "310104-R0002")
    assert compound["level"] == "compound" and compound["risk"]["score"] == 45.0
    assert compound["risk"]["level"] == "blue"
    xuhui = summary(api, "310104")
    assert xuhui["risk"]["score"] == 35.0
    assert xuhui["risk"]["scored_areas"] == 2
    assert sum(f["contribution"] for f in xuhui["risk"]["factors"]) == pytest.approx(35.0)
    assert xuhui["risk"]["areas_by_level"]["blue"] == 2


def test_e2e009_area_endpoint_lists_children(settings, client, worker, api):
    send(client, settings, incident("A"))
    worker.work(burst=True)
    detail = api.get("/api/v1/areas/310000").get_json()
    assert len(detail["children"]) == 16
    xuhui = next(c for c in detail["children"] if c["area_id"] == "310104")
    assert xuhui["incidents"]["open"] == 1
    assert api.get("/api/v1/areas/999999").status_code == 404
    assert api.get("/api/v1/summary?area_id=nope").status_code == 404


def test_e2e010_latest_traffic_reading_per_segment_wins(settings, client, worker, api):
    t = now_ms()
    send(client, settings, traffic("S1", 30, 60, ts=t), traffic("S1", 60, 60, ts=t - MIN))
    worker.work(burst=True)
    assert summary(api)["traffic"] == {"index": 2.0, "level": "severe", "segments": 1}


def test_e2e011_area_id_without_point_and_unknown_area(settings, client, worker, api):
    send(client, settings, risk("310101", "fire_hazards", 1),
         risk("990000", "fire_hazards", 1))
    worker.work(burst=True)
    assert summary(api, "310101")["risk"]["score"] == 5.0
    dead = client.xrange(settings.dead_stream_key)
    assert [f[b"dead_reason"] for _, f in dead] == [b"unknown_area"]


def test_e2e012_point_decides_over_area_id(settings, client, worker, api):
    send(client, settings, traffic("S1", 30, 60, point=XUHUI_POINT, area_id="310115"))
    worker.work(burst=True)
    assert summary(api, "310104")["traffic"]["segments"] == 1
    assert summary(api, "310115")["traffic"]["segments"] == 0


def test_e2e013_batch_ending_in_duplicates_still_bumps_version(settings, client, geography):
    settings = settings.replace(feed_size=5)
    worker = Worker(settings, client, geography, name="test-worker")
    stats, version = settings.state_prefix + "stats", settings.state_prefix + "version"
    old = [traffic(f"S{i}", 30, 60) for i in range(60)]
    send(client, settings, *old)
    worker.work(burst=True)
    before = int(client.get(version)), int(client.hget(stats, "applied"))
    client.hset(stats, "last_applied_ms", 0)
    # Five new events, then re-delivered copies: only the newest (the copies) carry feed JSON.
    send(client, settings, *[incident(f"N{i}") for i in range(5)], *old)
    assert worker.work(burst=True) == 65
    assert int(client.get(version)) > before[0]  # web processes see the new state
    assert int(client.hget(stats, "applied")) == before[1] + 5
    assert int(client.hget(stats, "last_applied_ms")) > 0
    assert int(client.hget(stats, "duplicates")) == 60
