"""The audit log: who did what, when, from where.

Every entry is appended (and fsynced) to this process's hash-chained daily file
(`dashboard/audit`), the durable record, and then to a capped Redis stream, a
recent view for other systems. A failed file write is logged as an error and
counted; `required=True` (the actions that change an incident) then refuses with
503 rather than letting the action happen unaudited.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis
from werkzeug.exceptions import ServiceUnavailable

from dashboard.audit.reader import AuditQuery, AuditReader
from dashboard.audit.writer import AuditWriter, Written
from dashboard.auth.users import User
from dashboard.geography import Geography
from dashboard.settings import Settings

log = logging.getLogger(__name__)

FAILURES_FIELD = "audit_write_failures"  # in the `stats` hash, shown by /healthz


class AuditUnavailable(ServiceUnavailable):
    """The audit file cannot be written, so the action was not performed."""

    description = ("the audit log cannot be written, so the action was not performed; "
                   "try again later or tell the operators")


def heads_key(prefix: str, day: str) -> str:
    """The Redis hash of the last line written to each file of a day (checked by verify)."""
    return f"{prefix}audit:heads:{day}"


class Audit:
    """Appends to the audit files and stream of one city, and pages through the files."""

    def __init__(self, client: redis.Redis, prefix: str, writer: AuditWriter,
                 reader: AuditReader, stream_maxlen: int = 100_000) -> None:
        self.client = client
        self.prefix = prefix
        self.key = prefix + "audit"
        self.writer = writer
        self.reader = reader
        self.stream_maxlen = stream_maxlen
        self.keep_days = writer.keep_days
        self._lock = threading.Lock()
        self.failures = 0  # this process's failed writes (Redis counts all processes')

    @classmethod
    def build(cls, settings: Settings, client: redis.Redis, geography: Geography | None,
              clock: Any = time.time) -> Audit:
        """The audit log as the settings describe it."""
        folder = Path(settings.audit_path)
        return cls(client, settings.state_prefix,
                   AuditWriter(folder, settings.zone, settings.audit_keep_days, clock),
                   AuditReader(folder, settings.zone, geography), settings.audit_stream_maxlen)

    def record(self, user: User | None, address: str, action: str, target: str,
               detail: str = "", *, area: str = "", required: bool = False) -> None:
        """Append one entry to the file, then to the stream.

        A failed write is logged and counted; a failed file write with `required`
        raises `AuditUnavailable` (503) before anything else happens.
        """
        now_ms = int(self.writer.clock() * 1000)
        entry = {"ts": now_ms, "user": user.name if user else "",
                 "role": user.role if user else "", "address": address, "action": action,
                 "target": target, "area": area or self._area_of(target),
                 "detail": detail[:1000]}
        try:
            written: Written | None = self.writer.append(entry)
        except OSError as exc:
            self._failed("file", f"{self.writer.directory}: {exc}", entry)
            if required:
                raise AuditUnavailable() from exc
            written = None
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.xadd(self.key, {k: str(v) for k, v in entry.items()},
                      maxlen=self.stream_maxlen, approximate=True)
            if written is not None:
                heads = heads_key(self.prefix, written.day.isoformat())
                pipe.hset(heads, written.file, f"{written.n} {written.hash}")
                pipe.expire(heads, timedelta(days=self.keep_days + 2))
            pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._failed("redis", str(exc), entry)

    def _area_of(self, target: str) -> str:
        geography = self.reader.geography
        return target if geography is not None and target in geography.areas else ""

    def _failed(self, where: str, why: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self.failures += 1
        log.error("audit write failed (%s): %s; entry %s %s %s by %s", where, why,
                  entry["action"], entry["target"], entry["ts"], entry["user"] or "-")
        try:
            self.client.hincrby(self.prefix + "stats", FAILURES_FIELD, 1)
        except (redis.ConnectionError, redis.TimeoutError):
            log.error("audit write failure not counted in Redis either (unreachable)")

    def page(self, query: AuditQuery) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the whole retained history, newest first, and the next cursor."""
        return self.reader.page(query)

    def latest(self, count: int = 200) -> list[dict[str, Any]]:
        """The newest entries, newest first."""
        return self.page(AuditQuery(limit=count))[0]

