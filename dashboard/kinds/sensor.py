"""IoT sensors (物联感知): the latest reading of each device decides whether it is in alarm.

Water level at flood points (cm above normal), smoke alarms (0 or 1), manhole
cover tilt (degrees) and PM2.5 (µg/m³). A device is in alarm when its latest
reading by event time reaches its type's threshold (`DEFAULT_THRESHOLDS`,
overridden per type by `CITYBRAIN_SENSOR_THRESHOLDS`). Only a device going
into alarm goes to the live feed (not every reading while it stays there).
Device readings are not risk indicators: they never touch the risk scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from dashboard.i18n import label
from dashboard.kinds.base import (
    Chain,
    Event,
    Fields,
    Invalid,
    RegisterKind,
    RowContext,
    identifier,
    required_number,
    round6,
)

DEVICE_TYPES = ("water_level", "smoke", "manhole_tilt", "pm25")
DEFAULT_THRESHOLDS: dict[str, float] = {
    "water_level": 30.0, "smoke": 1.0, "manhole_tilt": 15.0, "pm25": 150.0}
UNITS = {"water_level": "cm", "smoke": "", "manhole_tilt": "°", "pm25": "µg/m³"}
MAX_UNIT_CHARS = 16
# demo: (share of devices, normal range, alarm value range)
_DEMO = {"water_level": (0.3, (0, 12), (30, 60)), "smoke": (0.3, (0, 0), (1, 1)),
         "manhole_tilt": (0.2, (0, 4), (15, 40)), "pm25": (0.2, (15, 110), (150, 260))}
_DEMO_ALARM_SHARE = 0.04
_DEVICES_PER_DISTRICT = 8


def thresholds(settings: Any) -> dict[str, float]:
    """Each device type's alarm threshold: the defaults, then the setting's overrides."""
    overrides = getattr(settings, "sensor_thresholds", None) or {}
    return {**DEFAULT_THRESHOLDS, **overrides}


@dataclass(frozen=True, slots=True)
class SensorReading:
    """A device's latest reading, and whether it is in alarm."""

    device_id: str
    device_type: str
    value: float
    unit: str
    area: str
    lon: float | None
    lat: float | None
    ts: int
    alarm: bool = False


class SensorKind(RegisterKind):
    """`kind=sensor`: readings of IoT devices."""

    name = "sensor"
    doc = "IoT devices (water level, smoke, manhole tilt, PM2.5); alarmed ones stand out."
    labels: ClassVar[tuple[str, ...]] = ("device_type",)
    register = "sensor"
    record = SensorReading
    block = "sensors"
    kpi_label = "kpi_sensor_alarms"
    feed_levels: ClassVar[tuple[str, ...]] = ("alarm",)  # a device going into alarm is news
    key_field = "device_id"

    def parse(self, fields: Fields) -> tuple[Fields, bool]:
        """device_id, device_type, a finite value, optional unit; area_id or a point."""
        identifier(fields, "device_id")
        device_type = identifier(fields, "device_type") or ""
        if device_type not in DEVICE_TYPES:
            raise Invalid("bad_value", f"device_type must be one of {', '.join(DEVICE_TYPES)}")
        value = required_number(fields, "value")
        if device_type == "smoke" and value not in (0.0, 1.0):
            raise Invalid("bad_value", "a smoke reading is 0 or 1")
        data = {"device_id": fields["device_id"], "device_type": device_type,
                "value": repr(value)}
        unit = fields.get("unit")
        if unit:
            if len(unit) > MAX_UNIT_CHARS:
                raise Invalid("bad_value", f"unit is over {MAX_UNIT_CHARS} characters")
            data["unit"] = unit
        return data, False

    def key(self, event: Event, area: str) -> str:
        """One register per device."""
        return event.data["device_id"]

    def value(self, event: Event, area: str, ctx: RowContext) -> dict[str, Any]:
        """The reading (the alarm is decided when read, with the thresholds of that time)."""
        data = event.data
        return {"device_type": data["device_type"], "value": float(data["value"]),
                "unit": data.get("unit", ""), "area": area,
                "lon": None if event.lon is None else round6(event.lon),
                "lat": None if event.lat is None else round6(event.lat), "ts": event.ts}

    def feeds(self, data: Fields, settings: Any) -> bool:
        """Readings stay in the layer; only a device going into alarm reaches the feed."""
        return False

    def level(self, data: Fields, settings: Any) -> str | None:
        """`alarm` when the reading reaches its type's threshold, else `normal`."""
        alarm = float(data["value"]) >= thresholds(settings)[data["device_type"]]
        return "alarm" if alarm else "normal"

    def decode(self, field: str, data: dict[str, Any], settings: Any) -> SensorReading:
        """The device's record, in alarm when its value reaches its type's threshold."""
        limit = thresholds(settings).get(data["device_type"], float("inf"))
        return SensorReading(device_id=field, alarm=data["value"] >= limit, **data)

    def roll_up(self, records: Mapping[str, Any], chain: Chain) -> dict[str, Any]:
        """Devices, alarms and alarms by type per area."""
        totals: dict[str, list[Any]] = {}
        for reading in records.values():
            for area in chain(reading.area):
                total = totals.setdefault(area, [0, Counter()])
                total[0] += 1
                if reading.alarm:
                    total[1][reading.device_type] += 1
        return totals

    def summary(self, total: Any) -> dict[str, Any]:
        """`devices`, `alarms`, `alarms_by_type` (every type, 0 included)."""
        devices, by_type = total if total else (0, Counter())
        return {"devices": devices, "alarms": sum(by_type.values()),
                "alarms_by_type": {t: by_type.get(t, 0) for t in DEVICE_TYPES}}

    def kpi(self, block: Mapping[str, Any]) -> int | float | None:
        """Devices in alarm."""
        return int(block["alarms"])

    def feed_text(self, item: Mapping[str, Any], lang: str) -> tuple[str, str, str]:
        """The device type, its value and unit, the device."""
        value = float(item.get("value") or 0)
        unit = str(item.get("unit") or UNITS.get(str(item.get("device_type")), ""))
        return (label("device_type", item.get("device_type"), lang), f"{value:g} {unit}".strip(),
                str(item.get("device_id") or ""))

    def demo(self, sim: Any) -> SensorDemo:
        """Fixed devices in every district, now and then one in alarm."""
        return SensorDemo(sim)


class SensorDemo:
    """The demo's devices: a few per district, each reporting now and then."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        rand = sim.rand
        types = list(_DEMO)
        weights = [share for share, _, _ in _DEMO.values()]
        self.devices = [
            (f"DEV-{district}-{i:03d}", rand.choices(types, weights)[0], place)
            for i, (district, place) in enumerate(sim.places(_DEVICES_PER_DISTRICT), start=1)
        ]

    def weight(self, now: float) -> float:
        """About 5% of the demo's events."""
        return 6.0 if self.devices else 0.0

    def make(self, now: float) -> Fields:
        """One device's reading; a few percent are alarms."""
        rand = self.sim.rand
        device_id, device_type, place = rand.choice(self.devices)
        _, normal, alarm = _DEMO[device_type]
        low, high = alarm if rand.random() < _DEMO_ALARM_SHARE else normal
        event = self.sim.new_event("sensor", now, "sensor")
        event.update({"device_id": device_id, "device_type": device_type,
                      "value": str(rand.randint(low, high)), **place})
        if UNITS[device_type] and rand.random() < 0.5:
            event["unit"] = UNITS[device_type]
        return event


KIND = SensorKind()
