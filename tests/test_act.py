"""Acting on incidents: the command stream, the worker applying it, scope and audit."""

from __future__ import annotations

import pytest

from dashboard.app import create_app
from dashboard.auth.users import UserStore
from dashboard.pipeline.worker import Worker
from tests.events import PUDONG_POINT, incident, now_ms

SECRET = "test-secret-" + "y" * 40
PASSWORD = "correct horse battery"


@pytest.fixture
def worker(settings, client, geography):
    return Worker(settings, client, geography, name="w")


@pytest.fixture
def app(settings, client, geography, worker):
    store = UserStore(client, settings.state_prefix, geography)
    store.add("xuhui", "district", PASSWORD, "310104")
    store.add("boss", "city", PASSWORD)
    store.add("wall1", "wall", None)
    client.xadd(settings.stream, incident("X1", ts=now_ms(-600)))
    client.xadd(settings.stream, incident("P1", point=PUDONG_POINT))
    worker.work(burst=True)
    return create_app(settings.replace(secret_key=SECRET)).server


def signed_in(app, name="xuhui"):
    http = app.test_client()
    response = http.post("/login", data={"name": name, "password": PASSWORD})
    assert response.status_code == 302
    return http


def test_act001_dispatch_note_close_reach_state_through_the_worker(app, settings, client,
                                                                   worker):
    http = signed_in(app)
    assert http.get("/api/v1/summary").get_json()["incidents"]["open"] == 1
    response = http.post("/api/v1/incidents/X1/actions",
                         json={"action": "dispatch", "department": "环卫"})
    assert response.status_code == 202
    assert http.post("/api/v1/incidents/X1/actions",
                     json={"action": "note", "note": "<b>现场</b> 已到"}).status_code == 202
    worker.work(burst=True)
    detail = http.get("/api/v1/incidents/X1").get_json()
    assert detail["status"] == "dispatched" and detail["department"] == "环卫"
    assert [h["action"] for h in detail["history"]] == ["dispatch", "note"]
    assert detail["history"][1]["note"] == "<b>现场</b> 已到"  # stored as text, as sent
    assert detail["history"][0]["user"] == "xuhui"
    assert http.post("/api/v1/incidents/X1/actions",
                     json={"action": "close", "result": "已清理"}).status_code == 202
    worker.work(burst=True)
    assert http.get("/api/v1/incidents/X1").get_json()["status"] == "resolved"  # not yet closed
    assert http.get("/api/v1/summary").get_json()["incidents"]["open"] == 1
    assert signed_in(app, "boss").post("/api/v1/incidents/X1/actions",
                                       json={"action": "verify"}).status_code == 202
    worker.work(burst=True)
    summary = http.get("/api/v1/summary").get_json()
    assert summary["incidents"]["open"] == 0 and summary["incidents"]["closed_today"] == 1
    commands = client.xrange(settings.command_stream)
    assert [c[b"action"] for _, c in commands] == [b"dispatch", b"note", b"close", b"verify"]
    assert commands[2][1][b"result"] == "已清理".encode()
    assert [c[b"user"] for _, c in commands] == [b"xuhui"] * 3 + [b"boss"]
    audit = signed_in(app, "boss").get("/api/v1/audit").get_json()
    assert {"dispatch", "note", "close"} <= {entry["action"] for entry in audit}
    assert all(e["user"] == "xuhui" for e in audit if e["action"] in ("dispatch", "close"))


def test_act002_only_in_scope_and_only_real_actions(app):
    http = signed_in(app)
    assert http.post("/api/v1/incidents/P1/actions",
                     json={"action": "close"}).status_code == 403  # Pudong
    assert http.get("/api/v1/incidents/P1").status_code == 403
    assert http.post("/api/v1/incidents/NOPE/actions",
                     json={"action": "close"}).status_code == 404
    assert http.post("/api/v1/incidents/X1/actions",
                     json={"action": "delete"}).status_code == 400
    assert http.post("/api/v1/incidents/X1/actions",
                     json={"action": "dispatch", "department": "黑客"}).status_code == 400
    assert http.post("/api/v1/incidents/X1/actions",
                     json={"action": "note", "note": "x" * 501}).status_code == 400
    wall = app.test_client()
    token = app.extensions["citybrain_access"].store.issue_token("wall1")
    assert wall.get(f"/api/v1/summary?token={token}").status_code == 200
    assert wall.post("/api/v1/incidents/X1/actions",
                     json={"action": "close"}).status_code == 403


def test_act003_bad_commands_are_dead_lettered(settings, client, worker):
    client.xadd(settings.stream, incident("X1"))
    worker.work(burst=True)
    base = {"command_id": "c1", "action": "verify", "incident_id": "X1", "user": "u",
            "ts": str(now_ms())}
    client.xadd(settings.command_stream, {**base, "incident_id": "GHOST", "command_id": "c2"})
    client.xadd(settings.command_stream, {**base, "action": "explode", "command_id": "c3"})
    client.xadd(settings.command_stream, {**base, "action": "dispatch", "command_id": "c4"})
    client.xadd(settings.command_stream, base)
    worker.work(burst=True)
    dead = client.xrange(settings.command_stream + ":dead")
    assert [f[b"dead_reason"] for _, f in dead] == [b"unknown_incident", b"bad_value",
                                                    b"missing_field"]
    assert client.hlen(settings.state_prefix + "open") == 0  # c1 closed it
    assert client.xpending(settings.command_stream, settings.group)["pending"] == 0


def test_act004_overdue_list_and_escalation(settings, client, worker, geography):
    t = now_ms()
    street_point = (geography.areas["310104-R0001"].lon, geography.areas["310104-R0001"].lat)
    client.xadd(settings.stream, incident("LATE", ts=t - 100 * 60_000, sla_minutes="60",
                                          point=street_point))  # 40 min late: not escalated
    client.xadd(settings.stream, incident("VERY", ts=t - 200 * 60_000, sla_minutes="60",
                                          point=street_point))  # 140 min late: escalated
    client.xadd(settings.stream, incident("PD", ts=t - 300 * 60_000, sla_minutes="60",
                                          point=PUDONG_POINT))  # Pudong has no streets
    worker.work(burst=True)
    http = create_app(settings).server.test_client()
    xuhui = http.get("/api/v1/overdue?area_id=310104").get_json()
    assert [i["incident_id"] for i in xuhui["overdue"]] == ["VERY", "LATE"]
    street = geography.chain("310104-R0001")[2]
    assert xuhui["overdue"][1]["responsible"] == street
    assert xuhui["overdue"][1]["escalated_to"] is None
    assert [i["incident_id"] for i in xuhui["escalated_here"]] == ["VERY"]
    city = http.get("/api/v1/overdue").get_json()
    assert [i["incident_id"] for i in city["escalated_here"]] == ["PD"]
    assert city["overdue"][0]["incident_id"] == "PD" and city["overdue"][0]["minutes_late"] > 239


def _hget_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_hget", {}).get("calls", 0))


def test_act005_panel_action_answers_at_once_and_the_panel_timer_shows_it(
        settings, client, worker):
    """No request thread waits for the worker: the next panel tick shows the result."""
    from tests import dashcb

    client.xadd(settings.stream, incident("X1", ts=now_ms(-600)))
    worker.work(burst=True)
    http = create_app(settings).server.test_client()  # open demo mode
    state = {"incident-sel.data": "X1", "url.search": "?area=310104"}
    opened = dashcb.outputs(dashcb.post(http, "incident-body.children", state,
                                        ["incident-sel.data"]))
    sig = opened["incident-sig.data"]
    assert "受理" not in str(opened["incident-body.children"])
    client.config_resetstat()
    answer = dashcb.post(http, "act-msg.children",
                         {**state, "act-acknowledge.n_clicks": 1}, ["act-acknowledge.n_clicks"])
    sent = dashcb.outputs(answer)
    assert sent["act-msg.className"] == "act-msg is-ok"
    # The command is written, the worker has not run: one read of the incident (the
    # route's own checks), no polling for the worker's result.
    assert client.xlen(settings.command_stream) == 1
    assert _hget_calls(client) <= 2
    assert "incident-body.children" not in sent
    # The panel's own timer: nothing new until the worker applies it, then the result.
    tick = {**state, "incident-sig.data": sig, "incident-tick.n_intervals": 1}
    assert dashcb.outputs(dashcb.post(http, "incident-body.children", tick,
                                      ["incident-tick.n_intervals"])) == {}
    worker.work(burst=True)
    shown = dashcb.outputs(dashcb.post(http, "incident-body.children", tick,
                                       ["incident-tick.n_intervals"]))
    assert "incident-body.children" in shown
    assert shown["incident-sig.data"] != sig
    assert "受理" in str(shown["incident-body.children"])  # the action in its history
