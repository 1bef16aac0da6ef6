"""The closed loop (issue 12): verify before close, reject and reopen, follow-up (run: -k clp).

Through the real command stream and worker on a real Redis; every action also goes
through the REST route's checks (scope, status, who may verify) and the audit log.
"""

from __future__ import annotations

import orjson
import pytest

from dashboard.app import create_app
from dashboard.auth.users import UserStore
from dashboard.pipeline.worker import Worker
from tests.events import incident, now_ms

SECRET = "test-secret-" + "v" * 40
PASSWORD = "correct horse battery"
STREET = "310104-S01"


@pytest.fixture
def worker(settings, client, geography):
    return Worker(settings, client, geography, name="w")


def _point(geography, area_id):
    area = geography.areas[area_id]
    return area.lon, area.lat


def _build(settings, client, geography, worker, **changes):
    store = UserStore(client, settings.state_prefix, geography)
    street = geography.chain(geography.descendants_at(STREET, "compound")[0])
    store.add("jiedao", "street", PASSWORD, STREET)
    store.add("jiedao2", "street", PASSWORD, STREET)
    store.add("xuhui", "district", PASSWORD, "310104")
    store.add("boss", "city", PASSWORD)
    point = _point(geography, street[0])
    client.xadd(settings.stream, incident("H1", ts=now_ms(-3600), point=point,
                                          source="hotline", sla_minutes="120"))
    client.xadd(settings.stream, incident("G1", ts=now_ms(-3600), point=point, source="grid"))
    worker.work(burst=True)
    return create_app(settings.replace(secret_key=SECRET, **changes)).server


@pytest.fixture
def app(settings, client, geography, worker):
    return _build(settings, client, geography, worker)


def signed_in(app, name):
    http = app.test_client()
    assert http.post("/login", data={"name": name, "password": PASSWORD}).status_code == 302
    return http


def act(http, incident_id, **body):
    return http.post(f"/api/v1/incidents/{incident_id}/actions", json=body)


def _stored(client, settings, incident_id):
    return orjson.loads(client.hget(settings.state_prefix + "inc", incident_id))


def _due(client, settings, incident_id):
    return orjson.loads(client.hget(settings.state_prefix + "open", incident_id))["due"]


def test_clp001_close_resolves_another_account_verifies(app, worker, client, settings):
    jiedao, other = signed_in(app, "jiedao"), signed_in(app, "jiedao2")
    assert act(jiedao, "H1", action="verify").status_code == 409  # not resolved yet
    assert act(jiedao, "H1", action="close", result="已清运").status_code == 202
    worker.work(burst=True)
    detail = jiedao.get("/api/v1/incidents/H1").get_json()
    assert detail["status"] == "resolved" and detail["resolved_by"] == "jiedao"
    assert jiedao.get("/api/v1/summary").get_json()["incidents"]["open"] == 2
    refused = act(jiedao, "H1", action="verify")
    assert refused.status_code == 403  # the account that resolved it
    assert act(other, "H1", action="verify").status_code == 202
    worker.work(burst=True)
    detail = other.get("/api/v1/incidents/H1").get_json()
    assert detail["status"] == "closed" and detail["reopen_count"] == 0
    assert [h["action"] for h in detail["history"]] == ["close", "verify"]
    assert [h["user"] for h in detail["history"]] == ["jiedao", "jiedao2"]
    summary = other.get("/api/v1/summary").get_json()["incidents"]
    assert summary["open"] == 1 and summary["closed_today"] == 1
    commands = [f for _, f in client.xrange(settings.command_stream)]
    assert [(c[b"action"], c.get(b"status")) for c in commands] == [
        (b"close", b"resolved"), (b"verify", b"closed")]


def test_clp002_reject_reopens_with_a_reason_and_restarts_the_sla(app, worker, client,
                                                                  settings):
    jiedao, xuhui = signed_in(app, "jiedao"), signed_in(app, "xuhui")
    due_before = _due(client, settings, "H1")
    assert act(jiedao, "H1", action="close").status_code == 202
    worker.work(burst=True)
    assert act(xuhui, "H1", action="reject").status_code == 400  # a reason is required
    assert act(xuhui, "H1", action="reject", reason="<b>现场仍有垃圾</b>").status_code == 202
    worker.work(burst=True)
    detail = xuhui.get("/api/v1/incidents/H1").get_json()
    assert detail["status"] == "reopened" and detail["reopen_count"] == 1
    assert detail["history"][-1]["note"] == "<b>现场仍有垃圾</b>"  # text, as sent
    due_after = _due(client, settings, "H1")
    assert due_after - due_before >= 3600 * 1000  # 120 min from the rejection, not the report
    assert act(xuhui, "H1", action="reject", reason="again").status_code == 409
    # The second round: resolved again, rejected again: two reopenings.
    assert act(jiedao, "H1", action="close").status_code == 202
    worker.work(burst=True)
    assert act(signed_in(app, "jiedao2"), "H1", action="reject", reason="仍未处理").status_code \
        == 202
    worker.work(burst=True)
    assert _stored(client, settings, "H1")["nre"] == 2
    audit = signed_in(app, "boss").get("/api/v1/audit?action=reject").get_json()
    assert [(e["user"], e["detail"]) for e in audit] == [
        ("jiedao2", "仍未处理"), ("xuhui", "<b>现场仍有垃圾</b>")]
    assert all(e["target"] == "H1" for e in audit)


def test_clp003_verify_one_level_up(settings, client, geography, worker):
    app = _build(settings, client, geography, worker, verify="up")
    jiedao = signed_in(app, "jiedao")
    assert act(jiedao, "G1", action="close").status_code == 202
    worker.work(burst=True)
    assert act(signed_in(app, "jiedao2"), "G1", action="verify").status_code == 403  # a peer
    assert act(signed_in(app, "xuhui"), "G1", action="verify").status_code == 202  # one up
    worker.work(burst=True)
    assert _stored(client, settings, "G1")["st"] == "closed"


def test_clp004_verify_off_closes_at_once(settings, client, geography, worker):
    settings = settings.replace(verify="off")
    worker = Worker(settings, client, geography, name="w")
    app = _build(settings, client, geography, worker)
    assert act(signed_in(app, "jiedao"), "G1", action="close").status_code == 202
    worker.work(burst=True)
    assert _stored(client, settings, "G1")["st"] == "closed"


def test_clp005_follow_up_hotline_only_dissatisfied_reopens(app, worker, client, settings):
    jiedao, xuhui = signed_in(app, "jiedao"), signed_in(app, "xuhui")
    for iid in ("H1", "G1"):
        assert act(jiedao, iid, action="close").status_code == 202
    worker.work(burst=True)
    assert act(xuhui, "G1", action="follow_up", satisfaction="satisfied").status_code == 400
    assert act(xuhui, "H1", action="follow_up", satisfaction="meh").status_code == 400
    assert act(xuhui, "H1", action="follow_up", satisfaction="dissatisfied",
               note="居民说还没清").status_code == 202
    worker.work(burst=True)
    detail = xuhui.get("/api/v1/incidents/H1").get_json()
    assert detail["status"] == "reopened" and detail["reopen_count"] == 1
    assert detail["satisfaction"] == "dissatisfied"
    assert detail["history"][-1]["satisfaction"] == "dissatisfied"
    assert detail["history"][-1]["note"] == "居民说还没清"
    # Resolved, verified, then a satisfied answer: recorded, the status stays closed.
    assert act(jiedao, "H1", action="close").status_code == 202
    worker.work(burst=True)
    assert act(xuhui, "H1", action="verify").status_code == 202
    worker.work(burst=True)
    assert act(xuhui, "H1", action="follow_up",
               satisfaction="basically_satisfied").status_code == 202
    worker.work(burst=True)
    record = _stored(client, settings, "H1")
    assert record["st"] == "closed" and record["sat"] == "basically_satisfied"
    assert record["nre"] == 1


def test_clp006_follow_up_without_reopening(settings, client, geography, worker):
    settings = settings.replace(followup_reopens=False)
    worker = Worker(settings, client, geography, name="w")
    app = _build(settings, client, geography, worker)
    assert act(signed_in(app, "jiedao"), "H1", action="close").status_code == 202
    worker.work(burst=True)
    assert act(signed_in(app, "xuhui"), "H1", action="follow_up",
               satisfaction="dissatisfied").status_code == 202
    worker.work(burst=True)
    record = _stored(client, settings, "H1")
    assert record["st"] == "resolved" and record["sat"] == "dissatisfied"
    assert record.get("nre", 0) == 0


def test_clp007_bad_loop_commands_are_dead_lettered(settings, client, worker):
    client.xadd(settings.stream, incident("X1"))
    worker.work(burst=True)
    base = {"incident_id": "X1", "user": "u", "ts": str(now_ms())}
    client.xadd(settings.command_stream, {**base, "command_id": "c1", "action": "reject"})
    client.xadd(settings.command_stream, {**base, "command_id": "c2", "action": "follow_up",
                                          "satisfaction": "great"})
    client.xadd(settings.command_stream, {**base, "command_id": "c3", "action": "follow_up"})
    worker.work(burst=True)
    dead = client.xrange(settings.command_stream + ":dead")
    assert [f[b"dead_reason"] for _, f in dead] == [b"missing_field", b"bad_value",
                                                    b"missing_field"]
    assert b"reason" in dead[0][1][b"dead_detail"]
