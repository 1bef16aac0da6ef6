"""Exports: an area's open incidents as CSV, in the user's scope, for spreadsheets.

`GET /api/v1/export/incidents.csv?area_id=<id>[&at=...][&lang=en]` answers
403 outside the user's scope like every other route, reads the same view as
the API (live, or replayed with `?at=`), and is written to the audit log.
Cells are text: one that a spreadsheet would read as a formula (starting
with = + - @, a tab or a carriage return) is prefixed with an apostrophe.
UTF-8 with a byte-order mark, so that spreadsheet programs read the Chinese.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import flask

from dashboard.api import requested_view, unknown_area
from dashboard.auth.guard import access, client_address, current_user, require_area
from dashboard.i18n import label
from dashboard.kinds.incident import OpenIncident
from dashboard.services import current

exports = flask.Blueprint("exports", __name__)

COLUMNS = ("incident_id", "status", "category", "category_name", "severity", "source", "title",
           "department", "area_id", "area_name", "reported_at", "due_at", "overdue",
           "minutes_late", "lon", "lat")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """A value as CSV text that no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def incident_rows(incidents: list[OpenIncident], now_ms: int, lang: str
                  ) -> list[list[str]]:
    """One row per open incident, in `COLUMNS` order."""
    services = current()
    zone, geography = services.settings.zone, services.geography

    def moment(ms: Any) -> str:
        return datetime.fromtimestamp(int(ms) / 1000, zone).isoformat(timespec="seconds")

    rows = []
    for item in incidents:
        late = max(0.0, (now_ms - item.due) / 60000)
        overdue = item.overdue(now_ms)
        rows.append([cell(v) for v in (
            item.incident_id, item.status, item.category or "unknown",
            label("category", item.category or "unknown", lang), item.severity, item.source,
            item.title, item.department, item.area, geography.name(item.area, lang),
            moment(item.start), moment(item.due), "1" if overdue else "0",
            f"{late:.1f}" if overdue else "", item.lon, item.lat)])
    return rows


@exports.get("/api/v1/export/incidents.csv")
def incidents_csv() -> flask.Response:
    """The area's open incidents, most severe and most overdue first."""
    services = current()
    user = current_user()
    area_id = flask.request.args.get("area_id") or user.scope
    if area_id not in services.geography.areas:
        return unknown_area(area_id)
    require_area(area_id)
    view = requested_view()
    lang = "en" if flask.request.args.get("lang") == "en" else services.settings.lang
    now_ms = int(view.as_of.timestamp() * 1000)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(incident_rows(view.open_incidents(area_id), now_ms, lang))
    access().audit.record(user, client_address(), "export", area_id, flask.request.full_path)
    stamp = view.as_of.strftime("%Y%m%d-%H%M")
    response = flask.Response("\ufeff" + out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="incidents-{area_id}-{stamp}.csv"')
    response.headers["Cache-Control"] = "no-store"
    return response
