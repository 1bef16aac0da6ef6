"""The push process's sign of life in Redis, and how a web process reads it.

The push process writes `<prefix>push` (a hash: pid, streams, since_ms) every
`BEAT_S`, expiring after `ALIVE_S`; a web process reads it at most once per
`READ_S` for all its requests (so the number of screens does not matter) and
tells its screens whether to connect (`PushStatus.config`) and `/healthz`
whether push is up.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import redis

from dashboard.i18n import t
from dashboard.settings import Settings

log = logging.getLogger(__name__)

BEAT_S = 1.0
ALIVE_S = 5.0
READ_S = 1.0
STATES = {"push": "live", "poll": "polling", "retry": "retry"}  # the screen's push states


def beacon_key(settings: Settings) -> str:
    """The hash the push process keeps alive."""
    return settings.state_prefix + "push"


def beat(client: redis.Redis, settings: Settings, streams: int, since_ms: int) -> None:
    """Say that the push process lives and how many streams it holds (one write)."""
    key = beacon_key(settings)
    pipe = client.pipeline(transaction=False)
    pipe.hset(key, mapping={"pid": os.getpid(), "streams": streams, "since_ms": since_ms})
    pipe.pexpire(key, int(ALIVE_S * 1000))
    pipe.execute()


class PushStatus:
    """Whether the push process is up, as one web process last read it."""

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.client = client
        self._lock = threading.Lock()
        self._read_at = -1e9
        self._beacon: dict[str, int] = {}

    def beacon(self) -> dict[str, int]:
        """The push process's last beat (empty: down, or push is off)."""
        if self.settings.update_mode != "push":
            return {}
        with self._lock:
            if time.monotonic() - self._read_at >= READ_S:
                try:
                    raw = self.client.hgetall(beacon_key(self.settings))
                    self._beacon = {k.decode(): int(v) for k, v in raw.items()}
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    log.warning("could not read the push beacon: %s", exc)
                    self._beacon = {}
                self._read_at = time.monotonic()
            return self._beacon

    def up(self) -> bool:
        """Whether screens should connect to the push process."""
        return bool(self.beacon())

    def health(self) -> dict[str, Any]:
        """The `/healthz` block: the mode, whether push is up and its streams."""
        if self.settings.update_mode != "push":
            return {"mode": "poll"}
        beacon = self.beacon()
        return {"mode": "push", "process": "up" if beacon else "down",
                "streams": beacon.get("streams"),
                "fallback": None if beacon else "screens are polling"}

    def config(self, lang: str) -> dict[str, Any]:
        """What a screen needs to connect: the URL, whether push is up, its status texts."""
        return {"up": self.up(), "url": self.settings.push_url,
                "port": self.settings.push_port,
                "texts": {kind: [t(f"push_{name}", lang), t(f"push_{name}_title", lang)]
                          for kind, name in STATES.items()}}
