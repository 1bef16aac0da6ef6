"""Look back: a past moment rebuilt from the kept stream equals the events up to it."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from dashboard.app import create_app
from dashboard.cli import _web_command
from dashboard.pipeline.worker import Worker
from tests import dashcb
from tests.browser import background_worker, wait_for
from tests.events import incident, now_ms, traffic

HOUR = 3_600_000


@pytest.fixture
def timeline(settings, client, geography):
    """Events arriving at known times (stream ids are arrival times)."""
    t = now_ms() - 3 * HOUR
    # arrive at t, t+1h, t+2h; each event's own time is its arrival time
    plan = [
        (t, incident("A", ts=t, category="garbage")),
        (t + 1, traffic("S1", 30, 60, ts=t)),
        (t + HOUR, incident("B", ts=t + HOUR, category="noise", severity="4")),
        (t + 2 * HOUR, incident("A", status="closed", ts=t + 2 * HOUR, point=None)),
        (t + 2 * HOUR + 1, traffic("S1", 60, 60, ts=t + 2 * HOUR)),
    ]
    for arrival, event in plan:
        client.xadd(settings.stream, event, id=f"{arrival}-0")
    Worker(settings, client, geography, name="w").work(burst=True)
    return t


def summary(http, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = http.get(f"/api/v1/summary?{query}")
    assert response.status_code == 200, response.data
    return response.get_json()


def test_lbk001_replay_equals_the_events_up_to_that_moment(settings, timeline):
    http = create_app(settings).server.test_client()
    t = timeline
    live = summary(http)
    assert live["incidents"]["open"] == 1 and live["traffic"]["index"] == 1.0
    early = summary(http, at=t + 30 * 60_000)  # after A and the first reading only
    assert early["incidents"]["open"] == 1
    assert early["incidents"]["open_by_category"] == {"garbage": 1}
    assert early["traffic"]["index"] == 2.0
    middle = summary(http, at=t + 90 * 60_000)  # forward: only B is new
    assert middle["incidents"]["open"] == 2
    assert middle["incidents"]["open_by_severity"]["4"] == 1
    assert middle["traffic"]["index"] == 2.0
    late = summary(http, at=t + 150 * 60_000)  # A closed, S1 back to free flow
    assert late["incidents"]["open"] == 1 and late["traffic"]["index"] == 1.0
    again = summary(http, at=t + 30 * 60_000)  # backward: rebuilt from the start
    assert again["incidents"] == early["incidents"] and again["traffic"] == early["traffic"]
    assert again["as_of"].startswith(early["as_of"][:16])


def test_lbk002_bad_or_future_moment_is_refused(settings, timeline):
    http = create_app(settings).server.test_client()
    assert http.get("/api/v1/summary?at=yesterday-ish").status_code == 400
    assert http.get(f"/api/v1/summary?at={now_ms() + 3_600_000}").status_code == 400


def test_lbk003_replay_does_not_touch_live_state(settings, client, timeline):
    http = create_app(settings).server.test_client()
    before = {k: client.type(k) for k in client.scan_iter(settings.state_prefix + "*")}
    summary(http, at=timeline + 30 * 60_000)
    after = {k: client.type(k) for k in client.scan_iter(settings.state_prefix + "*")}
    assert before == after
    assert summary(http)["incidents"]["open"] == 1


def test_lbk004_replay_includes_officials_actions(settings, client, timeline, geography):
    """A dispatch made from the cockpit is part of the past it was made in, not before it."""
    t = timeline
    command = {"command_id": "cmd-B-1", "action": "dispatch", "incident_id": "B",
               "user": "xuhui", "department": "环卫", "note": "<b>go</b>",
               "ts": str(t + HOUR + 30 * 60_000)}
    client.xadd(settings.command_stream, command, id=f"{t + HOUR + 30 * 60_000}-0")
    Worker(settings, client, geography, name="w").work(burst=True)
    http = create_app(settings).server.test_client()
    live = http.get("/api/v1/incidents/B").get_json()
    assert live["status"] == "dispatched" and live["department"] == "环卫"
    before = http.get(f"/api/v1/incidents/B?at={t + HOUR + 10 * 60_000}").get_json()
    assert before["status"] == "reported" and before["history"] == []
    after = http.get(f"/api/v1/incidents/B?at={t + HOUR + 40 * 60_000}").get_json()
    assert after["status"] == "dispatched" and after["department"] == "环卫"
    assert [h["note"] for h in after["history"]] == ["<b>go</b>"]
    # Not yet reported at that moment: 404, as for an unknown incident.
    assert http.get(f"/api/v1/incidents/B?at={t + 30 * 60_000}").status_code == 404
    assert http.get("/api/v1/incidents/B?at=soon").status_code == 400


def viewer_of(http) -> str:
    """The replay namespace the app gave this client (a live request sets its cookie)."""
    assert http.get("/api/v1/summary").status_code == 200
    cookie = http.get_cookie("citybrain_viewer")
    assert cookie is not None and len(cookie.value) >= 16
    return f"demo.{cookie.value}"


def test_lbk005_a_held_replay_answers_503_with_retry_after(settings, client, timeline):
    """Bounded wait: a replay whose lock is held answers busy soon, not after 120 s."""
    app = create_app(settings.replace(replay_wait_s=0.3))
    http = app.server.test_client()
    replayer = app.server.extensions["citybrain"].replayer
    lock = client.lock(replayer.scratch(viewer_of(http)).state_prefix + "lock", timeout=60)
    assert lock.acquire(blocking=False)
    at = timeline + 30 * 60_000
    started = time.monotonic()
    for path in (f"/api/v1/summary?at={at}", f"/api/v1/incidents/A?at={at}",
                 f"/api/v1/export/incidents.csv?at={at}"):
        busy = http.get(path)
        assert busy.status_code == 503, path
        assert busy.headers["Retry-After"] == "1"
        assert busy.get_json() == {"error": "replay_busy", "retry_after_s": 1}
    assert time.monotonic() - started < 30  # three waits of 0.3 s (it was 120 s each)
    other = app.server.test_client()  # another viewer is not held up by it
    viewer_of(other)
    assert summary(other, at=at)["incidents"]["open_by_category"] == {"garbage": 1}
    lock.release()
    assert summary(http, at=at)["incidents"]["open_by_category"] == {"garbage": 1}


def test_lbk006_the_screen_says_busy_instead_of_a_blank_or_an_error(settings, client,
                                                                    timeline):
    app = create_app(settings.replace(replay_wait_s=0.2))
    http = app.server.test_client()
    replayer = app.server.extensions["citybrain"].replayer
    lock = client.lock(replayer.scratch(viewer_of(http)).state_prefix + "lock", timeout=60)
    assert lock.acquire(blocking=False)
    chosen = {"replay.data": {"at": timeline + 30 * 60_000, "speed": 0, "since": now_ms()},
              "url.search": "?area=310104", "tick.n_intervals": 3,
              "tick-sig.data": {"key": "310104|zh-CN"}}
    tick = dashcb.outputs(dashcb.post(http, "kpi-row.children", chosen, ["replay.data"]))
    assert tick["replay-marker.className"] == "replay-marker is-busy"
    assert "繁忙" in tick["replay-marker.children"] and "busy" in tick["replay-marker.children"]
    assert "kpi-row.children" not in tick  # what is shown stays until the moment is ready
    assert tick["tick-sig.data"]["replay"] == tick["replay-marker.children"]
    drawn = dashcb.outputs(dashcb.post(http, "screen-root.children", chosen, ["url.search"]))
    assert "replay-marker is-busy" in str(drawn["screen-root.children"])
    panel = dashcb.outputs(dashcb.post(http, "incident-body.children",
                                       {**chosen, "incident-sel.data": "A"},
                                       ["incident-sel.data"]))
    assert "回看准备中" in str(panel["incident-body.children"])
    lock.release()
    tick = dashcb.outputs(dashcb.post(http, "kpi-row.children", chosen, ["replay.data"]))
    assert tick["replay-marker.className"] == "replay-marker is-replay"
    assert "kpi-row.children" in tick


@pytest.fixture
def long_history(settings, client, geography):
    """6,000 traffic readings, one every 2 s, around two incidents: a replay of many chunks."""
    t = now_ms() - 4 * HOUR
    entries = [(f"{t + i * 2000}-0", traffic(f"S{i % 50}", 30 + i % 20, 60, ts=t + i * 2000))
               for i in range(6000)]
    entries += [(f"{t + 30 * 60_000}-1", incident("EARLY", ts=t + 30 * 60_000)),
                (f"{t + 150 * 60_000}-1", incident("LATE", ts=t + 150 * 60_000))]
    pipe = client.pipeline(transaction=False)
    for entry_id, event in sorted(entries, key=lambda e: tuple(map(int, e[0].split("-")))):
        pipe.xadd(settings.stream, event, id=entry_id)
    pipe.execute()
    return t


def test_lbk007_two_demo_viewers_replay_their_own_moments(settings, client, long_history):
    """Everyone is `demo` in open demo mode; each browser session has its own replay.

    With a short wait each request applies about one chunk and answers "preparing" with
    its progress; the two viewers' requests alternate. Sharing one replay, the earlier
    moment would reset the later one's progress (and the next request start again).
    """
    app = create_app(settings.replace(replay_wait_s=0.01))
    late_at, early_at = long_history + 180 * 60_000, long_history + 60 * 60_000
    viewers = {"late": (app.server.test_client(), late_at, 2),
               "early": (app.server.test_client(), early_at, 1)}
    progress: dict[str, list[float]] = {"late": [], "early": []}
    answers: dict[str, dict] = {}
    for http, _, _ in viewers.values():
        viewer_of(http)
    for _ in range(60):
        for name, (http, at, _) in viewers.items():
            if name in answers:
                continue
            response = http.get(f"/api/v1/summary?at={at}")
            if response.status_code == 200:
                answers[name] = response.get_json()
            else:
                assert response.status_code == 503 and response.headers["Retry-After"] == "1"
                body = response.get_json()
                assert body["error"] == "replay_preparing", body
                progress[name].append(body["progress"])
        if len(answers) == 2:
            break
    assert set(answers) == {"late", "early"}, progress
    assert len(progress["late"]) >= 3, "the long replay took several requests"
    assert progress["late"] == sorted(progress["late"]), "its progress was set back"
    assert 0 < progress["late"][-1] < 1
    for name, (http, at, expected) in viewers.items():
        assert answers[name]["incidents"]["open"] == expected
        # Each replay stayed at its own moment: the next request answers at once.
        again = http.get(f"/api/v1/summary?at={at}")
        assert again.status_code == 200, (name, again.get_json())
        assert again.get_json()["incidents"]["open"] == expected


@contextmanager
def gunicorn(settings, tmp_path) -> Iterator[str]:
    """`citybrain web`'s own gunicorn command (gthread, 4 threads), one process; its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = _web_command(settings.replace(port=port, web_workers=1))
    env = {**os.environ, "REDIS_URL": settings.redis_url, "CITYBRAIN_CACHE_TTL_S": "0.2",
           "CITYBRAIN_STALE_AFTER_S": "3600"}
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return requests.get(base + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        assert wait_for(up, timeout_s=90, every_s=0.3), (tmp_path / "gunicorn.log").read_text()
        yield base
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def test_lbk008_four_replays_do_not_starve_a_live_viewer(settings, client, geography,
                                                         tmp_path):
    """Four viewers look back at four moments while a fifth watches live, on one gunicorn
    process with its 4 request threads: every live answer comes within 2 s and shows a new
    event within 2 s of its XADD; each viewer then sees its own moment."""
    t = now_ms() - 5 * HOUR - 60_000
    entries = [(f"{t + i * 120}-0", traffic(f"S{i % 80}", 20 + i % 40, 60, ts=t + i * 120))
               for i in range(150_000)]  # 5 hours of readings: replays of 40k-140k entries
    entries += [(f"{t + (k * 60 + 30) * 60_000}-1",
                 incident(f"M{k}", ts=t + (k * 60 + 30) * 60_000)) for k in range(4)]
    pipe = client.pipeline(transaction=False)
    for entry_id, event in sorted(entries, key=lambda e: tuple(map(int, e[0].split("-")))):
        pipe.xadd(settings.stream, event, id=entry_id)
    pipe.execute()
    # The live worker starts after the history (the replays read it from the stream).
    client.xgroup_create(settings.stream, settings.group, id="$")
    moments = [t + (k * 60 + 45) * 60_000 for k in range(4)]  # M0..Mk open at moment k
    answers: dict[int, tuple[float, dict]] = {}

    def look_back(k: int, base: str) -> None:
        session = requests.Session()
        session.get(base + "/api/v1/summary", timeout=30)  # the page load: its viewer id
        until = time.monotonic() + 240
        while time.monotonic() < until:
            response = session.get(f"{base}/api/v1/summary?at={moments[k]}", timeout=60)
            if response.status_code == 200:
                answers[k] = (time.monotonic(), response.json())
                return
            assert response.status_code == 503
            time.sleep(float(response.headers["Retry-After"]))

    with background_worker(settings, client, geography), gunicorn(settings, tmp_path) as base:
        live = requests.Session()

        def open_now() -> int:
            response = live.get(base + "/api/v1/summary", timeout=2)  # raises after 2 s
            assert response.status_code == 200
            return response.json()["incidents"]["open"]

        before = open_now()
        viewers = [threading.Thread(target=look_back, args=(k, base)) for k in range(4)]
        for viewer in viewers:
            viewer.start()
        delays = []
        for n in range(1, 4):
            time.sleep(0.5)  # the replays are under way
            client.xadd(settings.stream, incident(f"LIVE{n}"))
            added = time.monotonic()
            assert wait_for(lambda n=n: open_now() == before + n, timeout_s=2.0, every_s=0.1)
            delays.append(time.monotonic() - added)
        live_done = time.monotonic()
        for viewer in viewers:
            viewer.join(300)
    assert sorted(answers) == [0, 1, 2, 3]
    for k, (_, summary_k) in answers.items():
        assert summary_k["incidents"]["open"] == k + 1, k  # its own moment
    assert max(done for done, _ in answers.values()) > live_done, "replays ran meanwhile"
    print(f"live event seen after {', '.join(f'{d:.2f}' for d in delays)} s")


def test_lbk009_scratch_keys_are_listed_and_expire_without_a_keyspace_scan(
        settings, client, timeline):
    from dashboard.state.replay import REGISTRY, REPLAY_TTL_S

    app = create_app(settings)
    http = app.server.test_client()
    scratch = app.server.extensions["citybrain"].replayer.scratch(viewer_of(http)).state_prefix
    client.config_resetstat()
    summary(http, at=timeline + 150 * 60_000)
    summary(http, at=timeline + 30 * 60_000)  # backward: wiped and rebuilt
    assert int(client.info("commandstats").get("cmdstat_scan", {}).get("calls", 0)) == 0
    written = set(client.scan_iter(scratch.replace("{", "\\{").replace("}", "\\}") + "*"))
    listed = client.smembers(scratch + REGISTRY)
    assert {scratch + k for k in ("inc", "open", "seg", "feed", "stats")} <= {
        k.decode() for k in listed}
    assert any(k.startswith(scratch.encode() + b"seen:") for k in listed)
    assert written - listed == {(scratch + k).encode() for k in (REGISTRY, "replay")}
    assert all(0 < client.ttl(k) <= REPLAY_TTL_S for k in written)
