"""Look back: the city as it was at a past moment, rebuilt from the events stream.

The stream keeps `CITYBRAIN_RETENTION_S` of events and its entry ids are
arrival times, so the state "as the cockpit knew it" at time T is what the
entries up to T make. A replay applies them with the worker's own code (the
same validation and the same Lua script) into a scratch namespace of the
viewer (`<prefix>:replay:<viewer>:{city}:`), then builds the view from it.
Officials' actions (the command stream) are replayed too, after the events up
to the same moment.
Moving forward (the play button) applies only the entries since the last
step; moving backward starts again. Scratch state expires after
`REPLAY_TTL_S`. What is older than the stream's retention is not in a replay.
"""

from __future__ import annotations

import time
from datetime import datetime

import redis
from redis.lock import Lock

from dashboard.pipeline.worker import Worker
from dashboard.settings import Settings
from dashboard.state.store import read_raw
from dashboard.state.view import CityView, RiskModel, build_view
from layers.geography import Geography

REPLAY_TTL_S = 900
CHUNK = 2000
LOCK_S = 120
CURSORS = ("cursor", "command_cursor")  # the last entry applied of each stream


class Replayer:
    """Rebuilds past views for viewers; one per web process."""

    def __init__(self, settings: Settings, client: redis.Redis, geography: Geography) -> None:
        self.settings = settings
        self.client = client
        self.geography = geography
        self.model = RiskModel(settings.risk_model, settings.risk_thresholds)

    def scratch(self, viewer: str) -> Settings:
        """The settings of a viewer's replay: the same city under a scratch key prefix."""
        return self.settings.replace(key_prefix=f"{self.settings.key_prefix}:replay:{viewer}")

    def state_at(self, viewer: str, at: datetime) -> Settings:
        """Bring the viewer's scratch state to `at` (no view built); its settings."""
        scratch = self.scratch(viewer)
        with self._locked(scratch):
            self._advance(scratch, int(at.timestamp() * 1000))
        return scratch

    def view_at(self, viewer: str, at: datetime) -> CityView:
        """The view at `at` for one viewer (a name of A-Za-z0-9._@-)."""
        scratch = self.scratch(viewer)
        local = at.astimezone(self.settings.zone)
        with self._locked(scratch):
            self._advance(scratch, int(at.timestamp() * 1000))
            raw = read_raw(self.client, scratch, local)
        return build_view(raw, self.geography, self.model, local, float("inf"))

    def _locked(self, scratch: Settings) -> Lock:
        return self.client.lock(scratch.state_prefix + "lock", timeout=LOCK_S,
                                blocking_timeout=LOCK_S)

    def _advance(self, scratch: Settings, at_ms: int) -> None:
        prefix = scratch.state_prefix
        cursors = [(c or b"").decode() for c in self.client.mget(
            [prefix + key for key in CURSORS])]
        if any(not c or (c != "-" and int(c.split("-")[0]) > at_ms) for c in cursors):
            self._wipe(prefix)
            cursors = ["-", "-"]
        worker = Worker(scratch, self.client, self.geography, name="replay")
        # Events first, then officials' commands up to the same moment: a command always
        # follows the report of its incident, which is then known to the scratch state.
        cursors = [self._apply_until(worker, cursors[0], at_ms, commands=False),
                   self._apply_until(worker, cursors[1], at_ms, commands=True)]
        self.client.mset({prefix + key: c for key, c in zip(CURSORS, cursors, strict=True)})
        self._expire(prefix)

    def _apply_until(self, worker: Worker, cursor: str, at_ms: int, commands: bool) -> str:
        stream = self.settings.command_stream if commands else self.settings.stream
        start = cursor if cursor == "-" else f"({cursor}"
        while True:
            entries = self.client.xrange(stream, min=start, max=str(at_ms), count=CHUNK)
            if not entries:
                return cursor
            prepared = worker.prepare_commands(entries) if commands else worker.prepare(entries)
            if prepared.rows:
                worker._apply(prepared.rows, [], at_ms, stream)
            cursor = entries[-1][0].decode()
            start = f"({cursor}"
            if len(entries) < CHUNK:
                return cursor

    def _keys(self, prefix: str) -> list[bytes]:
        pattern = prefix.replace("[", "\\[").replace("?", "\\?").replace("*", "\\*") + "*"
        return list(self.client.scan_iter(match=pattern, count=1000))

    def _wipe(self, prefix: str) -> None:
        keys = [k for k in self._keys(prefix) if not k.endswith(b"lock")]
        if keys:
            self.client.delete(*keys)

    def _expire(self, prefix: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in self._keys(prefix):
            if not key.endswith(b"lock"):
                pipe.expire(key, REPLAY_TTL_S)
        pipe.execute()


def parse_at(value: str, settings: Settings) -> datetime:
    """A moment from `?at=`: ISO-8601 (city time if no offset) or epoch milliseconds."""
    if value.isdigit():
        moment = datetime.fromtimestamp(int(value) / 1000, settings.zone)
    else:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=settings.zone)
    if moment.timestamp() > time.time():
        raise ValueError("that moment is in the future")
    return moment
