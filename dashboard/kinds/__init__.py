"""The registry of event kinds: one module per kind, listed here (see `base.Kind`).

The contract, the worker, the Lua script, the read side, the screen and the
demo feed know no kind by name: they ask this registry. Adding a kind is its
module and one line below (docs/extending.md).
"""

from __future__ import annotations

from dashboard.kinds import incident, risk, traffic
from dashboard.kinds.base import Kind

KINDS: tuple[Kind, ...] = (
    incident.KIND,
    traffic.KIND,
    risk.KIND,
)
BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
REGISTERS: tuple[Kind, ...] = tuple(kind for kind in KINDS if kind.register)

__all__ = ["BY_NAME", "KINDS", "REGISTERS", "Kind"]
