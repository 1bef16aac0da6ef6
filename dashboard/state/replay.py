"""Look back: the city as it was at a past moment, rebuilt from the events stream.

The stream keeps `CITYBRAIN_RETENTION_S` of events and its entry ids are
arrival times, so the state "as the cockpit knew it" at time T is what the
entries up to T make. A replay applies them with the worker's own code (the
same validation and the same Lua script) into a scratch namespace of the
viewer (`<prefix>:replay:<viewer>:{city}:`), then builds the view from it.
Officials' actions (the command stream) are replayed too, after the events up
to the same moment. Moving forward (the play button) applies only the entries
since the last step; moving backward starts again. What is older than the
stream's retention is not in a replay.

It runs inside web request threads, so it is bounded:

- **One namespace per viewer**, a browser session (`dashboard/viewer.py`), so
  two viewers of one account (everyone is `demo` in open demo mode) never
  reset each other's replay.
- **Bounded steps, not a background pool.** A request waits at most
  `CITYBRAIN_REPLAY_WAIT_S` for the viewer's lock, then applies the stream
  until that time is up (at least one chunk, so every request progresses) and
  saves its cursors. If the moment is not reached it raises `ReplayBusy` with
  the progress: the API answers 503 with `Retry-After`, the screen says
  "preparing" and its next tick continues from the cursors. A pool would keep
  working for viewers who went away and would need a queue of its own; steps
  stop when nobody asks. At most `CITYBRAIN_REPLAY_SLOTS` requests of a process
  are in here at once; another answers busy at once, so the live screen always
  finds a free request thread.
- **No keyspace SCAN.** The Lua script lists every key it writes in the
  namespace's `keys` set (`Worker(registry=...)`), so wiping and expiring are
  DEL and EXPIRE of known names. Scratch state expires `REPLAY_TTL_S` after
  the viewer's last step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import redis
from redis.exceptions import LockError

from dashboard.geography import Geography
from dashboard.metrics.presence import REPLAY_WINDOW_S, SeenBuffer, presence_key
from dashboard.pipeline.worker import Worker
from dashboard.settings import Settings
from dashboard.state.store import read_raw
from dashboard.state.view import CityView, RiskModel, build_view

log = logging.getLogger(__name__)

REPLAY_TTL_S = 900
CHUNK = 1000
META = "replay"  # hash: the last entry applied of each stream, and where the stream began
REGISTRY = "keys"  # set: every key the replay wrote in its namespace
LOCK = "lock"
RETRY_AFTER_S = 1
T = TypeVar("T")


class ReplayBusy(Exception):
    """The viewer's replay is not ready: try again shortly (`retry_after_s`).

    `progress` is None when another request holds it (or every slot is taken),
    else how far the replay has come towards the moment (0 to 1).
    """

    def __init__(self, progress: float | None = None) -> None:
        super().__init__("replay busy" if progress is None else
                         f"replay preparing ({progress:.0%})")
        self.progress = progress
        self.retry_after_s = RETRY_AFTER_S


class Replayer:
    """Rebuilds past views for viewers; one per web process."""

    def __init__(self, settings: Settings, client: redis.Redis, geography: Geography) -> None:
        self.settings = settings
        self.client = client
        self.geography = geography
        self.model = RiskModel.from_settings(settings)
        self.wait_s = float(settings.replay_wait_s)
        self._slots = threading.BoundedSemaphore(settings.replay_slots)
        self.sessions = SeenBuffer(client, presence_key(settings, "replays"),
                                   REPLAY_WINDOW_S)

    def scratch(self, viewer: str) -> Settings:
        """The settings of a viewer's replay: the same city under a scratch key prefix."""
        return self.settings.replace(key_prefix=f"{self.settings.key_prefix}:replay:{viewer}")

    def read_at(self, viewer: str, at: datetime, read: Callable[[Settings], T]) -> T:
        """Bring the viewer's scratch state to `at`, then `read(scratch settings)` under its lock.

        Raises `ReplayBusy` when no slot is free, the lock is not had within the wait,
        or the moment is not reached within it (the next call continues).
        """
        self.sessions.seen(viewer, time.time())
        if not self._slots.acquire(blocking=False):
            raise ReplayBusy()
        try:
            deadline = time.monotonic() + self.wait_s
            scratch = self.scratch(viewer)
            lock = self.client.lock(scratch.state_prefix + LOCK,
                                    timeout=max(10.0, 4 * self.wait_s),
                                    blocking_timeout=self.wait_s)
            if not lock.acquire():
                raise ReplayBusy()
            try:
                progress = self._advance(scratch, int(at.timestamp() * 1000), deadline)
                if progress < 1:
                    raise ReplayBusy(progress)
                return read(scratch)
            finally:
                try:
                    lock.release()
                except LockError:
                    log.warning("replay lock of %s expired while in use", viewer)
        finally:
            self._slots.release()

    def view_at(self, viewer: str, at: datetime) -> CityView:
        """The view at `at` for one viewer (a name of A-Za-z0-9._@-); `ReplayBusy` if not ready."""
        local = at.astimezone(self.settings.zone)
        raw = self.read_at(viewer, at, lambda scratch: read_raw(self.client, scratch, local))
        return build_view(raw, self.geography, self.model, local, float("inf"))

    def _advance(self, scratch: Settings, at_ms: int, deadline: float) -> float:
        """Apply the streams towards `at_ms` until the deadline; the progress (1: there)."""
        prefix = scratch.state_prefix
        meta = {k.decode(): v.decode() for k, v in self.client.hgetall(prefix + META).items()}
        cursors = [meta.get("cursor", ""), meta.get("command_cursor", "")]
        if any(not c or (c != "-" and _ms(c) > at_ms) for c in cursors):
            self._wipe(prefix)
            first = self.client.xrange(self.settings.stream, count=1)
            cursors = ["-", "-"]
            meta = {"start": str(_ms(first[0][0].decode()) if first else at_ms)}
        worker = Worker(scratch, self.client, self.geography, name="replay", registry=REGISTRY)
        # Events first, then officials' commands up to the same moment: a command always
        # follows the report of its incident, which is then known to the scratch state.
        cursors[0], there = self._apply_until(worker, cursors[0], at_ms, False, deadline)
        if there:
            cursors[1], there = self._apply_until(worker, cursors[1], at_ms, True, deadline)
        self.client.hset(prefix + META, mapping={
            "cursor": cursors[0], "command_cursor": cursors[1], "start": meta["start"]})
        self._expire(prefix)
        if there:
            return 1.0
        start = int(meta["start"])
        done = 0 if cursors[0] == "-" else _ms(cursors[0]) - start
        return min(0.99, max(0.0, done / max(1, at_ms - start)))

    def _apply_until(self, worker: Worker, cursor: str, at_ms: int, commands: bool,
                     deadline: float) -> tuple[str, bool]:
        """Apply chunks up to `at_ms` (at least one) until the deadline; cursor, whether there."""
        stream = self.settings.command_stream if commands else self.settings.stream
        while True:
            start = cursor if cursor == "-" else f"({cursor}"
            entries = self.client.xrange(stream, min=start, max=str(at_ms), count=CHUNK)
            if not entries:
                return cursor, True
            prepared = worker.prepare_commands(entries) if commands else worker.prepare(entries)
            if prepared.rows:
                worker._apply(prepared.rows, [], at_ms, stream)
            cursor = entries[-1][0].decode()
            if len(entries) < CHUNK:
                return cursor, True
            if time.monotonic() >= deadline:
                return cursor, False

    def _known(self, prefix: str) -> list[bytes | str]:
        """Every key of the namespace but its lock: no SCAN, the registry names them."""
        return [*self.client.smembers(prefix + REGISTRY), prefix + REGISTRY, prefix + META]

    def _wipe(self, prefix: str) -> None:
        self.client.delete(*self._known(prefix))

    def _expire(self, prefix: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in self._known(prefix):
            pipe.expire(key, REPLAY_TTL_S)
        pipe.execute()


# Moments come from stream ids, which are Redis's clock; this host's may lag it a little.
CLOCK_SKEW_S = 5.0


def _ms(entry_id: str) -> int:
    return int(entry_id.split("-")[0])


def parse_at(value: str, settings: Settings) -> datetime:
    """A moment from `?at=`: ISO-8601 (city time if no offset) or epoch milliseconds."""
    if value.isdigit():
        moment = datetime.fromtimestamp(int(value) / 1000, settings.zone)
    else:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=settings.zone)
    if moment.timestamp() > time.time() + CLOCK_SKEW_S:
        raise ValueError("that moment is in the future")
    return moment
