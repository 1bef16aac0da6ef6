"""Flooding the stream for benchmarks: many valid events, as fast as redis-py pipelines go."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import tzinfo

import redis

from dashboard.demo.places import GeographyLike
from dashboard.demo.simulator import DEFAULT_ZONE, Simulator


def flood(
    client: redis.Redis, stream: str, geography: GeographyLike, n: int, seed: int = 0,
    batch: int = 2000, clock: Callable[[], float] = time.time, zone: tzinfo = DEFAULT_ZONE,
) -> int:
    """Write `n` valid events (pipelined XADD, no MULTI), made in bulk; the count."""
    simulator = Simulator(None, stream, geography, seed, clock, zone=zone)
    written = 0
    while written < n:
        events = simulator.flood_events(min(batch, n - written))
        pipe = client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(stream, event)  # type: ignore[arg-type]
        pipe.execute()
        written += len(events)
    return written
