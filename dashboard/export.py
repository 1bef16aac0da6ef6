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


def incident_fields(item: OpenIncident, now_ms: int, lang: str) -> dict[str, Any]:
    """One open incident's exported fields (`COLUMNS`), shared by the CSV and GeoJSON exports."""
    services = current()
    zone, geography = services.settings.zone, services.geography

    def moment(ms: Any) -> str:
        return datetime.fromtimestamp(int(ms) / 1000, zone).isoformat(timespec="seconds")

    late = max(0.0, (now_ms - item.due) / 60000)
    overdue = item.overdue(now_ms)
    return {
        "incident_id": item.incident_id, "status": item.status,
        "category": item.category or "unknown",
        "category_name": label("category", item.category or "unknown", lang),
        "severity": item.severity, "source": item.source, "title": item.title,
        "department": item.department, "area_id": item.area,
        "area_name": geography.name(item.area, lang), "reported_at": moment(item.start),
        "due_at": moment(item.due), "overdue": overdue,
        "minutes_late": round(late, 1) if overdue else None, "lon": item.lon, "lat": item.lat}


def incident_rows(incidents: list[OpenIncident], now_ms: int, lang: str
                  ) -> list[list[str]]:
    """One row per open incident, in `COLUMNS` order."""
    rows = []
    for item in incidents:
        fields = incident_fields(item, now_ms, lang)
        fields["overdue"] = "1" if fields["overdue"] else "0"
        late = fields["minutes_late"]
        fields["minutes_late"] = "" if late is None else f"{late:.1f}"
        rows.append([cell(fields[name]) for name in COLUMNS])
    return rows


def export_language() -> str:
    """`?lang=en`, or the cockpit's language."""
    return "en" if flask.request.args.get("lang") == "en" else current().settings.lang


def export_area() -> str:
    """`?area_id=` (the user's own area when absent), known (404) and in scope (403)."""
    area_id = flask.request.args.get("area_id") or current_user().scope
    if area_id not in current().geography.areas:
        flask.abort(unknown_area(area_id))
    return require_area(area_id)


def audit_export(area_id: str) -> None:
    """Record an export in the audit log."""
    access().audit.record(current_user(), client_address(), "export", area_id,
                          flask.request.full_path)


@exports.get("/api/v1/export/incidents.csv")
def incidents_csv() -> flask.Response:
    """The area's open incidents, most severe and most overdue first."""
    area_id = export_area()
    view = requested_view()
    now_ms = int(view.as_of.timestamp() * 1000)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(incident_rows(view.open_incidents(area_id), now_ms, export_language()))
    audit_export(area_id)
    stamp = view.as_of.strftime("%Y%m%d-%H%M")
    response = flask.Response("\ufeff" + out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="incidents-{area_id}-{stamp}.csv"')
    response.headers["Cache-Control"] = "no-store"
    return response
