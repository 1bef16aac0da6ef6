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
from types import SimpleNamespace
from urllib.parse import urlparse

import redis
from playwright.sync_api import Error as PlaywrightError
from werkzeug.serving import make_server

from dashboard.geography import Geography
from dashboard.pipeline.worker import Worker
from dashboard.redis_conn import EmbeddedRedis, connect
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


MAP = "#map-graph .js-plotly-plot"

# Every layout the screen is made for (CSS pixels, device scale 1): 16:9 from an
# official's laptop to an 8K wall, 32:9 mosaics (the last a 3x6 wall of 1080p panels),
# a 48:9 row of three, portrait, a tablet and a phone.
SCREEN_SIZES: tuple[tuple[int, int], ...] = (
    (1366, 768), (1920, 1080), (3840, 2160), (7680, 4320),
    (5760, 1620), (7680, 2160), (11520, 3240), (5760, 1080),
    (1080, 1920), (768, 1024), (390, 844),
)


def patience_ms(size: tuple[int, int]) -> int:
    """How long to wait for a map of a page that size: Chromium draws it in software here,
    and a wall of 37 million pixels on a busy 2-core machine takes minutes (not a speed
    check: the tests only wait for conditions)."""
    return 20_000 + size[0] * size[1] // 200


def go(page, query: str, timeout_ms: int = 20_000) -> None:  # type: ignore[no-untyped-def]
    """Go to `/?query` the way the screen's own links do (no reload), and wait until the
    screen is drawn for the URL then in the address bar (a refused area's: the user's own).

    A new URL draws the whole screen again (its lists, stores and incident panel): a
    click on the screen still shown before that answer lands on parts about to be
    replaced (a panel opened there closes again with them).
    """
    if page.evaluate("() => location.search") == query:  # no change: no new screen
        page.wait_for_selector("#screen-root:not([data-dash-is-loading]) #screen",
                               timeout=timeout_ms)
        return
    page.evaluate("""q => { history.pushState({}, '', '/' + q);
        window.dispatchEvent(new CustomEvent('_dashprivate_pushstate')); }""", query)
    page.wait_for_function(
        """() => { const s = document.getElementById('screen');
            return s && s.dataset.search === location.search
                && !document.querySelector('#screen-root[data-dash-is-loading]'); }""",
        timeout=timeout_ms)


def wait_map(page, locations: int, timeout_ms: int = 20_000) -> None:  # type: ignore[no-untyped-def]
    """Until the screen shows a map whose risk fill has that many areas, drawn."""
    page.wait_for_selector("#kpi-open", timeout=timeout_ms)
    page.wait_for_function(
        f"""n => {{ const gd = document.querySelector('{MAP}');
            const m = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot;
            const fill = gd && gd.data && gd.data.find(d => d.uid === 'risk-fill');
            return m && fill && fill.locations.length === n && m.map.loaded()
                && m.map.queryRenderedFeatures(
                    {{layers: ['plotly-trace-layer-risk-fill-fill']}}).length > 0; }}""",
        arg=locations, timeout=timeout_ms)


# How much of the map's free part (below the time control) the bounds take, and whether
# they stay inside it: the area as MapLibre projects it, in the map canvas's pixels.
AREA_FILL = f"""([west, south, east, north]) => {{
    const gd = document.querySelector('{MAP}');
    const m = gd._fullLayout.map._subplot.map;
    const box = m.getCanvas().getBoundingClientRect();
    const bar = document.getElementById('timebar');
    const top = bar && bar.getClientRects().length
        ? Math.max(0, bar.getBoundingClientRect().bottom - box.top) : 0;
    const a = m.project([west, north]), b = m.project([east, south]);
    const free = box.height - top;
    return {{width: (b.x - a.x) / box.width, height: (b.y - a.y) / free,
             inside: a.x >= -2 && a.y >= top - 2 && b.x <= box.width + 2
                     && b.y <= box.height + 2}}; }}"""


def area_fill(page, bounds) -> dict:  # type: ignore[no-untyped-def]
    """The selected area's share of the map's free width and height, and if it is inside."""
    return page.evaluate(AREA_FILL, [float(b) for b in bounds])


def wait_fitted(page, bounds, share: float = 0.6, timeout_ms: int = 20_000) -> bool:  # type: ignore[no-untyped-def]
    """Until the area fills `share` of the map's width or height (the fit has arrived)."""
    try:
        page.wait_for_function(
            f"""([bounds, share]) => {{ const f = ({AREA_FILL})(bounds);
                return f.inside && Math.max(f.width, f.height) >= share; }}""",
            arg=[[float(b) for b in bounds], share], timeout=timeout_ms)
    except PlaywrightError:
        return False
    return True


def layout_problems(page) -> list[str]:  # type: ignore[no-untyped-def]
    """What is wrong with the screen's layout as drawn, as sentences (none: empty list).

    - the page scrolls sideways (or, outside the phone layout, at all);
    - an element sticks out of the viewport, or out of the panel, tile or header it is in;
    - a KPI value, panel heading or tile label is drawn narrower than its text (clipped);
    - a panel heading or a list is hidden, or a list is empty.
    """
    return page.evaluate("""() => {
        const out = [];
        const root = document.documentElement;
        const phone = getComputedStyle(root).getPropertyValue('--layout').trim() === 'phone';
        if (root.scrollWidth > innerWidth + 1) out.push(`scrolls sideways: ${root.scrollWidth}`);
        if (!phone && root.scrollHeight > innerHeight + 1)
            out.push(`scrolls: ${root.scrollHeight} > ${innerHeight}`);
        const name = e => e.id ? '#' + e.id : e.tagName.toLowerCase() + '.'
            + [...e.classList].join('.');
        const shown = e => e.getClientRects().length > 0
            && getComputedStyle(e).visibility !== 'hidden';
        const boxes = '.panel, .kpi, .header, .map-overlay, .timebar';
        const height = phone ? root.scrollHeight : innerHeight;
        for (const e of document.querySelectorAll('#screen *')) {
            if (!shown(e) || e.closest('.js-plotly-plot, .dash-dropdown-content, .hidden'))
                continue;
            const r = e.getBoundingClientRect();
            if (r.width === 0 || r.height === 0) continue;
            const y = phone ? r.top + scrollY : r.top, bottom = y + r.height;
            if (r.left < -1 || r.right > innerWidth + 1 || y < -1 || bottom > height + 1)
                out.push(`${name(e)} outside the viewport`);
            const box = e.parentElement && e.parentElement.closest(boxes);
            if (box && !e.matches(boxes)) {
                const b = box.getBoundingClientRect();
                if (r.left < b.left - 1 || r.right > b.right + 1 || r.top < b.top - 1
                        || r.bottom > b.bottom + 1)
                    out.push(`${name(e)} sticks out of ${name(box)}`);
            }
        }
        for (const e of document.querySelectorAll(
                '.kpi-value, .kpi-label, .lvl, .panel h2, .panel h3, .title')) {
            const cut = getComputedStyle(e).overflowY !== 'visible'
                && e.scrollHeight > e.clientHeight + 1;
            if (shown(e) && (e.scrollWidth > e.clientWidth + 1 || cut))
                out.push(`${name(e)} clipped: "${e.innerText}"`);
        }
        for (const e of document.querySelectorAll('.main h2, #feed-list, #top-list, '
                + '#overdue-list, #detail-body, #trend-graph, #kpi-row')) {
            if (e.closest('.hidden')) continue;  // a closed overlay's own headings
            if (!shown(e)) { out.push(`${name(e)} hidden`); continue; }
            const r = e.getBoundingClientRect();
            if (r.height < 8 || r.width < 8) out.push(`${name(e)} squeezed to nothing`);
        }
        for (const id of ['feed-list', 'top-list', 'overdue-list']) {
            const list = document.getElementById(id);
            const rows = list ? [...list.children].filter(
                li => shown(li) && !li.classList.contains('feed-empty')) : [];
            const visible = rows.filter(li => { const r = li.getBoundingClientRect();
                const b = list.getBoundingClientRect();
                return r.height > 0 && r.bottom <= b.bottom + 1 && r.top >= b.top - 1; });
            if (!visible.length) out.push(`#${id} shows no row`);
        }
        return out;
    }""")


def small_touch_targets(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Links, buttons and switches smaller than 44x44 CSS pixels (the phone layout's floor)."""
    return page.evaluate("""() => [...document.querySelectorAll(
            '#screen a, #screen button, #screen [role=button], #screen .layer-switch label, '
            + '#area-picker')]
        .filter(e => e.getClientRects().length && !e.closest('.hidden'))
        .map(e => [e, e.getBoundingClientRect()])
        .filter(([e, r]) => r.height < 44 || r.width < 44)
        .map(([e, r]) => `${e.id || e.className || e.tagName} ${Math.round(r.width)}x`
                         + `${Math.round(r.height)}`)""")


@contextmanager
def demo_city(workdir: Path, **env: str) -> Iterator[SimpleNamespace]:
    """The seeded city served for a browser: its own Redis, a worker, the app, Chromium.

    Yields `server` (the Redis), `settings`, `client`, `app`, `geography`, `base` (the
    app's URL) and `chromium`; `env` adds settings to the screen tests' defaults.
    """
    import logging

    from playwright.sync_api import sync_playwright

    from dashboard.app import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = EmbeddedRedis(workdir / "redis")
    server.start()
    settings = Settings.load(env={
        "REDIS_URL": server.url, "CITYBRAIN_CACHE_TTL_S": "0.2", "CITYBRAIN_UPDATE_MS": "400",
        "CITYBRAIN_STALE_AFTER_S": "600", "CITYBRAIN_BLOCK_MS": "200",
        "CITYBRAIN_AUDIT_DIR": str(workdir / "audit"), **env})
    client = connect(server.url)
    try:
        app = create_app(settings)
        geography = app.server.extensions["citybrain"].geography
        seed(client, settings, geography)
        with background_worker(settings, client, geography), live_server(app) as base, \
                sync_playwright() as playwright:
            chromium = launch(playwright)
            try:
                yield SimpleNamespace(server=server, settings=settings, client=client, app=app,
                                      geography=geography, base=base, chromium=chromium)
            finally:
                chromium.close()
    finally:
        client.close()
        server.stop()


def open_incident(page, where: str, incident_id: str,  # type: ignore[no-untyped-def]
                  ready: str = "#incident-title") -> None:
    """Click an incident's row in a list, once: the panel opens (a redraw must not lose it)."""
    page.click(f"{where} li[id*='\"{incident_id}\"']", timeout=20_000)
    page.wait_for_selector(f"#incident-panel:not(.hidden) {ready}", timeout=20_000)
