"""The fan-out: one read of the state per change, one message per topic, sent to every screen.

A topic is what a screen shows: (scope, area, language). The hub waits on the
worker's change log (a blocking read, woken by the change, at most `CHECK_S`), then
reads the version counter (one GET, whatever the number of screens); when it moved,
a new screen waits, or `ROUND_S` passed (the clock, staleness), it builds the view once
(`StateCache`), and for each topic the frame (restricted to the topic's scope) and
the update since the topic's last message (`screen.update.changes`, the polling
tick's own function), encoded once as a server-sent event and queued for each of its
screens. A screen that is new, or resumes from another message than the topic's
last, gets a snapshot first. Every round also checks, in one script call, that the
sessions of the open streams still live: a signed-out screen's stream ends.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from dashboard.auth.identity import User
from dashboard.geography import Geography
from dashboard.metrics.presence import SeenBuffer
from dashboard.push.message import (
    ALL_LAYERS,
    encode,
    held_values,
    props,
    sig_patch,
    small_update,
)
from dashboard.screen.frame import frame_for
from dashboard.screen.update import changes
from dashboard.settings import Settings
from dashboard.state.store import StateCache

log = logging.getLogger(__name__)

CHECK_S = 0.05  # the longest wait for a change before the version is read again
ROUND_S = 1.0  # a round at least this often (the "as of" clock, staleness)
TOPIC_KEEP_S = 60.0  # a topic without screens is kept this long, so a reconnect resumes
DELIVERED_KEEP = 200_000  # delivery samples kept for `/push/healthz`
QUEUE_LIMIT = 64  # a screen this far behind is dropped (it reconnects with a snapshot)

# KEYS: session hashes; returns the 1-based positions of those that no longer exist.
_GONE = """
local gone = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 0 then gone[#gone + 1] = i end
end
return gone
"""

Topic = tuple[str, str, str]  # scope, area, language
Delivery = tuple[bytes, float | None]  # a message, and when the state it shows changed (ms)


@dataclass(eq=False)
class Screen:
    """One open stream: who, what it shows, and the queue its messages go to."""

    user: User
    sid: str | None
    viewer: str
    topic: Topic
    queue: asyncio.Queue[Delivery | None]
    loop: asyncio.AbstractEventLoop
    resume: str | None = None  # the last message id it holds (Last-Event-ID)
    pending: int = 0  # messages queued and not yet taken


@dataclass
class TopicState:
    """A topic's last message: its id and the signature its screens hold after it."""

    sig: dict[str, Any] | None = None
    held: dict[tuple[str, str], Any] = field(default_factory=dict)  # what its screens show
    last_id: str = ""
    screens: set[Screen] = field(default_factory=set)
    idle_since: float | None = None


@dataclass
class Stats:
    """Numbers for the beacon, `/push/healthz` and the benchmark."""

    rounds: int = 0
    messages: int = 0  # topic messages built (each sent to all of a topic's screens)
    sent: int = 0  # messages queued to screens
    redis_calls: int = 0
    dropped: int = 0
    ended: int = 0  # streams ended because their session ended
    latency_ms: list[float] = field(default_factory=list)  # state read -> queued, per round
    # (when, ms) per message written to a screen: state change seen -> message sent
    delivered: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=DELIVERED_KEEP))

    def rounds_ms(self) -> dict[str, float | None]:
        """p50/p95 of the last rounds' time (state read -> messages queued)."""
        values = sorted(self.latency_ms[-500:])
        if not values:
            return {"p50_ms": None, "p95_ms": None}
        return {"p50_ms": round(values[len(values) // 2], 1),
                "p95_ms": round(values[int(0.95 * (len(values) - 1))], 1)}

    def delivery(self, window_s: float = 15.0) -> dict[str, float | int | None]:
        """p50/p95/max of state change -> message written, over the last `window_s`."""
        since = time.monotonic() - window_s
        values = sorted(ms for at, ms in list(self.delivered) if at >= since)
        if not values:
            return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
        return {"n": len(values), "p50_ms": round(values[len(values) // 2], 1),
                "p95_ms": round(values[int(0.95 * (len(values) - 1))], 1),
                "max_ms": round(values[-1], 1)}


class Hub:
    """The screens of one push process and the loop that feeds them."""

    def __init__(self, settings: Settings, client: redis.Redis, geography: Geography,
                 screens_seen: SeenBuffer | None = None,
                 open_mode: Callable[[], bool] = lambda: False) -> None:
        self.settings = settings
        self.client = client
        self.geography = geography
        self.cache = StateCache(settings.replace(cache_ttl_s=1e-6), client, geography)
        self.screens_seen = screens_seen
        self.open_mode = open_mode
        self.epoch = secrets.token_hex(4)  # message ids of another run never match
        self.stats = Stats()
        self._gone = client.register_script(_GONE)
        self._lock = threading.Lock()
        self._topics: dict[Topic, TopicState] = {}
        self._round = 0
        self._version: bytes | None = None
        self._last_round = -1e9
        self._last_seen = -1e9
        self._snapshots_due = False
        self._change_id: bytes | None = None  # the change log's last entry seen

    # --- called from the event loop ------------------------------------------------------

    def subscribe(self, screen: Screen) -> None:
        """Add a screen; it gets a snapshot at the next round unless it resumes in step."""
        with self._lock:
            state = self._topics.setdefault(screen.topic, TopicState())
            state.screens.add(screen)
            state.idle_since = None
            if not (screen.resume and screen.resume == state.last_id and state.sig):
                screen.resume = None
                self._snapshots_due = True

    def unsubscribe(self, screen: Screen) -> None:
        """Forget a screen whose stream ended."""
        with self._lock:
            state = self._topics.get(screen.topic)
            if state is not None:
                state.screens.discard(screen)
                if not state.screens:
                    state.idle_since = time.monotonic()

    def streams(self) -> int:
        """Open streams."""
        with self._lock:
            return sum(len(s.screens) for s in self._topics.values())

    # --- the hub's own thread ------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Check and send until `stop` is set."""
        while not stop.is_set():
            try:
                ran = self.step()
            except Exception:  # one bad round must not end every stream; logged
                log.exception("push round failed")
                stop.wait(ROUND_S)
                continue
            # After a round a pause, as before: rounds as fast as changes come sent a
            # page that draws its map in software twice the messages, and it fell behind
            # (bench/screen.py p95 480-703 ms against 393-454). Idle, a change wakes it.
            if ran or self.await_change(CHECK_S) is None:
                stop.wait(CHECK_S)

    def await_change(self, block_s: float) -> bool | None:
        """Wait until the worker logs a change (True) or `block_s` passed (False).

        A blocking read of the change log from the last entry seen, so a change is taken
        up as soon as it is written, not at the next check; the wait stays short for the
        new screens, the round clock and `stop`. None when Redis could not be asked.
        """
        key = self.settings.state_prefix + "chg"
        try:
            if self._change_id is None:  # from the newest entry (0-0: the log is empty)
                newest = self.client.xrevrange(key, count=1)
                self._change_id = newest[0][0] if newest else b"0-0"
            # the newest entry when woken: the round reads every version up to now
            woken, newest = (self.client.pipeline(transaction=False)
                             .xread({key: self._change_id}, count=1,
                                    block=max(1, int(block_s * 1000)))
                             .xrevrange(key, count=1).execute())
        except (redis.ConnectionError, redis.TimeoutError):
            self._change_id = None  # a restarted Redis: its log's newest entry again
            return None
        if not woken:
            return False
        self._change_id = newest[0][0] if newest else woken[0][1][-1][0]
        return True

    def step(self, force: bool = False) -> bool:
        """Read the version; run a round if it moved, a screen waits or `ROUND_S` passed."""
        now = time.monotonic()
        prefix = self.settings.state_prefix
        changed_ms = None
        try:  # one round trip: the version, and when the worker last applied
            version, applied = (self.client.pipeline(transaction=False).get(prefix + "version")
                                .hget(prefix + "stats", "last_applied_ms").execute())
            self.stats.redis_calls += 1
            changed_ms = float(applied) if applied and version != self._version else None
        except (redis.ConnectionError, redis.TimeoutError):
            version = self._version  # the round shows the stale state once per ROUND_S
        if not (force or self._snapshots_due or version != self._version
                or now - self._last_round >= ROUND_S):
            return False
        self._version = version
        self._last_round = now
        self.round(changed_ms)
        return True

    def round(self, changed_ms: float | None = None) -> None:
        """Build each topic's message once and queue it for the topic's screens."""
        started = time.perf_counter()
        view = self.cache.view()
        self.stats.redis_calls += 2  # the version again, and the state when it moved
        self._round += 1
        message_id = f"{self.epoch}-{self._round}"
        with self._lock:
            self._snapshots_due = False
            topics = list(self._topics.items())
        ended = self._ended_sessions(topics)
        deliveries: dict[asyncio.AbstractEventLoop, list[tuple[Screen, Delivery | None]]] = {}
        for screen in ended:  # their streams end now, whatever else happens
            deliveries.setdefault(screen.loop, []).append((screen, None))
        scoped: dict[str, Any] = {}
        for topic, state in topics:
            if not state.screens:
                if state.idle_since and time.monotonic() - state.idle_since > TOPIC_KEEP_S:
                    with self._lock:
                        if not state.screens:
                            self._topics.pop(topic, None)
                continue
            scope, area, lang = topic
            if scope not in scoped:  # one restricted view per scope and round
                scoped[scope] = view.restricted_to(scope)
            frame = frame_for(scoped[scope], area, lang, self.settings.escalate_factor)
            key = f"{area}|{lang}"
            screens = [s for s in state.screens if s not in ended]
            fresh = [s for s in screens if s.resume is None]
            update = None
            if state.sig is not None and len(fresh) < len(screens):
                outputs = changes(frame, key, state.sig, ALL_LAYERS, self.settings,
                                  self.geography)
                changed = small_update(state.held, frame, outputs, self.settings,
                                       self.geography)
                if changed is None:  # the map's traces changed in number: a snapshot
                    fresh = screens
                    for screen in screens:
                        screen.resume = None
                elif changed:
                    changed["tick-sig"] = {"data": sig_patch(state.sig, outputs["sig"])}
                    update = encode(message_id, {"key": key, "props": changed})
                    self.stats.messages += 1
                new_sig = outputs["sig"]
            snapshot = None
            if fresh or state.sig is None:
                outputs = changes(frame, key, None, ALL_LAYERS, self.settings, self.geography)
                full = props(outputs)
                full["tick-sig"] = {"data": outputs["sig"]}
                snapshot = encode(message_id, {"key": key, "props": full, "snapshot": True,
                                               "owners": frame.trace_layers}, retry=True)
                state.held = held_values(full)
                new_sig = outputs["sig"]
                self.stats.messages += 1
            if update is None and snapshot is None:
                continue
            state.sig = new_sig
            state.last_id = message_id
            for screen in screens:
                if screen.resume is None:
                    data, screen.resume = snapshot, message_id
                else:
                    data = update
                if data is not None:
                    deliveries.setdefault(screen.loop, []).append((screen, (data, changed_ms)))
        for loop, batch in deliveries.items():
            self.stats.sent += len(batch)
            loop.call_soon_threadsafe(_deliver, batch, self.stats)
        self.stats.rounds += 1
        self.stats.latency_ms.append((time.perf_counter() - started) * 1000)
        del self.stats.latency_ms[:-2000]
        self._note_seen(topics)

    def _ended_sessions(self, topics: list[tuple[Topic, TopicState]]) -> set[Screen]:
        """The screens whose session ended (one script call for all of them)."""
        screens = [s for _, state in topics for s in state.screens]
        demo = [s for s in screens if s.sid is None and s.user.name == "demo"]
        ended: set[Screen] = set()
        if demo and not self.open_mode():  # accounts were created: the demo is over
            ended.update(demo)
        signed = [s for s in screens if s.sid is not None]
        if not signed:
            return ended
        keys = sorted({f"{self.settings.state_prefix}session:{s.sid}" for s in signed})
        try:
            gone = {keys[i - 1] for i in self._gone(keys=keys)}
            self.stats.redis_calls += 1
        except (redis.ConnectionError, redis.TimeoutError):
            return ended  # unknown: the streams go on showing the (stale) state
        ended.update(s for s in signed
                     if f"{self.settings.state_prefix}session:{s.sid}" in gone)
        self.stats.ended += len(ended)
        return ended

    def _note_seen(self, topics: list[tuple[Topic, TopicState]]) -> None:
        """Count the push screens among the connected ones (once per `ROUND_S`)."""
        now = time.time()
        if self.screens_seen is None or now - self._last_seen < ROUND_S:
            return
        self._last_seen = now
        for _, state in topics:
            for screen in list(state.screens):
                self.screens_seen.seen(screen.viewer, now)


def _deliver(batch: list[tuple[Screen, Delivery | None]], stats: Stats) -> None:
    """Queue each screen's message (on the event loop); end streams whose session ended."""
    for screen, data in batch:
        if data is not None and screen.pending >= QUEUE_LIMIT:
            stats.dropped += 1
            data = None  # too far behind: end it; the browser reconnects with a snapshot
        if data is not None:
            screen.pending += 1
        screen.queue.put_nowait(data)

