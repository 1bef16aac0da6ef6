"""Screen benchmark: XADD-to-visible latency, bytes per tick, server CPU per tick.

    python bench/screen.py [--rate 50] [--events 100] [--ticks 20] [--update-ms 1000]
        [--cache-ttl 0.5] [--modes poll,push]
    python bench/screen.py --open-incidents 100000 [--ticks 20]

`--open-incidents N` is the scale run instead (bench/screen_scale.py): the city
screen's first-load bytes, map draw time and tick size at 1k, 10k ... N open incidents.

With the demo feed (`Simulator`) writing `--rate` events/s into a real Redis
(REDIS_URL, or an embedded one), a worker thread applying them and the app
served in-process, headless Chromium shows the city screen. Then:

1. latency: `--events` marker incidents are XADDed (one every 200 ms); the
   page records when each one's point appears in the map's incident trace.
   Median and p95 of (seen in page - XADD), in ms. `--modes poll,push` does it
   twice in one run: the page polling (the baseline), then the page fed by a real
   `citybrain push` process; in the push phase a raw stream beside the page
   records every update message's size, and at the end, with the feed stopped,
   the bytes pushed when 10 incidents arrive at once.
2. bytes per tick: sizes of the update-tick responses the page received,
   against the full screen (what a page render / a full-figure tick sends).
3. server CPU per tick: the browser's own tick request, replayed by 1 and by
   20 simulated clients per tick, CPU time of the serving thread; and the
   same with the per-process cache off (every request reads Redis and builds
   its own view), the baseline. `--ticks 0` skips it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from bench import screen_scale
from dashboard.app import create_app
from dashboard.demo import Simulator
from dashboard.redis_conn import connect, url_or_embedded
from dashboard.settings import Settings
from tests import browser
from tests.events import incident
from tests.pushproc import PushProcess, Stream

MAP = "#map-graph .js-plotly-plot"
WATCH = """pending => {
  window.__seen = window.__seen || {};
  window.__pending = new Set(pending.map(String));
  if (window.__watch) return;
  window.__watch = setInterval(() => {
    if (!window.__pending.size) return;
    const gd = document.querySelector('MAP');
    const t = gd && gd.data && gd.data.find(d => d.uid === 'incidents-points');
    if (!t) return;
    const now = Date.now();
    for (const lon of t.lon) {
      const key = String(lon);
      if (window.__pending.has(key)) { window.__seen[key] = now; window.__pending.delete(key); }
    }
  }, 10);
}""".replace("MAP", MAP)
# Where a pushed marker's time goes: when its message reached the page (`__recv`, every
# update message inflated by push.js's own decoder and searched) and when the push client
# handed it to the map (`__set`, `dash_clientside.set_props` of the map's figure); `__seen`
# is when it is drawn.
STAGES = """() => {
  window.__recv = {}; window.__set = {}; window.__keys = [];
  const Native = window.EventSource;
  window.EventSource = function (url, opts) {
    const es = new Native(url, opts);
    es.addEventListener('update', event => {
      const at = Date.now();
      const t = window.dash_clientside.push.text(event.data);  // push.js's own decoder
      for (const k of window.__keys) {
        if (!window.__recv[k] && t.includes(k)) window.__recv[k] = at;
      }
    });
    return es;
  };
  window.EventSource.CLOSED = Native.CLOSED;
  let wrapped = false;
  setInterval(() => {
    const dc = window.dash_clientside;
    if (wrapped || !dc || !dc.set_props) return;
    wrapped = true;
    const set = dc.set_props;
    dc.set_props = function (id, props) {
      if (id === 'map-graph' && window.__keys.length) {
        const t = JSON.stringify(props), at = Date.now();
        for (const k of window.__keys) if (!window.__set[k] && t.includes(k)) window.__set[k] = at;
      }
      return set.apply(this, arguments);
    };
  }, 50);
}"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_per_tick(app, body: dict, clients: int, ticks: int, period_s: float) -> float:
    """CPU ms of the serving thread per tick when `clients` post the tick request."""
    api = app.server.test_client()
    spent = []
    for _ in range(ticks):
        start_wall = time.monotonic()
        start = time.thread_time()
        for _ in range(clients):
            response = api.post("/_dash-update-component", json=body)
            assert response.status_code in (200, 204), response.data[:200]
        spent.append((time.thread_time() - start) * 1000)
        time.sleep(max(0.0, period_s - (time.monotonic() - start_wall)))
    return statistics.median(spent)


TICK_BODIES: list[dict] = []  # the page's own tick request, replayed for the CPU figures


class RawReader:
    """A raw push stream read in a thread: the size of each update's data line."""

    def __init__(self, url: str) -> None:
        self.stream = Stream(url, timeout_s=60)
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # hung up by `close`
            while self.stream.next() is not None:
                pass

    def seconds(self) -> float:
        """How long it has been reading."""
        return time.monotonic() - self.started

    def close(self) -> list[int]:
        """Hang up; the sizes in bytes (as sent) of the updates after the first snapshot."""
        self.stream.close()
        self.thread.join(5)
        return [len(line.encode()) for line in self.stream.wire[1:]]


def burst_size(push_base: str, client, settings: Settings, stop: threading.Event,  # type: ignore[no-untyped-def]
               events: int = 10) -> None:
    """With the feed stopped: the bytes pushed when `events` new incidents arrive at once."""
    stop.set()  # the feed stops; wait until the worker has applied what it wrote
    key = settings.state_prefix + "version"
    browser.wait_for(lambda: _steady(client, key), timeout_s=30, every_s=0.1)
    stream = Stream(f"{push_base}/push/stream", timeout_s=60)
    stream.until(lambda d: d.get("snapshot"))
    ids = [f"BURST-{i}" for i in range(events)]
    for i, incident_id in enumerate(ids):
        client.xadd(settings.stream, incident(incident_id, point=(121.43 + 0.001 * i, 31.19),
                                              title=incident_id))
    start = len(stream.raw)

    def arrived(_: dict) -> bool:
        return all(x in "".join(stream.raw[start:]) for x in ids)

    stream.until(arrived, timeout_s=30)
    sizes = [len(line.encode()) for line in stream.wire[start:]]
    stream.close()
    print(f"push: {events} incidents at once -> {len(sizes)} message(s), "
          f"{sum(sizes):,} B ({', '.join(f'{x:,}' for x in sizes)})")


def _steady(client, key: str) -> bool:  # type: ignore[no-untyped-def]
    before = client.get(key)
    time.sleep(0.5)
    return client.get(key) == before


def server_cpu(app, args, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """The polling tick's server CPU, with the shared cache and without (the baseline)."""
    if not TICK_BODIES or not args.ticks:
        return
    body = TICK_BODIES[0]
    period = args.update_ms / 1000
    cache = app.server.extensions["citybrain"].cache
    reads = cache.reads
    one = cpu_per_tick(app, body, 1, args.ticks, period)
    twenty = cpu_per_tick(app, body, 20, args.ticks, period)
    per_tick_reads = (cache.reads - reads) / (2 * args.ticks)
    no_cache = create_app(settings.replace(cache_ttl_s=1e-6))
    base_one = cpu_per_tick(no_cache, body, 1, args.ticks, period)
    base_twenty = cpu_per_tick(no_cache, body, 20, args.ticks, period)
    print(f"server CPU per tick, shared cache: 1 client {one:.1f} ms, "
          f"20 clients {twenty:.1f} ms (x{twenty / max(one, 1e-9):.1f}); "
          f"Redis reads per tick {per_tick_reads:.1f}")
    print(f"server CPU per tick, no cache (baseline): 1 client {base_one:.1f} ms, "
          f"20 clients {base_twenty:.1f} ms; shared cache saves "
          f"x{base_twenty / max(twenty, 1e-9):.1f} at 20 clients")


def stages(marks: list[dict[str, float]], sent: dict[str, float], applied: dict[str, float],
           seen: dict[str, float]) -> None:
    """Print where a pushed marker's time went, stage by stage (medians and p95s, ms)."""
    recv, handed = marks
    steps = [("applied by the worker", sent, applied), ("message at the page", applied, recv),
             ("handed to the map", recv, handed), ("drawn (in the map's data)", handed, seen)]
    parts = []
    for name, start, end in steps:
        spans = [end[k] - start[k] for k in start if k in end]
        if spans:
            parts.append(f"{name} +{statistics.median(spans):.0f}/{pct(spans, 0.95):.0f}")
    print("push stages, median/p95 ms from the stage before: " + ", ".join(parts))


def page_run(chromium, base: str, client, settings: Settings, geography, args,  # type: ignore[no-untyped-def]
             offset: int, mode: str, push_base: str | None) -> None:
    """Load the city screen, XADD `args.events` marked incidents, print when they show."""
    context = chromium.new_context(viewport={"width": 1920, "height": 1080})
    tried = browser.offline(context)
    page = context.new_page()
    ticks: list[int] = []
    renders: list[int] = []

    def on_response(response) -> None:  # type: ignore[no-untyped-def]
        if "_dash-update-component" not in response.url:
            return
        posted = response.request.post_data or ""
        try:
            size = len(response.body()) if response.status == 200 else 0
        except PlaywrightError:  # the page went away while its response was read
            return
        if "kpi-row.children" in posted:
            ticks.append(size)
            if not TICK_BODIES:
                TICK_BODIES.append(json.loads(posted))
        elif "screen-root.children" in posted:
            renders.append(size)

    page.on("response", on_response)
    if mode == "push":
        page.add_init_script(f"({STAGES})();")
    page.goto(base + "/")
    page.wait_for_function(
        f"() => {{ const gd = document.querySelector('{MAP}');"
        " return gd && gd._fullLayout && gd._fullLayout.map"
        " && gd._fullLayout.map._subplot.map.loaded(); }", timeout=60_000)
    if mode == "push":
        page.wait_for_function(
            "() => document.querySelector('#push-status').className.includes('is-push')",
            timeout=30_000)
    page.wait_for_timeout(3000)
    ticks.clear()
    reader = RawReader(f"{push_base}/push/stream") if push_base else None
    compounds = geography.descendants_at("310104", "compound")
    markers = []
    for j in range(args.events):
        i = j + offset
        area = geography.areas[compounds[(i * 7) % len(compounds)]]
        lon = round(area.lon + 0.000013 * (i + 1), 6)
        markers.append((f"BENCH-{i}", lon, area.lat))
    page.evaluate(WATCH, [m[1] for m in markers])
    if mode == "push":
        page.evaluate("keys => { window.__keys = keys; }", [str(m[1]) for m in markers])
    sent: dict[str, float] = {}
    applied: dict[str, float] = {}
    open_key = settings.state_prefix + "open"
    done = threading.Event()

    def watch_applied() -> None:
        watcher = connect(settings.redis_url or "")
        while len(applied) < len(markers) and not done.is_set():
            for incident_id, lon, _ in markers:
                key = str(lon)
                if key in sent and key not in applied and watcher.hexists(
                        open_key, incident_id):
                    applied[key] = time.time() * 1000
            time.sleep(0.01)
        watcher.close()

    watcher = threading.Thread(target=watch_applied, daemon=True)
    watcher.start()
    for incident_id, lon, lat in markers:
        sent[str(lon)] = time.time() * 1000
        client.xadd(settings.stream, incident(incident_id, point=(lon, lat),
                                              title=incident_id))
        page.wait_for_timeout(200)  # not time.sleep: Playwright must keep serving
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and page.evaluate("window.__pending.size"):
        page.wait_for_timeout(200)
    done.set()
    watcher.join(5)
    seen = page.evaluate("window.__seen")
    latencies = [seen[k] - sent[k] for k in sent if k in seen]
    worker_lat = [applied[k] - sent[k] for k in sent if k in applied]
    if worker_lat:
        print(f"XADD -> applied by the worker: median "
              f"{statistics.median(worker_lat):.0f} ms, p95 {pct(worker_lat, 0.95):.0f} ms")
    if mode == "push":
        stages(page.evaluate("[window.__recv, window.__set]"), sent, applied, seen)
    missing = len(sent) - len(latencies)
    if latencies:
        print(f"XADD -> visible on the map ({mode}), {len(latencies)} events: "
              f"median {statistics.median(latencies):.0f} ms, "
              f"p95 {pct(latencies, 0.95):.0f} ms, max {max(latencies):.0f} ms"
              + (f", {missing} never seen" if missing else ""))
    sizes = [s for s in ticks if s]
    full = statistics.median(renders) if renders else 0
    if sizes:
        print(f"bytes per tick ({len(ticks)} ticks, {len(ticks) - len(sizes)} with "
              f"nothing new): median {statistics.median(sizes):,.0f} B, "
              f"mean {statistics.mean(sizes):,.0f} B, max {max(sizes):,} B; "
              f"full screen {full:,.0f} B "
              f"(x{full / max(statistics.mean(sizes), 1):.0f} of a tick)")
    elif mode == "push":
        print(f"polling ticks while pushed: {len(ticks)}")
    if reader is not None:
        sizes = reader.close()
        if sizes:
            print(f"push messages at {args.rate:g} events/s ({len(sizes)}, a raw stream): "
                  f"median {statistics.median(sizes):,.0f} B, p95 {pct(sizes, 0.95):,.0f} B, "
                  f"max {max(sizes):,} B, {sum(sizes) / 1000 / reader.seconds():,.1f} KB/s")
    if tried:
        print(f"WARNING: requests tried to leave the machine: {tried}")
    context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--update-ms", type=int, default=1000)
    parser.add_argument("--cache-ttl", type=float, default=0.5)
    parser.add_argument("--modes", default="poll,push",
                        help="poll (the baseline), push (the push process), in this order")
    parser.add_argument("--open-incidents", type=int, default=0,
                        help="the scale run: 1k, 10k ... up to this many open incidents")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if not browser.chromium_available():
        print(f"no Chromium at {browser.CHROMIUM}", file=sys.stderr)
        return 2

    tmp = tempfile.TemporaryDirectory(prefix="screen-bench-")
    url, server = url_or_embedded(Path(tmp.name) / "redis")
    if args.open_incidents:
        try:
            screen_scale.run(args.open_incidents, args.ticks, url, Path(tmp.name))
        finally:
            if server:
                server.stop()
            tmp.cleanup()
        return 0
    env = {"REDIS_URL": url, "CITYBRAIN_UPDATE_MS": str(args.update_ms),
           "CITYBRAIN_CACHE_TTL_S": str(args.cache_ttl), "CITYBRAIN_STREAM": "bench:screen",
           "CITYBRAIN_KEY_PREFIX": "benchscreen", "CITYBRAIN_UPDATE_MODE": "poll"}
    settings = Settings.load(env=env)
    client = connect(url)
    for key in client.scan_iter("benchscreen:*"):
        client.delete(key)
    client.delete(settings.stream)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    app = create_app(settings)
    geography = app.server.extensions["citybrain"].geography
    stop = threading.Event()
    simulator = Simulator(client, settings.stream, geography, seed=3)
    feeder = threading.Thread(target=simulator.run, args=(args.rate,),
                              kwargs={"stop": stop}, daemon=True)
    print(f"feed {args.rate:g} events/s, tick {args.update_ms} ms, cache {args.cache_ttl:g} s,"
          f" modes {','.join(modes)}")
    push = PushProcess({**env, "CITYBRAIN_UPDATE_MODE": "push"},
                       Path(tmp.name) / "push.log") if "push" in modes else None
    try:
        with browser.background_worker(settings, client, geography), \
                sync_playwright() as playwright:
            feeder.start()
            chromium = browser.launch(playwright)
            if push is not None:
                push.start()
            for round_no, mode in enumerate(modes):
                mode_settings = settings.replace(update_mode=mode, push_port=(
                    push.port if push else settings.push_port))
                mode_app = app if mode == "poll" else create_app(mode_settings)
                with browser.live_server(mode_app) as base:
                    print(f"--- {mode} ---")
                    page_run(chromium, base, client, settings, geography, args,
                             offset=round_no * args.events, mode=mode,
                             push_base=push.base if mode == "push" and push else None)
                if mode == "push" and push is not None:
                    burst_size(push.base, client, settings, stop)
                if mode == "poll":
                    server_cpu(app, args, settings)
            chromium.close()
    finally:
        stop.set()
        if push is not None:
            push.stop()
        if feeder.is_alive():
            feeder.join(5)
        client.close()
        if server:
            server.stop()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
