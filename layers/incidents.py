"""Incidents layer: open incidents as points, coloured by severity, overdue ones ringed."""

from __future__ import annotations

from dashboard.i18n import label, t
from dashboard.state.view import CityView
from layers.base import OKABE_ITO, Layer, Legend, Trace, stepped_scale, text

SEVERITY_COLORS = (OKABE_ITO["grey"], OKABE_ITO["sky"], OKABE_ITO["orange"],
                   OKABE_ITO["vermillion"])
SCALE = stepped_scale(SEVERITY_COLORS)  # severity 1..4 as codes 0..3
OVERDUE_RING = "#ffffff"


def age_text(minutes: float, lang: str) -> str:
    """How long an incident has been open, e.g. `2h05` or `17 min`."""
    minutes = max(0, int(minutes))
    if minutes < 60:
        return f"{minutes} {t('minutes', lang)}"
    return f"{minutes // 60}h{minutes % 60:02d}"


def traces(view: CityView, area_id: str, lang: str) -> list[Trace]:
    """Overdue rings under the points; points coloured by severity, hover as text."""
    now_ms = view.now_ms
    lon, lat, codes, hover = [], [], [], []
    ring_lon, ring_lat = [], []
    for item in view.open_incidents(area_id):
        if item.lon is None or item.lat is None:
            continue
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
    return [
        {"type": "scattermap", "uid": "incidents-overdue", "mode": "markers",
         "lon": ring_lon, "lat": ring_lat, "hoverinfo": "skip", "name": t("overdue", lang),
         "marker": {"size": 20, "color": OVERDUE_RING, "opacity": 0.95}},
        {"type": "scattermap", "uid": "incidents-points", "mode": "markers",
         "lon": lon, "lat": lat, "name": t("incident", lang),
         "marker": {"size": 11, "color": codes, "cmin": -0.5, "cmax": 3.5,
                    "colorscale": SCALE, "showscale": False, "opacity": 1},
         "customdata": hover,
         "hovertemplate": ("<b>%{customdata[0]}</b> %{customdata[5]}<br>%{customdata[4]}<br>"
                           + t("source", lang) + ": %{customdata[1]} · "
                           + t("status", lang) + ": %{customdata[2]} · "
                           + t("age", lang) + ": %{customdata[3]}<extra></extra>")},
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
