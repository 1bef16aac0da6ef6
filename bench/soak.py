"""Soak: the wall for hours under the README's main command, a web and a Redis restart included.

    python bench/soak.py [--duration 7200] [--interval 60] [--rate 50] [--out docs/soak]
                         [--warmup 600] [--every 30] [--restart-web-at S] [--restart-redis-at S]
                         [--restart-push-at S]

Starts `citybrain run` (as `scripts/run` does: the embedded Redis, the worker, the push
process, gunicorn and the demo feed at `--rate` events/s; Redis's data in a temporary
folder), adds a wall account and opens its screen touring the city and every district
(`?token=...&tour=...&every=...`) in headless Chromium (/usr/bin/chromium, 1920x1080,
device scale 1, `--enable-precise-memory-info` so the heap is not quantised, and
`--expose-gc`). Every `--interval` seconds it appends a row to `<out>/samples.csv`: the
page's JS heap (`performance.memory.usedJSHeapSize`, as it is and after a full GC), its
DOM node count, the React fibers alive in its heap (CDP `Runtime.queryObjects`), the
seconds since the page's data clock (`#asof-time`, the server's time of the read shown)
last moved, whether the stale banner shows, page loads, console and page errors, the RSS
of the web (gunicorn and its workers), worker, push, feed and Redis processes, Redis's
used_memory and /healthz figures.

At `--restart-web-at`, `--restart-push-at` and `--restart-redis-at` seconds it stops the
web process, kills the push process (SIGKILL), then stops the embedded Redis (SIGTERM;
`citybrain run`'s supervisor starts them again) and watches the page once a second, by
itself, no reload from here: when its updates stopped, whether the stale banner showed
and cleared, when updates resumed, when the page stopped and started saying push again
(a push restart counts as recovered once it does) (`<out>/restarts.json`). At the end
(or on SIGTERM/SIGINT) `bench/soak_report.py` writes `<out>/summary.json` and
`<out>/soak.png` and the summary is printed: heap and DOM nodes at the start after
`--warmup`, at the end, slope per hour, flat or not. `<out>/run.log` is the cockpit's
output, `<out>/browser.log` the page's console. Exit status 1 when the page did not come
back by itself from a restart, or errors showed outside the restarts.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402 - after the path is set
from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from bench import heap_snapshot, soak_report  # noqa: E402
from bench.soak_procs import (  # noqa: E402
    LogCounter,
    child_pid,
    free_port,
    get_json,
    rss_by_role,
    write_row,
)
from tests import browser  # noqa: E402

# Installed in every document the page loads: watches the data clock and the stale banner.
WATCH = """(() => {
  const s = window.__soak = {lastUpdate: Date.now(), asof: null, banner: false, updates: 0,
                             shows: 0, hides: 0, gap: 0};
  setInterval(() => {
    const now = Date.now();
    s.gap = Math.max(s.gap, now - s.lastUpdate);
    const a = document.getElementById('asof-time');
    const text = a ? a.textContent : null;
    if (text && text !== s.asof) { s.asof = text; s.lastUpdate = now; s.updates++; }
    const b = document.getElementById('stale-banner');
    const shown = !!(b && !b.classList.contains('hidden'));
    if (shown !== s.banner) { if (shown) s.shows++; else s.hides++; s.banner = shown; }
  }, 100);
})();"""
# What the page saw since the last call: banner shows/hides and the longest update gap.
STATE = """() => { const s = window.__soak; if (!s) return null;
  const gap = Math.max(s.gap, Date.now() - s.lastUpdate); s.gap = 0;
  const p = document.getElementById('push-status');
  return {since: (Date.now() - s.lastUpdate) / 1000, gap: gap / 1000, banner: s.banner,
          shows: s.shows, hides: s.hides, updates: s.updates,
          pushed: !!(p && p.classList.contains('is-push'))}; }"""
MEASURE = """() => {
  const used = () => performance.memory ? performance.memory.usedJSHeapSize : null;
  const heap = used();
  if (window.gc) window.gc();
  return {heap: heap, heapAfterGc: window.gc ? used() : null,
          dom: document.getElementsByTagName('*').length}; }"""
# The prototype of React's fibers, from a DOM node React rendered (its `__reactFiber$` key).
FIBER_PROTOTYPE = """(() => { for (const el of document.querySelectorAll('#react-entry-point *')) {
    const key = Object.keys(el).find(k => k.startsWith('__reactFiber$'));
    if (key) return Object.getPrototypeOf(el[key]); } return null; })()"""
STALL_S = 5.0  # no data-clock move this long after a restart: updates stopped
RESUMED_S = 3.0  # a data-clock move this recent: updates flow again
SETTLE_S = 30.0  # a restart's watch lasts at least this long (a late banner counts)
RECOVERY_TIMEOUT_S = 600.0
AFTER_RESTART_S = 30.0  # console errors this soon after a recovery belong to the restart
MB = 1024 * 1024


@dataclass
class Recovery:
    """One restart the soak made, and how the page came back from it by itself."""

    what: str
    at_s: float
    pid: int
    stalled_s: float | None = None
    longest_gap_s: float = 0.0  # the longest time without a data-clock move seen
    banner_shown: bool = False
    banner_shown_s: float | None = None
    banner_cleared_s: float | None = None
    updates_resumed_s: float | None = None
    push_lost_s: float | None = None  # when the page stopped saying push (polled)
    push_back_s: float | None = None  # and when it said push again
    recovered: bool | None = None
    ended_s: float | None = None
    _base: tuple[int, int] | None = field(default=None, repr=False)  # banner counts at start

    def observe(self, now: float, state: dict[str, Any] | None) -> bool:
        """Note what the page saw since the last look; True once the restart is over."""
        if state is not None:  # times relative to the restart
            rel = round(now - self.at_s, 1)
            self.longest_gap_s = max(self.longest_gap_s, round(state["gap"], 1))
            if self._base is None:
                self._base = (state["shows"], state["hides"])
            if state["gap"] >= STALL_S and self.stalled_s is None:
                self.stalled_s = rel
            if state["shows"] > self._base[0] and not self.banner_shown:
                self.banner_shown, self.banner_shown_s = True, rel
            if (self.banner_shown and state["hides"] > self._base[1] and not state["banner"]
                    and self.banner_cleared_s is None):
                self.banner_cleared_s = rel
            if (self.stalled_s is not None and self.updates_resumed_s is None
                    and state["since"] <= RESUMED_S):
                self.updates_resumed_s = rel
            if not state.get("pushed") and self.push_lost_s is None:
                self.push_lost_s = rel
            if (self.push_lost_s is not None and state.get("pushed")
                    and self.push_back_s is None):
                self.push_back_s = rel
        flowing = state is not None and state["since"] <= RESUMED_S
        banner_done = not self.banner_shown or self.banner_cleared_s is not None
        pushed_again = self.what != "push" or self.push_back_s is not None
        if now - self.at_s >= SETTLE_S and flowing and banner_done and pushed_again and not (
                state and state["banner"]):
            self.recovered, self.ended_s = True, round(now - self.at_s, 1)
        elif now - self.at_s >= RECOVERY_TIMEOUT_S:
            self.recovered, self.ended_s = False, round(now - self.at_s, 1)
        return self.recovered is not None

    def report(self) -> dict[str, Any]:
        """What restarts.json says about it."""
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


class Wall:
    """The wall screen in headless Chromium, and what went wrong in it."""

    def __init__(self, playwright: Any, url: str, log_path: Path) -> None:
        self.url = url
        self.log = open(log_path, "a", encoding="utf-8")
        self.console_errors = self.unexpected_errors = self.page_errors = 0
        self.loads = self.reopened = 0
        self.expecting = False  # a restart is under way: its errors are expected
        self.browser = playwright.chromium.launch(
            executable_path=browser.CHROMIUM,
            args=[*browser.CHROMIUM_ARGS, "--enable-precise-memory-info", "--js-flags=--expose-gc"])
        self.context = self.browser.new_context(viewport={"width": 1920, "height": 1080},
                                                device_scale_factor=1)
        self.context.add_init_script(WATCH)
        self.page = self.context.new_page()
        self.cdp = self.context.new_cdp_session(self.page)
        self.page.on("console", self._console)
        self.page.on("pageerror", self._page_error)
        self.page.on("load", self._loaded)
        self.page.goto(self.url, wait_until="load", timeout=60_000)

    def _note(self, what: str) -> None:
        self.log.write(f"{datetime.now(UTC).isoformat(timespec='seconds')} {what}\n")
        self.log.flush()

    def _loaded(self, _page: Any) -> None:
        self.loads += 1
        self._note(f"load {self.loads}: {self.page.url[:200]}")

    def _console(self, message: Any) -> None:
        if message.type in ("info", "warning", "error"):
            self._note(f"console {message.type}: {message.text[:500]}")
        if message.type == "error":
            self.console_errors += 1
            self.unexpected_errors += 0 if self.expecting else 1

    def _page_error(self, error: Any) -> None:
        self.page_errors += 1
        self._note(f"page error: {str(error)[:300]} at {(error.stack or '')[:1500]}")

    def evaluate(self, script: str) -> Any:
        """Run a script in the page; None when the page is unusable (then reopen it)."""
        try:
            return self.page.evaluate(script)
        except PlaywrightError as exc:
            if "navigat" in str(exc) or "destroyed" in str(exc):
                return None  # the page reloads by itself: ask again next time
            self._note(f"page unusable ({exc}); reopening it")
            self.reopened += 1
            try:
                self.page.goto(self.url, wait_until="load", timeout=60_000)
            except PlaywrightError as again:
                self._note(f"reopen failed: {again}")
            return None

    def fibers(self) -> int | None:
        """React fibers alive in the page's heap (`Runtime.queryObjects`: after a GC).

        The fibers of what is on screen number about twice its components; more, growing,
        are fibers kept by something after React let them go (a leak to find).
        """
        group = {"objectGroup": "soak-fibers"}
        try:
            proto = self.cdp.send("Runtime.evaluate", {"expression": FIBER_PROTOTYPE, **group})
            if "objectId" not in proto["result"]:
                return None
            found = self.cdp.send("Runtime.queryObjects", {
                "prototypeObjectId": proto["result"]["objectId"], **group})
            count = self.cdp.send("Runtime.callFunctionOn", {
                "functionDeclaration": "function () { return this.length; }",
                "objectId": found["objects"]["objectId"], "returnByValue": True})
            return int(count["result"]["value"])
        except PlaywrightError as exc:
            self._note(f"fiber count failed: {exc}")
            return None
        finally:
            try:
                self.cdp.send("Runtime.releaseObjectGroup", group)
            except PlaywrightError:
                pass

    def heap_snapshot(self, path: Path, t_s: float, raw: bool = False) -> None:
        """Write the page's heap summed by kind (`bench/heap_snapshot.py`) to `path`.

        `raw`: the whole snapshot too, beside it (`.heapsnapshot`).
        """
        try:
            kinds = heap_snapshot.take(self.cdp, path.with_suffix(".heapsnapshot") if raw else None)
        except PlaywrightError as exc:
            self._note(f"heap snapshot failed: {exc}")
            return
        path.write_text(json.dumps({"t_s": round(t_s, 1), "kinds": kinds}))

    def wait(self, seconds: float) -> None:
        """Let the page run (its events are handled meanwhile)."""
        self.page.wait_for_timeout(seconds * 1000)

    def close(self) -> None:
        """Close the browser and the log."""
        try:
            self.browser.close()
        finally:
            self.log.close()


def wall_url(base: str, env: dict[str, str], every: float | None) -> str:
    """Add a wall account; its screen's URL touring the city and each district (or not)."""
    from dashboard.geography import load_geography

    out = subprocess.run([sys.executable, "-m", "dashboard.cli", "users", "add", "soakwall",
                          "--role", "wall"], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout
    token = out.split("?token=", 1)[1].split()[0]
    if every is None:
        return f"{base}/?token={token}"
    geography = load_geography(None, env.get("CITYBRAIN_CITY", "shanghai"))
    areas = [geography.root_id, *geography.children(geography.root_id)]
    return f"{base}/?token={token}&tour={','.join(areas)}&every={every:g}"


def sample(t_s: float, wall: Wall, health: dict[str, Any] | None, state: dict[str, Any] | None,
           gap: float, rss: dict[str, int], used_memory: int,
           guard_reloads: int) -> dict[str, Any]:
    """One row of samples.csv (`gap`: the longest time without an update since the last)."""
    measured = wall.evaluate(MEASURE) or {}

    def mb(value: Any) -> Any:
        return "" if value is None else round(value / MB, 2)

    ok = bool(health) and (health or {}).get("redis") == "ok"
    return {
        "t_s": round(t_s, 1), "utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "heap_mb": mb(measured.get("heap")), "heap_after_gc_mb": mb(measured.get("heapAfterGc")),
        "dom_nodes": measured.get("dom", ""),
        "react_fibers": "" if (fibers := wall.fibers()) is None else fibers,
        "since_update_s": "" if state is None else round(state["since"], 1),
        "max_gap_s": round(gap, 1),
        "banner": "" if state is None else int(state["banner"]),
        "pushed": "" if state is None else int(bool(state.get("pushed"))),
        "banner_shows": "" if state is None else state["shows"],
        "page_loads": wall.loads, "reopened_by_soak": wall.reopened,
        "guard_reloads": guard_reloads,
        "console_errors": wall.console_errors,
        "console_errors_unexpected": wall.unexpected_errors, "page_errors": wall.page_errors,
        "healthz_ok": int(ok), "applied": (health or {}).get("applied", "") if ok else "",
        "lag": (health or {}).get("consumer_lag", "") if ok else "",
        **{f"rss_mb_{role}": round(kb / 1024, 1) for role, kb in rss.items()},
        "redis_used_mb": round(used_memory / MB, 2) if used_memory else "",
    }


def redis_memory(data_dir: Path) -> int:
    """The embedded Redis's used_memory in bytes (0 when unreachable)."""
    try:
        client = redis.Redis(unix_socket_path=str(data_dir / "redis.sock"), socket_timeout=5)
        return int(client.info("memory")["used_memory"])
    except (redis.RedisError, OSError):
        return 0


RESTARTED = {"web": "gunicorn", "redis": "redis-server", "push": "dashboard.cli push"}


def restart(run_pid: int, what: str) -> int:
    """End the web (gunicorn's master) or the embedded Redis (SIGTERM), or kill the push
    process (SIGKILL, as a crash); its pid (0: not found)."""
    pid = child_pid(run_pid, RESTARTED[what])
    if pid:
        os.kill(pid, signal.SIGKILL if what == "push" else signal.SIGTERM)
    return pid


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=7200, help="seconds")
    parser.add_argument("--interval", type=float, default=60, help="seconds between samples")
    parser.add_argument("--rate", type=float, default=50, help="demo events per second")
    parser.add_argument("--out", default=str(ROOT / "docs" / "soak"), help="output folder")
    parser.add_argument("--warmup", type=float, default=600, help="seconds before 'start'")
    parser.add_argument("--every", type=float, default=30, help="tour dwell, seconds")
    parser.add_argument("--restart-web-at", type=float, default=None,
                        help="seconds (default: 40 %% of the duration; negative: never)")
    parser.add_argument("--restart-redis-at", type=float, default=None,
                        help="seconds (default: 70 %% of the duration; negative: never)")
    parser.add_argument("--restart-push-at", type=float, default=None,
                        help="seconds (default: 55 %% of the duration; negative: never)")
    parser.add_argument("--port", type=int, default=0, help="web port (default: a free one)")
    parser.add_argument("--no-tour", action="store_true", help="the wall stays on the city")
    parser.add_argument("--heap-at", type=float, action="append", default=[], metavar="S",
                        help="take a heap snapshot at S seconds into <out>/heap-S.json "
                             "(repeatable; compare two with bench/heap_snapshot.py)")
    parser.add_argument("--heap-raw", action="store_true",
                        help="keep each whole snapshot too (<out>/heap-S.heapsnapshot)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for `citybrain run` (repeatable)")
    args = parser.parse_args()
    if args.restart_web_at is None:
        args.restart_web_at = round(args.duration * 0.4)
    if args.restart_redis_at is None:
        args.restart_redis_at = round(args.duration * 0.7)
    if args.restart_push_at is None:
        args.restart_push_at = round(args.duration * 0.55)
    return args


def main() -> int:
    """Run the soak; 0 when the page stayed healthy and recovered from each restart."""
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("samples.csv", "restarts.json", "summary.json", "soak.png"):
        (out / stale).unlink(missing_ok=True)
    for stale_heap in [*out.glob("heap-*.json"), *out.glob("heap-*.heapsnapshot")]:
        stale_heap.unlink()
    data = Path(tempfile.mkdtemp(prefix="citybrain-soak-"))
    port = args.port or free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CITYBRAIN_") and k != "REDIS_URL"}
    env.update(CITYBRAIN_SIM_RATE=f"{args.rate:g}", CITYBRAIN_PORT=str(port),
               CITYBRAIN_PUSH_PORT=str(free_port()), CITYBRAIN_DATA_DIR=str(data),
               CITYBRAIN_WORKER_METRICS="off", CITYBRAIN_SECRET_KEY=secrets.token_hex(32),
               PYTHONPATH=str(ROOT))
    if args.no_tour:
        env["CITYBRAIN_WALL_TOUR"] = "off"
    env.update(item.split("=", 1) for item in args.env)
    run_log = out / "run.log"
    with open(run_log, "w") as log:
        run = subprocess.Popen([sys.executable, "-m", "dashboard.cli", "run"], cwd=ROOT,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    base = f"http://127.0.0.1:{port}"
    restarts = ((args.restart_web_at, "web"), (args.restart_push_at, "push"),
                (args.restart_redis_at, "redis"))
    plan = sorted((at, what) for at, what in restarts if 0 <= at < args.duration)
    done: list[Recovery] = []
    exit_code = None
    try:
        deadline = time.monotonic() + 180
        while (get_json(f"{base}/healthz") or {}).get("redis") != "ok":
            if run.poll() is not None or time.monotonic() > deadline or stop.is_set():
                raise SystemExit(f"the cockpit did not start; see {run_log}")
            time.sleep(0.5)
        url = wall_url(base, {**env, "REDIS_URL": f"unix://{data / 'redis.sock'}"},
                       None if args.no_tour else args.every)
        guard_log = LogCounter(run_log, "heap guard")
        with sync_playwright() as playwright:
            wall = Wall(playwright, url, out / "browser.log")
            start = time.monotonic()
            next_sample, active, gap = 0.0, None, 0.0
            heap_at = sorted(args.heap_at)
            with open(out / "samples.csv", "w", newline="") as csv_file:
                writer = None
                while not stop.is_set() and run.poll() is None:
                    wall.wait(1)
                    now = time.monotonic() - start
                    state = wall.evaluate(STATE)
                    if state is not None:
                        gap = max(gap, state["gap"])
                    if active is not None and active.observe(now, state):
                        done.append(active)
                        (out / "restarts.json").write_text(
                            json.dumps([r.report() for r in done], indent=2))
                        active = None
                    elif active is None and plan and now >= plan[0][0]:
                        what = plan.pop(0)[1]
                        wall.expecting = True
                        active = Recovery(what, round(now, 1), restart(run.pid, what),
                                          _base=(state["shows"], state["hides"])
                                          if state else None)
                    wall.expecting = active is not None or any(
                        now - (r.at_s + (r.ended_s or 0)) < AFTER_RESTART_S for r in done)
                    if now >= next_sample:
                        row = sample(now, wall, get_json(f"{base}/healthz"), state, gap,
                                     rss_by_role(run.pid), redis_memory(data), guard_log.count())
                        gap = 0.0
                        writer = write_row(csv_file, writer, row)
                        next_sample += args.interval
                    if heap_at and now >= heap_at[0]:
                        wall.heap_snapshot(out / f"heap-{heap_at.pop(0):g}.json", now,
                                           args.heap_raw)
                    if now >= args.duration and active is None:
                        break
            wall.close()
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
            try:
                exit_code = run.wait(60)
            except subprocess.TimeoutExpired:
                run.kill()
                exit_code = run.wait()
        else:
            exit_code = run.returncode
        shutil.rmtree(data, ignore_errors=True)
    extra = {"rate": args.rate, "duration_asked_s": args.duration, "interval_s": args.interval,
             "tour_every_s": None if args.no_tour else args.every, "settings": args.env,
             "run_exit_code": exit_code, "finished": not stop.is_set()}
    summary = soak_report.report(out, args.warmup, extra)
    healthy = (all(r.recovered for r in done) and len(done) == len(
        [at for at, _ in restarts if 0 <= at < args.duration])
        and not summary.get("console_errors_outside_restarts")
        and not summary.get("page_errors") and not summary.get("reopened_by_soak")
        and exit_code == 0)
    summary["healthy"] = healthy
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print(soak_report.headline(summary))
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
