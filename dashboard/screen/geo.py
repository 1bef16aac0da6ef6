"""The map's geometry by URL, fetched once and cached.

`/geo/<scope>/<level>.json` the areas' polygons, `/geo/roads.json` the road network's
ribbons (`dashboard.roads`), `/geo/context.json` the context lines (`dashboard.context`).
"""

from __future__ import annotations

import functools
from typing import Any

import flask
import orjson

from dashboard.context import CONTEXT_URL
from dashboard.geography import Geography
from dashboard.services import current
from layers.base import ROADS_URL

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
    return _geojson(body)


@geo.get(ROADS_URL)
def roads() -> flask.Response:
    """The road segments with a geometry, as thin polygons keyed by segment_id."""
    return _served(current().geography.roads)


@geo.get(CONTEXT_URL)
def context() -> flask.Response:
    """The map's context lines (coastline, rivers, ring roads), fetched once by the map."""
    return _served(current().geography.context)


def _served(layer: Any) -> flask.Response:
    """A loaded layer's GeoJSON (`.geojson` bytes), or 404 when there is none."""
    if layer is None:
        flask.abort(404)
    return _geojson(layer.geojson)


def _geojson(body: bytes) -> flask.Response:
    response = flask.Response(body, mimetype="application/geo+json")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
