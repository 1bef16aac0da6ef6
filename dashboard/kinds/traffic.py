"""Traffic: the latest speed reading per road segment; the congestion delay index."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from dashboard.i18n import label
from dashboard.kinds.base import (
    Chain,
    Demo,
    Event,
    Fields,
    Invalid,
    RegisterKind,
    RowContext,
    identifier,
    number,
    required_number,
    round6,
)

TRAFFIC_LEVELS = ((2.0, "severe"), (1.8, "congested"), (1.5, "slow"), (0.0, "smooth"))


def traffic_level(index: float | None) -> str | None:
    """smooth, slow, congested or severe for a congestion delay index."""
    if index is None:
        return None
    for bound, name in TRAFFIC_LEVELS:
        if index >= bound:
            return name
    raise ValueError(f"a congestion index is never negative: {index}")


@dataclass(frozen=True, slots=True)
class Segment:
    """A road segment's latest reading."""

    segment_id: str
    area: str
    lon: float | None
    lat: float | None
    speed_kmh: float
    free_flow_kmh: float
    ts: int

    @property
    def index(self) -> float:
        """Congestion delay index: free flow over speed (at least 1 km/h)."""
        return self.free_flow_kmh / max(self.speed_kmh, 1.0)


class TrafficKind(RegisterKind):
    """`kind=traffic`: speed readings of road segments."""

    name = "traffic"
    doc = "Congestion delay index per segment and per area."
    labels: ClassVar[tuple[str, ...]] = ("traffic_level",)
    register = "seg"
    record = Segment
    block = "traffic"
    feed_levels: ClassVar[tuple[str, ...]] = ("severe",)  # a segment turning severe is news
    key_field = "segment_id"

    def parse(self, fields: Fields) -> tuple[Fields, bool]:
        """segment_id, speed_kmh (0-200), optional free_flow_kmh; a point."""
        identifier(fields, "segment_id")
        speed = required_number(fields, "speed_kmh")
        if not 0 <= speed < 200:
            raise Invalid("bad_value", "speed_kmh must be at least 0 and below 200")
        data = {"segment_id": fields["segment_id"], "speed_kmh": repr(speed)}
        free_flow = number(fields, "free_flow_kmh")
        if free_flow is not None:
            if not 0 < free_flow < 200:
                raise Invalid("bad_value", "free_flow_kmh must be above 0 and below 200")
            data["free_flow_kmh"] = repr(free_flow)
        return data, True

    def key(self, event: Event, area: str) -> str:
        """One register per segment."""
        return event.data["segment_id"]

    def value(self, event: Event, area: str, ctx: RowContext) -> dict[str, Any]:
        """The reading, with the configured free flow when the event has none."""
        free_flow = float(event.data.get("free_flow_kmh", ctx.settings.free_flow_kmh))
        return {"area": area, "lon": _round(event.lon), "lat": _round(event.lat),
                "speed_kmh": float(event.data["speed_kmh"]), "free_flow_kmh": free_flow,
                "ts": event.ts}

    def feeds(self, data: Fields, settings: Any) -> bool:
        """Speed readings stay on the map; only turning severe reaches the feed."""
        return False

    def level(self, data: Fields, settings: Any) -> str | None:
        """The segment's congestion level by this reading."""
        free_flow = float(data.get("free_flow_kmh", settings.free_flow_kmh))
        return traffic_level(free_flow / max(float(data["speed_kmh"]), 1.0))

    def decode(self, field: str, data: dict[str, Any], settings: Any) -> Segment:
        """The segment record."""
        return Segment(segment_id=field, **data)

    def roll_up(self, records: Mapping[str, Any], chain: Chain) -> dict[str, Any]:
        """Sum of indexes and count of segments per area."""
        totals: dict[str, list[float]] = {}
        for segment in records.values():
            index = segment.index
            for area in chain(segment.area):
                total = totals.setdefault(area, [0.0, 0])
                total[0] += index
                total[1] += 1
        return totals

    def summary(self, total: Any) -> dict[str, Any]:
        """Mean index over the segments inside, its level, the count."""
        index = round(total[0] / total[1], 3) if total else None
        return {"index": index, "level": traffic_level(index),
                "segments": int(total[1]) if total else 0}

    def feed_text(self, item: Mapping[str, Any], lang: str) -> tuple[str, str, str]:
        """'Traffic', its level and speed, the segment."""
        speed = float(item.get("speed_kmh") or 0)
        level = item.get("lv")
        status = f"{speed:.0f} km/h"
        if level:
            status = f"{label('traffic_level', level, lang)} · {status}"
        return (label("kind", "traffic", lang), status, str(item.get("segment_id") or ""))

    def demo(self, sim: Any) -> Demo | None:
        """Speed readings of fixed segments following a daily curve."""
        return sim.traffic_demo()


def _round(value: float | None) -> float | None:
    return None if value is None else round6(value)


KIND = TrafficKind()
