"""The ingest worker: stream → validate → locate → apply to state in Redis.

Shape of rq's worker: `work(burst=True)` drains the stream and returns (tests
and benchmarks use it); SIGTERM finishes the current batch, a second signal
stops at once. Every batch is applied by one Lua script that also
acknowledges its entries, so an entry is acknowledged exactly when its effect
is stored; invalid entries are dead-lettered and acknowledged in one
MULTI/EXEC transaction.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from types import FrameType
from typing import Any

import orjson
import ormsgpack
import redis

from dashboard.geography import Geography
from dashboard.kinds import BY_NAME, REGISTERS
from dashboard.kinds.risk import order_model
from dashboard.metrics.worker import WorkerMetrics, kind_label
from dashboard.pipeline.consumer import Entry, StreamConsumer
from dashboard.pipeline.contract import Event, Rejection, parse_command
from dashboard.pipeline.validate import Located, PointMemo, check_batch, dead_letter
from dashboard.redis_conn import same_slot
from dashboard.routing import Routing, Rule, load_routing
from dashboard.settings import FALLBACK_SLA_MINUTES, Settings

log = logging.getLogger(__name__)

DAY_HASH_TTL_S = 8 * 86400  # per-day counters: a week of history and today
RANK_HASH_TTL_S = 400 * 86400  # the rankings' per-day counters: a year and a month back
_TIME_BUCKET_MS = 900_000  # zone offsets are whole quarter hours
TRIM_EVERY_S = 60.0
# While it works, the GIL passes to the Redis I/O threads within 0.5 ms (Python's default is
# 5 ms): otherwise a read or an apply that has its reply waits behind the validation of the
# next batch, and Redis and Python take turns instead of working at once.
SWITCH_INTERVAL_S = 0.0005
MAX_BACKOFF_S = 5.0  # longest wait between two attempts to reach Redis
# Redis away, restarting (LOADING is a ConnectionError) or failed over to a replica.
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ReadOnlyError)


@dataclass
class PreparedBatch:
    """A validated, located batch ready to apply."""

    rows: list[dict[str, object]]  # named records, one per event, for apply.lua
    ack: list[bytes]
    dead: list[tuple[Entry, Rejection]]
    now_ms: int
    kinds: list[str] = field(default_factory=list)  # each row's event kind


@dataclass
class BatchResult:
    """What one batch did."""

    applied: int = 0
    duplicates: int = 0
    dead: dict[str, int] = field(default_factory=dict)
    applied_kinds: dict[str, int] = field(default_factory=dict)
    duplicate_kinds: dict[str, int] = field(default_factory=dict)
    dead_kinds: dict[tuple[str, str], int] = field(default_factory=dict)  # (reason, kind)

    @property
    def total(self) -> int:
        """Entries handled."""
        return self.applied + self.duplicates + sum(self.dead.values())


class Worker:
    """Consumes the events stream into the city state."""

    def __init__(
        self, settings: Settings, client: redis.Redis, geography: Geography,
        name: str | None = None, registry: str | None = None,
        metrics: WorkerMetrics | None = None, clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock  # "now" (epoch seconds): validation, the closed-incident sweep
        # A replay's scratch namespace: the script lists every key it writes in this set.
        self.registry = registry
        self.client = client
        self.geography = geography
        self.consumer = StreamConsumer(
            client, settings.stream, settings.group,
            name or f"{socket.gethostname()}-{os.getpid()}",
        )
        # One atomic step (state + XACK) needs the stream and the state in one slot; on a
        # cluster where they are not, the ack follows the script (a crash between them
        # re-delivers the batch, which the remembered event ids make harmless).
        self.atomic = not settings.redis_cluster or same_slot(
            settings.stream, settings.dead_stream_key, settings.command_stream,
            settings.command_stream + ":dead", settings.state_prefix + "stats")
        self.commands = StreamConsumer(client, settings.command_stream, settings.group,
                                       self.consumer.name)
        self.commands_handled = 0
        self.joint_read = not settings.redis_cluster or same_slot(
            settings.stream, settings.command_stream)
        source = resources.files("dashboard.pipeline").joinpath("apply.lua").read_text()
        self.script = client.register_script(source)
        self.metrics = metrics  # counted by `commit` when given (the `citybrain worker` process)
        # Routing rules are checked here, at start: a bad file stops the worker (file:line).
        self.routing: Routing | None = load_routing(
            settings.routing_rules, geography, settings.departments,
        ) if settings.routing_rules else None
        # How the script scores a group's level (risk: an area's indicators), by register.
        self.group_models = {kind.register: model for kind in REGISTERS
                             if (model := kind.group_model(settings)) is not None}
        self.risk_orders = order_model(settings)  # 未诉先办 (None: off)
        self._order_places: dict[str, dict[str, Any]] = {}
        self._case_routes: dict[tuple[str, str], str] = {}  # (category, street) -> route
        self._streets: dict[str, str] = {}  # area -> `responsible` (the geography is fixed)
        self._stop_requested = False
        self._wake = threading.Event()  # set by a stop signal: ends a wait for Redis
        self._day_cache: dict[int, tuple[str, str]] = {}
        self._points = PointMemo()
        self._last_claim = 0.0
        self._last_trim = 0.0

    # ---- one batch -------------------------------------------------------

    def process(self, entries: Sequence[Entry]) -> BatchResult:
        """Validate, locate and apply a batch of entries, acknowledging all of them."""
        return self.commit(self.prepare(entries))

    def prepare(self, entries: Sequence[Entry]) -> PreparedBatch:
        """Validate and locate a batch (pure Python; touches no state)."""
        now_ms = int(self.clock() * 1000)
        checked = check_batch([entry[1] for entry in entries], self.geography, now_ms,
                              self.settings.max_future_s * 1000, self._points)
        valid = sum(isinstance(c, Located) for c in checked)
        rows: list[dict[str, object]] = []
        ack: list[bytes] = []
        dead: list[tuple[Entry, Rejection]] = []
        kinds: list[str] = []
        # Only the newest events of a batch can reach the live feed: skip the others' JSON.
        feed_from = valid - self.settings.feed_size - 50
        for entry, result in zip(entries, checked, strict=True):
            if isinstance(result, Rejection):
                dead.append((entry, result))
                continue
            rows.append(self._row(result.event, result.area, len(ack) >= feed_from))
            ack.append(entry[0])
            kinds.append(result.event.kind)
        return PreparedBatch(rows, ack, dead, now_ms, kinds)

    def prepare_commands(self, entries: Sequence[Entry]) -> PreparedBatch:
        """Validate officials' actions; one on an incident the state does not know is dead."""
        now_ms = int(self.clock() * 1000)
        verify = self.settings.verify != "off"
        parsed = [(entry, parse_command(entry[1], now_ms, self.settings.max_future_s * 1000,
                                        verify, self.settings.followup_reopens))
                  for entry in entries]
        wanted = [e.data["incident_id"] for _, e in parsed if isinstance(e, Event)]
        known = set()
        if wanted:
            records = self.client.hmget(self.settings.state_prefix + "inc", wanted)
            known = {iid for iid, record in zip(wanted, records, strict=True) if record}
        prepared = PreparedBatch([], [], [], now_ms)
        for entry, event in parsed:
            if isinstance(event, Event) and event.data["incident_id"] not in known:
                event = Rejection("unknown_incident", "no incident "
                                  f"{event.data['incident_id']!r} is known to the cockpit")
            if isinstance(event, Rejection):
                prepared.dead.append((entry, event))
            else:
                prepared.rows.append(self._row(event, ""))
                prepared.ack.append(entry[0])
                prepared.kinds.append("command")
        return prepared

    def process_commands(self, entries: Sequence[Entry]) -> BatchResult:
        """Apply officials' actions from the command stream (low volume, one batch)."""
        stream = self.settings.command_stream
        result = self.commit(self.prepare_commands(entries), stream, stream + ":dead")
        self.commands_handled += result.total
        return result

    def _read_all(self, count: int, block: int | None) -> list[Entry]:
        """Read events and commands in one wait; apply the commands at once."""
        if self.joint_read:
            events, commands = self.consumer.read_with(self.commands, count, block)
        else:  # a cluster with the streams in two slots: two reads
            commands = self.commands.read(count, None)
            events = self.consumer.read(count, block)
        if commands:
            self.process_commands(commands)
        return events

    def commit(self, prepared: PreparedBatch, stream: str | None = None,
               dead_stream: str | None = None) -> BatchResult:
        """Apply a prepared batch and dead-letter its invalid entries, acknowledging all."""
        started = time.perf_counter()
        result = BatchResult()
        if prepared.rows:
            result.applied, result.duplicates, dup_at = self._apply(
                prepared.rows, prepared.ack, prepared.now_ms, stream)
            duplicates = set(dup_at)
            for i, kind in enumerate(prepared.kinds):
                counts = result.duplicate_kinds if i in duplicates else result.applied_kinds
                counts[kind] = counts.get(kind, 0) + 1
        if prepared.dead:
            self._dead_letter(prepared.dead, stream, dead_stream)
            for (_, fields), rejection in prepared.dead:
                result.dead[rejection.reason] = result.dead.get(rejection.reason, 0) + 1
                key = (rejection.reason, kind_label(fields.get(b"kind")))
                result.dead_kinds[key] = result.dead_kinds.get(key, 0) + 1
        if self.metrics is not None and (prepared.rows or prepared.dead):
            self.metrics.observe(result, time.perf_counter() - started)
        return result

    def day_hour(self, ts: int) -> tuple[str, str]:
        """The city's day (YYYY-MM-DD) and hour (HH) of an event time."""
        bucket = ts // _TIME_BUCKET_MS
        cached = self._day_cache.get(bucket)
        if cached is None:
            if len(self._day_cache) > 4096:
                self._day_cache.clear()
            moment = datetime.fromtimestamp(ts / 1000, self.settings.zone)
            cached = (moment.strftime("%Y-%m-%d"), moment.strftime("%H"))
            self._day_cache[bucket] = cached
        return cached

    def responsible(self, area: str) -> str:
        """The street an area lies in (its district where there are none; else the city)."""
        street = self._streets.get(area)
        if street is None:
            street = self._streets[area] = self.geography.responsible(area)
        return street

    def route(self, category: str, area: str, severity: str) -> Rule | None:
        """The routing rule for a new incident without a department (None: no rule)."""
        return None if self.routing is None else self.routing.route(category, area, severity)

    def case_route(self, category: str, street: str) -> str:
        """Where a 未诉先办 hotspot case of `category` in `street` goes.

        Its routing rule without a severity, as department, SLA and note separated by tabs;
        "" without a rule or with hotspots off.
        """
        if not self.settings.hotspot_reports or self.routing is None:
            return ""
        key = (category, street)
        cached = self._case_routes.get(key)
        if cached is None:
            rule = self.route(category, street, "")
            cached = self._case_routes[key] = "" if rule is None else "\t".join((
                rule.department,
                repr(float(rule.sla_minutes)) if rule.sla_minutes is not None else "",
                rule.describe()))
        return cached

    def order_place(self, area: str, ts: int) -> dict[str, Any]:
        """Where a risk work order of `area` goes: street, centroid, day, department, name.

        The department and SLA are the routing rule's for category `risk_order` (rows
        without a severity), none without one; the area's part is remembered per area.
        """
        place = self._order_places.get(area)
        if place is None:
            known = area in self.geography.areas
            rule = self.route("risk_order", area, "")
            place = self._order_places[area] = {
                "str": self.responsible(area),
                "lon": round(self.geography.areas[area].lon, 6) if known else "",
                "lat": round(self.geography.areas[area].lat, 6) if known else "",
                "dept": rule.department if rule else "",
                "sla": repr(float(rule.sla_minutes)) if rule and rule.sla_minutes else "",
                "n": self.geography.name(area, self.settings.lang) if known else area}
        day, hour = self.day_hour(ts)
        return {**place, "day": day, "hour": hour}

    def _row(self, event: Event, area: str, in_feed: bool = True) -> dict[str, object]:
        """The event as a named record for the script: the common part and its kind's."""
        kind = BY_NAME["incident" if event.kind == "command" else event.kind]
        feed = orjson.dumps({"id": event.event_id, "kind": event.kind, "ts": event.ts,
                             "area": area, **event.data}).decode() if (
            in_feed and kind.feeds(event.data, self.settings)) else ""
        row = kind.row(event, area, feed, self)
        row["id"], row["key"], row["ts"] = (event.event_id, f"{event.ts:015d}|{event.event_id}",
                                            event.ts)
        if feed:  # (the script reads a field left out as '')
            row["feed"] = feed
        return row

    def _apply(self, rows: list[dict[str, object]], ack: list[bytes], now_ms: int,
               stream: str | None = None) -> tuple[int, int, list[int]]:
        """Apply rows in one script call: applied, duplicates, the duplicates' positions."""
        stream = stream or self.settings.stream
        payload = ormsgpack.packb({
            "p": self.settings.state_prefix,
            "ttl": self.settings.dedup_ttl_s,
            "sb": min(3600, self.settings.dedup_ttl_s) * 1000,
            "keep": self.settings.closed_keep_s,
            "dayttl": DAY_HASH_TTL_S,
            "rkttl": RANK_HASH_TTL_S,
            "rw": self.settings.response_minutes * 60000,
            "mm": self.settings.merge_metres,
            "mw": self.settings.merge_minutes * 60000,
            "hk": self.settings.hotspot_reports,
            "hm": self.settings.hotspot_metres,
            "hd": self.settings.hotspot_days,
            "sla": self.settings.sla_minutes,
            "fb": FALLBACK_SLA_MINUTES,
            "root": self.geography.root_id,
            "feed": self.settings.feed_size,
            "now": now_ms,
            "ev": rows,
            "gm": self.group_models,
            **({"ro": self.risk_orders} if self.risk_orders else {}),
            **({"reg": self.registry} if self.registry else {}),
        })
        try:
            if self.atomic:
                applied, dups, dup_at = self.script(
                    keys=[stream], args=[self.settings.group, payload, *ack])
            else:
                applied, dups, dup_at = self.script(
                    keys=[self.settings.state_prefix + "stats"], args=[self.settings.group,
                                                                      payload])
                if ack:
                    self.client.xack(stream, self.settings.group, *ack)
        except redis.ResponseError:
            if len(rows) == 1:
                raise
            log.exception("batch of %d failed to apply; applying one by one", len(rows))
            applied = dups = 0
            positions: list[int] = []
            for i, (row, entry_id) in enumerate(zip(rows, ack, strict=True)):
                a, d, at = self._apply([row], [entry_id], now_ms, stream)
                applied, dups = applied + a, dups + d
                positions.extend(i + p for p in at)
            return applied, dups, positions
        return int(applied), int(dups), [int(p) - 1 for p in dup_at]

    def _dead_letter(self, dead: list[tuple[Entry, Rejection]], stream: str | None = None,
                     dead_stream: str | None = None) -> None:
        stream = stream or self.settings.stream
        dead_stream = dead_stream or self.settings.dead_stream_key
        pipe = self.client.pipeline(transaction=self.atomic)
        for (entry_id, fields), rejection in dead:
            dead_letter(pipe, self.settings, fields, rejection, dead_stream,
                        dead_entry_id=entry_id)
        pipe.xack(stream, self.settings.group, *(e[0][0] for e in dead))
        pipe.execute()
        for (entry_id, fields), rejection in dead:
            event_id = fields.get(b"event_id", b"").decode(errors="replace")[:64] or None
            log.info("dead-lettered %s: %s (%s)", entry_id.decode(), rejection.reason,
                     rejection.detail,
                     extra={"event_id": event_id, "dead_reason": rejection.reason})

    # ---- the loop ----------------------------------------------------------

    def work(self, burst: bool = False) -> int:
        """Consume until stopped (or, with `burst`, until the stream is drained).

        Outside `burst` a Redis outage of any length is waited out (logged, retried
        with backoff): the worker never exits on its own.
        """
        if not burst:
            self._install_signals()
        previous = sys.getswitchinterval()
        sys.setswitchinterval(min(previous, SWITCH_INTERVAL_S))
        try:
            return self._work(burst)
        finally:
            sys.setswitchinterval(previous)

    def _work(self, burst: bool) -> int:
        handled = 0
        batch = self.settings.batch
        block = None if burst else self.settings.block_ms
        backoff = 0.1
        entries = self._start(burst)
        # Three stages at once: Redis reads batch N+2 and applies batch N (on its own
        # core) while this thread validates batch N+1.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="redis-io") as io:
            reading: Future[list[Entry]] | None = None
            in_flight: Future[BatchResult] | None = None
            while not self._stop_requested:
                try:
                    if not entries:
                        reading = reading or io.submit(self._read_all, batch, block)
                        entries, reading = reading.result(), None
                    if entries and reading is None:
                        reading = io.submit(self._read_all, batch, block)
                    prepared = self.prepare(entries) if entries else None
                    if in_flight is not None:
                        handled += in_flight.result().total
                        in_flight = None
                    if prepared is not None:
                        in_flight = io.submit(self.commit, prepared)
                    elif burst:
                        break
                    # Nothing of ours is in flight now, so a claim cannot take our own batch.
                    entries = self._claim_stuck(batch)
                    if not burst:
                        self._trim()
                    backoff = 0.1
                except REDIS_DOWN as exc:
                    reading = in_flight = None
                    if burst:
                        raise
                    backoff = self._pause(exc, backoff)
                    entries = self._recover_pending(batch)
            if in_flight is not None:
                handled += in_flight.result().total
            if reading is not None and (left := reading.result()):
                handled += self.process(left).total  # read already: finish it before exiting
        while burst and (commands := self.commands.read(batch, None)):
            self.process_commands(commands)
        return handled

    def _start(self, burst: bool) -> list[Entry]:
        """Create the groups, apply our own pending commands; our own pending events.

        Waits for Redis (outside `burst`) when it is unreachable at start.
        """
        backoff = 0.1
        while not self._stop_requested:
            try:
                self.consumer.create()
                self.commands.create()
                if own_commands := self.commands.pending_own(self.settings.batch):
                    self.process_commands(own_commands)
                return self.consumer.pending_own(self.settings.batch)
            except REDIS_DOWN as exc:
                if burst:
                    raise
                backoff = self._pause(exc, backoff)
        return []

    def _pause(self, exc: Exception, backoff: float) -> float:
        """Log an outage and wait `backoff` seconds (a stop signal cuts it short); the next."""
        log.error("Redis unreachable (%s); retrying in %.1fs", exc, backoff)
        self._wake.wait(backoff)
        return min(backoff * 2, MAX_BACKOFF_S)

    def _recover_pending(self, count: int) -> list[Entry]:
        try:
            self.consumer.create()
            return self.consumer.pending_own(count)
        except REDIS_DOWN:
            return []

    def _claim_stuck(self, count: int) -> list[Entry]:
        now = time.monotonic()
        if now - self._last_claim < self.settings.claim_idle_ms / 4000:
            return []
        self._last_claim = now
        if stuck_commands := self.commands.claim_stuck(self.settings.claim_idle_ms, count):
            self.process_commands(stuck_commands)
        claimed = self.consumer.claim_stuck(self.settings.claim_idle_ms, count)
        if claimed:
            log.warning("claimed %d entries left pending by a stopped worker", len(claimed))
        return claimed

    def _trim(self) -> None:
        """Trim the event and command streams by age, never past an entry not yet applied.

        Their dead-letter streams are trimmed by age and length.
        """
        now = time.monotonic()
        if now - self._last_trim < TRIM_EVERY_S:
            return
        self._last_trim = now
        retention_ms = self.settings.retention_s * 1000
        dead_streams = (self.settings.dead_stream_key, self.settings.command_stream + ":dead")
        if retention_ms:
            before_ms = int(time.time() * 1000) - retention_ms  # stream ids: real time
            for consumer in (self.consumer, self.commands):
                if removed := consumer.trim_before(before_ms):
                    log.info("trimmed %d entries older than %d from %s", removed, before_ms,
                             consumer.stream)
            for dead_stream in dead_streams:
                self.client.xtrim(dead_stream, minid=f"{before_ms}-0", approximate=False)
        for dead_stream in dead_streams:
            self.client.xtrim(dead_stream, maxlen=self.settings.dead_maxlen, approximate=False)

    def _install_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            if self._stop_requested:
                raise SystemExit(1)
            log.info("signal %d: finishing the current batch", signum)
            self._stop_requested = True
            self._wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
