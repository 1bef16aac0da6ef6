"""Soak test: the README's main command for a long time, with a screen open.

    python scripts/soak.py [--duration 3600] [--interval 10] [--rate 50] [--out /tmp/soak]

Starts `citybrain run` (the embedded Redis in `<out>/data`, the demo feed at
`--rate` events/s) and opens the city screen in headless Chromium at
1920x1080. Every `--interval` seconds it appends a row to `<out>/samples.csv`:
/healthz numbers (applied, rate, duplicates, dead-lettered, lag, pending,
seconds since the last apply), the supervisor's deaths and restarts per
child, the page's console errors, page errors and 5xx answers so far,
whether the stale banner was shown since the last row, the RSS of every
process and Redis's used_memory. `<out>/summary.json` is rewritten after every
row (`"finished": false` until the end); `<out>/run.log` is the cockpit's
output, `<out>/browser.log` the page's errors. SIGTERM or SIGINT ends the
soak early, with its summary. Exit status 1 when anything went wrong.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402 - after the path is set
from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from tests import browser  # noqa: E402

# Counts, in the page, the half-seconds the stale banner was visible.
WATCH_STALE = """() => {
  window.__staleTicks = 0;
  setInterval(() => {
    const banner = document.getElementById('stale-banner');
    if (banner && !banner.classList.contains('hidden')) window.__staleTicks += 1;
  }, 500);
}"""
ROLES = ("supervisor", "worker", "feed", "web_master", "web_workers", "redis")


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> dict[str, Any] | None:
    """The JSON answer (also of a 503), or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        return json.load(exc)  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def children_of(pid: int) -> list[int]:
    """Direct children of a process (from /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def rss_kb(pid: int) -> int:
    """Resident set size of a process, in kB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    """A process's command line, spaces between the arguments."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_by_role(run_pid: int) -> dict[str, int]:
    """RSS (kB) of the supervisor, each child and the embedded Redis."""
    rss = dict.fromkeys(ROLES, 0)
    rss["supervisor"] = rss_kb(run_pid)
    for pid in children_of(run_pid):
        line = cmdline(pid)
        if "redis-server" in line:
            rss["redis"] += rss_kb(pid)
        elif "gunicorn" in line:
            rss["web_master"] += rss_kb(pid)
            rss["web_workers"] += sum(rss_kb(p) for p in children_of(pid))
        elif "simulate" in line:
            rss["feed"] += rss_kb(pid)
        elif "worker" in line:
            rss["worker"] += rss_kb(pid)
    return rss


class Page:
    """The screen in headless Chromium, and what went wrong in it."""

    def __init__(self, playwright: Any, url: str, log_path: Path) -> None:
        self.url = url
        self.log = open(log_path, "a", encoding="utf-8")
        self.console_errors = self.page_errors = self.http_5xx = 0
        self.stale_ticks_before = 0
        self.browser = browser.launch(playwright)
        self.context = self.browser.new_context(viewport={"width": 1920, "height": 1080})
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", self._page_error)
        self.page.on("response", self._response)
        self.open()

    def open(self) -> None:
        """(Re)load the screen and start watching its stale banner."""
        self.page.goto(self.url, wait_until="load", timeout=60_000)
        self.page.evaluate(WATCH_STALE)
        self.stale_ticks_before = 0

    def _note(self, what: str) -> None:
        self.log.write(f"{datetime.now(UTC).isoformat(timespec='seconds')} {what}\n")
        self.log.flush()

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors += 1
            self._note(f"console error: {message.text[:500]}")

    def _page_error(self, error: Any) -> None:
        self.page_errors += 1
        self._note(f"page error: {str(error)[:500]}")

    def _response(self, response: Any) -> None:
        if response.status >= 500:
            self.http_5xx += 1
            self._note(f"{response.status} {response.request.method} {response.url}")

    def stale_seconds_since_last(self) -> float:
        """Seconds the stale banner was visible since the previous call."""
        try:
            ticks = int(self.page.evaluate("() => window.__staleTicks ?? 0"))
        except PlaywrightError as exc:
            self._note(f"page unusable ({exc}); reloading")
            try:
                self.open()
            except PlaywrightError as again:
                self._note(f"reload failed: {again}")
            return 0.0
        seen, self.stale_ticks_before = ticks - self.stale_ticks_before, ticks
        return seen / 2

    def wait(self, seconds: float) -> None:
        """Let the page run (its events are handled meanwhile)."""
        self.page.wait_for_timeout(seconds * 1000)

    def close(self) -> None:
        """Close the browser and the log."""
        try:
            self.browser.close()
        finally:
            self.log.close()


def redis_memory(data_dir: Path) -> int:
    """The embedded Redis's used_memory in bytes (0 when unreachable)."""
    try:
        client = redis.Redis(unix_socket_path=str(data_dir / "redis.sock"), socket_timeout=5)
        return int(client.info("memory")["used_memory"])
    except (redis.RedisError, OSError):
        return 0


def sample_row(start: float, health: dict[str, Any] | None, last: dict[str, Any],
               page: Page, stale_s: float, rss: dict[str, int], used: int) -> dict[str, Any]:
    """One CSV row."""
    now = time.monotonic()
    ok = bool(health) and health.get("redis") == "ok"
    applied = health.get("applied", 0) if ok and health else last.get("applied", 0)
    rate = ((applied - last["applied"]) / (now - last["at"])) if last.get("at") else 0.0
    children = (health or {}).get("children") or {}
    row: dict[str, Any] = {
        "t_s": round(now - start, 1), "utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "healthz_ok": int(ok), "applied": applied, "applied_per_s": round(rate, 1),
        "duplicates": (health or {}).get("duplicates", ""),
        "dead": sum(((health or {}).get("dead_lettered") or {}).values()),
        "lag": (health or {}).get("consumer_lag", ""),
        "pending": (health or {}).get("pending", ""),
        "since_last_applied_s": (health or {}).get("seconds_since_last_applied", ""),
        "restarts": sum(int(c.get("restarts") or 0) for c in children.values()),
        "worker_deaths": int((children.get("worker") or {}).get("deaths") or 0),
        "web_deaths": int((children.get("web") or {}).get("deaths") or 0),
        "feed_deaths": int((children.get("feed") or {}).get("deaths") or 0),
        "console_errors": page.console_errors, "page_errors": page.page_errors,
        "http_5xx": page.http_5xx, "stale_banner_s": stale_s,
        "redis_used_memory": used,
        **{f"rss_kb_{role}": kb for role, kb in rss.items()},
    }
    last.update(applied=applied, at=now)
    return row


def summarize(rows: list[dict[str, Any]], run_log: Path, finished: bool,
              args: argparse.Namespace, exit_code: int | None) -> dict[str, Any]:
    """What the soak showed: totals, worst values, growth of memory."""
    if not rows:
        return {"finished": finished, "samples": 0}
    text = run_log.read_text(errors="replace") if run_log.exists() else ""
    first, final = rows[0], rows[-1]

    def growth(column: str) -> dict[str, int]:
        values = [int(r[column]) for r in rows if r[column]]
        return {"first": values[0], "last": values[-1], "max": max(values)} if values else {}

    elapsed = final["t_s"] - first["t_s"]
    return {
        "finished": finished, "rate_asked": args.rate, "duration_asked_s": args.duration,
        "ran_s": final["t_s"], "samples": len(rows), "started": first["utc"],
        "last_sample": final["utc"],
        "applied": final["applied"],
        "applied_per_s_mean": round((final["applied"] - first["applied"]) / elapsed, 1)
        if elapsed else None,
        "max_lag": max((int(r["lag"]) for r in rows if r["lag"] not in ("", None)), default=None),
        "max_since_last_applied_s": max((float(r["since_last_applied_s"]) for r in rows
                                         if r["since_last_applied_s"] not in ("", None)),
                                        default=None),
        "healthz_failures": sum(1 for r in rows if not r["healthz_ok"]),
        "duplicates": final["duplicates"], "dead_lettered": final["dead"],
        "restarts": final["restarts"], "worker_deaths": final["worker_deaths"],
        "web_deaths": final["web_deaths"], "feed_deaths": final["feed_deaths"],
        "console_errors": final["console_errors"], "page_errors": final["page_errors"],
        "http_5xx": final["http_5xx"],
        "stale_banner_s": sum(r["stale_banner_s"] for r in rows),
        "tracebacks_in_run_log": text.count("Traceback (most recent call last)"),
        "exits_in_run_log": text.count(" exited with "),
        "redis_used_memory": growth("redis_used_memory"),
        "rss_kb": {role: growth(f"rss_kb_{role}") for role in ROLES},
        "run_exit_code": exit_code,
    }


def healthy(summary: dict[str, Any]) -> bool:
    """Nothing died, failed or went stale, and events kept flowing."""
    return (summary.get("samples", 0) > 0 and not summary["restarts"]
            and not summary["console_errors"] and not summary["page_errors"]
            and not summary["http_5xx"] and not summary["stale_banner_s"]
            and not summary["tracebacks_in_run_log"] and not summary["healthz_failures"])


def main() -> int:
    """Run the soak; 0 when it stayed healthy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3600, help="seconds")
    parser.add_argument("--interval", type=float, default=10, help="seconds between samples")
    parser.add_argument("--rate", type=float, default=50, help="demo events per second")
    parser.add_argument("--out", default="/tmp/soak", help="folder of the logs")
    parser.add_argument("--port", type=int, default=0, help="web port (default: a free one)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    port = args.port or free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CITYBRAIN_") and k != "REDIS_URL"}
    env.update(CITYBRAIN_SIM_RATE=f"{args.rate:g}", CITYBRAIN_PORT=str(port),
               CITYBRAIN_DATA_DIR=str(data), PYTHONPATH=str(ROOT))
    run_log = out / "run.log"
    with open(run_log, "w") as log:
        run = subprocess.Popen([sys.executable, "-m", "dashboard.cli", "run"], cwd=ROOT,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    base = f"http://127.0.0.1:{port}"
    rows: list[dict[str, Any]] = []
    exit_code = None
    try:
        deadline = time.monotonic() + 180
        while (get_json(f"{base}/healthz") or {}).get("redis") != "ok":
            if run.poll() is not None or time.monotonic() > deadline or stop.is_set():
                raise SystemExit(f"the cockpit did not start; see {run_log}")
            time.sleep(0.5)
        with sync_playwright() as playwright:
            page = Page(playwright, f"{base}/", out / "browser.log")
            start = time.monotonic()
            last: dict[str, Any] = {}
            with open(out / "samples.csv", "w", newline="") as csv_file:
                writer: csv.DictWriter[str] | None = None
                while not stop.is_set() and run.poll() is None:
                    page.wait(args.interval)
                    row = sample_row(start, get_json(f"{base}/healthz"), last, page,
                                     page.stale_seconds_since_last(), rss_by_role(run.pid),
                                     redis_memory(data))
                    if writer is None:
                        writer = csv.DictWriter(csv_file, fieldnames=list(row))
                        writer.writeheader()
                    writer.writerow(row)
                    csv_file.flush()
                    rows.append(row)
                    (out / "summary.json").write_text(json.dumps(
                        summarize(rows, run_log, False, args, None), indent=2))
                    if row["t_s"] >= args.duration:
                        break
            page.close()
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
    summary = summarize(rows, run_log, True, args, exit_code)
    summary["healthy"] = healthy(summary) and exit_code == 0
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0 if summary["healthy"] else 1


if __name__ == "__main__":
    sys.exit(main())
