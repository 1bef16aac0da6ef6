"""The ingest worker's metrics, served on their own port (`CITYBRAIN_WORKER_METRICS`).

Counters move as batches are committed; lag, pending and the age of the last
applied event are read from Redis at each scrape, so they are right for the
whole consumer group whichever worker is scraped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dashboard.kinds import BY_NAME
from dashboard.settings import Settings
from dashboard.state.store import health

if TYPE_CHECKING:
    from dashboard.pipeline.worker import BatchResult

log = logging.getLogger(__name__)

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def kind_label(kind: bytes | None) -> str:
    """A bounded label for a producer's `kind`: a known kind, `command`, else `other`."""
    text = (kind or b"").decode(errors="replace")
    return text if text in BY_NAME or text == "command" else "other"


class StreamCollector(Collector):
    """Lag, pending and seconds since the last applied event, read from Redis per scrape."""

    GAUGES = (
        ("citybrain_consumer_lag", "Entries of the events stream not yet delivered to the "
         "consumer group.", "consumer_lag"),
        ("citybrain_consumer_pending", "Entries delivered but not yet acknowledged.",
         "pending"),
        ("citybrain_seconds_since_last_applied", "Seconds since a batch was last applied.",
         "seconds_since_last_applied"),
    )

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.client = client

    def describe(self) -> Iterator[Metric]:
        """The gauges' names, without asking Redis (registering must not scan the stream)."""
        for name, text, _ in self.GAUGES:
            yield GaugeMetricFamily(name, text)

    def collect(self) -> Iterator[Metric]:
        """One `health` read; a gauge Redis cannot answer is left out."""
        report = health(self.client, self.settings)
        for name, text, key in self.GAUGES:
            if (value := report.get(key)) is not None:
                yield GaugeMetricFamily(name, text, value=float(value))


class WorkerMetrics:
    """The counters one worker process moves, on their own registry."""

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.applied = Counter("citybrain_events_applied_total", "Events applied, by kind.",
                               ["kind"], registry=self.registry)
        self.duplicates = Counter("citybrain_events_duplicate_total", "Events skipped as "
                                  "already applied (same event_id), by kind.", ["kind"],
                                  registry=self.registry)
        self.dead = Counter("citybrain_events_dead_total", "Entries dead-lettered, by reason "
                            "and kind.", ["reason", "kind"], registry=self.registry)
        self.batch_seconds = Histogram("citybrain_apply_batch_seconds", "Time to apply one "
                                       "batch (state, dead letters, acknowledgement).",
                                       buckets=BATCH_BUCKETS, registry=self.registry)
        self.registry.register(StreamCollector(settings, client))

    def observe(self, result: BatchResult, seconds: float) -> None:
        """Count what one committed batch did."""
        for kind, n in result.applied_kinds.items():
            self.applied.labels(kind).inc(n)
        for kind, n in result.duplicate_kinds.items():
            self.duplicates.labels(kind).inc(n)
        for (reason, kind), n in result.dead_kinds.items():
            self.dead.labels(reason, kind).inc(n)
        self.batch_seconds.observe(seconds)

    def serve(self, listen: str) -> int:
        """Serve `/metrics` on `host:port` in a daemon thread; the port bound (0 picks one)."""
        host, _, port = listen.rpartition(":")
        server, _thread = start_http_server(int(port), host.strip("[]"), registry=self.registry)
        bound = int(server.server_address[1])
        log.info("worker metrics on http://%s:%d/metrics", host, bound)
        return bound
