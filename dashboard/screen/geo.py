"""The map's polygons by URL: `/geo/<scope>/<level>.json`, fetched once and cached."""

from __future__ import annotations

import functools

import flask
import orjson

from dashboard.geography import Geography
from dashboard.services import current

geo = flask.Blueprint("geo", __name__)


@functools.lru_cache(maxsize=256)
def _body(geography: Geography, scope: str, level: str) -> bytes:
    return orjson.dumps(geography.geojson(geography.descendants_at(scope, level)))


@geo.get("/geo/<scope>/<level>.json")
def polygons(scope: str, level: str) -> flask.Response:
    """The polygons of one level inside an area, as a GeoJSON FeatureCollection."""
    geography = current().geography
    if scope not in geography.areas:
        flask.abort(404)
    try:
        body = _body(geography, scope, level)
    except ValueError:
        flask.abort(404)
    response = flask.Response(body, mimetype="application/geo+json")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
