"""未诉先办 hotspots (issue 12 item 6a; run: -k hot0).

Through the real stream and worker on a real Redis: `CITYBRAIN_HOTSPOT_REPORTS` reports
of a category within `CITYBRAIN_HOTSPOT_METRES` and `CITYBRAIN_HOTSPOT_DAYS` open one
proactive case for the street, linking them; re-delivery and shuffled order open no other.
"""

from __future__ import annotations

import random
import time

import orjson
import pytest

from dashboard.pipeline.worker import Worker
from dashboard.screen.frame import compute, feed_items
from dashboard.screen.incident_panel import body
from dashboard.state.store import StateCache
from tests.events import incident, now_ms
from tests.test_merge import (
    METRE_LAT,
    STREET,
    _app,
    _cases,
    _origin,
    _run,
    _signed_in,
    shuffled_runs,
)

DAY = 86_400_000
T0 = now_ms(-3 * 86400)  # three days ago; every report time is relative to it
CASE = f"proactive:garbage:{STREET}:1"


@pytest.fixture
def hot(settings):
    return settings.replace(hotspot_reports=3, hotspot_metres=200, hotspot_days=7)


def _at(origin, metres_north, metres_east=0.0):
    return origin[0] + metres_east * METRE_LAT * 1.17, origin[1] + metres_north * METRE_LAT


def _reports(origin):
    """Three garbage reports 150 m apart at most, one a day; one of another category."""
    return [
        incident("A1", ts=T0, point=origin, source="hotline", title="垃圾堆放"),
        incident("A2", ts=T0 + DAY, point=_at(origin, 70), source="grid"),
        incident("A3", ts=T0 + 2 * DAY, point=_at(origin, 150), source="hotline"),
        incident("N1", ts=T0 + DAY, point=_at(origin, 10), source="hotline", category="noise"),
    ]


def _proactive(client, settings):
    """Each proactive case: (its report time, area, category, linked reports); hot:open."""
    out = {}
    for iid, raw in client.hscan_iter(settings.state_prefix + "inc"):
        record = orjson.loads(raw)
        if record.get("src") == "proactive":
            out[iid.decode()] = (record["rts"], record["area"], record["cat"], record["st"],
                                 [r["i"] for r in record["rl"]])
    opened = {k.decode(): v.decode()
              for k, v in client.hgetall(settings.state_prefix + "hot:open").items()}
    return out, opened


def test_hot001_k_reports_in_d_days_open_exactly_one_proactive_case(hot, client, geography):
    origin = _origin(geography)
    events = _reports(origin)
    _run(hot, client, geography, events[:2])
    assert _proactive(client, hot) == ({}, {})  # two reports: not yet
    _run(hot, client, geography, events[2:])
    cases, opened = _proactive(client, hot)
    assert cases == {CASE: (T0 + 2 * DAY, STREET, "garbage", "reported", ["A1", "A2", "A3"])}
    assert opened == {f"garbage|{STREET}": CASE}
    _run(hot, client, geography, events)  # delivered again: nothing new
    assert _proactive(client, hot) == (cases, opened)
    # a fourth report in the neighbourhood joins the same case
    _run(hot, client, geography, [incident("A4", ts=T0 + 2 * DAY + 3600_000,
                                           point=_at(origin, 100), source="video_ai")])
    cases, _ = _proactive(client, hot)
    assert list(cases) == [CASE] and cases[CASE][4] == ["A1", "A2", "A3", "A4"]
    # one more 1 km away joins nothing
    _run(hot, client, geography, [incident("B1", ts=T0 + 2 * DAY, point=_at(origin, 1000),
                                           source="grid")])
    assert _proactive(client, hot)[0][CASE][4] == ["A1", "A2", "A3", "A4"]


def test_hot002_the_api_the_summary_and_the_feed_show_it(hot, client, geography):
    _run(hot, client, geography, _reports(_origin(geography)))
    boss = _signed_in(_app(hot, client, geography), "boss")
    detail = boss.get(f"/api/v1/incidents/{CASE}").get_json()
    assert detail["source"] == "proactive" and detail["category"] == "garbage"
    assert detail["area"] == STREET and detail["status"] == "reported"
    assert [(r["incident_id"], r["source"]) for r in detail["reports"]] == [
        ("A1", "hotline"), ("A2", "grid"), ("A3", "hotline")]
    assert detail["reports"][0]["title"] == "垃圾堆放"
    assert boss.get("/api/v1/summary").get_json()["incidents"]["open"] == 5  # 4 + proactive
    view = StateCache(hot, client, geography).view()
    news = [(i["incident_id"], i.get("source"), i["status"]) for i in feed_items(view, "310000")]
    assert news.count((CASE, "proactive", "reported")) == 1
    assert news.count((CASE, "proactive", "overdue")) == 1  # a day past its deadline
    frame = compute(view, "310104", "zh-CN")
    assert [(r["what"], r["status"], r["title"]) for r in frame.feed if r["id"] == CASE] == [
        ("垃圾", "已上报", "未诉先办")]
    assert [r["title"] for r in frame.feed if r["id"] == CASE + "@due"] == ["未诉先办"]
    # the lists name it too (it has no title of its own)
    listed = [*frame.detail["incidents"], *frame.overdue]
    assert [r["title"] for r in listed if r["id"] == CASE] == ["未诉先办"] * len(
        [r for r in listed if r["id"] == CASE])
    assert any(r["id"] == CASE for r in frame.overdue)  # a day past its deadline
    assert [r["title"] for r in compute(view, STREET, "en").overdue if r["id"] == CASE] == [
        "Proactive"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hot003_shuffled_order_and_redelivery_give_the_same_cases(hot, client, geography,
                                                                 seed):
    rnd = random.Random(seed)
    origin = _origin(geography)
    events = [incident(f"R{i}", ts=T0 + rnd.randint(0, 5 * 24) * 3600_000,
                       point=_at(origin, rnd.uniform(0, 600), rnd.uniform(0, 600)),
                       source=rnd.choice(("hotline", "grid", "video_ai")),
                       category=rnd.choice(("garbage", "noise")))
              for i in range(40)]
    expected, *others = shuffled_runs(hot, client, geography, events, rnd,
                                      lambda: _proactive(client, hot))
    assert expected[0], "the scenario should make a hotspot"
    assert others == [expected, expected]


def test_hot007_with_merging_on_too_any_order_gives_the_same_cases(hot, client, geography):
    both = hot.replace(merge_metres=150, merge_minutes=60)
    rnd = random.Random(7)
    origin = _origin(geography)
    events = [incident(f"R{i}", ts=T0 + rnd.randint(0, 3 * 24 * 60) * 60_000,
                       point=_at(origin, rnd.uniform(0, 400), rnd.uniform(0, 400)),
                       source=rnd.choice(("hotline", "grid", "video_ai")))
              for i in range(50)]

    def state():
        return _proactive(client, both), _cases(client, both)

    expected, *others = shuffled_runs(both, client, geography, events, rnd, state)
    assert expected[0][0] and len(expected[1][1]) < 50, "hotspots and merges expected"
    assert others == [expected, expected]


def test_hot004_a_closed_proactive_case_lets_the_next_hotspot_open_another(hot, client,
                                                                         geography):
    origin = _origin(geography)
    _run(hot, client, geography, _reports(origin))
    jiedao = _signed_in(_app(hot.replace(verify="off"), client, geography), "jiedao")
    assert jiedao.post(f"/api/v1/incidents/{CASE}/actions",
                       json={"action": "close"}).status_code == 202
    Worker(hot.replace(verify="off"), client, geography, name="w").work(burst=True)
    cases, opened = _proactive(client, hot)
    assert cases[CASE][3] == "closed" and opened == {}
    _run(hot, client, geography, [incident("A5", ts=T0 + 2 * DAY + 60_000,
                                           point=_at(origin, 20), source="grid")])
    cases, opened = _proactive(client, hot)
    second = f"proactive:garbage:{STREET}:2"
    assert opened == {f"garbage|{STREET}": second}
    assert cases[second][4] == ["A1", "A2", "A3", "A5"] and cases[CASE][4] == ["A1", "A2", "A3"]


def test_hot008_a_forgotten_proactive_case_links_nothing_and_a_new_one_opens(hot, client,
                                                                           geography):
    origin = _origin(geography)
    off = hot.replace(verify="off")
    _run(off, client, geography, _reports(origin))
    jiedao = _signed_in(_app(off, client, geography), "jiedao")
    assert jiedao.post(f"/api/v1/incidents/{CASE}/actions",
                       json={"action": "close"}).status_code == 202
    Worker(off, client, geography, name="w").work(burst=True)
    later = time.time() + off.closed_keep_s + 60  # the worker's clock, injected: swept
    Worker(off, client, geography, name="w", clock=lambda: later).process(
        [(b"1-1", {k.encode(): v.encode() for k, v in incident("L1").items()})])
    assert client.hget(off.state_prefix + "inc", CASE) is None
    # an earlier report makes A2 hot too, and A3 (its window changed) decides again; A3's
    # case is gone: a new one opens, linking both and their neighbourhoods
    _run(off, client, geography, [incident("A0", ts=T0 - 3600_000, point=_at(origin, 30))])
    cases, opened = _proactive(client, off)
    second = f"proactive:garbage:{STREET}:2"
    assert opened == {f"garbage|{STREET}": second}
    assert cases == {second: (T0 + DAY, STREET, "garbage", "reported",
                              ["A0", "A1", "A2", "A3"])}


def test_hot006_reports_spread_over_more_than_d_days_open_nothing(hot, client, geography):
    origin = _origin(geography)
    spread = [incident(f"S{i}", ts=T0 + i * 30 * 3600_000, point=_at(origin, 10 * i))
              for i in range(3)]  # 30 hours apart: never 3 within a day
    _run(hot.replace(hotspot_days=1), client, geography, spread)
    assert _proactive(client, hot) == ({}, {})
    _run(hot.replace(hotspot_days=2), client, geography, spread)  # 60 hours: still not
    assert _proactive(client, hot) == ({}, {})


def test_hot005_off_opens_nothing(settings, client, geography):
    _run(settings, client, geography, _reports(_origin(geography)))
    assert _proactive(client, settings) == ({}, {})


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_hot009_reports_repeated_at_other_times_and_places_any_order_same_cases(
        hot, client, geography, seed):
    """An incident reported again (another time, another place: its earliest report counts)
    moves in the hotspot window: the hot reports and what they link follow it, whatever
    the arrival order (the SIGKILL test's mix re-delivers such reports out of order)."""
    rnd = random.Random(seed)
    origin = _origin(geography)
    events = [incident(f"R{rnd.randint(0, 24)}", ts=T0 + rnd.randint(0, 5 * 24) * 3600_000,
                       point=_at(origin, rnd.uniform(0, 900), rnd.uniform(0, 900)),
                       source=rnd.choice(("hotline", "grid", "video_ai")),
                       category=rnd.choice(("garbage", "garbage", "noise")))
              for _ in range(60)]
    for i, event in enumerate(events):
        event["event_id"] = f"e{i}"
    expected, *others = shuffled_runs(hot, client, geography, events, rnd,
                                      lambda: _proactive(client, hot))
    assert expected[0], "the scenario should make a hotspot"
    assert others == [expected, expected]


def test_hot010_a_report_moved_out_of_the_window_unlinks_and_an_unlinked_case_goes(
        hot, client, geography):
    """A3's earlier report lies 1 km away: the hotspot it made is gone, and so is the case
    nobody acted on (its number is free again)."""
    origin = _origin(geography)
    _run(hot, client, geography, _reports(origin))
    assert list(_proactive(client, hot)[0]) == [CASE]
    _run(hot, client, geography, [incident("A3", ts=T0 - 5 * DAY, point=_at(origin, 1000),
                                           source="grid")])
    assert _proactive(client, hot) == ({}, {})
    assert orjson.loads(client.hget(hot.state_prefix + "inc", "A3")).get("hot") is None
    assert client.hget(hot.state_prefix + "open", CASE) is None
    # back in the window (a fourth report near A1 and A2): the same number opens again
    _run(hot, client, geography, [incident("A4", ts=T0 + 2 * DAY, point=_at(origin, 40))])
    cases, _ = _proactive(client, hot)
    assert list(cases) == [CASE] and cases[CASE][4] == ["A1", "A2", "A4"]


def test_hot011_a_routing_rule_dispatches_the_case_of_its_category_and_street(
        hot, client, geography, tmp_path):
    rules = tmp_path / "rules.csv"
    rules.write_text("category,area_id,severity,department,sla_minutes\n"
                     "garbage,,,环卫,240\n"
                     f"garbage,{STREET},,街道办,90\n", encoding="utf-8")
    routed = hot.replace(routing_rules=str(rules))
    _run(routed, client, geography, [{**e, "department": "城管"} for e in _reports(
        _origin(geography))])  # the reports' own department is not the case's
    detail = _signed_in(_app(routed, client, geography), "boss").get(
        f"/api/v1/incidents/{CASE}").get_json()
    assert (detail["status"], detail["department"]) == ("dispatched", "街道办")
    assert [(h["action"], h["user"], h["department"]) for h in detail["history"]] == [
        ("dispatch", "routing", "街道办")]
    assert "rule 3" in detail["history"][0]["note"]
    due = orjson.loads(client.hget(routed.state_prefix + "open", CASE))["due"]
    assert due == T0 + 2 * DAY + 90 * 60_000  # the rule's SLA from the hot report's time


def test_hot012_the_panel_titles_a_hotspot_case_by_its_category_and_reports(
        hot, client, geography):
    _run(hot, client, geography, _reports(_origin(geography)))
    detail = _signed_in(_app(hot, client, geography), "boss").get(
        f"/api/v1/incidents/{CASE}").get_json()
    assert detail["title"] in ("", None)

    def title(lang):
        parts = body(detail, None, lang, hot)
        return next(p.children for p in parts if getattr(p, "id", None) == "incident-title")

    assert title("zh-CN") == "未诉先办 · 垃圾 · 3 条上报"
    assert title("en") == "Proactive · Garbage · 3 reports"
