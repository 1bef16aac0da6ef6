"""The push process over raw HTTP: scope, sessions, resume (run: pytest -k psh).

A real `citybrain push` child process and the real web app on one real Redis; the
streams are read as a browser's EventSource reads them, with the web's own signed
session cookie.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from dashboard.app import create_app
from dashboard.auth.users import UserStore
from dashboard.pipeline.worker import Worker
from dashboard.push.delta import PATCH, apply, delta, size
from dashboard.push.hub import Hub, sig_patch
from dashboard.push.message import as_json, compact
from tests.events import PUDONG_POINT, incident
from tests.pushproc import Stream, push_process

SECRET = "push-secret-" + "x" * 40
PASSWORD = "correct horse battery"
DELTA_BUDGET_B = 5_000  # issue 13: an update of 10 events is at most 5 KB


@pytest.fixture
def accounts(client, settings, geography):
    store = UserStore(client, settings.state_prefix, geography)
    store.add("xuhui", "district", PASSWORD, "310104")
    store.add("boss", "city", PASSWORD)
    return store


@pytest.fixture
def web(settings, accounts):
    return create_app(settings.replace(secret_key=SECRET)).server


@pytest.fixture
def push(settings, accounts, tmp_path):
    env = {"REDIS_URL": settings.redis_url or "", "CITYBRAIN_SECRET_KEY": SECRET,
           "CITYBRAIN_TZ": settings.tz, "CITYBRAIN_AUDIT_DIR": str(tmp_path / "push-audit")}
    with push_process(env, tmp_path / "push.log") as process:
        yield process


def cookie_of(web, name: str) -> str:
    http = web.test_client()
    answer = http.post("/login", data={"name": name, "password": PASSWORD, "next": "/"})
    assert answer.status_code == 302
    return http.get_cookie("citybrain_session").value


def apply_events(client, settings, geography, *events) -> None:
    for event in events:
        client.xadd(settings.stream, event)
    Worker(settings, client, geography, name="w").work(burst=True)


def test_psh001_an_officials_stream_never_carries_another_area(client, settings, geography,
                                                               web, push):
    apply_events(client, settings, geography, incident("X1", title="徐汇的事"),
          incident("P1", point=PUDONG_POINT, title="浦东的事"))
    cookie = {"citybrain_session": cookie_of(web, "xuhui")}
    for other in ("310115", "310000", "310101"):
        refused = Stream(f"{push.base}/push/stream?area={other}", cookie)
        assert refused.status == 403, other
        refused.close()
    stream = Stream(f"{push.base}/push/stream?area=310104&lang=zh-CN", cookie)
    assert stream.status == 200
    assert stream.headers["X-Accel-Buffering"] == "no"
    snapshot = stream.until(lambda d: d.get("snapshot"))["data"]
    assert snapshot["key"] == "310104|zh-CN"
    assert "徐汇的事" in json.dumps(snapshot, ensure_ascii=False)
    apply_events(client, settings, geography, incident("P2", point=PUDONG_POINT, title="浦东新事"),
          incident("X2", title="徐汇新事"))
    stream.until(lambda d: "徐汇新事" in json.dumps(d, ensure_ascii=False))
    stream.close()
    everything = "\n".join(stream.raw)
    for secret in ("浦东", "P1", "P2", "310115"):
        assert secret not in everything, secret
    no_area = Stream(f"{push.base}/push/stream", cookie)  # no area: the official's own
    assert no_area.until(lambda d: d.get("snapshot"))["data"]["key"] == "310104|zh-CN"
    no_area.close()


def test_psh002_no_session_no_stream_and_sign_out_ends_it(client, settings, geography, web,
                                                          push):
    assert Stream(f"{push.base}/push/stream").status == 401
    forged = {"citybrain_session": "eyJzaWQiOiJ4In0.forged.signature"}
    assert Stream(f"{push.base}/push/stream", forged).status == 401
    http = web.test_client()
    http.post("/login", data={"name": "boss", "password": PASSWORD, "next": "/"})
    cookie = {"citybrain_session": http.get_cookie("citybrain_session").value}
    stream = Stream(f"{push.base}/push/stream?area=310000", cookie)
    assert stream.status == 200
    stream.until(lambda d: d.get("snapshot"))
    assert http.get("/logout").status_code in (200, 302)
    ended_at = time.monotonic()
    while stream.next() is not None:  # the stream ends (its rounds check the session)
        assert time.monotonic() - ended_at < 10, "the stream outlived the sign-out"
    assert Stream(f"{push.base}/push/stream?area=310000", cookie).status == 401


def test_psh003_a_reconnect_resumes_in_step_or_gets_a_snapshot(client, settings, geography,
                                                               push):
    client.delete(settings.state_prefix + "users")  # open demo mode: no accounts
    first = Stream(f"{push.base}/push/stream?area=310104")
    snapshot = first.until(lambda d: d.get("snapshot"))
    later = first.until(lambda d: not d.get("snapshot"))  # the clock moves every second
    first.close()
    assert "tick-sig" in later["data"]["props"]
    resumed = Stream(f"{push.base}/push/stream?area=310104",
                     headers={"Last-Event-ID": later["id"]})
    again = resumed.next()
    assert again is not None and not again["data"].get("snapshot")
    resumed.close()
    stale = Stream(f"{push.base}/push/stream?area=310104&last=gone-1")
    assert stale.next()["data"].get("snapshot")
    stale.close()
    assert snapshot["id"] != later["id"]


def test_psh004_the_signature_patch_brings_the_browser_to_the_new_signature():
    old = {"key": "a|en", "kpis": "1", "traces": [{"lon": "a", "lat": "b"}], "stale": False}
    new = {"key": "a|en", "kpis": "2", "traces": [{"lon": "a", "lat": "c"}], "stale": False}
    ops = sig_patch(old, new)["operations"]
    assert {"operation": "Assign", "location": ["kpis"], "params": {"value": "2"}} in ops
    assert {"operation": "Assign", "location": ["traces", 0, "lat"],
            "params": {"value": "c"}} in ops
    assert len(ops) == 2
    grown = {**new, "traces": [*new["traces"], {"lon": "x"}]}
    assert sig_patch(new, grown)["operations"] == [
        {"operation": "Assign", "location": ["traces"], "params": {"value": grown["traces"]}}]


def test_psh007_a_delta_applied_as_the_browser_does_gives_the_new_value():
    item = {"props": {"children": "t", "className": "feed-item"}, "type": "Li",
            "namespace": "dash_html_components"}
    feed = [{**item, "props": {**item["props"], "children": f"event {i}"}} for i in range(20)]
    old = {"feed": feed, "trace": {"lon": [1.0, 2.0, 3.0, 4.0], "lat": [5.0, 6.0, 7.0, 8.0],
                                   "customdata": [["a", 1], ["b", 2], ["c", 3], ["d", 4]]},
           "gone": 1}
    new = {"feed": [{**item, "props": {**item["props"], "children": "new"}}, *feed[:19]],
           "trace": {"lon": [1.0, 2.5, 3.0, 9.0, 4.0], "lat": [5.0, 6.0, 7.0, 9.0, 8.0],
                     "customdata": [["a", 1], ["b", 22], ["c", 3], ["x", 9], ["d", 4]]}}
    patch = delta(old, new)
    assert patch[PATCH] == PATCH
    assert apply(old, patch) == new
    assert size(patch) < size(new) / 2  # the unchanged items do not travel
    assert delta(old, 5) == 5  # a value of another type is sent whole
    wire = compact(as_json(patch))
    assert "namespace" not in json.dumps(wire) and wire["~p"][0][0] in ("a", "i", "d")


def test_psh008_ten_incidents_at_once_travel_as_a_small_delta_inside_scope(
        client, settings, geography, web, push):
    apply_events(client, settings, geography, incident("X0", title="first"))
    cookie = {"citybrain_session": cookie_of(web, "xuhui")}
    stream = Stream(f"{push.base}/push/stream?area=310104&lang=zh-CN", cookie)
    stream.until(lambda d: d.get("snapshot"))
    snapshot_size = len(stream.wire[-1].encode())
    apply_events(client, settings, geography,
                 *[incident(f"X{i}", title=f"徐汇十件{i}") for i in range(1, 11)],
                 *[incident(f"P{i}", point=PUDONG_POINT, title=f"浦东{i}") for i in range(3)])
    start = len(stream.raw)

    def arrived(_: dict) -> bool:
        return all(f"徐汇十件{i}" in "".join(stream.raw[start:]) for i in range(1, 11))

    stream.until(arrived)
    stream.close()
    updates = stream.raw[start:]
    assert not any(json.loads(u).get("snapshot") for u in updates)
    carried = max(len(u.encode()) for u in stream.wire[start:])
    assert carried <= DELTA_BUDGET_B, (carried, snapshot_size)
    assert carried < snapshot_size / 3
    maps = [json.loads(u)["props"].get("map-graph", {}).get("figure") for u in updates]
    assert [m for m in maps if m], "the map did not change"
    assert all("~p" in m for m in maps if m)  # the map is patched, never sent whole
    for secret in ("浦东", "P0", "310115"):
        assert secret not in "".join(stream.raw), secret


def test_psh013_the_hub_wakes_on_the_workers_change_not_on_its_clock(client, settings,
                                                                     geography):
    """`await_change` returns True once the worker logs a change, False when its wait
    passed without one, None when Redis cannot be asked. Here the wait is a minute: only
    the change can end it within the test's time."""
    hub = Hub(settings, client, geography)
    assert hub.await_change(0.05) is False  # nothing logged since the hub started
    woke: list[bool | None] = []
    waiting = threading.Thread(target=lambda: woke.append(hub.await_change(60)), daemon=True)
    waiting.start()
    apply_events(client, settings, geography, incident("WAKE-1", point=PUDONG_POINT))
    waiting.join(30)
    assert woke == [True]
    assert hub.await_change(0.05) is False  # that change is taken: the next wait is new
    gone = Hub(settings, redis.Redis(port=1, socket_connect_timeout=1), geography)
    assert gone.await_change(0.05) is None
