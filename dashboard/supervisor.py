"""`citybrain run`'s supervisor: keeps its children (Redis, web, worker, feed) running.

A child that exits is logged and started again after a pause that doubles from
`MIN_BACKOFF_S` to `MAX_BACKOFF_S` while it keeps dying, and starts over once a
child has lived `STABLE_S`. Deaths and restarts are counted in the Redis hash
`<state prefix>supervisor` (`/healthz` shows them as `children`); a failure to
write there is logged and never stops the supervisor. `stop()` ends every child
(the ones named `stop_last`, e.g. Redis, after the others have exited).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

import redis

log = logging.getLogger(__name__)

MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STABLE_S = 60.0  # a child that lived this long starts over at MIN_BACKOFF_S
POLL_S = 0.2
STOP_WAIT_S = 15.0


class Process(Protocol):
    """What the supervisor needs of a child process (`subprocess.Popen` has it)."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...  # noqa: D102 - as Popen
    def terminate(self) -> None: ...  # noqa: D102 - as Popen
    def kill(self) -> None: ...  # noqa: D102 - as Popen
    def wait(self, timeout: float | None = None) -> int: ...  # noqa: D102 - as Popen


Start = Callable[[], Process]


@dataclass
class Child:
    """One supervised process: how to start it, and what happened to it."""

    name: str
    start: Start
    process: Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    deaths: int = 0
    backoff: float = MIN_BACKOFF_S
    restart_at: float | None = None  # when a dead child is due to start again
    last_exit: int | None = None


class Supervisor:
    """Starts children, restarts the ones that die, and stops them all."""

    def __init__(self, starters: Mapping[str, Start], client: redis.Redis | None, key: str,
                 stop_last: Collection[str] = (),
                 clock: Callable[[], float] = time.monotonic,
                 wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.children = [Child(name, start) for name, start in starters.items()]
        self.stop_last = stop_last
        self.client = client
        self.key = key
        self.clock = clock
        self.wall_ms = wall_ms
        self.stopping = threading.Event()

    def start(self) -> None:
        """Start every child (the counts of an earlier run are cleared)."""
        self._write(lambda pipe: pipe.delete(self.key))
        for child in self.children:
            self._launch(child)

    def check(self) -> None:
        """One look at every child: note the ones that died, restart the ones due."""
        if self.stopping.is_set():  # children ending with us are not restarted
            return
        now = self.clock()
        for child in self.children:
            if child.restart_at is None and child.process is not None:
                code = child.process.poll()
                if code is not None:
                    self._died(child, code, now)
            if child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                if self._launch(child):
                    log.warning("restarted %s (pid %d; restart %d)", child.name,
                                child.process.pid if child.process else -1, child.restarts)

    def run(self) -> None:
        """Check the children until `stop` is requested, then end them."""
        try:
            while not self.stopping.is_set():
                self.check()
                self.stopping.wait(POLL_S)
        finally:
            self.stop_children()

    def stop(self) -> None:
        """Ask `run` to end (safe from a signal handler)."""
        self.stopping.set()

    def stop_children(self) -> None:
        """Terminate every running child (`stop_last` ones last); kill the ones that linger."""
        first = [c for c in self.children if c.name not in self.stop_last]
        last = [c for c in self.children if c.name in self.stop_last]
        for group in (first, last):
            running = [c.process for c in group if c.process and c.process.poll() is None]
            for process in running:
                process.terminate()
            for process in running:
                try:
                    process.wait(STOP_WAIT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def _died(self, child: Child, code: int, now: float) -> None:
        lived = now - child.started_at
        if lived >= STABLE_S:
            child.backoff = MIN_BACKOFF_S
        delay = child.backoff
        child.backoff = min(child.backoff * 2, MAX_BACKOFF_S)
        child.deaths += 1
        child.last_exit = code
        child.restart_at = now + delay
        log.error("%s (pid %d) exited with %s after %.1fs; restarting it in %.0fs",
                  child.name, child.process.pid if child.process else -1, code, lived, delay)
        self._record(child, state="restarting")

    def _launch(self, child: Child) -> bool:
        """Start a child; one that cannot be started (no memory to fork) is retried later.

        (`EmbeddedRedis.start` raises RuntimeError when the server does not come up.)
        """
        child.started_at = self.clock()
        child.restart_at = None
        try:
            child.process = child.start()
        except (OSError, RuntimeError) as exc:
            log.error("could not start %s: %s", child.name, exc)
            child.process = None
            self._died(child, -1, child.started_at)
            return False
        self._record(child, state="running")
        return True

    def _record(self, child: Child, state: str) -> None:
        fields = {f"{child.name}:state": state, f"{child.name}:restarts": child.restarts,
                  f"{child.name}:deaths": child.deaths,
                  f"{child.name}:pid": child.process.pid if child.process else "",
                  f"{child.name}:last_exit": "" if child.last_exit is None else child.last_exit,
                  f"{child.name}:since_ms": self.wall_ms()}
        self._write(lambda pipe: pipe.hset(self.key, mapping=fields))

    def _write(self, step: Callable[[redis.client.Pipeline], object]) -> None:
        if self.client is None:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            step(pipe)
            pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("could not record the children's state in Redis: %s", exc)


def children_report(raw: Mapping[bytes, bytes]) -> dict[str, dict[str, object]]:
    """The `<prefix>supervisor` hash as `/healthz` shows it: per child, its numbers."""
    report: dict[str, dict[str, object]] = {}
    for key, value in raw.items():
        name, _, what = key.decode().partition(":")
        text = value.decode()
        report.setdefault(name, {})[what] = (
            text if what == "state" else int(text) if text.lstrip("-").isdigit() else None)
    return dict(sorted(report.items()))
