"""The city's areas: boundaries loaded once, their hierarchy, and a point-in-polygon index.

A boundary file holds one polygon per area with the columns ``area_id``, ``name``,
``name_en`` (optional), ``level`` and ``parent_id``. Levels go from coarse to fine as in
:data:`LEVELS`; every area but the single root (normally the city) names its parent,
which must be of a coarser level. The shipped demo cities live in ``dashboard/data/``.

Everything is validated and computed in :func:`load_geography`; a :class:`Geography`
never changes afterwards, so one instance can be shared by every request and worker.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj.exceptions import CRSError
from shapely.geometry import mapping

LEVELS: tuple[str, ...] = ("city", "district", "street", "community", "compound", "grid")
"""Area levels in depth order, coarsest first; ``grid`` is the finest."""

DATA_DIR = Path(__file__).resolve().parent / "data"
REQUIRED_COLUMNS: tuple[str, ...] = ("area_id", "name", "level", "parent_id")
GEOJSON_DECIMALS = 5  # about 1 m: plenty for drawing, and a third smaller than 6 decimals

_DEPTH = {level: depth for depth, level in enumerate(LEVELS)}
_CITY_NAME = re.compile(r"[a-z0-9_]+")


class BoundaryError(ValueError):
    """A boundary file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Area:
    """One area of the hierarchy, without its geometry."""

    area_id: str
    name: str
    name_en: str
    level: str
    parent_id: str | None
    depth: int
    lon: float
    lat: float


class Geography:
    """The validated areas of one city, read-only once built (see :func:`load_geography`)."""

    __slots__ = (
        "_below",
        "_chains",
        "_children",
        "_depths",
        "_features",
        "_geoms",
        "_ids",
        "_subtrees",
        "_tree",
        "areas",
        "context",
        "frame",
        "roads",
        "root_id",
    )

    frame: gpd.GeoDataFrame
    root_id: str
    areas: Mapping[str, Area]
    _ids: np.ndarray
    _depths: np.ndarray
    _geoms: np.ndarray
    _tree: shapely.STRtree
    _children: dict[str, tuple[str, ...]]
    _chains: dict[str, tuple[str, ...]]
    _subtrees: dict[str, frozenset[str]]
    _below: dict[tuple[str, str], tuple[str, ...]]
    _features: dict[str, tuple[dict[str, Any], dict[str, Any]]]
    roads: Any  # the city's road network (`dashboard.roads.RoadNetwork`), or None
    context: Any  # the map's context lines (`dashboard.context.ContextLayer`), or None

    def __init__(self, frame: gpd.GeoDataFrame) -> None:
        """Build the indexes from a frame already checked by :func:`load_geography`."""
        ids = np.array(frame.index, dtype=object)
        geoms = np.array(frame.geometry.values, dtype=object)
        depths = frame["depth"].to_numpy(dtype=np.int64)
        parents: list[str | None] = frame["parent_id"].tolist()
        reps = shapely.point_on_surface(geoms)

        areas = {
            aid: Area(
                area_id=aid,
                name=name,
                name_en=name_en,
                level=level,
                parent_id=parent,
                depth=int(depth),
                lon=round(float(x), 6),
                lat=round(float(y), 6),
            )
            for aid, name, name_en, level, parent, depth, x, y in zip(
                ids,
                frame["name"],
                frame["name_en"],
                frame["level"],
                parents,
                depths,
                shapely.get_x(reps),
                shapely.get_y(reps),
                strict=True,
            )
        }
        children: dict[str, list[str]] = {aid: [] for aid in ids}
        for aid, parent in zip(ids, parents, strict=True):
            if parent is not None:
                children[parent].append(aid)
        chains: dict[str, tuple[str, ...]] = {}
        below: dict[tuple[str, str], list[str]] = {}
        subtrees: dict[str, set[str]] = {aid: set() for aid in ids}
        for aid in ids:
            chain = [aid]
            while (parent := areas[chain[-1]].parent_id) is not None:
                chain.append(parent)
            chains[aid] = tuple(chain)
            for ancestor in chain:
                below.setdefault((ancestor, areas[aid].level), []).append(aid)
                subtrees[ancestor].add(aid)

        rounded = shapely.transform(geoms, lambda c: np.round(c, GEOJSON_DECIMALS))
        features = {
            aid: (
                {
                    "area_id": aid,
                    "name": areas[aid].name,
                    "name_en": areas[aid].name_en,
                    "level": areas[aid].level,
                    "parent_id": areas[aid].parent_id,
                },
                mapping(geom),
            )
            for aid, geom in zip(ids, rounded, strict=True)
        }

        shapely.prepare(geoms)
        # Build every prepared polygon's point locator now, not lazily in concurrent requests.
        shapely.intersects(geoms, reps)
        ids.flags.writeable = False
        depths.flags.writeable = False
        geoms.flags.writeable = False
        set_ = object.__setattr__
        set_(self, "frame", frame)
        set_(self, "root_id", next(aid for aid, p in zip(ids, parents, strict=True) if p is None))
        set_(self, "areas", MappingProxyType(areas))
        set_(self, "_ids", ids)
        set_(self, "_depths", depths)
        set_(self, "_geoms", geoms)
        set_(self, "_tree", shapely.STRtree(geoms))
        set_(self, "_children", {k: tuple(sorted(v)) for k, v in children.items()})
        set_(self, "_chains", chains)
        set_(self, "_subtrees", {k: frozenset(v) for k, v in subtrees.items()})
        set_(self, "_below", {k: tuple(sorted(v)) for k, v in below.items()})
        set_(self, "_features", features)
        set_(self, "roads", None)
        set_(self, "context", None)

    def with_roads(self, roads: Any) -> Geography:
        """The same areas (shared, not copied) with a road network."""
        return self._with("roads", roads)

    def with_context(self, context: Any) -> Geography:
        """The same areas (shared, not copied) with the map's context lines."""
        return self._with("context", context)

    def _with(self, slot: str, value: Any) -> Geography:
        copy = object.__new__(Geography)
        for name in Geography.__slots__:
            object.__setattr__(copy, name, getattr(self, name))
        object.__setattr__(copy, slot, value)
        return copy

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Geography is read-only (tried to set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Geography is read-only (tried to delete {name!r})")

    def __repr__(self) -> str:
        return f"<Geography root={self.root_id} areas={len(self.areas)}>"

    def chain(self, area_id: str) -> tuple[str, ...]:
        """Return the area and its ancestors up to the city, finest first."""
        return self._chains[area_id]

    def subtree(self, area_id: str) -> frozenset[str]:
        """Return the area and every area below it."""
        return self._subtrees[area_id]

    def responsible(self, area_id: str) -> str:
        """The area answering for ``area_id``: its street, else its district, else the city."""
        chain = self._chains.get(area_id, (self.root_id,))
        for level in ("street", "district"):
            for candidate in chain:
                if self.areas[candidate].level == level:
                    return candidate
        return self.root_id

    def children(self, area_id: str) -> tuple[str, ...]:
        """Return the ids of the direct children, sorted."""
        return self._children[area_id]

    def descendants_at(self, area_id: str, level: str) -> tuple[str, ...]:
        """Return the sorted ids of the ``level`` areas in ``area_id`` (itself if of that level)."""
        if level not in _DEPTH:
            raise ValueError(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
        if area_id not in self.areas:
            raise KeyError(area_id)
        return self._below.get((area_id, level), ())

    def locate(self, lon: Any, lat: Any) -> np.ndarray:
        """Return the id of the finest area containing each WGS-84 point, None where none does.

        ``lon`` and ``lat`` are arrays (or anything numpy broadcasts); the result has their
        shape and dtype object. One STRtree query serves the whole batch; a point on a
        border shared by areas of the same level goes to the one with the smallest id.
        """
        x, y = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        points = shapely.points(x.ravel(), y.ravel())
        found = np.full(points.size, None, dtype=object)
        # Bounding boxes from the tree, then the exact test against the prepared polygons:
        # query(predicate="intersects") gives the same pairs but does not use the prepared
        # polygons, and is 4-7 times slower.
        point_i, area_i = self._tree.query(points)
        hit = shapely.intersects(self._geoms[area_i], points[point_i])
        point_i, area_i = point_i[hit], area_i[hit]
        if point_i.size:
            # Per point, deepest area first, then lowest index (areas are sorted by id).
            order = np.lexsort((area_i, -self._depths[area_i], point_i))
            point_i, area_i = point_i[order], area_i[order]
            first = np.ones(point_i.size, dtype=bool)
            first[1:] = point_i[1:] != point_i[:-1]
            found[point_i[first]] = self._ids[area_i[first]]
        return found.reshape(x.shape)

    def geojson(self, area_ids: Iterable[str]) -> dict[str, Any]:
        """Return a FeatureCollection of those areas (coordinates rounded to 5 decimals)."""
        features = []
        for aid in area_ids:
            properties, geometry = self._features[aid]
            features.append(
                {
                    "type": "Feature",
                    "id": aid,
                    "properties": dict(properties),
                    "geometry": dict(geometry),  # coordinates are nested tuples: immutable
                }
            )
        return {"type": "FeatureCollection", "features": features}

    def name(self, area_id: str, lang: str = "zh-CN") -> str:
        """Return the area's name: Chinese for ``zh*`` languages, English otherwise."""
        area = self.areas[area_id]
        return area.name if lang.lower().startswith("zh") else area.name_en


def load_geography(path: str | os.PathLike[str] | None = None, city: str = "shanghai") -> Geography:
    """Load a boundary file, or the shipped demo city when ``path`` is None.

    Any format GeoPandas/pyogrio reads and any CRS (reprojected to WGS-84) will do; a
    file without CRS is taken as WGS-84 when its bounds fit longitude/latitude. Raises
    :class:`BoundaryError` naming the file and the problem when the file cannot be used.
    """
    if path is None:
        if not _CITY_NAME.fullmatch(city):
            raise BoundaryError(f"unknown demo city {city!r}: use a name like 'shanghai'")
        return _load_shipped(city)
    return _load(Path(path))


@functools.lru_cache(maxsize=4)
def _load_shipped(city: str) -> Geography:
    path = DATA_DIR / f"{city}.geojson"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in DATA_DIR.glob("*.geojson"))) or "none"
        raise BoundaryError(
            f"{path}: no shipped boundary file for city {city!r} (shipped: {shipped})"
        )
    return _load(path)


def _load(path: Path) -> Geography:
    frame = read_frame(path)
    return Geography(_validate(frame, path))


def read_frame(path: Path, error: type[BoundaryError] = BoundaryError) -> gpd.GeoDataFrame:
    """A geographic file's features; `error` (a :class:`BoundaryError`) naming it if none."""
    if not path.exists():
        raise error(f"{path}: file not found")
    try:
        frame = gpd.read_file(path)
    except (RuntimeError, OSError, ValueError, UnicodeError) as exc:  # pyogrio's are RuntimeErrors
        raise error(f"{path}: not a readable geographic file ({exc})") from exc
    if not isinstance(frame, gpd.GeoDataFrame) or frame.active_geometry_name is None:
        raise error(f"{path}: not a geographic file (it has no geometry column)")
    if frame.empty:
        raise error(f"{path}: the file has no features")
    return frame


def _validate(frame: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise BoundaryError(
            f"{path}: missing column {', '.join(missing)} "
            f"(a boundary file needs {', '.join(REQUIRED_COLUMNS)}, and may have name_en)"
        )

    cells = [cell_text(v) for v in frame["area_id"]]
    for n, cell in enumerate(cells):
        if cell is None:
            raise BoundaryError(f"{path}: feature #{n} has no area_id")
    ids = [cell or "" for cell in cells]
    seen: set[str] = set()
    for aid in ids:
        if aid in seen:
            raise BoundaryError(f"{path}: duplicate area_id {aid}")
        seen.add(aid)

    levels = [(cell_text(v) or "").lower() for v in frame["level"]]
    for aid, level in zip(ids, levels, strict=True):
        if level not in _DEPTH:
            raise BoundaryError(
                f"{path}: area {aid} has unknown level {level!r} (levels: {', '.join(LEVELS)})"
            )
    names = [cell_text(v) or aid for v, aid in zip(frame["name"], ids, strict=True)]
    if "name_en" in frame.columns:
        names_en = [cell_text(v) or n for v, n in zip(frame["name_en"], names, strict=True)]
    else:
        names_en = list(names)
    parents = [cell_text(v) for v in frame["parent_id"]]

    geoms = _checked_geometry(frame, ids, path)
    _check_tree(ids, levels, parents, path)

    out = gpd.GeoDataFrame(
        {
            "name": names,
            "name_en": names_en,
            "level": levels,
            "depth": [_DEPTH[level] for level in levels],
        },
        geometry=geoms,
        crs="EPSG:4326",
        index=pd.Index(ids, name="area_id", dtype=object),
    )
    # object dtype keeps None for the root (pandas would infer str and turn None into NaN)
    out.insert(3, "parent_id", pd.Series(parents, index=out.index, dtype=object))
    return out.sort_index()


def _checked_geometry(frame: gpd.GeoDataFrame, ids: list[str], path: Path) -> np.ndarray:
    geoms = np.asarray(frame.geometry.values, dtype=object)
    for aid, geom in zip(ids, geoms, strict=True):
        if geom is None or geom.is_empty:
            raise BoundaryError(f"{path}: area {aid} has an empty geometry")
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise BoundaryError(
                f"{path}: area {aid} is a {geom.geom_type}, not a Polygon or MultiPolygon"
            )
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    if invalid.size:
        aid = ids[invalid[0]]
        reason = shapely.is_valid_reason(geoms[invalid[0]])
        raise BoundaryError(f"{path}: area {aid} has an invalid geometry: {reason}")
    return to_wgs84(geoms, frame.crs, path)


def to_wgs84(geoms: np.ndarray, crs: Any, path: Path) -> np.ndarray:
    """Geometries in `crs` (None: longitude/latitude if they fit) reprojected to WGS-84.

    Raises :class:`BoundaryError` naming the file when that cannot be done.
    """
    if crs is None:
        x0, y0, x1, y1 = shapely.total_bounds(geoms)
        if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
            raise BoundaryError(
                f"{path}: the file has no CRS and its coordinates are not longitude/latitude "
                "(store the CRS in the file)"
            )
        return geoms
    if crs.equals("EPSG:4326"):
        return geoms
    try:
        projected = np.asarray(gpd.GeoSeries(geoms, crs=crs).to_crs("EPSG:4326").values)
    except (CRSError, ValueError, RuntimeError) as exc:
        raise BoundaryError(f"{path}: cannot reproject from {crs} to WGS-84 ({exc})") from exc
    if not np.isfinite(shapely.total_bounds(projected)).all():
        raise BoundaryError(
            f"{path}: coordinates fall outside WGS-84 after reprojection from {crs}"
        )
    broken = ~shapely.is_valid(projected)
    if broken.any():  # reprojection can pinch a ring that was valid in the file's CRS
        projected[broken] = shapely.make_valid(projected[broken], method="structure")
    return projected


def _check_tree(ids: list[str], levels: list[str], parents: list[str | None], path: Path) -> None:
    parent_of = dict(zip(ids, parents, strict=True))
    level_of = dict(zip(ids, levels, strict=True))
    for aid, parent in parent_of.items():
        if parent is not None and parent not in parent_of:
            raise BoundaryError(
                f"{path}: area {aid} has parent_id {parent}, which is not in the file"
            )
    roots = [aid for aid, parent in parent_of.items() if parent is None]
    if len(roots) != 1:
        found = ", ".join(sorted(roots)[:5]) if roots else "none"
        raise BoundaryError(
            f"{path}: a boundary file needs exactly one root (an area without parent_id, "
            f"normally the city); found {len(roots)}: {found}"
        )
    reaches_root = {roots[0]}
    for start in ids:
        path_up: list[str] = []
        on_path: set[str] = set()
        node: str | None = start
        while node is not None and node not in reaches_root:
            if node in on_path:
                loop = [*path_up[path_up.index(node) :], node]
                raise BoundaryError(f"{path}: parent_id forms a cycle: {' -> '.join(loop)}")
            path_up.append(node)
            on_path.add(node)
            node = parent_of[node]
        reaches_root.update(path_up)
    for aid, parent in parent_of.items():
        if parent is not None and _DEPTH[level_of[aid]] <= _DEPTH[level_of[parent]]:
            raise BoundaryError(
                f"{path}: area {aid} ({level_of[aid]}) is not finer than its parent "
                f"{parent} ({level_of[parent]})"
            )


def cell_text(value: object) -> str | None:
    """Read a cell as a stripped string; None for null, NaN and blank; 310000.0 as 310000."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None
