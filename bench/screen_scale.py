"""The city screen at scale: first-load bytes, map draw time and tick size per open incidents.

Run through `python bench/screen.py --open-incidents N`: for 1,000, then ten times more
up to N (1k / 10k / 100k), that many incidents are reported all over the city
(pushed through the stream and applied by the real worker), then headless Chromium
opens the city screen:

- first load: the bytes of every callback response until the map is drawn;
- draw time: from the start of navigation until the map has loaded with the
  incidents layer in it (`performance.now()` in the page);
- tick: the sizes of the update ticks while 20 incident updates a second arrive.

Each step also prints its ratio against the 1k run (the baseline of the same run).
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from playwright.sync_api import Error as PlaywrightError

from dashboard.app import create_app
from dashboard.settings import Settings
from tests import browser
from tests.events import incident

MAP = "#map-graph .js-plotly-plot"
DRAWN = """() => {
  const gd = document.querySelector('MAP');
  if (!gd || !gd._fullLayout || !gd._fullLayout.map || !gd.data) return false;
  const map = gd._fullLayout.map._subplot && gd._fullLayout.map._subplot.map;
  if (!map || !map.loaded()) return false;
  return gd.data.some(t => (t.uid || '').startsWith('incidents') && (t.lon || []).length > 0);
}""".replace("MAP", MAP)


@dataclass(frozen=True)
class Step:
    """What one scale step measured."""

    incidents: int
    first_load_bytes: int
    draw_ms: float
    tick_median: float
    tick_max: int


def steps(top: int) -> list[int]:
    """1,000, 10,000 ... up to `top` (and `top` itself when it is not a power of ten)."""
    out, n = [], 1000
    while n < top:
        out.append(n)
        n *= 10
    return [*out, top]


def churn(client: redis.Redis, settings: Settings, stop: threading.Event, rate: float = 20) -> None:
    """Incident updates at `rate` a second (status changes of the filled ones)."""
    k = 0
    while not stop.is_set():
        client.xadd(settings.stream, incident(f"OPEN-{k:06d}", status="dispatched", point=None))
        k += 1
        stop.wait(1 / rate)


def measure(playwright: Any, settings: Settings, client: redis.Redis, n: int,
            ticks: int) -> Step:
    """One step: fill, serve, load the city screen, measure."""
    for key in client.scan_iter(settings.key_prefix + ":*"):
        client.delete(key)
    client.delete(settings.stream)
    app = create_app(settings)
    geography = app.server.extensions["citybrain"].geography
    browser.report_incidents(client, settings, geography, n)
    stop = threading.Event()
    with browser.background_worker(settings, client, geography), \
            browser.live_server(app) as base:
        chromium = browser.launch(playwright)
        context = chromium.new_context(viewport={"width": 1920, "height": 1080})
        tried = browser.offline(context)
        page = context.new_page()
        loads: list[int] = []
        tick_sizes: list[int] = []
        drawn = threading.Event()

        def on_response(response: Any) -> None:
            if "_dash-update-component" not in response.url:
                return
            try:
                size = len(response.body()) if response.status == 200 else 0
            except PlaywrightError:
                return
            if not drawn.is_set():
                loads.append(size)
            elif "kpi-row.children" in (response.request.post_data or ""):
                tick_sizes.append(size)

        page.on("response", on_response)
        page.goto(base + "/")
        page.wait_for_function(DRAWN, timeout=180_000, polling="raf")
        draw_ms = float(page.evaluate("performance.now()"))
        drawn.set()
        feeder = threading.Thread(target=churn, args=(client, settings, stop), daemon=True)
        feeder.start()
        deadline = time.monotonic() + ticks * settings.update_ms / 1000 * 3 + 30
        while len(tick_sizes) < ticks and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        stop.set()
        feeder.join(5)
        if tried:
            print(f"WARNING: requests tried to leave the machine: {tried}")
        context.close()
        chromium.close()
    sizes = tick_sizes or [0]
    return Step(n, sum(loads), draw_ms, statistics.median(sizes), max(sizes))


def run(top: int, ticks: int, url: str, tmp: Path) -> None:
    """Every step up to `top` open incidents, each printed with its ratio to the first."""
    from playwright.sync_api import sync_playwright

    from dashboard.redis_conn import connect

    env = {"REDIS_URL": url, "CITYBRAIN_STREAM": "bench:scale", "CITYBRAIN_KEY_PREFIX":
           "benchscale", "CITYBRAIN_CACHE_TTL_S": "0.5", "CITYBRAIN_AUDIT_DIR": str(tmp / "a")}
    settings = Settings.load(env=env)
    client = connect(url)
    results: list[Step] = []
    with sync_playwright() as playwright:
        for n in steps(top):
            step = measure(playwright, settings, client, n, ticks)
            results.append(step)
            base = results[0]
            print(f"{n:>7,} open incidents: first load {step.first_load_bytes:>10,} B "
                  f"(x{step.first_load_bytes / max(base.first_load_bytes, 1):.2f} of 1k), "
                  f"map drawn {step.draw_ms:>7,.0f} ms (x{step.draw_ms / base.draw_ms:.2f}), "
                  f"tick median {step.tick_median:,.0f} B, max {step.tick_max:,} B", flush=True)
    client.close()
