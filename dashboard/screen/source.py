"""What a screen request reads: the live view or a replay of the past, in the user's scope.

Every callback that shows data gets its view here, so the scope check and the
choice between live and look-back are made once, on the server. The browser
only says which area and which moment it wants (`?area=`, `?at=` and the
`replay` store); the area is checked against the user's scope (403 outside
it) and the view itself is restricted to that scope.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from dashboard.auth.guard import current_user, require_area
from dashboard.screen.frame import Frame, frame_for
from dashboard.screen.layout import selection
from dashboard.services import current
from dashboard.settings import Settings
from dashboard.state.replay import parse_at
from dashboard.state.view import CityView
from dashboard.viewer import viewer_id

LIVE_MARGIN_MS = 1500  # a replay this close to now is the live view


def window_ms(settings: Settings) -> int:
    """How far back the time control reaches: 24 hours, or less if the stream keeps less."""
    return int(min(24 * 3600, settings.retention_s) * 1000)


def speed(replay: dict[str, Any] | None) -> float:
    """How many times as fast as the clock the replayed moment moves (0: paused or live)."""
    try:
        return max(0.0, float((replay or {}).get("speed") or 0))
    except (TypeError, ValueError):
        return 0.0


def replay_moment(replay: dict[str, Any] | None, search: str | None, settings: Settings,
                  now_ms: int | None = None) -> int | None:
    """The moment to show in epoch ms, or None for live.

    `replay` is the browser's time control: `{"at": ms, "speed": 0|60|600, "since": ms}`
    (while playing, the moment moves `speed` times as fast as the clock since `since`),
    `{"at": None}` for live; when it was never touched, `?at=` in the URL decides.
    """
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if replay is None:
        value = (parse_qs((search or "").lstrip("?")).get("at") or [""])[0]
        if not value:
            return None
        try:
            at = int(parse_at(value, settings).timestamp() * 1000)
        except (ValueError, OverflowError, OSError):
            return None
    else:
        try:
            at = int(replay["at"])
            since = int(replay.get("since") or now_ms)
        except (KeyError, TypeError, ValueError):
            return None
        at += int(speed(replay) * max(0, now_ms - since))
    if at >= now_ms - LIVE_MARGIN_MS:
        return None
    return max(at, now_ms - window_ms(settings))


def view(search: str | None, replay: dict[str, Any] | None = None
         ) -> tuple[CityView, str, str, int | None]:
    """The view (live or replayed), the area (in scope, else 403), the language, the moment.

    Raises `ReplayBusy` when the viewer's replay is not ready (in use, or being prepared).
    """
    services = current()
    user = current_user()
    area, lang = selection(search, services.geography, services.settings.lang, user.scope)
    require_area(area)
    moment = replay_moment(replay, search, services.settings)
    if moment is None:
        return services.cache.view_for(user.scope), area, lang, None
    at = datetime.fromtimestamp(moment / 1000, services.settings.zone)
    past = services.replayer.view_at(viewer_id(), at).restricted_to(user.scope)
    return past, area, lang, moment


def frame(search: str | None, replay: dict[str, Any] | None = None
          ) -> tuple[Frame, str, int | None]:
    """The frame for the URL's area and moment, its signature key, and the moment.

    Raises `ReplayBusy` as `view` does.
    """
    past_or_live, area, lang, moment = view(search, replay)
    services = current()
    shown = frame_for(past_or_live, area, lang, services.settings.escalate_factor)
    return shown, f"{area}|{lang}", moment
