"""The HTTP intake: producer tokens, the worker's own validation, idempotency, limits (-k itk)."""

from __future__ import annotations

import io
import subprocess
import sys

import orjson
import pytest

from dashboard.app import create_app
from dashboard.intake import MAX_EVENTS
from dashboard.pipeline.worker import Worker
from dashboard.producers import ProducerStore
from tests.events import PUDONG_POINT, SEA_POINT, XUHUI_POINT, incident, now_ms, traffic
from tests.test_cli import ROOT, clean_env

ROUTE = "/api/v1/events"


@pytest.fixture
def producers(settings, client, geography) -> ProducerStore:
    return ProducerStore(client, settings.state_prefix, geography)


@pytest.fixture
def app(settings, producers):
    return create_app(settings.replace(intake_max_bytes=20_000, intake_rate=50)).server


def post(app, token: str | None, body, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return app.test_client().post(ROUTE, data=data, headers=headers,
                                  content_type="application/json", **kwargs)


def audit(app) -> list[dict]:
    return app.extensions["citybrain_access"].audit.latest()


def dead(settings, client) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()}
            for _, fields in client.xrange(settings.dead_stream_key)]


def test_itk001_a_good_batch_is_accepted_and_applied(app, producers, settings, client,
                                                     geography):
    token = producers.add("hotline")
    batch = [incident("H1", title="井盖缺失"), incident("H2"), traffic("S1", 30.0)]
    response = post(app, token, batch)
    assert response.status_code == 200
    answer = response.get_json()
    assert (answer["accepted"], answer["rejected"], answer["duplicates"]) == (3, 0, 0)
    ids = [r["id"] for r in answer["results"]]
    assert [r["event_id"] for r in answer["results"]] == [e["event_id"] for e in batch]
    stream = client.xrange(settings.stream)
    assert [entry_id.decode() for entry_id, _ in stream] == ids
    assert stream[0][1][b"title"] == "井盖缺失".encode()
    Worker(settings, client, geography, name="w").work(burst=True)
    assert client.hget(settings.state_prefix + "stats", "applied") == b"3"
    assert any(e["action"] == "intake" and e["user"] == "producer:hotline"
               and e["detail"] == "accepted 3, duplicate 0, rejected 0" for e in audit(app))


def test_itk002_a_mixed_batch_gets_the_workers_answers(app, producers, settings, client,
                                                       geography):
    token = producers.add("vendor")
    numbers = {**incident("N1"), "lon": XUHUI_POINT[0], "lat": XUHUI_POINT[1], "severity": 3}
    bad = [incident("B1", category=""), incident("B2", point=SEA_POINT),
           {**incident("B3"), "kind": "weather"}, {**incident("B4"), "ts": "yesterday"}]
    batch = [incident("G1"), *bad, numbers, "not an object", {**incident("B5"), "x": [1]}]
    results = post(app, token, batch).get_json()["results"]
    assert [r["status"] for r in results] == ["accepted", *["rejected"] * 4, "accepted",
                                              "rejected", "rejected"]
    reasons = [r.get("reason") for r in results]
    assert reasons[1:5] == ["missing_field", "outside_city", "unknown_kind", "bad_value"]
    assert reasons[6:] == ["bad_value", "bad_value"]
    letters = dead(settings, client)
    assert [d["dead_reason"] for d in letters] == [r for r in reasons if r]
    assert letters[0]["incident_id"] == "B1" and letters[0]["dead_source"] == "intake:vendor"
    assert letters[4]["raw"] == '"not an object"'
    # The worker, given the same entries on the stream, decides the same.
    client.delete(settings.dead_stream_key, settings.state_prefix + "stats")
    for event in bad:
        client.xadd(settings.stream, event)
    Worker(settings, client, geography, name="w").work(burst=True)
    assert [d["dead_reason"] for d in dead(settings, client)] == reasons[1:5]
    assert client.hget(settings.state_prefix + "stats", "applied") == b"2"  # G1 and N1


def test_itk003_bad_json_is_refused_whole(app, producers, settings, client):
    token = producers.add("hotline")
    response = post(app, token, b'[{"event_id": "x",')
    assert response.status_code == 400 and response.get_json()["error"] == "bad_json"
    response = post(app, token, {"event_id": "x"})
    assert response.status_code == 400 and "array" in response.get_json()["detail"]
    assert client.xlen(settings.stream) == 0 and dead(settings, client) == []


def test_itk004_wrong_missing_or_revoked_tokens(app, producers, settings, client):
    token = producers.add("hotline")
    batch = [incident("T1")]
    assert post(app, token, batch).status_code == 200
    for wrong in (None, "cbp_" + "x" * 43, token[:-1], "nonsense"):
        response = post(app, wrong, batch)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    producers.revoke("hotline")
    assert post(app, token, batch).status_code == 401
    assert client.xlen(settings.stream) == 1
    assert sum(e["action"] == "intake_refused" for e in audit(app)) == 5


def test_itk005_a_token_limited_to_kinds_and_an_area(app, producers, settings, client):
    token = producers.add("xuhui-ai", kinds=("incident",), area="310104")
    batch = [incident("A1"), incident("A2", point=PUDONG_POINT), traffic("S1", 20.0),
             incident("A1", status="closed", point=None), incident("A3", area_id="310104")]
    results = post(app, token, batch).get_json()["results"]
    assert [r.get("reason") for r in results] == [None, "outside_area", "kind_not_allowed",
                                                  "outside_area", None]
    assert client.xlen(settings.stream) == 2
    assert [d["dead_reason"] for d in dead(settings, client)] == [
        "outside_area", "kind_not_allowed", "outside_area"]


def test_itk006_a_replayed_batch_counts_once(app, producers, settings, client, geography):
    token = producers.add("hotline")
    batch = [incident("R1"), incident("R2"), incident("R2", status="dispatched",
                                                      ts=now_ms(60), department="城管")]
    first = post(app, token, batch).get_json()
    again = post(app, token, [*batch, batch[0]]).get_json()
    assert again["duplicates"] == 4 and again["accepted"] == 4
    ids = [r["id"] for r in first["results"]]
    assert [r["id"] for r in again["results"]] == [*ids, ids[0]]
    assert all(r["duplicate"] for r in again["results"])
    assert client.xlen(settings.stream) == 3
    Worker(settings, client, geography, name="w").work(burst=True)
    summary = app.test_client().get("/api/v1/summary?area_id=310104").get_json()
    assert summary["incidents"]["open"] == 2 and summary["incidents"]["today"] == 2


def test_itk007_oversize_bodies_are_refused_whole(app, producers, settings, client):
    token = producers.add("hotline")
    big = [incident(f"O{i}", title="长" * 60) for i in range(100)]
    assert len(orjson.dumps(big)) > 20_000
    response = post(app, token, big)
    assert response.status_code == 413 and response.get_json()["max_bytes"] == 20_000
    chunked = app.test_client().post(ROUTE, input_stream=io.BytesIO(orjson.dumps(big)),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Transfer-Encoding": "chunked"},
                                     environ_overrides={"wsgi.input_terminated": True})
    assert chunked.status_code == 413  # no Content-Length (a server de-chunked): counted
    many = b"[" + b",".join([b"{}"] * (MAX_EVENTS + 1)) + b"]"
    response = post(app, token, many)
    assert response.status_code == 413 and response.get_json()["error"] == "too_many_events"
    assert client.xlen(settings.stream) == 0 and dead(settings, client) == []


def test_itk008_rate_limited_per_token(app, producers, settings, client):
    token, other = producers.add("hotline"), producers.add("vendor")
    assert post(app, token, [incident(f"L{i}") for i in range(30)]).status_code == 200
    response = post(app, token, [incident(f"M{i}") for i in range(30)])  # 60 > 50 a minute
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert post(app, token, [incident(f"K{i}") for i in range(20)]).status_code == 200
    assert post(app, token, [incident("K99")]).status_code == 429
    assert post(app, other, [incident("V1")]).status_code == 200  # its own budget
    assert client.xlen(settings.stream) == 51


def test_itk009_producers_command(redis_url, client):
    env = clean_env(REDIS_URL=redis_url)

    def producers(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dashboard.cli", "producers", *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    added = producers("add", "hotline", "--kinds", "incident", "--area", "310104")
    assert added.returncode == 0, added.stderr
    token = added.stdout.split()[-1]
    stored = b" ".join(b"%s %s" % pair for key in client.keys("*producer*")
                       for pair in client.hgetall(key).items())
    assert token.startswith("cbp_") and token.encode() not in stored  # only its digest
    assert producers("add", "hotline").returncode == 2  # exists
    assert producers("add", "x", "--kinds", "weather").returncode == 2
    assert producers("list").stdout.splitlines() == ["hotline\tincident\t310104"]
    assert producers("revoke", "hotline").returncode == 0
    assert producers("list").stdout == ""
    assert producers("revoke", "hotline").returncode == 2
