"""The web's and the push hub's work per round as open incidents grow, in one process.

    .venv/bin/python bench/view_scale.py [--open-incidents 1000,100000] [--rounds 25] [--spread]

On a real Redis (REDIS_URL, or an embedded one) a worker applies N open incidents spread
over the city (`tests.browser.report_incidents`); then each round reports 10 more (as
a feed does), lets the worker apply them and times, as the push hub and the web's
ticks do it: the state read by what changed plus the view (`StateCache.view`), the
frames of the city and of every district (`frame.compute`), and an official's scoped
view and frame (Xuhui). A round's reports lie in Xuhui's compounds, or with `--spread`
one in each of 10 districts in turn (a district's incidents, placed in the district
itself outside Xuhui, change every round or two: little of a view's work is reused).
Printed per size: the medians in ms and their ratio to the first size, the baseline of
the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.geography import load_geography
from dashboard.pipeline.worker import Worker
from dashboard.redis_conn import connect, url_or_embedded
from dashboard.screen import frame as screen_frame
from dashboard.settings import Settings
from dashboard.state.store import StateCache
from tests import browser
from tests.events import incident, now_ms

PER_ROUND = 10
SCOPE = "310104"


def run_size(settings: Settings, client, geography, extra: int, rounds: int,  # type: ignore[no-untyped-def]
             seq: list[int], points: list[tuple[float, float]]) -> dict[str, float]:
    """Report `extra` more open incidents; the medians (ms) of `rounds` rounds."""
    if extra:
        browser.report_incidents(client, settings, geography, extra, seed_value=len(seq),
                                 prefix=f"SCALE{len(seq)}")
    worker = Worker(settings, client, geography, name="view-scale")
    cache = StateCache(settings, client, geography)
    cache.view()
    districts = list(geography.children(geography.root_id))
    read: list[float] = []
    frames: list[float] = []
    scoped: list[float] = []
    for _ in range(rounds):
        for _ in range(PER_ROUND):
            seq.append(len(seq))
            client.xadd(settings.stream, incident(
                f"ROUND-{len(seq)}", point=points[len(seq) % len(points)], ts=now_ms() - 60_000,
                event_id=f"view-scale-{len(seq)}"))
        worker.work(burst=True)
        cache._read_at = 0.0  # this round's view is read now, whatever the cache's age
        started = time.perf_counter()
        view = cache.view()
        read.append(time.perf_counter() - started)
        started = time.perf_counter()
        for area_id in (geography.root_id, *districts):
            screen_frame.compute(view, area_id, "zh")
        frames.append(time.perf_counter() - started)
        started = time.perf_counter()
        screen_frame.compute(cache.view_for(SCOPE), SCOPE, "zh")
        scoped.append(time.perf_counter() - started)
    open_now = len(view.raw.open_incidents)
    return {"open": open_now, "read": statistics.median(read) * 1000,
            "frames": statistics.median(frames) * 1000,
            "scoped": statistics.median(scoped) * 1000, "districts": len(districts)}


def round_points(geography, spread: bool) -> list[tuple[float, float]]:  # type: ignore[no-untyped-def]
    """Where a round's reports lie: Xuhui's compounds, or every district in turn."""
    if not spread:
        compounds = geography.descendants_at(SCOPE, "compound")
        return [(geography.areas[c].lon, geography.areas[c].lat)
                for c in (compounds[k * 7 % len(compounds)] for k in range(len(compounds)))]
    import numpy as np

    from dashboard.demo.places import districts, sample_points

    pools = sample_points([geography.frame.geometry.loc[d] for d in districts(geography)],
                          40, np.random.default_rng(1))
    return [(round(float(lons[k]), 6), round(float(lats[k]), 6))  # district after district
            for k in range(40) for lons, lats in pools]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open-incidents", default="1000,100000",
                        help="sizes, the first the baseline")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--spread", action="store_true",
                        help="a round's reports in 10 districts, not in Xuhui's compounds")
    args = parser.parse_args()
    sizes = [int(s) for s in args.open_incidents.split(",") if s.strip()]
    tmp = tempfile.TemporaryDirectory(prefix="view-scale-")
    url, server = url_or_embedded(Path(tmp.name) / "redis")
    settings = Settings.load(env={"REDIS_URL": url, "CITYBRAIN_KEY_PREFIX": "viewscale",
                                  "CITYBRAIN_STREAM": "viewscale:events"})
    client = connect(url)
    try:
        for key in client.scan_iter("viewscale*"):
            client.delete(key)
        geography = load_geography(None, "shanghai")
        points = round_points(geography, args.spread)
        print("open incidents  read+view ms  frames ms (city + districts)  scoped ms (Xuhui)")
        seq: list[int] = []
        base: dict[str, float] | None = None
        had = 0
        for size in sizes:
            got = run_size(settings, client, geography, size - had, args.rounds, seq, points)
            had = size
            ratio = "" if base is None else (
                f"   (x{got['read'] / base['read']:.2f}, x{got['frames'] / base['frames']:.2f},"
                f" x{got['scoped'] / base['scoped']:.2f} of the first size)")
            print(f"{got['open']:>14,} {got['read']:>13.1f} {got['frames']:>12.1f} "
                  f"(1 + {got['districts']:.0f}) {got['scoped']:>22.1f}{ratio}", flush=True)
            base = base or got
    finally:
        for key in client.scan_iter("viewscale*"):
            client.delete(key)
        client.close()
        if server:
            server.stop()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
