"""GeoJSON out: areas with their current numbers, and open incidents as points.

`GET /api/v1/export/areas.geojson?area_id=<id>[&level=<level>][&at=...]`: the
polygons of the area's children (or of its areas of `level`) with their risk
score and level, open and overdue incidents, traffic index and sensor alarms;
`GET /api/v1/export/incidents.geojson?area_id=<id>[&at=...]`: its open
incidents as points. Both are in the user's scope (403 outside it, like every
route), read the same view as the API (live, or replayed with `?at=`), are
audited, and follow RFC 7946: WGS-84 longitude/latitude, no `crs` member,
exterior rings counter-clockwise and holes clockwise.
"""

from __future__ import annotations

from typing import Any

import flask
import numpy as np
import orjson
import shapely
from shapely.geometry import mapping
from werkzeug.exceptions import BadRequest

from dashboard.api import requested_view
from dashboard.export import audit_export, export_area, export_language, incident_fields
from dashboard.geography import LEVELS, Geography
from dashboard.services import current
from dashboard.state.view import CityView

geojson_exports = flask.Blueprint("geojson_exports", __name__)

DECIMALS = 6  # about 0.1 m; RFC 7946 section 11.2 advises no more
MEDIA_TYPE = "application/geo+json"


def rfc7946_geometries(geoms: np.ndarray) -> list[dict[str, Any]]:
    """Polygons as GeoJSON geometries with the right-hand rule (exterior counter-clockwise)."""
    oriented = shapely.orient_polygons(geoms, exterior_cw=False)
    rounded = shapely.transform(oriented, lambda c: np.round(c, DECIMALS))
    return [mapping(g) for g in rounded]


def area_properties(view: CityView, area_id: str, lang: str) -> dict[str, Any]:
    """An area's identity and current numbers, flat (GIS tools show one value per column)."""
    summary = view.summary(area_id)
    risk, incidents = summary["risk"], summary["incidents"]
    traffic, sensors = summary.get("traffic") or {}, summary.get("sensors") or {}
    return {"area_id": area_id, "name": view.geography.name(area_id, lang),
            "level": summary["level"], "parent_id": summary["parent_id"],
            "risk_score": risk["score"], "risk_level": risk["level"],
            "incidents_open": incidents["open"], "incidents_overdue": incidents["overdue"],
            "traffic_index": traffic.get("index"), "traffic_level": traffic.get("level"),
            "sensor_alarms": sensors.get("alarms", 0)}


def exported_areas(geography: Geography, area_id: str, level: str | None) -> tuple[str, ...]:
    """The area's children, or its areas of `level` (400 for an unknown level)."""
    if not level:
        return geography.children(area_id)
    if level not in LEVELS:
        raise BadRequest(f"level must be one of {', '.join(LEVELS)}")
    return geography.descendants_at(area_id, level)


def collection(features: list[dict[str, Any]], view: CityView, name: str) -> flask.Response:
    """A FeatureCollection response (with the moment it shows), never cached."""
    body = {"type": "FeatureCollection", "name": name,
            "as_of": view.as_of.isoformat(timespec="seconds"), "features": features}
    response = flask.Response(orjson.dumps(body), mimetype=MEDIA_TYPE)
    stamp = view.as_of.strftime("%Y%m%d-%H%M")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.geojson"'
    response.headers["Cache-Control"] = "no-store"
    return response


@geojson_exports.get("/api/v1/export/areas.geojson")
def areas_geojson() -> flask.Response:
    """The polygons of an area's children (or of `level`) with their current numbers."""
    geography = current().geography
    area_id = export_area()
    ids = exported_areas(geography, area_id, flask.request.args.get("level"))
    view = requested_view()
    lang = export_language()
    geoms = np.asarray(geography.frame.geometry.loc[list(ids)].values, dtype=object)
    features = [{"type": "Feature", "id": aid, "geometry": geometry,
                 "properties": area_properties(view, aid, lang)}
                for aid, geometry in zip(ids, rfc7946_geometries(geoms), strict=True)]
    audit_export(area_id)
    return collection(features, view, f"areas-{area_id}")


@geojson_exports.get("/api/v1/export/incidents.geojson")
def incidents_geojson() -> flask.Response:
    """The open incidents inside an area as points (null geometry when one has no point)."""
    area_id = export_area()
    view = requested_view()
    lang = export_language()
    now_ms = view.now_ms
    features = []
    for item in view.open_incidents(area_id):
        properties = incident_fields(item, now_ms, lang)
        lon, lat = properties.pop("lon"), properties.pop("lat")
        point = None if lon is None or lat is None else {
            "type": "Point", "coordinates": [round(lon, DECIMALS), round(lat, DECIMALS)]}
        features.append({"type": "Feature", "id": item.incident_id, "geometry": point,
                         "properties": properties})
    audit_export(area_id)
    return collection(features, view, f"incidents-{area_id}")
