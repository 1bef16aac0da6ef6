"""Importing a city's boundaries: `citybrain boundaries import|check FILE`.

Reads anything GeoPandas reads (Shapefile with its `.cpg` encoding, e.g. GBK;
GeoPackage, with `--layer`; GeoJSON; KML when GDAL has the driver), takes the
id, name and parent from the named fields, reprojects to WGS-84 (and converts
GCJ-02/BD-09 vertices with `pipeline.coords` when told), repairs invalid
geometries (`make_valid`, keeping the polygonal part), finds parents by
containment when asked (the finest coarser area holding most of it), and
reports overlaps between the imported areas, gaps (a parent's part no child
covers) and children outside their parents, each with ids and m² measured in
the local UTM zone. `import` then simplifies the imported layer as a coverage
(`shapely.coverage_simplify`: an edge two areas share stays one edge, so no
slivers open between neighbours), merges it into the hierarchy the cockpit
loads (an imported id replaces the same id) and writes it, after checking the
result with the cockpit's own loader.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj.exceptions import CRSError

from dashboard.geography import LEVELS, BoundaryError, Geography, cell_text, load_geography
from dashboard.kinds.base import ID
from dashboard.pipeline.coords import to_wgs84_many

DATUMS = ("wgs84", "gcj02", "bd09")
MIN_REPORTED_M2 = 1.0  # smaller overlaps and gaps are rounding, not mistakes
CONTAINED_SHARE = 0.5  # a parent by containment holds at least this share of its child
_DEPTH = {level: depth for depth, level in enumerate(LEVELS)}


@dataclass(frozen=True)
class ImportOptions:
    """How to read one boundary file (the command's options)."""

    id_field: str
    name_field: str
    level: str
    name_en_field: str | None = None
    parent_field: str | None = None  # None: parents by containment
    layer: str | None = None
    coord: str = "wgs84"
    simplify_m: float = 0.0


@dataclass
class Report:
    """What the import found; `problems` lines say what to fix."""

    areas: int = 0
    repaired: list[str] = field(default_factory=list)
    overlaps: list[tuple[str, str, float]] = field(default_factory=list)
    gaps: list[tuple[str, float]] = field(default_factory=list)
    outside: list[tuple[str, str, float]] = field(default_factory=list)
    vertices: tuple[int, int] = (0, 0)  # before and after simplification

    @property
    def problems(self) -> list[str]:
        """One line per overlap, gap and child outside its parent."""
        return ([f"overlap: {a} and {b} share {m2:,.0f} m²" for a, b, m2 in self.overlaps]
                + [f"gap: {m2:,.0f} m² of {p} lies in none of its children" for p, m2 in self.gaps]
                + [f"outside: {c} has {m2:,.0f} m² outside its parent {p}"
                   for c, p, m2 in self.outside])

    def lines(self) -> list[str]:
        """The report as text lines."""
        head = [f"{self.areas} areas read"]
        if self.repaired:
            head.append(f"repaired invalid geometry: {', '.join(self.repaired)}")
        if self.vertices[0] != self.vertices[1]:
            head.append(f"simplified: {self.vertices[0]} -> {self.vertices[1]} vertices")
        return head + (self.problems or ["no overlaps, gaps or areas outside their parents"])


def read_areas(path: Path, options: ImportOptions, base: Geography
               ) -> tuple[gpd.GeoDataFrame, Report]:
    """The file's areas as a boundary frame (WGS-84, parents set) and what was found."""
    if options.level not in _DEPTH or options.level == LEVELS[0]:
        raise BoundaryError(f"--level must be one of {', '.join(LEVELS[1:])}")
    if options.coord not in DATUMS:
        raise BoundaryError(f"--coord must be one of {', '.join(DATUMS)}")
    frame = _read(path, options.layer)
    wanted = [options.id_field, options.name_field, options.name_en_field, options.parent_field]
    missing = [f for f in wanted if f and f not in frame.columns]
    if missing:
        fields = ", ".join(c for c in frame.columns if c != frame.geometry.name)
        raise BoundaryError(f"{path}: no field {', '.join(missing)} (fields: {fields})")
    ids = _ids(frame[options.id_field], path)
    geoms = _to_wgs84(frame, path, options.coord)
    report = Report(areas=len(ids))
    geoms, report.repaired = _repaired(geoms, ids, path)
    names = [cell_text(v) or aid for v, aid in zip(frame[options.name_field], ids, strict=True)]
    names_en = names
    if options.name_en_field:
        names_en = [cell_text(v) or n
                    for v, n in zip(frame[options.name_en_field], names, strict=True)]
    out = gpd.GeoDataFrame({"area_id": ids, "name": names, "name_en": names_en,
                            "level": options.level}, geometry=geoms, crs="EPSG:4326")
    if options.parent_field:
        out["parent_id"] = [cell_text(v) for v in frame[options.parent_field]]
        unknown = sorted({p for p in out["parent_id"] if p not in base.areas} - {None})
        if unknown:
            raise BoundaryError(f"{path}: parent ids not in the hierarchy: "
                                f"{', '.join(unknown[:10])}")
    else:
        out["parent_id"] = contained_in(out.geometry.values, options.level, base)
    orphans = [aid for aid, p in zip(ids, out["parent_id"], strict=True) if p is None]
    if orphans:
        raise BoundaryError(f"{path}: no parent for {', '.join(orphans[:10])} (no coarser area "
                            f"holds half of it)")
    _check_levels(out, base, path)
    _measure(out, base, report)
    return out, report


def contained_in(geoms: Sequence[shapely.Geometry], level: str, base: Geography
                 ) -> list[str | None]:
    """Per geometry, the finest coarser area of `base` holding most of it (None: none does)."""
    frame = base.frame[base.frame["depth"] < _DEPTH[level]]
    candidates = np.asarray(frame.geometry.values, dtype=object)
    tree = shapely.STRtree(candidates)
    parents: list[str | None] = []
    for geom in geoms:
        hits = tree.query(geom)
        best: tuple[int, float, str] | None = None
        for i in hits:
            share = shapely.intersection(candidates[i], geom).area / max(geom.area, 1e-18)
            if share >= CONTAINED_SHARE:
                key = (int(frame["depth"].iloc[i]), share, str(frame.index[i]))
                best = key if best is None or key[:2] > best[:2] else best
        parents.append(best[2] if best else None)
    return parents


def simplify(frame: gpd.GeoDataFrame, metres: float) -> gpd.GeoDataFrame:
    """The areas simplified as one coverage: shared edges stay shared (no slivers).

    The layer's outer boundary is kept as it is: it is shared with the areas of
    the hierarchy around it (its parents, their neighbours), which are not simplified.
    """
    if metres <= 0:
        return frame
    utm = frame.estimate_utm_crs()
    metric = np.asarray(frame.geometry.to_crs(utm).values, dtype=object)
    simplified = shapely.coverage_simplify(metric, metres, simplify_boundary=False)
    out = frame.copy()
    out.geometry = gpd.GeoSeries(simplified, crs=utm, index=frame.index).to_crs("EPSG:4326")
    return out


def merge(base: Geography, imported: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The base hierarchy with the imported areas added (an imported id replaces its own)."""
    kept = base.frame.drop(columns="depth").reset_index()
    kept = kept[~kept["area_id"].isin(set(imported["area_id"]))]
    columns = ["area_id", "name", "name_en", "level", "parent_id", "geometry"]
    merged = pd.concat([kept[columns], imported[columns]], ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs="EPSG:4326")


def import_file(path: Path, options: ImportOptions, base: Geography, out: Path
                ) -> tuple[Report, Geography]:
    """Read, check, simplify, merge and write; the report and the hierarchy as loaded back."""
    imported, report = read_areas(path, options, base)
    if options.simplify_m > 0 and report.overlaps:
        raise BoundaryError(f"{path}: overlapping areas cannot be simplified as a coverage; "
                            "fix the overlaps or import with --simplify 0")
    before = int(shapely.get_num_coordinates(imported.geometry.values).sum())
    imported = simplify(imported, options.simplify_m)
    report.vertices = (before, int(shapely.get_num_coordinates(imported.geometry.values).sum()))
    merged = merge(base, imported)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(suffix=".geojson", dir=out.parent)
    os.close(handle)
    try:
        os.unlink(temp)
        merged.to_file(temp, driver="GeoJSON")
        loaded = load_geography(temp)  # the cockpit's own checks, before replacing anything
        os.replace(temp, out)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return report, loaded


def _read(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    if not path.exists():
        raise BoundaryError(f"{path}: file not found")
    try:
        frame = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except (RuntimeError, OSError, ValueError, UnicodeError) as exc:  # pyogrio's are RuntimeErrors
        raise BoundaryError(f"{path}: not a readable geographic file ({exc})") from exc
    if frame.empty:
        raise BoundaryError(f"{path}: the file has no features")
    return frame


def _ids(values: pd.Series, path: Path) -> list[str]:
    ids = [cell_text(v) for v in values]
    bad = [str(v) for v in ids if v is None or not ID.fullmatch(v)]
    if bad:
        raise BoundaryError(f"{path}: ids must be 1-64 characters of A-Za-z0-9._:- "
                            f"(found {', '.join(bad[:5])})")
    duplicates = sorted(v for v, n in Counter(ids).items() if n > 1 and v is not None)
    if duplicates:
        raise BoundaryError(f"{path}: duplicate ids {', '.join(duplicates[:10])}")
    return [v for v in ids if v is not None]


def _to_wgs84(frame: gpd.GeoDataFrame, path: Path, coord: str) -> np.ndarray:
    geoms = np.asarray(frame.geometry.values, dtype=object)
    if any(g is None or g.is_empty for g in geoms):
        raise BoundaryError(f"{path}: a feature has no geometry")
    if frame.crs is None:
        x0, y0, x1, y1 = shapely.total_bounds(geoms)
        if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
            raise BoundaryError(f"{path}: no CRS, and the coordinates are not longitude/"
                                "latitude (store the CRS in the file, e.g. a .prj)")
    elif not frame.crs.equals("EPSG:4326"):
        try:
            geoms = np.asarray(frame.geometry.to_crs("EPSG:4326").values, dtype=object)
        except (CRSError, ValueError, RuntimeError) as exc:
            raise BoundaryError(f"{path}: cannot reproject from {frame.crs} ({exc})") from exc
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    if not (np.isfinite([x0, y0, x1, y1]).all() and -180 <= x0 <= x1 <= 180
            and -90 <= y0 <= y1 <= 90):
        raise BoundaryError(f"{path}: coordinates are not longitude/latitude after "
                            f"reprojection from {frame.crs} (is the CRS right?)")
    if coord != "wgs84":
        def convert(xy: np.ndarray) -> np.ndarray:
            lon, lat = to_wgs84_many(xy[:, 0], xy[:, 1], np.full(len(xy), coord))
            return np.column_stack([lon, lat])

        geoms = shapely.transform(geoms, convert)
    return geoms


def _repaired(geoms: np.ndarray, ids: list[str], path: Path) -> tuple[np.ndarray, list[str]]:
    broken = np.flatnonzero(~shapely.is_valid(geoms))
    out = geoms.copy()
    for i in broken:
        fixed = shapely.make_valid(geoms[i], method="structure")
        polygons = [p for p in getattr(fixed, "geoms", [fixed])
                    if p.geom_type in ("Polygon", "MultiPolygon")]
        if not polygons:
            raise BoundaryError(f"{path}: area {ids[i]} has no area left after repair")
        out[i] = shapely.union_all(polygons)
    wrong = [aid for aid, g in zip(ids, out, strict=True)
             if g.geom_type not in ("Polygon", "MultiPolygon")]
    if wrong:
        raise BoundaryError(f"{path}: not polygons: {', '.join(wrong[:10])}")
    return out, [ids[i] for i in broken]


def _check_levels(frame: gpd.GeoDataFrame, base: Geography, path: Path) -> None:
    for aid, parent in zip(frame["area_id"], frame["parent_id"], strict=True):
        if _DEPTH[base.areas[parent].level] >= _DEPTH[frame["level"].iloc[0]]:
            raise BoundaryError(f"{path}: area {aid}'s parent {parent} is not of a coarser "
                                "level")


def _measure(frame: gpd.GeoDataFrame, base: Geography, report: Report) -> None:
    """Overlaps, gaps and parts outside parents, in m² of the local UTM zone."""
    utm = frame.estimate_utm_crs()
    geoms = np.asarray(frame.geometry.to_crs(utm).values, dtype=object)
    ids = list(frame["area_id"])
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    for i, j in zip(left, right, strict=True):
        if i < j:
            m2 = shapely.intersection(geoms[i], geoms[j]).area
            if m2 >= MIN_REPORTED_M2:
                report.overlaps.append((ids[i], ids[j], round(m2, 1)))
    parents = list(frame["parent_id"])
    parent_geoms = gpd.GeoSeries(base.frame.geometry.loc[sorted(set(parents))]).to_crs(utm)
    for i, (aid, parent) in enumerate(zip(ids, parents, strict=True)):
        m2 = shapely.difference(geoms[i], parent_geoms.loc[parent]).area
        if m2 >= MIN_REPORTED_M2:
            report.outside.append((aid, parent, round(m2, 1)))
    for parent, geom in parent_geoms.items():
        children = [g for g, p in zip(geoms, parents, strict=True) if p == parent]
        m2 = shapely.difference(geom, shapely.union_all(children)).area
        if m2 >= MIN_REPORTED_M2:
            report.gaps.append((str(parent), round(m2, 1)))
