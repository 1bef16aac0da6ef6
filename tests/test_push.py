"""The push process over raw HTTP: scope, sessions, resume (run: pytest -k psh).

A real `citybrain push` child process and the real web app on one real Redis; the
streams are read as a browser's EventSource reads them, with the web's own signed
session cookie.
"""

from __future__ import annotations

import json
import time

import pytest

from dashboard.app import create_app
from dashboard.auth.users import UserStore
from dashboard.pipeline.worker import Worker
from dashboard.push.hub import sig_patch
from tests.events import PUDONG_POINT, incident
from tests.pushproc import Stream, push_process

SECRET = "push-secret-" + "x" * 40
PASSWORD = "correct horse battery"


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


def apply(client, settings, geography, *events) -> None:
    for event in events:
        client.xadd(settings.stream, event)
    Worker(settings, client, geography, name="w").work(burst=True)


def test_psh001_an_officials_stream_never_carries_another_area(client, settings, geography,
                                                               web, push):
    apply(client, settings, geography, incident("X1", title="徐汇的事"),
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
    apply(client, settings, geography, incident("P2", point=PUDONG_POINT, title="浦东新事"),
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
