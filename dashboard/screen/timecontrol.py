"""Look back: the time control over the map (slider, play at 60x / 600x, back to live).

The browser keeps only its choice in the `replay` store (`{"at": ms, "speed": n,
"since": ms}`); the server turns it into a moment on every tick
(`source.replay_moment`) and rebuilds the view at that moment from the events
stream. Playing moves the moment forward, so each tick's replay only applies
the entries since the previous one.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import dash
from dash import Input, Output, State, dcc, html, no_update

from dashboard.i18n import t
from dashboard.screen.registry import SCREEN
from dashboard.screen.source import replay_moment, speed, window_ms
from dashboard.services import current
from dashboard.settings import Settings
from dashboard.state.replay import ReplayBusy

SPEEDS = (60, 600)
FOLLOW_S = 3  # how late a slider moved by the play may report its value back


def marker(moment: int | None, replay: dict[str, Any] | None, settings: Settings,
           busy: ReplayBusy | None = None) -> tuple[str, str]:
    """The label saying live or which moment is shown (in both languages), and its class.

    With `busy` the moment is not ready yet: the label says it is being prepared (how far)
    or busy, and that the screen keeps trying by itself.
    """
    if moment is None:
        return "● 实时 / Live", "replay-marker is-live"
    clock = datetime.fromtimestamp(moment / 1000, settings.zone).strftime("%m-%d %H:%M")
    if busy is not None:
        state = ("繁忙，稍后重试 / busy, retrying" if busy.progress is None else
                 f"准备中 / preparing {int(busy.progress * 100)}%")
        return f"⏳ 回看 / Replay {clock} · {state}", "replay-marker is-busy"
    times = int(speed(replay))
    playing = f" ▶ {times}×" if times else ""
    return f"⏪ 回看 / Replay {clock}{playing}", "replay-marker is-replay"


def slider_value(moment: int | None, now_ms: int) -> int:
    """The slider's position for a moment: minutes before now (0 is live)."""
    return 0 if moment is None else round((moment - now_ms) / 60000)


def timebar(lang: str, moment: int | None, replay: dict[str, Any] | None,
            settings: Settings, busy: ReplayBusy | None = None) -> html.Div:
    """The time control: what is shown, a slider over the window, play, pause, live."""
    window_min = window_ms(settings) // 60000
    now_ms = int(time.time() * 1000)
    value = max(-window_min, slider_value(moment, now_ms))
    step_h = 6 if window_min >= 24 * 60 else max(1, window_min // 240)
    marks = {-h * 60: f"-{h}h" for h in range(step_h, window_min // 60 + 1, step_h)}
    marks[0] = t("now", lang)
    text, css = marker(moment, replay, settings, busy)
    return html.Div([
        html.Div(text, id="replay-marker", className=css, role="status"),
        dcc.Slider(id="replay-slider", min=-window_min, max=0, step=1, value=value,
                   marks=marks, included=False, updatemode="mouseup",
                   allow_direct_input=False, className="replay-slider"),
        *[html.Button(f"▶ {times}×", id=f"replay-play{times}", className="tb-button",
                      title=f"{t('replay', lang)} {times}×") for times in SPEEDS],
        html.Button(t("pause", lang), id="replay-pause", className="tb-button"),
        html.Button(t("live", lang), id="replay-live", className="tb-button tb-live"),
    ], id="timebar", className="timebar" + (" replaying" if moment is not None else ""))


# The time control is part of the screen, drawn after the page's skeleton (which holds
# `url` and `replay`): its inputs are optional (None) until the screen is there.
@SCREEN.callback(
    output=Output("replay", "data"),
    inputs={"minutes": Input("replay-slider", "value", allow_optional=True),
            "_buttons": [Input(button, "n_clicks", allow_optional=True) for button in (
                "replay-play60", "replay-play600", "replay-pause", "replay-live")],
            "replay": State("replay", "data"),
            "search": Input("url", "search")},
    prevent_initial_call=True,
)
def control(minutes: float | None, _buttons: list[int | None],
            replay: dict[str, Any] | None, search: str | None) -> Any:
    """Turn a move of the slider, a button press or a URL with `?at=` into the replay choice."""
    settings = current().settings
    now_ms = int(time.time() * 1000)
    # Inputs that fire together (a press while the play moves the slider) are merged
    # into one call: a pressed button decides before the slider, the URL before both.
    fired = {t["prop_id"].split(".")[0]: t.get("value") for t in dash.ctx.triggered or []}
    pressed_buttons = [b for b in ("replay-live", "replay-pause", "replay-play60",
                                   "replay-play600") if fired.get(b)]
    if "url" in fired:  # a link to a moment wins over the last choice of this page
        linked = replay_moment(None, search, settings, now_ms)
        if linked is not None and replay is not None:  # (with no choice the URL decides)
            return {"at": linked, "speed": 0, "since": now_ms}
    trigger = (pressed_buttons[0] if pressed_buttons
               else "replay-slider" if "replay-slider" in fired else None)
    if trigger is None:
        return no_update
    shown = replay_moment(replay, search, settings, now_ms)
    if trigger == "replay-live":
        return {"at": None}
    if trigger == "replay-slider":
        # A slider drawn anew (a new area) reports the value it was drawn with, and one
        # moved by the play the value it was moved to: neither is a choice of the user.
        follow = speed(replay) * FOLLOW_S / 60 if shown is not None else 0.0
        if minutes is None or abs(minutes - slider_value(shown, now_ms)) <= 1 + follow:
            return no_update
        if minutes >= 0:
            return {"at": None}
        return {"at": now_ms + int(minutes) * 60_000, "speed": 0, "since": now_ms}
    if trigger == "replay-pause":
        return no_update if shown is None else {"at": shown, "speed": 0, "since": now_ms}
    times = 60 if trigger == "replay-play60" else 600
    start = shown if shown is not None else now_ms - window_ms(settings)
    return {"at": start, "speed": times, "since": now_ms}
