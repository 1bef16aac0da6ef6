"""Risk layer: areas coloured by their warning level, with the boundaries and names."""

from __future__ import annotations

from dashboard.i18n import label, t
from dashboard.state.view import CityView
from layers.base import (
    OUTLINE,
    WARNING_COLORS,
    Layer,
    Legend,
    Trace,
    focus,
    geojson_url,
    stepped_scale,
    text,
)

LEVEL_CODES = ("normal", "blue", "yellow", "orange", "red")
SCALE = stepped_scale([WARNING_COLORS[level] for level in LEVEL_CODES])


def area_risk(view: CityView, area_id: str) -> tuple[float | None, str]:
    """An area's risk score and warning level (its own score for scored areas)."""
    return view.risk_of(area_id)


def traces(view: CityView, area_id: str, lang: str) -> list[Trace]:
    """The filled areas by warning level, the coarser outlines, the selection and names."""
    geography = view.geography
    f = focus(geography, area_id)
    codes, hover = [], []
    for aid in f.fill_ids:
        score, level = area_risk(view, aid)
        codes.append(LEVEL_CODES.index(level))
        shown = t("no_score", lang) if score is None else f"{score:.1f}"
        hover.append([text(geography.name(aid, lang)), shown, label("risk_level", level, lang)])
    out: list[Trace] = [{
        "type": "choroplethmap", "uid": "risk-fill", "name": t("risk", lang),
        "geojson": geojson_url(f.scope, f.fill_level), "featureidkey": "id",
        "locations": list(f.fill_ids), "z": codes, "zmin": -0.5, "zmax": 4.5,
        "colorscale": SCALE, "showscale": False,
        "marker": {"opacity": 0.78, "line": {"width": 0.6, "color": "#0b1220"}},
        "customdata": hover,
        "hovertemplate": ("<b>%{customdata[0]}</b><br>" + t("score", lang)
                          + " %{customdata[1]} · %{customdata[2]}<extra></extra>"),
    }]
    if f.outline_level:
        out.append(_outline("risk-outline", geojson_url(f.scope, f.outline_level),
                            f.outline_ids, OUTLINE, 1.6))
    if area_id != f.scope:
        level = geography.areas[area_id].level
        out.append(_outline("risk-selected", geojson_url(area_id, level), (area_id,),
                            "#ffffff", 3.0))
    names = f.outline_ids if f.outline_level else (
        f.fill_ids if len(f.fill_ids) <= 40 else ())
    out.append({
        "type": "scattermap", "uid": "risk-names", "mode": "text",
        "lon": [geography.areas[a].lon for a in names],
        "lat": [geography.areas[a].lat for a in names],
        "text": [geography.name(a, lang) for a in names],
        "textfont": {"size": 14, "color": "#e8eef6"},
        "hoverinfo": "skip", "showlegend": False,
    })
    return out


def _outline(uid: str, url: str, ids: tuple[str, ...], colour: str, width: float) -> Trace:
    return {
        "type": "choroplethmap", "uid": uid, "geojson": url, "featureidkey": "id",
        "locations": list(ids), "z": [0] * len(ids), "showscale": False,
        "colorscale": [[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]],
        "marker": {"line": {"width": width, "color": colour}},
        "hoverinfo": "skip",
    }


def legend(lang: str) -> Legend:
    """The five warning levels."""
    return Legend(t("risk", lang), tuple(
        (WARNING_COLORS[level], label("risk_level", level, lang)) for level in LEVEL_CODES))


LAYER = Layer(
    id="risk", name={"zh-CN": "风险预警", "en": "Risk warnings"},
    traces=traces, legend=legend, default_visible=True,
    doc="Areas by risk warning level (blue, yellow, orange, red).",
)
