"""`GET /api/v1/rankings` and its CSV export, scoped like every other route.

`level=street|department`, `period=today|7d|30d|YYYY-MM`, `area_id` (default: the
user's own area; 403 outside the scope): an official ranks what lies inside their
scope. The CSV is audited like the other exports.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import flask
from werkzeug.exceptions import BadRequest

from dashboard.export import audit_export, cell, export_area, export_language
from dashboard.rankings import RATES, parse_period, rankings
from dashboard.services import current

rankings_api = flask.Blueprint("rankings", __name__)

CSV_COLUMNS = ("rank", "id", "name", "received", *RATES, "score")


def ranking_for(area_id: str, level: str, period: str, lang: str) -> dict[str, Any]:
    """The ranking of the streets or departments inside `area_id` (already scope-checked)."""
    services = current()
    geography = services.geography
    try:
        chosen = parse_period(period, services.clock(), services.settings.zone)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    if level not in ("street", "department"):
        raise BadRequest("level must be street or department")

    def inside(street: str) -> bool:
        return street in geography.areas and area_id in geography.chain(street)

    def name(key: str) -> str:
        return geography.name(key, lang) if level == "street" else key

    answer = rankings(services.client, services.settings.state_prefix, level, chosen, inside,
                      name, services.settings.ranking_weights)
    return {"area_id": area_id, **answer}


def _query() -> tuple[str, str, str]:
    args = flask.request.args
    return export_area(), args.get("level") or "street", args.get("period") or "30d"


@rankings_api.get("/api/v1/rankings")
def ranking() -> flask.Response:
    """Streets or departments inside the area, ranked over the period."""
    area_id, level, period = _query()
    return flask.jsonify(ranking_for(area_id, level, period, export_language()))


@rankings_api.get("/api/v1/export/rankings.csv")
def ranking_csv() -> flask.Response:
    """The same ranking for a spreadsheet (UTF-8 with BOM; audited)."""
    area_id, level, period = _query()
    answer = ranking_for(area_id, level, period, export_language())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in answer["rows"]:
        writer.writerow([cell("" if row[c] is None else row[c]) for c in CSV_COLUMNS])
    audit_export(area_id)
    response = flask.Response("\ufeff" + out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="rankings-{level}-{answer["period"]}-{area_id}.csv"')
    response.headers["Cache-Control"] = "no-store"
    return response
