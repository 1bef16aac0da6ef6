"""Map layers of the cockpit (the geography is `dashboard.geography`).

`LAYERS` is the registry of map layers, drawn in this order (later on top).
A city adds its own layer by writing a module with a `layers.base.Layer`
(an id, a name per language, `traces(view, area_id, lang)` and
`legend(lang)`) and listing it here; the screen needs no change.
"""

from __future__ import annotations

from layers import incidents, risk, traffic
from layers.base import Layer

LAYERS: tuple[Layer, ...] = (risk.LAYER, traffic.LAYER, incidents.LAYER)

__all__ = ["LAYERS", "Layer"]
