"""Open incidents counted per area (or per grid cell) for a map too full for single points.

A city with 100,000 open incidents cannot send them all to every screen: above
`POINTS_MAX` inside the selected area, the incidents layer draws one counted
bubble per child area of the selection (districts for the city, streets for a
district ...) and, for an area without children, per cell of a square grid over
it. Drilling down shows fewer incidents each time, until they are single points.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dashboard.kinds.incident import OpenIncident
from dashboard.state.view import CityView, PlaceSums

GRID_CELLS = 12  # cells along the longer side of an area without children


@dataclass(frozen=True)
class Group:
    """Open incidents counted together: where the bubble goes and what it says."""

    key: str  # the child area's id, or `<area>#<column>,<row>` for a grid cell
    area_id: str | None  # the area a click drills into (None for a grid cell)
    lon: float
    lat: float
    count: int
    overdue: int
    max_severity: int


def by_child_area(view: CityView, area_id: str) -> list[Group] | None:
    """One group per child area holding open incidents, from the view's roll-ups.

    None when the children do not hold them all (some are placed in the area itself,
    no finer area containing their point): then the caller counts by grid instead.
    """
    geography = view.geography
    children = geography.children(area_id)
    blocks = [view.summary(child)["incidents"] for child in children]
    if not children or sum(b["open"] for b in blocks) != view.summary(area_id)["incidents"][
            "open"]:
        return None
    return [Group(child, child, geography.areas[child].lon, geography.areas[child].lat,
                  block["open"], block["overdue"],
                  max(int(s) for s, n in block["open_by_severity"].items() if n))
            for child, block in zip(children, blocks, strict=True) if block["open"]]


Cell = tuple[int, int]  # (column, row)


def by_grid(area_id: str, bounds: tuple[float, float, float, float],
            places: Iterable[PlaceSums], now_ms: float,
            cells: int = GRID_CELLS) -> list[Group]:
    """One group per grid cell holding incidents, its bubble at the mean of its points.

    A place's incidents are put in cells once while they stay the same (kept with
    them, `PlaceSums.derived`); a view adds up its places' cells and counts the overdue
    ones at its moment by a bisect of each cell's sorted deadlines.
    """
    key = ("grid cells", bounds, cells)
    sums: dict[Cell, list[float]] = {}
    for place in places:
        counted = place.derived.get(key)
        if counted is None:
            counted = place.derived[key] = _cells(place.by_due, bounds, cells)
        for cell, (lon, lat, n, severity, dues) in counted.items():
            total = sums.get(cell)
            late = bisect_right(dues, now_ms)
            if total is None:
                sums[cell] = [lon, lat, n, late, severity]
            else:
                total[0] += lon
                total[1] += lat
                total[2] += n
                total[3] += late
                total[4] = max(total[4], severity)
    return [Group(f"{area_id}#{col},{row}", None, round(x / n, 5), round(y / n, 5), int(n),
                  int(late), int(sev))
            for (col, row), (x, y, n, late, sev) in sorted(sums.items())]


def _cells(by_due: Iterable[OpenIncident], bounds: tuple[float, float, float, float],
           cells: int) -> dict[Cell, list[Any]]:
    """Incidents (by deadline) per cell: sums of their points, count, top severity, dues."""
    west, south, east, north = bounds
    size = max(east - west, north - south, 1e-9) / cells
    last = cells - 1
    found: dict[Cell, list[Any]] = {}
    for item in by_due:  # (a district's thousands: no call per incident but `int`)
        lon, lat = item.lon, item.lat
        if lon is None or lat is None:
            continue
        column, row = int((lon - west) / size), int((lat - south) / size)
        cell = (column if column < last else last, row if row < last else last)
        total = found.get(cell)
        if total is None:
            total = found[cell] = [0.0, 0.0, 0, 0, []]
        total[0] += lon
        total[1] += lat
        total[2] += 1
        if item.severity > total[3]:
            total[3] = item.severity
        total[4].append(item.due)  # in order: by_due is sorted
    return found


def bubble_size(count: int, largest: int) -> float:
    """Marker diameter in pixels: 22 to 58 by the square root of the count."""
    return round(22 + 36 * math.sqrt(count / max(largest, 1)), 1)
