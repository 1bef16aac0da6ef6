"""Map layers of the cockpit (the geography is `dashboard.geography`).

`LAYERS` is the registry of map layers, drawn in this order (later on top).
A city adds its own layer by writing a module with a `LAYER`, a
`layers.base.Layer` (an id, a name per language, `traces(view, area_id,
lang)` and `legend(lang)`), and listing the module here; the screen needs no
change.
"""

from __future__ import annotations

from importlib import import_module

from layers.base import Layer

LAYER_MODULES: tuple[str, ...] = (
    "layers.risk",
    "layers.traffic",
    "layers.sensors",
    "layers.incidents",
)

LAYERS: tuple[Layer, ...] = tuple(import_module(name).LAYER for name in LAYER_MODULES)

__all__ = ["LAYERS", "LAYER_MODULES", "Layer"]
