"""未诉先办 on risk (issue 12 item 6b): an area rising into orange gets a work order (-k pro).

Through the real stream, the real worker and its Lua script on a real Redis: one
open order per area however the readings arrive (shuffled, re-delivered, the same
level again, orange → red), the order lists what drove the score on
`/api/v1/incidents/<id>`, and it is in the operator's feed and the area's list.
"""

from __future__ import annotations

import random
import signal
import time

import orjson
import pytest

from dashboard.app import create_app
from dashboard.pipeline.worker import Worker
from dashboard.screen.frame import compute
from dashboard.settings import DEFAULT_RISK_MODEL
from dashboard.state.store import StateCache
from tests.events import incident, now_ms, risk
from tests.test_faults import handled, push, settings_for, wait_until, worker_process

MIN = 60_000
STREET = "310104-S01"


@pytest.fixture
def areas(geography) -> list[str]:
    """Three compounds of one Xuhui street."""
    return geography.descendants_at(STREET, "compound")[:3]


def orders_on(settings, level="orange"):
    return settings.replace(risk_orders=level)


def run(settings, client, geography, events) -> None:
    for event in events:
        client.xadd(settings.stream, event)
    Worker(settings, client, geography, name="pro").work(burst=True)


def orders(settings, client) -> dict[str, dict]:
    """Every stored incident of source `proactive`, by id."""
    stored = client.hgetall(settings.state_prefix + "inc")
    return {k.decode(): orjson.loads(v) for k, v in stored.items()
            if orjson.loads(v).get("src") == "proactive"}


def detail(settings, incident_id):
    response = create_app(settings).server.test_client().get(f"/api/v1/incidents/{incident_id}")
    assert response.status_code == 200, response.data
    return response.get_json()


def orange(area, t):
    """Readings that score 71 (25 + 20 + 16 + 10): orange, crossing at the last one."""
    return [risk(area, "fire_hazards", 5, ts=t), risk(area, "fever_reports", 10, ts=t),
            risk(area, "repeat_complaints", 8, ts=t), risk(area, "flood_points", 1.5, ts=t)]


def test_pro001_entering_orange_opens_one_order_with_its_indicators(settings, client,
                                                                   geography, areas):
    on = orders_on(settings)
    t = now_ms() - 10 * MIN
    run(on, client, geography, orange(areas[0], t))
    iid = f"risk:{areas[0]}:1"
    assert list(orders(on, client)) == [iid]
    body = detail(on, iid)
    assert (body["status"], body["source"], body["category"], body["severity"]) == (
        "reported", "proactive", "risk_order", 3)
    assert body["area"] == areas[0] and body["responsible"] == STREET
    assert body["reported"] == t
    assert body["trigger"] == {
        "level": "orange", "score": 71,
        "categories": [{"category": "risk", "contribution": 71}],
        "indicators": [
            {"indicator": "fire_hazards", "category": "risk", "value": 5, "contribution": 25},
            {"indicator": "fever_reports", "category": "risk", "value": 10, "contribution": 20},
            {"indicator": "repeat_complaints", "category": "risk", "value": 8,
             "contribution": 16},
            {"indicator": "flood_points", "category": "risk", "value": 1.5, "contribution": 10},
        ]}
    name = geography.name(areas[0])
    assert body["title"] == f"{name} 橙色预警 71.0 · 综合风险 71.0"


def _scenario(areas, t):
    """Area 0 orange (an older, lower reading too), area 1 yellow, area 2 straight to red."""
    return [*orange(areas[0], t), risk(areas[0], "fire_hazards", 1, ts=t - MIN),
            risk(areas[1], "fire_hazards", 5, ts=t), risk(areas[1], "fever_reports", 10, ts=t),
            *orange(areas[2], t), risk(areas[2], "elderly_living_alone", 60, ts=t)]


def test_pro002_shuffled_and_redelivered_give_the_same_single_orders(settings, client,
                                                                     geography, areas):
    on = orders_on(settings)
    t = now_ms() - 10 * MIN
    events = _scenario(areas, t)
    run(on, client, geography, events)
    first = {iid: detail(on, iid) for iid in orders(on, client)}
    assert sorted(first) == [f"risk:{areas[0]}:1", f"risk:{areas[2]}:1"]
    assert first[f"risk:{areas[2]}:1"]["severity"] == 4  # red
    for seed in (1, 2, 3):
        client.flushdb()
        shuffled = list(events)
        random.Random(seed).shuffle(shuffled)
        # each event in a batch of its own, then the whole lot re-delivered
        for event in shuffled:
            run(on, client, geography, [event])
        run(on, client, geography, shuffled)
        assert {iid: detail(on, iid) for iid in orders(on, client)} == first, seed
        assert client.hgetall(on.state_prefix + "riskord") == {
            areas[0].encode(): b"1", areas[2].encode(): b"1"}


def test_pro003_same_level_and_orange_to_red_keep_one_order(settings, client, geography,
                                                            areas):
    on = orders_on(settings)
    area, t = areas[0], now_ms() - 30 * MIN
    iid = f"risk:{area}:1"
    run(on, client, geography, orange(area, t))
    run(on, client, geography, [risk(area, "fire_hazards", 5, ts=t + MIN)])  # orange again
    run(on, client, geography, [risk(area, "elderly_living_alone", 60, ts=t + 2 * MIN)])  # red
    assert list(orders(on, client)) == [iid]
    body = detail(on, iid)
    assert body["severity"] == 4 and body["trigger"]["level"] == "red"
    assert body["trigger"]["score"] == 86
    # closed; the area stays red: no new order (no entry into orange)
    run(on, client, geography, [incident(iid, status="closed", ts=t + 3 * MIN, point=None)])
    run(on, client, geography, [risk(area, "fever_reports", 10, ts=t + 4 * MIN)])
    assert list(orders(on, client)) == [iid]
    # down to yellow and up again: a second order, the first stays closed
    run(on, client, geography, [risk(area, "fire_hazards", 0, ts=t + 5 * MIN),
                                risk(area, "fire_hazards", 5, ts=t + 6 * MIN)])
    assert sorted(orders(on, client)) == [iid, f"risk:{area}:2"]
    assert detail(on, iid)["status"] == "closed"
    assert detail(on, f"risk:{area}:2")["reported"] == t + 6 * MIN


@pytest.mark.parametrize(("level", "opened"), [("off", 0), ("orange", 2), ("red", 1)])
def test_pro004_the_setting_decides_which_level_opens(settings, client, geography, areas,
                                                      level, opened):
    on = settings.replace(risk_orders=None if level == "off" else level)
    run(on, client, geography, _scenario(areas, now_ms() - 10 * MIN))
    assert len(orders(on, client)) == opened
    if level == "red":
        assert list(orders(on, client)) == [f"risk:{areas[2]}:1"]


def test_pro005_the_order_is_in_the_feed_and_the_area_list(settings, client, geography,
                                                           areas):
    on = orders_on(settings)
    run(on, client, geography, orange(areas[0], now_ms() - 10 * MIN))
    frame = compute(StateCache(on, client, geography).view(), STREET, "zh-CN")
    name = geography.name(areas[0])
    news = [row for row in frame.feed if row["what"] == "风险工单"]
    assert [(row["status"], row["title"]) for row in news] == [
        ("已上报", f"{name} 橙色预警 71.0 · 综合风险 71.0")]
    assert [(i["id"], i["what"]) for i in frame.detail["incidents"]] == [
        (f"risk:{areas[0]}:1", "风险工单")]
    assert StateCache(on, client, geography).view().summary(STREET)["incidents"]["open"] == 1


def rising_readings(geography, n_areas: int, seed: int) -> list[dict[str, str]]:
    """Readings whose values only rise with their time, in a shuffled stream order.

    Then whatever order a worker applies them in, an area's score never passes its final
    one, so the areas that enter orange, and their orders' reasons, are the same.
    """
    rnd = random.Random(seed)
    t0 = now_ms() - 3 * 3600 * 1000
    out = []
    for area in geography.descendants_at("310104", "compound")[:n_areas]:
        for indicator, (_, saturation) in DEFAULT_RISK_MODEL.items():
            final = rnd.uniform(0, 1.2) * saturation
            times = sorted(rnd.sample(range(3 * 3600), 12))
            for step, second in enumerate(times, start=1):
                out.append(risk(area, indicator, round(final * step / 12, 3),
                                ts=t0 + second * 1000))
    rnd.shuffle(out)
    return out


def test_pro006_sigkilled_workers_open_the_same_orders(client, redis_url, geography):
    events = rising_readings(geography, 700, seed=5)  # 42,000 readings
    clean = orders_on(settings_for(redis_url, "clean"))
    push(client, clean, events)
    Worker(clean, client, geography, name="clean").work(burst=True)
    crashed = orders_on(settings_for(redis_url, "crashed"))
    push(client, crashed, events)
    rnd = random.Random(3)
    for attempt in range(3):
        proc = worker_process(crashed, f"w{attempt}", CITYBRAIN_RISK_ORDERS="orange")
        wait_until(lambda: handled(client, crashed) > 0, 30, "the worker to start")
        time.sleep(rnd.uniform(0.3, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 0 < handled(client, crashed) < len(events), "the kills should land mid-stream"
    proc = worker_process(crashed, "final", CITYBRAIN_RISK_ORDERS="orange")
    try:
        wait_until(lambda: handled(client, crashed) >= len(events), 120, "the stream to drain")
    finally:
        proc.terminate()
        proc.wait(10)
    assert handled(client, crashed) == len(events)

    def kept(settings) -> dict[str, tuple]:
        return {iid: (r["st"], r["sev"], r["title"], r["why"], r["area"], r["str"])
                for iid, r in orders(settings, client).items()}

    assert len(kept(clean)) > 50  # some areas entered orange or red
    assert kept(crashed) == kept(clean)
    assert client.hgetall(crashed.state_prefix + "riskord") == client.hgetall(
        clean.state_prefix + "riskord")


def test_pro007_a_routing_rule_dispatches_the_order_with_its_sla(settings, client, geography,
                                                                 areas, tmp_path):
    rules = tmp_path / "rules.csv"
    rules.write_text("category,area_id,severity,department,sla_minutes\n"
                     "risk_order,,,街道办,720\n", encoding="utf-8")
    on = orders_on(settings.replace(routing_rules=str(rules)))
    t = now_ms() - 10 * MIN
    run(on, client, geography, orange(areas[0], t))
    iid = f"risk:{areas[0]}:1"
    body = detail(on, iid)
    assert (body["status"], body["department"]) == ("dispatched", "街道办")
    due = orjson.loads(client.hget(on.state_prefix + "open", iid))["due"]
    assert due == t + 720 * MIN
