"""The page: a fixed skeleton, and the screen rendered for an area and a language."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from dash import dcc, html

from dashboard.geography import Geography
from dashboard.i18n import label, pick_lang, t
from dashboard.screen import panels
from dashboard.screen.frame import Frame
from dashboard.screen.mapfig import figure
from dashboard.screen.viewport import Box
from dashboard.settings import Settings
from layers import LAYERS

GRAPH_CONFIG: Any = {"displayModeBar": False, "scrollZoom": True, "doubleClick": False}
SCREEN_SLOT = "screen-root"  # the skeleton's slot that `render` fills with the screen


def skeleton(settings: Settings) -> html.Div:
    """What never changes: URL, timers, time zone, the look-back choice, the screen's slot.

    `url-fix` puts a user back on their own area when the URL asks for one outside
    their scope; `replay` holds the time control's choice across area changes;
    `screen-box` the map's real size, measured by `assets/cockpit.js` (`viewport.Box`).
    """
    return html.Div([
        dcc.Location(id="url", refresh="callback-nav"),
        dcc.Location(id="url-fix", refresh="callback-nav"),
        dcc.Store(id="replay"),
        dcc.Store(id="screen-box"),
        dcc.Interval(id="tick", interval=settings.update_ms),
        dcc.Interval(id="clock-tick", interval=1000),
        dcc.Store(id="clock-tz", data=settings.tz),
        html.Div(id=SCREEN_SLOT),
    ], id="cockpit-root")


def selection(search: str | None, geography: Geography, default_lang: str,
              default_area: str | None = None) -> tuple[str, str]:
    """The area and language a `?area=...&lang=...` query asks for.

    No area: `default_area` (the user's own), else the city; an unknown one: the city.
    """
    query = parse_qs((search or "").lstrip("?"))
    area = (query.get("area") or [""])[0] or default_area or geography.root_id
    lang = pick_lang((query.get("lang") or [""])[0], default_lang)
    return (area if area in geography.areas else geography.root_id), lang


def area_options(geography: Geography, area_id: str, lang: str,
                 scope: str | None = None) -> list[dict[str, str]]:
    """The picker's areas: the city, its districts, and all inside the selected one.

    With `scope` (the user's own area), only those inside it.
    """
    chain = geography.chain(area_id)
    district = chain[-2] if len(chain) > 1 else None
    ids = [geography.root_id, *geography.children(geography.root_id)]
    if district:
        ids.extend(a for level in ("street", "community", "compound")
                   for a in geography.descendants_at(district, level))
    if scope and scope != geography.root_id:
        ids = [scope, *(a for a in ids if a != scope and scope in geography.chain(a))]
    return [{"label": geography.name(a, lang) + " · "
             + label("level", geography.areas[a].level, lang), "value": a} for a in ids]


def screen(frame: Frame, geography: Geography, settings: Settings,
           signature: dict[str, Any], scope: str | None = None, *,
           user_box: Any = None, timebar: Any = None, incident_panel: Any = None,
           overlays: list[Any] | None = None, replaying: bool = False,
           export_href: str | None = None, push: dict[str, Any] | None = None,
           box: Box | None = None, search: str = "") -> html.Div:
    """The whole screen for the frame's area and language.

    The officials' parts (account block, time control, incident panel, audit
    overlay) are built by their own modules and slotted in here. `push` tells the
    browser where the push process is (`PushStatus.config`; None: poll only). The
    figures are sized for the `box` the browser last reported. `search` (the URL's
    query the screen is drawn for) is kept as its `data-search`: a script or test that
    changes the URL waits for the screen drawn for it, not for the one still shown.
    """
    lang = frame.lang
    visible = [layer.id for layer in LAYERS if layer.default_visible]
    other = "zh-CN" if lang == "en" else "en"
    header = html.Header([
        html.Div(t("title", lang), className="title"),
        html.Nav(panels.breadcrumb(geography, frame.area_id, lang, scope), id="crumbs",
                 className="crumbs"),
        dcc.Dropdown(id="area-picker", options=area_options(geography, frame.area_id, lang, scope),
                     value=frame.area_id, clearable=False, searchable=True,
                     placeholder=t("pick_area", lang), className="picker"),
        dcc.Link(t("lang_switch", lang), href=panels.href(frame.area_id, other),
                 id="lang-link", className="lang-link"),
        html.Div([
            html.Div(id="clock", className="clock"),
            html.Div([html.Span(t("as_of", lang) + " "),
                      html.Span(frame.day, id="asof-date"), " ",
                      html.Span(frame.as_of, id="asof-time"),
                      html.Span(" · " + t("last_event", lang) + " "),
                      html.Span(frame.last_event, id="last-event"),
                      html.Span(id="push-status", className="push-status hidden",
                                role="status")], className="asof"),
        ], className="time"),
        user_box,
    ], className="header")
    banner = html.Div(stale_text(frame, settings), id="stale-banner",
                      className="stale-banner" + ("" if frame.stale else " hidden"),
                      role="alert")
    export = [] if export_href is None else [html.A(
        "⤓ CSV", href=export_href, id="export-csv", className="export-link", download="",
        title=t("export_csv", lang))]
    left = html.Section([
        html.H2([geography.name(frame.area_id, lang), html.Small(
            label("level", geography.areas[frame.area_id].level, lang))], id="detail-title"),
        *export,
        html.Div(panels.detail_body(frame), id="detail-body", className="detail"),
        html.H2(t("top_risk", lang), id="top-title"),
        html.Ol(panels.top_items(frame), id="top-list", className="top-list"),
    ], className="panel left")
    centre = html.Section([
        timebar,
        banner,
        dcc.Graph(id="map-graph", className="map",
                  figure=figure(frame, geography, visible, settings.tile_url, box),
                  config=GRAPH_CONFIG, responsive=True, style={"height": "100%"}),
        html.Div([
            dcc.Checklist(id="map-layers", className="layer-switch",
                          options=[{"label": layer.title(lang), "value": layer.id}
                                   for layer in LAYERS],
                          value=visible, persistence=True, persistence_type="local"),
            html.Div(panels.legend_box([layer.legend(lang) for layer in LAYERS
                                        if layer.id in visible]), id="map-legend"),
        ], className="map-overlay"),
        *(overlays or []),
    ], className="panel centre")
    right = html.Section([
        html.H2(t("feed", lang), id="feed-title"),
        html.Ul(panels.feed_items(frame), id="feed-list", className="feed"),
        html.H2([t("overdue_list", lang), html.Small(overdue_count(frame), id="overdue-count")],
                id="overdue-title"),
        html.Ul(panels.overdue_items(frame), id="overdue-list", className="overdue-list"),
        html.H2(t("trend", lang), id="trend-title"),
        dcc.Graph(id="trend-graph", figure=panels.trend_figure(frame, box), className="trend",
                  config={"displayModeBar": False, "staticPlot": False}),
        incident_panel,
    ], className="panel right")
    stamp: dict[str, Any] = {"data-search": search}
    return html.Div([
        dcc.Store(id="tick-sig", data=signature),
        dcc.Store(id="push-config", data=push),
        header,
        html.Div(panels.kpi_row(frame), id="kpi-row", className="kpis"),
        html.Main([left, centre, right], className="main"),
    ], id="screen", lang=lang, className=screen_class(frame, replaying),
        **stamp)


def screen_class(frame: Frame, replaying: bool) -> str:
    """The screen's classes: greyed when stale, framed when showing the past."""
    return ("screen" + (" is-stale" if frame.stale else "")
            + (" is-replay" if replaying else ""))


def overdue_count(frame: Frame) -> str:
    """How many incidents the area has overdue (the list shows the latest ones)."""
    return f"{frame.kpis['overdue']:,}"


def stale_text(frame: Frame, settings: Settings) -> str:
    """The banner's sentence: why the data is stale and that the last state is shown."""
    lang = frame.lang
    if frame.error:
        why = t("stale_redis", lang)
    else:
        why = f"{settings.stale_after_s:g}{t('stale_quiet', lang)}"
    return f"⚠ {t('stale', lang)} — {why} · {t('stale_since', lang)} ({frame.last_event})"
