"""The audit log: who did what, when, from where; a capped Redis stream."""

from __future__ import annotations

import time
from typing import Any

import redis

from dashboard.auth.users import User

AUDIT_MAXLEN = 100_000


class Audit:
    """Appends to and reads the audit stream of one city."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.key = prefix + "audit"

    def record(self, user: User | None, address: str, action: str, target: str,
               detail: str = "") -> None:
        """Append one entry (never raises on a Redis outage: the action itself does)."""
        entry = {"ts": str(int(time.time() * 1000)), "user": user.name if user else "",
                 "role": user.role if user else "", "address": address, "action": action,
                 "target": target, "detail": detail[:1000]}
        try:
            self.client.xadd(self.key, entry, maxlen=AUDIT_MAXLEN, approximate=True)
        except (redis.ConnectionError, redis.TimeoutError):
            pass

    def latest(self, count: int = 200) -> list[dict[str, Any]]:
        """The newest entries, newest first."""
        return [{"id": entry_id.decode(), **{k.decode(): v.decode() for k, v in f.items()}}
                for entry_id, f in self.client.xrevrange(self.key, count=count)]
