"""Web under load: gunicorn workers, N clients polling the screen's update callback.

    .venv/bin/python bench/web_load.py [--clients 1,50] [--seconds 20] [--web-workers 2]
        [--cache-ttl 1.0]

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,50")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20)
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
    base = f"http://127.0.0.1:{port}"
    try:
        client = connect(url)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/healthz", timeout=10).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.5)
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


if __name__ == "__main__":
    sys.exit(main())
