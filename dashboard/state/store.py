"""Reading the state from Redis: one pipelined read per tick, shared by all requests.

`StateCache` belongs to one web process (it is created by `create_app`, not
at import). Whatever number of browsers poll it, it reads Redis at most once
per `CITYBRAIN_CACHE_TTL_S`, and only re-reads the raw state when the
worker's version counter moved. When Redis is unreachable it keeps serving
the last view, marked stale, with the error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis

from dashboard.geography import Geography
from dashboard.kinds import REGISTERS
from dashboard.kinds.incident import OpenIncident
from dashboard.settings import Settings
from dashboard.state.change_read import ChangeReader
from dashboard.state.day_sums import DaysRead
from dashboard.state.view import (
    CityView,
    KnownRecords,
    RawState,
    RiskModel,
    build_view,
    day_names,
    decode_raw,
)
from dashboard.supervisor import children_report

log = logging.getLogger(__name__)

FEED_READ = 200


def read_raw(client: redis.Redis, settings: Settings, now: datetime,
             memo: KnownRecords | None = None, changes: ChangeReader | None = None,
             days_read: DaysRead | None = None) -> RawState:
    """One round trip: everything the view is built from.

    `memo`: see `decode_records`; `changes`: the open incidents and the registers are
    read by what changed since its last read (else every hash is read whole);
    `days_read`: see `decode_day`.
    """
    prefix = settings.state_prefix
    today, yesterday = day_names(now, settings.zone)
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(prefix + "day:" + today)
    pipe.hgetall(prefix + "day:" + yesterday)
    pipe.lrange(prefix + "feed", 0, FEED_READ - 1)
    pipe.hgetall(prefix + "stats")
    if changes is not None:
        changes.queue(pipe)
        today_fields, yesterday_fields, feed, stats, reply = pipe.execute()
        version = changes.take(reply)  # the version it all was read at
        return decode_raw(changes.incidents, today_fields, yesterday_fields,
                          changes.registers_by_kind(), feed, stats, version,
                          settings=settings, memo=memo, by_place=changes.by_place,
                          written=changes.written(),
                          changed_places=changes.changed_places, days_read=days_read,
                          day_keys=(today, yesterday))
    pipe.hgetall(prefix + "open")
    for kind in REGISTERS:
        pipe.hgetall(prefix + str(kind.register))
    pipe.get(prefix + "version")
    today_fields, yesterday_fields, feed, stats, open_incidents, *rest = pipe.execute()
    registers = {kind.name: rest[i] for i, kind in enumerate(REGISTERS)}
    incidents = {k.decode(): OpenIncident.decode(k.decode(), v) for k, v in open_incidents.items()}
    return decode_raw(incidents, today_fields, yesterday_fields, registers, feed, stats,
                      rest[-1], settings=settings, memo=memo, days_read=days_read,
                      day_keys=(today, yesterday))


class StateCache:
    """The current `CityView` of one process, refreshed at most once per TTL."""

    def __init__(self, settings: Settings, client: redis.Redis, geography: Geography,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock  # "now": what today, the last 24 h and overdue mean (tests move it)
        self.client = client
        self.geography = geography
        self.model = RiskModel.from_settings(settings)
        self._lock = threading.Lock()
        self._view: CityView | None = None
        self._raw = RawState()
        self._raw_day = ""
        self._read_at = 0.0
        self.reads = 0  # Redis reads done, for tests and benchmarks
        self._scoped_base: CityView | None = None
        self._scoped: dict[str, CityView] = {}
        # last read's decoded records: a read decodes what changed (and the view's
        # `known_risk` makes it score what changed)
        self._known_records: KnownRecords = {}
        self._known_days: DaysRead = {}  # the day hashes as last read (`decode_day`)
        # the open incidents and registers, read by what changed (a cluster: read whole)
        self._changes = None if settings.redis_cluster else ChangeReader(
            client, settings.state_prefix)

    def view(self) -> CityView:
        """The view of this tick; reads Redis only if the tick's view is not built yet."""
        with self._lock:
            if self._view is not None and time.monotonic() - self._read_at < (
                self.settings.cache_ttl_s
            ):
                return self._view
            now = datetime.fromtimestamp(self.clock(), self.settings.zone)  # every read: the
            error = None  # day rolls over at midnight without a reload
            try:
                self._refresh_raw(now)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                error = f"Redis unreachable: {exc}"
                log.warning("%s; serving the last known state", error)
            self._view = build_view(
                self._raw, self.geography, self.model, now, self.settings.stale_after_s,
                stale=error is not None, error=error,
                known=None if self._view is None else self._view.known_risk,
                known_open=None if self._view is None else self._view.known_open,
                known_days=None if self._view is None else self._view.known_days,
            )
            self._read_at = time.monotonic()
            return self._view

    def view_for(self, scope: str) -> CityView:
        """The tick's view restricted to a scope; built once per tick per scope."""
        base = self.view()
        with self._lock:
            if self._scoped_base is not base:
                self._scoped_base, self._scoped = base, {}
            view = self._scoped.get(scope)
            if view is None:
                view = self._scoped[scope] = base.restricted_to(scope)
            return view

    def _refresh_raw(self, now: datetime) -> None:
        day = now.strftime("%Y-%m-%d")
        version = int(self.client.get(self.settings.state_prefix + "version") or 0)
        self.reads += 1
        if version != self._raw.version or day != self._raw_day or version == 0:
            self._raw = read_raw(self.client, self.settings, now, self._known_records,
                                 self._changes, self._known_days)
            self._raw_day = day
            self.reads += 1


def health(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    """Redis reachability, stream length, lag, last apply time and counts.

    `children`: under `citybrain run`, each supervised process's state, pid, deaths
    and restarts.
    """
    report: dict[str, Any] = {"redis": "ok", "stream": settings.stream}
    try:
        pipe = client.pipeline(transaction=False)
        pipe.xlen(settings.stream)
        pipe.xlen(settings.dead_stream_key)
        pipe.hgetall(settings.state_prefix + "stats")
        pipe.hgetall(settings.state_prefix + "supervisor")
        length, dead_length, raw_stats, raw_children = pipe.execute()
        groups = client.xinfo_groups(settings.stream) if length or dead_length else []
    except redis.ResponseError:
        groups = []
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        return {"redis": "unreachable", "error": str(exc), "stream": settings.stream}
    stats = {k.decode(): v.decode() for k, v in raw_stats.items()}
    group = next((g for g in groups if _text(g["name"]) == settings.group), None)
    last_ms = int(stats.get("last_applied_ms", 0) or 0)
    report.update({
        "stream_length": length,
        "dead_letter_length": dead_length,
        "consumer_group": settings.group,
        "consumer_lag": None if group is None else _lag(client, settings.stream, group),
        "pending": None if group is None else group.get("pending"),
        "consumers": None if group is None else group.get("consumers"),
        "last_applied": (datetime.fromtimestamp(last_ms / 1000, settings.zone).isoformat(
            timespec="seconds") if last_ms else None),
        "seconds_since_last_applied": (
            round(time.time() - last_ms / 1000, 1) if last_ms else None),
        "applied": int(stats.get("applied", 0)),
        "duplicates": int(stats.get("duplicates", 0)),
        "audit_write_failures": int(stats.get("audit_write_failures", 0)),
        "dead_lettered": {k[5:]: int(v) for k, v in sorted(stats.items())
                          if k.startswith("dead:")},
        "children": children_report(raw_children),
    })
    return report


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


LAG_COUNT_LIMIT = 100_000


def _lag(client: redis.Redis, stream: str, group: dict[str, Any]) -> int | None:
    """Entries not yet delivered to the group: Redis 7 says; on 6.2 count them (capped)."""
    if group.get("lag") is not None:
        return int(group["lag"])
    last = _text(group["last-delivered-id"])
    return len(client.xrange(stream, min=f"({last}", max="+", count=LAG_COUNT_LIMIT))
