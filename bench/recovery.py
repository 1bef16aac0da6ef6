"""Recovery: from a killed worker to zero lag, with a second worker, at 2,000 events/s.

    .venv/bin/python bench/recovery.py [--rate 2000] [--claim-idle-ms 5000]

Two `citybrain worker` processes share the group while the demo feed writes
`--rate` events/s; one is killed with SIGKILL. Printed: the time until the
entries it left pending are applied and the group's lag is zero again, and
that time against the claim-idle setting (the least it can be: the survivor
waits that long before taking a dead worker's entries over), the baseline.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.demo import Simulator
from dashboard.geography import load_geography
from dashboard.redis_conn import connect, url_or_embedded
from dashboard.settings import Settings
from dashboard.state.store import health

ROOT = Path(__file__).resolve().parent.parent


def pending_of(client, settings: Settings, consumer: str) -> int:
    for info in client.xinfo_consumers(settings.stream, settings.group):
        name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
        if name == consumer:
            return int(info["pending"])
    return 0


def kill_holding_entries(client, settings: Settings, victim: subprocess.Popen,
                         name: str) -> int:
    """SIGKILL the worker while it holds read, unapplied entries; how many it held.

    A worker keeping up holds entries only for milliseconds, so it is frozen (SIGSTOP)
    at random moments until one finds it holding some, then killed where it stands.
    """
    for _ in range(2000):
        victim.send_signal(signal.SIGSTOP)
        time.sleep(0.002)  # let a script already sent to Redis finish
        held = pending_of(client, settings, name)
        if held:
            victim.send_signal(signal.SIGKILL)
            return held
        victim.send_signal(signal.SIGCONT)
        time.sleep(random.uniform(0.001, 0.02))
    victim.send_signal(signal.SIGKILL)
    return pending_of(client, settings, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--claim-idle-ms", type=int, default=5000)
    parser.add_argument("--warmup-s", type=float, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, server = url_or_embedded(tmp)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("CITYBRAIN_")},
               "REDIS_URL": url, "CITYBRAIN_CLAIM_IDLE_MS": str(args.claim_idle_ms),
               "PYTHONPATH": str(ROOT)}
        settings = Settings.load(env=env)
        client = connect(url)
        client.flushdb()
        geography = load_geography(None, "shanghai")
        stop = threading.Event()
        feed = threading.Thread(target=Simulator(client, settings.stream, geography, seed=5).run,
                                args=(args.rate,), kwargs={"stop": stop, "initial_risk": False},
                                daemon=True)
        workers = [subprocess.Popen([sys.executable, "-m", "dashboard.cli", "worker"], env=env,
                                    stderr=subprocess.DEVNULL) for _ in range(2)]
        try:
            feed.start()
            time.sleep(args.warmup_s)
            victim = workers[0]
            name = next(info["name"].decode() for info in client.xinfo_consumers(
                settings.stream, settings.group) if info["name"].decode().endswith(
                f"-{victim.pid}"))
            left = kill_holding_entries(client, settings, victim, name)
            killed = time.monotonic()
            print(f"feed {args.rate:g} events/s; killed a worker holding {left} pending "
                  f"entries; claim idle {args.claim_idle_ms} ms")
            while True:
                report = health(client, settings)
                if pending_of(client, settings, name) == 0 and (report["consumer_lag"] or 0) < (
                        args.rate / 4):
                    break
                if time.monotonic() - killed > 120:
                    print("not recovered in 120 s")
                    return 1
                time.sleep(0.05)
            took = time.monotonic() - killed
            ratio = took / (args.claim_idle_ms / 1000)
            print(f"recovered (its entries applied, lag under a quarter second of input) "
                  f"in {took:.2f} s; ratio to claim idle = {ratio:.2f}")
        finally:
            stop.set()
            for worker in workers:
                if worker.poll() is None:
                    worker.terminate()
                    worker.wait(20)
            if server:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
