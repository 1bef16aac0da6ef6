"""Builders of contract events for tests."""

from __future__ import annotations

import itertools
import time

_ids = itertools.count(1)

XUHUI_POINT = (121.4365, 31.1880)  # inside Xuhui (310104), WGS-84
PUDONG_POINT = (121.5440, 31.2210)  # inside Pudong (310115)
SEA_POINT = (123.0, 30.5)  # East China Sea


def now_ms(offset_s: float = 0) -> int:
    """Epoch milliseconds, optionally shifted."""
    return int((time.time() + offset_s) * 1000)


def incident(incident_id: str, status: str = "reported", ts: int | None = None,
             point: tuple[float, float] | None = XUHUI_POINT, **extra: str) -> dict[str, str]:
    """An incident event as a producer writes it."""
    event = {"event_id": f"e{next(_ids)}", "kind": "incident", "ts": str(ts or now_ms()),
             "incident_id": incident_id, "status": status}
    if status == "reported":
        event.setdefault("category", "garbage")
    if point is not None:
        event["lon"], event["lat"] = str(point[0]), str(point[1])
    event.update(extra)
    return event


def traffic(segment_id: str, speed: float, free_flow: float | None = None,
            point: tuple[float, float] = XUHUI_POINT, ts: int | None = None,
            **extra: str) -> dict[str, str]:
    """A traffic reading."""
    event = {"event_id": f"e{next(_ids)}", "kind": "traffic", "ts": str(ts or now_ms()),
             "segment_id": segment_id, "speed_kmh": str(speed),
             "lon": str(point[0]), "lat": str(point[1])}
    if free_flow is not None:
        event["free_flow_kmh"] = str(free_flow)
    event.update(extra)
    return event


def risk(area_id: str, indicator: str, value: float, ts: int | None = None,
         **extra: str) -> dict[str, str]:
    """A risk indicator reading."""
    event = {"event_id": f"e{next(_ids)}", "kind": "risk", "ts": str(ts or now_ms()),
             "area_id": area_id, "indicator": indicator, "value": str(value)}
    event.update(extra)
    return event


def raw(event: dict[str, str]) -> dict[bytes, bytes]:
    """The event as redis-py returns a stream entry's fields."""
    return {k.encode(): v.encode() for k, v in event.items()}
