"""The read API: `/api/v1/summary`, `/api/v1/areas/<id>`, `/healthz`."""

from __future__ import annotations

import flask

from dashboard.services import current
from dashboard.state.store import health

api = flask.Blueprint("api", __name__)


def _unknown(area_id: str) -> flask.Response:
    response = flask.jsonify({"error": "unknown_area", "area_id": area_id})
    response.status_code = 404
    return response


@api.get("/api/v1/summary")
def summary() -> flask.Response:
    """One area's numbers (the city when `area_id` is absent)."""
    services = current()
    area_id = flask.request.args.get("area_id") or services.geography.root_id
    if area_id not in services.geography.areas:
        return _unknown(area_id)
    return flask.jsonify(services.cache.view().summary(area_id))


@api.get("/api/v1/areas/<area_id>")
def area(area_id: str) -> flask.Response:
    """One area's numbers and each child's."""
    services = current()
    if area_id not in services.geography.areas:
        return _unknown(area_id)
    return flask.jsonify(services.cache.view().area_detail(area_id))


@api.get("/healthz")
def healthz() -> flask.Response:
    """Redis reachability, stream length, lag, last apply and counts."""
    services = current()
    report = health(services.client, services.settings)
    response = flask.jsonify(report)
    response.status_code = 200 if report["redis"] == "ok" else 503
    return response
