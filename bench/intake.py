"""Intake benchmark: accepted events/s over HTTP against direct XADD, in one run.

    .venv/bin/python bench/intake.py [-n 20000] [--batch 1000] [--clients 2]

Uses REDIS_URL when set (its database is flushed!), otherwise an embedded
redis-server in a temporary folder. The same demo events are written twice:
by pipelined XADD straight to one stream (the baseline, batches of the same
size), and by POSTing batches to `/api/v1/events` of the real app served by
werkzeug's threaded WSGI server in a thread of this process, into another
stream (validation, location, the idempotent add script, dead-lettering and
the audit included). Prints both rates and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import requests
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.app import create_app
from dashboard.demo.simulator import Simulator
from dashboard.geography import load_geography
from dashboard.producers import ProducerStore
from dashboard.redis_conn import connect, url_or_embedded
from dashboard.settings import Settings


def direct_rate(url: str, stream: str, batches: list[list[dict[str, str]]]) -> float:
    """Events/s written by pipelined XADD, one pipeline per batch."""
    client = connect(url)
    start = time.perf_counter()
    for batch in batches:
        pipe = client.pipeline(transaction=False)
        for event in batch:
            pipe.xadd(stream, event)  # type: ignore[arg-type]
        pipe.execute()
    return sum(map(len, batches)) / (time.perf_counter() - start)


def http_rate(base: str, token: str, batches: list[list[dict[str, str]]],
              clients: int) -> tuple[int, int, float]:
    """Accepted events, rejected events and accepted events/s over HTTP."""
    local = threading.local()

    def send(batch: list[dict[str, str]]) -> tuple[int, int]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update({"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
        reply = local.session.post(f"{base}/api/v1/events", data=orjson.dumps(batch),
                                   timeout=120)
        reply.raise_for_status()
        answer = reply.json()
        return answer["accepted"] - answer["duplicates"], answer["rejected"]

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        counts = list(pool.map(send, batches))
    elapsed = time.perf_counter() - start
    accepted = sum(a for a, _ in counts)
    return accepted, sum(r for _, r in counts), accepted / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="events to write each way")
    parser.add_argument("--batch", type=int, default=1000, help="events per request")
    parser.add_argument("--clients", type=int, default=2, help="concurrent HTTP clients")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, server = url_or_embedded(tmp)
        try:
            client = connect(url)
            client.flushdb()
            settings = Settings.load(env={"REDIS_URL": url, "CITYBRAIN_AUDIT_DIR": tmp,
                                          "CITYBRAIN_STREAM": "bench:intake",
                                          "CITYBRAIN_INTAKE_RATE": str(10 * args.n)})
            geography = load_geography(None, settings.city)
            events = Simulator(None, settings.stream, geography, 1).flood_events(args.n)
            batches = [events[i:i + args.batch] for i in range(0, len(events), args.batch)]
            token = ProducerStore(client, settings.state_prefix, geography).add("bench")
            web = make_server("127.0.0.1", 0, create_app(settings).server, threaded=True)
            thread = threading.Thread(target=web.serve_forever, daemon=True)
            thread.start()
            try:
                base = f"http://127.0.0.1:{web.server_port}"
                before = direct_rate(url, "bench:direct", batches)
                accepted, rejected, over_http = http_rate(base, token, batches, args.clients)
                after = direct_rate(url, "bench:direct2", batches)
            finally:
                web.shutdown()
                thread.join(5)
            direct = (before + after) / 2  # before and after: other load weighs on both
            print(f"direct XADD  {args.n:>8,} events: {before:>9,.0f}/s before, "
                  f"{after:>9,.0f}/s after")
            print(f"HTTP intake  {accepted:>8,} accepted ({rejected} rejected): "
                  f"{over_http:>9,.0f}/s with {args.clients} client(s), "
                  f"batches of {args.batch}")
            print(f"stream lengths: intake {client.xlen(settings.stream):,}, "
                  f"direct {client.xlen('bench:direct'):,}")
            print(f"ratio HTTP/direct = {over_http / direct:.3f}")
        finally:
            if server:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
