"""Builders of contract events for tests."""

from __future__ import annotations

import itertools
import time

_ids = itertools.count(1)

XUHUI_POINT = (121.4365, 31.1880)  # inside Xuhui (310104), WGS-84
PUDONG_POINT = (121.5440, 31.2210)  # inside Pudong (310115)
SEA_POINT = (123.0, 30.5)  # East China Sea


def midday_zone(now: float | None = None) -> str:
    """A fixed-offset zone in which `now` falls near local noon.

    Tests that stamp events relative to the real clock and count "today" use it
    as the city's zone, so they pass at any hour of any day.
    """
    utc_hour = time.gmtime(time.time() if now is None else now).tm_hour
    offset = 12 - utc_hour  # -11 .. +12; Etc/GMT names carry the opposite sign
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


MIDDAY_TZ = midday_zone()


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


def mixed_events(n: int, seed: int = 0, start_ms: int | None = None) -> list[dict[str, str]]:
    """A deterministic mix of all kinds: incident lives, readings, duplicates, invalid ones."""
    import random

    rnd = random.Random(seed)
    t0 = start_ms or now_ms(-3 * 3600)
    statuses = ("dispatched", "in_progress", "resolved", "closed", "reopened", "closed")
    out: list[dict[str, str]] = []
    for i in range(n):
        ts = str(t0 + rnd.randint(0, 3 * 3600 * 1000))
        point = (round(121.36 + rnd.random() * 0.2, 5), round(31.12 + rnd.random() * 0.15, 5))
        pick = rnd.random()
        eid = f"m{seed}-{i}"
        if pick < 0.35:
            incident_id = f"mi{seed}-{rnd.randint(0, n // 8)}"
            status = "reported" if rnd.random() < 0.4 else rnd.choice(statuses)
            event = incident(incident_id, status=status, ts=int(ts),
                             point=point if status == "reported" else None,
                             category=rnd.choice(("garbage", "noise", "manhole")),
                             severity=str(rnd.randint(1, 4)))
        elif pick < 0.7:
            event = traffic(f"ms{rnd.randint(0, 300)}", round(rnd.uniform(3, 90), 1), 60,
                            point=point, ts=int(ts))
        elif pick < 0.9:
            event = risk(f"310104-R{rnd.randint(1, 957):04d}", rnd.choice(
                ("fire_hazards", "flood_points", "fever_reports")), round(rnd.random() * 8, 2),
                ts=int(ts))
        elif pick < 0.95 and out:
            out.append(dict(rnd.choice(out)))  # a producer's retry: the same event again
            continue
        else:
            event = rnd.choice((
                {"event_id": eid, "kind": "weather", "ts": ts},
                {**traffic("bad", 30), "speed_kmh": "NaN"},
                incident("x", point=(123.5, 30.0)),
                {"event_id": eid, "kind": "incident", "ts": ts},
            ))
        event["event_id"] = eid
        out.append(event)
    return out
