"""Traffic layer: congestion delay index per area and per road segment, by level.

Segments the city's road network has (`dashboard.roads`) are drawn as their roads,
coloured by level and as wide as their class; the geometry comes once by URL
(`/geo/roads.json`) and a tick sends only the levels. The others are dots.
"""

from __future__ import annotations

from dashboard.i18n import label, t
from dashboard.state.view import CityView, traffic_level
from layers.base import (
    OKABE_ITO,
    ROADS_URL,
    Layer,
    Legend,
    Trace,
    focus,
    geojson_url,
    stepped_scale,
    text,
)

LEVEL_CODES = ("none", "smooth", "slow", "congested", "severe")
LEVEL_COLORS = ("#3b4456", OKABE_ITO["green"], OKABE_ITO["yellow"], OKABE_ITO["orange"],
                OKABE_ITO["purple"])
SCALE = stepped_scale(LEVEL_COLORS)


def traces(view: CityView, area_id: str, lang: str) -> list[Trace]:
    """Areas filled by their mean index; segments as roads (or dots) by their own index."""
    geography = view.geography
    f = focus(geography, area_id)
    if f.outline_level:
        level, ids = f.outline_level, f.outline_ids
    elif f.scope == geography.root_id:
        level, ids = f.fill_level, f.fill_ids
    else:
        level, ids = geography.areas[f.scope].level, (f.scope,)
    codes, hover = [], []
    for aid in ids:
        traffic = view.summary(aid)["traffic"]
        codes.append(LEVEL_CODES.index(traffic["level"] or "none"))
        shown = "-" if traffic["index"] is None else f"{traffic['index']:.2f}"
        hover.append([text(geography.name(aid, lang)), shown,
                      label("traffic_level", traffic["level"] or "none", lang)])
    network = geography.roads
    lon, lat, seg_codes, seg_hover = [], [], [], []
    road_ids, road_codes, road_colours, road_widths, road_hover = [], [], [], [], []
    for seg_id, seg in sorted(view.raw.segments.items()):
        if seg.area not in geography.areas or area_id not in geography.chain(seg.area):
            continue
        index = seg.index
        lvl = traffic_level(index) or "none"
        hover_row = [text(seg_id), f"{seg.speed_kmh:.0f}", f"{index:.2f}",
                     label("traffic_level", lvl, lang)]
        if network is not None and seg_id in network.classes:
            road_ids.append(seg_id)
            road_codes.append(LEVEL_CODES.index(lvl))
            road_colours.append(LEVEL_COLORS[LEVEL_CODES.index(lvl)])
            road_widths.append(network.width(seg_id))
            road_hover.append(hover_row)
            continue
        if seg.lon is None or seg.lat is None:
            continue
        lon.append(seg.lon)
        lat.append(seg.lat)
        seg_codes.append(LEVEL_CODES.index(lvl))
        seg_hover.append(hover_row)
    segment_hover = ("%{customdata[0]}<br>" + t("speed", lang) + " %{customdata[1]} km/h · "
                     + t("index", lang) + " %{customdata[2]} · %{customdata[3]}")
    road_hover_template = segment_hover + (
        "<br><i>" + t("synthetic_roads", lang) + "</i>" if network and network.synthetic else "")
    roads: list[Trace] = [] if network is None else [
        {"type": "choroplethmap", "uid": "traffic-roads", "name": t("segments", lang),
         "geojson": ROADS_URL, "featureidkey": "id",
         "locations": road_ids, "z": road_codes, "zmin": -0.5, "zmax": 4.5,
         "colorscale": SCALE, "showscale": False,
         "marker": {"opacity": 0.95, "line": {"color": road_colours, "width": road_widths}},
         "customdata": road_hover, "hovertemplate": road_hover_template + "<extra></extra>"}]
    return [
        {"type": "choroplethmap", "uid": "traffic-fill", "name": t("traffic", lang),
         "geojson": geojson_url(f.scope, level), "featureidkey": "id",
         "locations": list(ids), "z": codes, "zmin": -0.5, "zmax": 4.5,
         "colorscale": SCALE, "showscale": False,
         "marker": {"opacity": 0.55, "line": {"width": 1, "color": "#0b1220"}},
         "customdata": hover,
         "hovertemplate": ("<b>%{customdata[0]}</b><br>" + t("index", lang)
                           + " %{customdata[1]} · %{customdata[2]}<extra></extra>")},
        *roads,
        {"type": "scattermap", "uid": "traffic-segments", "mode": "markers",
         "lon": lon, "lat": lat, "name": t("segments", lang),
         "marker": {"size": 8, "color": seg_codes, "cmin": -0.5, "cmax": 4.5,
                    "colorscale": SCALE, "showscale": False},
         "customdata": seg_hover, "hovertemplate": segment_hover + "<extra></extra>"},
    ]


def legend(lang: str) -> Legend:
    """The four congestion levels (and no data)."""
    return Legend(t("traffic", lang), tuple(
        (colour, label("traffic_level", level, lang))
        for colour, level in zip(LEVEL_COLORS[1:], LEVEL_CODES[1:], strict=True)))


LAYER = Layer(
    id="traffic", name={"zh-CN": "交通拥堵", "en": "Traffic"},
    traces=traces, legend=legend, default_visible=False,
    doc="Congestion delay index per area and per segment: smooth, slow, congested, severe.",
)
