"""The tour (巡屏): a screen that shows a list of areas in turn, "巡屏 3/17" on screen.

`?tour=310000,310104,310101&every=30` names the areas (checked here against the
geography and the user's scope: unknown or out-of-scope ones are left out); without
one a screen tours its account's own tour (`citybrain users tour NAME --areas ...`),
and a wall screen without either `CITYBRAIN_WALL_TOUR` (by default the city, then
each district). The browser (`assets/tour.js`) moves on every `every` seconds
by putting `area=` and `step=` into the URL (as the screen's own links do), so a
reload continues where it was; any operator input pauses it for
`CITYBRAIN_TOUR_PAUSE_S`, and an alert being shown holds it.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qs

from dash import Input, Output, State, dcc, html
from dash.dependencies import ClientsideFunction

from dashboard.auth.guard import in_scope
from dashboard.auth.users import TOUR_EVERY_S, User
from dashboard.geography import Geography
from dashboard.i18n import t
from dashboard.screen.registry import SCREEN
from dashboard.settings import DISTRICT_TOUR, Settings, SettingsError

MAX_AREAS = 200
EVERY_RANGE_S = TOUR_EVERY_S  # `?every=` is kept within these


def wall_areas(settings: Settings, geography: Geography) -> list[str]:
    """The areas `CITYBRAIN_WALL_TOUR` names (the city and its districts by default)."""
    if settings.wall_tour == DISTRICT_TOUR:
        return [geography.root_id, *geography.children(geography.root_id)]
    return list(settings.wall_tour)


def check(settings: Settings, geography: Geography) -> None:
    """Refuse to start with a wall tour naming areas the boundaries do not have."""
    unknown = [a for a in wall_areas(settings, geography) if a not in geography.areas]
    if unknown:
        raise SettingsError(f"CITYBRAIN_WALL_TOUR names areas the boundaries do not have: "
                            f"{', '.join(unknown[:5])}")


def _every(query: dict[str, list[str]], default_s: float) -> float:
    try:
        value = float((query.get("every") or [""])[0])
    except ValueError:
        return default_s
    if not math.isfinite(value):
        return default_s
    return min(max(value, EVERY_RANGE_S[0]), EVERY_RANGE_S[1])


def config(search: str | None, user: User, settings: Settings, geography: Geography,
           lang: str, own: tuple[list[str], float | None] | None = None) -> dict[str, Any]:
    """What the browser tours: areas in the user's scope, dwell, pause, the badge's words.

    The URL's `?tour=` first, then the account's own tour (`own`: areas and dwell), then
    a wall screen's `CITYBRAIN_WALL_TOUR`.
    """
    query = parse_qs((search or "").lstrip("?"))
    asked = (query.get("tour") or [""])[0]
    every_s = settings.tour_every_s
    if asked:
        names = asked.split(",")[:MAX_AREAS]
    elif own:
        names, every_s = own[0][:MAX_AREAS], own[1] or every_s
    elif user.role == "wall":
        names = wall_areas(settings, geography)
    else:
        names = []
    areas = [a for a in names if a in geography.areas and in_scope(user, a, geography)]
    return {"areas": areas, "from_url": bool(asked),
            "every_ms": round(_every(query, every_s) * 1000),
            "pause_ms": round(settings.tour_pause_s * 1000),
            "label": t("tour", lang), "paused": t("tour_paused", lang)}


def parts(search: str | None, user: User, settings: Settings, geography: Geography,
          lang: str, own: tuple[list[str], float | None] | None = None) -> html.Div:
    """The tour's configuration, its timer and its badge (hidden when there is no tour)."""
    return html.Div([
        dcc.Store(id="tour-config", data=config(search, user, settings, geography, lang, own)),
        dcc.Interval(id="tour-tick", interval=500),
        html.Div(id="tour-badge", className="tour-badge hidden"),
    ], id="tour")


SCREEN.clientside_callback(  # it moves on the way the screen's links do (history + event)
    ClientsideFunction(namespace="cockpit_tour", function_name="step"),
    Output("tour-badge", "children"),
    Output("tour-badge", "className"),
    Input("tour-tick", "n_intervals"),
    State("url", "search"),
    State("tour-config", "data"),
    prevent_initial_call=True,
)
