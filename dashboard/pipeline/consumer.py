"""A reliable Redis-stream consumer: group, read, ack, claim (walrus-style)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

import redis

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]
_TRIM_SCRIPT = resources.files("dashboard.pipeline").joinpath("trim.lua").read_text()


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

    def read_with(self, other: StreamConsumer, count: int,
                  block_ms: int | None) -> tuple[list[Entry], list[Entry]]:
        """New entries of this stream and of `other` (same group and name), in one wait."""
        try:
            reply = self.client.xreadgroup(self.group, self.name, {self.stream: ">",
                                                                   other.stream: ">"},
                                           count=count, block=block_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.create()
            other.create()
            return [], []
        found: dict[str, list[Entry]] = {}
        for stream, entries in reply or []:
            found[_text(stream)] = [(i, f) for i, f in entries if f is not None]
        return found.get(self.stream, []), found.get(other.stream, [])

    def claim_stuck(self, min_idle_ms: int, count: int) -> list[Entry]:
        """Take over entries other consumers left pending for `min_idle_ms`.

        Like XAUTOCLAIM, but never our own entries: a batch we have read ahead
        and not yet applied must not come back to us a second time.
        """
        stuck = self.client.xpending_range(
            self.stream, self.group, min="-", max="+", count=count, idle=min_idle_ms)
        mine = self.name.encode()
        ids = [p["message_id"] for p in stuck if _bytes(p["consumer"]) != mine]
        if not ids:
            return []
        claimed = self.client.xclaim(self.stream, self.group, self.name, min_idle_ms, ids)
        gone = [entry_id for entry_id, fields in claimed if not fields]
        if gone:  # deleted (trimmed) while pending: nothing to apply
            self.client.xack(self.stream, self.group, *gone)
        return [(entry_id, fields) for entry_id, fields in claimed if fields]

    def trim_before(self, before_ms: int) -> int:
        """Drop entries older than `before_ms`, keeping all not yet read or acknowledged.

        One script decides and trims atomically: a check (XINFO, XPENDING) followed by
        a separate trim would race the acknowledgements of a worker reading ahead.
        """
        script = self.client.register_script(_TRIM_SCRIPT)
        return int(script(keys=[self.stream], args=[f"{before_ms}-0"]))

    def lag(self) -> int | None:
        """Entries in the stream not yet delivered to the group (Redis 7+), or None."""
        for info in self.client.xinfo_groups(self.stream):
            if _text(info["name"]) == self.group:
                return info.get("lag")
        return None


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
