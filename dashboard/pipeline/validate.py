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


def check_batch(raws: Sequence[dict[bytes, bytes]], geography: Geography, now_ms: int,
                max_future_ms: int) -> list[Located | Rejection]:
    """Each raw entry as a located event or a rejection, in order."""
    parsed = [parse_entry(raw, now_ms, max_future_ms, convert=False) for raw in raws]
    events = [(i, e) for i, e in enumerate(parsed) if isinstance(e, Event)]
    out: list[Located | Rejection] = [e if isinstance(e, Rejection) else Rejection("", "")
                                      for e in parsed]
    for (i, event), area in zip(events, locate_events([e for _, e in events], geography),
                                strict=True):
        out[i] = area if isinstance(area, Rejection) else Located(event, area)
    return out


def locate_events(events: list[Event], geography: Geography) -> list[str | Rejection]:
    """Each event's area (points converted to WGS-84 in place), or why it has none."""
    located = [i for i, e in enumerate(events) if e.lon is not None]
    by_index: dict[int, str | None] = {}
    if located:
        lon, lat = to_wgs84_many(
            np.fromiter((events[i].lon for i in located), float, len(located)),
            np.fromiter((events[i].lat for i in located), float, len(located)),
            np.array([events[i].datum for i in located]),
        )
        for i, x, y in zip(located, lon.tolist(), lat.tolist(), strict=True):
            events[i].lon, events[i].lat, events[i].datum = x, y, "wgs84"
        by_index = dict(zip(located, geography.locate(lon, lat), strict=True))
    areas: list[str | Rejection] = []
    known = geography.areas
    for i, event in enumerate(events):
        if i in by_index:
            area = by_index[i]
            areas.append(area if area is not None else Rejection(
                "outside_city", f"point {event.lon:.5f}, {event.lat:.5f} is outside every "
                "known area"))
        elif event.area_id is not None:
            areas.append(event.area_id if event.area_id in known else Rejection(
                "unknown_area", f"area_id {event.area_id!r} is not a known area"))
        else:
            areas.append("")  # an incident update without a place
    return areas


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
