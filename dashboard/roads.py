"""The city's road network: segment lines keyed by `segment_id`, loaded once at start.

`CITYBRAIN_ROADS` names a file GeoPandas reads (any CRS, reprojected to WGS-84) with
a `segment_id` per LineString (or MultiLineString) and, optionally, a `road_class`
(OSM `highway` values such as `motorway`, `primary`, `residential`) that sets the
drawn width. Without the setting the demo city uses its shipped synthetic network
(`dashboard/data/roads/<city>.geojson`, made by `scripts/build_boundaries.py`).

Plotly's map draws GeoJSON by URL only as polygons (`choroplethmap`), so each line
is served as a thin ribbon polygon around it (`/geo/roads.json`, fetched once and
cached); the traffic layer colours the ribbons' outlines by level with a width per
class, and a tick sends only the levels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import orjson
import shapely

from dashboard.context import city_context
from dashboard.geography import (
    DATA_DIR,
    GEOJSON_DECIMALS,
    BoundaryError,
    Geography,
    cell_text,
    load_geography,
    read_frame,
    to_wgs84,
)
from dashboard.settings import Settings

RIBBON_M = 6.0  # half the width of the polygon served for a line, in metres
METRES_PER_DEGREE = 111_320.0
# Drawn width in pixels by road class; a class not listed (or no class column) gets DEFAULT.
ROAD_WIDTHS: Mapping[str, float] = MappingProxyType({
    "motorway": 6.0, "expressway": 6.0, "trunk": 5.0, "primary": 4.5, "secondary": 3.5,
    "tertiary": 2.5, "residential": 2.0, "service": 1.5,
})
DEFAULT_WIDTH = 3.0
ROADS_DIR = DATA_DIR / "roads"  # the demo cities' synthetic networks


class RoadsError(BoundaryError):
    """A road network file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class RoadNetwork:
    """Road segments with a geometry: their class, their middle point, the served ribbons."""

    source: str
    classes: Mapping[str, str]  # segment_id -> road class ("" when the file has none)
    midpoints: Mapping[str, tuple[float, float]]  # segment_id -> (lon, lat) on the line
    synthetic: bool  # the demo's made-up network (the screen says so)
    geojson: bytes = field(repr=False)  # the ribbons, a FeatureCollection with ids

    def width(self, segment_id: str) -> float:
        """The drawn width of a segment in pixels, by its class."""
        return ROAD_WIDTHS.get(self.classes.get(segment_id, ""), DEFAULT_WIDTH)


def shipped_roads(city: str) -> Path:
    """Where the demo city's synthetic network would be."""
    return ROADS_DIR / f"{city}.geojson"


def load_roads(path: str | Path) -> RoadNetwork:
    """Read and check a road network file; :class:`RoadsError` naming it when it is unusable."""
    path = Path(path)
    frame = read_frame(path, RoadsError)
    if "segment_id" not in frame.columns:
        raise RoadsError(f"{path}: missing column segment_id (a road network needs a "
                         "segment_id per line, and may have road_class)")
    ids = [cell_text(v) for v in frame["segment_id"]]
    geoms = np.asarray(frame.geometry.values, dtype=object)
    seen: set[str] = set()
    for n, (sid, geom) in enumerate(zip(ids, geoms, strict=True)):
        if sid is None:
            raise RoadsError(f"{path}: feature #{n} has no segment_id")
        if sid in seen:
            raise RoadsError(f"{path}: duplicate segment_id {sid}")
        seen.add(sid)
        if geom is None or geom.is_empty:
            raise RoadsError(f"{path}: segment {sid} has an empty geometry")
        if geom.geom_type not in ("LineString", "MultiLineString"):
            raise RoadsError(f"{path}: segment {sid} is a {geom.geom_type}, not a LineString "
                             "or MultiLineString")
    try:
        lines = to_wgs84(geoms, frame.crs, path)
    except BoundaryError as exc:
        raise RoadsError(str(exc)) from exc
    keys: list[str] = [sid or "" for sid in ids]
    classes = ([(cell_text(v) or "").lower() for v in frame["road_class"]]
               if "road_class" in frame.columns else [""] * len(keys))
    middle = shapely.line_interpolate_point(shapely.line_merge(lines), 0.5, normalized=True)
    midpoints = {sid: (round(float(x), 6), round(float(y), 6)) for sid, x, y in zip(
        keys, shapely.get_x(middle), shapely.get_y(middle), strict=True)}
    synthetic = path.resolve().parent == ROADS_DIR
    return RoadNetwork(str(path), MappingProxyType(dict(zip(keys, classes, strict=True))),
                       MappingProxyType(midpoints), synthetic, ribbons(keys, lines))


def ribbons(ids: list[str], lines: np.ndarray) -> bytes:
    """The lines as thin polygons (`RIBBON_M` each side) in a GeoJSON FeatureCollection."""
    lat0 = float(np.mean(shapely.bounds(lines)[:, [1, 3]]))
    scale = math.cos(math.radians(lat0))
    flat = shapely.transform(lines, lambda c: c * [scale, 1.0])
    polys = shapely.buffer(flat, RIBBON_M / METRES_PER_DEGREE, cap_style="flat", quad_segs=2)
    polys = shapely.transform(polys, lambda c: np.round(c / [scale, 1.0], GEOJSON_DECIMALS))
    features = [{"type": "Feature", "id": sid, "properties": {"segment_id": sid},
                 "geometry": shapely.geometry.mapping(poly)}
                for sid, poly in zip(ids, polys, strict=True)]
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def city_geography(settings: Settings) -> Geography:
    """The city's areas, its road network (`CITYBRAIN_ROADS`, or the demo's) and context lines.

    Either may be absent (`dashboard.context` for the context layer).
    """
    geography = load_geography(settings.boundaries, settings.city).with_context(
        city_context(settings))
    if settings.roads:
        return geography.with_roads(load_roads(settings.roads))
    if settings.boundaries is None and shipped_roads(settings.city).is_file():
        return geography.with_roads(_shipped_network(settings.city))
    return geography


@functools.lru_cache(maxsize=4)
def _shipped_network(city: str) -> RoadNetwork:
    """A demo city's network, read once per process (it is read-only)."""
    return load_roads(shipped_roads(city))
