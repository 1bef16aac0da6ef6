"""Incidents layer: open incidents as points, coloured by severity, overdue ones ringed.

Above `POINTS_MAX` open incidents inside the selected area they are counted instead
(`layers.aggregate`): one bubble per child area, or per grid cell, labelled with its
count (the digits come from the glyphs the app serves, `dashboard.screen.glyphs`),
coloured by its most severe incident and ringed when any is overdue. A click on an
area's bubble drills into that area. The three traces are always there, empty when
not used, so that a tick can patch them in place.
"""

from __future__ import annotations

from dashboard.i18n import label, t
from dashboard.state.view import CityView, OpenIncident
from layers.aggregate import Group, bubble_size, by_child_area, by_grid
from layers.base import (
    GLYPH_FONT,
    OKABE_ITO,
    Layer,
    Legend,
    Trace,
    focus,
    stepped_scale,
    text,
)

SEVERITY_COLORS = (OKABE_ITO["grey"], OKABE_ITO["sky"], OKABE_ITO["orange"],
                   OKABE_ITO["vermillion"])
SCALE = stepped_scale(SEVERITY_COLORS)  # severity 1..4 as codes 0..3
OVERDUE_RING = "#ffffff"
POINTS_MAX = 500  # more open incidents with a place than this in the area: counted instead
POINT_SIZE, RING_SIZE = 11, 20
DRILL = "drill:"  # a bubble's customdata[0]: a click on it selects that area


def age_text(minutes: float, lang: str) -> str:
    """How long an incident has been open, e.g. `2h05` or `17 min`."""
    minutes = max(0, int(minutes))
    if minutes < 60:
        return f"{minutes} {t('minutes', lang)}"
    return f"{minutes // 60}h{minutes % 60:02d}"


def traces(view: CityView, area_id: str, lang: str) -> list[Trace]:
    """Overdue rings under the points (or the counted bubbles); hover as text."""
    if view.summary(area_id)["incidents"]["open"] > POINTS_MAX:
        groups = by_child_area(view, area_id)
        if groups is None:
            groups = by_grid(area_id, focus(view.geography, area_id).bounds,
                             view.places_inside(area_id), view.now_ms)
        return _traces([], groups, view, lang)
    placed = [i for i in view.open_incidents(area_id) if i.lon is not None and i.lat is not None]
    return _traces(placed, [], view, lang)


def _traces(placed: list[OpenIncident], groups: list[Group], view: CityView,
            lang: str) -> list[Trace]:
    now_ms = view.now_ms
    lon, lat, codes, hover = [], [], [], []
    ring_lon, ring_lat = [], []
    ring_size: list[float] = []
    for item in placed:
        overdue = item.overdue(now_ms)
        lon.append(item.lon)
        lat.append(item.lat)
        codes.append(min(max(item.severity, 1), 4) - 1)
        hover.append([
            label("category", item.category or "unknown", lang),
            label("source", item.source or "", lang),
            label("status", item.status, lang),
            age_text((now_ms - item.start) / 60000, lang),
            text(item.title),
            t("overdue", lang) if overdue else "",
        ])
        if overdue:
            ring_lon.append(item.lon)
            ring_lat.append(item.lat)
            ring_size.append(RING_SIZE)
    largest = max((g.count for g in groups), default=1)
    g_lon, g_lat, g_size, g_codes, g_text, g_hover = [], [], [], [], [], []
    for group in groups:
        size = bubble_size(group.count, largest)
        g_lon.append(group.lon)
        g_lat.append(group.lat)
        g_size.append(size)
        g_codes.append(min(max(group.max_severity, 1), 4) - 1)
        g_text.append(str(group.count))
        name = (text(view.geography.name(group.area_id, lang)) if group.area_id
                else t("map_cell", lang))
        g_hover.append([DRILL + group.area_id if group.area_id else "", name, group.count,
                        group.overdue])
        if group.overdue:
            ring_lon.append(group.lon)
            ring_lat.append(group.lat)
            ring_size.append(size + 8)
    return [
        {"type": "scattermap", "uid": "incidents-overdue", "mode": "markers",
         "lon": ring_lon, "lat": ring_lat, "hoverinfo": "skip", "name": t("overdue", lang),
         "marker": {"size": ring_size, "color": OVERDUE_RING, "opacity": 0.95}},
        {"type": "scattermap", "uid": "incidents-points", "mode": "markers",
         "lon": lon, "lat": lat, "name": t("incident", lang),
         "marker": {"size": POINT_SIZE, "color": codes, "cmin": -0.5, "cmax": 3.5,
                    "colorscale": SCALE, "showscale": False, "opacity": 1},
         "customdata": hover,
         "hovertemplate": ("<b>%{customdata[0]}</b> %{customdata[5]}<br>%{customdata[4]}<br>"
                           + t("source", lang) + ": %{customdata[1]} · "
                           + t("status", lang) + ": %{customdata[2]} · "
                           + t("age", lang) + ": %{customdata[3]}<extra></extra>")},
        {"type": "scattermap", "uid": "incidents-clusters", "mode": "markers+text",
         "lon": g_lon, "lat": g_lat, "text": g_text, "name": t("map_counted", lang),
         "textfont": {"family": GLYPH_FONT, "size": 14, "color": "#0b1220"},
         "textposition": "middle center",
         "marker": {"size": g_size, "color": g_codes, "cmin": -0.5, "cmax": 3.5,
                    "colorscale": SCALE, "showscale": False, "opacity": 0.9},
         "customdata": g_hover,
         "hovertemplate": ("<b>%{customdata[1]}</b><br>" + t("kpi_open", lang)
                           + " %{customdata[2]} · " + t("overdue", lang)
                           + " %{customdata[3]}<extra></extra>")},
    ]


def legend(lang: str) -> Legend:
    """Severity colours and the overdue ring."""
    rows = tuple((colour, label("severity", str(i + 1), lang))
                 for i, colour in enumerate(SEVERITY_COLORS))
    return Legend(t("incident", lang), (*rows, (OVERDUE_RING, "◯ " + t("overdue", lang))))


LAYER = Layer(
    id="incidents", name={"zh-CN": "在办事件", "en": "Open incidents"},
    traces=traces, legend=legend, default_visible=True,
    doc="Open incidents by severity; overdue ones ringed in white.",
)
