"""Who was seen recently: a Redis sorted set of ids by last-seen time, kept bounded.

A process notes ids in memory and writes them (and drops the ones older than the
window) at most once per `FLUSH_S`, so a screen's tick costs no Redis call of its own;
`count` answers how many ids every process together saw within the window.
"""

from __future__ import annotations

import logging
import threading

import redis

from dashboard.settings import Settings

SCREEN_WINDOW_S = 30.0  # a screen that ticked within this long counts as connected
REPLAY_WINDOW_S = 60.0  # a viewer that looked back within this long counts as replaying
FLUSH_S = 5.0

log = logging.getLogger(__name__)


def presence_key(settings: Settings, what: str) -> str:
    """The set of `what` (screens, replays) of this city, apart from its state keys."""
    city_tag = settings.state_prefix.removeprefix(settings.key_prefix + ":")
    return f"{settings.key_prefix}:presence:{city_tag}{what}"


class SeenBuffer:
    """Ids this process saw, written to one sorted set at most once per `FLUSH_S`."""

    def __init__(self, client: redis.Redis, key: str, window_s: float) -> None:
        self.client = client
        self.key = key
        self.window_s = window_s
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}
        self._written: dict[str, float] = {}  # member -> when this process last wrote it
        self._flushed = -1e18

    def seen(self, member: str, now_s: float) -> None:
        """Note `member` seen at `now_s` and write what was noted.

        A member new to the set (or near the end of its window) is written at once,
        the others when the last write is older than `FLUSH_S`.
        """
        with self._lock:
            self._pending[member] = now_s
            fresh = now_s - self._written.get(member, -1e18) > self.window_s / 2
        try:
            self._flush(now_s, force=fresh)
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # counting must not
            log.warning("could not note who was seen: %s", exc)  # fail the screen's update

    def count(self, now_s: float) -> int:
        """How many ids every process saw within the window (this one's written first)."""
        self._flush(now_s, force=True)
        return int(self.client.zcount(self.key, now_s - self.window_s, "+inf"))

    def _flush(self, now_s: float, force: bool) -> None:
        with self._lock:
            if not force and now_s - self._flushed < FLUSH_S:
                return
            batch, self._pending, self._flushed = self._pending, {}, now_s
            self._written.update(batch)
            horizon = now_s - self.window_s
            self._written = {m: t for m, t in self._written.items() if t > horizon}
        pipe = self.client.pipeline(transaction=False)
        if batch:
            pipe.zadd(self.key, batch)
        pipe.zremrangebyscore(self.key, "-inf", now_s - self.window_s)
        pipe.expire(self.key, max(1, int(self.window_s * 2)))
        try:
            pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError):
            with self._lock:  # written at the next flush; a newer sighting wins
                self._pending = {**batch, **self._pending}
            raise
