"""Faults: killed workers, several workers, Redis going away, hostile producers."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dashboard.pipeline.consumer import StreamConsumer
from dashboard.pipeline.worker import Worker
from dashboard.redis_conn import EmbeddedRedis, connect
from dashboard.settings import Settings
from dashboard.state.store import read_raw
from dashboard.state.view import RiskModel, build_view
from tests.events import incident, mixed_events

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# 多源合并 and 未诉先办 on in the SIGKILL test: merged cases and hotspots too are
# exactly-once through crashes (a crash re-delivers entries later than their place in
# the stream: the same reports in another order).
MERGING = {"CITYBRAIN_MERGE_METRES": "300", "CITYBRAIN_MERGE_MINUTES": "30",
           "CITYBRAIN_HOTSPOT_REPORTS": "4", "CITYBRAIN_HOTSPOT_METRES": "300"}


def settings_for(url: str, name: str, **env: str) -> Settings:
    return Settings.load(env={
        "REDIS_URL": url, "CITYBRAIN_STREAM": f"{name}:events", "CITYBRAIN_KEY_PREFIX": name,
        "CITYBRAIN_CLAIM_IDLE_MS": "500", "CITYBRAIN_BLOCK_MS": "100", **env})


def push(client, settings, events):
    pipe = client.pipeline(transaction=False)
    for i, event in enumerate(events):
        pipe.xadd(settings.stream, event)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def handled(client, settings) -> int:
    stats = client.hgetall(settings.state_prefix + "stats")
    return sum(int(v) for k, v in stats.items()
               if k in (b"applied", b"duplicates") or k.startswith(b"dead:"))


def numbers(client, settings, geography, now) -> dict:
    """Every area's summary, plus the counters, at a fixed moment."""
    view = build_view(read_raw(client, settings, now), geography,
                      RiskModel(settings.risk_model, settings.risk_thresholds), now, 1e9)
    areas = {}
    for area_id in geography.areas:
        summary = view.summary(area_id)
        summary.pop("as_of")
        areas[area_id] = summary
    stats = client.hgetall(settings.state_prefix + "stats")
    counters = {k: v for k, v in stats.items() if k not in (b"last_applied_ms",)}
    # the rankings' per-day counters (closed loop), zeros left by moved contributions aside
    rankings = {key.rsplit(b":", 1)[-1]: {f: n for f, n in client.hgetall(key).items()
                                          if n != b"0"}
                for key in client.scan_iter(match=settings.state_prefix + "rk:*")}
    assert rankings, "no rankings counters were kept"
    return {"areas": areas, "stats": counters, "dead": client.xlen(settings.dead_stream_key),
            "rankings": rankings, "cases": cases(client, settings)}


def cases(client, settings) -> dict:
    """Every incident's case and each case's reports (多源合并), every proactive case's
    linked reports and hot report (未诉先办); empty when both are off."""
    out = {}
    for iid, raw in client.hscan_iter(settings.state_prefix + "inc"):
        record = orjson.loads(raw)
        if record.get("case") or record.get("rl") or record.get("hot"):
            out[iid] = (record.get("case"), [r["i"] for r in record.get("rl", [])],
                        record.get("hot"))
    return out


def worker_process(settings: Settings, name: str, log=subprocess.DEVNULL,
                   **extra: str) -> subprocess.Popen:
    """`citybrain worker` in its own process; its output goes to `log` (a file) if given.

    `extra`: more settings for it (environment variables).
    """
    env = {**os.environ, "REDIS_URL": settings.redis_url, "CITYBRAIN_STREAM": settings.stream,
           "CITYBRAIN_KEY_PREFIX": settings.key_prefix,
           "CITYBRAIN_CLAIM_IDLE_MS": str(settings.claim_idle_ms),
           "CITYBRAIN_BLOCK_MS": str(settings.block_ms),
           "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
           **extra}
    return subprocess.Popen([sys.executable, "-m", "dashboard.cli", "worker"], env=env,
                            cwd=ROOT, stdout=log, stderr=log)


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def clean_run(client, redis_url, geography, events, **env):
    clean = settings_for(redis_url, "clean", **env)
    push(client, clean, events)
    Worker(clean, client, geography, name="clean").work(burst=True)
    return clean


def test_flt001_sigkill_three_times_changes_no_number(client, redis_url, geography):
    events = mixed_events(100_000, seed=7)
    now = datetime.now(Settings.load(env={}).zone)
    clean = clean_run(client, redis_url, geography, events, **MERGING)
    crashed = settings_for(redis_url, "crashed", **MERGING)
    push(client, crashed, events)
    rnd = random.Random(3)
    for attempt in range(3):
        proc = worker_process(crashed, f"w{attempt}", **MERGING)
        wait_until(lambda: handled(client, crashed) > 0, 30, "the worker to start")
        time.sleep(rnd.uniform(0.5, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_when_killed = handled(client, crashed)
    assert 0 < done_when_killed < len(events), "the kills should land mid-stream"
    proc = worker_process(crashed, "final", **MERGING)
    try:
        wait_until(lambda: handled(client, crashed) >= len(events), 120, "the stream to drain")
    finally:
        proc.terminate()
        proc.wait(10)
    assert handled(client, crashed) == len(events)  # nothing lost, nothing twice
    expected = numbers(client, clean, geography, now)
    merged = sum(case is not None and len(reports) > 1
                 for case, reports, _ in expected["cases"].values())
    proactive = sum(iid.startswith(b"proactive:") for iid in expected["cases"])
    assert merged > 100, f"the mix should merge reports ({merged} cases of several)"
    assert proactive > 10, f"the mix should open proactive cases ({proactive})"
    print(f"compared {merged} merged cases and {proactive} proactive cases")
    assert numbers(client, crashed, geography, now) == expected
    assert client.xpending(crashed.stream, crashed.group)["pending"] == 0


def test_flt002_two_workers_make_the_same_state_as_one(client, redis_url, geography):
    events = mixed_events(20_000, seed=11)
    now = datetime.now(Settings.load(env={}).zone)
    clean = clean_run(client, redis_url, geography, events)
    shared = settings_for(redis_url, "shared", CITYBRAIN_CLAIM_IDLE_MS="5000")
    push(client, shared, events)
    procs = [worker_process(shared, f"w{i}") for i in range(2)]
    try:
        wait_until(lambda: handled(client, shared) >= len(events), 120, "the stream to drain")
        consumers = client.xinfo_consumers(shared.stream, shared.group)
        assert len(consumers) == 2
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    assert numbers(client, shared, geography, now) == numbers(client, clean, geography, now)


def stays_alive(proc: subprocess.Popen, seconds: float, log_path) -> None:
    """Fail at once if `proc` exits within `seconds` (its log in the message)."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise AssertionError(f"the worker exited with {proc.returncode} after "
                                 f"{time.monotonic() - start:.1f}s:\n{tail}")
        time.sleep(0.2)


def test_flt003_worker_survives_redis_restart(tmp_path, geography):
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    log_path = tmp_path / "worker.log"
    try:
        settings = settings_for(url, "restart")
        client = connect(url)
        with open(log_path, "w") as log:
            proc = worker_process(settings, "w", log)
        client.xadd(settings.stream, incident("before"))
        wait_until(lambda: handled(client, settings) == 1, 30, "the first event")
        server.stop()
        stays_alive(proc, 30, log_path)  # the outage the issue names: 30 s
        assert "Redis unreachable" in log_path.read_text()  # noticed, logged, waited out
        server.start()
        client = connect(url)
        client.xadd(settings.stream, incident("after"))
        wait_until(lambda: handled(client, settings) == 2, 30, "the event sent after restart")
        assert client.hlen(settings.state_prefix + "open") == 2  # kept across the restart (AOF)
        proc.terminate()
        assert proc.wait(10) == 0  # SIGTERM finishes the batch and exits cleanly
    finally:
        server.stop()


def test_flt009_worker_started_while_redis_is_down_waits_for_it(tmp_path, geography):
    server = EmbeddedRedis(tmp_path / "redis")
    log_path = tmp_path / "worker.log"
    settings = settings_for(server.url, "late")
    with open(log_path, "w") as log:
        proc = worker_process(settings, "w", log)
    try:
        wait_until(lambda: "Redis unreachable" in log_path.read_text() or proc.poll() is not None,
                   60, "the worker to find Redis away")
        stays_alive(proc, 1, log_path)
        server.start()
        client = connect(server.url)
        client.xadd(settings.stream, incident("late"))
        wait_until(lambda: handled(client, settings) == 1, 30, "the event, once Redis is up")
        proc.terminate()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()


_field_names = st.sampled_from(["event_id", "kind", "ts", "lon", "lat", "coord", "area_id",
                                "incident_id", "status", "category", "severity", "title",
                                "segment_id", "speed_kmh", "free_flow_kmh", "indicator",
                                "value", "sla_minutes", "v", "source"])
_values = st.one_of(
    st.sampled_from(["incident", "traffic", "risk", "reported", "closed", "NaN", "inf", "-0",
                     "1e308", "121.43", "31.19", "2026-11-21T08:00:00+08:00", "gcj02", "bd09",
                     "310104", "310104-R0001", "garbage", "x" * 5000, "", "0", "9" * 30]),
    st.binary(max_size=40), st.text(max_size=40),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
_entries = st.dictionaries(st.one_of(_field_names, st.binary(min_size=1, max_size=10)),
                           _values, min_size=1, max_size=12)


@hsettings(max_examples=60, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(_entries, min_size=1, max_size=30))
def test_flt004_fuzz_every_entry_is_applied_or_dead_lettered(batch, client, settings, geography):
    client.flushdb()
    for fields in batch:
        client.xadd(settings.stream, fields)
    worker = Worker(settings, client, geography, name="fuzz")
    assert worker.work(burst=True) == len(batch)
    assert handled(client, settings) == len(batch)
    dead = client.xrange(settings.dead_stream_key)
    assert all(fields.get(b"dead_reason") for _, fields in dead)
    assert client.xpending(settings.stream, settings.group)["pending"] == 0


@pytest.mark.parametrize("reason_field", [b"dead_reason", b"dead_detail", b"dead_entry_id"])
def test_flt005_dead_letters_keep_original_fields(client, settings, geography, reason_field):
    original = {b"event_id": b"x1", b"kind": b"comet", b"ts": b"1", b"odd\xff": b"\xfe"}
    client.xadd(settings.stream, original)
    Worker(settings, client, geography, name="w").work(burst=True)
    [(_, fields)] = client.xrange(settings.dead_stream_key)
    assert {k: fields[k] for k in original} == original
    assert fields[reason_field]


def test_flt006_retention_trims_old_entries_but_never_unapplied_ones(client, settings,
                                                                    geography):
    settings = settings.replace(retention_s=3600, dead_maxlen=5)
    old_ms = int(time.time() * 1000) - 2 * 3600 * 1000
    for i in range(3):
        client.xadd(settings.stream, incident(f"old{i}"), id=f"{old_ms + i}-0")
    client.xadd(settings.stream, incident("new"))
    worker = Worker(settings, client, geography, name="w")
    worker.consumer.create()
    worker._trim()
    assert client.xlen(settings.stream) == 4  # nothing applied yet: nothing trimmed
    worker.work(burst=True)
    worker._last_trim = 0.0
    worker._trim()
    assert [fields[b"incident_id"] for _, fields in client.xrange(settings.stream)] == [b"new"]
    for i in range(500):
        client.xadd(settings.dead_stream_key, {"n": str(i)})
    worker._last_trim = 0.0
    worker._trim()
    assert client.xlen(settings.dead_stream_key) == 5


def test_flt007_trim_while_entries_are_acknowledged_concurrently(client, redis_url, settings):
    """The read-ahead acks entries between the trim's look at the group and its trim."""
    base_ms = 1_000_000_000_000  # a fixed clock: every entry is older than the trim bound
    stream = settings.stream
    StreamConsumer(client, stream, settings.group, "reader").create()
    stop = threading.Event()
    failures: list[str] = []
    added: list[int] = [0]
    read: list[int] = [0]

    def produce_read_ack() -> None:
        own = connect(redis_url)
        reader = StreamConsumer(own, stream, settings.group, "reader")
        try:
            while not stop.is_set():
                pipe = own.pipeline(transaction=False)
                for _ in range(5):
                    added[0] += 1
                    pipe.xadd(stream, {"n": str(added[0])}, id=f"{base_ms + added[0]}-0")
                pipe.execute()
                entries = reader.read(5, None)
                read[0] += len(entries)
                ids = [entry_id for entry_id, _ in entries]
                if ids and len(own.xrange(stream, min=ids[0], max=ids[-1])) != len(ids):
                    failures.append(f"pending entries {ids[0]!r}..{ids[-1]!r} were trimmed")
                if ids:
                    own.xack(stream, settings.group, *ids)
        except Exception as exc:  # reported to the test thread
            failures.append(repr(exc))
        finally:
            own.close()

    thread = threading.Thread(target=produce_read_ack)
    thread.start()
    trimmer = StreamConsumer(client, stream, settings.group, "trimmer")
    trims = 0
    try:
        while trims < 3000 and not failures and thread.is_alive():
            trimmer.trim_before(base_ms + 10**9)
            trims += 1
    finally:
        stop.set()
        thread.join(30)
    assert not failures, failures[:3]
    assert trims == 3000
    assert read[0] == added[0]  # nothing trimmed before it was read
    trimmer.trim_before(base_ms + 10**9)
    assert client.xlen(stream) == 0  # and everything acknowledged was trimmed


def test_flt008_command_stream_is_trimmed_but_never_past_an_unapplied_command(
        client, settings, geography):
    settings = settings.replace(retention_s=3600, dead_maxlen=5)
    commands, dead = settings.command_stream, settings.command_stream + ":dead"
    old_ms = int(time.time() * 1000) - 2 * 3600 * 1000
    for i in range(50):
        client.xadd(commands, {"command_id": f"old{i}", "incident_id": "nope"},
                    id=f"{old_ms + i}-0")
    client.xadd(commands, {"command_id": "new", "incident_id": "nope"})
    worker = Worker(settings, client, geography, name="w")
    worker.commands.create()
    worker._trim()
    assert client.xlen(commands) == 51  # nothing applied yet: nothing trimmed
    worker.work(burst=True)
    assert worker.commands_handled == 51
    worker._last_trim = 0.0
    worker._trim()
    assert [fields[b"command_id"] for _, fields in client.xrange(commands)] == [b"new"]
    assert client.xlen(dead) == 5  # its dead letters are bounded too
