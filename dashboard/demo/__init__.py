"""The demo feed behind `citybrain simulate` (not for production).

- `catalogue.json` / `catalogue`: what the demo city's producers talk about, as data;
- `places`: random points inside areas, sent in the producers' datums;
- `clock`: daily curves and `ts` in the city's time zone (`CITYBRAIN_TZ`);
- `simulator`: the event model; each kind's generator comes from the kinds
  registry (`Kind.demo`), incidents live through their closed loop;
- `flood`: bulk events through redis-py pipelines, for benchmarks.
"""

from __future__ import annotations

from dashboard.demo.flood import flood
from dashboard.demo.simulator import Simulator, risk_points, run_simulation

__all__ = ["Simulator", "flood", "risk_points", "run_simulation"]
