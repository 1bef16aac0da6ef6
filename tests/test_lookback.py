"""Look back: a past moment rebuilt from the kept stream equals the events up to it."""

from __future__ import annotations

import pytest

from dashboard.app import create_app
from dashboard.pipeline.worker import Worker
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
