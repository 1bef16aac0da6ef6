"""A reliable Redis-stream consumer: group, read, ack, claim (walrus-style)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]


@dataclass
class StreamConsumer:
    """One consumer of one group on one stream."""

    client: redis.Redis
    stream: str
    group: str
    name: str

    def create(self) -> None:
        """Create the group (and the stream) if missing; reading starts at the oldest entry."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            log.info("created consumer group %s on %s", self.group, self.stream)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def pending_own(self, count: int) -> list[Entry]:
        """Entries delivered to this consumer and not acknowledged (after a restart)."""
        return self._read("0", count, None)

    def read(self, count: int, block_ms: int | None) -> list[Entry]:
        """New entries, waiting up to `block_ms` for them."""
        return self._read(">", count, block_ms)

    def _read(self, start: str, count: int, block_ms: int | None) -> list[Entry]:
        try:
            reply = self.client.xreadgroup(
                self.group, self.name, {self.stream: start}, count=count, block=block_ms
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("group %s vanished from %s; creating it again", self.group, self.stream)
            self.create()
            return []
        if not reply:
            return []
        entries = reply[0][1]
        # A deleted entry that is still pending comes back with no fields: ack it away.
        gone = [entry_id for entry_id, fields in entries if fields is None]
        if gone:
            self.client.xack(self.stream, self.group, *gone)
        return [(entry_id, fields) for entry_id, fields in entries if fields is not None]

    def autoclaim(self, min_idle_ms: int, count: int) -> list[Entry]:
        """Take over entries another consumer left pending for `min_idle_ms`."""
        reply = self.client.xautoclaim(
            self.stream, self.group, self.name, min_idle_time=min_idle_ms, start_id="0-0",
            count=count,
        )
        entries = reply[1] if reply else []
        return [(entry_id, fields) for entry_id, fields in entries if fields]

    def lag(self) -> int | None:
        """Entries in the stream not yet delivered to the group (Redis 7+), or None."""
        for info in self.client.xinfo_groups(self.stream):
            name = info["name"]
            if (name.decode() if isinstance(name, bytes) else name) == self.group:
                return info.get("lag")
        return None
