"""The map figure: built in full once per selection, then patched trace by trace."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from dash import Patch

from dashboard.context import CONTEXT_URL
from dashboard.screen.frame import Frame
from dashboard.screen.viewport import Box, fit, px
from layers.base import OFFLINE_STYLE, focus

RIVERS = ["==", ["get", "kind"], "rivers"]  # a context line marked as a river
CONTEXT_LINES: dict[str, Any] = {  # under every trace (the style's layers come first)
    "id": "context-lines", "type": "line", "source": "context", "filter": ["!", RIVERS],
    "paint": {"line-color": "#5f7f9f", "line-width": 1.2, "line-opacity": 0.8},
}
CONTEXT_RIVERS: dict[str, Any] = {  # over the areas' fill (trace 0), under the rest
    "id": "context-rivers", "type": "line", "source": "context", "filter": RIVERS,
    "paint": {"line-color": "#3f8fd0", "line-width": 2.0, "line-opacity": 0.85},
}
HOVER_FONT_PX = 16  # sizes for 1920x1080; `viewport.px` scales them to the screen
FONT_PX = 12


def slot(index: int) -> str:
    """The style layer the map trace at `index` is drawn under (its own place)."""
    return f"trace-slot-{index}"


def map_style(tile_url: str | None, context: Any = None, traces: int = 0) -> dict[str, Any]:
    """The offline style, with a raster base map and the context lines when there are any.

    The context lines (`dashboard.context`) are fetched once by URL, under every trace.
    Last come `traces` empty, hidden layers, one `slot` per trace: each trace is drawn
    under its own, so above the traces before it. (With one `below` for all, Plotly
    takes none as settled and removes and adds again every trace's layers on every
    update; each source is then tiled again and the map drawn twice. Plotly also forgets
    the `below` of a trace it does not draw: assets/map-places.js.)
    """
    style = dict(OFFLINE_STYLE)
    if tile_url:
        style["sources"] = {**style["sources"],
                            "tiles": {"type": "raster", "tiles": [tile_url], "tileSize": 256}}
        style["layers"] = [*style["layers"], {"id": "tiles", "type": "raster",
                                              "source": "tiles",
                                              "paint": {"raster-opacity": 0.45}}]
    if context is not None:
        source: dict[str, Any] = {"type": "geojson", "data": CONTEXT_URL}
        if context.attribution:
            source["attribution"] = context.attribution
        style["sources"] = {**style["sources"], "context": source}
        style["layers"] = [*style["layers"], CONTEXT_LINES]
    if traces:
        slots = [{"id": slot(i), "type": "background", "layout": {"visibility": "none"}}
                 for i in range(traces)]
        # The rivers over the first trace (the risk fill, which would hide them), under
        # the areas' names and outlines and every point.
        rivers = [CONTEXT_RIVERS] if context is not None else []
        style["layers"] = [*style["layers"], slots[0], *rivers, *slots[1:]]
    return style


def figure(frame: Frame, geography: Any, visible: Collection[str],
           tile_url: str | None = None, box: Box | None = None) -> dict[str, Any]:
    """The whole figure for a newly selected area (polygons by URL, so still small).

    The selection is fitted into the map's real `box` (as the browser measured it)
    and the text sized for its rem.
    """
    box = box or Box()
    center, zoom = fit(focus(geography, frame.area_id).bounds, box)
    # Each trace under its own slot: on top of the ones before it, in registry order (the
    # default puts choropleths under the first symbol layer, under some scatter traces).
    data = [{**trace, **_text_size(trace, box), "below": slot(i),
             "visible": owner in visible}
            for i, (trace, owner) in enumerate(zip(frame.traces, frame.trace_layers,
                                                   strict=True))]
    return {
        "data": data,
        "layout": {
            "map": {"style": map_style(tile_url, geography.context, len(data)),
                    "center": center,
                    "zoom": zoom,
                    "uirevision": frame.area_id},
            "uirevision": frame.area_id,
            "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "showlegend": False, "dragmode": "pan",
            "hoverlabel": {"font": {"size": px(HOVER_FONT_PX, box)}, "bgcolor": "#111a2b",
                           "bordercolor": "#9fb3c8"},
            "font": {"color": "#e8eef6", "size": px(FONT_PX, box)},
        },
    }


def refit(frame: Frame, geography: Any, box: Box) -> Patch:
    """A `Patch` moving the map to fit a new box and resizing its text (data untouched)."""
    center, zoom = fit(focus(geography, frame.area_id).bounds, box)
    changed = Patch()
    changed["layout"]["map"]["center"] = center
    changed["layout"]["map"]["zoom"] = zoom
    changed["layout"]["hoverlabel"]["font"]["size"] = px(HOVER_FONT_PX, box)
    changed["layout"]["font"]["size"] = px(FONT_PX, box)
    for index, trace in enumerate(frame.traces):
        sized = _text_size(trace, box)
        if sized:
            changed["data"][index]["textfont"] = sized["textfont"]
    return changed


def _text_size(trace: Mapping[str, Any], box: Box) -> dict[str, Any]:
    """The trace's `textfont` with its size scaled to the box ({} for a trace without)."""
    font = trace.get("textfont")
    if not isinstance(font, Mapping) or "size" not in font:
        return {}
    return {"textfont": {**font, "size": px(font["size"], box)}}


def patch(frame: Frame, old: Sequence[Mapping[str, str]], new: Sequence[Mapping[str, str]],
          visible: Collection[str], box: Box | None = None,
          ) -> tuple[Patch | None, list[Mapping[str, str]]]:
    """A `Patch` of the changed keys of the visible traces, and the hashes it brings.

    Hidden traces are not sent (the browser would process them for nothing); they
    keep their old hashes, so the first tick after a layer is shown sends them.
    None instead of a `Patch` when nothing visible changed. Both lists must have
    the same shape (`same_shape`). A changed `textfont` is sized for the `box`.
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
                trace = frame.traces[index]
                changed["data"][index][key] = _text_size(trace, box or Box()).get(
                    key, trace[key])
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
