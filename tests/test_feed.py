"""The operator's feed: news, not readings (run: pytest -k fed).

Incidents (new, status changes, overdue), warning-level changes of areas (up and
down), segments turning severe and devices going into alarm reach the live
feed; the readings themselves stay in the layers and panels. Real Redis, the
real worker and its Lua script.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from dashboard.pipeline.worker import Worker
from dashboard.screen.frame import compute, feed_items
from dashboard.state.store import StateCache
from dashboard.state.view import build_view
from tests.events import PUDONG_POINT, XUHUI_POINT, incident, now_ms, risk, traffic
from tests.test_sensor import sensor

MIN = 60_000
AREA = "310104-R0001"  # a demo compound in Xuhui


@pytest.fixture
def worker(settings, client, geography):
    return Worker(settings, client, geography, name="feed-worker")


def feed(settings, client, geography) -> list[dict]:
    return list(StateCache(settings, client, geography).view().raw.feed)


def send(client, settings, worker, *events) -> None:
    for event in events:
        client.xadd(settings.stream, event)
    worker.work(burst=True)


def test_fed001_readings_stay_out_of_the_feed(settings, client, geography, worker):
    t = now_ms(-600)
    send(client, settings, worker,
         *[traffic("S1", speed, 60, ts=t + i * 1000) for i, speed in enumerate((50, 40, 35))],
         *[sensor("P1", "pm25", str(v), ts=t + i * 1000) for i, v in enumerate((40, 80, 120))],
         # 2 points then 4 of fire_hazards' 25: the compound stays "normal" (below 25)
         *[risk(AREA, "fire_hazards", v, ts=t + i * 1000) for i, v in enumerate((0.4, 0.8))])
    assert feed(settings, client, geography) == []
    view = StateCache(settings, client, geography).view()
    assert len(view.raw.segments) == 1 and len(view.raw.of("sensor")) == 1  # still on the map
    assert view.summary(AREA)["risk"]["score"] == 4.0  # and in the panels


def test_fed002_level_changes_reach_the_feed_once_each(settings, client, geography, worker):
    t = now_ms(-600)
    send(client, settings, worker,
         traffic("S1", 40, 60, ts=t), traffic("S1", 25, 60, ts=t + 1000),  # slow, severe
         traffic("S1", 20, 60, ts=t + 2000),  # still severe: no news
         traffic("S1", 55, 60, ts=t + 3000), traffic("S1", 10, 60, ts=t + 4000),  # again
         sensor("W1", "water_level", "10", ts=t), sensor("W1", "water_level", "45", ts=t + 1000),
         sensor("W1", "water_level", "50", ts=t + 2000),  # still in alarm: no news
         risk(AREA, "fire_hazards", 5, ts=t),  # 25 points: blue
         risk(AREA, "flood_points", 3, ts=t + 1000),  # +20 = 45: still blue
         risk(AREA, "fever_reports", 10, ts=t + 2000),  # +20 = 65: yellow
         risk(AREA, "fire_hazards", 0, ts=t + 3000))  # 40: down to blue
    items = list(reversed(feed(settings, client, geography)))  # oldest first
    severe = [(i["from"], i["lv"], i["speed_kmh"]) for i in items if i["kind"] == "traffic"]
    assert severe == [("slow", "severe", 25.0), ("smooth", "severe", 10.0)]
    assert all(i["segment_id"] == "S1" for i in items if i["kind"] == "traffic")
    alarms = [(i["device_id"], i["from"], i["value"]) for i in items if i["kind"] == "sensor"]
    assert alarms == [("W1", "normal", 45.0)]
    levels = [(i["from"], i["lv"], i["score"]) for i in items if i["kind"] == "risk"]
    assert levels == [("normal", "blue", 25), ("blue", "yellow", 65), ("yellow", "blue", 40)]
    assert all(i["area"] == AREA for i in items if i["kind"] == "risk")
    # what the screen says of them
    rows = compute(StateCache(settings, client, geography).view(), "310000", "en").feed
    texts = {(r["kind"], r["status"], r["title"]) for r in rows}
    assert ("risk", "Yellow (III) → Blue (IV)", "40 · Fire hazards") in texts
    assert ("traffic", "Severe · 10 km/h", "S1") in texts
    assert ("sensor", "45 cm", "W1") in texts or ("sensor", "45", "W1") in texts


def test_fed003_late_and_repeated_readings_make_no_news(settings, client, geography, worker):
    t = now_ms(-600)
    severe = traffic("S2", 10, 60, ts=t + 5000)
    send(client, settings, worker, severe)
    # an older reading arriving late changes nothing; a re-sent copy is a duplicate
    send(client, settings, worker, traffic("S2", 50, 60, ts=t), dict(severe))
    send(client, settings, worker, risk(AREA, "fire_hazards", 5, ts=t + 1000),
         risk(AREA, "fire_hazards", 0, ts=t))  # older: not applied, no level change
    kinds = [(i["kind"], i.get("lv")) for i in feed(settings, client, geography)]
    assert sorted(kinds) == [("risk", "blue"), ("traffic", "severe")]


def test_fed004_incidents_new_status_changes_and_overdue(settings, client, geography, worker):
    t = now_ms()
    send(client, settings, worker,
         incident("F1", ts=t - 90 * MIN, sla_minutes="60", title="井盖缺失"),  # overdue 30 min
         incident("F2", ts=t - 10 * MIN, sla_minutes="60", point=PUDONG_POINT),
         incident("F2", status="dispatched", ts=t - 5 * MIN, point=None))
    view = StateCache(settings, client, geography).view()
    items = feed_items(view, "310000")
    assert [(i["incident_id"], i["status"]) for i in items] == [
        ("F2", "dispatched"), ("F2", "reported"), ("F1", "overdue"), ("F1", "reported")]
    assert items[2]["ts"] == t - 30 * MIN  # at its deadline
    # the clock decides: an hour earlier F1 was not overdue yet (the view's clock injected)
    earlier = build_view(view.raw, geography, view.model,
                         datetime.fromtimestamp((t - 60 * MIN) / 1000, settings.zone), 1e9)
    assert [i["status"] for i in feed_items(earlier, "310000")].count("overdue") == 0
    # an official of Pudong sees only Pudong's news
    scoped = StateCache(settings, client, geography).view_for("310115")
    assert {i["incident_id"] for i in feed_items(scoped, "310115")} == {"F2"}
    rows = compute(view, "310104", "zh-CN").feed
    assert [(r["status"], r["title"]) for r in rows][:1] == [("超期", "井盖缺失")]
    assert XUHUI_POINT  # (F1 is in Xuhui)
