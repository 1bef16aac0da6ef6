"""`GET /metrics`: the web's counters (every gunicorn worker's) and gauges read from Redis.

Once accounts exist the route answers 404 unless the request carries
`Authorization: Bearer <CITYBRAIN_METRICS_TOKEN>`; the reverse proxy keeps it internal too.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator

import flask
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from dashboard.auth.guard import access
from dashboard.metrics.presence import REPLAY_WINDOW_S, SCREEN_WINDOW_S
from dashboard.metrics.web import web_metrics
from dashboard.services import Services, current

metrics = flask.Blueprint("metrics", __name__)


class StateCollector(Collector):
    """Gauges read at scrape time: screens, replays, open and overdue incidents by district."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        """Read Redis once per scrape (the state through the process's cache)."""
        services, now = self.services, time.time()
        yield GaugeMetricFamily(
            "citybrain_screens_connected", f"Distinct viewers whose screen ticked in the last "
            f"{SCREEN_WINDOW_S:g} s.", value=services.screens.count(now))
        yield GaugeMetricFamily(
            "citybrain_replay_sessions", f"Distinct viewers who looked back in the last "
            f"{REPLAY_WINDOW_S:g} s.", value=services.replayer.sessions.count(now))
        view = services.cache.view()
        open_ = GaugeMetricFamily("citybrain_incidents_open", "Open incidents by district.",
                                  labels=["district"])
        overdue = GaugeMetricFamily("citybrain_incidents_overdue",
                                    "Open incidents past their SLA by district.",
                                    labels=["district"])
        geography = services.geography
        for district in geography.children(geography.root_id):
            incidents = view.summary(district)["incidents"]
            open_.add_metric([district], incidents["open"])
            overdue.add_metric([district], incidents["overdue"])
        yield open_
        yield overdue


class _Own(Collector):
    """The counters of this process (when not in gunicorn's multi-process mode)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        """Everything in the app's registry."""
        yield from self.registry.collect()


def _allowed(token: str | None) -> bool:
    if access().open_mode():
        return True
    given = flask.request.headers.get("Authorization", "").encode()
    return bool(token) and hmac.compare_digest(given, f"Bearer {token}".encode())


@metrics.get("/metrics")
def scrape() -> flask.Response:
    """The Prometheus text format; 404 with accounts and no right token."""
    services = current()
    if not _allowed(services.settings.metrics_token):
        flask.abort(404)
    registry = CollectorRegistry(auto_describe=False)
    own = web_metrics()
    if own.multiproc_dir:
        MultiProcessCollector(registry, own.multiproc_dir)
    else:
        registry.register(_Own(own.registry))
    registry.register(StateCollector(services))
    return flask.Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
