"""Validate and locate a batch of entries: the one check the worker and the HTTP intake share.

`check_batch` parses every entry against the contract (`contract.parse_entry`),
converts GCJ-02/BD-09 points to WGS-84 in one vectorised step and finds each
point's area in one spatial query. Each entry ends as a `Located` event or a
`Rejection` with its dead-letter reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import redis

from dashboard.geography import Geography
from dashboard.pipeline.contract import Event, Rejection, parse_entry
from dashboard.pipeline.coords import to_wgs84_many
from dashboard.settings import Settings


@dataclass(slots=True)
class Located:
    """A valid event and the finest area it lies in ("" for an incident update without place)."""

    event: Event
    area: str


Sent = tuple[float | None, float | None, str]  # a point as an event gives it: lon, lat, datum
Where = tuple[float, float, str | None]  # its WGS-84 lon, lat and area (None: outside)


class PointMemo:
    """Where recent exact points lie: fixed sensors and road segments send the same point.

    A bounded map from a point as sent (lon, lat, datum) to its WGS-84 coordinates and
    area (None: outside every area), for one geography: given another, it forgets all.
    One per worker (not shared between requests); emptied when `size` is reached.
    """

    def __init__(self, size: int = 65_536) -> None:
        self.size = size
        self.geography: Geography | None = None
        self.points: dict[Sent, Where] = {}

    def for_geography(self, geography: Geography) -> dict[Sent, Where]:
        """The map for this geography (emptied when it is not the one the map was made for)."""
        if geography is not self.geography or len(self.points) >= self.size:
            self.points = {}
            self.geography = geography
        return self.points


def check_batch(raws: Sequence[dict[bytes, bytes]], geography: Geography, now_ms: int,
                max_future_ms: int, memo: PointMemo | None = None) -> list[Located | Rejection]:
    """Each raw entry as a located event or a rejection, in order."""
    parsed = [parse_entry(raw, now_ms, max_future_ms, convert=False) for raw in raws]
    areas = iter(locate_events([e for e in parsed if isinstance(e, Event)], geography, memo))
    out: list[Located | Rejection] = []
    for event in parsed:
        if isinstance(event, Event):
            area = next(areas)
            out.append(area if isinstance(area, Rejection) else Located(event, area))
        else:
            out.append(event)
    return out


def locate_events(events: list[Event], geography: Geography,
                  memo: PointMemo | None = None) -> list[str | Rejection]:
    """Each event's area (points converted to WGS-84 in place), or why it has none."""
    points = memo.for_geography(geography) if memo is not None else {}
    known = geography.areas
    areas: list[str | Rejection] = []
    todo: list[int] = []  # points not in the memo: converted and located below, at once
    for i, event in enumerate(events):
        if event.lon is not None:
            hit = points.get((event.lon, event.lat, event.datum))
            if hit is None:
                todo.append(i)
                areas.append("")
            else:
                event.lon, event.lat, area = hit
                event.datum = "wgs84"
                areas.append(area if area is not None else _outside(event))
        elif event.area_id is not None:
            areas.append(event.area_id if event.area_id in known else Rejection(
                "unknown_area", f"area_id {event.area_id!r} is not a known area"))
        else:
            areas.append("")  # an incident update without a place
    if todo:
        sent = [(events[i].lon, events[i].lat, events[i].datum) for i in todo]
        lon, lat = to_wgs84_many(np.fromiter((p[0] for p in sent), float, len(todo)),
                                 np.fromiter((p[1] for p in sent), float, len(todo)),
                                 np.array([p[2] for p in sent]))
        for i, key, x, y, area in zip(todo, sent, lon.tolist(), lat.tolist(),
                                      geography.locate(lon, lat), strict=True):
            event = events[i]
            event.lon, event.lat, event.datum = x, y, "wgs84"
            areas[i] = area if area is not None else _outside(event)
            if memo is not None:
                points[key] = (x, y, area)
    return areas


def _outside(event: Event) -> Rejection:
    return Rejection("outside_city", f"point {event.lon:.5f}, {event.lat:.5f} is outside "
                     "every known area")


def dead_letter(pipe: redis.client.Pipeline, settings: Settings, fields: dict[bytes, bytes],
                rejection: Rejection, dead_stream: str | None = None, **extra: bytes) -> None:
    """Queue one entry's copy on the dead-letter stream with its reason, and count the reason."""
    record = dict(fields)
    record[b"dead_reason"] = rejection.reason.encode()
    record[b"dead_detail"] = rejection.detail.encode()
    for name, value in extra.items():
        record[name.encode()] = value
    pipe.xadd(dead_stream or settings.dead_stream_key, record)
    pipe.hincrby(settings.state_prefix + "stats", f"dead:{rejection.reason}", 1)
