"""Ingest benchmark: the worker's applied rate against raw XREADGROUP+XACK, in one run.

    .venv/bin/python bench/ingest.py [-n 200000] [--workers 1] [--repeat 3]
        [--set CITYBRAIN_RISK_ORDERS=orange ...] [--merge-metres 200]

Uses REDIS_URL when set (its database is flushed!), otherwise an embedded
redis-server in a temporary folder. Both consumers read the same stream
through their own consumer groups, so the ratio compares like with like.
With `--repeat`, each round wipes the state (not the stream) and runs the
baseline and the worker again; the medians of the rounds are printed last.
The worker's time includes starting its processes and loading the geography.
With `--merge-metres`, each round also runs the worker with 多源合并 on (that radius,
`--merge-minutes`) on the same stream and prints its rate against merging off.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.demo import flood
from dashboard.geography import Geography, load_geography
from dashboard.metrics.worker import WorkerMetrics
from dashboard.pipeline.worker import Worker
from dashboard.redis_conn import connect, url_or_embedded
from dashboard.settings import Settings


def raw_rate(url: str, stream: str, batch: int, group: str) -> tuple[int, float]:
    client = connect(url)
    client.xgroup_create(stream, group, id="0")
    done, start = 0, time.perf_counter()
    while True:
        reply = client.xreadgroup(group, "c1", {stream: ">"}, count=batch)
        if not reply or not reply[0][1]:
            break
        ids = [entry_id for entry_id, _ in reply[0][1]]
        client.xack(stream, group, *ids)
        done += len(ids)
    return done, time.perf_counter() - start


def _work(url: str, name: str, group: str, queue: multiprocessing.Queue,
          extra: dict[str, str]) -> None:
    settings = Settings.load(env={"REDIS_URL": url, "CITYBRAIN_GROUP": group, **extra})
    client = connect(url)
    # counted as `citybrain worker` counts (not served: nothing scrapes a benchmark)
    worker = Worker(settings, client, load_geography(None, "shanghai"), name=name,
                    metrics=WorkerMetrics(settings, client))
    queue.put(worker.work(burst=True))


def worker_rate(url: str, workers: int, group: str,
                extra: dict[str, str]) -> tuple[int, float]:
    settings = Settings.load(env={"REDIS_URL": url, "CITYBRAIN_GROUP": group})
    client = connect(url)
    # a fresh state: the previous round's remembered ids would make every event a duplicate
    stale = [key for key in client.scan_iter(count=1000) if key != settings.stream.encode()]
    if stale:
        client.delete(*stale)
    client.xgroup_create(settings.stream, settings.group, id="0")
    queue: multiprocessing.Queue = multiprocessing.Queue()
    load_geography(None, "shanghai")  # warm the file cache before timing
    procs = [multiprocessing.Process(target=_work, args=(url, f"w{i}", group, queue, extra))
             for i in range(workers)]
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    handled = sum(queue.get() for _ in procs)
    elapsed = time.perf_counter() - start
    for proc in procs:
        proc.join()
    return handled, elapsed


def script_us(client: redis.Redis, events: int) -> float:
    """Microseconds per event spent inside apply.lua since the last reset (Redis's own
    commandstats: less noisy than wall time on a shared machine)."""
    stats = client.info("commandstats")
    calls = stats.get("cmdstat_evalsha") or stats.get("cmdstat_eval") or {"usec": 0}
    return float(calls["usec"]) / max(events, 1)


def merge_round(url: str, workers: int, round_no: int, metres: int, minutes: int,
                rate_off: float, extra: dict[str, str]) -> float:
    """The worker with merging on, on the same stream; its rate over merging off."""
    env = {"CITYBRAIN_MERGE_METRES": str(metres), "CITYBRAIN_MERGE_MINUTES": str(minutes)}
    client = connect(url)
    client.config_resetstat()
    work_n, work_s = worker_rate(url, workers, f"bench-merge-{round_no}", {**extra, **env})
    print(f"apply.lua   {script_us(client, work_n):6.1f} µs/event (merging on)")
    records = client.hvals(Settings.load(env={"REDIS_URL": url}).state_prefix + "inc")
    merged = sum(b'"mem":true' in r for r in records)
    print(f"merging on  {work_n:>8,} entries in {work_s:6.2f}s ({work_n / work_s:>9,.0f}/s)"
          f"; {merged:,} of {len(records):,} incidents merged into another's case")
    ratio = (work_n / work_s) / rate_off
    print(f"ratio merging on/off = {ratio:.3f}")
    return ratio


def one_round(client: redis.Redis, url: str, settings: Settings, workers: int,
              round_no: int, extra: dict[str, str] | None = None) -> tuple[float, float]:
    """Baseline, worker, baseline again; the worker's rate and its ratio to the baseline."""
    # The baseline runs before and after the worker, so that load from other
    # processes during the run weighs on both sides alike.
    raw_n, raw_s = raw_rate(url, settings.stream, settings.batch, f"bench-raw-{round_no}a")
    print(f"raw read+ack {raw_n:>8,} entries in {raw_s:6.2f}s ({raw_n / raw_s:>9,.0f}/s)")
    client.config_resetstat()
    work_n, work_s = worker_rate(url, workers, f"bench-worker-{round_no}", extra or {})
    print(f"apply.lua   {script_us(client, work_n):6.1f} µs/event")
    print(f"worker x{workers}   {work_n:>8,} entries in {work_s:6.2f}s "
          f"({work_n / work_s:>9,.0f}/s)")
    raw2_n, raw2_s = raw_rate(url, settings.stream, settings.batch, f"bench-raw-{round_no}b")
    print(f"raw read+ack {raw2_n:>8,} entries in {raw2_s:6.2f}s ({raw2_n / raw2_s:>9,.0f}/s)")
    stats = client.hgetall(settings.state_prefix + "stats")
    print("state:", {k.decode(): v.decode() for k, v in stats.items()
                     if k not in (b"last_applied_ms", b"last_event_ts")},
          "risk work orders:", client.hlen(settings.state_prefix + "riskord"))
    baseline = (raw_n + raw2_n) / (raw_s + raw2_s)
    ratio = (work_n / work_s) / baseline
    print(f"ratio worker/raw = {ratio:.3f}")
    return work_n / work_s, ratio


@contextlib.contextmanager
def flooded(n: int) -> Iterator[tuple[redis.Redis, str, Settings, Geography]]:
    """A flushed Redis (REDIS_URL, else embedded) whose stream holds `n` demo events."""
    with tempfile.TemporaryDirectory() as tmp:
        url, server = url_or_embedded(tmp)
        try:
            client = connect(url)
            client.flushdb()
            settings = Settings.load(env={"REDIS_URL": url})
            geography = load_geography(None, "shanghai")
            t0 = time.perf_counter()
            pushed = flood(client, settings.stream, geography, n, seed=1)
            push_s = time.perf_counter() - t0
            print(f"pushed      {pushed:>9,} events in {push_s:6.2f}s "
                  f"({pushed / push_s:>9,.0f}/s)")
            yield client, url, settings, geography
        finally:
            if server:
                server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200_000, help="events to push")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (medians printed)")
    parser.add_argument("--merge-metres", type=int, default=0,
                        help="also run with merging on, at this radius (0: not)")
    parser.add_argument("--merge-minutes", type=int, default=30, help="merging's window")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the worker (e.g. CITYBRAIN_RISK_ORDERS=orange)")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    with flooded(args.n) as (client, url, settings, _):
        ratios, rates, merge_ratios = [], [], []
        for round_no in range(1, args.repeat + 1):
            rate, ratio = one_round(client, url, settings, args.workers, round_no, extra)
            rates.append(rate)
            ratios.append(ratio)
            if args.merge_metres:
                merge_ratios.append(merge_round(url, args.workers, round_no, args.merge_metres,
                                                args.merge_minutes, rate, extra))
        if args.repeat > 1:
            print(f"median of {args.repeat} rounds: worker x{args.workers} "
                  f"{statistics.median(rates):,.0f} applied/s, "
                  f"ratio worker/raw = {statistics.median(ratios):.3f}")
            if merge_ratios:
                print(f"median ratio merging on/off = {statistics.median(merge_ratios):.3f}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
