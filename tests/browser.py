"""Helpers of the browser tests and the screen benchmark: Chromium, a live server, a worker."""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import redis
from playwright.sync_api import Error as PlaywrightError
from werkzeug.serving import make_server

from dashboard.geography import Geography
from dashboard.pipeline.worker import Worker
from dashboard.settings import Settings
from tests.events import incident, now_ms, risk, traffic

CHROMIUM = os.environ.get("CITYBRAIN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def chromium_available() -> bool:
    """Whether Debian's Chromium is installed where the tests look for it."""
    return Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)


def need_chromium() -> None:
    """Skip without Chromium, but fail in CI, where the browser tests must run."""
    import pytest

    if chromium_available():
        return
    if os.environ.get("CI"):
        pytest.fail(f"no Chromium at {CHROMIUM}: run scripts/system-deps")
    pytest.skip(f"no Chromium at {CHROMIUM}")


@dataclass(frozen=True)
class Allowed:
    """A console message a browser test may log: a regular expression and why it is expected."""

    pattern: str
    reason: str

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError(f"say why the console message {self.pattern!r} is expected")

    def matches(self, message: str) -> bool:
        """Whether the message is this expected one."""
        return re.search(self.pattern, message) is not None


# Console errors any browser test may log, each with its reason. Keep it empty: a test
# that provokes an error on purpose says so with `@pytest.mark.allow_console(...)`.
ALLOWED: tuple[Allowed, ...] = ()


class ConsoleLog:
    """Console errors and uncaught exceptions of every page of the contexts it watches."""

    def __init__(self) -> None:
        self._entries: list[str] = []
        self._contexts: list = []  # type: ignore[type-arg]

    def watch(self, context) -> None:  # type: ignore[no-untyped-def]
        """Record the context's console errors and page errors from now on."""
        def console(message) -> None:  # type: ignore[no-untyped-def]
            if message.type == "error":
                where = message.location or {}
                first = (message.text.splitlines() or [""])[0]  # not the stack under it
                self._entries.append(f"console error: {first} "
                                     f"({where.get('url', '')}:{where.get('lineNumber', '')})")

        def page_error(error) -> None:  # type: ignore[no-untyped-def]
            self._entries.append(f"page error: {error.error}")

        context.on("console", console)
        context.on("weberror", page_error)
        context.on("close", lambda c: self._contexts.remove(c) if c in self._contexts else None)
        self._contexts.append(context)

    def take(self, allowed: tuple[Allowed, ...] = ()) -> list[str]:
        """The errors logged since the last call that no allow-list entry expects."""
        for context in list(self._contexts):  # a round trip delivers the events on the way
            try:
                context.cookies()
            except PlaywrightError:  # closed meanwhile: nothing more to say
                self._contexts.remove(context)
        entries, self._entries = self._entries, []
        expected = (*ALLOWED, *allowed)
        return [e for e in entries if not any(a.matches(e) for a in expected)]


CONSOLE = ConsoleLog()  # one per test process: the autouse fixture in conftest.py reads it


class WatchedBrowser:
    """A Playwright browser whose every context reports its console errors to `CONSOLE`."""

    def __init__(self, chromium) -> None:  # type: ignore[no-untyped-def]
        self._chromium = chromium

    def new_context(self, **options):  # type: ignore[no-untyped-def]
        """A new context, watched."""
        context = self._chromium.new_context(**options)
        CONSOLE.watch(context)
        return context

    def new_page(self, **options):  # type: ignore[no-untyped-def]
        """A page in a new context of its own, watched."""
        page = self._chromium.new_page(**options)
        CONSOLE.watch(page.context)
        return page

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._chromium, name)


def launch(playwright) -> WatchedBrowser:  # type: ignore[no-untyped-def]
    """Headless Debian Chromium (Playwright's own download does not work here), watched."""
    return WatchedBrowser(
        playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS))


def offline(context) -> list[str]:  # type: ignore[no-untyped-def]
    """Abort every request that would leave the machine; returns the list of those tried."""
    tried: list[str] = []

    def route(r) -> None:  # type: ignore[no-untyped-def]
        url = r.request.url
        host = urlparse(url).hostname
        if url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            r.continue_()
        else:
            tried.append(url)
            r.abort()

    context.route("**/*", route)
    return tried


@contextmanager
def live_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app's Flask server on a free loopback port, in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@contextmanager
def embedded_app(folder: Path, **env: str) -> Iterator[tuple[Settings, redis.Redis, object]]:
    """A Redis of its own in `folder`, the settings on it (`env` added) and the app."""
    from dashboard.app import create_app
    from dashboard.redis_conn import EmbeddedRedis, connect

    server = EmbeddedRedis(folder / "redis")
    server.start()
    settings = Settings.load(env={
        "REDIS_URL": server.url, "CITYBRAIN_CACHE_TTL_S": "0.2", "CITYBRAIN_STALE_AFTER_S": "600",
        "CITYBRAIN_AUDIT_DIR": str(folder / "audit"), **env})
    client = connect(server.url)
    try:
        yield settings, client, create_app(settings)
    finally:
        client.close()
        server.stop()


@contextmanager
def background_worker(settings: Settings, client: redis.Redis, geography: Geography,
                      pause_s: float = 0.02) -> Iterator[Worker]:
    """A worker draining the stream in a thread; survives Redis going away and back."""
    worker = Worker(settings, client, geography, name="browser-test-worker")
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                worker.work(burst=True)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                time.sleep(0.2)
            stop.wait(pause_s)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(10)


def seed(client: redis.Redis, settings: Settings, geography: Geography,
         incidents: int = 80, seed_value: int = 7) -> None:
    """A believable city: scored compounds, traffic, incidents all over the districts."""
    rng = random.Random(seed_value)
    districts = list(geography.children(geography.root_id))
    xuhui = geography.descendants_at("310104", "compound")
    points = [
        (p.x, p.y) for p in geography.frame.geometry.loc[districts]
        .sample_points(6, rng=seed_value).explode(index_parts=False)]
    categories = ["garbage", "road_occupation", "noise", "manhole", "fire_hazard",
                  "street_drying", "out_of_store", "traffic_accident"]
    sources = ["hotline", "grid", "video_ai", "sensor"]
    indicators = ["fire_hazards", "fever_reports", "repeat_complaints", "flood_points",
                  "elderly_living_alone"]
    t = now_ms()
    pipe = client.pipeline(transaction=False)
    for compound in rng.sample(list(xuhui), min(400, len(xuhui))):
        for name in rng.sample(indicators, 3):
            pipe.xadd(settings.stream, risk(compound, name, rng.uniform(0, 12)))
    for i, (lon, lat) in enumerate(points):
        pipe.xadd(settings.stream, traffic(f"SEG{i:03d}", rng.uniform(12, 60), 60,
                                           point=(lon, lat)))
    for i in range(incidents):
        if i % 3 == 0:
            area = geography.areas[rng.choice(xuhui)]
            point = (area.lon, area.lat)
        else:
            point = rng.choice(points)
        pipe.xadd(settings.stream, incident(
            f"SEED{i:03d}", ts=t - rng.randint(1, 600) * 60_000, point=point,
            category=rng.choice(categories), source=rng.choice(sources),
            severity=str(rng.randint(1, 4)), title=f"示例事件 {i}"))
        if i % 4 == 0:
            pipe.xadd(settings.stream, incident(
                f"SEED{i:03d}", status="closed", ts=t - rng.randint(0, 30) * 60_000,
                point=None))
    pipe.execute()


def report_incidents(client: redis.Redis, settings: Settings, geography: Geography, n: int,
                     seed_value: int = 5, prefix: str = "OPEN") -> None:
    """`n` incidents reported at random points spread evenly over the districts.

    Written to the stream and applied by a real worker before it returns; severities
    1-4 in turn, reported up to 10 hours ago (so that some are overdue).
    """
    import numpy as np

    from dashboard.demo.places import districts, sample_points

    rng = np.random.default_rng(seed_value)
    ids = districts(geography)
    pools = sample_points([geography.frame.geometry.loc[d] for d in ids],
                          n // len(ids) + 1, rng)
    points = [(round(float(x), 6), round(float(y), 6))
              for lons, lats in pools for x, y in zip(lons, lats, strict=True)]
    categories = ("garbage", "road_occupation", "noise", "manhole", "street_drying")
    t = now_ms()
    pipe = client.pipeline(transaction=False)
    for k in range(n):
        pipe.xadd(settings.stream, incident(
            f"{prefix}-{k:06d}", ts=t - int(rng.integers(1, 600)) * 60_000,
            point=points[(k * 7919) % len(points)], category=categories[k % len(categories)],
            severity=str(1 + k % 4), title=f"{prefix} {k}"))
        if k % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    worker = Worker(settings, client, geography, name="report-incidents")
    while worker.work(burst=True):
        pass


def wait_for(predicate, timeout_s: float = 5.0, every_s: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll until the predicate returns something true; that value, or None on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    return None


def clipped_headings(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Panel headings drawn shorter than their text (squeezed by the content under them)."""
    return page.evaluate("""() => [...document.querySelectorAll('.panel h2, .panel h3')]
        .filter(e => e.offsetParent !== null && e.scrollHeight > e.clientHeight + 1)
        .map(e => e.innerText)""")
