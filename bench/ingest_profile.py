"""Where the worker's microseconds per event go: its stages one after the other, and apply.lua's.

    .venv/bin/python bench/ingest_profile.py [-n 50000] [--cprofile]
        [--set CITYBRAIN_RISK_TREE=dashboard/demo/risk_tree.csv ...]

Reads the flooded stream in batches, then times validation (`Worker.prepare`) and
the apply (`Worker.commit`) of every batch, one stage at a time (no overlap). The
apply is split by sections of `apply.lua`: a copy of the script notes Redis's
`TIME` at each section's first line and adds up the differences in a hash. The
raw `XREADGROUP` of the same batches is the baseline printed alongside. Uses an
embedded redis-server (or REDIS_URL: its database is flushed!).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import flooded
from dashboard.pipeline.worker import Worker
from dashboard.settings import Settings

# (first words of a line of apply.lua, the section that starts there)
SECTIONS = (("local batch = ", "unpack"), ("-- 1. Which events", "dedup"),
            ("-- 2. Read every record", "read"), ("-- 3. Apply in order", "apply"),
            ("-- 3a. The reports' indexes", "index"), ("-- 3b. ", "merge"),
            ("-- 3c. ", "hotspot"),
            ("-- 4. Write back", "write"), ("local days = {}", "counters"),
            ("-- Closed incidents are forgotten", "sweep"),
            ("for b, ids in pairs(new_seen)", "seen"), ("if #feed > 0", "feed+stats"),
            ("-- 5. A replay", "replay"), ("if #ARGV > 2 then", "ack"),
            ("return {applied", "end"))
MARK = ("local __t = {}\nlocal function __mark(name) local t = redis.call('TIME'); "
        "__t[#__t + 1] = name; __t[#__t + 1] = t[1] * 1000000 + t[2] end\n")
TALLY = ("for i = 3, #__t, 2 do redis.call('HINCRBY', 'bench:lua', __t[i - 2], "
         "__t[i + 1] - __t[i - 1]) end\n")


def timed_script() -> str:
    """apply.lua with a TIME mark at the start of each section, tallied before it returns."""
    out = []
    for line in resources.files("dashboard.pipeline").joinpath("apply.lua").read_text() \
            .splitlines():
        for start, name in SECTIONS:
            if line.startswith(start):
                if name == "unpack":
                    out.append(MARK)
                out.append(f"__mark('{name}')\n" + (TALLY if name == "end" else ""))
        out.append(line + "\n")
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000, help="events to push")
    parser.add_argument("--cprofile", action="store_true", help="print cProfile of prepare")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the worker (e.g. CITYBRAIN_RISK_ORDERS=orange)")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    with flooded(args.n) as (client, url, settings, geography):
        settings = Settings.load(env={"REDIS_URL": url, **extra})
        worker = Worker(settings, client, geography, name="profile")
        worker.script = client.register_script(timed_script())
        worker.consumer.create()
        started = time.perf_counter()
        batches = []
        while entries := worker.consumer.read(settings.batch, None):
            batches.append(entries)
        read_s = time.perf_counter() - started
        n = sum(len(b) for b in batches)
        profile = cProfile.Profile() if args.cprofile else None
        started = time.perf_counter()
        if profile:
            profile.enable()
        prepared = [worker.prepare(b) for b in batches]
        if profile:
            profile.disable()
        prepare_s = time.perf_counter() - started
        started = time.perf_counter()
        for batch in prepared:
            worker.commit(batch)
        commit_s = time.perf_counter() - started
        print(f"{n:,} events, microseconds per event, one stage at a time:")
        print(f"  read (XREADGROUP)  {read_s / n * 1e6:6.1f}")
        print(f"  prepare (validate, locate, rows) {prepare_s / n * 1e6:6.1f}")
        print(f"  commit (apply.lua + XACK, with the TIME marks) {commit_s / n * 1e6:6.1f}")
        tally = {k.decode(): int(v) for k, v in client.hgetall("bench:lua").items()}
        for _, name in SECTIONS[:-1]:
            print(f"    lua {name:<11} {tally.get(name, 0) / n:6.2f}")
        print(f"    lua in all      {sum(tally.values()) / n:6.2f}")
        if profile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
