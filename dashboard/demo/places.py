"""Places of the demo: random points inside areas, each sent in a producer's datum."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import shapely

from dashboard.demo.catalogue import DATUM_SHARES, DATUMS
from dashboard.pipeline.coords import gcj02_to_bd09, wgs84_to_gcj02

Fields = dict[str, str]


class GeographyLike(Protocol):
    """The part of `dashboard.geography.Geography` the simulator uses."""

    root_id: str
    areas: Mapping[str, Any]
    frame: Any  # GeoDataFrame indexed by area_id with a `geometry` column

    def children(self, area_id: str) -> tuple[str, ...]:
        """Ids of the areas directly inside `area_id`."""
        ...


class Point(NamedTuple):
    """A place as sent (strings in `coord`'s datum) and as it is (WGS-84)."""

    lon: str
    lat: str
    coord: str  # "" sends no `coord` field (WGS-84 by default)
    wgs_lon: float
    wgs_lat: float


def sent_point(lon: float, lat: float, datum: str) -> tuple[str, str]:
    """A WGS-84 point as a producer in `datum` sends it (6 decimals)."""
    if datum == "wgs84":
        return f"{lon:.6f}", f"{lat:.6f}"
    glon, glat = wgs84_to_gcj02(lon, lat)
    if datum == "bd09":
        glon, glat = gcj02_to_bd09(glon, glat)
    return f"{glon:.6f}", f"{glat:.6f}"


def sample_points(
    geometries: Sequence[Any], k: int, rng: np.random.Generator, margin: float = 2e-5,
    rounds: int = 30,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to `k` uniform random points inside each geometry, `margin` degrees off its border.

    Vectorised rejection sampling in the bounding boxes. The margin (~2 m) keeps a point
    inside after a datum conversion and rounding to 6 decimals.
    """
    count = len(geometries)
    found: list[list[np.ndarray]] = [[] for _ in range(count)]
    counts = np.zeros(count, int)
    if count == 0:
        return []
    geoms = np.empty(count, dtype=object)
    geoms[:] = list(geometries)
    borders = shapely.boundary(geoms)
    bounds = shapely.bounds(geoms)
    box_area = np.maximum((bounds[:, 2] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 1]), 1e-18)
    fill = np.clip(shapely.area(geoms) / box_area, 0.02, 1.0)
    for _ in range(rounds):
        todo = np.flatnonzero(counts < k)
        if todo.size == 0:
            break
        tries = np.ceil((k - counts[todo]) / fill[todo] * 1.5).astype(int) + 4
        owner = np.repeat(todo, tries)
        x = rng.uniform(bounds[owner, 0], bounds[owner, 2])
        y = rng.uniform(bounds[owner, 1], bounds[owner, 3])
        keep = shapely.contains_xy(geoms[owner], x, y)
        owner, x, y = owner[keep], x[keep], y[keep]
        keep = ~shapely.dwithin(borders[owner], shapely.points(x, y), margin)
        owner, x, y = owner[keep], x[keep], y[keep]
        ids, first = np.unique(owner, return_index=True)  # owner is sorted
        for i, part in zip(ids.tolist(), np.split(np.column_stack((x, y)), first[1:]),
                           strict=True):
            part = part[: k - counts[i]]
            found[i].append(part)
            counts[i] += len(part)
    out = []
    for parts in found:
        pts = np.concatenate(parts) if parts else np.empty((0, 2))
        out.append((pts[:, 0], pts[:, 1]))
    return out


class PointPool:
    """Random points of one area, each sent in its own datum; converted when first used."""

    def __init__(self, lons: np.ndarray, lats: np.ndarray, rng: np.random.Generator) -> None:
        self.lons = lons.tolist()
        self.lats = lats.tolist()
        self.datums = rng.choice(len(DATUMS), size=len(self.lons), p=DATUM_SHARES).tolist()
        self.omit = (rng.random(len(self.lons)) < 0.5).tolist()
        self._made: dict[int, Point] = {}

    def __len__(self) -> int:
        return len(self.lons)

    def __getitem__(self, i: int) -> Point:
        point = self._made.get(i)
        if point is None:
            lon, lat, datum = self.lons[i], self.lats[i], DATUMS[self.datums[i]]
            slon, slat = sent_point(lon, lat, datum)
            coord = "" if datum == "wgs84" and self.omit[i] else datum
            point = self._made[i] = Point(slon, slat, coord, lon, lat)
        return point


def finest_areas(geography: GeographyLike) -> list[str]:
    """Ids of the areas with no finer areas inside (the city itself left out)."""
    return sorted(
        area_id for area_id in geography.areas
        if area_id != geography.root_id and not geography.children(area_id)
    )


def districts(geography: GeographyLike) -> list[str]:
    """The districts (or the root's children when there are none)."""
    found = sorted(a for a, area in geography.areas.items() if area.level == "district")
    return found or sorted(geography.children(geography.root_id))


def location(point: Point) -> Fields:
    """A point's lon/lat (and coord, unless WGS-84 left implicit) fields."""
    fields = {"lon": point.lon, "lat": point.lat}
    if point.coord:
        fields["coord"] = point.coord
    return fields


