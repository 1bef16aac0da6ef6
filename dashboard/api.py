"""The read API: `/api/v1/summary`, `/api/v1/areas/<id>`, `/healthz`."""

from __future__ import annotations

from datetime import datetime

import flask
from werkzeug.exceptions import BadRequest

from dashboard.auth.guard import current_user, require_area
from dashboard.services import current
from dashboard.state.replay import ReplayBusy, parse_at
from dashboard.state.store import health
from dashboard.state.view import CityView
from dashboard.viewer import viewer_id

api = flask.Blueprint("api", __name__)


def requested_moment() -> datetime | None:
    """The moment of `?at=` (400 if it is not one), or None for live."""
    at = flask.request.args.get("at")
    if not at:
        return None
    try:
        return parse_at(at, current().settings)
    except ValueError as exc:
        raise BadRequest(f"at: {exc}") from exc


def requested_view() -> CityView:
    """Live, or as it was at `?at=` (this viewer's replay of the kept stream)."""
    services = current()
    scope = current_user().scope
    moment = requested_moment()
    if moment is None:
        return services.cache.view_for(scope)
    return services.replayer.view_at(viewer_id(), moment).restricted_to(scope)


def replay_busy(busy: ReplayBusy) -> flask.Response:
    """503 with `Retry-After`: the viewer's replay is in use or still being prepared."""
    body: dict[str, object] = {"error": "replay_busy" if busy.progress is None
                               else "replay_preparing", "retry_after_s": busy.retry_after_s}
    if busy.progress is not None:
        body["progress"] = round(busy.progress, 2)
    response = flask.jsonify(body)
    response.status_code = 503
    response.headers["Retry-After"] = str(busy.retry_after_s)
    response.headers["Cache-Control"] = "no-store"
    return response


def unknown_area(area_id: str) -> flask.Response:
    """404 for an area the geography does not have."""
    response = flask.jsonify({"error": "unknown_area", "area_id": area_id})
    response.status_code = 404
    return response


@api.get("/api/v1/summary")
def summary() -> flask.Response:
    """One area's numbers (the user's own area when `area_id` is absent)."""
    services = current()
    area_id = flask.request.args.get("area_id") or current_user().scope
    if area_id not in services.geography.areas:
        return unknown_area(area_id)
    return flask.jsonify(requested_view().summary(require_area(area_id)))


@api.get("/api/v1/areas/<area_id>")
def area(area_id: str) -> flask.Response:
    """One area's numbers and each child's."""
    services = current()
    if area_id not in services.geography.areas:
        return unknown_area(area_id)
    return flask.jsonify(requested_view().area_detail(require_area(area_id)))


@api.get("/api/v1/overdue")
def overdue() -> flask.Response:
    """Overdue incidents in an area, latest first, and those escalated to it."""
    services = current()
    area_id = require_area(flask.request.args.get("area_id") or current_user().scope)
    view = requested_view()
    factor = services.settings.escalate_factor
    now_ms = view.now_ms
    late = [i.as_json(now_ms) for i in view.overdue(area_id, factor)]
    escalated_here = [i for i in late if i["escalated_to"] == area_id]  # all lie inside it
    return flask.jsonify({"area_id": area_id, "as_of": view.as_of.isoformat(timespec="seconds"),
                          "overdue": late, "escalated_here": escalated_here})


@api.get("/healthz")
def healthz() -> flask.Response:
    """Redis reachability, stream length, lag, last apply and counts; whether push is up."""
    services = current()
    report = health(services.client, services.settings)
    report["push"] = services.push.health()
    response = flask.jsonify(report)
    response.status_code = 200 if report["redis"] == "ok" else 503
    return response
