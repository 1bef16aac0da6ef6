"""Metrics and logs of the real processes: a `citybrain worker` and gunicorn (two workers).

One module-wide run: accounts exist, a wall token, sign-ins right and wrong, a scope
refusal, a look-back, events applied, duplicated and dead-lettered (ids ops001…);
both `/metrics` are scraped before and after and parsed with prometheus_client's
parser; every log line (JSON) is then searched for secrets.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from dashboard.auth.users import UserStore
from dashboard.geography import load_geography
from dashboard.settings import Settings
from tests.events import MIDDAY_TZ, SEA_POINT, incident

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-42"
SECRET = "s3cret-key-for-signing-sessions-0123456789"
METRICS_TOKEN = "metrics-token-abcdef-0123456789"
PREFIX = "obs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if (value := predicate()):
                return value
        except (requests.ConnectionError, requests.Timeout, KeyError):  # slow under load: retry
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def value(text: str, sample: str, **labels: str) -> float | None:
    """The sum of the samples named `sample` whose labels include `labels`; None if none."""
    found = [s.value for family in text_string_to_metric_families(text)
             for s in family.samples
             if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(found) if found else None


@dataclass
class Stack:
    env: dict[str, str]
    web_url: str
    worker_url: str
    logs: dict[str, Path]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)  # what the run produced, by name

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def scrape_worker(self) -> str:
        return requests.get(self.worker_url, timeout=10).text

    def scrape_web(self) -> str:
        response = requests.get(f"{self.web_url}/metrics", timeout=10,
                                headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert response.status_code == 200, response.text
        return response.text


def start(stack: Stack, name: str, command: list[str]) -> None:
    log = stack.logs[name].open("wb")
    stack.procs[name] = subprocess.Popen(command, env=stack.env, cwd=ROOT,
                                         stdout=log, stderr=subprocess.STDOUT)


def exercise(stack: Stack, client: redis.Redis, settings: Settings, wall_token: str) -> None:
    """Everything the tests look at afterwards, done once through the real processes."""
    web = stack.web_url
    stack.seen["worker_before"] = stack.scrape_worker()
    stack.seen["web_before"] = stack.scrape_web()
    # events: two applied, one duplicate, one dead-lettered (outside the city)
    for event in (incident("OPS1", event_id="ops001"), incident("OPS2", event_id="ops002"),
                  incident("OPS1", event_id="ops001"),
                  incident("OPS3", event_id="ops003", point=SEA_POINT)):
        client.xadd(settings.stream, event)
    wait_until(lambda: (value(stack.scrape_worker(), "citybrain_events_dead_total") or 0) >= 1,
               60, "the worker to count the dead letter")
    # sign-ins: a wrong password twice, a right one; a wrong wall token, a right one
    anonymous = requests.Session()
    for attempt in range(2):
        wrong = anonymous.post(f"{web}/login", data={"name": "xuhui",
                                                     "password": f"nope-{attempt}"},
                               allow_redirects=False)
        assert wrong.status_code == 401
    xuhui = requests.Session()
    signed = xuhui.post(f"{web}/login", data={"name": "xuhui", "password": PASSWORD},
                        allow_redirects=False, headers={"X-Request-Id": "req-ops-001"})
    assert signed.status_code == 302
    stack.seen["request_id_echo"] = signed.headers.get("X-Request-Id", "")
    stack.seen["session_cookie"] = xuhui.cookies.get("citybrain_session") or ""
    assert stack.seen["session_cookie"]
    bogus = requests.get(f"{web}/api/v1/me", headers={"X-Request-Id": "<script>x</script>"})
    stack.seen["bogus_id_echo"] = bogus.headers.get("X-Request-Id", "")
    assert requests.get(f"{web}/?token=not-a-token", allow_redirects=False).status_code in (
        302, 401)
    wall = requests.Session()
    assert wall.get(f"{web}/api/v1/summary?token={wall_token}").status_code == 200
    # a scope refusal, then reads in scope and a look-back
    assert xuhui.get(f"{web}/api/v1/summary?area_id=310115").status_code == 403
    assert xuhui.get(f"{web}/api/v1/summary").status_code == 200
    at = int(time.time() * 1000)
    looked = wait_until(lambda: xuhui.get(f"{web}/api/v1/summary?at={at}").status_code == 200,
                        60, "the look-back to be ready")
    assert looked
    stack.seen["worker_after"] = stack.scrape_worker()

    def two_open() -> str | None:
        text = stack.scrape_web()
        return text if value(text, "citybrain_incidents_open", district="310104") == 2 else None

    stack.seen["web_after"] = wait_until(two_open, 30, "the web to see two open incidents")


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("observe")
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{PREFIX}*"):
        client.delete(key)
    web_port, worker_port = free_port(), free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "CITYBRAIN_STREAM": f"{PREFIX}:events",
           "CITYBRAIN_COMMAND_STREAM": f"{PREFIX}:commands", "CITYBRAIN_KEY_PREFIX": PREFIX,
           "CITYBRAIN_BLOCK_MS": "100", "CITYBRAIN_TZ": MIDDAY_TZ,
           "CITYBRAIN_AUDIT_DIR": str(tmp / "audit"), "CITYBRAIN_CACHE_TTL_S": "0.001",
           "CITYBRAIN_LOG_FORMAT": "json", "CITYBRAIN_SECRET_KEY": SECRET,
           "CITYBRAIN_METRICS_TOKEN": METRICS_TOKEN, "CITYBRAIN_METRICS_DIR": str(tmp / "prom"),
           "CITYBRAIN_WORKER_METRICS": f"127.0.0.1:{worker_port}",
           "CITYBRAIN_HOST": "127.0.0.1", "CITYBRAIN_PORT": str(web_port),
           "CITYBRAIN_WEB_WORKERS": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    settings = Settings.load(env=env)
    store = UserStore(client, settings.state_prefix, load_geography(None, "shanghai"))
    store.add("xuhui", "district", PASSWORD, "310104")
    store.add("wall1", "wall", None)
    wall_token = store.issue_token("wall1")
    stack = Stack(env, f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{worker_port}/metrics",
                  {"worker": tmp / "worker.log", "web": tmp / "web.log"})
    stack.seen["wall_token"] = wall_token
    me = [sys.executable, "-m", "dashboard.cli"]
    start(stack, "worker", [*me, "worker"])
    start(stack, "web", [*me, "web"])
    try:
        wait_until(lambda: requests.get(f"{stack.web_url}/healthz", timeout=5).ok, 120,
                   "the web to answer")
        wait_until(lambda: stack.scrape_worker(), 60, "the worker's metrics")
        exercise(stack, client, settings, wall_token)
        yield stack
    finally:
        stack.stop()
        client.close()


def test_obs001_worker_metrics_move_when_events_are_applied(stack):
    before, after = stack.seen["worker_before"], stack.seen["worker_after"]
    assert value(before, "citybrain_events_applied_total", kind="incident") is None
    assert value(after, "citybrain_events_applied_total", kind="incident") == 2
    assert value(after, "citybrain_events_duplicate_total", kind="incident") == 1
    assert value(after, "citybrain_events_dead_total", reason="outside_city",
                 kind="incident") == 1
    assert value(after, "citybrain_apply_batch_seconds_count") >= 1
    assert value(after, "citybrain_consumer_pending") == 0
    assert value(after, "citybrain_consumer_lag") == 0
    assert 0 <= value(after, "citybrain_seconds_since_last_applied") < 120


def test_obs002_web_metrics_count_over_every_gunicorn_worker(stack):
    before, after = stack.seen["web_before"], stack.seen["web_after"]
    assert value(after, "citybrain_sign_in_failures_total", method="password") == 2
    assert value(after, "citybrain_sign_in_failures_total", method="token") == 1
    assert value(after, "citybrain_scope_refusals_total") == 1
    assert value(before, "citybrain_incidents_open", district="310104") == 0
    assert value(after, "citybrain_incidents_open", district="310104") == 2
    assert value(after, "citybrain_incidents_overdue", district="310104") == 0
    assert value(after, "citybrain_replay_sessions") == 1
    # each gunicorn worker keeps its counters in the shared folder (multi-process mode)
    assert len(list(Path(stack.env["CITYBRAIN_METRICS_DIR"]).glob("counter_*.db"))) == 2
    # latency by route template and status, over both workers' requests
    assert value(after, "citybrain_http_request_duration_seconds_count",
                 route="/api/v1/summary", status="403") == 1
    assert value(after, "citybrain_http_request_duration_seconds_count",
                 route="/login", method="POST", status="401") == 2
    routes = {s.labels["route"] for f in text_string_to_metric_families(after)
              for s in f.samples if "route" in s.labels}
    assert not any("?" in r or "310115" in r for r in routes)


def test_obs003_metrics_are_hidden_without_the_token_once_accounts_exist(stack):
    assert requests.get(f"{stack.web_url}/metrics").status_code == 404
    wrong = {"Authorization": "Bearer not-the-token"}
    assert requests.get(f"{stack.web_url}/metrics", headers=wrong).status_code == 404
    assert "citybrain_scope_refusals_total" in stack.scrape_web()


def test_obs004_request_id_is_echoed_when_sane_and_replaced_when_not(stack):
    assert stack.seen["request_id_echo"] == "req-ops-001"
    assert stack.seen["bogus_id_echo"] and "<" not in stack.seen["bogus_id_echo"]


def test_obs005_json_logs_carry_context_and_no_secret(stack):
    stack.stop()  # the last test: flush and close every log
    secrets = {"password": PASSWORD, "secret key": SECRET, "metrics token": METRICS_TOKEN,
               "wall token": stack.seen["wall_token"],
               "session cookie": stack.seen["session_cookie"]}
    records = []
    for name, path in stack.logs.items():
        text = path.read_text()
        for line in text.splitlines():
            if line.strip():
                records.append((name, json.loads(line)))  # every line is one JSON object
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} is in the {name} log"
    assert all({"time", "level", "process", "logger", "message"} <= r.keys()
               for _, r in records)
    web = [r for name, r in records if name == "web"]
    signed = [r for r in web if r.get("request_id") == "req-ops-001"]
    assert signed and signed[-1]["route"] == "/login" and signed[-1]["status"] == 302
    assert any(r.get("user") == "xuhui" and r.get("status") == 403 for r in web)
    assert all("duration_ms" in r for r in web if r["logger"] == "citybrain.access")
    dead = [r for name, r in records if name == "worker" and "dead_reason" in r]
    assert dead and dead[0]["dead_reason"] == "outside_city"
    assert dead[0]["event_id"] == "ops003"
    assert {r["process"] for r in web} >= {stack.procs["web"].pid}
