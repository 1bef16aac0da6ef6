"""The worker's Python side alone: `Worker.prepare` over a fixed set of demo entries, no Redis.

    .venv/bin/python bench/prepare_cost.py [-n 20000] [--rounds 3] [--invalid 0.05]
        [--callgrind] [--warm] [--cprofile]

Deterministic input (seed 1, a fixed clock): the same entries the ingest benchmark
floods, as bytes the way a stream read returns them, plus a share of broken copies
(`--invalid`). Prints microseconds per entry (best round). Under valgrind,
`--callgrind` counts instructions of the batches only (not the imports and the
geography), which stays the same however loaded the machine is:

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python bench/prepare_cost.py -n 5000 --rounds 1 --callgrind
    grep ^totals /tmp/cg.out.1    # the batches' instructions (divide by -n)

(it compiles a tiny helper with the valgrind headers to switch instrumentation on and off).
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import pstats
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.demo.simulator import Simulator
from dashboard.geography import load_geography
from dashboard.pipeline.worker import Worker
from dashboard.settings import Settings

NOW = 1_795_000_000.0  # a fixed "now" (2026-11-18), for the simulator and the worker
_HELPER = """#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("prepare"); }
"""
# ways a producer breaks an entry: (what it does, how)
_BREAKS = (
    lambda f, r: f.pop(b"event_id", None),
    lambda f, r: f.__setitem__(b"kind", b"parade"),
    lambda f, r: f.__setitem__(b"ts", b"yesterday"),
    lambda f, r: f.__setitem__(b"lon", b"nan"),
    lambda f, r: f.__setitem__(b"lat", b"12.5"),
    lambda f, r: f.__setitem__(b"status", b"lost"),
    lambda f, r: f.__setitem__(b"speed_kmh", b"-3"),
    lambda f, r: f.__setitem__(b"value", b"1e999"),
    lambda f, r: f.__setitem__(b"title", b"\xff\xfe"),
    lambda f, r: f.__setitem__(b"area_id", b"nowhere"),
    lambda f, r: f.__setitem__(b"event_id", b"bad id!"),
    lambda f, r: f.__setitem__(b"coord", b"mercator"),
)


def entries(n: int, invalid: float) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """`n` stream entries as a read returns them; a share of them broken."""
    geography = load_geography(None, "shanghai")
    sim = Simulator(None, "bench", geography, seed=1, clock=lambda: NOW)
    rand = random.Random(1)
    out = []
    for i, fields in enumerate(sim.flood_events(n)):
        raw = {k.encode(): v.encode() for k, v in fields.items()}
        if rand.random() < invalid:
            rand.choice(_BREAKS)(raw, rand)
        out.append((f"{int(NOW * 1000)}-{i}".encode(), raw))
    return out


def _helper() -> ctypes.CDLL:
    folder = Path(tempfile.mkdtemp())
    (folder / "cg.c").write_text(_HELPER)
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(folder / "cg.so"),
                    str(folder / "cg.c")], check=True)
    return ctypes.CDLL(str(folder / "cg.so"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="entries")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (best printed)")
    parser.add_argument("--invalid", type=float, default=0.0, help="share of broken entries")
    parser.add_argument("--callgrind", action="store_true",
                        help="instrument the batches only (run under valgrind)")
    parser.add_argument("--cprofile", action="store_true", help="print cProfile of a round")
    parser.add_argument("--warm", action="store_true",
                        help="one worker for all rounds, after an unmeasured pass (its point "
                             "memo full, as in a running worker)")
    args = parser.parse_args()
    settings = Settings.load(env={})
    stream = entries(args.n, args.invalid)
    geography = load_geography(None, "shanghai")
    batches = [stream[i:i + settings.batch] for i in range(0, len(stream), settings.batch)]
    helper = _helper() if args.callgrind else None
    best = float("inf")
    worker = Worker(settings, redis.Redis(), geography, name="bench", clock=lambda: NOW)
    if args.warm:
        for batch in batches:
            worker.prepare(batch)
    for _ in range(args.rounds):
        if not args.warm:  # a new worker per round: its point memo empty, as at a start
            worker = Worker(settings, redis.Redis(), geography, name="bench", clock=lambda: NOW)
        profile = cProfile.Profile() if args.cprofile else None
        if helper is not None:
            helper.cg_start()
        if profile is not None:
            profile.enable()
        started = time.perf_counter()
        prepared = [worker.prepare(batch) for batch in batches]
        elapsed = time.perf_counter() - started
        if profile is not None:
            profile.disable()
        if helper is not None:
            helper.cg_stop()
        best = min(best, elapsed)
        rows = sum(len(p.rows) for p in prepared)
        dead = sum(len(p.dead) for p in prepared)
        if profile is not None:
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    print(f"{len(stream):,} entries ({rows:,} rows, {dead:,} dead) in batches of "
          f"{settings.batch}: {best / len(stream) * 1e6:.1f} µs/entry (best of {args.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
