"""The screen's real size, as the browser measures it, and what follows from it.

`assets/cockpit.js` measures the map element (and the root font size the CSS
derives from the viewport) with a ResizeObserver and puts them into the
`screen-box` store. The server fits the selected area into that box, below the
time control that covers the map's top, and scales Plotly's own text (map
labels, axes, hover) by the factor the HTML's rem has over 16 px. The values
come from the client: parsed and clamped, never trusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from layers.base import center_zoom

BASE_REM_PX = 16.0  # the rem at 1920x1080, for which the figures' sizes are written
_LIMITS = {"width": (50.0, 20000.0), "height": (50.0, 20000.0), "top": (0.0, 10000.0),
           "rem": (6.0, 200.0)}


@dataclass(frozen=True)
class Box:
    """The map element's size in CSS pixels, the part covered at its top, and the rem."""

    width: float = 1000.0
    height: float = 840.0
    top: float = 0.0
    rem: float = BASE_REM_PX

    @classmethod
    def parse(cls, data: Any) -> Box:
        """The box a `screen-box` store holds; the default box for anything unusable."""
        if not isinstance(data, Mapping):
            return cls()
        values: dict[str, float] = {}
        for name, (low, high) in _LIMITS.items():
            raw = data.get(name)
            if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
                values[name] = min(max(float(raw), low), high)
        box = cls(**values)
        if box.top > box.height / 2:  # a control over half the map: fit to the whole map
            box = cls(box.width, box.height, 0.0, box.rem)
        return box

    @property
    def scale(self) -> float:
        """How much larger than at 1920x1080 the text is drawn."""
        return self.rem / BASE_REM_PX


def fit(bounds: Sequence[float], box: Box) -> tuple[dict[str, float], float]:
    """Centre and zoom that fit the bounds into the map's free part (below `top`)."""
    free = box.height - box.top
    center, zoom = center_zoom(bounds, box.width, free)
    if box.top:
        # The free part's middle is top/2 pixels below the map's middle: move the
        # centre that far north (in Web Mercator, 512 px per world at zoom 0).
        world = 512 * 2 ** zoom
        y = _mercator_y(center["lat"]) - (box.top / 2) / world
        center = {"lon": center["lon"], "lat": round(_mercator_lat(y), 5)}
    return center, zoom


def px(size: float, box: Box) -> float:
    """A size written for 1920x1080, for this box's rem."""
    return round(size * box.scale, 1)


def _mercator_y(lat: float) -> float:
    phi = math.radians(lat)
    return (1 - math.log(math.tan(math.pi / 4 + phi / 2)) / math.pi) / 2


def _mercator_lat(y: float) -> float:
    return math.degrees(2 * math.atan(math.exp(math.pi * (1 - 2 * y))) - math.pi / 2)
