"""What every map layer shares: the `Layer` record, legends, palettes and the map focus.

A layer is a pure function from the city view to Plotly trace dicts. Polygons
are never inlined in a trace: a choropleth names its geometry by URL
(`geojson_url`), the browser fetches it once and caches it, and updates only
ever carry the numbers (`z`, `lat`, `lon`, colour codes, hover data).
Colours are numeric codes on a stepped colour scale, not one string per
point, so 50 000 points cost milliseconds to recolour.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dashboard.state.view import CityView, Geography

Trace = dict[str, Any]

# China's four warning colours, plus a muted tone for areas without a warning.
WARNING_COLORS: dict[str, str] = {
    "normal": "#2b3547",
    "blue": "#1f6fff",
    "yellow": "#ffd21f",
    "orange": "#ff8a00",
    "red": "#e5202e",
}
# Okabe-Ito (colour-blind safe) for everything that is not a warning level.
OKABE_ITO: dict[str, str] = {
    "grey": "#9aa4b2",
    "sky": "#56b4e9",
    "green": "#009e73",
    "yellow": "#f0e442",
    "orange": "#e69f00",
    "vermillion": "#d55e00",
    "purple": "#cc79a7",
    "blue": "#0072b2",
}
MAP_BACKGROUND = "#0b1220"
OUTLINE = "#d7e0ec"

# The font of map labels (the incident counts): its glyphs are served by the app itself
# (`dashboard.screen.glyphs`), so the style's `glyphs` URL is local too.
GLYPH_FONT = "Noto Sans Regular"
GLYPHS_URL = "/glyphs/{fontstack}/{range}.pbf"

# A style with local glyphs and no remote source: nothing leaves the machine.
# One dummy source is needed: an empty `sources` breaks later updates ("Map error.").
OFFLINE_STYLE: dict[str, Any] = {
    "version": 8,
    "glyphs": GLYPHS_URL,
    "sources": {"none": {"type": "geojson",
                         "data": {"type": "FeatureCollection", "features": []}}},
    "layers": [{"id": "bg", "type": "background",
                "paint": {"background-color": MAP_BACKGROUND}}],
}


@dataclass(frozen=True)
class Legend:
    """A layer's legend: a title and (colour, label) rows."""

    title: str
    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Layer:
    """One map layer of the registry (`layers.LAYERS`)."""

    id: str
    name: dict[str, str]  # language -> name, e.g. {"zh-CN": "风险", "en": "Risk"}
    traces: Callable[[CityView, str, str], list[Trace]]
    legend: Callable[[str], Legend]
    default_visible: bool = True
    doc: str = field(default="", compare=False)

    def title(self, lang: str) -> str:
        """The layer's name in the language (English when the language is missing)."""
        return self.name.get(lang) or self.name["en"]


@dataclass(frozen=True)
class Focus:
    """What the map shows for a selected area."""

    area_id: str
    scope: str  # the area whose finer areas are drawn
    fill_level: str  # level of the filled polygons inside `scope`
    fill_ids: tuple[str, ...]
    outline_level: str | None  # coarser boundaries drawn as lines, if any
    outline_ids: tuple[str, ...]
    bounds: tuple[float, float, float, float]  # of the selected area


ROADS_URL = "/geo/roads.json"  # the road network's ribbons (dashboard.roads)


def geojson_url(scope: str, level: str) -> str:
    """The URL of the polygons of `level` inside `scope` (served by dashboard.screen.geo)."""
    return f"/geo/{scope}/{level}.json"


def focus(geography: Geography, area_id: str) -> Focus:
    """Which areas to fill and outline when `area_id` is selected.

    The city shows its districts. Anything inside a district shows that
    district's finest areas (the same geometry URL, so the browser fetches it
    once) with its streets as outlines, and the map zooms to the selection.
    """
    area = geography.areas[area_id]
    bounds = tuple(float(b) for b in geography.frame.geometry.loc[area_id].bounds)
    if area.parent_id is None:
        districts = geography.descendants_at(area_id, "district")
        level = "district" if districts else area.level
        return Focus(area_id, area_id, level, districts or (area_id,), None, (), bounds)  # type: ignore[arg-type]
    chain = geography.chain(area_id)
    scope = chain[-2]  # the district (or the first level below the root)
    fill_level: str = geography.areas[scope].level
    fill_ids: tuple[str, ...] = (scope,)
    for level in ("grid", "compound", "community", "street"):
        found = geography.descendants_at(scope, level)
        if found:
            fill_level, fill_ids = level, found
            break
    outline_level: str | None = None
    outline_ids: tuple[str, ...] = ()
    streets = geography.descendants_at(scope, "street")
    if streets and fill_level != "street":
        outline_level, outline_ids = "street", streets
    return Focus(area_id, scope, fill_level, fill_ids, outline_level, outline_ids,
                 bounds)  # type: ignore[arg-type]  # bounds: a 4-tuple from shapely


def center_zoom(bounds: Sequence[float], width_px: float = 1000,
                height_px: float = 840) -> tuple[dict[str, float], float]:
    """Map centre and zoom that fit the bounds into a map of about that size."""
    west, south, east, north = bounds
    lat = (south + north) / 2
    span_lon = max(east - west, 1e-4) * 1.08
    span_lat = max(north - south, 1e-4) * 1.08 / max(math.cos(math.radians(lat)), 0.2)
    zoom = min(math.log2(360 * width_px / (512 * span_lon)),
               math.log2(360 * height_px / (512 * span_lat)))
    return {"lon": round((west + east) / 2, 5), "lat": round(lat, 5)}, round(zoom, 2)


def stepped_scale(colours: Sequence[str]) -> list[list[Any]]:
    """A colour scale mapping the codes 0..n-1 (with cmin -0.5, cmax n-0.5) to colours."""
    n = len(colours)
    scale: list[list[Any]] = []
    for i, colour in enumerate(colours):
        scale.append([i / n, colour])
        scale.append([(i + 1) / n, colour])
    return scale


def text(value: object) -> str:
    """Untrusted text made safe for Plotly hover labels (which read a few HTML tags)."""
    return html.escape("" if value is None else str(value), quote=False)
