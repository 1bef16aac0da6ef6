"""The map figure: built in full once per selection, then patched trace by trace."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from dash import Patch

from dashboard.screen.frame import Frame
from layers.base import OFFLINE_STYLE, center_zoom, focus


def map_style(tile_url: str | None) -> dict[str, Any]:
    """The offline style, or a raster base map when a tile URL is configured."""
    if not tile_url:
        return OFFLINE_STYLE
    return {
        **OFFLINE_STYLE,
        "sources": {**OFFLINE_STYLE["sources"],
                    "tiles": {"type": "raster", "tiles": [tile_url], "tileSize": 256}},
        "layers": [*OFFLINE_STYLE["layers"],
                   {"id": "tiles", "type": "raster", "source": "tiles",
                    "paint": {"raster-opacity": 0.45}}],
    }


def figure(frame: Frame, geography: Any, visible: Collection[str],
           tile_url: str | None = None) -> dict[str, Any]:
    """The whole figure for a newly selected area (polygons by URL, so still small)."""
    center, zoom = center_zoom(focus(geography, frame.area_id).bounds)
    # below="": every trace on top of the ones before it, in registry order (the default
    # puts choropleths under the first symbol layer, i.e. under some scatter traces).
    data = [{"below": "", **trace, "visible": owner in visible}
            for trace, owner in zip(frame.traces, frame.trace_layers, strict=True)]
    return {
        "data": data,
        "layout": {
            "map": {"style": map_style(tile_url), "center": center, "zoom": zoom,
                    "uirevision": frame.area_id},
            "uirevision": frame.area_id,
            "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "showlegend": False, "dragmode": "pan",
            "hoverlabel": {"font": {"size": 16}, "bgcolor": "#111a2b",
                           "bordercolor": "#9fb3c8"},
            "font": {"color": "#e8eef6"},
        },
    }


def patch(frame: Frame, old: Sequence[Mapping[str, str]], new: Sequence[Mapping[str, str]],
          visible: Collection[str]) -> tuple[Patch | None, list[Mapping[str, str]]]:
    """A `Patch` of the changed keys of the visible traces, and the hashes it brings.

    Hidden traces are not sent (the browser would process them for nothing); they
    keep their old hashes, so the first tick after a layer is shown sends them.
    None instead of a `Patch` when nothing visible changed. Both lists must have
    the same shape (`same_shape`).
    """
    changed = Patch()
    sent = False
    hashes: list[Mapping[str, str]] = []
    for index, (before, after) in enumerate(zip(old, new, strict=True)):
        if frame.trace_layers[index] not in visible:
            hashes.append(before)
            continue
        hashes.append(after)
        for key, value in after.items():
            if before.get(key) != value:
                changed["data"][index][key] = frame.traces[index][key]
                sent = True
    return (changed if sent else None), hashes


def same_shape(old: Sequence[Mapping[str, str]], new: Sequence[Mapping[str, str]]) -> bool:
    """Whether two trace-hash lists describe the same traces with the same keys."""
    return len(old) == len(new) and all(
        a.keys() == b.keys() for a, b in zip(old, new, strict=True))


def visibility(owners: Sequence[str], visible: Collection[str]) -> Patch:
    """A `Patch` showing the traces of the visible layers and hiding the others."""
    changed = Patch()
    for index, owner in enumerate(owners):
        changed["data"][index]["visible"] = owner in visible
    return changed
