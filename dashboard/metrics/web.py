"""The web's own counters and the per-request hooks: request id, latency, access log.

In gunicorn (`dashboard/gunicorn_conf.py`) `PROMETHEUS_MULTIPROC_DIR` is set before
a worker imports `prometheus_client`, so each metric here is kept in a file per process
and `/metrics` adds them up over every worker.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid

import flask
from prometheus_client import CollectorRegistry, Counter, Histogram

access_log = logging.getLogger("citybrain.access")

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "(unmatched)"  # a 404 for a path no route knows: raw paths are unbounded


class WebMetrics:
    """The counters a web process moves (one per app, on its own registry)."""

    def __init__(self) -> None:
        # Set by gunicorn_conf before this process imported prometheus_client.
        self.multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "citybrain_http_request_duration_seconds", "Web request latency by route template, "
            "method and status.", ["route", "method", "status"], buckets=LATENCY_BUCKETS,
            registry=self.registry)
        self.ticks = Counter("citybrain_update_ticks_total", "Screen update ticks served.",
                             registry=self.registry)
        self.sign_in_failures = Counter(
            "citybrain_sign_in_failures_total", "Failed sign-ins (password) and refused wall "
            "tokens (token).", ["method"], registry=self.registry)
        self.scope_refusals = Counter(
            "citybrain_scope_refusals_total", "Requests refused for an area outside the "
            "user's scope.", registry=self.registry)


def web_metrics() -> WebMetrics:
    """The metrics of the app serving this request."""
    return flask.current_app.extensions["citybrain_metrics"]


def request_id() -> str:
    """The id of this request: a sane `X-Request-Id` from the caller, else a new one."""
    given = flask.request.headers.get("X-Request-Id", "")
    return given if _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _start() -> None:
    flask.g.request_id = request_id()
    flask.g.started = time.perf_counter()


def _finish(response: flask.Response) -> flask.Response:
    seconds = time.perf_counter() - flask.g.get("started", time.perf_counter())
    rule = flask.request.url_rule
    route = rule.rule if rule is not None else UNMATCHED_ROUTE
    web_metrics().latency.labels(route, flask.request.method,
                                 str(response.status_code)).observe(seconds)
    response.headers["X-Request-Id"] = flask.g.get("request_id", "")
    access_log.info("%s %s %d", flask.request.method, route, response.status_code,
                    extra={"status": response.status_code,
                           "duration_ms": round(seconds * 1000, 1)})
    return response


def install(server: flask.Flask) -> WebMetrics:
    """Give every request an id, time it and log it; register the app's metrics."""
    metrics = WebMetrics()
    server.extensions["citybrain_metrics"] = metrics
    server.before_request(_start)
    server.after_request(_finish)
    return metrics
