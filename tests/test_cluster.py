"""The state layout on a real Redis Cluster: three redis-server nodes on loopback ports."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
import redis

from dashboard.pipeline.worker import Worker
from dashboard.redis_conn import connect, redis_server_binary
from dashboard.settings import Settings
from dashboard.state.store import health, read_raw
from dashboard.state.view import RiskModel, build_view
from tests.events import MIDDAY_TZ, PUDONG_POINT, incident, now_ms, risk, traffic


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int) -> list[int]:
    """Ports that are free, and so are their cluster-bus ports (port + 10000)."""
    rnd = random.Random()
    ports: list[int] = []
    while len(ports) < n:
        port = rnd.randrange(20000, 40000)
        if port not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory):
    """A three-master Redis Cluster made of real redis-server processes."""
    binary = redis_server_binary()
    cli = str(Path(binary).with_name("redis-cli"))
    base = tmp_path_factory.mktemp("cluster")
    ports = free_ports(3)
    procs = []
    for port in ports:
        folder = base / str(port)
        folder.mkdir()
        procs.append(subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf", "--dir", str(folder), "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        for port in ports:
            deadline = time.monotonic() + 10
            while True:
                try:
                    redis.Redis(port=port).ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        deadline = time.monotonic() + 20
        while b"cluster_state:ok" not in redis.Redis(port=ports[0]).execute_command(
                "CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "cluster did not come up"
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


@pytest.mark.parametrize("stream", ["citybrain:events", "citybrain:{shanghai}:events"],
                         ids=["stream-in-other-slot", "stream-in-state-slot"])
def test_clu001_end_to_end_on_a_cluster(cluster_url, geography, stream):
    settings = Settings.load(env={"REDIS_URL": cluster_url, "CITYBRAIN_REDIS_CLUSTER": "1",
                                  "CITYBRAIN_STREAM": stream, "CITYBRAIN_TZ": MIDDAY_TZ,
                                  "CITYBRAIN_COMMAND_STREAM": stream.replace("events",
                                                                             "commands")})
    client = connect(cluster_url, cluster=True)
    for node_client in client.get_nodes():
        client.flushdb(target_nodes=node_client)
    t = now_ms()
    events = [incident("A", ts=t - 120 * 60_000, category="manhole", sla_minutes="60"),
              incident("B", ts=t - 30 * 60_000, point=PUDONG_POINT),
              incident("B", status="closed", ts=t - 10 * 60_000, point=None),
              traffic("S1", 30, 60), risk("310104", "fire_hazards", 5),
              {"event_id": "bad", "kind": "comet", "ts": str(t)}]
    for event in events:
        client.xadd(settings.stream, event)
    worker = Worker(settings, client, geography, name="c1")
    assert worker.atomic == (stream != "citybrain:events")
    assert worker.work(burst=True) == len(events)
    now = datetime.now(settings.zone)
    view = build_view(read_raw(client, settings, now), geography,
                      RiskModel(settings.risk_model, settings.risk_thresholds), now, 60)
    city = view.summary("310000")
    assert city["incidents"]["open"] == 1 and city["incidents"]["overdue"] == 1
    assert city["incidents"]["closed_today"] == 1 and city["incidents"]["today"] == 2
    assert city["traffic"]["index"] == 2.0
    assert view.summary("310104")["risk"]["score"] == 25.0
    report = health(client, settings)
    assert report["applied"] == 5 and report["dead_lettered"] == {"unknown_kind": 1}
    assert report["pending"] == 0
    # The trim script (one key) runs on a cluster too: everything applied may go.
    assert worker.consumer.trim_before(now_ms() + 60_000) == len(events)
    assert worker.commands.trim_before(now_ms() + 60_000) == 0


def test_clu002_sessions_and_sign_in_throttle_on_a_cluster(cluster_url, geography):
    from dashboard.auth.throttle import FAILURES_ALLOWED, SignInThrottle
    from dashboard.auth.users import UserStore

    settings = Settings.load(env={"REDIS_URL": cluster_url, "CITYBRAIN_REDIS_CLUSTER": "1"})
    client = connect(cluster_url, cluster=True)
    for node_client in client.get_nodes():
        client.flushdb(target_nodes=node_client)
    store = UserStore(client, settings.state_prefix, geography)
    store.add("xuhui", "district", "a long enough password", "310104")
    store.add("wall1", "wall", None)
    _, sid = store.sign_in("xuhui", "a long enough password", 1)
    assert store.sessions.user(sid).scope == "310104"
    _, wall_sid = store.token_sign_in(store.issue_token("wall1"), 1)
    assert store.sessions.user(wall_sid).role == "wall"
    store.change("xuhui", "street", "310104-S01")
    store.revoke_token("wall1")
    assert store.sessions.user(sid) is None and store.sessions.user(wall_sid) is None
    throttle = SignInThrottle(client, settings.state_prefix)
    taken = [throttle.take("xuhui", "203.0.113.7") for _ in range(FAILURES_ALLOWED + 2)]
    assert taken == [True] * FAILURES_ALLOWED + [False, False]
