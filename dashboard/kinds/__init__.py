"""The registry of event kinds: one module per kind, listed here (see `base.Kind`).

The contract, the worker, the Lua script, the read side, the screen and the
demo feed know no kind by name: they ask this registry. Adding a kind is its
module (with a `KIND`) and one line below (docs/extending.md), the way
datasette lists its own plugins by module name.
"""

from __future__ import annotations

from importlib import import_module

from dashboard.kinds.base import Kind

KIND_MODULES: tuple[str, ...] = (
    "dashboard.kinds.incident",
    "dashboard.kinds.traffic",
    "dashboard.kinds.risk",
    "dashboard.kinds.sensor",
)

KINDS: tuple[Kind, ...] = tuple(import_module(name).KIND for name in KIND_MODULES)
BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
REGISTERS: tuple[Kind, ...] = tuple(kind for kind in KINDS if kind.register)

__all__ = ["BY_NAME", "KINDS", "KIND_MODULES", "REGISTERS", "Kind"]
