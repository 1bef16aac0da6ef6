"""The map's context layer: coastline, rivers, ring roads, as thin lines under the areas.

`CITYBRAIN_CONTEXT` names a file GeoPandas reads (any CRS, reprojected to WGS-84): its
lines, and the outlines of its polygons, are drawn (those whose `kind` column says
`rivers` in water blue); an `attribution` column (each of its values once) is shown on
the map. Empty: the demo city's shipped coastline and rivers
(`dashboard/data/context/<city>.geojson`: OpenStreetMap data, ODbL, and GSHHG rivers,
LGPL; see the LICENSE.md beside it), none with `CITYBRAIN_BOUNDARIES`; `off`: none.
Loaded once at start, served once by URL (`CONTEXT_URL`, cached by the browser) and
drawn by MapLibre from the map's style (`mapfig.map_style`), never sent with a tick.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import shapely

from dashboard.geography import DATA_DIR, GEOJSON_DECIMALS, BoundaryError, read_frame, to_wgs84
from dashboard.settings import Settings

CONTEXT_DIR = DATA_DIR / "context"
CONTEXT_URL = "/geo/context.json"
OFF = "off"
LINES = (1, 2)  # shapely type ids: LineString, LinearRing
POLYGON = 3


class ContextError(BoundaryError):
    """A context file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ContextLayer:
    """The context lines as served (GeoJSON bytes), where they came from and their credit."""

    source: str
    geojson: bytes
    attribution: str
    lines: int


def load_context(path: str | Path) -> ContextLayer:
    """Read a context file: its lines and polygon outlines in WGS-84."""
    path = Path(path)
    frame = read_frame(path, ContextError)
    geoms = to_wgs84(np.asarray(frame.geometry.values, dtype=object), frame.crs, path)
    parts, row = shapely.get_parts(geoms, return_index=True)  # multi-parts,
    parts, at = shapely.get_parts(parts, return_index=True)  # then collections
    row = row[at]
    polygons = shapely.get_type_id(parts) == POLYGON
    parts[polygons] = shapely.boundary(parts[polygons])  # a polygon's outline
    parts, at = shapely.get_parts(parts, return_index=True)
    row = row[at]
    drawn = np.isin(shapely.get_type_id(parts), LINES)
    lines, row = parts[drawn], row[drawn]
    if not len(lines):
        raise ContextError(f"{path}: no lines or polygons to draw")
    lines = shapely.set_precision(lines, 10.0 ** -GEOJSON_DECIMALS)
    kinds = (frame["kind"].fillna("").astype(str).to_numpy()[row] if "kind" in frame.columns
             else np.full(len(lines), ""))
    credit = ""
    if "attribution" in frame.columns:  # each source's credit once, in the file's order
        credit = "; ".join(dict.fromkeys(str(a) for a in frame["attribution"].dropna() if a))
    features = [{"type": "Feature", "properties": {"kind": kind} if kind else {},
                 "geometry": shapely.geometry.mapping(line)} for line, kind in zip(lines, kinds,
                                                                                  strict=True)]
    return ContextLayer(str(path), orjson.dumps({"type": "FeatureCollection",
                                                 "features": features}), credit, len(lines))


def shipped_context(city: str) -> Path:
    """Where a demo city's context file is shipped."""
    return CONTEXT_DIR / f"{city}.geojson"


def city_context(settings: Settings) -> ContextLayer | None:
    """The context layer the settings ask for (None: no context layer)."""
    if settings.context == OFF:
        return None
    if settings.context:
        return load_context(settings.context)
    if settings.boundaries is None and shipped_context(settings.city).is_file():
        return _shipped(settings.city)
    return None


@functools.lru_cache(maxsize=4)
def _shipped(city: str) -> ContextLayer:
    """A demo city's context layer, read once per process (it is read-only)."""
    return load_context(shipped_context(city))
