"""The panels around the map as Dash components, from a `Frame`.

Untrusted text (titles, departments, segment ids) only ever becomes the
children of a component, which React renders as text.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard.i18n import NUMBER_UNITS, label, t
from dashboard.kinds import KINDS
from dashboard.screen.frame import Frame
from dashboard.screen.viewport import Box, px
from layers.base import WARNING_COLORS, Legend
from layers.incidents import SEVERITY_COLORS
from layers.traffic import LEVEL_CODES as TRAFFIC_CODES
from layers.traffic import LEVEL_COLORS as TRAFFIC_COLORS

KPI_TILES = ("today", "open", "overdue", "closed", "rate", "mttc", "traffic", "levels")
_TILE_TEXT = {"today": "kpi_today", "open": "kpi_open", "overdue": "kpi_overdue",
              "closed": "kpi_closed", "rate": "kpi_rate", "mttc": "kpi_mttc",
              "traffic": "kpi_traffic", "levels": "kpi_levels"}


def href(area_id: str, lang: str) -> str:
    """The page URL of an area in a language."""
    return f"/?area={area_id}&lang={lang}"


EXACT_BELOW = 100_000  # up to "99,999" a tile shows the number itself


def compact(value: int | None, lang: str) -> str:
    """A count short enough for a KPI tile: exact below 100,000, else 12.3万 / 123k.

    At most six characters below 10^11 (the tile is sized for "99,999").
    """
    if value is None:
        return "–"
    if abs(value) < EXACT_BELOW:
        return f"{value:,}"
    units = NUMBER_UNITS.get(lang, NUMBER_UNITS["en"])  # largest step first
    for index, (step, unit) in enumerate(units):
        finer = units[index + 1][0] if index + 1 < len(units) else 1
        if abs(value) >= step - finer / 2:  # what would round up to a whole step counts
            scaled = value / step
            text = f"{scaled:.1f}" if abs(scaled) < 99.95 else f"{scaled:.0f}"
            return text.removesuffix(".0") + unit
    return f"{value:,}"


def kpi_values(frame: Frame) -> list[Any]:
    """The children of each KPI tile's value, in `KPI_TILES` order."""
    k, lang = frame.kpis, frame.lang
    traffic_colour = TRAFFIC_COLORS[TRAFFIC_CODES.index(k["traffic_level"] or "none")]
    return [
        compact(k["today"], lang), compact(k["open"], lang), compact(k["overdue"], lang),
        compact(k["closed"], lang),
        [f"{k['rate']:,}", html.Small("%")] if k["rate"] is not None else "–",
        [f"{k['mttc']:.0f}", html.Small(t("minutes", lang))] if k["mttc"] is not None else "–",
        html.Span("–" if k["traffic"] is None else f"{k['traffic']:.2f}",
                  style={"color": traffic_colour}),
        [html.Span(text, className=f"lvl lvl-{lvl}" + (" lvl-long" if len(text) > 3 else ""),
                   title=f"{label('risk_level', lvl, lang)} {n:,}")
         for lvl, n, text in ((lvl, n, compact(n, lang))
                              for lvl, n in reversed(list(k["levels"].items())))],
    ]


def kpi_row(frame: Frame) -> list[Any]:
    """The KPI tiles, each with an id `kpi-<name>` on its value; then each kind's own tile."""
    tiles = []
    named = [(name, _TILE_TEXT[name], value)
             for name, value in zip(KPI_TILES, kpi_values(frame), strict=True)]
    for kind in KINDS:
        if kind.kpi_label and kind.name in frame.kpis["kinds"]:
            value = frame.kpis["kinds"][kind.name]
            named.append((kind.name, kind.kpi_label,
                          html.Span(compact(value, frame.lang),
                                    className="alert" if value else "")))
    exact = {name: frame.kpis.get(name) for name in ("today", "open", "overdue", "closed")}
    exact.update(frame.kpis["kinds"])
    for name, text_key, value in named:
        count = exact.get(name)
        tiles.append(html.Div([
            html.Div(t(text_key, frame.lang), className="kpi-label"),
            html.Div(value, id=f"kpi-{name}", className="kpi-value",
                     title=f"{count:,}" if isinstance(count, int) else None),
        ], className=f"kpi kpi-{name}"))
    return tiles


def feed_items(frame: Frame) -> list[Any]:
    """The live feed, newest first."""
    items = []
    for row in frame.feed:
        sev = row["sev"] if row["sev"] in ("1", "2", "3", "4") else "2"
        colour = SEVERITY_COLORS[int(sev) - 1] if row["kind"] == "incident" else "#9aa4b2"
        items.append(html.Li([
            html.Span(row["time"], className="feed-time"),
            html.Span(row["what"], className="feed-what", style={"borderColor": colour}),
            html.Span(row["where"], className="feed-where"),
            html.Span(row["status"], className="feed-status"),
            html.Span(row["title"], className="feed-title"),
        ], className=f"feed-item feed-{row['kind']}"))
    if not items:
        items.append(html.Li(t("none", frame.lang), className="feed-empty"))
    return items


def top_items(frame: Frame) -> list[Any]:
    """The ten highest-risk compounds, each a link to it."""
    items = []
    for rank, row in enumerate(frame.top, 1):
        items.append(html.Li(dcc.Link([
            html.Span(f"{rank}", className="top-rank"),
            html.Span(row["name"], className="top-name"),
            html.Span("–" if row["score"] is None else f"{row['score']:.0f}",
                      className="top-score",
                      style={"background": WARNING_COLORS[row["level"]]}),
        ], href=href(row["id"], frame.lang), className="top-link")))
    if not items:
        items.append(html.Li(t("none", frame.lang), className="feed-empty"))
    return items


def detail_body(frame: Frame) -> list[Any]:
    """The selected area's risk score, the indicators behind it, its urgent incidents."""
    d, lang = frame.detail, frame.lang
    score = t("no_score", lang) if d["score"] is None else f"{d['score']:.0f}"
    factors = [_factor(f) for f in d["factors"][:5]]
    incidents = [html.Li([
        html.Span(i["what"], className="inc-what",
                  style={"borderColor": SEVERITY_COLORS[min(max(i["sev"], 1), 4) - 1]}),
        html.Span(i["status"], className="inc-status"),
        html.Span(t("overdue", lang) if i["overdue"] else "", className="inc-overdue"),
        html.Span(i["title"], className="inc-title"),
    ], id=opener(i["id"], "d"), n_clicks=0, role="button", className="inc-open")
        for i in d["incidents"]]
    return [
        html.Div([
            html.Span(score, className="detail-score",
                      style={"color": WARNING_COLORS[d["level"]]
                             if d["level"] != "normal" else "#e8eef6"}),
            html.Span(label("risk_level", d["level"], lang), className="detail-level"),
        ], className="detail-head"),
        *(_categories(d["categories"], lang) if d["categories"] else [
            html.H3(t("detail_factors", lang)),
            html.Ul(factors or [html.Li(t("none", lang))], className="factors")]),
        html.H3(t("detail_open", lang)),
        html.Ul(incidents[:4] or [html.Li(t("none", lang))], className="incidents"),
    ]


def _factor(f: dict[str, Any], css: str = "") -> Any:
    """One indicator: its name, value, a bar of its points and the points."""
    return html.Li([
        html.Span(f["name"], className="factor-name"),
        html.Span("" if f["value"] is None else f"{f['value']:g}", className="factor-value"),
        html.Span(html.Span(style={"width": f"{min(f['points'], 100):.0f}%"}),
                  className="factor-bar"),
        html.Span(f"+{f['points']:.1f}", className="factor-points"),
    ], className=css or None)


def _categories(categories: list[dict[str, Any]], lang: str) -> list[Any]:
    """The score by category (the tree), then the indicators behind the top categories."""
    heads = [_factor({"name": c["name"], "value": None, "points": c["points"]},
                     "factor-category") for c in categories[:3]]
    drivers = [_factor(f) for c in categories[:2] for f in c["factors"][:2] if f["points"] > 0]
    return [
        html.H3(t("detail_categories", lang)),
        html.Ul(heads, className="factors risk-categories"),
        html.H3(t("detail_factors", lang)),
        html.Ul(drivers or [html.Li(t("none", lang))], className="factors risk-indicators"),
    ]


def opener(incident_id: str, where: str) -> dict[str, str]:
    """The id of a list row that opens an incident's panel when clicked."""
    return {"type": "inc-open", "id": incident_id, "src": where}


def overdue_items(frame: Frame) -> list[Any]:
    """The area's overdue incidents, the most overdue first, those escalated here marked."""
    lang = frame.lang
    items = []
    for row in frame.overdue:
        if row["here"]:
            escalation = html.Span("⬆ " + t("escalated_here", lang), className="od-here")
        elif row["up"]:
            escalation = html.Span(f"⬆ {row['up']}", className="od-up")
        else:
            escalation = html.Span(row["where"], className="od-where")
        items.append(html.Li([
            html.Span(_late(row["late"], lang), className="od-late"),
            html.Span(row["what"], className="od-what",
                      style={"borderColor": SEVERITY_COLORS[min(max(row["sev"], 1), 4) - 1]}),
            escalation,
            html.Span(row["title"], className="od-title"),
        ], id=opener(row["id"], "o"), n_clicks=0, role="button",
            className="od-item inc-open" + (" od-escalated" if row["here"] else "")))
    if not items:
        items.append(html.Li(t("none", lang), className="feed-empty"))
    return items


def _late(minutes: float, lang: str) -> str:
    whole = max(0, int(minutes))
    if whole < 60:
        return f"+{whole} {t('minutes', lang)}"
    return f"+{whole // 60}h{whole % 60:02d}"


TREND_FONT_PX = 14  # sizes for 1920x1080; `viewport.px` scales them to the screen
TREND_MARGIN_PX = {"l": 44, "r": 8, "t": 6, "b": 30}


def trend_figure(frame: Frame, box: Box | None = None) -> dict[str, Any]:
    """Bars of incidents per hour over the last 24 hours, text sized for the screen's rem."""
    box = box or Box()
    return {
        "data": [{"type": "bar", "x": frame.trend["x"], "y": frame.trend["y"],
                  "marker": {"color": "#56b4e9"}, "hovertemplate": "%{x} · %{y}<extra></extra>"}],
        "layout": {
            "margin": trend_margin(box),
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "font": {"color": "#c9d4e3", "size": px(TREND_FONT_PX, box)},
            "hoverlabel": {"font": {"size": px(TREND_FONT_PX, box)}},
            "xaxis": {"tickmode": "array", "tickvals": frame.trend["x"][::4], "fixedrange": True},
            "yaxis": {"gridcolor": "#25324a", "fixedrange": True, "rangemode": "tozero"},
            "bargap": 0.15, "uirevision": "trend",
        },
    }


def trend_margin(box: Box) -> dict[str, float]:
    """The trend chart's margins (room for its tick labels) at the box's rem."""
    return {side: px(size, box) for side, size in TREND_MARGIN_PX.items()}


def legend_box(legends: list[Legend]) -> list[Any]:
    """The legends of the visible layers."""
    boxes = []
    for legend in legends:
        boxes.append(html.Div([
            html.Div(legend.title, className="legend-title"),
            *[html.Div([html.Span(className="swatch", style={"background": colour}),
                        html.Span(text)], className="legend-row")
              for colour, text in legend.items],
        ], className="legend-block"))
    return boxes


def breadcrumb(geography: Any, area_id: str, lang: str, scope: str | None = None) -> list[Any]:
    """City › district › ... › the selected area; every step but the last is a link.

    Steps above the user's `scope` are plain text: an official cannot go there.
    """
    chain = list(reversed(geography.chain(area_id)))
    above = set(chain[:chain.index(scope)]) if scope in chain else set()
    parts: list[Any] = []
    for i, aid in enumerate(chain):
        name = geography.name(aid, lang)
        if i:
            parts.append(html.Span("›", className="crumb-sep"))
        if aid == area_id:
            parts.append(html.Span(name, className="crumb-here"))
        elif aid in above:
            parts.append(html.Span(name, className="crumb-above"))
        else:
            parts.append(dcc.Link(name, href=href(aid, lang), className="crumb-link",
                                  id=f"crumb-{i}"))
    return parts
