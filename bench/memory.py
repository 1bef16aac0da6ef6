"""Memory under a long feed: worker RSS and Redis memory at 0.5, 1 and 2 million events.

    .venv/bin/python bench/memory.py [--total 2000000] [--step 500000]

Uses REDIS_URL when set (its database is flushed!), otherwise an embedded
redis-server. Events come from the demo flood; after each step the worker
drains the stream, the retention sweep runs, and the figures are printed,
split into the events stream (bounded by CITYBRAIN_RETENTION_S), the
remembered event ids (bounded by CITYBRAIN_DEDUP_TTL_S) and the city state
(bounded by the number of areas, segments and open incidents). The baseline
is the first step: each later line prints its ratio to it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.demo import flood
from dashboard.geography import load_geography
from dashboard.pipeline.worker import Worker
from dashboard.redis_conn import connect, url_or_embedded
from dashboard.settings import Settings

MB = 1024 * 1024


def redis_breakdown(client, settings: Settings) -> dict[str, float]:
    used = client.info("memory")["used_memory"]
    stream = (client.memory_usage(settings.stream, samples=0) or 0) + (
        client.memory_usage(settings.dead_stream_key, samples=0) or 0)
    seen = sum(client.memory_usage(key, samples=0) or 0
               for key in client.scan_iter(settings.state_prefix + "seen:*", count=1000))
    return {"used": used / MB, "streams": stream / MB, "seen_ids": seen / MB,
            "state": (used - stream - seen) / MB}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=2_000_000)
    parser.add_argument("--step", type=int, default=500_000)
    parser.add_argument("--closed-keep-s", type=int, default=30,
                        help="CITYBRAIN_CLOSED_KEEP_S for the run (the default keeps a week)")
    parser.add_argument("--retention-s", type=int, default=172800,
                        help="CITYBRAIN_RETENTION_S and CITYBRAIN_DEDUP_TTL_S for the run; a "
                             "short one shows the time-bounded parts levelling off")
    args = parser.parse_args()
    me = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        url, server = url_or_embedded(tmp)
        try:
            client = connect(url)
            client.flushdb()
            settings = Settings.load(env={"REDIS_URL": url,
                                          "CITYBRAIN_CLOSED_KEEP_S": str(args.closed_keep_s),
                                          "CITYBRAIN_RETENTION_S": str(args.retention_s),
                                          "CITYBRAIN_DEDUP_TTL_S": str(args.retention_s)})
            geography = load_geography(None, "shanghai")
            worker = Worker(settings, client, geography, name="bench")
            base: dict[str, float] | None = None
            sent = 0
            print(f"{'events':>10} {'worker RSS':>11} {'redis used':>11} {'streams':>9} "
                  f"{'seen ids':>9} {'state':>8}  (MB; ratio to first step)")
            while sent < args.total:
                sent += flood(client, settings.stream, geography, args.step, seed=sent)
                worker.work(burst=True)
                worker._last_trim = 0.0
                worker._trim()
                figures = {"rss": me.memory_info().rss / MB, **redis_breakdown(client, settings)}
                base = base or figures
                print(f"{sent:>10,} {figures['rss']:>10.1f} {figures['used']:>11.1f} "
                      f"{figures['streams']:>9.1f} {figures['seen_ids']:>9.1f} "
                      f"{figures['state']:>8.1f}  (rss x{figures['rss'] / base['rss']:.2f}, "
                      f"state x{figures['state'] / base['state']:.2f})", flush=True)
        finally:
            if server:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
