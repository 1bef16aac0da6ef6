"""Web under load: gunicorn workers, N clients polling the screen's update callback.

    .venv/bin/python bench/web_load.py [--clients 1,50] [--seconds 20] [--web-workers 2]
        [--cache-ttl 1.0]
    .venv/bin/python bench/web_load.py --push 200,1000 [--seconds 20] [--open-incidents N]

`--push N,M` measures the push process instead (`citybrain push` beside the web):
N, then M screens hold a raw server-sent event stream each (asyncio sockets in this
process, as many browsers would); printed per count: messages and KB received per
screen per second, the push process's p50/p95/max from the state change (the
worker's apply) to the message written to each screen's connection (its own
measure, `/push/healthz`), its rounds' p95, CPU ms per message sent, the Redis reads
per second of the push process (its own count of round trips: must not grow
with the screens), its memory (RSS)
and errors (streams refused or ended). With `--open-incidents N`, N more open
incidents are then reported all over the city (through the stream, applied by a
worker) and every screen count runs again: its line prints its ratio to the same
count's run before them.

Starts a real Redis (embedded unless REDIS_URL is set), `citybrain worker`,
the demo feed at `--rate` events/s and `citybrain web` (gunicorn, the
Procfile's server). Headless Chromium loads the page once to capture the
exact request its update tick posts; then each simulated client posts it
every second (keeping its own signature, as a browser does). Printed per
client count: requests/s, p50/p95 response time, server CPU per request
(all gunicorn processes), and the web's Redis reads per second, which must
not grow with the number of clients (the shared per-tick cache). The
baseline is the first client count: later lines print their ratio to it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.redis_conn import connect, url_or_embedded
from tests import browser

ROOT = Path(__file__).resolve().parent.parent

WEB_READS = ("get", "hgetall", "lrange", "hvals")  # what the web process reads with


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def web_reads(client) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in WEB_READS)


def capture_tick(base: str) -> dict:
    """The JSON body the page posts on its update tick."""
    with sync_playwright() as playwright:
        chromium = browser.launch(playwright)
        context = chromium.new_context(viewport={"width": 1920, "height": 1080})
        browser.offline(context)
        page = context.new_page()
        bodies: list[dict] = []

        def on_request(request) -> None:  # type: ignore[no-untyped-def]
            posted = request.post_data or ""
            if "_dash-update-component" in request.url and "kpi-row.children" in posted:
                bodies.append(json.loads(posted))

        page.on("request", on_request)
        page.goto(base + "/")
        deadline = time.monotonic() + 60
        while not bodies and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        chromium.close()
    if not bodies:
        raise RuntimeError("the page posted no update tick in 60 s")
    return bodies[0]


def poll(base: str, body: dict, until: float, latencies: list[float], errors: list[int]) -> None:
    """One client: post the tick every second, keeping the signature it is sent back."""
    session = requests.Session()
    body = json.loads(json.dumps(body))
    sig_state = next(s for s in body["state"] if s["id"] == "tick-sig")
    while time.monotonic() < until:
        start = time.monotonic()
        response = session.post(base + "/_dash-update-component", json=body, timeout=30)
        latencies.append((time.monotonic() - start) * 1000)
        if response.status_code == 200:
            sig = response.json().get("response", {}).get("tick-sig", {}).get("data")
            if sig is not None:
                sig_state["value"] = sig
        elif response.status_code != 204:
            errors.append(response.status_code)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - start)))


def run(base: str, body: dict, clients: int, seconds: float, web: psutil.Process,
        client) -> dict[str, float]:
    procs = [web, *web.children(recursive=True)]
    cpu_before = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
    reads_before = web_reads(client)
    latencies: list[float] = []
    errors: list[int] = []
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=poll, args=(base, body, until, latencies, errors))
               for _ in range(clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
        time.sleep(1.0 / clients)  # spread the clients over the second, as browsers are
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    cpu = sum(p.cpu_times().user + p.cpu_times().system for p in procs) - cpu_before
    ordered = sorted(latencies)
    return {"requests_per_s": len(latencies) / elapsed,
            "p50_ms": statistics.median(ordered),
            "p95_ms": ordered[int(0.95 * (len(ordered) - 1))],
            "cpu_ms_per_request": cpu * 1000 / max(len(latencies), 1),
            "redis_reads_per_s": (web_reads(client) - reads_before) / elapsed,
            "errors": len(errors)}


async def _screen(port: int, path: str, until: float, got: dict[str, int]) -> None:
    """One raw SSE screen: count the update messages and bytes until `until`."""
    import asyncio

    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        got["errors"] += 1
        return
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        got["errors"] += 1
        writer.close()
        return
    loop = asyncio.get_running_loop()
    tail = b""
    try:
        while loop.time() < until:
            chunk = await asyncio.wait_for(reader.read(65536), max(0.1, until - loop.time()))
            if not chunk:
                got["errors"] += 1  # ended by the server
                break
            got["bytes"] += len(chunk)
            got["messages"] += (tail + chunk).count(b"event: update")
            tail = chunk[-16:]
    except TimeoutError:
        pass
    writer.close()


def push_run(push_port: int, screens: int, seconds: float,
             push: psutil.Process) -> dict[str, float]:
    """`screens` raw streams for `seconds`; the push process's figures meanwhile."""
    import asyncio

    got = {"messages": 0, "bytes": 0, "errors": 0}

    async def all_screens() -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        await asyncio.gather(*(_screen(push_port, "/push/stream", until, got)
                               for _ in range(screens)))

    health = f"http://127.0.0.1:{push_port}/push/healthz"
    before = requests.get(health, timeout=30).json()
    cpu_before = sum(push.cpu_times()[:2])
    start = time.monotonic()
    asyncio.run(all_screens())
    elapsed = time.monotonic() - start
    after = requests.get(health, timeout=30).json()
    sent = max(after["sent"] - before["sent"], 1)
    return {"msgs_per_screen_s": got["messages"] / screens / elapsed,
            "kb_per_screen_s": got["bytes"] / 1000 / screens / elapsed,
            "p50_ms": after["delivery"]["p50_ms"], "p95_ms": after["delivery"]["p95_ms"],
            "max_ms": after["delivery"]["max_ms"], "round_p95_ms": after["round_ms"]["p95_ms"],
            "cpu_ms_per_msg": (sum(push.cpu_times()[:2]) - cpu_before) * 1000 / sent,
            "redis_reads_per_s": (after["redis_calls"] - before["redis_calls"]) / elapsed,
            "rss_mb": push.memory_info().rss / 1e6, "errors": got["errors"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,50")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--push", default="",
                        help="screen counts for the push process (e.g. 200,1000)")
    parser.add_argument("--open-incidents", type=int, default=0,
                        help="with --push: then as many more open incidents, measured again")
    parser.add_argument("--cache-ttl", type=float, default=None,
                        help="CITYBRAIN_CACHE_TTL_S (default: the setting's default)")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="web-load-")
    url, server = url_or_embedded(Path(tmp.name) / "redis")
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CITYBRAIN_")},
           "REDIS_URL": url, "CITYBRAIN_PORT": str(port),
           "CITYBRAIN_WEB_WORKERS": str(args.web_workers), "PYTHONPATH": str(ROOT)}
    if args.cache_ttl is not None:
        env["CITYBRAIN_CACHE_TTL_S"] = str(args.cache_ttl)
    me = [sys.executable, "-m", "dashboard.cli"]
    children = [
        subprocess.Popen([*me, "worker"], env=env, stderr=subprocess.DEVNULL),
        subprocess.Popen([*me, "simulate", "--rate", str(args.rate)], env=env,
                         stderr=subprocess.DEVNULL),
        subprocess.Popen([*me, "web"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
    ]
    push_port = free_port()
    if args.push:
        children.append(subprocess.Popen([*me, "push"], env={
            **env, "CITYBRAIN_PUSH_PORT": str(push_port)}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
    base = f"http://127.0.0.1:{port}"
    try:
        client = connect(url)
        wait_up(base + "/healthz", "the web server")
        if args.push:
            return push_main(args, push_port, psutil.Process(children[-1].pid), url)
        body = capture_tick(base)
        web = psutil.Process(children[2].pid)
        print(f"gunicorn with {args.web_workers} workers, feed {args.rate:g} events/s, "
              f"{args.seconds:g} s per run")
        print(f"{'clients':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'CPU ms/req':>11} "
              f"{'Redis reads/s':>14} {'errors':>6}")
        first = None
        for clients in (int(c) for c in args.clients.split(",")):
            r = run(base, body, clients, args.seconds, web, client)
            first = first or r
            print(f"{clients:>7} {r['requests_per_s']:>7.1f} {r['p50_ms']:>8.1f} "
                  f"{r['p95_ms']:>8.1f} {r['cpu_ms_per_request']:>11.1f} "
                  f"{r['redis_reads_per_s']:>14.1f} {r['errors']:>6}   "
                  f"(reads/s x{r['redis_reads_per_s'] / first['redis_reads_per_s']:.2f}, "
                  f"CPU/req x{r['cpu_ms_per_request'] / first['cpu_ms_per_request']:.2f})",
                  flush=True)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(20)
        if server:
            server.stop()
    return 0


def wait_up(url: str, what: str, timeout_s: float = 60) -> None:
    """Until `url` answers 200 (fails after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if requests.get(url, timeout=10).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.5)


def push_main(args: argparse.Namespace, port: int, push: psutil.Process, url: str) -> int:
    """The push process's lines, one per screen count (and again at `--open-incidents`)."""
    wait_up(f"http://127.0.0.1:{port}/push/healthz", "the push process")
    print(f"push process, feed {args.rate:g} events/s, {args.seconds:g} s per run")
    print(f"{'screens':>7} {'open':>7} {'msg/s':>6} {'KB/s':>6} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'max ms':>7} {'round p95':>9} {'CPU ms/msg':>10} {'reads/s':>8} {'RSS MB':>7} "
          f"{'errors':>6}")
    counts = [int(c) for c in args.push.split(",")]
    baseline: dict[int, dict[str, float]] = {}
    for extra in (0, args.open_incidents) if args.open_incidents else (0,):
        if extra:
            report_open(url, extra)
        for screens in counts:
            r = push_run(port, screens, args.seconds, push)
            baseline.setdefault(screens, r)
            base = baseline[screens]
            ratio = "" if r is base else (
                f"   (p95 x{r['p95_ms'] / max(base['p95_ms'], 1):.2f}, round p95 "
                f"x{r['round_p95_ms'] / max(base['round_p95_ms'], 1):.2f} of the same "
                f"screens without them)")
            print(f"{screens:>7} {'+' + str(extra) if extra else 'demo':>7} "
                  f"{r['msgs_per_screen_s']:>6.2f} {r['kb_per_screen_s']:>6.1f} "
                  f"{r['p50_ms']!s:>7} {r['p95_ms']!s:>7} {r['max_ms']!s:>7} "
                  f"{r['round_p95_ms']!s:>9} {r['cpu_ms_per_msg']:>10.2f} "
                  f"{r['redis_reads_per_s']:>8.1f} {r['rss_mb']:>7.0f} {r['errors']:>6}{ratio}",
                  flush=True)
    return 0


def report_open(url: str, n: int) -> None:
    """`n` more open incidents all over the city, applied before it returns."""
    from dashboard.geography import load_geography
    from dashboard.settings import Settings

    started = time.monotonic()
    settings = Settings.load(env={"REDIS_URL": url})
    browser.report_incidents(connect(url), settings, load_geography(None, "shanghai"), n,
                             prefix="SCALE")
    print(f"{n:,} open incidents reported and applied in {time.monotonic() - started:.0f} s",
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
