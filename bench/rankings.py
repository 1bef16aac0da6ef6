"""Rankings from the worker's per-day counters against a scan of every incident.

    .venv/bin/python bench/rankings.py [--incidents 30000] [--repeat 20] [--before REV]

Feeds `--incidents` incidents spread over the 30 days before an injected "now"
(reported, acknowledged, most closed, some reopened; routed by the demo rules)
through the real worker into an embedded Redis, then times one ranking of the
last 30 days by street and by department (what `GET /api/v1/rankings` does:
30 HGETALLs in one round trip, summed) against the baseline measured in the same
run: one read and decode of every incident record (`HGETALL inc`), the least a
ranking computed per request from the incidents would cost. With `--before REV`
the same events are first applied with `apply.lua` as it was at REV (git), the
baseline of what the counters cost the worker.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.geography import load_geography
from dashboard.pipeline.worker import Worker
from dashboard.rankings import parse_period, rankings
from dashboard.redis_conn import EmbeddedRedis, connect
from dashboard.routing import DEMO_RULES
from dashboard.settings import Settings

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=ZONE).timestamp()
CATEGORIES = ("garbage", "road_occupation", "noise", "manhole", "fire_hazard", "other")


def feed(client, settings, geography, count: int, seed: int = 1) -> int:  # type: ignore[no-untyped-def]
    """XADD `count` incident lives (3-5 events each); the number of events written."""
    rnd = random.Random(seed)
    compounds = [geography.areas[a] for a in geography.descendants_at("310104", "compound")]
    written = 0
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        area = rnd.choice(compounds)
        t0 = int((NOW - rnd.uniform(0, 30 * 86400)) * 1000)
        iid = f"B{i}"
        lives = [("reported", t0), ("in_progress", t0 + rnd.randint(1, 90) * 60_000)]
        if rnd.random() < 0.1:
            lives.append(("reopened", t0 + 100 * 60_000))
        if rnd.random() < 0.8:
            lives.append(("closed", t0 + rnd.randint(100, 600) * 60_000))
        for n, (status, ts) in enumerate(lives):
            event = {"event_id": f"{iid}-{n}", "kind": "incident", "ts": str(ts),
                     "incident_id": iid, "status": status}
            if status == "reported":
                event.update(category=rnd.choice(CATEGORIES), lon=str(area.lon),
                             lat=str(area.lat), severity=str(rnd.randint(1, 4)))
            pipe.xadd(settings.stream, event)
            written += 1
        if i % 2000 == 0:
            pipe.execute()
    pipe.execute()
    return written


def timed(repeat: int, work) -> float:  # type: ignore[no-untyped-def]
    """Mean seconds of `work()` over `repeat` runs."""
    start = time.perf_counter()
    for _ in range(repeat):
        work()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    """Print the ranking's time against the incident scan's."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=30000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--before", default="", help="a git revision of apply.lua to compare")
    args = parser.parse_args()
    with EmbeddedRedis(tempfile.mkdtemp(prefix="rank-bench-")) as server:
        settings = Settings.load(env={"REDIS_URL": server.url, "CITYBRAIN_TZ": "Asia/Shanghai",
                                      "CITYBRAIN_ROUTING_RULES": str(DEMO_RULES),
                                      "CITYBRAIN_CLOSED_KEEP_S": str(40 * 86400)})
        client = connect(server.url)
        geography = load_geography(None, "shanghai")
        if args.before:
            old = subprocess.run(["git", "show", f"{args.before}:dashboard/pipeline/apply.lua"],
                                 check=True, capture_output=True, text=True).stdout
            events = feed(client, settings, geography, args.incidents)
            worker = Worker(settings, client, geography, name="bench", clock=lambda: NOW)
            worker.script = client.register_script(old)
            start = time.perf_counter()
            worker.work(burst=True)
            before = time.perf_counter() - start
            print(f"apply.lua of {args.before} (baseline): {events / before:,.0f} events/s")
            client.flushdb()
        events = feed(client, settings, geography, args.incidents)
        worker = Worker(settings, client, geography, name="bench", clock=lambda: NOW)
        start = time.perf_counter()
        worker.work(burst=True)
        applied = time.perf_counter() - start
        print(f"{args.incidents:,} incidents, {events:,} events applied in {applied:.1f} s "
              f"({events / applied:,.0f} events/s, routing and rank counters included"
              + (f"; ratio {before / applied:.3f})" if args.before else ")"))
        period = parse_period("30d", NOW, ZONE)
        prefix = settings.state_prefix

        def inside(street: str) -> bool:
            return street in geography.areas and "310104" in geography.chain(street)

        def rank_both() -> None:
            for level in ("street", "department"):
                rankings(client, prefix, level, period, inside, str,
                         settings.ranking_weights)

        def scan() -> None:
            for raw in client.hgetall(prefix + "inc").values():
                orjson.loads(raw)

        ranked = timed(args.repeat, rank_both) / 2
        scanned = timed(max(1, args.repeat // 4), scan)
        rows = len(rankings(client, prefix, "street", period, inside, str,
                            settings.ranking_weights)["rows"])
        print(f"scan of every incident record (baseline): {scanned * 1000:.1f} ms")
        print(f"one 30-day ranking from the counters:     {ranked * 1000:.2f} ms "
              f"({rows} streets; ratio {ranked / scanned:.4f})")
        client.close()


if __name__ == "__main__":
    main()
