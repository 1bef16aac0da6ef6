"""考核: the rankings overlay, for every account, and as a view of its own (`?view=rankings`).

It reads through the API's own `ranking_for`: the area is the one on the screen, checked
against the user's scope on the server (403 outside it), the counters are the worker's.
Open, it refreshes on its own slow timer, not on the screen's tick.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import dash
from dash import Input, Output, State, dcc, html, no_update

from dashboard.auth.guard import current_user, require_area
from dashboard.auth.users import User
from dashboard.i18n import t
from dashboard.rankings import RATES
from dashboard.rankings_api import ranking_for
from dashboard.screen.layout import selection
from dashboard.screen.registry import SCREEN
from dashboard.services import current

REFRESH_MS = 30_000
MONTHS_OFFERED = 12


def wanted(search: str | None) -> bool:
    """Whether the URL asks for the rankings view (`?view=rankings`, e.g. a wall tour)."""
    return (parse_qs((search or "").lstrip("?")).get("view") or [""])[0] == "rankings"


def period_options(now: float, zone: Any, lang: str) -> list[dict[str, str]]:
    """Today, 7 and 30 days, and the last twelve months (this one first)."""
    options = [{"label": t(f"period_{p}", lang), "value": p} for p in ("today", "7d", "30d")]
    month = datetime.fromtimestamp(now, zone).date().replace(day=1)
    for _ in range(MONTHS_OFFERED):
        options.append({"label": month.strftime("%Y-%m"), "value": month.strftime("%Y-%m")})
        month = (month.replace(year=month.year - 1, month=12) if month.month == 1
                 else month.replace(month=month.month - 1))
    return options


def rankings_modal(lang: str, user: User, opened: bool) -> html.Div:
    """The overlay (hidden unless the URL asks for it); its table is filled on the server."""
    services = current()
    export = html.A("⤓ CSV", id="rank-csv", download="", href="", title=t("export_rankings", lang),
                    className="who-button" + (" hidden" if user.role == "wall" else ""))
    return html.Div([
        html.Div([
            html.H2(t("rankings", lang), id="rank-heading"),
            html.Button("✕", id="rank-close", className="ip-x", title=t("close", lang)),
        ], className="ip-head"),
        html.Div([
            dcc.RadioItems(id="rank-level", className="rank-choice", inline=True,
                           value="street", options=[
                               {"label": t("by_street", lang), "value": "street"},
                               {"label": t("by_department", lang), "value": "department"}]),
            dcc.Dropdown(id="rank-period", value="30d", clearable=False, searchable=False,
                         className="rank-period",
                         options=period_options(services.clock(), services.settings.zone,
                                                lang)),
            export,
        ], className="audit-filters"),
        html.Div(id="rank-body", className="audit-body"),
        dcc.Interval(id="rank-tick", interval=REFRESH_MS, disabled=not opened),
    ], id="rank-modal", className="audit-modal" + ("" if opened else " hidden"),
        role="dialog")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def rankings_table(rows: list[dict[str, Any]], lang: str) -> html.Table:
    """The ranked rows as text (names are plain children)."""
    head = html.Tr([html.Th(t(k, lang)) for k in
                    ("rank", "rank_name", "received", *RATES, "composite")])
    body = [html.Tr([html.Td(str(r["rank"])), html.Td(r["name"]), html.Td(str(r["received"])),
                     *(html.Td(_percent(r[rate])) for rate in RATES),
                     html.Td("–" if r["score"] is None else f"{r['score']:.1f}")],
                    className="rank-row") for r in rows]
    if not body:
        body = [html.Tr(html.Td(t("none", lang), colSpan=9), className="feed-empty")]
    return html.Table([html.Thead(head), html.Tbody(body)], id="rank-table",
                      className="audit-table rank-table")


@SCREEN.callback(
    output={"body": Output("rank-body", "children"),
            "modal": Output("rank-modal", "className"),
            "timer": Output("rank-tick", "disabled"),
            "csv": Output("rank-csv", "href")},
    inputs={"opened": Input("rank-open", "n_clicks"),
            "closed": Input("rank-close", "n_clicks"),
            "level": Input("rank-level", "value"),
            "period": Input("rank-period", "value"),
            "_tick": Input("rank-tick", "n_intervals"),
            "search": State("url", "search"),
            "css": State("rank-modal", "className")},
)
def show_rankings(opened: int | None, closed: int | None, level: str | None,
                  period: str | None, _tick: int | None, search: str | None,
                  css: str | None) -> dict[str, Any]:
    """Rank the streets or departments of the area on the screen (checked against the scope)."""
    skip = dict.fromkeys(("body", "modal", "timer", "csv"), no_update)
    trigger = dash.ctx.triggered_id
    if trigger == "rank-close":
        return {"body": [], "modal": "audit-modal hidden", "timer": True, "csv": no_update}
    showing = "hidden" not in (css or "hidden")
    if trigger != "rank-open" and not showing:
        return skip
    services = current()
    user = current_user()
    area, lang = selection(search, services.geography, services.settings.lang, user.scope)
    require_area(area)  # 403 outside the scope (logged and audited)
    level, period = level or "street", period or "30d"
    answer = ranking_for(area, level, period, lang)
    return {"body": [html.Div(f"{services.geography.name(area, lang)} · {answer['from']} – "
                              f"{answer['to']}", id="rank-span", className="rank-span"),
                     rankings_table(answer["rows"], lang)],
            "modal": "audit-modal", "timer": False,
            "csv": f"/api/v1/export/rankings.csv?area_id={area}&level={level}"
                   f"&period={period}&lang={lang}"}
