"""多源合并, one case many reports (issue 12 item 5; run: -k mrg).

Through the real stream and worker on a real Redis: reports of one category within
`CITYBRAIN_MERGE_METRES` and `CITYBRAIN_MERGE_MINUTES` become one case, whatever the
order they arrive in and however often; an official splits a wrong merge.
"""

from __future__ import annotations

import random
import time

import orjson
import pytest

from dashboard import alerts
from dashboard.app import create_app
from dashboard.auth.users import UserStore
from dashboard.pipeline.worker import Worker
from dashboard.screen.frame import compute
from dashboard.settings import Settings, SettingsError
from dashboard.state.store import StateCache
from tests.events import incident, now_ms

SECRET = "test-secret-" + "m" * 40
PASSWORD = "correct horse battery"
STREET = "310104-S01"
METRE_LAT = 1 / 111_320  # degrees of latitude in one metre
T0 = now_ms(-3 * 3600)  # the first report; every other time is relative to it


@pytest.fixture
def merging(settings):
    return settings.replace(merge_metres=100, merge_minutes=30)


def _origin(geography):
    compound = geography.areas[geography.descendants_at(STREET, "compound")[0]]
    return compound.lon, compound.lat


def _north(origin, metres):
    return origin[0], origin[1] + metres * METRE_LAT


def _three(origin):
    """Three reports of one place from three sources, 0, 5 and 12 minutes after T0."""
    return [
        incident("H1", ts=T0, point=origin, source="hotline", title="<b>垃圾</b>"),
        incident("G1", ts=T0 + 5 * 60000, point=_north(origin, 40), source="grid"),
        incident("V1", ts=T0 + 12 * 60000, point=_north(origin, 80), source="video_ai"),
    ]


def _run(settings, client, geography, events, batch=500):
    worker = Worker(settings.replace(batch=batch), client, geography, name="w")
    for event in events:
        client.xadd(settings.stream, event)
    worker.work(burst=True)
    return worker


def shuffled_runs(settings, client, geography, events, rnd, state):
    """`state()` after the events in time order, then shuffled (and a few re-delivered)
    in batches of 1 and of 7, each on a flushed database."""
    _run(settings, client, geography, sorted(events, key=lambda e: int(e["ts"])))
    states = [state()]
    for batch in (1, 7):
        client.flushdb()
        shuffled = list(events)
        rnd.shuffle(shuffled)
        _run(settings, client, geography, shuffled + shuffled[:10], batch=batch)
        states.append(state())
    return states


def _cases(client, settings):
    """Every incident's case and every open case's report list, as stored."""
    records = {k.decode(): orjson.loads(v)
               for k, v in client.hgetall(settings.state_prefix + "inc").items()}
    return ({iid: r.get("case") for iid, r in records.items()},
            {iid: [x["i"] for x in r.get("rl", [])] for iid, r in records.items()
             if r.get("rl")},
            sorted(k.decode() for k in client.hkeys(settings.state_prefix + "open")))


def _signed_in(app, name):
    http = app.test_client()
    assert http.post("/login", data={"name": name, "password": PASSWORD}).status_code == 302
    return http


def _app(settings, client, geography):
    store = UserStore(client, settings.state_prefix, geography)
    store.add("jiedao", "street", PASSWORD, STREET)
    store.add("other", "street", PASSWORD, "310104-S05")
    store.add("boss", "city", PASSWORD)
    return create_app(settings.replace(secret_key=SECRET)).server


def test_mrg001_three_sources_one_case(merging, client, geography):
    _run(merging, client, geography, _three(_origin(geography)))
    boss = _signed_in(_app(merging, client, geography), "boss")
    detail = boss.get("/api/v1/incidents/H1").get_json()
    assert [r["incident_id"] for r in detail["reports"]] == ["H1", "G1", "V1"]
    assert [r["source"] for r in detail["reports"]] == ["hotline", "grid", "video_ai"]
    assert [r["time"] for r in detail["reports"]] == [T0, T0 + 300000, T0 + 720000]
    assert all(r["event_id"].startswith("e") for r in detail["reports"])
    assert detail["sources"] == ["grid", "hotline", "video_ai"]
    assert detail["case"] == "H1"
    assert boss.get("/api/v1/incidents/V1").get_json()["case"] == "H1"
    incidents = boss.get("/api/v1/summary").get_json()["incidents"]
    assert incidents["open"] == 1 and incidents["today"] == 1
    # the live feed says which reports joined a case
    rows = compute(StateCache(merging, client, geography).view(), "310104", "zh-CN").feed
    reported = [(r["status"], r["title"]) for r in rows if r["status"] != "超期"]
    assert sorted(reported) == [("已上报", "<b>垃圾</b>"), ("已并案", ""), ("已并案", "")]
    # the rankings count the case once, for its street
    rows = boss.get("/api/v1/rankings?level=street&period=today").get_json()["rows"]
    assert [(r["id"], r["received"]) for r in rows if r["received"]] == [(STREET, 1)]


def test_mrg002_just_outside_the_radius_or_the_window_is_a_new_case(merging, client,
                                                                   geography):
    origin = _origin(geography)
    events = [*_three(origin),
              # 130 m from H1 and 50 m from V1, but V1 heads no case: a new case
              incident("F1", ts=T0 + 14 * 60000, point=_north(origin, 130), source="grid"),
              # at H1's place, 31 minutes after it: outside the window
              incident("F2", ts=T0 + 31 * 60000, point=origin, source="hotline")]
    _run(merging, client, geography, events)
    cases, reports, open_ = _cases(client, merging)
    assert cases == {"H1": "H1", "G1": "H1", "V1": "H1", "F1": "F1", "F2": "F2"}
    assert reports == {"H1": ["H1", "G1", "V1"], "F1": ["F1"], "F2": ["F2"]}
    assert open_ == ["F1", "F2", "H1"]
    received = sum(int(v) for day in client.keys(merging.state_prefix + "day:*")
                   for k, v in client.hgetall(day).items() if k.startswith(b"r|"))
    assert received == 3  # three cases received, not five reports


def _scenario(origin):
    """Ten report events: chains whose heads change when an earlier one arrives late."""
    return [*_three(origin),
            incident("F1", ts=T0 + 14 * 60000, point=_north(origin, 130), source="grid"),
            incident("F3", ts=T0 + 40 * 60000, point=_north(origin, 150), source="grid"),
            incident("F2", ts=T0 + 31 * 60000, point=origin, source="hotline"),
            incident("F4", ts=T0 + 46 * 60000, point=_north(origin, 60), source="video_ai"),
            incident("X1", ts=T0 + 6 * 60000, point=origin, source="grid",
                     category="road_damage"),
            # a second report event of F1, earlier and 500 m away: F1's report moves there
            incident("F1", ts=T0 + 9 * 60000, point=_north(origin, 500), source="hotline"),
            # a later report event of G1 changes nothing: the earliest report counts
            incident("G1", ts=T0 + 50 * 60000, point=_north(origin, 900), source="hotline")]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_mrg003_shuffled_arrival_and_redelivery_give_identical_cases(merging, client,
                                                                     geography, seed):
    origin = _origin(geography)
    events = _scenario(origin)
    _run(merging, client, geography, events, batch=500)
    expected = _cases(client, merging)
    assert expected[0] == {"H1": "H1", "G1": "H1", "V1": "H1", "F1": "F1", "F2": "F2",
                           "F3": "F3", "F4": "F2", "X1": "X1"}
    assert expected[1] == {"H1": ["H1", "G1", "V1"], "F1": ["F1"], "F2": ["F2", "F4"],
                           "F3": ["F3"], "X1": ["X1"]}
    client.flushdb()
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    # one at a time (every late arrival re-decides), then every event delivered again
    _run(merging, client, geography, shuffled + shuffled[: seed + 2], batch=1)
    assert _cases(client, merging) == expected


def _counters(client, settings):
    """The per-day and rankings counters, zeros aside."""
    return {key: {f: n for f, n in client.hgetall(key).items() if n != b"0"}
            for key in client.scan_iter(match=settings.state_prefix + "day:*")} | {
            key: {f: n for f, n in client.hgetall(key).items() if n != b"0"}
            for key in client.scan_iter(match=settings.state_prefix + "rk:*")}


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_mrg007_random_reports_any_order_any_batching_same_state(merging, client, geography,
                                                                 seed):
    rnd = random.Random(seed)
    origin = _origin(geography)
    events = [incident(f"R{i}", ts=T0 + rnd.randint(0, 120) * 60000,
                       point=(origin[0] + rnd.uniform(0, 0.003), origin[1] + rnd.uniform(0,
                                                                                        0.003)),
                       source=rnd.choice(("hotline", "grid", "video_ai")),
                       category=rnd.choice(("garbage", "noise")))
              for i in range(60)]
    def state():
        return _cases(client, merging), _counters(client, merging)

    expected, *others = shuffled_runs(merging, client, geography, events, rnd, state)
    assert len(expected[0][1]) < 45, "the scenario should merge"
    assert others == [expected, expected]


def test_mrg004_a_late_earlier_report_takes_the_head(merging, client, geography):
    origin = _origin(geography)
    three = _three(origin)
    _run(merging, client, geography, three[1:])
    assert _cases(client, merging)[0] == {"G1": "G1", "V1": "G1"}
    _run(merging, client, geography, three[:1])
    cases, reports, open_ = _cases(client, merging)
    assert cases == {"H1": "H1", "G1": "H1", "V1": "H1"} and open_ == ["H1"]
    assert reports == {"H1": ["H1", "G1", "V1"]}


def test_mrg005_split_makes_two_cases_audited_and_in_scope(merging, client, geography):
    worker = _run(merging, client, geography, _three(_origin(geography)))
    app = _app(merging, client, geography)
    jiedao, other = _signed_in(app, "jiedao"), _signed_in(app, "other")

    def split(http, case, report):
        return http.post(f"/api/v1/incidents/{case}/actions",
                         json={"action": "split", "report": report})

    assert split(other, "H1", "V1").status_code == 403  # outside the scope
    assert split(jiedao, "H1", "NOPE").status_code == 400  # not one of its reports
    assert split(jiedao, "V1", "H1").status_code == 409  # V1 heads no case
    assert split(jiedao, "H1", "V1").status_code == 202
    worker.work(burst=True)
    cases, reports, open_ = _cases(client, merging)
    assert cases == {"H1": "H1", "G1": "H1", "V1": "V1"}
    assert reports == {"H1": ["H1", "G1"], "V1": ["V1"]}
    assert open_ == ["H1", "V1"]
    detail = jiedao.get("/api/v1/incidents/V1").get_json()
    assert detail["split"] is True and detail["sources"] == ["video_ai"]
    assert jiedao.get("/api/v1/summary").get_json()["incidents"]["open"] == 2
    assert [h["action"] for h in jiedao.get("/api/v1/incidents/H1").get_json()["history"]] \
        == ["split"]
    audit = _signed_in(app, "boss").get("/api/v1/audit?action=split").get_json()
    assert [(e["user"], e["target"], e["detail"]) for e in audit] == [("jiedao", "H1", "V1")]
    # the split stays when the same reports are delivered again
    _run(merging, client, geography, _three(_origin(geography)))
    assert _cases(client, merging)[0] == cases


def test_mrg008_a_closed_case_is_forgotten_with_its_reports(merging, client, geography):
    merging = merging.replace(verify="off")
    worker = _run(merging, client, geography, _three(_origin(geography)))
    jiedao = _signed_in(_app(merging, client, geography), "jiedao")
    assert jiedao.post("/api/v1/incidents/H1/actions",
                       json={"action": "close"}).status_code == 202
    worker.work(burst=True)
    closed = merging.state_prefix + "closed"
    assert {m.decode() for m in client.zrange(closed, 0, -1)} == {"H1", "G1", "V1"}
    later = time.time() + merging.closed_keep_s + 60  # the worker's clock, injected
    Worker(merging, client, geography, name="w", clock=lambda: later).process(
        [(b"1-1", {k.encode(): v.encode() for k, v in incident("L1").items()})])
    assert client.hkeys(merging.state_prefix + "inc") == [b"L1"]


def test_mrg009_a_report_across_the_street_border_stays_out_of_scope(merging, client,
                                                                     geography):
    origin = _origin(geography)
    east = 1 / 95_200  # degrees of longitude in a metre, here
    inside, outside = (origin[0] + 110 * east, origin[1]), (origin[0] + 125 * east, origin[1])
    assert geography.responsible(str(geography.locate([outside[0]], [outside[1]])[0])) \
        == "310101"  # 15 m apart, in two districts
    _run(merging, client, geography, [
        incident("IN1", ts=T0, point=inside, source="grid", title="inside"),
        incident("OUT1", ts=T0 + 60000, point=outside, source="hotline", title="outside")])
    app = _app(merging, client, geography)
    jiedao = _signed_in(app, "jiedao")
    detail = jiedao.get("/api/v1/incidents/IN1").get_json()
    assert [(r["incident_id"], r["title"], r["outside"]) for r in detail["reports"]] == [
        ("IN1", "inside", False), ("OUT1", "", True)]
    refused = jiedao.post("/api/v1/incidents/IN1/actions",
                          json={"action": "split", "report": "OUT1"})
    assert refused.status_code == 403
    boss = _signed_in(app, "boss")
    assert boss.get("/api/v1/incidents/IN1").get_json()["reports"][1]["title"] == "outside"


def test_mrg010_splitting_the_head_lets_the_next_report_head_the_rest(merging, client,
                                                                       geography):
    worker = _run(merging, client, geography, _three(_origin(geography)))
    jiedao = _signed_in(_app(merging, client, geography), "jiedao")
    assert jiedao.post("/api/v1/incidents/H1/actions",
                       json={"action": "split", "report": "H1"}).status_code == 202
    worker.work(burst=True)
    cases, reports, open_ = _cases(client, merging)
    assert cases == {"H1": "H1", "G1": "G1", "V1": "G1"}
    assert reports == {"H1": ["H1"], "G1": ["G1", "V1"]} and open_ == ["G1", "H1"]
    detail = jiedao.get("/api/v1/incidents/G1").get_json()
    assert detail["sources"] == ["grid", "video_ai"] and detail["split"] is False
    # a fourth report near H1 joins G1's case: H1, split off, takes no other
    _run(merging, client, geography, [incident("L1", ts=T0 + 20 * 60000,
                                               point=_origin(geography), source="grid")])
    assert _cases(client, merging)[0]["L1"] == "G1"


def test_mrg011_split_commands_from_upstream_are_checked(merging, client, geography):
    worker = _run(merging, client, geography, _three(_origin(geography)))
    base = {"command_id": "c1", "action": "split", "incident_id": "H1", "user": "upstream",
            "ts": str(now_ms())}
    client.xadd(merging.command_stream, {**base, "command_id": "c2"})  # no report
    client.xadd(merging.command_stream, {**base, "command_id": "c3", "report": "<b>"})
    client.xadd(merging.command_stream, {**base, "report": "G1"})
    client.xadd(merging.command_stream, {**base, "report": "G1"})  # the same, re-sent
    worker.work(burst=True)
    dead = client.xrange(merging.command_stream + ":dead")
    assert [f[b"dead_reason"] for _, f in dead] == [b"missing_field", b"bad_value"]
    cases, reports, _ = _cases(client, merging)
    assert cases == {"H1": "H1", "G1": "G1", "V1": "H1"}
    assert reports == {"H1": ["H1", "V1"], "G1": ["G1"]}
    history = orjson.loads(client.hget(merging.state_prefix + "notes", "H1"))
    assert [(h["action"], h["report"]) for h in history] == [("split", "G1")]


@pytest.mark.parametrize(("name", "value"), [
    ("CITYBRAIN_MERGE_METRES", "-1"), ("CITYBRAIN_MERGE_MINUTES", "0"),
    ("CITYBRAIN_HOTSPOT_REPORTS", "x"), ("CITYBRAIN_HOTSPOT_METRES", "0"),
    ("CITYBRAIN_HOTSPOT_DAYS", "1.5")])
def test_mrg012_bad_settings_are_refused_by_name(name, value):
    with pytest.raises(SettingsError, match=f"^{name}="):
        Settings.load(env={name: value})


def test_mrg013_one_alert_per_case_not_per_report(merging, client, geography):
    severe = [{**event, "severity": "4"} for event in _three(_origin(geography))]
    _run(merging, client, geography, severe)
    feed = StateCache(merging, client, geography).view().raw.feed
    assert [item["incident_id"] for item in feed if alerts.is_alert(item, merging)] == ["H1"]
    assert sorted(item.get("case", "") for item in feed) == ["", "H1", "H1"]


def test_mrg006_off_leaves_every_report_its_own_incident(settings, client, geography):
    _run(settings, client, geography, _three(_origin(geography)))
    cases, reports, open_ = _cases(client, settings)
    assert cases == {"H1": None, "G1": None, "V1": None} and reports == {}
    assert open_ == ["G1", "H1", "V1"]
